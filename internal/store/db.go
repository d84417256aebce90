package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/vigil-sec/vigil/internal/policy"
)

// DBFile is the database's name in the data dir.
const DBFile = "vigil.db"

// SchemaVersion is the layout of the database this code reads and writes. Raise it, and
// add a migration, whenever a bucket, a key or the meaning of a value changes.
const SchemaVersion = 1

// lockTimeout bounds the wait for bbolt's own flock on vigil.db. The data dir's lock
// already keeps other vigil processes out, so only a foreign tool can hold it.
const lockTimeout = time.Second

var (
	// ErrCorrupt is wrapped by the errors that report a damaged database file or a value
	// that cannot be read back.
	ErrCorrupt = errors.New("database is corrupt")
	// ErrNewerSchema is returned by Open for a database written by a newer vigil.
	ErrNewerSchema = errors.New("database schema is newer than this vigil")
	// ErrNotFound is returned by UpdateEvent for an event the database does not hold.
	ErrNotFound = errors.New("not found")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("database is closed")
)

// The layout of schema 1. Values are JSON.
var (
	bucketMeta     = []byte("meta")   // schema → 1; default_mode → "discover"
	bucketGroups   = []byte("groups") // group name → policy.Group
	bucketRules    = []byte("rules")  // rule id → policy.Rule
	bucketEvents   = []byte("events") // big-endian uint64 id → Event; the bucket's sequence is the last id
	keySchema      = []byte("schema")
	keyDefaultMode = []byte("default_mode")
)

// migrations[v] takes a database from schema v to v+1 inside the transaction that then
// records the new version; schema 0 is a new, empty file.
var migrations = [SchemaVersion]func(*bolt.Tx) error{
	func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketGroups, bucketRules, bucketEvents} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %q: %w", name, err)
			}
		}
		return nil
	},
}

// DB is Vigil's embedded database, <data dir>/vigil.db: the policy (groups, rules,
// default mode) and the events. Every write is one transaction, on disk (fsync) when the
// method returns; a crash loses at most the write in flight, never part of one.
//
// It is safe for concurrent use by multiple goroutines; writes are serialised.
// Close it before the Dir it was opened in.
type DB struct {
	bolt *bolt.DB
	path string
}

// Event is a stored event. It mirrors controller.Event, but keeps Detail as the JSON the
// caller wrote, so that the store neither interprets nor reshapes it (a map[string]any
// would come back with every number a float64).
type Event struct {
	ID       uint64          `json:"id"`
	Time     time.Time       `json:"time"`
	Type     string          `json:"type"`
	Severity string          `json:"severity"`
	Summary  string          `json:"summary"`
	Detail   json.RawMessage `json:"detail,omitempty"`
}

// Open opens the database in dir, creating it when missing, and brings its schema up to
// SchemaVersion. It first reads the whole file and checks every page, so that a damaged
// one is refused here, with ErrCorrupt and what to do, rather than crashing vigil later.
func Open(dir *Dir) (*DB, error) {
	if dir == nil || dir.lock == nil {
		return nil, errors.New("open database: the data dir is not open")
	}
	path := filepath.Join(dir.Path, DBFile)
	bdb, err := openBolt(path)
	if err != nil {
		return nil, err
	}
	db := &DB{bolt: bdb, path: path}
	if err := db.check(); err != nil {
		bdb.Close()
		return nil, err
	}
	if err := db.migrate(); err != nil {
		bdb.Close()
		return nil, err
	}
	return db, nil
}

func openBolt(path string) (bdb *bolt.DB, err error) {
	// Check the pages before bbolt follows them (see checkPages); the data dir's lock
	// keeps writers out meanwhile.
	file, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if len(file) > 0 {
		if err := checkPages(file); err != nil {
			return nil, damaged(path, err)
		}
	}
	// A fault in bbolt despite that check is an error too, not a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			bdb, err = nil, damaged(path, fmt.Errorf("%v", p))
		}
	}()
	bdb, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	switch {
	case err == nil:
		return bdb, nil
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("open database %s: another process holds it: %w", path, err)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum),
		errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrInvalidMapping):
		return nil, damaged(path, err)
	}
	return nil, fmt.Errorf("open database %s: %w", path, err)
}

