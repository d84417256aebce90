package procmon

import (
	"cmp"
	"context"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// recheck looks for the holder of socket want, of namespace nsIno, among the processes
// around the recent owners of new sockets there, before a miss pays for a scan of every
// process in the namespace:
//
//  1. the recent owners themselves, most recent first: a client that connects in a loop,
//     a server that accepts in one process or in a few long-lived workers;
//  2. when none of them holds it, the children of their parents and their own children,
//     newest first: a shell or supervisor that starts a client per connection (the
//     previous client's siblings), a server that forks a handler per connection (the
//     children of its listener's owner).
//
// It reads the descriptors of at most recheckProcs processes, and only of those in
// nsIno: a socket is attributed to a process of its namespace, as in a scan. Like a scan,
// it gives a socket that several processes hold to the youngest of them, but it knows
// only the holders it reads: the first one found and, from there down, the children
// that hold the socket too (inherited across fork: the shell that a reverse shell's nc
// started), among the newest few of each. A holder elsewhere in the tree (the socket
// passed over a unix socket to an unrelated process) is missed, and the cached answer
// stands until the namespace's next scan.
//
// Processes are named by PID, which a new process may have reused since; that costs a
// wasted read, never a wrong answer, since holding the socket is checked. Children are
// listed from /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN; without it, a re-check
// finds only recent owners themselves), which names those forked by thread TID, and only
// the first few hundred. Step 2 lists those of every thread of a parent (up to
// maxThreads), the search for younger holders only those of the holder's main thread:
// it runs on every re-check that finds the socket, and the holders that hand a socket
// down to a child (shells, nc, inetd-style servers) are single-threaded.
func (s *SocketOwners) recheck(ctx context.Context, nsIno uint64, want uint32, recent []recentOwner) (owner, recentOwner, bool) {
	b := s.scratch()
	defer s.bufs.Put(b)
	root := append(b.path[:0], s.procRoot...)
	root = append(root, 0)
	b.path = root
	procFD, err := openat(unix.AT_FDCWD, root, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return owner{}, recentOwner{}, false
	}
	defer unix.Close(procFD)

	r := recheckRun{ctx: ctx, procFD: procFD, b: b, ns: nsIno, want: want, reads: s.lim.recheckProcs}
	for _, ro := range recent {
		if r.visit(ro.pid, ro.ppid, ro.fd) {
			break
		}
	}
	for _, ro := range recent {
		if r.found {
			break
		}
		if !r.visitChildren(ro.ppid, ro.fd, len(r.seen), true) {
			r.visitChildren(ro.pid, ro.fd, len(r.seen), true)
		}
	}
	// Younger holders: children that inherited it, theirs, and so on. They were forked
	// after the socket was made, which is recent, so they are among the newest children.
	for expanded := int32(0); r.found && r.best.pid != expanded; {
		expanded = r.best.pid
		r.visitChildren(expanded, r.best.fd, youngestKids, false)
	}
	if !r.found || ctx.Err() != nil {
		return owner{}, recentOwner{}, false
	}
	return owner{pid: r.best.pid, fd: r.best.fd}, r.best, true
}

// recheckRun is the state of one re-check. It lives on the stack: a re-check allocates
// nothing.
type recheckRun struct {
	ctx    context.Context
	procFD int
	b      *scratch
	ns     uint64
	want   uint32
	reads  int // descriptor tables it may still read

	seen  [64]int32 // processes looked at, and parents listed (negated)
	nseen int

	found     bool
	best      recentOwner // the youngest holder found
	bestStart uint64      // read when a second holder is found; 0 until then
}

// mark notes id, and says whether it was new and there is room to look at it.
func (r *recheckRun) mark(id int32) bool {
	for _, v := range r.seen[:r.nseen] {
		if v == id {
			return false
		}
	}
	if r.nseen == len(r.seen) {
		return false
	}
	r.seen[r.nseen] = id
	r.nseen++
	return true
}

// visit looks for the socket among the descriptors of pid, a child of ppid, and says
// whether it found it there. It tries descriptor hint first: a process that closes a
// connection and opens the next gets the same lowest free number again, and a client
// started in a loop gets the same number as the one before.
func (r *recheckRun) visit(pid, ppid, hint int32) bool {
	if pid <= 0 || r.reads <= 0 || r.ctx.Err() != nil || !r.mark(pid) {
		return false
	}
	b := r.b
	if n, err := readlinkat(r.procFD, r.rel(pid, "/ns/net"), b.link[:]); err != nil {
		return false
	} else if ino, ok := parseNSLink(b.link[:n]); !ok || ino != r.ns {
		return false
	}
	r.reads--
	fd, ok := hint, r.holdsAt(pid, hint)
	if !ok {
		fd, ok = r.holds(pid)
	}
	if !ok {
		return false
	}
	if r.found {
		if r.bestStart == 0 {
			_, r.bestStart = readStat(r.procFD, b, r.best.pid)
		}
		_, start := readStat(r.procFD, b, pid)
		if start < r.bestStart || start == r.bestStart && pid < r.best.pid {
			return true
		}
		r.bestStart = start
	}
	r.found, r.best = true, recentOwner{pid: pid, ppid: ppid, fd: fd}
	return true
}

// youngestKids is how many of a holder's children, the newest, a re-check looks at for
// younger holders of the socket; maxThreads how many threads of a parent it lists the
// children of.
const (
	youngestKids = 4
	maxThreads   = 16
)

// visitChildren visits the newest most children of parent, newest first, until one holds
// the socket, and says whether one did. The kernel lists a process's children by the
// thread that forked them: with allThreads, those of the first maxThreads threads of
// parent are visited, by PID from the highest (the newest, until PIDs wrap around);
// without, only those of its main thread, in the order they were forked.
func (r *recheckRun) visitChildren(parent, hint int32, most int, allThreads bool) bool {
	if parent <= 0 || r.reads <= 0 || !r.mark(-parent) {
		return false
	}
	// visit reuses the buffers, so the children are taken out first.
	var kids [64]int32
	nk := 0
	if !allThreads {
		nk = r.children(parent, parent, kids[:])
	} else {
		dir, err := openat(r.procFD, r.rel(parent, "/task"), unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return false
		}
		threads := 0
		for threads < maxThreads && nk < len(kids) {
			n, err := unix.Getdents(dir, r.b.dents[:])
			if err != nil || n == 0 {
				break
			}
			for off := 0; off < n && threads < maxThreads && nk < len(kids); {
				_, name, next := dirent(r.b.dents[:n], off)
				off = next
				if tid, ok := parsePID(name); ok {
					threads++
					nk += r.children(parent, tid, kids[nk:])
				}
			}
		}
		unix.Close(dir)
		if threads > 1 {
			slices.SortFunc(kids[:nk], func(a, b int32) int { return cmp.Compare(b, a) })
		}
	}
	for _, kid := range kids[:min(nk, most)] {
		if r.visit(kid, parent, hint) {
			return true
		}
	}
	return false
}

// children fills out with the children forked by thread tid of pid, newest first, and
// returns how many.
func (r *recheckRun) children(pid, tid int32, out []int32) int {
	rel := r.rel(pid, "/task/")
	rel = strconv.AppendInt(rel[:len(rel)-1], int64(tid), 10)
	rel = append(rel, "/children\x00"...)
	r.b.rel = rel
	n, err := readFileAt(r.procFD, rel, r.b.file[:])
	if err != nil {
		return 0
	}
	return lastPIDs(r.b.file[:n], out)
}

// holdsAt says whether descriptor fd of pid is the socket.
func (r *recheckRun) holdsAt(pid, fd int32) bool {
	if fd < 0 {
		return false
	}
	rel := r.rel(pid, "/fd/")
	rel = strconv.AppendInt(rel[:len(rel)-1], int64(fd), 10)
	rel = append(rel, 0)
	r.b.rel = rel
	n, err := readlinkat(r.procFD, rel, r.b.link[:])
	if err != nil {
		return false
	}
	ino, ok := parseSocketLink(r.b.link[:n])
	return ok && ino == r.want
}

// holds returns the descriptor under which pid holds the socket.
func (r *recheckRun) holds(pid int32) (int32, bool) {
	b := r.b
	dir, err := openat(r.procFD, r.rel(pid, "/fd"), unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return 0, false
	}
	defer unix.Close(dir)
	for {
		n, err := unix.Getdents(dir, b.fds[:])
		if err != nil || n == 0 {
			return 0, false
		}
		for off := 0; off < n; {
			start := off
			_, name, next := dirent(b.fds[:n], off)
			off = next
			fd, ok := parsePID(name)
			if !ok {
				continue
			}
			nameZ := b.fds[start+direntNameOff : start+direntNameOff+len(name)+1]
			ln, err := readlinkat(dir, nameZ, b.link[:])
			if err != nil {
				continue
			}
			if ino, ok := parseSocketLink(b.link[:ln]); ok && ino == r.want {
				return fd, true
			}
		}
	}
}

// rel sets b.rel to "PID" + name, NUL-terminated, and returns it.
func (r *recheckRun) rel(pid int32, name string) []byte {
	rel := strconv.AppendInt(r.b.rel[:0], int64(pid), 10)
	rel = append(rel, name...)
	rel = append(rel, 0)
	r.b.rel = rel
	return rel
}

// lastPIDs fills out with the last PIDs of a space-separated list (as
// /proc/PID/task/TID/children gives them, oldest first), last first, and returns how many.
func lastPIDs(b []byte, out []int32) int {
	n := 0
	for end := len(b); end > 0 && n < len(out); {
		for end > 0 && (b[end-1] < '0' || b[end-1] > '9') {
			end--
		}
		start := end
		for start > 0 && b[start-1] >= '0' && b[start-1] <= '9' {
			start--
		}
		if start == end {
			break
		}
		if pid, ok := parsePID(b[start:end]); ok {
			out[n] = pid
			n++
		}
		end = start
	}
	return n
}
