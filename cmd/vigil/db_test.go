package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// runVigil runs the command line in-process and returns its standard output.
func runDBCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCommand(&out, &errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestDBCommands(t *testing.T) {
	dir := t.TempDir()
	out, err := runDBCommand(t, "db", "import", "--db", dir, "../../internal/scan/vulndb/testdata/osv")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "starter") || !strings.Contains(out, "testdata/osv") || !strings.Contains(out, "3 warnings") {
		t.Errorf("import output:\n%s", out)
	}
	out, err = runDBCommand(t, "db", "status", "--db", dir, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Records    int            `json:"records"`
		Ecosystems map[string]int `json:"ecosystems"`
		Sources    []struct {
			Name string `json:"name"`
		} `json:"sources"`
		AgeSeconds int64 `json:"age_seconds"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if st.Ecosystems["npm"] != 1 || st.Ecosystems["Go"] == 0 || len(st.Sources) != 2 || st.AgeSeconds <= 0 {
		t.Errorf("status %+v", st)
	}
	out, err = runDBCommand(t, "db", "status", "--db", dir)
	if err != nil || !strings.Contains(out, "ECOSYSTEM") || !strings.Contains(out, "npm") {
		t.Errorf("status table (%v):\n%s", err, out)
	}
	if _, err := runDBCommand(t, "db", "status", "--db", dir, "-o", "yaml"); err == nil {
		t.Error("-o yaml accepted")
	}
	if _, err := runDBCommand(t, "db", "import", "--db", dir, "/nonexistent/osv"); err == nil {
		t.Error("import of a missing path succeeded")
	}
}

func TestDBUpdateFrom(t *testing.T) {
	rec, err := os.ReadFile("../../internal/scan/vulndb/testdata/osv/crates.io/RUSTSEC-2016-0001.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/crates.io/all.zip" {
			http.NotFound(w, r)
			return
		}
		w.Write(dbZipOf(t, "RUSTSEC-2016-0001.json", rec))
	}))
	defer srv.Close()
	dir := t.TempDir()
	out, err := runDBCommand(t, "db", "update", "--db", dir, "--from", srv.URL, "--ecosystem", "crates.io,npm")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, srv.URL+"/crates.io/all.zip") {
		t.Errorf("update output:\n%s", out)
	}
	// Offline, from a directory.
	if _, err := runDBCommand(t, "db", "update", "--db", dir, "--from", "../../internal/scan/vulndb/testdata/osv/Go"); err != nil {
		t.Fatal(err)
	}
}

func dbZipOf(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
