package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// DefaultDir is the data dir of `vigil up` unless told otherwise.
const DefaultDir = "/var/lib/vigil"

const lockFile = "vigil.lock"

// ErrLocked is returned when another process holds the data dir.
var ErrLocked = errors.New("data dir is in use by another vigil process")

// Dir is an open, locked data directory. It is not safe for concurrent Close.
type Dir struct {
	Path string
	lock *os.File
}

// OpenDir creates the data dir when missing (mode 0700), tightens its mode when it is
// wider, refuses one owned by another user, and takes the lock.
func OpenDir(path string) (*Dir, error) {
	if path == "" {
		return nil, errors.New("data dir: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", path, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", abs, err)
	}
	info, err := os.Lstat(abs)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", abs, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("data dir %s is not a directory", abs)
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("data dir %s belongs to uid %d, not to this user (uid %d)", abs, st.Uid, os.Geteuid())
	}
	if info.Mode().Perm() != 0o700 {
		if err := os.Chmod(abs, 0o700); err != nil {
			return nil, fmt.Errorf("restrict data dir %s to mode 0700: %w", abs, err)
		}
	}

	lp := filepath.Join(abs, lockFile)
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", lp, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(lp)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(holder))
			if pid == "" {
				pid = "unknown"
			}
			return nil, fmt.Errorf("%w: %s (pid %s)", ErrLocked, abs, pid)
		}
		return nil, fmt.Errorf("lock %s: %w", lp, err)
	}
	// The pid is only a hint for the error above; the flock is what excludes.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Dir{Path: abs, lock: f}, nil
}

// Close releases the lock.
func (d *Dir) Close() error {
	if d.lock == nil {
		return nil
	}
	err := d.lock.Close()
	d.lock = nil
	return err
}
