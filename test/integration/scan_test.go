//go:build integration

package integration

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/internal/scan"
	"github.com/vigil-sec/vigil/internal/scan/report"
	"github.com/vigil-sec/vigil/internal/scan/vulndb/starter"
	"github.com/vigil-sec/vigil/test/testenv"
)

// scanFixture is the image the scanner tests build: this host's real dpkg database and
// os-release in one layer, a real Go binary built with an old toolchain in a second.
type scanFixture struct {
	tag     string
	id      string
	layers  []string // diff IDs, base first
	status  []byte   // the dpkg status file put in the image
	osID    string   // "Debian:12"
	app     string   // the Go binary, on the host
	appInfo *buildinfo.BuildInfo
}

// buildScanFixture builds the image with Docker's builder from a context made here:
//
//	FROM scratch
//	COPY rootfs/ /     # /etc/os-release (a symlink, as on Debian), /var/lib/dpkg/{status,info/*.list}
//	COPY app /app      # testdata/scanfixture/app.gz, decompressed
func buildScanFixture(t *testing.T, d *testenv.Docker) *scanFixture {
	t.Helper()
	f := &scanFixture{tag: "vigil-test/scan-fixture:" + strings.TrimPrefix(testenv.RandomName("t"), "t-")}
	var err error
	if f.status, err = os.ReadFile("/var/lib/dpkg/status"); err != nil {
		t.Fatalf("this test needs a Debian host's dpkg database: %v", err)
	}
	osRelease, err := os.ReadFile("/etc/os-release")
	if err != nil {
		t.Fatal(err)
	}
	versionID := osReleaseField(osRelease, "VERSION_ID")
	if osReleaseField(osRelease, "ID") != "debian" || versionID == "" {
		t.Fatalf("this test needs a Debian host (os-release says ID=%s VERSION_ID=%s)", osReleaseField(osRelease, "ID"), versionID)
	}
	f.osID = "Debian:" + strings.SplitN(versionID, ".", 2)[0]

	gz, err := os.Open("testdata/scanfixture/app.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	app, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		t.Fatal(err)
	}
	f.app = filepath.Join(t.TempDir(), "app")
	if err := os.WriteFile(f.app, app, 0o755); err != nil {
		t.Fatal(err)
	}
	if f.appInfo, err = buildinfo.ReadFile(f.app); err != nil {
		t.Fatalf("the fixture binary has no Go build info: %v", err)
	}

	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	add := func(name string, mode int64, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	add("Dockerfile", 0o644, []byte("FROM scratch\nCOPY rootfs/ /\nCOPY app /app\nCMD [\"/app\"]\n"))
	add("rootfs/usr/lib/os-release", 0o644, osRelease)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "rootfs/etc/os-release", Linkname: "../usr/lib/os-release", ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	add("rootfs/var/lib/dpkg/status", 0o644, f.status)
	lists, err := filepath.Glob("/var/lib/dpkg/info/*.list")
	if err != nil || len(lists) == 0 {
		t.Fatalf("no dpkg file lists in /var/lib/dpkg/info (%v)", err)
	}
	for _, l := range lists {
		data, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		add("rootfs/var/lib/dpkg/info/"+filepath.Base(l), 0o644, data)
	}
	add("app", 0o755, app)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := d.Client.ImageBuild(ctx, &ctxTar, client.ImageBuildOptions{
		Tags: []string{f.tag}, Remove: true, ForceRemove: true, Version: build.BuilderV1,
		Labels: map[string]string{testenv.TestLabel: "1"},
	})
	if err != nil {
		t.Fatalf("docker build: %v", err)
	}
	out, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("docker build: %v", err)
	}
	if bytes.Contains(out, []byte(`"error"`)) {
		t.Fatalf("docker build failed: %s", out)
	}
	t.Cleanup(func() {
		if _, err := d.Client.ImageRemove(context.Background(), f.tag, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("remove image %s: %v", f.tag, err)
		}
	})
	insp, err := d.Client.ImageInspect(ctx, f.tag)
	if err != nil {
		t.Fatalf("inspect %s: %v", f.tag, err)
	}
	f.id, f.layers = insp.ID, insp.RootFS.Layers
	if len(f.layers) != 2 {
		t.Fatalf("image %s has %d layers, want 2 (rootfs, app)", f.tag, len(f.layers))
	}
	return f
}

