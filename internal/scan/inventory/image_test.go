package inventory

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/package-url/packageurl-go"

	"github.com/vigil-sec/vigil/internal/scan"
)

// statusParagraphs splits this machine's real dpkg status into its paragraphs.
func statusParagraphs(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, p := range bytes.Split(readFile(t, "/var/lib/dpkg/status"), []byte("\n\n")) {
		if len(bytes.TrimSpace(p)) > 0 {
			out = append(out, append(bytes.TrimSpace(p), '\n'))
		}
	}
	if len(out) < 3 {
		t.Fatalf("/var/lib/dpkg/status has %d paragraphs", len(out))
	}
	return out
}

func field(par []byte, name string) string {
	for _, l := range strings.Split(string(par), "\n") {
		if v, ok := strings.CutPrefix(l, name+": "); ok {
			return v
		}
	}
	return ""
}

// layeredImage composes a three-layer image from this machine's real files:
//
//	1: os-release, dpkg status, staticcheck at /usr/bin, a Go binary at /usr/local/bin/app,
//	   a node_modules package under /opt/js
//	2: the status without package `removed`, a whiteout of /usr/local/bin/app, an opaque
//	   /opt/js with a different package
//	3: the status with `readded` (removed in 2) back
func layeredImage(t testing.TB) (im testImage, removed, readded string) {
	t.Helper()
	pars := statusParagraphs(t)
	removed, readded = field(pars[0], "Package"), field(pars[1], "Package")
	join := func(skip ...int) []byte {
		var b bytes.Buffer
		for i, p := range pars {
			if !contains(skip, i) {
				b.Write(p)
				b.WriteByte('\n')
			}
		}
		return b.Bytes()
	}
	l1 := tarOf(t, []entry{
		dirEntry("etc"), reg("etc/os-release", readFile(t, "/etc/os-release")),
		reg("var/lib/dpkg/status", join()),
		exe("usr/bin/staticcheck", readFile(t, "/root/go/bin/staticcheck")),
		exe("usr/local/bin/app", readFile(t, realGoBinary(t))),
		reg("opt/js/node_modules/left-pad/package.json", []byte(`{"name":"left-pad","version":"1.3.0"}`)),
	})
	l2 := tarOf(t, []entry{
		reg("var/lib/dpkg/status", join(0, 1)),
		whiteout("usr/local/bin", "app"),
		opaque("opt/js"),
		reg("opt/js/node_modules/@scope/right-pad/package.json", []byte(`{"name":"@scope/right-pad","version":"2.0.0"}`)),
	})
	l3 := tarOf(t, []entry{reg("var/lib/dpkg/status", join(0))})
	return testImage{layers: [][]byte{l1, l2, l3}, createdBy: []string{"COPY rootfs /", "RUN apt-get remove", "RUN apt-get install"}}, removed, readded
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func TestScanImageFormats(t *testing.T) {
	base, removed, readded := layeredImage(t)
	gz := base
	gz.gzip = true
	zs := base
	zs.zstd = true
	dir := t.TempDir()
	cases := []struct {
		name  string
		write func(t *testing.T) string
	}{
		{"docker-save", func(t *testing.T) string {
			p := filepath.Join(dir, "save.tar")
			base.dockerSave(t, p, "test:1")
			return p
		}},
		{"docker-save-gzip-layers", func(t *testing.T) string {
			p := filepath.Join(dir, "savegz.tar")
			gz.dockerSave(t, p, "test:1")
			return p
		}},
		{"docker-save-gzip-archive", func(t *testing.T) string {
			p := filepath.Join(dir, "save.tar")
			base.dockerSave(t, p, "test:1")
			q := filepath.Join(dir, "save.tar.gz")
			must(t, os.WriteFile(q, gzipOf(t, readFile(t, p)), 0o644))
			return q
		}},
		{"docker-save-zstd-layers", func(t *testing.T) string {
			p := filepath.Join(dir, "savezst.tar")
			zs.dockerSave(t, p, "test:1")
			return p
		}},
		{"oci-dir-zstd", func(t *testing.T) string {
			p := filepath.Join(dir, "ocizst")
			writeTree(t, p, zs.ociEntries(t))
			return p
		}},
		{"oci-dir", func(t *testing.T) string {
			p := filepath.Join(dir, "oci")
			writeTree(t, p, gz.ociEntries(t))
			return p
		}},
		{"oci-archive", func(t *testing.T) string {
			p := filepath.Join(dir, "oci.tar")
			must(t, os.WriteFile(p, tarOf(t, base.ociEntries(t)), 0o644))
			return p
		}},
	}
	wantDpkg := map[string]string{}
	for _, par := range statusParagraphs(t) {
		if n := field(par, "Package"); n != removed && dpkgInstalled(field(par, "Status")) {
			wantDpkg[n] = field(par, "Version")
		}
	}
	gover, deps := goVersionM(t, "/root/go/bin/staticcheck")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			inv, err := ScanImage(context.Background(), c.write(t), Options{TempDir: tmp})
			must(t, err)
			if len(inv.Layers) != 3 {
				t.Fatalf("layers: %+v", inv.Layers)
			}
			for i, l := range inv.Layers {
				if l.DiffID != digest(base.layers[i]) || l.CreatedBy != base.createdBy[i] {
					t.Errorf("layer %d = %+v, want %s %q", i, l, digest(base.layers[i]), base.createdBy[i])
				}
			}
			if inv.OS == nil || inv.OS.ID != "debian" {
				t.Errorf("OS = %+v", inv.OS)
			}
			l1, l3 := inv.Layers[0].DiffID, inv.Layers[2].DiffID
			got := map[string]scan.Package{}
			for _, p := range inv.Packages {
				if strings.HasPrefix(p.Ecosystem, "Debian") {
					got[p.Name] = p
				}
			}
			if len(got) != len(wantDpkg) {
				t.Errorf("%d dpkg packages, want %d", len(got), len(wantDpkg))
			}
			for n, v := range wantDpkg {
				p, ok := got[n]
				if !ok || p.Version != v {
					t.Errorf("dpkg %s = %+v, want version %s", n, p, v)
					continue
				}
				wantLayer := l1
				if n == readded {
					wantLayer = l3 // removed by layer 2, back in layer 3
				}
				if p.Layer != wantLayer {
					t.Errorf("dpkg %s: layer %s, want %s", n, p.Layer, wantLayer)
				}
				pu, err := packageurl.FromString(p.PURL)
				if p.Location != "/var/lib/dpkg/status" || err != nil || pu.Type != "deb" || pu.Namespace != "debian" || pu.Name != n || pu.Version != v {
					t.Errorf("dpkg %s: %+v", n, p)
				}
			}
			if _, ok := got[removed]; ok {
				t.Errorf("package %s removed in layer 2 is reported", removed)
			}
			goPkgs := map[string]scan.Package{}
			for _, p := range inv.Packages {
				if p.Ecosystem == "Go" {
					if p.Location != "/usr/bin/staticcheck" {
						t.Errorf("Go package from %s, which layer 2 deleted: %+v", p.Location, p)
					}
					goPkgs[p.Name] = p
				}
			}
			if p := goPkgs["stdlib"]; p.Version != gover || p.Layer != l1 {
				t.Errorf("stdlib = %+v, want %s in layer 1", p, gover)
			}
			for m, v := range deps {
				if p := goPkgs[m]; p.Version != strings.TrimPrefix(v, "v") {
					t.Errorf("Go module %s = %+v, want %s", m, p, v)
				}
			}
			var npm []string
			for _, p := range inv.Packages {
				if p.Ecosystem == "npm" {
					npm = append(npm, p.PURL)
				}
			}
			if strings.Join(npm, ",") != "pkg:npm/%40scope/right-pad@2.0.0" {
				t.Errorf("npm packages %v: the opaque directory should hide left-pad", npm)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func TestScanImageErrors(t *testing.T) {
	dir := t.TempDir()
	notTar := filepath.Join(dir, "notatar.tar")
	must(t, os.WriteFile(notTar, bytes.Repeat([]byte("not a tar file "), 100), 0o644))
	_, err := ScanImage(context.Background(), notTar, Options{TempDir: dir})
	if err == nil || !strings.Contains(err.Error(), notTar) {
		t.Errorf("not a tar: err = %v, want an error naming the file", err)
	}

	noManifest := filepath.Join(dir, "plain.tar")
	must(t, os.WriteFile(noManifest, tarOf(t, []entry{reg("hello.txt", []byte("hi"))}), 0o644))
	_, err = ScanImage(context.Background(), noManifest, Options{TempDir: dir})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), noManifest) {
		t.Errorf("no manifest: err = %v", err)
	}

	// A layer that is not a tar: a clear error naming the layer.
	im := testImage{layers: [][]byte{bytes.Repeat([]byte{0xff}, 2048)}}
	bad := filepath.Join(dir, "badlayer.tar")
	im.dockerSave(t, bad, "bad:1")
	_, err = ScanImage(context.Background(), bad, Options{TempDir: dir})
	if err == nil || !strings.Contains(err.Error(), digest(im.layers[0])) {
		t.Errorf("bad layer: err = %v, want an error naming the layer", err)
	}

	// A corrupt zstd layer: a clear error naming the layer.
	im = testImage{layers: [][]byte{append([]byte("\x28\xb5\x2f\xfd"), make([]byte, 100)...)}}
	zst := filepath.Join(dir, "zstd.tar")
	im.dockerSave(t, zst, "z:1")
	_, err = ScanImage(context.Background(), zst, Options{TempDir: dir})
	if err == nil || !strings.Contains(err.Error(), digest(im.layers[0])) {
		t.Errorf("corrupt zstd layer: err = %v, want an error naming the layer", err)
	}
}

// A malformed database in an image is a warning naming the file; the rest is scanned.
func TestScanImageMalformedFileContinues(t *testing.T) {
	dir := t.TempDir()
	im := testImage{layers: [][]byte{tarOf(t, []entry{
		reg("var/lib/dpkg/status", []byte("Package: x\nthis line is not a field\n")),
		exe("app", readFile(t, realGoBinary(t))),
	})}}
	p := filepath.Join(dir, "img.tar")
	im.dockerSave(t, p, "m:1")
	inv, err := ScanImage(context.Background(), p, Options{TempDir: dir})
	must(t, err)
	if len(inv.Warnings) != 1 || !strings.Contains(inv.Warnings[0], "/var/lib/dpkg/status") {
		t.Errorf("warnings = %q", inv.Warnings)
	}
	found := false
	for _, pk := range inv.Packages {
		found = found || pk.Name == "stdlib" && pk.Location == "/app"
	}
	if !found {
		t.Errorf("the Go binary was not read after the bad status: %+v", inv.Packages)
	}
}
