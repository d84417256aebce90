package inventory

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
	"github.com/package-url/packageurl-go"

	"github.com/vigil-sec/vigil/internal/scan"
)

// ---- os-release ----

type osReleaseExtractor struct{}

func (osReleaseExtractor) name() string { return "os-release" }

func (osReleaseExtractor) match(p string, _ fs.FileMode, _ int64) access {
	if p == "/etc/os-release" || p == "/usr/lib/os-release" {
		return content
	}
	return skip
}

func (osReleaseExtractor) extract(_ context.Context, s *session, f *file) ([]record, error) {
	o, err := parseOSRelease(f.reader())
	if err != nil {
		return nil, err
	}
	// /etc/os-release wins over /usr/lib/os-release (os-release(5)).
	if s.osInfo == nil || f.path == "/etc/os-release" || s.osFrom != "/etc/os-release" {
		s.osInfo, s.osFrom = o, f.path
	}
	return nil, nil
}

// parseOSRelease reads the KEY=value lines of os-release(5).
func parseOSRelease(r io.Reader) (*scan.OS, error) {
	o := &scan.OS{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `"'`)
		}
		switch k {
		case "ID":
			o.ID = v
		case "VERSION_ID":
			o.VersionID = v
		case "PRETTY_NAME":
			o.PrettyName = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if o.ID == "" {
		return nil, errors.New("no ID= line")
	}
	return o, nil
}

// distroIdentity gives a distro package its OSV ecosystem and purl, from the OS.
func distroIdentity(o *scan.OS, r record) (string, string) {
	id, ver := "", ""
	if o != nil {
		id, ver = o.ID, o.VersionID
	}
	q := map[string]string{}
	if r.arch != "" {
		q["arch"] = r.arch
	}
	var eco, typ, ns string
	switch r.kind {
	case kindDpkg:
		typ, ns = packageurl.TypeDebian, "debian"
		switch id {
		case "ubuntu":
			ns, eco = "ubuntu", "Ubuntu:"+ver
		case "debian", "":
			eco = "Debian"
			if major, _, _ := strings.Cut(ver, "."); major != "" {
				eco += ":" + major
			}
		default:
			ns, eco = id, "Debian"
		}
	case kindApk:
		typ, ns, eco = packageurl.TypeApk, "alpine", "Alpine"
		if id != "" && id != "alpine" {
			ns = id
		}
		if parts := strings.Split(ver, "."); len(parts) >= 2 {
			eco += ":v" + parts[0] + "." + parts[1]
		}
	case kindRpm:
		typ, ns = packageurl.TypeRPM, id
		switch id {
		case "rhel", "centos":
			eco = "Red Hat"
			ns = "redhat"
		case "rocky":
			eco = "Rocky Linux"
		case "almalinux":
			eco = "AlmaLinux"
		case "opensuse-leap", "opensuse-tumbleweed", "opensuse":
			eco = "openSUSE"
			ns = "opensuse"
		case "sles":
			eco = "SUSE"
			ns = "suse"
		case "mariner", "azurelinux":
			eco = "Mariner"
		default:
			eco = "Red Hat"
		}
		if ns == "" {
			ns = "redhat"
		}
	}
	if id != "" {
		q["distro"] = id + "-" + ver
	}
	return eco, purl(typ, ns, r.Name, r.Version, q)
}

func purl(typ, ns, name, version string, q map[string]string) string {
	var qs packageurl.Qualifiers
	if len(q) > 0 {
		qs = packageurl.QualifiersFromMap(q)
	}
	return packageurl.NewPackageURL(typ, ns, name, version, qs, "").ToString()
}

// ---- dpkg ----

const (
	dpkgDir     = "/var/lib/dpkg"
	dpkgStatus  = "/var/lib/dpkg/status"
	dpkgStatusD = "/var/lib/dpkg/status.d"
	dpkgInfo    = "/var/lib/dpkg/info"
)

type dpkgExtractor struct{}

func (dpkgExtractor) name() string              { return "dpkg" }
func (dpkgExtractor) historyFile(p string) bool { return p == dpkgStatus }

func (dpkgExtractor) match(p string, _ fs.FileMode, _ int64) access {
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	switch {
	case p == dpkgStatus:
		return content
	case dir == dpkgStatusD && !strings.HasPrefix(base, "."):
		return content
	case dir == dpkgInfo && strings.HasSuffix(base, ".list"):
		return content
	}
	return skip
}

