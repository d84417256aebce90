package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/scan"
	"github.com/vigil-sec/vigil/internal/workload"
)

// fakeScanner stands in for the child-process scanner (which cmd/vigil owns and the
// integration test runs): it answers a report per target and counts the scans.
type fakeScanner struct {
	mu      sync.Mutex
	scans   []string
	fail    map[string]error
	reports map[string]*scan.Report
	running int
	maxRun  int
}

func (f *fakeScanner) Scan(ctx context.Context, kind, ref string) (*scan.Report, error) {
	f.mu.Lock()
	f.scans = append(f.scans, kind+" "+ref)
	f.running++
	f.maxRun = max(f.maxRun, f.running)
	err := f.fail[ref]
	rep := f.reports[ref]
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.running--; f.mu.Unlock() }()
	if err != nil {
		return nil, err
	}
	if rep == nil {
		rep = &scan.Report{Inventory: scan.Inventory{Target: scan.Target{Kind: kind, Name: ref}}, ScannedAt: time.Now()}
	}
	c := *rep
	c.Findings = slices.Clone(rep.Findings)
	return &c, nil
}

func (f *fakeScanner) count(s string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, x := range f.scans {
		if x == s {
			n++
		}
	}
	return n
}

// vulnMemStore is a VulnStore in memory.
type vulnMemStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *vulnMemStore) PutScan(k string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = slices.Clone(v)
	return nil
}

func (s *vulnMemStore) DeleteScan(k string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
	return nil
}

func (s *vulnMemStore) Scans(fn func(string, []byte) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

const (
	imgA = "sha256:aaaa000000000000000000000000000000000000000000000000000000000000"
	imgB = "sha256:bbbb000000000000000000000000000000000000000000000000000000000000"
)

func testWorkloads() []workload.Workload {
	return []workload.Workload{
		{ID: workload.HostID, Name: "testhost", Kind: workload.KindHost, PID: 1},
		{ID: "c1", Name: "web-1", Kind: workload.KindContainer, Image: "example/web:1", ImageID: imgA},
		{ID: "c2", Name: "web-2", Kind: workload.KindContainer, Image: "example/web:1", ImageID: imgA},
		{ID: "c3", Name: "db", Kind: workload.KindContainer, Image: "example/db:2", ImageID: imgB},
	}
}

func queued(v *Vulnerabilities) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.queue)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func runVulns(t *testing.T, v *Vulnerabilities) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

func TestVulnsScanEachImageOnceAndTheHost(t *testing.T) {
	sc := &fakeScanner{}
	st := &vulnMemStore{m: map[string][]byte{}}
	v := NewVulnerabilities(sc, testWorkloads, st, VulnConfig{Poll: 5 * time.Millisecond}, slog.New(slog.DiscardHandler))
	if err := v.Load(); err != nil {
		t.Fatal(err)
	}
	runVulns(t, v)
	waitFor(t, "three scans", func() bool {
		return sc.count("host /") == 1 && sc.count("image "+imgA) == 1 && sc.count("image "+imgB) == 1
	})
	// Looking at the workloads again queues nothing: the cache is by image ID.
	v.syncImages()
	if q := queued(v); len(q) != 0 {
		t.Errorf("queued again: %v", q)
	}
	if sc.maxRun != 1 {
		t.Errorf("%d scans ran at once, want 1", sc.maxRun)
	}
	if sc.scans[0] != "host /" {
		t.Errorf("first scan = %q, want the host", sc.scans[0])
	}
	st.mu.Lock()
	stored := len(st.m)
	st.mu.Unlock()
	if stored != 3 {
		t.Errorf("%d results stored, want 3", stored)
	}

	// A restart with the stored results scans no image again.
	sc2 := &fakeScanner{}
	v2 := NewVulnerabilities(sc2, testWorkloads, st, VulnConfig{Poll: 5 * time.Millisecond}, slog.New(slog.DiscardHandler))
	if err := v2.Load(); err != nil {
		t.Fatal(err)
	}
	v2.syncImages()
	if q := queued(v2); len(q) != 0 {
		t.Errorf("after restart: queued %v, want nothing (all stored)", q)
	}
	for _, vt := range v2.List(VulnQuery{}) {
		if vt.State != ScanDone {
			t.Errorf("%s %s: state %s after restart", vt.Kind, vt.WorkloadName, vt.State)
		}
	}

	// Rescan queues all three again.
	runVulns(t, v2)
	if n := v2.Rescan(); n != 3 {
		t.Errorf("Rescan queued %d, want 3", n)
	}
	waitFor(t, "the rescan", func() bool {
		return sc2.count("image "+imgA) == 1 && sc2.count("image "+imgB) == 1 && sc2.count("host /") == 1
	})
}

