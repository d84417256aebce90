package inventory

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// blobSource gives the members of an image archive or layout by name ("manifest.json",
// "index.json", "blobs/sha256/<hex>", "<id>/layer.tar"). Names are looked up, never
// used to build a host path outside the source.
type blobSource interface {
	open(name string) (io.ReadCloser, int64, error)
	describe() string
	Close() error
}

// errNoMember is returned by open for a member the source does not have.
var errNoMember = errors.New("no such member")

// dirSource is an OCI image layout directory. Members are opened through os.Root, so a
// symbolic link in the layout cannot lead outside it.
type dirSource struct {
	root *os.Root
	dir  string
}

func openDirSource(dir string) (*dirSource, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open image layout %s: %w", dir, err)
	}
	return &dirSource{root: r, dir: dir}, nil
}

func (d *dirSource) open(name string) (io.ReadCloser, int64, error) {
	f, err := d.root.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, fmt.Errorf("%s: %s: %w", d.dir, name, errNoMember)
		}
		return nil, 0, fmt.Errorf("%s: %w", d.dir, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %w", d.dir, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %s: not a regular file", d.dir, name)
	}
	return f, st.Size(), nil
}

func (d *dirSource) describe() string { return d.dir }
func (d *dirSource) Close() error     { return d.root.Close() }

// archiveSource is a tar archive (`docker save` output or an OCI layout archive) whose
// members are read in place: one pass records where each member's data starts.
type archiveSource struct {
	f       *os.File
	name    string
	members map[string]member
	owned   bool // the file is removed on Close (a decompressed copy)
}

type member struct {
	off, size int64
	link      string // symlink or hard link target, as a member name
}

// openArchiveSource opens an image archive; a gzip-compressed archive is first
// decompressed into a temporary file, within the layer size bound.
func openArchiveSource(p string, o Options) (*archiveSource, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open image archive: %w", err)
	}
	var magic [2]byte
	if n, _ := f.ReadAt(magic[:], 0); n == 2 && magic == [2]byte{0x1f, 0x8b} {
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("image archive %s: %w", p, err)
		}
		tmp, err := os.CreateTemp(o.TempDir, "vigil-image-*.tar")
		if err != nil {
			return nil, fmt.Errorf("image archive %s: %w", p, err)
		}
		n, err := io.Copy(tmp, io.LimitReader(zr, o.MaxLayerSize+1))
		if err == nil && n > o.MaxLayerSize {
			err = fmt.Errorf("more than %d bytes uncompressed", o.MaxLayerSize)
		}
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return nil, fmt.Errorf("decompress image archive %s: %w", p, err)
		}
		src, err := newArchiveSource(tmp, p, o)
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return nil, err
		}
		src.owned = true
		return src, nil
	}
	src, err := newArchiveSource(f, p, o)
	if err != nil {
		f.Close()
		return nil, err
	}
	return src, nil
}

// offsetReader counts the bytes read, so the offset of a member's data is known after
// tar.Reader.Next (archive/tar reads headers in whole blocks, without read-ahead).
type offsetReader struct {
	r   io.Reader
	off int64
}

func (o *offsetReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	o.off += int64(n)
	return n, err
}

func newArchiveSource(f *os.File, name string, _ Options) (*archiveSource, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("image archive %s: %w", name, err)
	}
	// The file itself, not a bufio.Reader: read-ahead would break the offsets.
	or := &offsetReader{r: f}
	tr := tar.NewReader(or)
	s := &archiveSource{f: f, name: name, members: make(map[string]member)}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("image archive %s: read tar: %w", name, err)
		}
		n := memberName(h.Name)
		switch h.Typeflag {
		case tar.TypeReg:
			s.members[n] = member{off: or.off, size: h.Size}
		case tar.TypeSymlink:
			t := h.Linkname
			if !path.IsAbs(t) {
				t = path.Join(path.Dir(n), t)
			}
			s.members[n] = member{link: memberName(t)}
		case tar.TypeLink:
			s.members[n] = member{link: memberName(h.Linkname)}
		}
	}
	if len(s.members) == 0 {
		return nil, fmt.Errorf("image archive %s: no files: not an image archive", name)
	}
	return s, nil
}

// memberName cleans a member name into the form used as the map key ("a/b").
func memberName(n string) string {
	return strings.TrimPrefix(path.Clean("/"+n), "/")
}

func (s *archiveSource) open(name string) (io.ReadCloser, int64, error) {
	n := memberName(name)
	for hops := 0; hops < 16; hops++ {
		m, ok := s.members[n]
		if !ok {
			return nil, 0, fmt.Errorf("%s: %s: %w", s.name, name, errNoMember)
		}
		if m.link == "" {
			return io.NopCloser(io.NewSectionReader(s.f, m.off, m.size)), m.size, nil
		}
		n = m.link
	}
	return nil, 0, fmt.Errorf("%s: %s: too many links", s.name, name)
}

func (s *archiveSource) describe() string { return s.name }

func (s *archiveSource) Close() error {
	err := s.f.Close()
	if s.owned {
		os.Remove(s.f.Name())
	}
	return err
}