func (dpkgExtractor) extract(_ context.Context, s *session, f *file) ([]record, error) {
	dir, base := path.Split(f.path)
	dir = strings.TrimSuffix(dir, "/")
	switch {
	case dir == dpkgInfo:
		name, _, _ := strings.Cut(strings.TrimSuffix(base, ".list"), ":")
		b, err := f.bytes()
		if err != nil {
			return nil, err
		}
		s.addFiles(dpkgDir, name, parseFileList(b, ""))
		return nil, nil
	case dir == dpkgStatusD && strings.HasSuffix(base, ".md5sums"):
		b, err := f.bytes()
		if err != nil {
			return nil, err
		}
		s.addFiles(dpkgStatusD, strings.TrimSuffix(base, ".md5sums"), parseFileList(b, "md5sums"))
		return nil, nil
	}
	db := dpkgDir
	if dir == dpkgStatusD {
		db = dpkgStatusD
	}
	return parseDpkgStatus(f.reader(), db)
}

func (s *session) addFiles(db, pkg string, files []string) {
	m := s.fileLists[db]
	if m == nil {
		m = make(map[string][]string)
		s.fileLists[db] = m
	}
	m[pkg] = append(m[pkg], files...)
}

// parseFileList reads a dpkg .list (one path a line) or a .md5sums file ("<md5>  <path
// without leading slash>").
func parseFileList(b []byte, format string) []string {
	var out []string
	for line := range bytes.Lines(b) {
		l := strings.TrimRight(string(line), "\r\n")
		if format == "md5sums" {
			_, l, _ = strings.Cut(l, "  ")
		}
		if l == "" || l == "/." {
			continue
		}
		out = append(out, cleanPath(l))
	}
	return out
}

// maxParagraph bounds one control paragraph (a package's description and conffiles).
const maxParagraph = 4 << 20

// parseParagraphs calls fn with each paragraph of a Debian control file (deb822): the
// fields by name, continuation lines joined with "\n".
func parseParagraphs(r io.Reader, fn func(map[string]string) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	fields := map[string]string{}
	last := ""
	size := 0
	flush := func() error {
		if len(fields) == 0 {
			return nil
		}
		err := fn(fields)
		fields, last, size = map[string]string{}, "", 0
		return err
	}
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		size += len(line)
		if size > maxParagraph {
			return fmt.Errorf("line %d: paragraph over %d bytes", lineNo, maxParagraph)
		}
		l := strings.TrimRight(line, "\r\n")
		switch {
		case strings.TrimSpace(l) == "":
			if ferr := flush(); ferr != nil {
				return ferr
			}
		case l[0] == ' ' || l[0] == '\t':
			if last != "" {
				fields[last] += "\n" + strings.TrimSpace(l)
			}
		default:
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				return fmt.Errorf("line %d: not a field: %.40q", lineNo, l)
			}
			last = k
			fields[k] = strings.TrimSpace(v)
		}
		if errors.Is(err, io.EOF) {
			return flush()
		}
	}
}

func parseDpkgStatus(r io.Reader, db string) ([]record, error) {
	var out []record
	err := parseParagraphs(r, func(f map[string]string) error {
		name, ver := f["Package"], f["Version"]
		if name == "" || ver == "" {
			return nil
		}
		if st, ok := f["Status"]; ok && !dpkgInstalled(st) {
			return nil
		}
		src, srcVer := name, ver
		if sf := f["Source"]; sf != "" {
			// "Source: openssl" or "Source: util-linux (2.38.1-5)" when the source
			// version differs from the binary's (binNMUs).
			n, v, ok := strings.Cut(sf, " ")
			src = n
			if ok {
				srcVer = strings.Trim(strings.TrimSpace(v), "()")
			}
		}
		out = append(out, record{
			Package: scan.Package{Name: name, Version: ver, SourceName: src, SourceVersion: srcVer},
			kind:    kindDpkg,
			arch:    f["Architecture"],
			dbDir:   db,
		})
		return nil
	})
	return out, err
}

// dpkgInstalled reads the Status field ("want flag status"): packages whose files are on
// disk count, removed ones whose configuration files remain do not.
func dpkgInstalled(st string) bool {
	parts := strings.Fields(st)
	if len(parts) != 3 {
		return false
	}
	switch parts[2] {
	case "installed", "half-configured", "unpacked", "half-installed", "triggers-awaited", "triggers-pending":
		return true
	}
	return false
}

// ---- apk ----

type apkExtractor struct{}

const apkInstalled = "/lib/apk/db/installed"

func (apkExtractor) name() string            { return "apk" }
func (apkExtractor) historyFile(string) bool { return true }

func (apkExtractor) match(p string, _ fs.FileMode, _ int64) access {
	if p == apkInstalled {
		return content
	}
	return skip
}

