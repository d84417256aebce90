package inventory

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Whiteout markers of the OCI image spec (layer.md): ".wh.<name>" deletes <name> from
// the lower layers, ".wh..wh..opq" in a directory hides everything the lower layers had
// in it.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// viewEntry is a path of the merged view of an image.
type viewEntry struct {
	layer   int
	ord     int // index of the entry in its layer's tar
	dataOrd int // index of the entry holding the content (differs for hard links)
	typ     byte
	mode    fs.FileMode
	size    int64
	link    string // symlink target
}

// histRef is one layer's copy of a package database file.
type histRef struct {
	layer, ord int
}

// view is the merged filesystem of the layers read so far.
type view struct {
	entries map[string]viewEntry
	// history lists, for the package database files, every layer's copy since the
	// file was last deleted.
	history map[string][]histRef
}

// zstdMaxWindow bounds the window a zstd layer may ask the decoder to keep in memory
// (zstd's own default limit for decoders is 128 MiB).
const zstdMaxWindow = 128 << 20

// layerReader opens layer i, decompressed (gzip, zstd or none), with its size bounded.
func layerReader(src blobSource, l imageLayer, o Options, count func(int64)) (io.Reader, func(), error) {
	rc, _, err := src.open(l.member)
	if err != nil {
		return nil, nil, fmt.Errorf("layer %s: %w", l.diffID, err)
	}
	compressed := &countingReader{r: rc, count: count}
	br := bufio.NewReaderSize(compressed, 64<<10)
	magic, _ := br.Peek(4)
	var r io.Reader = br
	closeFn := func() { rc.Close() }
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, nil, fmt.Errorf("layer %s (%s): gzip: %w", l.diffID, l.member, err)
		}
		r = zr
	case len(magic) == 4 && string(magic) == "\x28\xb5\x2f\xfd":
		// One goroutine, and bounded windows: a frame that declares a huge window is
		// refused rather than allocated (the layer's size is bounded below as for gzip).
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			rc.Close()
			return nil, nil, fmt.Errorf("layer %s (%s): zstd: %w", l.diffID, l.member, err)
		}
		r = zr
		closeFn = func() { zr.Close(); rc.Close() }
	}
	return &boundedReader{r: r, left: o.MaxLayerSize, compressed: compressed, name: l.diffID}, closeFn, nil
}

type countingReader struct {
	r     io.Reader
	n     int64
	count func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.count != nil && n > 0 {
		c.count(int64(n))
	}
	return n, err
}

// ErrTooLarge is returned (wrapped) when a layer is over the size bound or inflates
// like a decompression bomb.
var ErrTooLarge = errors.New("over the size bound")

// boundedReader fails a layer that inflates past its bound, or past bombRatio times its
// compressed size once it is large: real layers compress a few times, zeros a thousand.
type boundedReader struct {
	r          io.Reader
	left, read int64
	compressed *countingReader
	name       string
}

const (
	bombRatio = 200
	bombFloor = 256 << 20
)

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("layer %s: uncompressed size: %w", b.name, ErrTooLarge)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	b.read += int64(n)
	if b.read > bombFloor && b.read > bombRatio*b.compressed.n {
		return n, fmt.Errorf("layer %s: inflates %d bytes from %d: decompression bomb: %w", b.name, b.read, b.compressed.n, ErrTooLarge)
	}
	return n, err
}

// want is a file of the final view (or an earlier copy of a database file) that
// extractors asked for.
type want struct {
	path    string
	idx     []int
	acc     access
	mode    fs.FileMode
	size    int64
	history bool // an earlier layer's copy of a database file
}

