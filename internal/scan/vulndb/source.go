package vulndb

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Bounds on what an import reads, against decompression bombs and runaway inputs. The
// largest real OSV record is a few hundred kilobytes; the largest per-ecosystem all.zip
// holds a few gigabytes of JSON.
var (
	maxRecordSize   int64 = 16 << 20
	maxZipTotal     int64 = 16 << 30
	maxZipMembers         = 4_000_000
	maxZipRatio     int64 = 500     // uncompressed:compressed, beyond which a member is a bomb
	ratioCheckAbove int64 = 1 << 20 // small members may compress better than that
)

// recordFunc receives one record's bytes; name says where it came from ("dir/x.json",
// "all.zip!GO-2024-1.json") for warnings.
type recordFunc func(name string, data []byte) error

// readPath feeds every record under path to fn: a directory (searched recursively for
// *.json records and *.zip archives), an all.zip, or one JSON record. Unreadable records
// and archives are reported to warn; only an unreadable path or fn's error ends it.
func readPath(ctx context.Context, path string, fn recordFunc, warn func(string)) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("read OSV records: %w", err)
	}
	if !fi.IsDir() {
		return readFile(ctx, path, fi, fn, warn)
	}
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			warn(fmt.Sprintf("%s: %v", p, err))
			if d != nil && d.IsDir() && p != path {
				return fs.SkipDir
			}
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		if !strings.HasSuffix(p, ".json") && !strings.HasSuffix(p, ".zip") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			warn(fmt.Sprintf("%s: %v", p, err))
			return nil
		}
		return readFile(ctx, p, info, fn, warn)
	})
}

func readFile(ctx context.Context, path string, fi fs.FileInfo, fn recordFunc, warn func(string)) error {
	if strings.HasSuffix(path, ".zip") {
		f, err := os.Open(path)
		if err != nil {
			warn(fmt.Sprintf("%s: %v", path, err))
			return nil
		}
		defer f.Close()
		return readZip(ctx, path, f, fi.Size(), fn, warn)
	}
	if fi.Size() > maxRecordSize {
		warn(fmt.Sprintf("%s: %d bytes, more than the %d a record may have; skipped", path, fi.Size(), maxRecordSize))
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		warn(fmt.Sprintf("%s: %v", path, err))
		return nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRecordSize+1))
	if err != nil {
		warn(fmt.Sprintf("%s: %v", path, err))
		return nil
	}
	if int64(len(data)) > maxRecordSize {
		warn(fmt.Sprintf("%s: grew past %d bytes while read; skipped", path, maxRecordSize))
		return nil
	}
	return fn(path, data)
}

// readZip feeds the *.json members of an archive to fn. Sizes in the archive's headers
// are not trusted: every member is read through a limit.
func readZip(ctx context.Context, name string, r io.ReaderAt, size int64, fn recordFunc, warn func(string)) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		warn(fmt.Sprintf("%s: not a readable zip archive: %v", name, err))
		return nil
	}
	if len(zr.File) > maxZipMembers {
		warn(fmt.Sprintf("%s: %d members, more than %d; skipped", name, len(zr.File), maxZipMembers))
		return nil
	}
	var total int64
	var buf bytes.Buffer
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		member := name + "!" + f.Name
		if f.FileInfo().IsDir() || !strings.HasSuffix(f.Name, ".json") {
			continue
		}
		if f.UncompressedSize64 > uint64(maxRecordSize) {
			warn(fmt.Sprintf("%s: %d bytes uncompressed, more than the %d a record may have; skipped", member, f.UncompressedSize64, maxRecordSize))
			continue
		}
		if int64(f.UncompressedSize64) > ratioCheckAbove && f.CompressedSize64 > 0 &&
			int64(f.UncompressedSize64)/int64(f.CompressedSize64) > maxZipRatio {
			warn(fmt.Sprintf("%s: compressed %d:1, a decompression bomb; skipped", member, f.UncompressedSize64/f.CompressedSize64))
			continue
		}
		rc, err := f.Open()
		if err != nil {
			warn(fmt.Sprintf("%s: %v", member, err))
			continue
		}
		buf.Reset()
		n, err := io.Copy(&buf, io.LimitReader(rc, maxRecordSize+1))
		rc.Close()
		total += n
		if total > maxZipTotal {
			warn(fmt.Sprintf("%s: more than %d bytes uncompressed in all; the rest of the archive is skipped", name, maxZipTotal))
			return nil
		}
		if err != nil {
			warn(fmt.Sprintf("%s: %v", member, err))
			continue
		}
		if n > maxRecordSize {
			warn(fmt.Sprintf("%s: more than %d bytes uncompressed (its header said %d); skipped", member, maxRecordSize, f.UncompressedSize64))
			continue
		}
		if err := fn(member, buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}
