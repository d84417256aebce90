package inventory

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

func token(t testing.TB) string {
	b := make([]byte, 8)
	_, err := rand.Read(b)
	must(t, err)
	return "vigil-escape-" + hex.EncodeToString(b)
}

// findToken reports any path under root whose name holds tok.
func findToken(root, tok string) []string {
	var hits []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if strings.Contains(d.Name(), tok) {
			hits = append(hits, p)
		}
		return nil
	})
	return hits
}

// A hostile image tries every way out of the scan's temporary directory: traversal,
// absolute names, a symlinked parent directory, hard links to host files, symlinks to
// host files. Nothing may be written outside the temporary directory, nothing may be
// left in it, and no host file may be read as if it were the image's.
func TestHostileImageNothingEscapes(t *testing.T) {
	tok := token(t)
	outside := t.TempDir() // where an escape would land
	tmp := t.TempDir()
	bigGo := readFile(t, "/root/go/bin/staticcheck") // over memLimit: copied to a temp file
	if len(bigGo) <= memLimit {
		t.Fatalf("staticcheck is %d bytes; the test needs a binary over %d", len(bigGo), memLimit)
	}
	rel, err := filepath.Rel(tmp, outside)
	must(t, err)
	layer := tarOf(t, []entry{
		reg("../../../../../../.."+outside+"/"+tok+"-traversal", []byte("x")),
		reg(rel+"/"+tok+"-relative-to-tmp", []byte("x")),
		reg(outside+"/"+tok+"-absolute", []byte("x")),
		symlink("escape", outside),
		reg("escape/"+tok+"-through-symlink", []byte("x")),
		exe("escape/"+tok+"-binary", bigGo),
		exe("../../../../"+outside+"/"+tok+"-bin2", bigGo),
		// Host files by hard link and symlink: must not be read as the image's.
		hardlink("var/lib/dpkg/status", "../../../../../../../var/lib/dpkg/status"),
		hardlink("usr/lib/os-release", "/etc/os-release"),
		symlink("etc/os-release", "/etc/os-release"),
	})
	im := testImage{layers: [][]byte{layer}}
	archive := filepath.Join(outside, "hostile.tar")
	im.dockerSave(t, archive, "hostile:1")

	inv, err := ScanImage(context.Background(), archive, Options{TempDir: tmp})
	must(t, err)
	if hits := findToken(filepath.Dir(outside), tok); len(hits) > 0 {
		t.Errorf("files written outside the temporary directory: %v", hits)
	}
	if hits := findToken("/tmp", tok); len(hits) > 0 {
		t.Errorf("files written under /tmp: %v", hits)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if inv.OS != nil {
		t.Errorf("OS %+v read from a host file", inv.OS)
	}
	if len(inv.Packages) == 0 {
		t.Error("the Go binaries of the image were not read")
	}
	for _, p := range inv.Packages {
		if p.Ecosystem != "Go" {
			t.Errorf("package from a host file: %+v", p)
		}
		if !strings.Contains(p.Location, tok) {
			t.Errorf("Go package at %s", p.Location)
		}
	}
	var links int
	for _, w := range inv.Warnings {
		if strings.Contains(w, "hard link") {
			links++
		}
	}
	if links != 2 {
		t.Errorf("warnings %q: want the two hard links to host files named", inv.Warnings)
	}
}

// gzipZeros is a gzip stream of a tar whose single entry declares size bytes and holds
// zeros: a decompression bomb.
func gzipZeros(t testing.TB, declared, written int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	must(t, err)
	tw := tar.NewWriter(zw)
	must(t, tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Size: declared, Mode: 0o755, Format: tar.FormatPAX}))
	zeros := make([]byte, 1<<20)
	for n := int64(0); n < written; n += int64(len(zeros)) {
		_, err := tw.Write(zeros)
		must(t, err)
	}
	tw.Flush()
	must(t, zw.Close()) // the tar is left unfinished: the entry is shorter than declared
	return buf.Bytes()
}

// bombArchive writes a docker save archive whose one layer is given as is (no
// recompression).
func bombArchive(t testing.TB, p string, layer []byte) {
	t.Helper()
	cfg := []byte(`{"rootfs":{"type":"layers","diff_ids":["sha256:` + strings.Repeat("ab", 32) + `"]}}`)
	man := []byte(`[{"Config":"config.json","RepoTags":["bomb:1"],"Layers":["l/layer.tar"]}]`)
	must(t, os.WriteFile(p, tarOf(t, []entry{reg("l/layer.tar", layer), reg("config.json", cfg), reg("manifest.json", man)}), 0o644))
}

func peakHeap(t testing.TB, f func()) uint64 {
	t.Helper()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var max uint64
		var ms runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > max {
				max = ms.HeapInuse
			}
			select {
			case <-stop:
				peak <- max
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	return <-peak
}

func TestDecompressionBomb(t *testing.T) {
	dir := t.TempDir()
	// 1 TiB declared, 300 MiB of zeros actually inflated (300 KiB compressed): the
	// inflation ratio gives it away before the layer bound.
	p := filepath.Join(dir, "bomb.tar")
	bombArchive(t, p, gzipZeros(t, 1<<40, 300<<20))
	var err error
	peak := peakHeap(t, func() { _, err = ScanImage(context.Background(), p, Options{TempDir: dir}) })
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "decompression bomb") {
		t.Errorf("err = %v, want a decompression bomb error", err)
	}
	if peak > 64<<20 {
		t.Errorf("peak heap %d MiB while reading a bomb", peak>>20)
	}

	// The uncompressed layer bound.
	_, err = ScanImage(context.Background(), p, Options{TempDir: dir, MaxLayerSize: 32 << 20})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "uncompressed size") {
		t.Errorf("err = %v, want the layer size bound", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("temporary files left: %v", left)
	}
}

