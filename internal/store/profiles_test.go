package store

import (
	"testing"

	"github.com/vigil-sec/vigil/internal/procmon"
)

func TestProfiles(t *testing.T) {
	dir, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := db.LoadProfiles(); err != nil || len(p) != 0 {
		t.Fatalf("new database: %v %v", p, err)
	}
	entries := []procmon.ProfileEntry{{Exe: "/bin/busybox", Name: "httpd"}, {Exe: "/bin/busybox", Name: "sh", UID: 33}}
	if err := db.PutProfileEntries("vigil.web", entries); err != nil {
		t.Fatal(err)
	}
	if err := db.PutProfileEntries("vigil.web", entries[:1]); err != nil { // again: no duplicate
		t.Fatal(err)
	}
	db.Close()
	if db, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := db.LoadProfiles()
	if err != nil || len(p["vigil.web"]) != 2 {
		t.Fatalf("after reopen: %v %v", p, err)
	}
	if err := db.DeleteProfile("vigil.web"); err != nil {
		t.Fatal(err)
	}
	if p, _ := db.LoadProfiles(); len(p) != 0 {
		t.Fatalf("after delete: %v", p)
	}
}
