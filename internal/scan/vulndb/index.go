package vulndb

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"

	"github.com/vigil-sec/vigil/internal/scan/vulndb/starter"
)

// The index layout. Bump schemaVersion whenever what is stored changes meaning; Open
// then rebuilds an index seeded only from the starter database and asks for a new
// import otherwise.
const (
	schemaVersion = 1
	indexFile     = "index.db"
	lockFile      = ".import.lock"
	// StarterSource is the source name of the records compiled into the binary.
	StarterSource = "starter"
)

var (
	bucketMeta    = []byte("meta")    // schema, counts, records
	bucketPkgs    = []byte("pkgs")    // base \0 name \0 id → flate(JSON entry)
	bucketIDs     = []byte("ids")     // id → JSON idInfo
	bucketSources = []byte("sources") // source name → JSON Source
	keySchema     = []byte("schema")
	keyCounts     = []byte("counts")
	keyRecords    = []byte("records")
)

// ErrNoIndex says a directory holds no index and Open was not allowed to seed one.
var ErrNoIndex = errors.New("no vulnerability database")

// ErrSchema says the index was built by a Vigil with another index layout.
var ErrSchema = errors.New("vulnerability database from another version of vigil")

// ErrDamaged says index.db cannot be read.
var ErrDamaged = errors.New("vulnerability database damaged")

// idInfo is what the index remembers of a record id: where its entries are, so that a
// new version of the record replaces them.
type idInfo struct {
	Keys       []string `json:"k"`
	Ecosystems []string `json:"e"`
	Source     string   `json:"s"`
}

// Source is one imported source of records.
type Source struct {
	Name       string    `json:"name"` // "starter", a path or a URL
	ImportedAt time.Time `json:"imported_at"`
	// DataTime is how new the data is: the newest record's modified time (never after
	// the import), else the import time.
	DataTime   time.Time      `json:"data_time"`
	Records    int            `json:"records"`
	Withdrawn  int            `json:"withdrawn,omitempty"`
	Skipped    int            `json:"skipped,omitempty"`
	Ecosystems map[string]int `json:"ecosystems"`
}

// ImportStats says what an Import or Update did.
type ImportStats struct {
	Sources    []Source       `json:"sources"`
	Records    int            `json:"records"`   // records imported (new or replaced)
	Withdrawn  int            `json:"withdrawn"` // withdrawn records, removed if present
	Skipped    int            `json:"skipped"`   // records that could not be read
	Ecosystems map[string]int `json:"ecosystems"`
	Warnings   []string       `json:"warnings,omitempty"` // the first maxWarnings
	Duration   time.Duration  `json:"duration_ns"`
}

const maxWarnings = 100

// DefaultDir is where the database lives unless told otherwise.
func DefaultDir() string { return "/var/lib/vigil/vulndb" }

// input is one source to import: a path, or bytes (the starter, a download).
type input struct {
	name     string
	path     string
	data     []byte
	dataTime time.Time // a floor for DataTime (an HTTP Last-Modified)
}

// Import adds the OSV records at path (a directory of JSON records, searched
// recursively, an all.zip, or a directory of <Ecosystem>/all.zip) to the database in
// dir, creating it if needed. A record already present (same id) is replaced; a
// withdrawn record is removed. Unreadable records are warnings, logged and counted.
func Import(ctx context.Context, dir, path string, log *slog.Logger) (ImportStats, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ImportStats{}, fmt.Errorf("import %s: %w", path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return ImportStats{}, fmt.Errorf("import: %w", err)
	}
	return importInputs(ctx, dir, []input{{name: abs, path: abs}}, log)
}

