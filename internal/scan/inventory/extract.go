package inventory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/vigil-sec/vigil/internal/scan"
)

// access says what an extractor needs of a file it wants.
type access int

const (
	skip    access = iota // not wanted
	content               // the bytes, read in memory (the file is small) or streamed
	random                // random access (zip, ELF)
	binary                // random access, only if the file starts with the ELF magic
)

// pkgKind says which database a package came from; distro packages get their ecosystem
// and purl only once the OS is known (os-release may be read after the database).
type pkgKind int

const (
	kindLang pkgKind = iota
	kindDpkg
	kindApk
	kindRpm
)

// record is a package as an extractor found it.
type record struct {
	scan.Package
	kind pkgKind
	arch string
	// dbDir is the directory of the distro database the package was listed in, to join
	// it with that database's file lists.
	dbDir string
}

// file is one regular file of the target, handed to an extractor. Exactly one of data
// and ra is set: data for files read in memory, ra for files that were asked for random
// access or are too large to hold in memory.
type file struct {
	path  string // absolute, cleaned, inside the target
	size  int64
	mode  fs.FileMode
	data  []byte
	ra    io.ReaderAt
	layer string // diff ID of the layer the content came from; images only
}

func (f *file) reader() io.Reader {
	if f.data != nil {
		return bytes.NewReader(f.data)
	}
	return io.NewSectionReader(f.ra, 0, f.size)
}