func TestVulnsFailureIsReportedAndRetried(t *testing.T) {
	sc := &fakeScanner{fail: map[string]error{imgB: errors.New("docker save: no such image")}}
	v := NewVulnerabilities(sc, testWorkloads, nil, VulnConfig{Poll: 5 * time.Millisecond}, slog.New(slog.DiscardHandler))
	runVulns(t, v)
	waitFor(t, "the failed scan", func() bool {
		for _, vt := range v.List(VulnQuery{Workload: "c3"}) {
			return vt.State == ScanFailed
		}
		return false
	})
	got := v.List(VulnQuery{Workload: "c3"})
	if len(got) != 1 || got[0].Error != "docker save: no such image" || got[0].Findings == nil {
		t.Errorf("failed target = %+v", got)
	}
	// Not retried at once (the first wait is 2 minutes)...
	v.syncImages()
	if q := queued(v); slices.Contains(q, "image:"+imgB) {
		t.Errorf("failed image queued again before its wait is over: %v", q)
	}
	// ...but a rescan on demand does.
	sc.mu.Lock()
	delete(sc.fail, imgB)
	sc.mu.Unlock()
	v.Rescan()
	waitFor(t, "the rescan", func() bool { return v.List(VulnQuery{Workload: "c3"})[0].State == ScanDone })
}

