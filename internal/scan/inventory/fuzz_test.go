package inventory

import (
	"archive/zip"
	"bytes"
	"compress/zlib"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// Every parser of target content must return an error, never panic, on any input.

func FuzzDpkgStatus(f *testing.F) {
	f.Add([]byte("Package: a\nStatus: install ok installed\nVersion: 1.0\nSource: b (2.0)\n\n"))
	f.Add([]byte("Package: a\n x\n\n\n:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseDpkgStatus(bytes.NewReader(b), dpkgDir)
		parseFileList(b, "md5sums")
	})
}

func FuzzApkInstalled(f *testing.F) {
	f.Add(readFile(f, "testdata/apk/installed"))
	f.Fuzz(func(t *testing.T, b []byte) { parseApkInstalled(bytes.NewReader(b)) })
}

func FuzzOSRelease(f *testing.F) {
	f.Add(readFile(f, "/etc/os-release"))
	f.Fuzz(func(t *testing.T, b []byte) { parseOSRelease(bytes.NewReader(b)) })
}

func FuzzLangManifests(f *testing.F) {
	for _, p := range []string{"testdata/lang/Cargo.lock", "testdata/lang/composer.lock", "testdata/lang/app.deps.json", "testdata/lang/rake-13.0.6.gemspec"} {
		f.Add(readFile(f, p))
	}
	f.Add([]byte(`{"lockfileVersion":3,"packages":{"node_modules/a":{"version":"1"}},"dependencies":{"b":{"version":"2","dependencies":{"c":{"version":"3"}}}}}`))
	f.Add([]byte("Metadata-Version: 2.1\nName: x\nVersion: 1\n\nbody"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseCargoLock(b)
		parseComposerLock(b)
		parseDepsJSON(b)
		parseNpmLock(b)
		parsePythonMetadata(b)
		parseProperties(b)
		manifestRecord(parseManifest(b), "x-1.0.jar")
		s := newSession(Options{})
		s.opts.defaults()
		gemspecExtractor{}.extract(context.Background(), s, &file{path: "/specifications/x.gemspec", size: int64(len(b)), data: b})
	})
}

func FuzzRustAudit(f *testing.F) {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write([]byte(`{"packages":[{"name":"a","version":"1.0.0","source":"crates.io"}]}`))
	zw.Close()
	f.Add(z.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) { parseRustAudit(bytes.NewReader(b), "/x") })
}

func FuzzJar(f *testing.F) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("META-INF/maven/g/a/pom.properties")
	w.Write([]byte("groupId=g\nartifactId=a\nversion=1\n"))
	w, _ = zw.Create("META-INF/MANIFEST.MF")
	w.Write([]byte("Manifest-Version: 1.0\nImplementation-Version: 1\n"))
	zw.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		s := newSession(Options{})
		s.opts.defaults()
		javaExtractor{}.extract(context.Background(), s, &file{path: "/a.jar", size: int64(len(b)), data: b})
	})
}

// FuzzImageArchive feeds arbitrary bytes as a `docker save` archive, and as a layer of
// a valid archive: errors are fine, panics and escapes are not.
func FuzzImageArchive(f *testing.F) {
	im := testImage{layers: [][]byte{tarOf(f, []entry{
		reg("etc/os-release", []byte("ID=debian\nVERSION_ID=12\n")),
		reg("var/lib/dpkg/status", []byte("Package: a\nVersion: 1\n\n")),
		whiteout("usr", "x"), opaque("opt"), symlink("l", "/etc"), hardlink("h", "etc/os-release"),
	})}}
	dir := f.TempDir()
	p := filepath.Join(dir, "seed.tar")
	im.dockerSave(f, p, "seed:1")
	f.Add(readFile(f, p), im.layers[0])
	f.Fuzz(func(t *testing.T, archive, layer []byte) {
		tmp := t.TempDir()
		a := filepath.Join(tmp, "a.tar")
		if err := os.WriteFile(a, archive, 0o644); err != nil {
			t.Fatal(err)
		}
		o := Options{TempDir: tmp, MaxLayerSize: 8 << 20, MaxFileSize: 1 << 20}
		ScanImage(context.Background(), a, o)
		l := testImage{layers: [][]byte{layer}}
		b := filepath.Join(tmp, "b.tar")
		l.dockerSave(t, b, "f:1")
		ScanImage(context.Background(), b, o)
		left, _ := os.ReadDir(tmp)
		if len(left) != 2 {
			t.Fatalf("temporary files left: %v", left)
		}
	})
}