// bytes returns the whole content, reading it from the temporary copy if need be (the
// size was checked against MaxFileSize before).
func (f *file) bytes() ([]byte, error) {
	if f.data != nil {
		return f.data, nil
	}
	b := make([]byte, f.size)
	if _, err := f.ra.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

func (f *file) readerAt() io.ReaderAt {
	if f.data != nil {
		return bytes.NewReader(f.data)
	}
	return f.ra
}

// extractor reads one kind of file. An extractor is used by one scan at a time.
type extractor interface {
	name() string
	// match reports whether and how the extractor wants the file at p (absolute,
	// cleaned) of the given mode and size.
	match(p string, mode fs.FileMode, size int64) access
	// extract returns the packages the file lists. An error is a problem with this file
	// only; it becomes a warning naming the file and the scan goes on.
	extract(ctx context.Context, s *session, f *file) ([]record, error)
}

// historyExtractor marks extractors of package databases rewritten in place by the
// package manager. In an image, every layer's copy of such a file is read, to find the
// layer that introduced each package rather than the one that last rewrote the file.
type historyExtractor interface {
	historyFile(p string) bool
}

// memLimit is the size up to which a wanted file is read in memory rather than copied to
// a temporary file.
const memLimit = 8 << 20

// session is the state of one scan: its options, warnings, OS and the file lists of the
// distro databases. It is not safe for concurrent use.
type session struct {
	opts       Options
	extractors []extractor
	warnings   []string
	osInfo     *scan.OS
	osFrom     string // the os-release file osInfo came from
	// fileLists maps a dpkg database directory and package name to the files the
	// package owns (info/*.list, status.d/*.md5sums).
	fileLists map[string]map[string][]string
	// mergedUsr lists the top directories ("lib", "bin") that are symlinks to their /usr
	// namesakes in the target (merged /usr): dpkg lists /lib/x/libc.so.6 while a
	// process maps /usr/lib/x/libc.so.6, so both names go into Files.
	mergedUsr map[string]bool
	tmpCount  int
}

// usrMergeDirs are the directories merged /usr turns into symlinks.
var usrMergeDirs = []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"}

// noteMergedUsr records a top directory that is a symlink; link is its target.
func (s *session) noteMergedUsr(dir, link string) {
	if link == "usr/"+dir || link == "/usr/"+dir {
		if s.mergedUsr == nil {
			s.mergedUsr = make(map[string]bool)
		}
		s.mergedUsr[dir] = true
	}
}

// withUsrNames adds the /usr names of the files under merged directories.
func (s *session) withUsrNames(files []string) []string {
	if len(s.mergedUsr) == 0 {
		return files
	}
	var seen map[string]bool
	out := files
	for _, f := range files {
		top, rest, ok := strings.Cut(strings.TrimPrefix(f, "/"), "/")
		if !ok || rest == "" || !s.mergedUsr[top] {
			continue
		}
		if seen == nil {
			seen = make(map[string]bool, len(files))
			for _, g := range files {
				seen[g] = true
			}
			out = append([]string(nil), files...)
		}
		if u := "/usr" + f; !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out
}

func newSession(o Options) *session {
	return &session{
		opts:       o,
		extractors: allExtractors(),
		fileLists:  make(map[string]map[string][]string),
	}
}

func (s *session) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.warnings = append(s.warnings, msg)
	s.opts.Log.Debug("scan warning", "warning", msg)
}

// wants returns the extractors interested in a file and the strongest access they need.
func (s *session) wants(p string, mode fs.FileMode, size int64) ([]int, access) {
	var idx []int
	acc := skip
	for i, e := range s.extractors {
		a := e.match(p, mode, size)
		if a == skip {
			continue
		}
		idx = append(idx, i)
		if a > acc {
			acc = a
		}
	}
	return idx, acc
}

// tempFile creates a temporary file in the scan's directory, named by a counter only.
func (s *session) tempFile() (*os.File, error) {
	s.tmpCount++
	return os.CreateTemp(s.opts.TempDir, fmt.Sprintf("vigil-scan-%d-*", s.tmpCount))
}

// run hands a file to the extractors in idx and collects their packages.
func (s *session) run(ctx context.Context, idx []int, f *file, out *[]record) {
	for _, i := range idx {
		e := s.extractors[i]
		if e.match(f.path, f.mode, f.size) == binary && !isELF(f.readerAt()) {
			continue
		}
		recs, err := e.extract(ctx, s, f)
		if err != nil {
			s.warnf("%s: %s: %v", f.path, e.name(), err)
		}
		for j := range recs {
			if recs[j].Location == "" {
				recs[j].Location = f.path
			}
			recs[j].Layer = f.layer
		}
		*out = append(*out, recs...)
	}
}

func isELF(r io.ReaderAt) bool {
	var m [4]byte
	n, _ := r.ReadAt(m[:], 0)
	return n == 4 && string(m[:]) == "\x7fELF"
}

// finish turns the records into the inventory's packages: distro ecosystems and purls
// from the OS, file lists joined, duplicates removed, sorted.
func (s *session) finish(inv *scan.Inventory, recs []record) {
	inv.OS = s.osInfo
	seen := make(map[string]bool)
	for _, r := range recs {
		p := r.Package
		switch r.kind {
		case kindDpkg, kindApk, kindRpm:
			p.Ecosystem, p.PURL = distroIdentity(s.osInfo, r)
			if r.kind == kindDpkg && p.Files == nil {
				p.Files = s.fileLists[r.dbDir][p.Name]
			}
			p.Files = s.withUsrNames(p.Files)
		}
		key := p.Ecosystem + "\x00" + p.Name + "\x00" + p.Version + "\x00" + p.Location
		if seen[key] {
			continue
		}
		seen[key] = true
		inv.Packages = append(inv.Packages, p)
	}
	sort.SliceStable(inv.Packages, func(i, j int) bool {
		a, b := inv.Packages[i], inv.Packages[j]
		if a.Ecosystem != b.Ecosystem {
			return a.Ecosystem < b.Ecosystem
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.Location < b.Location
	})
	if inv.Packages == nil {
		inv.Packages = []scan.Package{}
	}
	inv.Warnings = s.warnings
}

// cleanPath makes an archive or database path absolute and clean. It is a name only:
// nothing is ever opened by it on the host.
func cleanPath(p string) string {
	return path.Clean("/" + strings.TrimPrefix(p, "./"))
}

func allExtractors() []extractor {
	return []extractor{
		&osReleaseExtractor{},
		&dpkgExtractor{},
		&apkExtractor{},
		&rpmExtractor{},
		&goBinaryExtractor{},
		&rustBinaryExtractor{},
		&cargoLockExtractor{},
		&npmPackageExtractor{},
		&npmLockExtractor{},
		&pythonExtractor{},
		&javaExtractor{},
		&gemspecExtractor{},
		&composerExtractor{},
		&dotnetExtractor{},
	}
}