// The same bomb compressed with zstd (which packs zeros far tighter than gzip), and a zstd
// frame that asks for a window beyond the decoder's bound.
func TestDecompressionBombZstd(t *testing.T) {
	dir := t.TempDir()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	must(t, tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Size: 1 << 40, Mode: 0o755, Format: tar.FormatPAX}))
	zeros := make([]byte, 1<<20)
	var layer bytes.Buffer
	w, err := zstd.NewWriter(&layer, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	must(t, err)
	_, err = w.Write(raw.Bytes())
	must(t, err)
	for n := 0; n < 300; n++ {
		_, err := w.Write(zeros)
		must(t, err)
	}
	must(t, w.Close())
	p := filepath.Join(dir, "bomb.tar")
	bombArchive(t, p, layer.Bytes())
	var scanErr error
	peak := peakHeap(t, func() { _, scanErr = ScanImage(context.Background(), p, Options{TempDir: dir}) })
	if !errors.Is(scanErr, ErrTooLarge) || !strings.Contains(scanErr.Error(), "decompression bomb") {
		t.Errorf("err = %v, want a decompression bomb error", scanErr)
	}
	if peak > 64<<20 {
		t.Errorf("peak heap %d MiB while reading a zstd bomb", peak>>20)
	}

	// A frame header declaring a 2 GiB window (Window_Descriptor exponent 21): refused.
	huge := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3, 0, 0, 0, 0, 0, 0}
	q := filepath.Join(dir, "window.tar")
	bombArchive(t, q, huge)
	if _, err := ScanImage(context.Background(), q, Options{TempDir: dir}); err == nil {
		t.Error("a zstd frame with a 2 GiB window was accepted")
	}
}

// A file over MaxFileSize is skipped with a warning naming it; the rest is scanned.
func TestHugeFileSkipped(t *testing.T) {
	dir := t.TempDir()
	im := testImage{layers: [][]byte{tarOf(t, []entry{
		reg("var/lib/dpkg/status", readFile(t, "/var/lib/dpkg/status")),
		reg("app/node_modules/a/package.json", []byte(`{"name":"a","version":"1.0.0"}`)),
	})}}
	p := filepath.Join(dir, "img.tar")
	im.dockerSave(t, p, "h:1")
	inv, err := ScanImage(context.Background(), p, Options{TempDir: dir, MaxFileSize: 4096})
	must(t, err)
	if len(inv.Packages) != 1 || inv.Packages[0].Name != "a" {
		t.Errorf("packages = %+v", inv.Packages)
	}
	if len(inv.Warnings) != 1 || !strings.Contains(inv.Warnings[0], "/var/lib/dpkg/status") || !strings.Contains(inv.Warnings[0], "bound") {
		t.Errorf("warnings = %q", inv.Warnings)
	}
}

// A root scan never follows a symlink out of the root: absolute and relative links to a
// directory and to files outside hold real package data that must not be read.
func TestScanDirSymlinkEscape(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, []entry{
		reg("var/lib/dpkg/status", readFile(t, "/var/lib/dpkg/status")),
		reg("etc/os-release", readFile(t, "/etc/os-release")),
		reg("node_modules/evil/package.json", []byte(`{"name":"evil","version":"6.6.6"}`)),
	})
	root := t.TempDir()
	rel, err := filepath.Rel(filepath.Join(root, "usr/lib"), filepath.Join(outside, "etc/os-release"))
	must(t, err)
	writeTree(t, root, []entry{
		symlink("var/lib/dpkg", filepath.Join(outside, "var/lib/dpkg")),
		symlink("etc", filepath.Join(outside, "etc")),
		symlink("usr/lib/os-release", rel),
		symlink("srv/node_modules", filepath.Join(outside, "node_modules")),
		symlink("srv/app/node_modules/evil/package.json", filepath.Join(outside, "node_modules/evil/package.json")),
		reg("srv/app/node_modules/good/package.json", []byte(`{"name":"good","version":"1.0.0"}`)),
	})
	inv, err := ScanRoot(context.Background(), "dir", root, Options{})
	must(t, err)
	if inv.OS != nil {
		t.Errorf("OS %+v read through a symlink out of the root", inv.OS)
	}
	if len(inv.Packages) != 1 || inv.Packages[0].Name != "good" || inv.Packages[0].Location != "/srv/app/node_modules/good/package.json" {
		t.Errorf("packages = %+v, want only the one inside the root", inv.Packages)
	}
}

// A nested jar bomb is bounded: an entry that inflates past the bound is a warning.
func TestJarBomb(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("META-INF/maven/g/a/pom.properties")
	must(t, err)
	_, err = io.Copy(w, io.LimitReader(zeroReader{}, 64<<20))
	must(t, err)
	must(t, zw.Close())
	dir := t.TempDir()
	writeTree(t, dir, []entry{reg("app/bomb.jar", buf.Bytes())})
	peak := peakHeap(t, func() {
		inv, err := ScanRoot(context.Background(), "dir", dir, Options{})
		must(t, err)
		if len(inv.Warnings) != 1 || !strings.Contains(inv.Warnings[0], "bomb.jar") || !strings.Contains(inv.Warnings[0], "inflates") {
			t.Errorf("warnings = %q", inv.Warnings)
		}
	})
	if peak > 48<<20 {
		t.Errorf("peak heap %d MiB", peak>>20)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
