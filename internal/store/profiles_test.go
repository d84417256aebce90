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

func TestReplaceProfiles(t *testing.T) {
	dir, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PutProfileEntries("vigil.web", []procmon.ProfileEntry{{Exe: "/bin/busybox", Name: "httpd"}, {Exe: "/bin/busybox", Name: "wget"}}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutProfileEntries("vigil.db", []procmon.ProfileEntry{{Exe: "/usr/bin/postgres", Name: "postgres", UID: 999}}); err != nil {
		t.Fatal(err)
	}
	if err := db.ReplaceProfiles(map[string][]procmon.ProfileEntry{
		"vigil.web": {{Exe: "/usr/sbin/nginx", Name: "nginx", UID: 101}},
		"vigil.new": {{Exe: "/app", Name: "app"}},
	}); err != nil {
		t.Fatal(err)
	}
	p, err := db.LoadProfiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(p["vigil.web"]) != 1 || p["vigil.web"][0].Name != "nginx" {
		t.Errorf("vigil.web = %+v, want only nginx", p["vigil.web"])
	}
	if len(p["vigil.db"]) != 1 || len(p["vigil.new"]) != 1 {
		t.Errorf("profiles = %+v: vigil.db kept, vigil.new added", p)
	}
	if err := db.ReplaceProfiles(map[string][]procmon.ProfileEntry{"": nil}); err == nil {
		t.Error("an empty group name was accepted")
	}
}