// scanLayers runs the two passes over an image's layers and returns the packages.
func scanLayers(ctx context.Context, s *session, src blobSource, layers []imageLayer) ([]record, error) {
	var total, done int64
	for _, l := range layers {
		total += 2 * l.size
	}
	count := func(n int64) {
		done += n
		if s.opts.Progress != nil {
			s.opts.Progress(done, total)
		}
	}
	v := &view{entries: make(map[string]viewEntry), history: make(map[string][]histRef)}
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := s.readLayerHeaders(src, l, i, v, count); err != nil {
			return nil, err
		}
	}

	for _, d := range usrMergeDirs {
		if e, ok := v.entries["/"+d]; ok && e.typ == tar.TypeSymlink {
			s.noteMergedUsr(d, e.link)
		}
	}

	// plan[layer][dataOrd] are the wanted entries of each layer.
	plan := make([]map[int][]want, len(layers))
	add := func(layer, ord int, w want) {
		if plan[layer] == nil {
			plan[layer] = make(map[int][]want)
		}
		plan[layer][ord] = append(plan[layer][ord], w)
	}
	for p, e := range v.entries {
		if e.typ != tar.TypeReg && e.typ != tar.TypeLink {
			continue
		}
		idx, acc := s.wants(p, e.mode, e.size)
		if acc == skip {
			continue
		}
		if e.size > s.opts.MaxFileSize {
			s.warnf("%s: %d bytes, over the %d bound: skipped", p, e.size, s.opts.MaxFileSize)
			continue
		}
		add(e.layer, e.dataOrd, want{path: p, idx: idx, acc: acc, mode: e.mode, size: e.size})
		for _, h := range v.history[p] {
			if h.layer != e.layer {
				add(h.layer, h.ord, want{path: p, idx: idx, acc: acc, mode: e.mode, size: -1, history: true})
			}
		}
	}

	var recs []record
	// hist[path][layer] are the packages of an earlier copy of a database file.
	hist := make(map[string]map[int][]record)
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if plan[i] == nil {
			count(l.size)
			continue
		}
		if err := s.readLayerFiles(ctx, src, l, plan[i], count, &recs, func(p string, r []record) {
			if hist[p] == nil {
				hist[p] = make(map[int][]record)
			}
			hist[p][i] = r
		}); err != nil {
			return nil, err
		}
	}
	attributeHistory(recs, v, hist, layers)
	return recs, nil
}

// attributeHistory sets the layer of each package of a database file to the first layer
// of the trailing run of copies that list the package at the same version.
func attributeHistory(recs []record, v *view, hist map[string]map[int][]record, layers []imageLayer) {
	byLayer := make(map[string]int, len(layers))
	for i, l := range layers {
		byLayer[l.diffID] = i
	}
	for i := range recs {
		r := &recs[i]
		refs := v.history[r.Location]
		if len(refs) < 2 {
			continue
		}
		first := byLayer[r.Layer]
		for j := len(refs) - 1; j >= 0; j-- {
			h := refs[j]
			if h.layer >= first {
				continue
			}
			if !listed(hist[r.Location][h.layer], r.Name, r.Version) {
				break
			}
			first = h.layer
		}
		r.Layer = layers[first].diffID
	}
}

func listed(rs []record, name, version string) bool {
	for _, r := range rs {
		if r.Name == name && r.Version == version {
			return true
		}
	}
	return false
}

// readLayerHeaders is the first pass over a layer: it applies the layer's entries and
// whiteouts to the view.
func (s *session) readLayerHeaders(src blobSource, l imageLayer, li int, v *view, count func(int64)) error {
	r, closeFn, err := layerReader(src, l, s.opts, count)
	if err != nil {
		return err
	}
	defer closeFn()
	tr := tar.NewReader(r)
	own := make(map[string]viewEntry)
	var whiteouts, opaque []string
	for ord := 0; ; ord++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("layer %s (%s): read tar: %w", l.diffID, l.member, err)
		}
		p := cleanPath(h.Name)
		dir, base := path.Split(p)
		if base == whiteoutOpaque {
			opaque = append(opaque, path.Clean(dir))
			continue
		}
		if strings.HasPrefix(base, whiteoutPrefix) {
			whiteouts = append(whiteouts, path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix)))
			continue
		}
		e := viewEntry{layer: li, ord: ord, dataOrd: ord, typ: h.Typeflag, mode: h.FileInfo().Mode(), size: h.Size}
		switch h.Typeflag {
		case tar.TypeReg: // archive/tar reports the old TypeRegA as TypeReg
		case tar.TypeLink:
			// A hard link's content is the entry it names, earlier in the same layer;
			// a link to anything else (another layer, outside the image) has none.
			t, ok := own[cleanPath(h.Linkname)]
			if !ok || t.typ != tar.TypeReg && t.typ != tar.TypeLink {
				s.warnf("layer %s: %s: hard link to %q, not a file of this layer: ignored", l.diffID, p, h.Linkname)
				continue
			}
			e.dataOrd, e.size, e.mode = t.dataOrd, t.size, t.mode
		case tar.TypeSymlink:
			e.link = h.Linkname
		case tar.TypeDir:
		default:
			e.typ = 0 // devices, fifos: present but never read
		}
		own[p] = e
	}

	// Whiteouts apply to the lower layers only, so they go first.
	gone := make(map[string]bool)  // removed with everything below
	under := make(map[string]bool) // everything below removed
	for _, w := range whiteouts {
		gone[w] = true
	}
	for _, d := range opaque {
		under[d] = true
	}
	for p, e := range own {
		if old, ok := v.entries[p]; ok && old.typ == tar.TypeDir && e.typ != tar.TypeDir {
			under[p] = true
		}
	}
	if len(gone)+len(under) > 0 {
		for p := range v.entries {
			if removed(p, gone, under) {
				delete(v.entries, p)
				delete(v.history, p)
			}
		}
	}
	for p, e := range own {
		v.entries[p] = e
		if e.typ != tar.TypeReg {
			delete(v.history, p)
			continue
		}
		if s.isHistoryFile(p, e) {
			v.history[p] = append(v.history[p], histRef{layer: li, ord: e.dataOrd})
		} else {
			delete(v.history, p)
		}
	}
	return nil
}

