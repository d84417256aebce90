// Command gen builds the starter vulnerability database (osv-starter.zip) from a
// directory of OSV records grouped by ecosystem (<Ecosystem>/<ID>.json), as found in the
// team's shared fixtures. See the starter package for the command line.
//
// Each record is re-encoded compactly (no indentation); nothing else changes. Members
// are sorted and carry a fixed time, so the same input always gives the same zip.
package main

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	src := flag.String("src", "../shared/fixtures/osv", "directory of OSV records, one subdirectory per ecosystem")
	out := flag.String("out", "internal/scan/vulndb/starter/osv-starter.zip", "zip to write")
	flag.Parse()
	if err := run(*src, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(src, out string) error {
	var names []string
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".json") {
			names = append(names, path)
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(names)
	var newest time.Time
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestCompression)
	})
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, path := range names {
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var rec struct {
			ID       string `json:"id"`
			Modified string `json:"modified"`
		}
		if err := json.Unmarshal(raw, &rec); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if rec.ID == "" {
			return fmt.Errorf("%s: record without an id", path)
		}
		// The Go records' modified time is a placeholder (year 1); the others date the
		// data.
		if t, err := time.Parse(time.RFC3339, rec.Modified); err == nil && t.Year() > 1 && t.After(newest) {
			newest = t
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: filepath.ToSlash(rel), Method: zip.Deflate, Modified: epoch})
		if err != nil {
			return err
		}
		if _, err := w.Write(compact.Bytes()); err != nil {
			return err
		}
	}
	if newest.IsZero() {
		newest = epoch
	}
	if err := zw.SetComment(newest.UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: %d records, %d bytes, data as of %s\n", out, len(names), buf.Len(), newest.Format(time.RFC3339))
	return nil
}
