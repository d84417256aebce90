package controller

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// mappedFiles knows which files the running processes map, grouped by mount namespace:
// the processes of a container share its mount namespace (docker exec'd ones too), and
// the paths in their /proc/PID/maps are paths inside the container's root, as the
// packages' files are. It is safe for concurrent use.
type mappedFiles struct {
	proc string
	ttl  time.Duration

	mu   sync.Mutex
	at   time.Time
	byNS map[uint64]map[string]bool
}

func newMappedFiles(proc string, ttl time.Duration) *mappedFiles {
	return &mappedFiles{proc: proc, ttl: ttl}
}

// of returns the files mapped by the processes in pid's mount namespace (executables
// included) and the path through which that namespace's root is seen.
func (m *mappedFiles) of(pid int) (map[string]bool, string, error) {
	ns, err := mountNS(m.proc, strconv.Itoa(pid))
	if err != nil {
		return nil, "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byNS == nil || time.Since(m.at) > m.ttl {
		m.byNS = scanMaps(m.proc)
		m.at = time.Now()
	}
	files := m.byNS[ns]
	if files == nil {
		// The namespace is newer than the last look; look again now.
		m.byNS = scanMaps(m.proc)
		m.at = time.Now()
		files = m.byNS[ns]
	}
	return files, path.Join(m.proc, strconv.Itoa(pid), "root"), nil
}

func mountNS(proc, pid string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path.Join(proc, pid, "ns", "mnt"), &st); err != nil {
		return 0, fmt.Errorf("mount namespace of process %s: %w", pid, err)
	}
	return st.Ino, nil
}

// scanMaps reads every process's maps and executable. Processes that exit meanwhile, and
// kernel threads (no maps), are skipped.
func scanMaps(proc string) map[uint64]map[string]bool {
	out := map[uint64]map[string]bool{}
	entries, err := os.ReadDir(proc)
	if err != nil {
		return out
	}
	for _, e := range entries {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		ns, err := mountNS(proc, pid)
		if err != nil {
			continue
		}
		files := out[ns]
		if files == nil {
			files = map[string]bool{}
			out[ns] = files
		}
		if exe, err := os.Readlink(path.Join(proc, pid, "exe")); err == nil {
			files[strings.TrimSuffix(exe, " (deleted)")] = true
		}
		f, err := os.Open(path.Join(proc, pid, "maps"))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 4096), 1<<20)
		for sc.Scan() {
			if p, ok := mapsPath(sc.Bytes()); ok {
				files[p] = true
			}
		}
		f.Close()
	}
	return out
}

// mapsPath returns the file of one line of /proc/PID/maps ("address perms offset dev
// inode pathname"; see proc(5)), if it maps one: pseudo-paths ([heap], [vdso]) and
// anonymous mappings have none. The pathname may hold spaces.
func mapsPath(line []byte) (string, bool) {
	rest := line
	for range 5 {
		rest = bytes.TrimLeft(rest, " ")
		i := bytes.IndexByte(rest, ' ')
		if i < 0 {
			return "", false
		}
		rest = rest[i:]
	}
	rest = bytes.TrimLeft(rest, " ")
	if len(rest) == 0 || rest[0] != '/' {
		return "", false
	}
	return strings.TrimSuffix(string(rest), " (deleted)"), true
}

// resolver resolves the directories of paths inside a root (a container's
// /proc/PID/root) through their symbolic links without ever leaving it: each component is looked at with Lstat, and a
// link's target is read and walked on from the root (absolute) or its directory. It
// maps a package's file (/lib/x86_64-linux-gnu/libc.so.6) to the path the kernel shows
// in maps (/usr/lib/x86_64-linux-gnu/libc.so.6 on a merged-/usr system). Not safe for
// concurrent use.
type resolver struct {
	root  string
	cache map[string]string // resolved dir + component → its resolution
	dirs  map[string]string // directory as given → resolved
}

func newResolver(root string) *resolver {
	return &resolver{root: root, cache: map[string]string{}, dirs: map[string]string{}}
}

// maxLinks is the kernel's own bound on links followed in one lookup (MAXSYMLINKS).
const maxLinks = 40

// resolve resolves the directories of p, not its last component: a package owns a
// symbolic link, not what it points to (libgcrypt20-dev's libgcrypt.so points at
// libgcrypt20's library, which the -dev package does not ship).
func (r *resolver) resolve(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	p = path.Clean(p) // no allocation when already clean, as package lists are
	dir, base := path.Split(p)
	if base == "" {
		return p
	}
	rd, ok := r.dirs[dir]
	if !ok {
		rd = r.resolveDir(dir)
		r.dirs[dir] = rd
	}
	if rd == "/" {
		return "/" + base
	}
	return rd + "/" + base
}

func (r *resolver) resolveDir(p string) string {
	parts := strings.Split(p, "/")
	cur := "/"
	links := 0
	for len(parts) > 0 {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, part)
		if res, ok := r.cache[next]; ok {
			cur = res
			continue
		}
		fi, err := os.Lstat(r.root + next)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			// Missing files keep their name: the package may list what is gone.
			r.cache[next] = next
			cur = next
			continue
		}
		target, err := os.Readlink(r.root + next)
		if links++; err != nil || links > maxLinks {
			return path.Clean(p)
		}
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		parts = append(strings.Split(target, "/"), parts...)
	}
	return cur
}
