package inventory

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// benchImage composes a gzip-layered image of about 100 MB (uncompressed) from real
// files: shared libraries, the dpkg database with its file lists, and Go binaries.
func benchImage(b *testing.B) (string, int64) {
	b.Helper()
	var libs []entry
	var size int64
	filepath.WalkDir("/usr/lib/x86_64-linux-gnu", func(p string, d fs.DirEntry, err error) error {
		if err != nil || size > 80<<20 {
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		body, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		size += int64(len(body))
		libs = append(libs, entry{name: p[1:], body: body, mode: 0o644})
		return nil
	})
	db := []entry{reg("etc/os-release", readFile(b, "/etc/os-release")), reg("var/lib/dpkg/status", readFile(b, "/var/lib/dpkg/status"))}
	lists, _ := filepath.Glob("/var/lib/dpkg/info/*.list")
	for _, l := range lists {
		body := readFile(b, l)
		size += int64(len(body))
		db = append(db, reg("var/lib/dpkg/info/"+filepath.Base(l), body))
	}
	bins := []entry{exe("usr/bin/staticcheck", readFile(b, "/root/go/bin/staticcheck")), exe("app", readFile(b, realGoBinary(b)))}
	for _, e := range bins {
		size += int64(len(e.body))
	}
	im := testImage{layers: [][]byte{tarOf(b, libs), tarOf(b, db), tarOf(b, bins)}, gzip: true}
	p := filepath.Join(b.TempDir(), "bench.tar")
	im.dockerSave(b, p, "bench:1")
	return p, size
}

// BenchmarkScanImage100MB reports the time, allocations, peak heap and the process's
// peak RSS to inventory a ~100 MB image.
func BenchmarkScanImage100MB(b *testing.B) {
	p, size := benchImage(b)
	tmp := b.TempDir()
	b.SetBytes(size)
	b.ReportAllocs()
	var peak uint64
	var pkgs int
	b.ResetTimer()
	for b.Loop() {
		h := peakHeap(b, func() {
			inv, err := ScanImage(context.Background(), p, Options{TempDir: tmp})
			if err != nil {
				b.Fatal(err)
			}
			pkgs = len(inv.Packages)
		})
		peak = max(peak, h)
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MiB")
	b.ReportMetric(float64(pkgs), "packages")
}
