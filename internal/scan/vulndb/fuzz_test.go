package vulndb

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-sec/vigil/internal/scan"
	"github.com/vigil-sec/vigil/internal/scan/vulndb/version"
)

// FuzzRecord feeds arbitrary bytes through record decoding and range evaluation: an
// error is fine, a panic is not.
func FuzzRecord(f *testing.F) {
	files, _ := filepath.Glob("testdata/osv/*/*.json")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data, "1.0.0")
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, ver string) {
		_, entries, _, err := decodeRecord(data)
		if err != nil {
			return
		}
		m := matcher{cache: map[string][]entry{}, parsed: map[parseKey]parsed{}, warned: map[string]bool{}}
		for k, e := range entries {
			for i := range e.Affected {
				a := &e.Affected[i]
				scheme, known := version.ForEcosystem(a.Ecosystem)
				p := &scan.Package{Name: k.name, Version: ver, Ecosystem: a.Ecosystem}
				m.affects(e.ID, a, scheme, known, p, ver)
			}
		}
	})
}
