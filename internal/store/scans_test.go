package store

import (
	"errors"
	"testing"
)

func TestScansPersist(t *testing.T) {
	db := openDB(t, "")
	// A database from before the scans bucket existed reads as empty.
	n := 0
	if err := db.Scans(func(string, []byte) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("Scans on a new database: %d, %v", n, err)
	}
	if err := db.DeleteScan("host"); err != nil {
		t.Fatalf("DeleteScan of nothing: %v", err)
	}
	if err := db.PutScan("image:sha256:aa", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := db.PutScan("host", []byte(`{"h":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := db.PutScan("", []byte(`{}`)); err == nil {
		t.Error("empty key accepted")
	}
	db = reopen(t, db)
	got := map[string]string{}
	if err := db.Scans(func(k string, v []byte) error { got[k] = string(v); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["host"] != `{"h":1}` || got["image:sha256:aa"] != `{"a":1}` {
		t.Errorf("after reopen: %v", got)
	}
	if err := db.DeleteScan("host"); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	keys := []string{}
	if err := db.Scans(func(k string, _ []byte) error { keys = append(keys, k); return stop }); !errors.Is(err, stop) {
		t.Errorf("Scans did not pass fn's error on: %v", err)
	}
	if len(keys) != 1 || keys[0] != "image:sha256:aa" {
		t.Errorf("keys after delete = %v", keys)
	}
}