// damaged says that the file is unusable and what to do about it.
func damaged(path string, cause error) error {
	return fmt.Errorf("%w: %s: %w; move it aside (mv %s %s.damaged) and start vigil again "+
		"to begin with an empty policy in discover mode, or restore it from a backup",
		ErrCorrupt, path, cause, path, path)
}

// check has bbolt check the file's structure: pages reachable once, free pages not in
// use. At Open nothing else uses the database, so a read transaction is enough.
func (db *DB) check() error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() { // drain: Check's goroutine sends every problem
			if len(errs) < 3 {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return damaged(db.path, errors.Join(errs...))
		}
		return nil
	})
}

func (db *DB) migrate() error {
	var v int
	if err := db.bolt.View(func(tx *bolt.Tx) (err error) { v, err = db.schema(tx); return err }); err != nil {
		return err
	}
	if v > SchemaVersion {
		return fmt.Errorf("%w: %s has schema %d and this vigil reads schema %d at most: "+
			"run the newer vigil that wrote it, or move the file aside to start with an empty policy",
			ErrNewerSchema, db.path, v, SchemaVersion)
	}
	if v == SchemaVersion {
		return nil
	}
	return db.bolt.Update(func(tx *bolt.Tx) error {
		for ; v < SchemaVersion; v++ {
			if err := migrations[v](tx); err != nil {
				return fmt.Errorf("migrate %s from schema %d to %d: %w", db.path, v, v+1, err)
			}
		}
		return putJSON(tx.Bucket(bucketMeta), keySchema, SchemaVersion)
	})
}

// schema reads the schema version: 0 for a new file.
func (db *DB) schema(tx *bolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		var other []byte
		_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			other = name
			return errors.New("stop")
		})
		if other != nil {
			return 0, fmt.Errorf("open database %s: not a vigil database (it holds bucket %q and no schema); "+
				"move it aside or use another --data-dir", db.path, other)
		}
		return 0, nil
	}
	var v int
	found, err := db.get(meta, bucketMeta, keySchema, &v)
	switch {
	case err != nil:
		return 0, err
	case !found:
		return 0, db.corrupt(bucketMeta, strconv.Quote(string(keySchema)), errors.New("missing"))
	case v < 1:
		return 0, db.corrupt(bucketMeta, strconv.Quote(string(keySchema)), fmt.Errorf("version %d", v))
	}
	return v, nil
}

// Path is the database file's path.
func (db *DB) Path() string { return db.path }

// Close closes the database; later calls return ErrClosed. It waits for transactions
// in progress.
func (db *DB) Close() error { return db.bolt.Close() }

func (db *DB) view(fn func(*bolt.Tx) error) error   { return closed(db.bolt.View(fn)) }
func (db *DB) update(fn func(*bolt.Tx) error) error { return closed(db.bolt.Update(fn)) }

func closed(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// corrupt reports a value that cannot be read back; key is written as the message
// should show it.
func (db *DB) corrupt(bucket []byte, key string, cause error) error {
	return fmt.Errorf("%w: %s: bucket %q key %s: %w", ErrCorrupt, db.path, bucket, key, cause)
}

func (db *DB) decode(bucket []byte, key string, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return db.corrupt(bucket, key, err)
	}
	return nil
}

