package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vigil-sec/vigil/internal/policy"
)

// openDB opens the database in path (a new temporary dir when empty); the test closes it.
func openDB(t testing.TB, path string) *DB {
	t.Helper()
	if path == "" {
		path = t.TempDir()
	}
	dir, err := OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(dir)
	if err != nil {
		dir.Close()
		t.Fatal(err)
	}
	dirs.Store(db, dir)
	t.Cleanup(func() { closeAll(t, db) })
	return db
}

// dirs holds the Dir each test DB was opened in, to release its lock with the DB.
var dirs sync.Map

// closeAll closes db and the Dir it was opened in.
func closeAll(t testing.TB, db *DB) {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Error(err)
	}
	if d, ok := dirs.LoadAndDelete(db); ok {
		d.(*Dir).Close()
	}
}

// reopen closes db and opens the same data dir again.
func reopen(t testing.TB, db *DB) *DB {
	t.Helper()
	closeAll(t, db)
	return openDB(t, filepath.Dir(db.Path()))
}

// rawUpdate writes to the bbolt file directly, as damage or an older or newer vigil would.
func rawUpdate(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	bdb, err := bolt.Open(filepath.Join(path, DBFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	if err := bdb.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// openRaw opens path's database and returns the error, closing what it opened.
func openRaw(t *testing.T, path string) error {
	t.Helper()
	dir, err := OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	db, err := Open(dir)
	if err == nil {
		db.Close()
	}
	return err
}

func mustRule(t testing.TB, id, from, to, ports, action, origin string) policy.Rule {
	t.Helper()
	pr, err := policy.ParsePorts(ports)
	if err != nil {
		t.Fatal(err)
	}
	a, err := policy.ParseAction(action)
	if err != nil {
		t.Fatal(err)
	}
	o, err := policy.ParseRuleOrigin(origin)
	if err != nil {
		t.Fatal(err)
	}
	return policy.Rule{ID: id, From: from, To: to, Ports: pr, Action: a, Origin: o}
}

func mustCriteria(t *testing.T, cs ...string) []policy.Criterion {
	t.Helper()
	var out []policy.Criterion
	for _, s := range cs {
		c, err := policy.ParseCriterion(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// fullPolicy sets every field of every type, in the order LoadPolicy returns them.
func fullPolicy(t *testing.T) policy.Policy {
	created := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	lastHit := time.Date(2025, 3, 2, 8, 30, 15, 987654321, time.UTC)
	r1 := mustRule(t, "l-0011223344556677", "vigil.web", "vigil.db", "tcp/5432", "allow", "learned")
	r1.Apps = []string{"postgresql"}
	r1.Hits, r1.LastHit, r1.Created = 42, lastHit, created
	r2 := mustRule(t, "u-deny-ssh", "external", "host", "tcp/22,tcp/2222-2230", "deny", "user")
	r2.Created = created
	r3 := mustRule(t, "u:imported.1", "address:10.0.0.7", "external:api.example.com", "udp/53,tcp/any,icmp,any", "allow", "imported")
	r3.Apps = []string{"dns", "http"}
	r3.Hits = 1<<63 + 1 // beyond float64 precision: must not pass through a float
	return policy.Policy{
		DefaultMode: policy.ModeMonitor,
		Groups: []policy.Group{
			{Name: "host", Origin: policy.GroupLearned, Mode: policy.ModeProtect},
			{Name: "shop", Origin: policy.GroupCustom, Mode: policy.ModeDiscover, Criteria: mustCriteria(t,
				"label:tier=web", "label:tier=api", "image:ghcr.io/acme/*", "name:web-?", "service:db",
				"address:10.0.0.0/8", "dns:*.example.com")},
			{Name: "vigil.db", Origin: policy.GroupLearned, Mode: policy.ModeMonitor},
		},
		Rules: []policy.Rule{r1, r2, r3},
	}
}

func TestOpenNewDatabase(t *testing.T) {
	db := openDB(t, "")
	p, err := db.LoadPolicy()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, policy.Policy{}) || p.DefaultMode != policy.ModeDiscover {
		t.Errorf("new database policy = %+v, want the empty policy in discover mode", p)
	}
	evs, err := db.Events("", 0, 0)
	if err != nil || evs == nil || len(evs) != 0 {
		t.Errorf("Events on a new database = %v, %v; want an empty, non-nil list", evs, err)
	}
	info, err := os.Stat(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o600 {
		t.Errorf("database mode = %04o, want 0600", got)
	}
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		if got := string(tx.Bucket(bucketMeta).Get(keySchema)); got != "1" {
			t.Errorf("meta/schema = %q, want 1", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenNeedsOpenDir(t *testing.T) {
	if _, err := Open(nil); err == nil {
		t.Error("Open(nil) succeeded")
	}
	if _, err := Open(&Dir{Path: t.TempDir()}); err == nil {
		t.Error("Open of an unlocked Dir succeeded")
	}
}

func TestPolicyRoundTrip(t *testing.T) {
	db := openDB(t, "")
	want := fullPolicy(t)
	if err := db.SavePolicy(want); err != nil {
		t.Fatal(err)
	}
	db = reopen(t, db)
	got, err := db.LoadPolicy()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("policy after reopen:\n got %+v\nwant %+v", got, want)
	}

	// A second SavePolicy replaces everything, not only what it names.
	small := policy.Policy{
		DefaultMode: policy.ModeProtect,
		Groups:      []policy.Group{{Name: "api", Origin: policy.GroupLearned}},
		Rules:       []policy.Rule{mustRule(t, "u1", "api", "vigil.db", "tcp/5432", "allow", "user")},
	}
	if err := db.SavePolicy(small); err != nil {
		t.Fatal(err)
	}
	if got, err := db.LoadPolicy(); err != nil || !reflect.DeepEqual(got, small) {
		t.Errorf("policy after replacing = %+v, %v; want %+v", got, err, small)
	}
}

func TestPolicyIsReadableJSON(t *testing.T) {
	db := openDB(t, "")
	if err := db.SavePolicy(fullPolicy(t)); err != nil {
		t.Fatal(err)
	}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		want := map[string]string{
			"rules/u-deny-ssh":  `"ports":["tcp/22","tcp/2222-2230"],"action":"deny","origin":"user"`,
			"groups/vigil.db":   `{"name":"vigil.db","origin":"learned","mode":"monitor"}`,
			"meta/default_mode": `"monitor"`,
		}
		for path, frag := range want {
			bucket, key, _ := strings.Cut(path, "/")
			if got := string(tx.Bucket([]byte(bucket)).Get([]byte(key))); !strings.Contains(got, frag) {
				t.Errorf("%s = %s, want it to contain %s", path, got, frag)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSaveInvalidPolicyChangesNothing(t *testing.T) {
	db := openDB(t, "")
	want := fullPolicy(t)
	if err := db.SavePolicy(want); err != nil {
		t.Fatal(err)
	}
	bad := fullPolicy(t)
	bad.Rules[1].Ports = nil
	if err := db.SavePolicy(bad); !errors.Is(err, policy.ErrInvalid) {
		t.Fatalf("SavePolicy(invalid) = %v, want policy.ErrInvalid", err)
	}
	if got, _ := db.LoadPolicy(); !reflect.DeepEqual(got, want) {
		t.Errorf("an invalid SavePolicy changed the policy to %+v", got)
	}
}

func TestPutAndDeleteRules(t *testing.T) {
	db := openDB(t, "")
	a := mustRule(t, "a", "web", "db", "tcp/5432", "allow", "learned")
	b := mustRule(t, "b", "web", "cache", "tcp/6379", "allow", "learned")
	if err := db.PutRules([]policy.Rule{a, b}); err != nil {
		t.Fatal(err)
	}
	a.Hits, a.LastHit = 7, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	a.Apps = []string{"postgresql"}
	c := mustRule(t, "c", "web", "external:api.example.com", "tcp/443", "allow", "learned")
	if err := db.PutRules([]policy.Rule{a, c}); err != nil {
		t.Fatal(err)
	}
	if got := rules(t, db); !reflect.DeepEqual(got, []policy.Rule{a, b, c}) {
		t.Errorf("after upsert: %v, want %v", got, []policy.Rule{a, b, c})
	}

	// A batch with one invalid rule writes none of it.
	bad := mustRule(t, "d", "web", "db", "tcp/1", "allow", "learned")
	bad.Action = policy.ActionDeny // a learned rule only allows
	d2 := mustRule(t, "e", "web", "db", "tcp/2", "allow", "learned")
	if err := db.PutRules([]policy.Rule{d2, bad}); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("PutRules(invalid) = %v, want policy.ErrInvalid", err)
	}

	if err := db.DeleteRules([]string{"b", "no-such-rule"}); err != nil {
		t.Fatal(err)
	}
	if got := rules(t, reopen(t, db)); !reflect.DeepEqual(got, []policy.Rule{a, c}) {
		t.Errorf("after delete and reopen: %v, want %v", got, []policy.Rule{a, c})
	}
}

func rules(t *testing.T, db *DB) []policy.Rule {
	t.Helper()
	p, err := db.LoadPolicy()
	if err != nil {
		t.Fatal(err)
	}
	return p.Rules
}

func TestGroupsAndDefaultMode(t *testing.T) {
	db := openDB(t, "")
	web := policy.Group{Name: "web", Origin: policy.GroupLearned}
	db1 := policy.Group{Name: "db", Origin: policy.GroupCustom, Mode: policy.ModeMonitor, Criteria: mustCriteria(t, "service:db")}
	for _, g := range []policy.Group{web, db1} {
		if err := db.PutGroup(g); err != nil {
			t.Fatal(err)
		}
	}
	web.Mode = policy.ModeProtect
	if err := db.PutGroup(web); err != nil {
		t.Fatal(err)
	}
	if err := db.PutGroup(policy.Group{Name: "external", Origin: policy.GroupLearned}); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("PutGroup(external) = %v, want policy.ErrInvalid", err)
	}
	if err := db.SetDefaultMode(policy.ModeMonitor); err != nil {
		t.Fatal(err)
	}
	if err := db.SetDefaultMode(policy.Mode(9)); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("SetDefaultMode(9) = %v, want policy.ErrInvalid", err)
	}
	db = reopen(t, db)
	p, err := db.LoadPolicy()
	if err != nil {
		t.Fatal(err)
	}
	want := policy.Policy{DefaultMode: policy.ModeMonitor, Groups: []policy.Group{db1, web}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("policy = %+v, want %+v", p, want)
	}
	if err := db.DeleteGroup("db"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteGroup("db"); err != nil {
		t.Errorf("deleting a missing group: %v", err)
	}
	if p, _ := db.LoadPolicy(); len(p.Groups) != 1 || p.Groups[0].Name != "web" {
		t.Errorf("groups after delete = %+v, want web only", p.Groups)
	}
}

func event(typ string, at time.Time, detail string) Event {
	return Event{Time: at, Type: typ, Severity: "warning", Summary: typ + " happened", Detail: json.RawMessage(detail)}
}

func TestEventIDsIncreaseAcrossReopen(t *testing.T) {
	db := openDB(t, "")
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var last uint64
	for round := range 3 {
		for range 3 {
			ev, err := db.AppendEvent(event("violation", at, `{"count":1}`))
			if err != nil {
				t.Fatal(err)
			}
			if ev.ID <= last {
				t.Fatalf("round %d: id %d after %d", round, ev.ID, last)
			}
			last = ev.ID
		}
		// Ids are not reused even when the newest events are gone.
		if _, err := db.PruneEvents(1, 0, at); err != nil {
			t.Fatal(err)
		}
		db = reopen(t, db)
	}
	if last != 9 {
		t.Errorf("last id = %d, want 9", last)
	}
	ev, err := db.AppendEvent(event("violation", at, ""))
	if err != nil || ev.ID != 10 {
		t.Errorf("AppendEvent after reopen = id %d, %v; want 10", ev.ID, err)
	}
}

func TestAppendAndListEvents(t *testing.T) {
	db := openDB(t, "")
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600))
	var appended []Event
	for i, typ := range []string{"violation", "audit.changed", "violation", "violation", "audit.changed"} {
		ev, err := db.AppendEvent(event(typ, at.Add(time.Duration(i)*time.Second), fmt.Sprintf(`{"n": %d, "big": 18446744073709551615}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		appended = append(appended, ev)
	}
	if appended[0].Time.Location() != time.UTC || !appended[0].Time.Equal(at) {
		t.Errorf("stored time = %v, want %v in UTC", appended[0].Time, at)
	}
	stamped, err := db.AppendEvent(Event{Type: "x"})
	if err != nil || time.Since(stamped.Time) > time.Minute {
		t.Errorf("a zero time is stamped: got %v, %v", stamped.Time, err)
	}

	ids := func(evs []Event) []uint64 {
		var out []uint64
		for _, ev := range evs {
			out = append(out, ev.ID)
		}
		return out
	}
	tests := []struct {
		typ   string
		since uint64
		limit int
		want  []uint64
	}{
		{"", 0, 0, []uint64{6, 5, 4, 3, 2, 1}},
		{"violation", 0, 0, []uint64{4, 3, 1}},
		{"violation", 0, 2, []uint64{4, 3}},
		{"violation", 3, 0, []uint64{4}},
		{"audit.changed", 2, 0, []uint64{5}},
		{"", 6, 0, nil},
		{"nothing", 0, 0, nil},
	}
	for _, tt := range tests {
		got, err := db.Events(tt.typ, tt.since, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ids(got), tt.want) {
			t.Errorf("Events(%q, %d, %d) = ids %v, want %v", tt.typ, tt.since, tt.limit, ids(got), tt.want)
		}
	}
	got, _ := db.Events("", 4, 0)
	if len(got) != 2 || !reflect.DeepEqual(got[1], appended[4]) {
		t.Errorf("event 5 read back as %+v, want %+v", got[1], appended[4])
	}
	if !strings.Contains(string(got[1].Detail), "18446744073709551615") {
		t.Errorf("detail changed: %s", got[1].Detail)
	}

	if _, err := db.AppendEvent(Event{Summary: "no type"}); err == nil {
		t.Error("AppendEvent without a type succeeded")
	}
	if _, err := db.AppendEvent(event("x", at, `{"open":`)); err == nil {
		t.Error("AppendEvent with invalid JSON detail succeeded")
	}
}

func TestUpdateEvent(t *testing.T) {
	db := openDB(t, "")
	first := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ev, err := db.AppendEvent(event("violation", first, `{"count":1}`))
	if err != nil {
		t.Fatal(err)
	}
	ev.Detail = json.RawMessage(`{"count":2,"first_seen":"2025-01-01T00:00:00Z"}`)
	ev.Time = first.Add(time.Hour)
	if err := db.UpdateEvent(ev); err != nil {
		t.Fatal(err)
	}
	db = reopen(t, db)
	got, err := db.Events("", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0], ev) {
		t.Errorf("after update: %+v, want [%+v]", got, ev)
	}
	for _, id := range []uint64{0, 2} {
		ev.ID = id
		if err := db.UpdateEvent(ev); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpdateEvent(id %d) = %v, want ErrNotFound", id, err)
		}
	}
}

func TestPruneEvents(t *testing.T) {
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	fill := func(t *testing.T, db *DB, n int) {
		// Event i (id i+1) happened n-i hours ago.
		for i := range n {
			if _, err := db.AppendEvent(event("violation", now.Add(-time.Duration(n-i)*time.Hour), "")); err != nil {
				t.Fatal(err)
			}
		}
	}
	remaining := func(t *testing.T, db *DB) []uint64 {
		evs, err := db.Events("", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var ids []uint64
		for _, ev := range evs {
			ids = append(ids, ev.ID)
		}
		return ids
	}

	t.Run("count", func(t *testing.T) {
		db := openDB(t, "")
		fill(t, db, 10)
		n, err := db.PruneEvents(4, 0, now)
		if err != nil || n != 6 {
			t.Errorf("PruneEvents = %d, %v; want 6", n, err)
		}
		if got, want := remaining(t, db), []uint64{10, 9, 8, 7}; !reflect.DeepEqual(got, want) {
			t.Errorf("kept %v, want %v", got, want)
		}
		if n, _ := db.PruneEvents(4, 0, now); n != 0 {
			t.Errorf("pruning again deleted %d", n)
		}
	})
	t.Run("age", func(t *testing.T) {
		db := openDB(t, "")
		fill(t, db, 10)
		// Event 2 recurred a minute ago: it stays though older ids go.
		evs, _ := db.Events("", 1, 0)
		ev2 := evs[len(evs)-1]
		ev2.Time = now.Add(-time.Minute)
		if err := db.UpdateEvent(ev2); err != nil {
			t.Fatal(err)
		}
		n, err := db.PruneEvents(0, 3*time.Hour+time.Second, now)
		if err != nil || n != 6 {
			t.Errorf("PruneEvents = %d, %v; want 6", n, err)
		}
		if got, want := remaining(t, db), []uint64{10, 9, 8, 2}; !reflect.DeepEqual(got, want) {
			t.Errorf("kept %v, want %v", got, want)
		}
	})
	t.Run("both", func(t *testing.T) {
		db := openDB(t, "")
		fill(t, db, 10)
		n, err := db.PruneEvents(5, 2*time.Hour+time.Second, now)
		if err != nil || n != 8 {
			t.Errorf("PruneEvents = %d, %v; want 8", n, err)
		}
		if got, want := remaining(t, db), []uint64{10, 9}; !reflect.DeepEqual(got, want) {
			t.Errorf("kept %v, want %v", got, want)
		}
		if n, _ := db.PruneEvents(0, 0, now); n != 0 {
			t.Errorf("no limits deleted %d", n)
		}
	})
}

func TestConcurrentAppends(t *testing.T) {
	db := openDB(t, "")
	const writers, each = 8, 25
	var wg sync.WaitGroup
	ids := make([][]uint64, writers)
	for w := range writers {
		wg.Go(func() {
			for range each {
				ev, err := db.AppendEvent(Event{Type: "x"})
				if err != nil {
					t.Error(err)
					return
				}
				ids[w] = append(ids[w], ev.ID)
			}
		})
	}
	wg.Go(func() {
		for range each {
			if _, err := db.Events("", 0, 10); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	seen := map[uint64]bool{}
	for _, ws := range ids {
		for i, id := range ws {
			if seen[id] || (i > 0 && id <= ws[i-1]) {
				t.Fatalf("id %d repeated or out of order in %v", id, ws)
			}
			seen[id] = true
		}
	}
	if evs, _ := db.Events("", 0, 0); len(evs) != writers*each {
		t.Errorf("%d events stored, want %d", len(evs), writers*each)
	}
}

func TestClosed(t *testing.T) {
	db := openDB(t, "")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := db.LoadPolicy(); !errors.Is(err, ErrClosed) {
		t.Errorf("LoadPolicy after Close = %v, want ErrClosed", err)
	}
	if _, err := db.AppendEvent(Event{Type: "x"}); !errors.Is(err, ErrClosed) {
		t.Errorf("AppendEvent after Close = %v, want ErrClosed", err)
	}
}

func TestSchemaVersion(t *testing.T) {
	setSchema := func(v string) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte(v)) }
	}
	tests := []struct {
		name    string
		damage  func(*bolt.Tx) error
		wantErr error
		msg     string
	}{
		{"newer", setSchema("2"), ErrNewerSchema, "has schema 2 and this vigil reads schema 1 at most: run the newer vigil"},
		{"not a number", setSchema(`"one"`), ErrCorrupt, `bucket "meta" key "schema": json: cannot unmarshal`},
		{"zero", setSchema("0"), ErrCorrupt, `bucket "meta" key "schema": version 0`},
		{"missing", func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keySchema) }, ErrCorrupt, `bucket "meta" key "schema": missing`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openDB(t, "")
			path := filepath.Dir(db.Path())
			closeAll(t, db)
			rawUpdate(t, path, tt.damage)
			err := openRaw(t, path)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Open = %v\nwant %v containing %q", err, tt.wantErr, tt.msg)
			}
		})
	}
}

func TestOpenMigratesFromEmptyFile(t *testing.T) {
	path := t.TempDir()
	rawUpdate(t, path, func(*bolt.Tx) error { return nil }) // a bbolt file without buckets: schema 0
	db := openDB(t, path)
	if err := db.SetDefaultMode(policy.ModeProtect); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesForeignBoltFile(t *testing.T) {
	path := t.TempDir()
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("somebody-else"))
		return err
	})
	if err := openRaw(t, path); err == nil || !strings.Contains(err.Error(), `not a vigil database (it holds bucket "somebody-else"`) {
		t.Errorf("Open of a foreign bbolt file = %v", err)
	}
}

func TestCorruptValues(t *testing.T) {
	ruleJSON := `{"id":"r1","from":"a","to":"b","ports":["tcp/1"],"action":"allow","origin":"user","hits":0}`
	tests := []struct {
		name   string
		bucket []byte
		key    []byte
		value  string
		read   func(*DB) error
		msg    string
	}{
		{"rule not JSON", bucketRules, []byte("r1"), `{not json`, loadPolicy,
			`database is corrupt: %s: bucket "rules" key "r1": invalid character 'n'`},
		{"rule bad action", bucketRules, []byte("r1"), strings.Replace(ruleJSON, "allow", "maybe", 1), loadPolicy,
			`bucket "rules" key "r1": invalid action "maybe"`},
		{"rule under another id", bucketRules, []byte("r2"), ruleJSON, loadPolicy,
			`bucket "rules" key "r2": holds rule "r1"`},
		{"group bad mode", bucketGroups, []byte("web"), `{"name":"web","origin":"learned","mode":"sleepy"}`, loadPolicy,
			`bucket "groups" key "web": invalid mode "sleepy"`},
		{"default mode", bucketMeta, keyDefaultMode, `42`, loadPolicy,
			`bucket "meta" key "default_mode": json: cannot unmarshal number`},
		{"event not JSON", bucketEvents, eventKey(7), `{"id":7,`, listEvents,
			`bucket "events" key 7: unexpected end of JSON input`},
		{"event under another id", bucketEvents, eventKey(7), `{"id":8,"type":"x"}`, listEvents,
			`bucket "events" key 7: holds event 8`},
		{"event key", bucketEvents, []byte("seven"), `{}`, listEvents,
			`bucket "events" key 736576656e: not an 8-byte event id`},
		{"event time for pruning", bucketEvents, eventKey(7), `{"id":7,"time":"yesterday"}`, func(db *DB) error {
			_, err := db.PruneEvents(0, time.Hour, time.Now())
			return err
		}, `prune events: database is corrupt: %s: bucket "events" key 7: parsing time`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openDB(t, "")
			if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(tt.bucket).Put(tt.key, []byte(tt.value)) }); err != nil {
				t.Fatal(err)
			}
			err := tt.read(db)
			msg := tt.msg
			if strings.Contains(msg, "%s") {
				msg = fmt.Sprintf(msg, db.Path())
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), msg) {
				t.Errorf("got  %v\nwant ErrCorrupt containing %q", err, msg)
			}
			// Damage to one value does not stop a database from opening.
			if db = reopen(t, db); tt.read(db) == nil {
				t.Error("the damage went away on reopen")
			}
		})
	}
}

func loadPolicy(db *DB) error { _, err := db.LoadPolicy(); return err }
func listEvents(db *DB) error { _, err := db.Events("", 0, 0); return err }

// writeDamaged writes file as the database of a new data dir and returns the dir.
func writeDamaged(t *testing.T, file []byte) string {
	t.Helper()
	path := t.TempDir()
	if err := os.WriteFile(filepath.Join(path, DBFile), file, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sampleFile returns a closed database file of some dozens of pages: rules, events,
// and free pages from deletions.
func sampleFile(t *testing.T) []byte {
	t.Helper()
	db := openDB(t, "")
	var rs []policy.Rule
	for i := range 200 {
		rs = append(rs, mustRule(t, fmt.Sprintf("r%04d", i), "web", "db", fmt.Sprintf("tcp/%d", i+1), "allow", "learned"))
	}
	if err := db.PutRules(rs); err != nil {
		t.Fatal(err)
	}
	for i := range 150 {
		detail := fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", i*7%900))
		if _, err := db.AppendEvent(event("violation", time.Time{}, detail)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.DeleteRules([]string{"r0001", "r0100", "r0150"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PruneEvents(100, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	closeAll(t, db)
	file, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	return file
}

func TestOpenDamagedFile(t *testing.T) {
	good := sampleFile(t)
	page := os.Getpagesize()
	tests := []struct {
		name string
		file []byte
		msg  string
	}{
		{"not bbolt", bytes.Repeat([]byte("vigil!\n"), 2000), "no valid meta page"},
		{"truncated", good[:len(good)/2], "is shorter than its"},
		{"metas zeroed", append(make([]byte, 2*page), good[2*page:]...), "no valid meta page"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := openRaw(t, writeDamaged(t, tt.file))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.msg) ||
				!strings.Contains(err.Error(), "move it aside (mv ") {
				t.Errorf("Open = %v\nwant ErrCorrupt, %q and what to do", err, tt.msg)
			}
		})
	}
	t.Run("empty file", func(t *testing.T) {
		if err := openRaw(t, writeDamaged(t, nil)); err != nil {
			t.Errorf("an empty file is a new database, but Open = %v", err)
		}
	})
}

// TestOpenDamagedPages damages each page of a file in turn, in several ways, and holds
// the database to its word: Open refuses the file with ErrCorrupt, or the database
// works, reads failing only with ErrCorrupt. A fault or a panic fails the test by
// crashing it.
func TestOpenDamagedPages(t *testing.T) {
	good := sampleFile(t)
	pageSize := os.Getpagesize()
	rng := rand.New(rand.NewPCG(4, 2))
	damages := []struct {
		name string
		do   func(page []byte)
	}{
		{"garbage", func(p []byte) {
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
		}},
		{"zeroed tail", func(p []byte) { clear(p[rng.IntN(len(p)):]) }},
		{"header bits", func(p []byte) {
			for range 1 + rng.IntN(3) {
				p[rng.IntN(256)] ^= 1 << rng.IntN(8)
			}
		}},
		{"scattered bytes", func(p []byte) {
			for range 1 + rng.IntN(8) {
				p[rng.IntN(len(p))] = byte(rng.Uint32())
			}
		}},
	}
	outcomes := map[string]int{}
	for pg := range len(good) / pageSize {
		for _, d := range damages {
			file := bytes.Clone(good)
			d.do(file[pg*pageSize : (pg+1)*pageSize])
			outcome := useDamaged(t, writeDamaged(t, file))
			outcomes[outcome]++
			if outcome == "" {
				t.Fatalf("page %d, %s: see above", pg, d.name)
			}
		}
	}
	t.Logf("%d pages: %v", len(good)/pageSize, outcomes)
}

// useDamaged opens, reads, writes and reopens a damaged database, and says how it went,
// or "" after reporting an error that is not ErrCorrupt.
func useDamaged(t *testing.T, path string) string {
	t.Helper()
	dir, err := OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	db, err := Open(dir)
	if errors.Is(err, ErrCorrupt) {
		return "refused"
	}
	if err != nil {
		t.Errorf("Open: %v", err)
		return ""
	}
	defer db.Close()
	outcome := "works"
	_, err1 := db.LoadPolicy()
	_, err2 := db.Events("", 0, 0)
	for _, err := range []error{err1, err2} {
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("read: %v", err)
			return ""
		}
		if err != nil {
			outcome = "a value is bad"
		}
	}
	if _, err := db.AppendEvent(Event{Type: "x"}); err != nil {
		t.Errorf("AppendEvent: %v", err)
		return ""
	}
	if err := db.PutRules([]policy.Rule{mustRule(t, "r0001", "web", "db", "tcp/2", "allow", "learned")}); err != nil {
		t.Errorf("PutRules: %v", err)
		return ""
	}
	if err := db.DeleteRules([]string{"r0002", "r0003", "r0004"}); err != nil {
		t.Errorf("DeleteRules: %v", err)
		return ""
	}
	if _, err := db.PruneEvents(10, 0, time.Now()); err != nil {
		t.Errorf("PruneEvents: %v", err)
		return ""
	}
	db.Close()
	again, err := Open(dir)
	if err != nil {
		t.Errorf("reopen after writes: %v", err)
		return ""
	}
	again.Close()
	return outcome
}

// BenchmarkPutRules puts batches of 100 new rules, one transaction each, as the learner
// would after a burst of new connections.
func BenchmarkPutRules(b *testing.B) {
	db := openDB(b, "")
	batch := make([]policy.Rule, 100)
	proto := mustRule(b, "", "vigil.web", "vigil.db", "tcp/5432", "allow", "learned")
	n := 0
	for b.Loop() {
		for i := range batch {
			batch[i] = proto
			batch[i].ID = "l-" + strconv.Itoa(n)
			n++
		}
		if err := db.PutRules(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rules/s")
	b.ReportMetric(float64(n/len(batch))/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkAppendEvent appends violation-sized events, one transaction each.
func BenchmarkAppendEvent(b *testing.B) {
	db := openDB(b, "")
	ev := event("violation", time.Now(), `{"from":{"workload":"client-1","group":"vigil.client","process":"curl"},`+
		`"to":{"workload":"db-1","group":"vigil.db"},"port":"tcp/5432","app":"postgresql","count":1}`)
	n := 0
	for b.Loop() {
		if _, err := db.AppendEvent(ev); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkOpen opens a database of 10,000 rules and 10,000 events: the start-up cost of
// `vigil up`, every page checked.
func BenchmarkOpen(b *testing.B) {
	db := openDB(b, "")
	rs := make([]policy.Rule, 10000)
	for i := range rs {
		rs[i] = mustRule(b, fmt.Sprintf("l-%012d", i), "vigil.web", fmt.Sprintf("vigil.db%d", i%100), "tcp/5432", "allow", "learned")
	}
	if err := db.PutRules(rs); err != nil {
		b.Fatal(err)
	}
	ev := event("violation", time.Now(), `{"count":1,"port":"tcp/5432"}`)
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketEvents)
		for range 10000 {
			ev.ID, _ = bk.NextSequence()
			if err := putJSON(bk, eventKey(ev.ID), &ev); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	path := filepath.Dir(db.Path())
	closeAll(b, db)
	info, _ := os.Stat(filepath.Join(path, DBFile))
	dir, err := OpenDir(path)
	if err != nil {
		b.Fatal(err)
	}
	defer dir.Close()
	for b.Loop() {
		db, err := Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		db.Close()
	}
	b.ReportMetric(float64(info.Size())/(1<<20), "MiB")
}

// BenchmarkPruneEvents prunes 10,000 events by age with nothing to delete: the cost of
// the periodic retention pass, which reads every event's time.
func BenchmarkPruneEvents(b *testing.B) {
	db := openDB(b, "")
	now := time.Now()
	ev := event("violation", now, `{"count":1,"port":"tcp/5432"}`)
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketEvents)
		for range 10000 {
			ev.ID, _ = bk.NextSequence()
			if err := putJSON(bk, eventKey(ev.ID), &ev); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if n, err := db.PruneEvents(20000, time.Hour, now); err != nil || n != 0 {
			b.Fatal(n, err)
		}
	}
}