func osReleaseField(data []byte, key string) string {
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}

// finding is what the tests compare: which advisory, which package, found where.
type finding struct{ id, pkg, location string }

func (f finding) String() string { return f.id + " " + f.pkg + " @" + f.location }

// expected works out, independently of the scanner, what it must find in the fixture:
// the records of the starter database shipped in vigil, read straight from its zip,
// evaluated against the dpkg database with dpkg's own comparison (dpkg
// --compare-versions) and against the binary's build info (debug/buildinfo) with
// SemVer ordering written out here.
func (f *scanFixture) expected(t *testing.T) (deb, golang map[finding]bool) {
	t.Helper()
	type bin struct{ name, version string }
	bySource := map[string][]bin{} // source package → installed binaries
	for _, para := range strings.Split(string(f.status), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(para, "\n") {
			if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
				fields[k] = v
			}
		}
		if fields["Package"] == "" || !strings.HasSuffix(fields["Status"], " installed") {
			continue
		}
		src, srcVersion := fields["Package"], fields["Version"]
		if s := fields["Source"]; s != "" {
			name, ver, hasVer := strings.Cut(s, " (")
			src = name
			if hasVer {
				srcVersion = strings.TrimSuffix(ver, ")")
			}
		}
		bySource[src] = append(bySource[src], bin{fields["Package"], srcVersion})
	}
	goPkgs := map[string]string{"stdlib": strings.TrimPrefix(f.appInfo.GoVersion, "go")}
	for _, dep := range f.appInfo.Deps {
		goPkgs[dep.Path] = strings.TrimPrefix(dep.Version, "v")
	}

	zr, err := zip.NewReader(bytes.NewReader(starter.Zip), int64(len(starter.Zip)))
	if err != nil {
		t.Fatalf("starter database: %v", err)
	}
	deb, golang = map[finding]bool{}, map[finding]bool{}
	dpkg := &dpkgCompare{cache: map[string]bool{}}
	for _, zf := range zr.File {
		eco, _, _ := strings.Cut(zf.Name, "/")
		if eco != "Debian" && eco != "Go" {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		var rec osvRecord
		err = json.NewDecoder(rc).Decode(&rec)
		rc.Close()
		if err != nil {
			t.Fatalf("starter record %s: %v", zf.Name, err)
		}
		if rec.Withdrawn != "" {
			continue
		}
		for _, a := range rec.Affected {
			switch {
			case a.Package.Ecosystem == f.osID:
				for _, b := range bySource[a.Package.Name] {
					if a.affects(b.version, dpkg.less) {
						deb[finding{rec.ID, b.name, "/var/lib/dpkg/status"}] = true
					}
				}
			case a.Package.Ecosystem == "Go":
				if v, ok := goPkgs[a.Package.Name]; ok && a.affects(v, semverLess) {
					golang[finding{rec.ID, a.Package.Name, "/app"}] = true
				}
			}
		}
	}
	return deb, golang
}

type osvRecord struct {
	ID        string        `json:"id"`
	Withdrawn string        `json:"withdrawn"`
	Affected  []osvAffected `json:"affected"`
}

type osvAffected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
	} `json:"package"`
	Ranges []struct {
		Type   string              `json:"type"`
		Events []map[string]string `json:"events"`
	} `json:"ranges"`
	Versions []string `json:"versions"`
}

