package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
)

// checkPages walks the B+tree and the freelist of a bbolt file held in memory, and
// reports the first page or element that points outside its page or the file, a page
// used twice, or a page neither used nor free. bbolt follows a page's offsets through
// unsafe pointers into its memory map without checking them, so a damaged one makes it
// fault, in its own Check among other places: a crash that recover cannot catch. And a
// page both used and free passes its Check, to make a later write panic. Checked here
// first, in plain Go, such damage is an error instead.
//
// The layout is bbolt's file format version 2 (go.etcd.io/bbolt/internal/common:
// meta.go, page.go, bucket.go), unchanged since 2014; bbolt refuses any other version
// before this runs. Integers are in the machine's byte order, as bbolt writes them.
func checkPages(file []byte) error {
	m, err := pickMeta(file)
	if err != nil {
		return err
	}
	if uint64(len(file))/uint64(m.pageSize) < m.pgid {
		return fmt.Errorf("the file (%d bytes) is shorter than its %d pages of %d bytes", len(file), m.pgid, m.pageSize)
	}
	w := pageWalk{file: file, pageSize: uint64(m.pageSize), hwm: m.pgid, used: make([]bool, m.pgid)}
	if err := w.tree(m.root, nil, 0); err != nil {
		return err
	}
	if m.freelist == noFreelist {
		return nil // bbolt finds the free pages by elimination
	}
	if err := w.freelist(m.freelist); err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	// Every page is in use or free: one neither is lost, and bbolt's Check says so too,
	// but one both (say, through a damaged overflow count) would be handed out again.
	for id := uint64(2); id < w.hwm; id++ {
		if !w.used[id] {
			return fmt.Errorf("page %d is neither in use nor free", id)
		}
	}
	return nil
}

// The parts of bbolt's format that checkPages reads.
const (
	pageHeaderSize = 16 // id uint64, flags uint16, count uint16, overflow uint32
	elementSize    = 16 // branch: pos, ksize uint32, pgid uint64; leaf: flags, pos, ksize, vsize uint32
	bucketSize     = 16 // root pgid uint64, sequence uint64; an inline bucket's page follows
	metaSize       = 64 // magic, version, page size, flags uint32; root bucket; freelist, pgid, txid, checksum uint64
	checksumOffset = 56

	branchPage   = 0x01
	leafPage     = 0x02
	metaPage     = 0x04
	freelistPage = 0x10
	bucketLeaf   = 0x01 // a leaf element whose value is a bucket

	boltMagic   = 0xED0CDAED
	boltVersion = 2
	noFreelist  = ^uint64(0)
	maxDepth    = 64 // far above what a B+tree of any file reaches; stops a loop
)

var order = binary.NativeEndian

type meta struct {
	pageSize                   int
	root, freelist, pgid, txid uint64
}

// pickMeta chooses the meta page as bbolt does: the valid one with the higher txid.
func pickMeta(file []byte) (meta, error) {
	m0, err0 := readMeta(file, 0)
	at := os.Getpagesize()
	if err0 == nil {
		at = m0.pageSize
	}
	m1, err1 := readMeta(file, at)
	switch {
	case err0 == nil && (err1 != nil || m0.txid >= m1.txid):
		return m0, nil
	case err1 == nil:
		return m1, nil
	}
	return meta{}, fmt.Errorf("no valid meta page: %w", errors.Join(err0, err1))
}

func readMeta(file []byte, off int) (meta, error) {
	if len(file) < off+pageHeaderSize+metaSize {
		return meta{}, fmt.Errorf("meta page at %d: the file ends at %d", off, len(file))
	}
	p := file[off:]
	b := p[pageHeaderSize : pageHeaderSize+metaSize]
	h := fnv.New64a()
	h.Write(b[:checksumOffset])
	switch {
	case order.Uint16(p[8:]) != metaPage:
		return meta{}, fmt.Errorf("meta page at %d has type %#x", off, order.Uint16(p[8:]))
	case order.Uint32(b[0:]) != boltMagic:
		return meta{}, fmt.Errorf("meta page at %d: not a bbolt file", off)
	case order.Uint32(b[4:]) != boltVersion:
		return meta{}, fmt.Errorf("meta page at %d: format version %d", off, order.Uint32(b[4:]))
	case h.Sum64() != order.Uint64(b[checksumOffset:]):
		return meta{}, fmt.Errorf("meta page at %d: bad checksum", off)
	}
	m := meta{
		pageSize: int(order.Uint32(b[8:])),
		root:     order.Uint64(b[16:]),
		freelist: order.Uint64(b[32:]),
		pgid:     order.Uint64(b[40:]),
		txid:     order.Uint64(b[48:]),
	}
	if m.pageSize < 512 || m.pageSize > 1<<20 || m.pageSize&(m.pageSize-1) != 0 {
		return meta{}, fmt.Errorf("meta page at %d: page size %d", off, m.pageSize)
	}
	return m, nil
}

type pageWalk struct {
	file     []byte
	pageSize uint64
	hwm      uint64 // the number of pages: bbolt's pgid
	used     []bool // by page: in use, or free
}