// importInputs builds a new index from the current one plus inputs, and renames it into
// place.
func importInputs(ctx context.Context, dir string, inputs []input, log *slog.Logger) (ImportStats, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ImportStats{}, fmt.Errorf("vulnerability database directory: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return ImportStats{}, err
	}
	defer unlock()

	final := filepath.Join(dir, indexFile)
	if len(inputs) == 1 && inputs[0].name == StarterSource && currentIndex(final) {
		// Another process seeded it while this one waited for the lock.
		return ImportStats{}, nil
	}
	tmp, err := os.CreateTemp(dir, indexFile+".new-*")
	if err != nil {
		return ImportStats{}, fmt.Errorf("vulnerability database: %w", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName) // a no-op once renamed
	fresh, err := copyIndex(final, tmpName)
	if err != nil {
		return ImportStats{}, err
	}
	bdb, err := bolt.Open(tmpName, 0o644, &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return ImportStats{}, fmt.Errorf("vulnerability database %s: %w", tmpName, err)
	}
	bdb.NoSync = true // one fsync at the end: a failed import leaves the old index
	im := &importer{bdb: bdb, log: log, stats: ImportStats{Ecosystems: map[string]int{}}}
	err = im.run(ctx, fresh, inputs)
	if err == nil {
		err = bdb.Sync()
	}
	if cerr := bdb.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return ImportStats{}, err
	}
	if err := os.Chmod(tmpName, 0o644); err != nil {
		return ImportStats{}, err
	}
	if err := os.Rename(tmpName, final); err != nil {
		return ImportStats{}, fmt.Errorf("vulnerability database: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable; best effort on filesystems that refuse
		d.Close()
	}
	im.stats.Duration = time.Since(start)
	log.Info("vulnerability database updated", "dir", dir, "records", im.stats.Records,
		"withdrawn", im.stats.Withdrawn, "skipped", im.stats.Skipped, "duration", im.stats.Duration.Round(time.Millisecond))
	return im.stats, nil
}

// currentIndex says whether path is an index of this schema.
func currentIndex(path string) bool {
	bdb, err := openReadOnly(path)
	if err != nil {
		return false
	}
	defer bdb.Close()
	schema, _, err := indexSchema(bdb)
	return err == nil && schema == schemaVersion
}

// lockDir keeps two writers of one directory apart (readers need no lock).
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("vulnerability database lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("vulnerability database lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// copyIndex copies the current index to tmp through a read transaction (a consistent
// snapshot even while readers use it). fresh is true when there was none, or it was of
// another schema and held only the starter records, which are then imported again.
func copyIndex(final, tmp string) (fresh bool, err error) {
	if _, err := os.Stat(final); errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	src, err := openReadOnly(final)
	if err != nil {
		return false, err
	}
	defer src.Close()
	schema, onlyStarter, err := indexSchema(src)
	if err != nil {
		return false, err
	}
	if schema != schemaVersion {
		if onlyStarter {
			return true, nil
		}
		return false, fmt.Errorf("%w: %s has index schema %d, this vigil writes %d; move it aside and import the sources again",
			ErrSchema, final, schema, schemaVersion)
	}
	return false, guard(final, func() error {
		return src.View(func(tx *bolt.Tx) error { return tx.CopyFile(tmp, 0o644) })
	})
}

// indexSchema reads the schema version and whether the starter is the only source.
func indexSchema(bdb *bolt.DB) (schema int, onlyStarter bool, err error) {
	err = guard(bdb.Path(), func() error {
		return bdb.View(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			if meta == nil {
				return fmt.Errorf("%w: %s has no meta bucket", ErrDamaged, bdb.Path())
			}
			if _, err := fmt.Sscan(string(meta.Get(keySchema)), &schema); err != nil {
				return fmt.Errorf("%w: %s: schema: %v", ErrDamaged, bdb.Path(), err)
			}
			onlyStarter = true
			if b := tx.Bucket(bucketSources); b != nil {
				_ = b.ForEach(func(k, _ []byte) error {
					if string(k) != StarterSource {
						onlyStarter = false
					}
					return nil
				})
			}
			return nil
		})
	})
	return schema, onlyStarter, err
}

// openReadOnly opens an index for reading. bbolt trusts the file's page offsets, so a
// damaged file can fault; that becomes ErrDamaged rather than a crash.
func openReadOnly(path string) (bdb *bolt.DB, err error) {
	err = guard(path, func() error {
		var oerr error
		bdb, oerr = bolt.Open(path, 0o444, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
		switch {
		case oerr == nil:
			return nil
		case errors.Is(oerr, bolterrors.ErrInvalid), errors.Is(oerr, bolterrors.ErrChecksum),
			errors.Is(oerr, bolterrors.ErrVersionMismatch), errors.Is(oerr, bolterrors.ErrInvalidMapping):
			return fmt.Errorf("%w: %s: %v; remove it and run 'vigil db update'", ErrDamaged, path, oerr)
		}
		return fmt.Errorf("open vulnerability database %s: %w", path, oerr)
	})
	return bdb, err
}

// guard turns a fault or panic inside bbolt, which a damaged file can cause, into
// ErrDamaged.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %s: %v; remove it and run 'vigil db update'", ErrDamaged, path, p)
		}
	}()
	return fn()
}

