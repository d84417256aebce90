package vulndb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultURL is the public OSV bucket; <DefaultURL>/<ecosystem>/all.zip holds every
// record of an ecosystem.
const DefaultURL = "https://osv-vulnerabilities.storage.googleapis.com"

// DefaultEcosystems are the ecosystems Update fetches unless told otherwise: those the
// inventory finds packages of.
var DefaultEcosystems = []string{"Alpine", "Debian", "Go", "Maven", "NuGet", "Packagist", "PyPI", "RubyGems", "crates.io", "npm"}

// Bounds on a download.
var (
	maxDownload     int64 = 4 << 30
	downloadTimeout       = 30 * time.Minute
)

// Update refreshes the database in dir from the OSV project: from "" (DefaultURL), a
// base URL (<from>/<ecosystem>/all.zip for each of DefaultEcosystems), the URL of one
// zip, or a local directory or file (as Import). Ecosystems that fail to download are
// warnings; Update fails only if none could be read.
func Update(ctx context.Context, dir, from string, log *slog.Logger) (ImportStats, error) {
	return UpdateEcosystems(ctx, dir, from, nil, log)
}

// UpdateEcosystems is Update for the given ecosystems (nil: DefaultEcosystems).
func UpdateEcosystems(ctx context.Context, dir, from string, ecosystems []string, log *slog.Logger) (ImportStats, error) {
	if log == nil {
		log = discard
	}
	if from == "" {
		from = DefaultURL
	}
	u, err := url.Parse(from)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" {
		return Import(ctx, dir, from, log)
	}
	if len(ecosystems) == 0 {
		ecosystems = DefaultEcosystems
	}
	tmpDir, err := os.MkdirTemp("", "vigil-osv-")
	if err != nil {
		return ImportStats{}, fmt.Errorf("update: %w", err)
	}
	defer os.RemoveAll(tmpDir)

	var urls []string
	if strings.HasSuffix(u.Path, ".zip") {
		urls = []string{from}
	} else {
		for _, eco := range ecosystems {
			urls = append(urls, strings.TrimSuffix(from, "/")+"/"+url.PathEscape(eco)+"/all.zip")
		}
	}
	client := &http.Client{Timeout: downloadTimeout}
	var inputs []input
	var failures []string
	for i, src := range urls {
		path := filepath.Join(tmpDir, fmt.Sprintf("%d.zip", i))
		lastMod, err := download(ctx, client, src, path)
		if err != nil {
			if ctx.Err() != nil {
				return ImportStats{}, ctx.Err()
			}
			log.Warn("vulnerability database: download failed", "url", src, "err", err)
			failures = append(failures, fmt.Sprintf("%s: %v", src, err))
			continue
		}
		log.Info("vulnerability database: downloaded", "url", src)
		inputs = append(inputs, input{name: src, path: path, dataTime: lastMod})
	}
	if len(inputs) == 0 {
		return ImportStats{}, fmt.Errorf("update from %s: nothing could be downloaded: %s", from, strings.Join(failures, "; "))
	}
	stats, err := importInputs(ctx, dir, inputs, log)
	stats.Warnings = append(failures, stats.Warnings...)
	return stats, err
}

// download fetches src into path, bounded by maxDownload, and returns the response's
// Last-Modified time (zero if absent).
func download(ctx context.Context, client *http.Client, src, path string) (time.Time, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return time.Time{}, err
	}
	req.Header.Set("User-Agent", "vigil-vulndb")
	resp, err := client.Do(req)
	if err != nil {
		return time.Time{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return time.Time{}, fmt.Errorf("HTTP %s", resp.Status)
	}
	if resp.ContentLength > maxDownload {
		return time.Time{}, fmt.Errorf("%d bytes, more than the %d allowed", resp.ContentLength, maxDownload)
	}
	f, err := os.Create(path)
	if err != nil {
		return time.Time{}, err
	}
	n, err := io.Copy(f, io.LimitReader(resp.Body, maxDownload+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return time.Time{}, err
	}
	if n > maxDownload {
		return time.Time{}, errors.New("larger than the download bound")
	}
	lm, _ := http.ParseTime(resp.Header.Get("Last-Modified"))
	return lm, nil
}