func (db *DB) get(b *bolt.Bucket, bucket, key []byte, v any) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	return true, db.decode(bucket, strconv.Quote(string(key)), data, v)
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// LoadPolicy reads the policy: groups in name order, rules in id order. A new database
// holds the empty policy, in discover mode.
func (db *DB) LoadPolicy() (policy.Policy, error) {
	var p policy.Policy
	err := db.view(func(tx *bolt.Tx) error {
		if _, err := db.get(tx.Bucket(bucketMeta), bucketMeta, keyDefaultMode, &p.DefaultMode); err != nil {
			return err
		}
		err := tx.Bucket(bucketGroups).ForEach(func(k, v []byte) error {
			var g policy.Group
			if err := db.decode(bucketGroups, strconv.Quote(string(k)), v, &g); err != nil {
				return err
			}
			if g.Name != string(k) {
				return db.corrupt(bucketGroups, strconv.Quote(string(k)), fmt.Errorf("holds group %q", g.Name))
			}
			p.Groups = append(p.Groups, g)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketRules).ForEach(func(k, v []byte) error {
			var r policy.Rule
			if err := db.decode(bucketRules, strconv.Quote(string(k)), v, &r); err != nil {
				return err
			}
			if r.ID != string(k) {
				return db.corrupt(bucketRules, strconv.Quote(string(k)), fmt.Errorf("holds rule %q", r.ID))
			}
			p.Rules = append(p.Rules, r)
			return nil
		})
	})
	if err != nil {
		return policy.Policy{}, fmt.Errorf("load policy: %w", err)
	}
	return p, nil
}

// SavePolicy replaces the whole policy with p, atomically. An invalid p (an error that
// wraps policy.ErrInvalid) changes nothing.
func (db *DB) SavePolicy(p policy.Policy) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("save policy: %w", err)
	}
	err := db.update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketGroups, bucketRules} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		groups, rules := tx.Bucket(bucketGroups), tx.Bucket(bucketRules)
		for i := range p.Groups {
			if err := putJSON(groups, []byte(p.Groups[i].Name), &p.Groups[i]); err != nil {
				return fmt.Errorf("group %q: %w", p.Groups[i].Name, err)
			}
		}
		for i := range p.Rules {
			if err := putJSON(rules, []byte(p.Rules[i].ID), &p.Rules[i]); err != nil {
				return fmt.Errorf("rule %q: %w", p.Rules[i].ID, err)
			}
		}
		return putJSON(tx.Bucket(bucketMeta), keyDefaultMode, p.DefaultMode)
	})
	if err != nil {
		return fmt.Errorf("save policy: %w", err)
	}
	return nil
}

// PutRules adds the rules, or replaces those with the same id, in one transaction: the
// Learner's Change.Added and Change.Updated, say. An invalid rule changes nothing.
func (db *DB) PutRules(rules []policy.Rule) error {
	if len(rules) == 0 {
		return nil
	}
	values := make([][]byte, len(rules))
	for i := range rules {
		if err := rules[i].Validate(); err != nil {
			return fmt.Errorf("put rules: %w", err)
		}
		v, err := json.Marshal(&rules[i])
		if err != nil {
			return fmt.Errorf("put rules: rule %q: %w", rules[i].ID, err)
		}
		values[i] = v
	}
	err := db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRules)
		for i := range rules {
			if err := b.Put([]byte(rules[i].ID), values[i]); err != nil {
				return fmt.Errorf("rule %q: %w", rules[i].ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put rules: %w", err)
	}
	return nil
}

// DeleteRules deletes the rules with these ids, in one transaction. Ids it does not hold
// are ignored.
func (db *DB) DeleteRules(ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	err := db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRules)
		for _, id := range ids {
			if err := b.Delete([]byte(id)); err != nil {
				return fmt.Errorf("rule %q: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete rules: %w", err)
	}
	return nil
}

// PutGroup adds the group, or replaces the one of the same name.
func (db *DB) PutGroup(g policy.Group) error {
	if err := g.Validate(); err != nil {
		return fmt.Errorf("put group: %w", err)
	}
	v, err := json.Marshal(&g)
	if err != nil {
		return fmt.Errorf("put group %q: %w", g.Name, err)
	}
	if err := db.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketGroups).Put([]byte(g.Name), v) }); err != nil {
		return fmt.Errorf("put group %q: %w", g.Name, err)
	}
	return nil
}

// DeleteGroup deletes the group of this name, if there is one. Rules naming it stay.
func (db *DB) DeleteGroup(name string) error {
	if err := db.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketGroups).Delete([]byte(name)) }); err != nil {
		return fmt.Errorf("delete group %q: %w", name, err)
	}
	return nil
}

// SetDefaultMode sets the mode of groups the policy does not list.
func (db *DB) SetDefaultMode(m policy.Mode) error {
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("set default mode: %w", err)
	}
	if err := db.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyDefaultMode, v) }); err != nil {
		return fmt.Errorf("set default mode: %w", err)
	}
	return nil
}

func eventKey(id uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), id) }