// importer applies records to the new index in batches.
type importer struct {
	bdb   *bolt.DB
	log   *slog.Logger
	stats ImportStats

	src     *Source
	pending []pendingRecord
	zbuf    bytes.Buffer
	zw      *flate.Writer
}

type pendingRecord struct {
	id      string
	entries map[pkgKey]*entry // nil: withdrawn
}

const batchSize = 2000

func (im *importer) run(ctx context.Context, fresh bool, inputs []input) error {
	err := im.bdb.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketPkgs, bucketIDs, bucketSources} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(fmt.Sprint(schemaVersion)))
	})
	if err != nil {
		return fmt.Errorf("vulnerability database: %w", err)
	}
	if fresh && !slices.ContainsFunc(inputs, func(in input) bool { return in.name == StarterSource }) {
		// A new database starts from the starter records, so that importing one
		// ecosystem does not lose the others a fresh install had.
		inputs = append([]input{starterInput()}, inputs...)
	}
	im.zw, _ = flate.NewWriter(&im.zbuf, flate.BestSpeed)
	for _, in := range inputs {
		if err := im.importOne(ctx, in); err != nil {
			return err
		}
	}
	return im.bdb.Update(im.writeCounts)
}

func starterInput() input {
	in := input{name: StarterSource, data: starter.Zip}
	return in
}

func (im *importer) warn(msg string) {
	im.log.Warn("vulnerability database: " + msg)
	if len(im.stats.Warnings) < maxWarnings {
		im.stats.Warnings = append(im.stats.Warnings, msg)
	}
}

func (im *importer) importOne(ctx context.Context, in input) error {
	now := time.Now().UTC()
	im.src = &Source{Name: in.name, ImportedAt: now, Ecosystems: map[string]int{}}
	var newest time.Time
	fn := func(name string, data []byte) error {
		id, entries, modified, err := decodeRecord(data)
		switch {
		case errors.Is(err, errWithdrawn):
			im.src.Withdrawn++
			im.pending = append(im.pending, pendingRecord{id: id})
		case err != nil:
			im.src.Skipped++
			im.warn(fmt.Sprintf("%s: %v", name, err))
			return nil
		default:
			im.src.Records++
			seen := map[string]bool{}
			for k := range entries {
				if !seen[k.base] {
					seen[k.base] = true
					im.src.Ecosystems[k.base]++
				}
			}
			im.pending = append(im.pending, pendingRecord{id: id, entries: entries})
		}
		if modified.After(newest) {
			newest = modified
		}
		if len(im.pending) >= batchSize {
			return im.flush()
		}
		return nil
	}
	var err error
	if in.data != nil {
		err = readZip(ctx, in.name, bytes.NewReader(in.data), int64(len(in.data)), fn, im.warn)
	} else {
		err = readPath(ctx, in.path, fn, im.warn)
	}
	if err == nil {
		err = im.flush()
	}
	if err != nil {
		return err
	}
	im.src.DataTime = now
	if in.name == StarterSource {
		im.src.DataTime = starterTime()
	} else if !newest.IsZero() && newest.Before(now) {
		im.src.DataTime = newest.UTC()
	}
	if in.dataTime.After(im.src.DataTime) && !in.dataTime.After(now) {
		im.src.DataTime = in.dataTime.UTC()
	}
	im.stats.Records += im.src.Records
	im.stats.Withdrawn += im.src.Withdrawn
	im.stats.Skipped += im.src.Skipped
	for eco, n := range im.src.Ecosystems {
		im.stats.Ecosystems[eco] += n
	}
	im.stats.Sources = append(im.stats.Sources, *im.src)
	return im.bdb.Update(func(tx *bolt.Tx) error {
		data, err := json.Marshal(im.src)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketSources).Put([]byte(in.name), data)
	})
}

// starterTime is the date of the starter data, written by its generator as the zip's
// comment.
func starterTime() time.Time {
	data := starter.Zip
	// The end of central directory record ends the file: 22 bytes, then the comment.
	if i := bytes.LastIndex(data, []byte("PK\x05\x06")); i >= 0 && len(data) >= i+22 {
		if t, err := time.Parse(time.RFC3339, string(data[i+22:])); err == nil {
			return t
		}
	}
	return time.Time{}
}