// affects evaluates the OSV ranges (https://ossf.github.io/osv-schema/#evaluation): the
// events in version order, introduced opening, fixed and last_affected closing.
func (a *osvAffected) affects(v string, less func(a, b string) bool) bool {
	if slices.Contains(a.Versions, v) {
		return true
	}
	for _, r := range a.Ranges {
		if r.Type == "GIT" {
			continue
		}
		type ev struct{ kind, v string }
		var evs []ev
		for _, e := range r.Events {
			for k, val := range e {
				evs = append(evs, ev{k, val})
			}
		}
		sort.SliceStable(evs, func(i, j int) bool {
			if evs[i].v == "0" || evs[j].v == "0" {
				return evs[i].v == "0" && evs[j].v != "0"
			}
			return less(evs[i].v, evs[j].v)
		})
		in := false
		for _, e := range evs {
			switch e.kind {
			case "introduced":
				if e.v == "0" || !less(v, e.v) {
					in = true
				}
			case "fixed":
				if !less(v, e.v) {
					in = false
				}
			case "last_affected":
				if less(e.v, v) {
					in = false
				}
			}
		}
		if in {
			return true
		}
	}
	return false
}

// dpkgCompare orders Debian versions with dpkg itself.
type dpkgCompare struct {
	mu    sync.Mutex
	cache map[string]bool
}

func (d *dpkgCompare) less(a, b string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := a + "\x00" + b
	if r, ok := d.cache[key]; ok {
		return r
	}
	err := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		panic(fmt.Sprintf("dpkg --compare-versions: %v", err))
	}
	d.cache[key] = err == nil
	return err == nil
}

// semverLess orders SemVer 2.0 versions (without the leading v, as OSV's Go records
// write them).
func semverLess(a, b string) bool {
	split := func(v string) ([3]int, []string) {
		core, pre, _ := strings.Cut(strings.SplitN(v, "+", 2)[0], "-")
		var n [3]int
		for i, p := range strings.SplitN(core, ".", 3) {
			n[i], _ = strconv.Atoi(p)
		}
		if pre == "" {
			return n, nil
		}
		return n, strings.Split(pre, ".")
	}
	na, pa := split(a)
	nb, pb := split(b)
	if na != nb {
		for i := range na {
			if na[i] != nb[i] {
				return na[i] < nb[i]
			}
		}
	}
	switch {
	case pa == nil || pb == nil:
		return pa != nil && pb == nil
	}
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, errX := strconv.Atoi(pa[i])
		y, errY := strconv.Atoi(pb[i])
		switch {
		case errX == nil && errY == nil && x != y:
			return x < y
		case (errX == nil) != (errY == nil):
			return errX == nil
		case errX != nil && pa[i] != pb[i]:
			return pa[i] < pb[i]
		}
	}
	return len(pa) < len(pb)
}

// scanJSON runs `vigil scan ARGS -o json` and decodes the report.
func scanJSON(t *testing.T, args ...string) *scan.Report {
	t.Helper()
	cmd := exec.Command(vigilBin, append(append([]string{"scan"}, args...), "-o", "json")...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("vigil scan %v: %v\n%s", args, err, stderr.String())
	}
	var rep scan.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("vigil scan %v: output is not a report: %v\n%.2000s", args, err, stdout.String())
	}
	return &rep
}

func findingsOf(fs []scan.Finding) map[finding]bool {
	out := map[finding]bool{}
	for _, f := range fs {
		out[finding{f.ID, f.Package.Name, f.Package.Location}] = true
	}
	return out
}

