package vulndb

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/scan"
	"github.com/vigil-sec/vigil/internal/scan/vulndb/starter"
)

func openTemp(t *testing.T) (*DB, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dir
}

// byID indexes findings by record id and package name.
func byID(fs []scan.Finding) map[string]scan.Finding {
	m := map[string]scan.Finding{}
	for _, f := range fs {
		m[f.ID+" "+f.Package.Name+" "+f.Package.Version] = f
	}
	return m
}

// starterCounts counts the starter zip's records per top-level folder, withdrawn ones
// apart, by reading the zip itself.
func starterCounts(t *testing.T) (map[string]int, int) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(starter.Zip), int64(len(starter.Zip)))
	if err != nil {
		t.Fatal(err)
	}
	counts, withdrawn := map[string]int{}, 0
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Withdrawn string `json:"withdrawn"`
		}
		err = json.NewDecoder(rc).Decode(&r)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if r.Withdrawn != "" {
			withdrawn++
			continue
		}
		counts[strings.SplitN(f.Name, "/", 2)[0]]++
	}
	return counts, withdrawn
}

func TestOpenSeedsStarter(t *testing.T) {
	db, dir := openTemp(t)
	st, err := db.Status()
	if err != nil {
		t.Fatal(err)
	}
	want, withdrawn := starterCounts(t)
	if withdrawn == 0 {
		t.Fatal("the starter holds no withdrawn record; the count below would not test skipping them")
	}
	total := 0
	for eco, n := range want {
		total += n
		if st.Ecosystems[eco] != n {
			t.Errorf("ecosystem %s: %d records, want %d", eco, st.Ecosystems[eco], n)
		}
	}
	if st.Records != total {
		t.Errorf("%d records, want %d", st.Records, total)
	}
	if len(st.Sources) != 1 || st.Sources[0].Name != StarterSource || st.Sources[0].Withdrawn != withdrawn {
		t.Errorf("sources = %+v, want the starter with %d withdrawn", st.Sources, withdrawn)
	}
	if st.Updated.IsZero() || st.Updated.After(time.Now()) || st.Age() <= 0 {
		t.Errorf("updated %v, age %v: want the starter's data time", st.Updated, st.Age())
	}
	if st.Temporary || st.Dir != dir {
		t.Errorf("status dir %q temporary %v, want %q", st.Dir, st.Temporary, dir)
	}
	if fi, err := os.Stat(filepath.Join(dir, indexFile)); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("index file: %v %v", fi, err)
	}
	// A second Open uses the index as it is.
	db2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := db2.Status()
	db2.Close()
	if !st2.Sources[0].ImportedAt.Equal(st.Sources[0].ImportedAt) {
		t.Error("a second Open seeded the database again")
	}
}

