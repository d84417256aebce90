package vulndb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DB is an open vulnerability database, read-only. It is safe for concurrent use by
// multiple goroutines.
type DB struct {
	dir  string
	path string
	bolt *bolt.DB
	// tempDir is set when the index was seeded into a temporary directory because dir
	// could not be written; Close removes it.
	tempDir string
}

// Open opens the database in dir. A directory without an index is seeded from the
// starter database compiled into the binary (into a temporary directory when dir
// cannot be written). An index of an older layout that holds only the starter records
// is rebuilt; one holding imported sources is ErrSchema.
func Open(dir string) (*DB, error) {
	path := filepath.Join(dir, indexFile)
	_, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return seedAndOpen(dir)
	case err != nil:
		return nil, fmt.Errorf("open vulnerability database: %w", err)
	}
	bdb, err := openReadOnly(path)
	if err != nil {
		return nil, err
	}
	schema, onlyStarter, err := indexSchema(bdb)
	if err != nil {
		bdb.Close()
		return nil, err
	}
	if schema != schemaVersion {
		bdb.Close()
		if onlyStarter {
			return seedAndOpen(dir)
		}
		return nil, fmt.Errorf("%w: %s has index schema %d, this vigil reads %d; import the sources again into a new directory, or move it aside",
			ErrSchema, path, schema, schemaVersion)
	}
	return &DB{dir: dir, path: path, bolt: bdb}, nil
}

// seedAndOpen builds the index from the starter database and opens it.
func seedAndOpen(dir string) (*DB, error) {
	ctx := context.Background()
	_, err := importInputs(ctx, dir, []input{starterInput()}, nil)
	tempDir := ""
	if err != nil {
		if !isPermission(err) {
			return nil, fmt.Errorf("seed vulnerability database in %s: %w", dir, err)
		}
		// Not ours to write (a user scanning without rights to /var/lib/vigil): the
		// scan still runs, on a private copy.
		tempDir, err = os.MkdirTemp("", "vigil-vulndb-")
		if err != nil {
			return nil, fmt.Errorf("seed vulnerability database: %w", err)
		}
		if _, err := importInputs(ctx, tempDir, []input{starterInput()}, nil); err != nil {
			os.RemoveAll(tempDir)
			return nil, fmt.Errorf("seed vulnerability database in %s: %w", tempDir, err)
		}
		dir = tempDir
	}
	path := filepath.Join(dir, indexFile)
	bdb, err := openReadOnly(path)
	if err != nil {
		if tempDir != "" {
			os.RemoveAll(tempDir)
		}
		return nil, err
	}
	return &DB{dir: dir, path: path, bolt: bdb, tempDir: tempDir}, nil
}

// Close closes the database (and removes a temporary seed).
func (db *DB) Close() error {
	err := db.bolt.Close()
	if db.tempDir != "" {
		if rerr := os.RemoveAll(db.tempDir); err == nil {
			err = rerr
		}
	}
	return err
}

// Dir is the directory the index was opened from: a temporary directory when Open had
// to seed one there.
func (db *DB) Dir() string { return db.dir }

// StaleAfter is the age past which a scan should warn that the database is old.
const StaleAfter = 7 * 24 * time.Hour

// Status describes the database.
type Status struct {
	Dir       string `json:"dir"`
	Path      string `json:"path"`
	Temporary bool   `json:"temporary,omitempty"` // seeded in a temporary directory
	Schema    int    `json:"schema"`
	// Records counts the records in the database; a record affecting packages of two
	// ecosystems counts once here and once in each ecosystem.
	Records    int            `json:"records"`
	Ecosystems map[string]int `json:"ecosystems"`
	Sources    []Source       `json:"sources"`
	// Updated is the newest DataTime of the sources: how new the data is.
	Updated time.Time `json:"updated"`
}

// Age is how old the newest data is now; 0 for a database without sources.
func (s Status) Age() time.Duration {
	if s.Updated.IsZero() {
		return 0
	}
	return time.Since(s.Updated)
}

// Stale says the data is older than StaleAfter; a scan warns but still runs.
func (s Status) Stale() bool { return s.Age() > StaleAfter }

// Status reads the database's sources and counts.
func (db *DB) Status() (Status, error) {
	st := Status{Dir: db.dir, Path: db.path, Temporary: db.tempDir != "", Schema: schemaVersion, Ecosystems: map[string]int{}}
	err := guard(db.path, func() error {
		return db.bolt.View(func(tx *bolt.Tx) error {
			if data := tx.Bucket(bucketMeta).Get(keyCounts); data != nil {
				if err := json.Unmarshal(data, &st.Ecosystems); err != nil {
					return fmt.Errorf("%w: %s: counts: %v", ErrDamaged, db.path, err)
				}
			}
			fmt.Sscan(string(tx.Bucket(bucketMeta).Get(keyRecords)), &st.Records)
			if b := tx.Bucket(bucketSources); b != nil {
				return b.ForEach(func(k, v []byte) error {
					var s Source
					if err := json.Unmarshal(v, &s); err != nil {
						return fmt.Errorf("%w: %s: source %s: %v", ErrDamaged, db.path, k, err)
					}
					st.Sources = append(st.Sources, s)
					if s.DataTime.After(st.Updated) {
						st.Updated = s.DataTime
					}
					return nil
				})
			}
			return nil
		})
	})
	slices.SortFunc(st.Sources, func(a, b Source) int { return a.ImportedAt.Compare(b.ImportedAt) })
	return st, err
}

// ReadStatus opens dir's database without seeding it and returns its status; ErrNoIndex
// when there is none.
func ReadStatus(dir string) (Status, error) {
	path := filepath.Join(dir, indexFile)
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Status{}, fmt.Errorf("%w in %s (it is created from the starter database on first use, or by 'vigil db import' or 'vigil db update')", ErrNoIndex, dir)
		}
		return Status{}, err
	}
	db, err := Open(dir)
	if err != nil {
		return Status{}, err
	}
	defer db.Close()
	return db.Status()
}

// discard is the logger of callers that pass none.
var discard = slog.New(slog.DiscardHandler)