// sameFindings fails the test with the differences between got and want.
func sameFindings(t *testing.T, what string, got, want map[finding]bool) {
	t.Helper()
	var missing, extra []string
	for f := range want {
		if !got[f] {
			missing = append(missing, f.String())
		}
	}
	for f := range got {
		if !want[f] {
			extra = append(extra, f.String())
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		t.Errorf("%s: %d findings, want %d\nmissing: %v\nunexpected: %v", what, len(got), len(want), missing, extra)
	}
}

func union(sets ...map[finding]bool) map[finding]bool {
	out := map[finding]bool{}
	for _, s := range sets {
		for f := range s {
			out[f] = true
		}
	}
	return out
}

// TestScanImageArchiveContainerAndServer is the scanner end to end: the fixture image
// scanned by reference and as a `docker save` archive, a running container of it, the
// SARIF and CycloneDX outputs against their schemas, and the server's view of the
// running workload with in_use set on the running binary.
func TestScanImageArchiveContainerAndServer(t *testing.T) {
	d := testenv.NewDocker(t)
	fx := buildScanFixture(t, d)
	wantDeb, wantGo := fx.expected(t)
	t.Logf("expected from the starter database: %d Debian findings, %d Go findings (Go %s)", len(wantDeb), len(wantGo), fx.appInfo.GoVersion)
	if len(wantDeb) == 0 {
		t.Fatal("no package of this host's dpkg database is affected by the starter database's Debian records: " +
			"the test cannot check Debian matching here")
	}
	if len(wantGo) == 0 {
		t.Fatal("no Go record of the starter database affects the fixture binary")
	}
	want := union(wantDeb, wantGo)
	// A fresh database directory: seeded from the starter database inside vigil, as on a
	// new install without internet.
	dbDir := t.TempDir()

	checkImageReport := func(t *testing.T, rep *scan.Report) {
		t.Helper()
		if len(rep.Layers) != 2 || rep.Layers[0].DiffID != fx.layers[0] || rep.Layers[1].DiffID != fx.layers[1] {
			t.Errorf("layers = %+v, want %v", rep.Layers, fx.layers)
		}
		if rep.OS == nil || rep.OS.ID != "debian" {
			t.Errorf("os = %+v, want debian (through the /etc/os-release symlink)", rep.OS)
		}
		sameFindings(t, "image findings", findingsOf(rep.Findings), want)
		for _, f := range rep.Findings {
			wantLayer := fx.layers[0]
			if f.Package.Location == "/app" {
				wantLayer = fx.layers[1]
			}
			if f.Package.Layer != wantLayer {
				t.Errorf("%s in %s: layer %q, want %q", f.ID, f.Package.Name, f.Package.Layer, wantLayer)
				break
			}
		}
	}

	t.Run("image", func(t *testing.T) {
		rep := scanJSON(t, "image", fx.tag, "--db", dbDir)
		if rep.Target.Kind != "image" || rep.Target.ID != fx.id {
			t.Errorf("target = %+v, want image %s", rep.Target, fx.id)
		}
		checkImageReport(t, rep)
	})

	t.Run("archive", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		saved, err := d.Client.ImageSave(ctx, []string{fx.tag})
		if err != nil {
			t.Fatalf("docker save: %v", err)
		}
		archive := filepath.Join(t.TempDir(), "fixture.tar")
		out, err := os.Create(archive)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(out, saved)
		saved.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("docker save: %v", err)
		}
		checkImageReport(t, scanJSON(t, "image", archive, "--db", dbDir))
	})

	t.Run("formats", func(t *testing.T) {
		dir := t.TempDir()
		schemas := "../../internal/scan/report/testdata/schema/"
		for _, tt := range []struct {
			format string
			schema []string
		}{
			{"sarif", []string{"sarif-2.1.0-rtm.5.json"}},
			{"cyclonedx", []string{"bom-1.6.SNAPSHOT.schema.json", "spdx.SNAPSHOT.schema.json", "jsf-0.82.SNAPSHOT.schema.json"}},
		} {
			file := filepath.Join(dir, "report."+tt.format)
			if out, err := execVigil("scan", "image", fx.tag, "--db", dbDir, "-o", tt.format, "--output-file", file); err != nil {
				t.Fatalf("-o %s: %v\n%s", tt.format, err, out)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			validateSchema(t, schemas, tt.schema, data)
			switch tt.format {
			case "sarif":
				var log struct {
					Runs []struct {
						Results []json.RawMessage `json:"results"`
					} `json:"runs"`
				}
				if err := json.Unmarshal(data, &log); err != nil || len(log.Runs) != 1 || len(log.Runs[0].Results) != len(want) {
					t.Errorf("SARIF: %d results, want %d (%v)", len(log.Runs[0].Results), len(want), err)
				}
			case "cyclonedx":
				var bom struct {
					Vulnerabilities []struct {
						ID string `json:"id"`
					} `json:"vulnerabilities"`
				}
				ids := map[string]bool{}
				for f := range want {
					ids[f.id] = true
				}
				if err := json.Unmarshal(data, &bom); err != nil || len(bom.Vulnerabilities) != len(ids) {
					t.Errorf("CycloneDX: %d vulnerabilities, want %d (%v)", len(bom.Vulnerabilities), len(ids), err)
				}
			}
		}
	})

	t.Run("fail-on", func(t *testing.T) {
		rep := scanJSON(t, "image", fx.tag, "--db", dbDir)
		for _, level := range []string{"low", "critical"} {
			n := report.Reaching(rep.Findings, level)
			out, err := execVigil("scan", "image", fx.tag, "--db", dbDir, "-o", "table", "--fail-on", level)
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if wantCode := map[bool]int{true: 3, false: 0}[n > 0]; code != wantCode {
				t.Errorf("--fail-on %s with %d findings at or above it: exit %d, want %d\n%s", level, n, code, wantCode, out)
			}
		}
		// An old database warns on stderr, and the scan still runs.
		cmd := exec.Command(vigilBin, "scan", "image", fx.tag, "--db", dbDir, "-o", "json", "--max-db-age", "1s")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || !json.Valid(stdout.Bytes()) || !strings.Contains(stderr.String(), "warning: the vulnerability database") {
			t.Errorf("--max-db-age 1s: %v, valid JSON %v, stderr %q", err, json.Valid(stdout.Bytes()), stderr.String())
		}
		// --ignore-unfixed leaves exactly the findings that have a fix.
		out := scanJSON(t, "image", fx.tag, "--db", dbDir, "--ignore-unfixed")
		fixed := 0
		for _, f := range rep.Findings {
			if f.FixedVersion != "" {
				fixed++
			}
		}
		if len(out.Findings) != fixed {
			t.Errorf("--ignore-unfixed: %d findings, want the %d with a fixed version", len(out.Findings), fixed)
		}
	})

	c := d.Run(t, testenv.ContainerSpec{Name: testenv.RandomName("vigil-scan"), Image: fx.tag, Cmd: []string{"/app"}})

	t.Run("container", func(t *testing.T) {
		rep := scanJSON(t, "container", c.Name, "--db", dbDir)
		if rep.Target.Kind != "container" {
			t.Errorf("target = %+v", rep.Target)
		}
		sameFindings(t, "container findings", findingsOf(rep.Findings), want)
	})

	t.Run("server", func(t *testing.T) {
		v := startVigil(t, "--vuln-db", dbDir)
		var got []controller.VulnTarget
		// The server scans the host first, then each image, one at a time at idle
		// priority: give it time on a busy machine.
		eventually(t, 5*time.Minute, "the server's scan of the container's image", func() (bool, string) {
			var err error
			got, err = v.Client.Vulnerabilities(context.Background(), url.Values{"workload": {c.Name}})
			if err != nil {
				return false, err.Error()
			}
			if len(got) != 1 {
				return false, fmt.Sprintf("%d entries", len(got))
			}
			return got[0].State == controller.ScanDone, fmt.Sprintf("state %s %s", got[0].State, got[0].Error)
		})
		vt := got[0]
		if vt.Kind != "container" || vt.Workload != c.ID || vt.ImageID != fx.id {
			t.Errorf("entry = %+v", vt)
		}
		sameFindings(t, "server findings", findingsOf(vt.Findings), want)
		// The container runs /app (under docker-init): the Go findings are in use, the
		// Debian ones (no process maps their files) are not.
		var wrong []string
		for _, f := range vt.Findings {
			if f.InUse != (f.Package.Location == "/app") {
				wrong = append(wrong, fmt.Sprintf("%s %s in_use=%v", f.ID, f.Package.Name, f.InUse))
			}
		}
		if len(wrong) > 0 {
			t.Errorf("in_use wrong for %d findings: %v", len(wrong), wrong)
		}
		if vt.Summary.InUse != len(wantGo) {
			t.Errorf("summary in_use = %d, want %d", vt.Summary.InUse, len(wantGo))
		}
		// In-use findings come first.
		if len(vt.Findings) > 0 && !vt.Findings[0].InUse {
			t.Errorf("first finding %s is not in use", vt.Findings[0].ID)
		}

		tok := readToken(t, v)
		for _, q := range []string{"?workload=" + c.Name + "&bogus=1", "?severity=urgent", "?host=maybe", "?image=%2Fetc"} {
			if code, body := apiCall(t, v, tok, http.MethodGet, "/api/v1/vulnerabilities"+q); code != http.StatusBadRequest {
				t.Errorf("GET %s: %d %s, want 400", q, code, body)
			}
		}
		if code, body := apiCall(t, v, tok, http.MethodGet, "/api/v1/vulnerabilities?workload=no-such-workload"); code != http.StatusNotFound {
			t.Errorf("unknown workload: %d %s, want 404", code, body)
		}
		if code, body := apiCall(t, v, tok, http.MethodPost, "/api/v1/vulnerabilities/scan"); code != http.StatusAccepted {
			t.Errorf("POST scan: %d %s, want 202", code, body)
		}
		// The CLI client shows the same.
		out, err := execVigil("vulnerabilities", "--workload", c.Name, "--server", v.URL, "--token-file", v.TokenFile)
		if err != nil || !strings.Contains(out, "container "+c.Name) || !strings.Contains(out, "yes") {
			t.Errorf("vigil vulnerabilities: %v\n%s", err, out)
		}

		// Results persist: after a restart on the same data dir the image's findings are
		// there at once, before any scan could have run.
		v.stop(t)
		v2 := startVigilIn(t, v.DataDir, "--vuln-db", dbDir)
		again, err := v2.Client.Vulnerabilities(context.Background(), url.Values{"workload": {c.Name}})
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 1 || again[0].State != controller.ScanDone {
			t.Fatalf("after restart: %+v, want the stored result", again)
		}
		sameFindings(t, "findings after restart", findingsOf(again[0].Findings), want)
		if again[0].Summary.InUse != len(wantGo) {
			t.Errorf("after restart: in_use %d, want %d", again[0].Summary.InUse, len(wantGo))
		}
	})
}

// validateSchema validates data against the schema files in dir (the first is the main
// one; the others are what it refers to, by file name and under its $id's directory).
func validateSchema(t *testing.T, dir string, files []string, data []byte) {
	t.Helper()
	c := jsonschema.NewCompiler()
	docs := map[string]any{}
	for _, name := range files {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bufio.NewReader(f))
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		docs[name] = doc
		if err := c.AddResource(name, doc); err != nil {
			t.Fatal(err)
		}
	}
	if m, ok := docs[files[0]].(map[string]any); ok {
		if id, ok := m["$id"].(string); ok {
			base := id[:strings.LastIndex(id, "/")+1]
			if err := c.AddResource(id, docs[files[0]]); err != nil {
				t.Fatal(err)
			}
			for _, name := range files[1:] {
				if err := c.AddResource(base+name, docs[name]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	sch, err := c.Compile(files[0])
	if err != nil {
		t.Fatalf("compile %s: %v", files[0], err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(doc); err != nil {
		t.Errorf("output does not validate against %s: %v", files[0], err)
	}
}