func (apkExtractor) extract(_ context.Context, _ *session, f *file) ([]record, error) {
	return parseApkInstalled(f.reader())
}

// parseApkInstalled reads apk's installed database (apk-tools doc/apk-package.5): one
// "X:value" line per field, packages separated by blank lines.
func parseApkInstalled(r io.Reader) ([]record, error) {
	var out []record
	var cur *record
	dir := ""
	br := bufio.NewReaderSize(r, 64<<10)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return out, err
		}
		l := strings.TrimRight(line, "\r\n")
		if l == "" {
			if cur != nil && cur.Name != "" && cur.Version != "" {
				out = append(out, *cur)
			}
			cur, dir = nil, ""
		} else {
			if len(l) < 2 || l[1] != ':' {
				return out, fmt.Errorf("line %d: not a field: %.40q", lineNo, l)
			}
			if cur == nil {
				cur = &record{kind: kindApk, dbDir: path.Dir(apkInstalled)}
			}
			v := l[2:]
			switch l[0] {
			case 'P':
				cur.Name = v
			case 'V':
				cur.Version = v
				cur.SourceVersion = v
			case 'A':
				cur.arch = v
			case 'o':
				cur.SourceName = v
			case 'F':
				dir = v
			case 'R':
				cur.Files = append(cur.Files, cleanPath(path.Join(dir, v)))
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if cur != nil && cur.Name != "" && cur.Version != "" {
		out = append(out, *cur)
	}
	for i := range out {
		if out[i].SourceName == "" {
			out[i].SourceName = out[i].Name
		}
	}
	return out, nil
}

// ---- rpm ----

type rpmExtractor struct{}

func (rpmExtractor) name() string            { return "rpm" }
func (rpmExtractor) historyFile(string) bool { return true }

func (rpmExtractor) match(p string, _ fs.FileMode, _ int64) access {
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	if dir != "/var/lib/rpm" && dir != "/usr/lib/sysimage/rpm" {
		return skip
	}
	switch base {
	case "Packages", "Packages.db", "rpmdb.sqlite":
		return random
	}
	return skip
}

func (rpmExtractor) extract(_ context.Context, s *session, f *file) (recs []record, err error) {
	var magic [16]byte
	if n, _ := f.readerAt().ReadAt(magic[:], 0); n == 16 && string(magic[:]) == "SQLite format 3\x00" {
		return nil, errors.New("rpm sqlite database: not supported by this build (no sqlite reader)")
	}
	// go-rpmdb opens by path: give it a private copy.
	tmp, err := s.tempFile()
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := io.Copy(tmp, f.reader()); err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	return readRpmDB(tmp.Name())
}

func readRpmDB(name string) (recs []record, err error) {
	// go-rpmdb is not hardened against hostile databases: a panic is this file's error.
	defer func() {
		if r := recover(); r != nil {
			recs, err = nil, fmt.Errorf("malformed rpm database: %v", r)
		}
	}()
	db, err := rpmdb.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open rpm database: %w", err)
	}
	defer db.Close()
	pkgs, err := db.ListPackages()
	if err != nil {
		return nil, fmt.Errorf("list rpm packages: %w", err)
	}
	for _, p := range pkgs {
		if p.Name == "gpg-pubkey" {
			continue // imported signing keys, not software
		}
		ver := p.Version + "-" + p.Release
		if p.Epoch != nil && *p.Epoch != 0 {
			ver = strconv.Itoa(*p.Epoch) + ":" + ver
		}
		r := record{Package: scan.Package{Name: p.Name, Version: ver}, kind: kindRpm, arch: p.Arch}
		r.SourceName, r.SourceVersion = splitSourceRPM(p.SourceRpm)
		if r.SourceName == "" {
			r.SourceName, r.SourceVersion = p.Name, ver
		} else if p.Epoch != nil && *p.Epoch != 0 {
			r.SourceVersion = strconv.Itoa(*p.Epoch) + ":" + r.SourceVersion
		}
		if files, ferr := p.InstalledFileNames(); ferr == nil {
			r.Files = files
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// splitSourceRPM splits "bash-5.1.8-6.el9.src.rpm" into "bash", "5.1.8-6.el9".
func splitSourceRPM(s string) (string, string) {
	s = strings.TrimSuffix(strings.TrimSuffix(s, ".rpm"), ".src")
	s = strings.TrimSuffix(s, ".nosrc")
	i := strings.LastIndexByte(s, '-')
	if i <= 0 {
		return "", ""
	}
	j := strings.LastIndexByte(s[:i], '-')
	if j <= 0 {
		return "", ""
	}
	return s[:j], s[j+1:]
}
