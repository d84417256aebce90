package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenDirCreatesPrivateDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "vigil")
	d, err := OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o700 {
		t.Errorf("data dir mode = %04o, want 0700", got)
	}
}

func TestOpenDirTightensMode(t *testing.T) {
	path := t.TempDir()
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	info, _ := os.Stat(path)
	if got := info.Mode().Perm(); got != 0o700 {
		t.Errorf("data dir mode = %04o, want 0700", got)
	}
}

func TestOpenDirExcludesSecondUser(t *testing.T) {
	path := t.TempDir()
	d, err := OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file description, so a second open in the same
	// process conflicts just as another process would.
	if _, err := OpenDir(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second OpenDir: err = %v, want ErrLocked", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2, err := OpenDir(path)
	if err != nil {
		t.Fatalf("OpenDir after Close: %v", err)
	}
	d2.Close()
}

func TestOpenDirRejectsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(path); err == nil {
		t.Fatal("OpenDir on a regular file succeeded")
	}
}