// flush writes the pending records in one transaction: each replaces what the index
// held under its id.
func (im *importer) flush() error {
	if len(im.pending) == 0 {
		return nil
	}
	err := im.bdb.Update(func(tx *bolt.Tx) error {
		pkgs, ids := tx.Bucket(bucketPkgs), tx.Bucket(bucketIDs)
		for _, p := range im.pending {
			if old := ids.Get([]byte(p.id)); old != nil {
				var info idInfo
				if err := json.Unmarshal(old, &info); err != nil {
					return fmt.Errorf("%w: id %s: %v", ErrDamaged, p.id, err)
				}
				for _, k := range info.Keys {
					if err := pkgs.Delete([]byte(k + "\x00" + p.id)); err != nil {
						return err
					}
				}
				if err := ids.Delete([]byte(p.id)); err != nil {
					return err
				}
			}
			if p.entries == nil {
				continue
			}
			info := idInfo{Source: im.src.Name}
			keys := make([]pkgKey, 0, len(p.entries))
			for k := range p.entries {
				keys = append(keys, k)
			}
			sort.Slice(keys, func(i, j int) bool {
				return keys[i].base < keys[j].base || keys[i].base == keys[j].base && keys[i].name < keys[j].name
			})
			for _, k := range keys {
				prefix := k.base + "\x00" + k.name
				val, err := im.compress(p.entries[k])
				if err != nil {
					return err
				}
				if err := pkgs.Put([]byte(prefix+"\x00"+p.id), val); err != nil {
					return err
				}
				info.Keys = append(info.Keys, prefix)
				if !slices.Contains(info.Ecosystems, k.base) {
					info.Ecosystems = append(info.Ecosystems, k.base)
				}
			}
			data, err := json.Marshal(info)
			if err != nil {
				return err
			}
			if err := ids.Put([]byte(p.id), data); err != nil {
				return err
			}
		}
		return nil
	})
	im.pending = im.pending[:0]
	if err != nil {
		return fmt.Errorf("vulnerability database: %w", err)
	}
	return nil
}

func (im *importer) compress(e *entry) ([]byte, error) {
	raw, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	im.zbuf.Reset()
	im.zw.Reset(&im.zbuf)
	if _, err := im.zw.Write(raw); err != nil {
		return nil, err
	}
	if err := im.zw.Close(); err != nil {
		return nil, err
	}
	return bytes.Clone(im.zbuf.Bytes()), nil
}

// writeCounts stores the number of records per ecosystem, counted over all ids.
func (im *importer) writeCounts(tx *bolt.Tx) error {
	counts := map[string]int{}
	err := tx.Bucket(bucketIDs).ForEach(func(_, v []byte) error {
		var info idInfo
		if err := json.Unmarshal(v, &info); err != nil {
			return err
		}
		for _, e := range info.Ecosystems {
			counts[e]++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	data, err := json.Marshal(counts)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketMeta).Put(keyRecords, []byte(fmt.Sprint(tx.Bucket(bucketIDs).Stats().KeyN))); err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(keyCounts, data)
}

// decompress inflates a stored entry, reusing r.
type inflater struct {
	r   io.ReadCloser
	buf bytes.Buffer
}

func (f *inflater) entry(data []byte, e *entry) error {
	br := bytes.NewReader(data)
	if f.r == nil {
		f.r = flate.NewReader(br)
	} else if err := f.r.(flate.Resetter).Reset(br, nil); err != nil {
		return err
	}
	f.buf.Reset()
	if _, err := io.Copy(&f.buf, io.LimitReader(f.r, maxRecordSize)); err != nil {
		return err
	}
	return json.Unmarshal(f.buf.Bytes(), e)
}

// isPermission says whether err means the directory cannot be written by this user.
func isPermission(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES)
}

// keyPrefix is the index key prefix of one package's records.
func keyPrefix(base, name string) []byte {
	return []byte(base + "\x00" + name + "\x00")
}

func splitKey(k []byte) (base, name, id string) {
	parts := strings.SplitN(string(k), "\x00", 3)
	if len(parts) != 3 {
		return "", "", ""
	}
	return parts[0], parts[1], parts[2]
}