func removed(p string, gone, under map[string]bool) bool {
	if gone[p] {
		return true
	}
	for d := path.Dir(p); ; d = path.Dir(d) {
		if gone[d] || under[d] {
			return true
		}
		if d == "/" {
			return false
		}
	}
}

func (s *session) isHistoryFile(p string, e viewEntry) bool {
	for _, x := range s.extractors {
		if h, ok := x.(historyExtractor); ok && h.historyFile(p) && x.match(p, e.mode, e.size) != skip {
			return true
		}
	}
	return false
}

// readLayerFiles is the second pass over a layer: it hands the wanted entries to their
// extractors.
func (s *session) readLayerFiles(ctx context.Context, src blobSource, l imageLayer, wants map[int][]want, count func(int64), out *[]record, histOut func(string, []record)) error {
	r, closeFn, err := layerReader(src, l, s.opts, count)
	if err != nil {
		return err
	}
	defer closeFn()
	tr := tar.NewReader(r)
	for ord := 0; len(wants) > 0; ord++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("layer %s (%s): read tar: %w", l.diffID, l.member, err)
		}
		ws, ok := wants[ord]
		if !ok {
			continue
		}
		delete(wants, ord)
		if h.Size > s.opts.MaxFileSize {
			s.warnf("%s: %d bytes, over the %d bound: skipped", ws[0].path, h.Size, s.opts.MaxFileSize)
			continue
		}
		acc := skip
		for _, w := range ws {
			acc = max(acc, w.acc)
		}
		f, cleanup, err := s.readEntry(tr, h.Size, acc)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return err
			}
			s.warnf("%s: read from layer %s: %v", ws[0].path, l.diffID, err)
			continue
		}
		if f == nil {
			continue // an executable that is not ELF
		}
		f.layer = l.diffID
		for _, w := range ws {
			f.path, f.mode = w.path, w.mode
			if w.history {
				var rs []record
				s.run(ctx, w.idx, f, &rs)
				histOut(w.path, rs)
				continue
			}
			s.run(ctx, w.idx, f, out)
		}
		cleanup()
	}
	return nil
}

// readEntry reads the current tar entry in memory or into a temporary file. It returns
// a nil file for an entry wanted only as an ELF binary that is not one.
func (s *session) readEntry(r io.Reader, size int64, acc access) (*file, func(), error) {
	br := bufio.NewReader(io.LimitReader(r, size))
	if acc == binary {
		m, _ := br.Peek(4)
		if string(m) != "\x7fELF" {
			return nil, func() {}, nil
		}
	}
	if size <= memLimit {
		b := make([]byte, size)
		if _, err := io.ReadFull(br, b); err != nil {
			return nil, nil, err
		}
		return &file{size: size, data: b}, func() {}, nil
	}
	tmp, err := s.tempFile()
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}
	n, err := io.Copy(tmp, br)
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return &file{size: size, ra: tmp}, cleanup, nil
}