// prepare checks an event, compacts its Detail and stamps a zero Time with the current
// time, in UTC, so that the event reads back equal to what AppendEvent returned.
func (ev *Event) prepare() error {
	if ev.Type == "" {
		return errors.New("event has no type")
	}
	if len(ev.Detail) > 0 {
		var b bytes.Buffer
		if err := json.Compact(&b, ev.Detail); err != nil {
			return fmt.Errorf("event detail is not valid JSON: %w", err)
		}
		ev.Detail = b.Bytes()
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Time = ev.Time.UTC()
	return nil
}

// AppendEvent stores ev with the next id, and returns it with that id (and its time,
// when unset). Ids increase monotonically across restarts and are never reused, even
// after PruneEvents has deleted the newest events.
func (db *DB) AppendEvent(ev Event) (Event, error) {
	if err := ev.prepare(); err != nil {
		return Event{}, fmt.Errorf("append event: %w", err)
	}
	err := db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		ev.ID = id
		return putJSON(b, eventKey(id), &ev)
	})
	if err != nil {
		return Event{}, fmt.Errorf("append event: %w", err)
	}
	return ev, nil
}

// UpdateEvent replaces the stored event of ev's id, to count a repeated violation, say.
// An event that is not stored, or no longer (PruneEvents), is ErrNotFound: append it
// again. PruneEvents judges age by Time, so set Time to the last occurrence to keep an
// event that still recurs.
func (db *DB) UpdateEvent(ev Event) error {
	if err := ev.prepare(); err != nil {
		return fmt.Errorf("update event %d: %w", ev.ID, err)
	}
	err := db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		k := eventKey(ev.ID)
		if ev.ID == 0 || b.Get(k) == nil {
			return ErrNotFound
		}
		return putJSON(b, k, &ev)
	})
	if err != nil {
		return fmt.Errorf("update event %d: %w", ev.ID, err)
	}
	return nil
}

func (db *DB) decodeEvent(k, v []byte, ev *Event) error {
	if len(k) != 8 {
		return db.corrupt(bucketEvents, fmt.Sprintf("%x", k), errors.New("not an 8-byte event id"))
	}
	id := binary.BigEndian.Uint64(k)
	key := strconv.FormatUint(id, 10)
	if err := db.decode(bucketEvents, key, v, ev); err != nil {
		return err
	}
	if ev.ID != id {
		return db.corrupt(bucketEvents, key, fmt.Errorf("holds event %d", ev.ID))
	}
	return nil
}

// Events returns the events of type typ (every type when empty) with an id above
// sinceID, newest first, at most limit of them (all when limit <= 0).
func (db *DB) Events(typ string, sinceID uint64, limit int) ([]Event, error) {
	out := []Event{}
	err := db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		since := eventKey(sinceID)
		for k, v := c.Last(); k != nil && bytes.Compare(k, since) > 0 && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			var ev Event
			if err := db.decodeEvent(k, v, &ev); err != nil {
				return err
			}
			if typ == "" || ev.Type == typ || strings.HasPrefix(ev.Type, typ+".") {
				out = append(out, ev)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// PruneEvents deletes the oldest events beyond maxCount, and those whose Time is more
// than maxAge before now, in one transaction, and says how many it deleted. A limit
// <= 0 does not apply. Age is judged on every event, not only the oldest ids, because
// UpdateEvent may move an event's Time forward.
func (db *DB) PruneEvents(maxCount int, maxAge time.Duration, now time.Time) (int, error) {
	if maxCount <= 0 && maxAge <= 0 {
		return 0, nil
	}
	cutoff := now.Add(-maxAge)
	var n int
	err := db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		excess := 0
		if maxCount > 0 {
			excess = b.Stats().KeyN - maxCount
		}
		var doomed [][]byte
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if excess > 0 {
				doomed = append(doomed, append([]byte(nil), k...))
				excess--
				continue
			}
			if maxAge <= 0 {
				break
			}
			if len(k) != 8 {
				return db.corrupt(bucketEvents, fmt.Sprintf("%x", k), errors.New("not an 8-byte event id"))
			}
			var ev struct {
				Time time.Time `json:"time"`
			}
			if err := db.decode(bucketEvents, strconv.FormatUint(binary.BigEndian.Uint64(k), 10), v, &ev); err != nil {
				return err
			}
			if ev.Time.Before(cutoff) {
				doomed = append(doomed, append([]byte(nil), k...))
			}
		}
		// Deleting under a moving cursor skips keys; delete after the walk.
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(doomed)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return n, nil
}