// use marks pages first to end-1 as in use (or free), once.
func (w *pageWalk) use(first, end uint64) error {
	for id := first; id < end; id++ {
		if w.used[id] {
			return fmt.Errorf("page %d is used twice", id)
		}
		w.used[id] = true
	}
	return nil
}

// page returns the bytes of page id, with its overflow pages, after checking its header.
func (w *pageWalk) page(id uint64, flags uint16) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, fmt.Errorf("page %d is outside the file's pages [2, %d)", id, w.hwm)
	}
	p := w.file[id*w.pageSize : (id+1)*w.pageSize]
	if got := order.Uint64(p); got != id {
		return nil, fmt.Errorf("page %d identifies as page %d", id, got)
	}
	if got := order.Uint16(p[8:]); got&flags == 0 {
		return nil, fmt.Errorf("page %d has type %#x, want %#x", id, got, flags)
	}
	end := id + 1 + uint64(order.Uint32(p[12:]))
	if end > w.hwm {
		return nil, fmt.Errorf("page %d overflows to page %d, past the last page %d", id, end-1, w.hwm-1)
	}
	if err := w.use(id, end); err != nil {
		return nil, err
	}
	return w.file[id*w.pageSize : end*w.pageSize], nil
}

// freelist checks the freelist page and marks the pages it lists.
func (w *pageWalk) freelist(id uint64) error {
	p, err := w.page(id, freelistPage)
	if err != nil {
		return err
	}
	ids := p[pageHeaderSize:]
	n := uint64(order.Uint16(p[10:]))
	if n == 0xFFFF { // the count is in the first id's place
		n, ids = order.Uint64(ids), ids[8:]
	}
	if n > uint64(len(ids))/8 {
		return fmt.Errorf("page %d: %d free page ids do not fit in %d bytes", id, n, len(p))
	}
	for i := range n {
		free := order.Uint64(ids[i*8:])
		if free < 2 || free >= w.hwm {
			return fmt.Errorf("page %d: free page %d is outside the file's pages [2, %d)", id, free, w.hwm)
		}
		if err := w.use(free, free+1); err != nil {
			return fmt.Errorf("page %d: free %w", id, err)
		}
	}
	return nil
}

// tree checks the tree of pages whose root is id. first, unless nil, is the key its
// parent has for it, which must be its first key: bbolt finds a child by that key when
// it rewrites the parent, and one that differs (yet sorts right, which is all bbolt's
// Check asks) makes it keep the old child too, and later free the page twice.
func (w *pageWalk) tree(id uint64, first []byte, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("page %d: the tree is more than %d levels deep", id, maxDepth)
	}
	p, err := w.page(id, branchPage|leafPage)
	if err != nil {
		return err
	}
	if err := w.elements(p, first, depth); err != nil {
		return fmt.Errorf("page %d: %w", id, err)
	}
	return nil
}

// elements checks that every key and value of page p lies inside it, and goes on to the
// pages its elements name: children of a branch, buckets of a leaf.
func (w *pageWalk) elements(p, first []byte, depth int) error {
	flags, count := order.Uint16(p[8:]), int(order.Uint16(p[10:]))
	if flags != branchPage && flags != leafPage {
		return fmt.Errorf("type %#x, not a branch or a leaf", flags)
	}
	if count == 0 && first != nil {
		return errors.New("no elements")
	}
	if pageHeaderSize+count*elementSize > len(p) {
		return fmt.Errorf("%d elements do not fit in %d bytes", count, len(p))
	}
	for i := range count {
		at := pageHeaderSize + i*elementSize
		e := p[at : at+elementSize]
		var pos, ksize, vsize uint64
		if flags == branchPage {
			pos, ksize = uint64(order.Uint32(e[0:])), uint64(order.Uint32(e[4:]))
		} else {
			pos, ksize, vsize = uint64(order.Uint32(e[4:])), uint64(order.Uint32(e[8:])), uint64(order.Uint32(e[12:]))
		}
		if uint64(at)+pos+ksize+vsize > uint64(len(p)) {
			return fmt.Errorf("element %d: its key or value lies outside the page", i)
		}
		key := p[uint64(at)+pos:][:ksize]
		if i == 0 && first != nil && !bytes.Equal(key, first) {
			return fmt.Errorf("the first key %.16x is not its parent's key for it, %.16x", key, first)
		}
		if flags == branchPage {
			if err := w.tree(order.Uint64(e[8:]), key, depth+1); err != nil {
				return err
			}
			continue
		}
		if order.Uint32(e[0:])&bucketLeaf == 0 {
			continue
		}
		v := p[uint64(at)+pos+ksize:][:vsize]
		if len(v) < bucketSize {
			return fmt.Errorf("element %d: a bucket of %d bytes", i, len(v))
		}
		if root := order.Uint64(v); root != 0 {
			if err := w.tree(root, nil, depth+1); err != nil {
				return err
			}
			continue
		}
		inline := v[bucketSize:]
		if len(inline) < pageHeaderSize || order.Uint16(inline[8:]) != leafPage {
			return fmt.Errorf("element %d: an inline bucket without a leaf page", i)
		}
		if err := w.elements(inline, nil, depth+1); err != nil {
			return fmt.Errorf("element %d: inline bucket: %w", i, err)
		}
	}
	return nil
}