func TestVulnsListFilters(t *testing.T) {
	mk := func(sev ...string) *scan.Report {
		r := &scan.Report{ScannedAt: time.Now()}
		for i, s := range sev {
			r.Findings = append(r.Findings, scan.Finding{ID: "V-" + strconv.Itoa(i), Severity: s, Package: scan.Package{Name: "p" + strconv.Itoa(i)}})
		}
		return r
	}
	sc := &fakeScanner{reports: map[string]*scan.Report{
		"/": mk(scan.SeverityLow), imgA: mk(scan.SeverityCritical, scan.SeverityMedium), imgB: mk(scan.SeverityHigh),
	}}
	wls := testWorkloads()
	list := func() []workload.Workload { return wls }
	v := NewVulnerabilities(sc, list, nil, VulnConfig{Poll: 5 * time.Millisecond}, slog.New(slog.DiscardHandler))
	runVulns(t, v)
	waitFor(t, "the scans", func() bool { return len(v.List(VulnQuery{})) == 4 && allDone(v.List(VulnQuery{})) })

	names := func(l []VulnTarget) []string {
		var out []string
		for _, vt := range l {
			name := vt.WorkloadName
			if name == "" {
				name = vt.ImageID
			}
			out = append(out, fmt.Sprintf("%s:%s:%d", vt.Kind, name, len(vt.Findings)))
		}
		return out
	}
	for _, tt := range []struct {
		q    VulnQuery
		want []string
	}{
		{VulnQuery{}, []string{"host:testhost:1", "container:db:1", "container:web-1:2", "container:web-2:2"}},
		{VulnQuery{Host: "true"}, []string{"host:testhost:1"}},
		{VulnQuery{Host: "false"}, []string{"container:db:1", "container:web-1:2", "container:web-2:2"}},
		{VulnQuery{Workload: "c3"}, []string{"container:db:1"}},
		{VulnQuery{Image: "example/web:1"}, []string{"container:web-1:2", "container:web-2:2"}},
		{VulnQuery{Image: "bbbb"}, []string{"container:db:1"}},
		{VulnQuery{Image: "sha256:bbbb0"}, []string{"container:db:1"}},
		{VulnQuery{Image: "bbb"}, nil}, // too short a prefix
		{VulnQuery{MinSeverity: scan.SeverityHigh}, []string{"host:testhost:0", "container:db:1", "container:web-1:1", "container:web-2:1"}},
	} {
		if got := names(v.List(tt.q)); !slices.Equal(got, tt.want) {
			t.Errorf("List(%+v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	// Once db stops, its image is still there for image=.
	wls = slices.DeleteFunc(slices.Clone(wls), func(w workload.Workload) bool { return w.ID == "c3" })
	if got := names(v.List(VulnQuery{Image: "example/db:2"})); !slices.Equal(got, []string{"image:" + imgB + ":1"}) {
		t.Errorf("stopped image = %v", got)
	}
}

func allDone(l []VulnTarget) bool {
	for _, vt := range l {
		if vt.State != ScanDone {
			return false
		}
	}
	return true
}

// TestVulnsInUse runs in-use detection on this test process, through the real /proc:
// its executable and a file it maps are in use, reached through a symbolic link as a
// package database may name them; a file it does not map is not.
func TestVulnsInUse(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, err = filepath.EvalSymlinks(exe)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	mapped := filepath.Join(real, "libmapped.so.1")
	if err := os.WriteFile(mapped, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(mapped)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, 4096, syscall.PROT_READ, syscall.MAP_SHARED)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(mem) })
	unmapped := filepath.Join(real, "libother.so.1")
	if err := os.WriteFile(unmapped, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A -dev package's link to the library another package ships.
	if err := os.Symlink("libmapped.so.1", filepath.Join(real, "libmapped.so")); err != nil {
		t.Fatal(err)
	}
	// lib -> real, relative, as /lib -> usr/lib is on a merged-/usr system.
	if err := os.Symlink("real", filepath.Join(dir, "lib")); err != nil {
		t.Fatal(err)
	}

	rep := &scan.Report{ScannedAt: time.Now(), Findings: []scan.Finding{
		{ID: "V-EXE", Severity: scan.SeverityLow, Package: scan.Package{Name: "stdlib", Location: exe}},
		{ID: "V-MAPPED", Severity: scan.SeverityLow, Package: scan.Package{Name: "libmapped", Location: "/var/lib/dpkg/status",
			Files: []string{"/usr/share/doc/libmapped", filepath.Join(dir, "lib", "libmapped.so.1")}}},
		{ID: "V-DEV", Severity: scan.SeverityLow, Package: scan.Package{Name: "libmapped-dev", Location: "/var/lib/dpkg/status",
			Files: []string{filepath.Join(dir, "lib", "libmapped.so")}}},
		{ID: "V-IDLE", Severity: scan.SeverityCritical, Package: scan.Package{Name: "libother", Location: "/var/lib/dpkg/status",
			Files: []string{filepath.Join(dir, "lib", "libother.so.1")}}},
	}}
	sc := &fakeScanner{reports: map[string]*scan.Report{imgA: rep}}
	self := []workload.Workload{{ID: "self", Name: "self", Kind: workload.KindContainer, ImageID: imgA, PID: os.Getpid()}}
	v := NewVulnerabilities(sc, func() []workload.Workload { return self }, nil, VulnConfig{Poll: 5 * time.Millisecond}, slog.New(slog.DiscardHandler))
	runVulns(t, v)
	waitFor(t, "the scan", func() bool { l := v.List(VulnQuery{Workload: "self"}); return len(l) == 1 && l[0].State == ScanDone })
	got := map[string]bool{}
	l := v.List(VulnQuery{Workload: "self"})
	for _, f := range l[0].Findings {
		got[f.ID] = f.InUse
	}
	if !got["V-EXE"] || !got["V-MAPPED"] || got["V-IDLE"] || got["V-DEV"] {
		t.Errorf("in use = %v, want V-EXE and V-MAPPED only", got)
	}
	// In-use findings come first, even before a critical one.
	if l[0].Findings[2].ID != "V-IDLE" || l[0].Summary.InUse != 2 {
		t.Errorf("order = %v, summary %+v", l[0].Findings, l[0].Summary)
	}
	// The cached report is not changed by a listing.
	for _, f := range rep.Findings {
		if f.InUse {
			t.Errorf("the stored report's %s was marked", f.ID)
		}
	}
}

func TestMapsPath(t *testing.T) {
	for line, want := range map[string]string{
		"7f1c2a000000-7f1c2a022000 r--p 00000000 08:01 1311028                    /usr/lib/x86_64-linux-gnu/libc.so.6": "/usr/lib/x86_64-linux-gnu/libc.so.6",
		"55d0c0a00000-55d0c0a01000 r-xp 00001000 00:2f 42                         /app/my server (deleted)":            "/app/my server",
		"7ffd5a1f0000-7ffd5a211000 rw-p 00000000 00:00 0                          [stack]":                             "",
		"7f1c2a3b0000-7f1c2a3b4000 rw-p 00000000 00:00 0 ":                                                             "",
		"garbage": "",
		"":        "",
	} {
		got, ok := mapsPath([]byte(line))
		if got != want || ok != (want != "") {
			t.Errorf("mapsPath(%q) = %q, %v; want %q", line, got, ok, want)
		}
	}
}

func FuzzMapsPath(f *testing.F) {
	f.Add([]byte("7f1c2a000000-7f1c2a022000 r--p 00000000 08:01 1311028   /usr/lib/libc.so.6"))
	f.Add([]byte("a b c d e"))
	f.Fuzz(func(t *testing.T, line []byte) {
		if p, ok := mapsPath(line); ok && (p == "" || p[0] != '/') {
			t.Fatalf("mapsPath(%q) = %q", line, p)
		}
	})
}

func TestResolverStaysInRoot(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"usr/lib", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"lib":         "usr/lib",         // merged /usr, relative
		"lib64":       "/usr/lib",        // absolute: from the root, not the host's
		"usr/lib/up":  "../../../../etc", // climbs past the root: stops at it
		"loop":        "loop",
		"usr/lib/abs": "/etc/passwd",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	r := newResolver(root)
	for in, want := range map[string]string{
		"/lib/libc.so.6":       "/usr/lib/libc.so.6",
		"/lib64/libc.so.6":     "/usr/lib/libc.so.6",
		"/usr/lib/up/x":        "/etc/x",
		"/usr/lib/abs":         "/usr/lib/abs", // the link itself, not its target
		"/usr/lib/abs/x":       "/etc/passwd/x",
		"/loop/x":              "/loop/x",
		"/missing/dir/file":    "/missing/dir/file",
		"/usr/../lib/libz.so1": "/usr/lib/libz.so1",
	} {
		if got := r.resolve(in); got != want {
			t.Errorf("resolve(%s) = %s, want %s", in, got, want)
		}
	}
}

// BenchmarkScanMaps measures one look at every process's maps and executable, what a
// GET /api/v1/vulnerabilities costs at most once per InUseTTL.
func BenchmarkScanMaps(b *testing.B) {
	b.ReportAllocs()
	procs := 0
	for b.Loop() {
		procs = len(scanMaps("/proc"))
	}
	b.ReportMetric(float64(procs), "mountns")
}

// BenchmarkMarkInUse measures flagging 1,000 findings of 20 files each against the
// mapped files of this process's mount namespace (cached, as between two looks).
func BenchmarkMarkInUse(b *testing.B) {
	v := NewVulnerabilities(&fakeScanner{}, func() []workload.Workload { return nil }, nil, VulnConfig{InUseTTL: time.Hour}, slog.New(slog.DiscardHandler))
	w := &workload.Workload{ID: "self", Kind: workload.KindContainer, PID: os.Getpid()}
	fs := make([]scan.Finding, 1000)
	for i := range fs {
		files := make([]string, 20)
		for j := range files {
			files[j] = fmt.Sprintf("/usr/lib/x86_64-linux-gnu/lib%d-%d.so.1", i%50, j)
		}
		fs[i] = scan.Finding{ID: "V", Package: scan.Package{Name: "p" + strconv.Itoa(i%50), Location: "/var/lib/dpkg/status", Files: files}}
	}
	v.markInUse(w, fs)
	b.ReportAllocs()
	for b.Loop() {
		v.markInUse(w, fs)
	}
}