func TestMatchStarter(t *testing.T) {
	db, _ := openTemp(t)
	pkgs := []scan.Package{
		{Name: "stdlib", Version: "1.21.3", Ecosystem: "Go", Location: "/app"},
		{Name: "stdlib", Version: "1.22.1", Ecosystem: "Go", Location: "/app"},
		{Name: "stdlib", Version: "1.22.2", Ecosystem: "Go", Location: "/app"},
		{Name: "golang.org/x/net", Version: "v0.17.0", Ecosystem: "Go", Location: "/app"},
		{Name: "golang.org/x/net", Version: "v0.23.0", Ecosystem: "Go", Location: "/app"},
		// A Debian binary package matched through its source package.
		{Name: "libssl3", Version: "3.0.11-1~deb12u2", Ecosystem: "Debian:12", SourceName: "openssl", SourceVersion: "3.0.11-1~deb12u2"},
		// Same name as a crates.io record, but a distro package: no upstream match.
		{Name: "openssl", Version: "0.1-1", Ecosystem: "Debian:12", SourceName: "openssl"},
		// The same source on Debian 11: no Debian 12 advisory applies.
		{Name: "libssl1.1", Version: "1.1.1n-0+deb11u1", Ecosystem: "Debian:11", SourceName: "openssl"},
		{Name: "openssl", Version: "0.8.5", Ecosystem: "crates.io"},
		{Name: "openssl", Version: "0.9.0", Ecosystem: "crates.io"},
		{Name: "main", Version: "(devel)", Ecosystem: "Go"},
		{Name: "golang.org/x/net", Version: "latest", Ecosystem: "Go", Location: "/app2"},
	}
	fs, warnings, err := db.Match(pkgs)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(fs)
	for _, c := range []struct {
		key, fixed string
		present    bool
	}{
		{"GO-2024-2687 stdlib 1.21.3", "1.21.9", true},
		{"GO-2024-2687 stdlib 1.22.1", "1.22.2", true},
		{"GO-2024-2687 stdlib 1.22.2", "", false},
		{"GO-2024-2687 golang.org/x/net v0.17.0", "0.23.0", true},
		{"GO-2024-2687 golang.org/x/net v0.23.0", "", false},
		{"CVE-2023-5678 libssl3 3.0.11-1~deb12u2", "3.0.13-1~deb12u1", true},
		{"CVE-2023-2975 libssl3 3.0.11-1~deb12u2", "", false}, // fixed in 3.0.10-1~deb12u1
		{"RUSTSEC-2016-0001 openssl 0.1-1", "", false},
		{"RUSTSEC-2016-0001 openssl 0.8.5", "0.9.0", true},
		{"RUSTSEC-2016-0001 openssl 0.9.0", "", false},
	} {
		f, ok := got[c.key]
		if ok != c.present {
			t.Errorf("%s: found %v, want %v", c.key, ok, c.present)
			continue
		}
		if ok && f.FixedVersion != c.fixed {
			t.Errorf("%s: fixed %q, want %q", c.key, f.FixedVersion, c.fixed)
		}
	}
	for _, f := range fs {
		if f.Package.Ecosystem == "Debian:11" {
			t.Errorf("Debian 11 package matched %s", f.ID)
		}
		if f.Package.Ecosystem == "Debian:12" && !strings.HasPrefix(f.ID, "CVE-") {
			t.Errorf("Debian package matched a non-Debian record %s", f.ID)
		}
	}
	rs := got["RUSTSEC-2016-0001 openssl 0.8.5"]
	if rs.Severity != scan.SeverityHigh || rs.Score != 8.1 || !strings.HasPrefix(rs.CVSSVector, "CVSS:3.0/") {
		t.Errorf("RUSTSEC-2016-0001 severity %s %v %s, want high 8.1 from its CVSS 3.0 vector", rs.Severity, rs.Score, rs.CVSSVector)
	}
	g := got["GO-2024-2687 stdlib 1.21.3"]
	if g.Severity != scan.SeverityUnknown || !slices.Contains(g.Aliases, "CVE-2023-45288") || len(g.References) == 0 || g.Summary == "" {
		t.Errorf("GO-2024-2687: %+v", g)
	}
	// A main module without records is not a warning; a version that cannot be
	// compared is, naming the package and where it was found.
	if len(warnings) != 1 || !strings.Contains(warnings[0], "golang.org/x/net latest") || !strings.Contains(warnings[0], "/app2") {
		t.Errorf("warnings = %q, want one about golang.org/x/net latest", warnings)
	}
}

