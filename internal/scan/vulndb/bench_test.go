package vulndb

import (
	"context"
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/vigil-sec/vigil/internal/scan"
)

// benchPackages builds n packages from the names the starter holds (low versions, so
// that most ranges match: the expensive case), padded with names that have no records,
// as most of an image's packages do.
func benchPackages(b *testing.B, db *DB, n int) []scan.Package {
	b.Helper()
	var pkgs []scan.Package
	quota := map[string]int{"Go": n * 2 / 5, "crates.io": n / 5, "Debian": n / 5}
	low := map[string]string{"Go": "v0.0.1", "crates.io": "0.0.1", "Debian": "0.1-1"}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		seen := map[string]bool{}
		return tx.Bucket(bucketPkgs).ForEach(func(k, _ []byte) error {
			base, name, _ := splitKey(k)
			if seen[base+name] || quota[base] == 0 {
				return nil
			}
			seen[base+name] = true
			quota[base]--
			eco := base
			if base == "Debian" {
				eco = "Debian:12"
			}
			pkgs = append(pkgs, scan.Package{Name: name, Version: low[base], Ecosystem: eco})
			return nil
		})
	})
	if err != nil {
		b.Fatal(err)
	}
	pkgs = append(pkgs, scan.Package{Name: "stdlib", Version: "1.20.1", Ecosystem: "Go"})
	for i := 0; len(pkgs) < n; i++ {
		pkgs = append(pkgs, scan.Package{Name: fmt.Sprintf("libnothing%d", i), Version: "1.0-1", Ecosystem: "Debian:12", SourceName: fmt.Sprintf("nothing%d", i)})
	}
	return pkgs
}

func BenchmarkMatch500(b *testing.B) {
	db, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	pkgs := benchPackages(b, db, 500)
	fs, _, err := db.Match(pkgs)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := db.Match(pkgs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(fs)), "findings")
}

func BenchmarkImportStarter(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		dir := b.TempDir()
		if _, err := importInputs(context.Background(), dir, []input{starterInput()}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