func TestImportDirectory(t *testing.T) {
	dir := t.TempDir()
	stats, err := Import(context.Background(), dir, "testdata/osv", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Three malformed files, each named in a warning; the rest imported.
	if stats.Skipped != 3 {
		t.Errorf("skipped %d, want 3: %q", stats.Skipped, stats.Warnings)
	}
	for _, name := range []string{"bad-truncated.json", "bad-noid.json", "bad-array.json"} {
		if !slices.ContainsFunc(stats.Warnings, func(w string) bool { return strings.Contains(w, name) }) {
			t.Errorf("no warning names %s: %q", name, stats.Warnings)
		}
	}
	// A fresh directory is seeded with the starter first; the stats say so per source.
	if len(stats.Sources) != 2 || stats.Sources[0].Name != StarterSource {
		t.Fatalf("sources %+v", stats.Sources)
	}
	if w := stats.Sources[1].Withdrawn; w != 1 {
		t.Errorf("withdrawn %d, want 1", w)
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, _ := db.Status()
	if len(st.Sources) != 2 || st.Sources[0].Name != StarterSource {
		t.Errorf("sources %+v: want the starter (seeded first) and the directory", st.Sources)
	}
	if _, ok := st.Ecosystems["npm"]; !ok {
		t.Errorf("ecosystems %v lack npm", st.Ecosystems)
	}

	pkgs := []scan.Package{
		{Name: "left-pad", Version: "0.9.0", Ecosystem: "npm"},
		{Name: "left-pad", Version: "1.2.0", Ecosystem: "npm"},
		{Name: "left-pad", Version: "1.5.0", Ecosystem: "npm"},
		{Name: "left-pad", Version: "2.3.0", Ecosystem: "npm"},
		{Name: "left-pad", Version: "2.3.1", Ecosystem: "npm"},
		{Name: "requests-toolbelt", Version: "1.4.post1", Ecosystem: "PyPI"},
		{Name: "requests.toolbelt", Version: "1.4.post2", Ecosystem: "PyPI"},
		{Name: "Requests_Toolbelt", Version: "3.0.0rc1", Ecosystem: "PyPI"},
		{Name: "requests-toolbelt", Version: "0.9", Ecosystem: "PyPI"},
		{Name: "org.example:lib", Version: "1.9", Ecosystem: "Maven"},
		{Name: "org.example:lib", Version: "2.0-SNAPSHOT", Ecosystem: "Maven"},
		{Name: "org.example:lib", Version: "2.0", Ecosystem: "Maven"},
		{Name: "zlib1g", Version: "1:1.2.11.dfsg-2ubuntu9", Ecosystem: "Ubuntu:22.04", SourceName: "zlib"},
		{Name: "libssl3", Version: "3.1.4-r4", Ecosystem: "Alpine:v3.19", SourceName: "openssl"},
		{Name: "libssl3", Version: "3.1.4-r5", Ecosystem: "Alpine:v3.19", SourceName: "openssl"},
		{Name: "libssl3", Version: "3.1.4-r4", Ecosystem: "Alpine:v3.18", SourceName: "openssl"},
		{Name: "rack", Version: "2.2.8", Ecosystem: "RubyGems"},
		{Name: "rack", Version: "3.0.0.beta1", Ecosystem: "RubyGems"},
		{Name: "tar", Version: "1.34+dfsg-1.2", Ecosystem: "Debian:12"},
	}
	fs, warnings, err := db.Match(pkgs)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(fs)
	for _, c := range []struct {
		key, fixed, sev string
		present         bool
	}{
		{"SYN-PAIRS left-pad 0.9.0", "", "", false},
		{"SYN-PAIRS left-pad 1.2.0", "1.5.0", scan.SeverityCritical, true},
		{"SYN-PAIRS left-pad 1.5.0", "", "", false},
		{"SYN-PAIRS left-pad 2.3.0", "2.3.1", scan.SeverityCritical, true},
		{"SYN-PAIRS left-pad 2.3.1", "", "", false},
		{"SYN-LAST requests-toolbelt 1.4.post1", "", scan.SeverityLow, true}, // last_affected: no fix
		{"SYN-LAST requests.toolbelt 1.4.post2", "", "", false},
		{"SYN-LAST Requests_Toolbelt 3.0.0rc1", "", scan.SeverityLow, true}, // listed version
		{"SYN-LAST requests-toolbelt 0.9", "", "", false},
		{"SYN-LIMIT org.example:lib 1.9", "", scan.SeverityUnknown, true},
		{"SYN-LIMIT org.example:lib 2.0-SNAPSHOT", "", scan.SeverityUnknown, true},
		{"SYN-LIMIT org.example:lib 2.0", "", "", false},
		{"SYN-UBUNTU zlib1g 1:1.2.11.dfsg-2ubuntu9", "1:1.2.11.dfsg-2ubuntu9.2", scan.SeverityMedium, true},
		{"SYN-ALPINE libssl3 3.1.4-r4", "3.1.4-r5", scan.SeverityHigh, true},
		{"SYN-ALPINE libssl3 3.1.4-r5", "", "", false},
		{"SYN-GHSA rack 2.2.8", "3.0.0.beta1", scan.SeverityMedium, true},
		{"SYN-GHSA rack 3.0.0.beta1", "", "", false},
	} {
		f, ok := got[c.key]
		if ok != c.present {
			t.Errorf("%s: found %v, want %v", c.key, ok, c.present)
			continue
		}
		if ok && (f.FixedVersion != c.fixed || f.Severity != c.sev) {
			t.Errorf("%s: fixed %q severity %s, want %q %s", c.key, f.FixedVersion, f.Severity, c.fixed, c.sev)
		}
	}
	for _, f := range fs {
		if f.Package.Ecosystem == "Alpine:v3.18" {
			t.Errorf("an Alpine 3.18 package matched %s, a 3.19 record", f.ID)
		}
	}
	if u := got["SYN-UBUNTU zlib1g 1:1.2.11.dfsg-2ubuntu9"]; u.Summary != "Ubuntu record without a summary." {
		t.Errorf("summary from details = %q", u.Summary)
	}
	if a := got["SYN-ALPINE libssl3 3.1.4-r4"]; a.Score != 7.5 {
		t.Errorf("CVSS v2 score %v, want 7.5", a.Score)
	}
	if v := got["SYN-GHSA rack 2.2.8"].CVSSVector; !strings.HasPrefix(v, "CVSS:4.0/") {
		t.Errorf("v4 vector not kept: %q", v)
	}
	if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "SYN-BADRANGE") }) {
		t.Errorf("no warning names the record with a bad range: %q", warnings)
	}
}

// writeZip builds an all.zip-style archive.
func writeZip(t *testing.T, path string, members map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(members))
	for n := range members {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(members[n])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata/osv", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestImportZipBounds(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "npm"), 0o755)
	// A bomb: 64 MiB of zeros compress to a few kilobytes.
	bomb := make([]byte, 64<<20)
	writeZip(t, filepath.Join(src, "npm", "all.zip"), map[string][]byte{
		"SYN-PAIRS.json": readTestdata(t, "synthetic/SYN-PAIRS.json"),
		"bomb.json":      bomb,
		"broken.json":    []byte(`{"id": "X", "affected": [`),
	})
	os.WriteFile(filepath.Join(src, "notazip.zip"), []byte("PK but not really"), 0o644)
	dir := t.TempDir()
	stats, err := Import(context.Background(), dir, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"all.zip!bomb.json", "all.zip!broken.json", "notazip.zip"} {
		if !slices.ContainsFunc(stats.Warnings, func(w string) bool { return strings.Contains(w, want) }) {
			t.Errorf("no warning names %s: %q", want, stats.Warnings)
		}
	}
	if stats.Ecosystems["npm"] != 1 {
		t.Errorf("npm records %d, want 1 (the good member)", stats.Ecosystems["npm"])
	}

	// A member whose header understates its size is cut at the bound while read.
	defer func(old int64) { maxRecordSize = old }(maxRecordSize)
	maxRecordSize = 100
	stats, err = Import(context.Background(), dir, filepath.Join(src, "npm", "all.zip"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(stats.Warnings, func(w string) bool { return strings.Contains(w, "SYN-PAIRS.json") }) {
		t.Errorf("a member over the bound was not refused: %q", stats.Warnings)
	}
}

func TestReimportReplacesAndWithdraws(t *testing.T) {
	dir := t.TempDir()
	src := t.TempDir()
	rec := string(readTestdata(t, "synthetic/SYN-PAIRS.json"))
	os.WriteFile(filepath.Join(src, "a.json"), []byte(rec), 0o644)
	if _, err := Import(context.Background(), dir, src, nil); err != nil {
		t.Fatal(err)
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// The record moves to another package; then it is withdrawn.
	moved := strings.Replace(rec, `"left-pad"`, `"right-pad"`, 1)
	os.WriteFile(filepath.Join(src, "a.json"), []byte(moved), 0o644)
	if _, err := Import(context.Background(), dir, src, nil); err != nil {
		t.Fatal(err)
	}
	// The open handle still reads the index it opened.
	if fs, _, _ := db.Match([]scan.Package{{Name: "left-pad", Version: "1.2.0", Ecosystem: "npm"}}); len(fs) != 1 {
		t.Errorf("the open database changed under its reader: %v", fs)
	}
	db2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	pk := []scan.Package{{Name: "left-pad", Version: "1.2.0", Ecosystem: "npm"}, {Name: "right-pad", Version: "1.2.0", Ecosystem: "npm"}}
	fs, _, _ := db2.Match(pk)
	db2.Close()
	if len(fs) != 1 || fs[0].Package.Name != "right-pad" {
		t.Errorf("after re-import: %v, want only right-pad", fs)
	}
	withdrawn := strings.Replace(moved, `"modified"`, `"withdrawn": "2026-02-01T00:00:00Z", "modified"`, 1)
	os.WriteFile(filepath.Join(src, "a.json"), []byte(withdrawn), 0o644)
	if _, err := Import(context.Background(), dir, src, nil); err != nil {
		t.Fatal(err)
	}
	db3, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db3.Close()
	if fs, _, _ := db3.Match(pk); len(fs) != 0 {
		t.Errorf("a withdrawn record still matches: %v", fs)
	}
	st, _ := db3.Status()
	if st.Ecosystems["npm"] != 0 {
		t.Errorf("npm count %d after withdrawal, want 0", st.Ecosystems["npm"])
	}
}

func TestUpdateHTTP(t *testing.T) {
	zips := t.TempDir()
	writeZip(t, filepath.Join(zips, "npm.zip"), map[string][]byte{"SYN-PAIRS.json": readTestdata(t, "synthetic/SYN-PAIRS.json")})
	writeZip(t, filepath.Join(zips, "crates.zip"), map[string][]byte{"RUSTSEC-2016-0001.json": readTestdata(t, "crates.io/RUSTSEC-2016-0001.json")})
	lastMod := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", lastMod.Format(http.TimeFormat))
		switch r.URL.Path {
		case "/npm/all.zip":
			data, _ := os.ReadFile(filepath.Join(zips, "npm.zip"))
			w.Write(data)
		case "/crates.io/all.zip":
			data, _ := os.ReadFile(filepath.Join(zips, "crates.zip"))
			w.Write(data)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	stats, err := UpdateEcosystems(context.Background(), dir, srv.URL, []string{"npm", "crates.io", "PyPI"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.Sources) != 3 || stats.Sources[1].Ecosystems["npm"] != 1 || stats.Sources[2].Ecosystems["crates.io"] != 1 {
		t.Errorf("ecosystems %v", stats.Ecosystems)
	}
	if !slices.ContainsFunc(stats.Warnings, func(w string) bool { return strings.Contains(w, "/PyPI/all.zip") && strings.Contains(w, "404") }) {
		t.Errorf("the missing ecosystem is not a warning: %q", stats.Warnings)
	}
	st, err := ReadStatus(dir)
	if err != nil {
		t.Fatal(err)
	}
	var npm *Source
	for i := range st.Sources {
		if st.Sources[i].Name == srv.URL+"/npm/all.zip" {
			npm = &st.Sources[i]
		}
	}
	if npm == nil || !npm.DataTime.Equal(lastMod) {
		t.Errorf("npm source %+v: want data time %v from Last-Modified", npm, lastMod)
	}
	// One zip by URL; a server with nothing fails.
	if _, err := Update(context.Background(), dir, srv.URL+"/npm/all.zip", nil); err != nil {
		t.Errorf("update from one zip URL: %v", err)
	}
	if _, err := UpdateEcosystems(context.Background(), dir, srv.URL+"/empty", []string{"Go"}, nil); err == nil {
		t.Error("an update that downloaded nothing succeeded")
	}
	// A directory works offline.
	if _, err := Update(context.Background(), dir, "testdata/osv/crates.io", nil); err != nil {
		t.Errorf("update from a directory: %v", err)
	}
}

func TestReadStatusWithoutIndex(t *testing.T) {
	if _, err := ReadStatus(t.TempDir()); !errors.Is(err, ErrNoIndex) {
		t.Errorf("err = %v, want ErrNoIndex", err)
	}
}

func TestOpenDamaged(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, indexFile), bytes.Repeat([]byte("garbage!"), 1024), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrDamaged) {
		t.Errorf("err = %v, want ErrDamaged", err)
	}
}

func TestOpenUnwritableSeedsTemporary(t *testing.T) {
	// A directory this user cannot write: as root, run this test's binary again as
	// nobody, for whom a 0555 directory is read-only.
	ro, err := os.MkdirTemp("", "vigil-vulndb-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(ro) })
	if err := os.Chmod(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("VIGIL_VULNDB_CHILD") != "" {
		openReadOnlyDir(t, os.Getenv("VIGIL_VULNDB_CHILD"))
		return
	}
	if os.Geteuid() != 0 {
		openReadOnlyDir(t, ro)
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.MkdirTemp("", "vigil-vulndb-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bin) })
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	copyExe := filepath.Join(bin, "vulndb.test")
	if err := os.WriteFile(copyExe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(bin, 0o755)
	cmd := exec.Command(copyExe, "-test.run=^TestOpenUnwritableSeedsTemporary$", "-test.count=1")
	cmd.Env = append(os.Environ(), "VIGIL_VULNDB_CHILD="+ro, "TMPDIR=/tmp", "HOME=/")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}

func openReadOnlyDir(t *testing.T, ro string) {
	db, err := Open(ro)
	if err != nil {
		t.Fatal(err)
	}
	st, err := db.Status()
	if err != nil {
		t.Fatal(err)
	}
	tmp := db.Dir()
	if fs, _, _ := db.Match([]scan.Package{{Name: "stdlib", Version: "1.21.3", Ecosystem: "Go"}}); len(fs) == 0 {
		t.Error("the temporary seed finds nothing")
	}
	db.Close()
	if !st.Temporary || tmp == ro {
		t.Errorf("status %+v: want a temporary seed outside %s", st, ro)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close left %s", tmp)
	}
	if _, err := os.Stat(filepath.Join(ro, indexFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an index was written to the read-only directory")
	}
}

func TestEcosystemMatches(t *testing.T) {
	for _, c := range []struct {
		record, pkg string
		want        bool
	}{
		{"Debian:12", "Debian:12", true},
		{"Debian:11", "Debian:12", false},
		{"Debian", "Debian:12", false},
		{"Debian:12", "Debian", false},
		{"Ubuntu:22.04:LTS", "Ubuntu:22.04", true},
		{"Ubuntu:22.04:LTS", "Ubuntu:22", false},
		{"Go", "Go", true},
		{"Go", "Golang", false},
	} {
		if got := ecosystemMatches(c.record, c.pkg); got != c.want {
			t.Errorf("ecosystemMatches(%q, %q) = %v", c.record, c.pkg, got)
		}
	}
}

func TestConcurrentSeed(t *testing.T) {
	dir := t.TempDir()
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			db, err := Open(dir)
			if err == nil {
				_, _, err = db.Match([]scan.Package{{Name: "stdlib", Version: "1.21.3", Ecosystem: "Go"}})
				db.Close()
			}
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	st, err := ReadStatus(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Sources) != 1 {
		t.Errorf("sources %+v, want the starter once", st.Sources)
	}
	left, _ := filepath.Glob(filepath.Join(dir, indexFile+".new-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
