package procmon

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The /proc side. Paths are built in pooled buffers and passed to the system calls
// NUL-terminated, so that confirming a cached owner allocates nothing.

// pidNetNS is the network namespace of a process as a scan found it.
type pidNetNS struct {
	// dino is the inode of the /proc/PID directory entry: a new process that reuses the
	// PID gets a new one.
	dino    uint64
	netns   uint64 // 0 when unreadable
	first   time.Time
	checked time.Time
	seen    time.Time // by the latest listing of /proc
}

// scratch holds the buffers of one lookup or scan.
type scratch struct {
	path  []byte
	rel   []byte
	link  [4096]byte
	file  [4096]byte
	dents [32 << 10]byte // /proc
	fds   [16 << 10]byte // /proc/PID/fd
}

func (s *SocketOwners) scratch() *scratch {
	if b, ok := s.bufs.Get().(*scratch); ok {
		return b
	}
	return &scratch{path: make([]byte, 0, 256), rel: make([]byte, 0, 64)}
}

// procPath sets b.path to procRoot/pid/name, NUL-terminated, and returns it.
func (b *scratch) procPath(root string, pid int32, name string) []byte {
	p := append(b.path[:0], root...)
	p = append(p, '/')
	p = strconv.AppendInt(p, int64(pid), 10)
	p = append(p, '/')
	p = append(p, name...)
	p = append(p, 0)
	b.path = p
	return p
}

// confirm checks that o still holds the socket and, when what is known of it is older
// than detailsTTL, reads its names and user again; read is when they were read.
func (s *SocketOwners) confirm(o owner, sockIno uint32) (p Process, read time.Time, ok bool) {
	b := s.scratch()
	defer s.bufs.Put(b)
	path := b.procPath(s.procRoot, o.pid, "fd/")
	path = strconv.AppendInt(path[:len(path)-1], int64(o.fd), 10)
	path = append(path, 0)
	b.path = path
	n, err := readlinkat(unix.AT_FDCWD, path, b.link[:])
	if err != nil {
		return Process{}, time.Time{}, false
	}
	if ino, ok := parseSocketLink(b.link[:n]); !ok || ino != sockIno {
		return Process{}, time.Time{}, false
	}
	now := time.Now()
	if !o.read.IsZero() && now.Sub(o.read) < s.lim.detailsTTL {
		return o.proc, o.read, true
	}
	p = o.proc
	p.PID = int(o.pid)
	if err := s.readProcess(b, o.pid, &p); err != nil {
		return Process{}, time.Time{}, false
	}
	return p, now, true
}

// readProcess refreshes p's comm, exe and uid from /proc, keeping p's strings when they
// have not changed. A process that has gone is an error; an exe the kernel does not give
// is not.
func (s *SocketOwners) readProcess(b *scratch, pid int32, p *Process) error {
	n, err := readFileAt(unix.AT_FDCWD, b.procPath(s.procRoot, pid, "comm"), b.file[:])
	if err != nil {
		return fmt.Errorf("read comm of %d: %w", pid, err)
	}
	comm := bytes.TrimSuffix(b.file[:n], []byte("\n"))
	if string(comm) != p.Comm {
		p.Comm = string(comm)
	}

	n, err = readFileAt(unix.AT_FDCWD, b.procPath(s.procRoot, pid, "status"), b.file[:])
	if err != nil {
		return fmt.Errorf("read status of %d: %w", pid, err)
	}
	uid, ok := parseStatusUID(b.file[:n])
	if !ok {
		return fmt.Errorf("no Uid line in status of %d", pid)
	}
	p.UID = uid

	n, err = readlinkat(unix.AT_FDCWD, b.procPath(s.procRoot, pid, "exe"), b.link[:])
	if err != nil {
		n = 0
	}
	if string(b.link[:n]) != p.Exe {
		p.Exe = string(b.link[:n])
	}
	return nil
}

// scan lists the sockets held by the processes in namespace nsIno. It is bounded by
// maxSockets, but always keeps want, whose owner it also returns with its parent (a zero
// pid when nobody in the namespace holds want).
func (s *SocketOwners) scan(ctx context.Context, nsIno uint64, want uint32) (map[uint32]owner, recentOwner, error) {
	b := s.scratch()
	defer s.bufs.Put(b)
	root := append(b.path[:0], s.procRoot...)
	root = append(root, 0)
	b.path = root
	procFD, err := openat(unix.AT_FDCWD, root, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, recentOwner{}, fmt.Errorf("open %s: %w", s.procRoot, err)
	}
	defer unix.Close(procFD)

	start := time.Now()
	s.pidMu.Lock()
	reread := start.Sub(s.pidsCheck) >= s.lim.pidRecheck
	if reread {
		s.pidsCheck = start
	}
	s.pidMu.Unlock()

	sc := procScan{fd: procFD, b: b, owners: map[uint32]owner{}, max: s.lim.maxSockets, want: want}
	for {
		n, err := unix.Getdents(procFD, b.dents[:])
		if err != nil {
			return nil, recentOwner{}, fmt.Errorf("list %s: %w", s.procRoot, err)
		}
		if n == 0 {
			break
		}
		for off := 0; off < n; {
			dino, name, next := dirent(b.dents[:n], off)
			off = next
			pid, ok := parsePID(name)
			if !ok {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, recentOwner{}, err
			}
			if s.netnsOf(procFD, pid, dino, name, b, start, reread) == nsIno {
				sc.process(pid, name)
			}
		}
	}
	s.pidMu.Lock()
	for pid, e := range s.pids {
		if e.seen.Before(start) {
			delete(s.pids, pid)
		}
	}
	s.pidMu.Unlock()
	sc.trim()
	var ro recentOwner
	if o, ok := sc.owners[want]; ok {
		ro = recentOwner{pid: o.pid, ppid: sc.parent(o.pid), fd: o.fd}
	}
	return sc.owners, ro, nil
}

// netnsOf returns the network namespace inode of process pid, whose /proc entry is name
// with inode dino, from memory when it was read recently enough, else from
// /proc/PID/ns/net. It is 0 for a process gone or hidden from us (EACCES on a hardened
// host), which cannot own anything we could report.
func (s *SocketOwners) netnsOf(procFD int, pid int32, dino uint64, name []byte, b *scratch, now time.Time, reread bool) uint64 {
	s.pidMu.Lock()
	e := s.pids[pid]
	if e == nil || e.dino != dino {
		e = &pidNetNS{dino: dino, first: now}
		s.pids[pid] = e
	}
	e.seen = now
	ns := e.netns
	fresh := ns != 0 && !reread && now.Sub(e.first) >= s.lim.pidSettle && !e.checked.IsZero()
	s.pidMu.Unlock()
	if fresh {
		return ns
	}
	rel := append(b.rel[:0], name...)
	rel = append(rel, "/ns/net\x00"...)
	b.rel = rel
	ns = 0
	if n, err := readlinkat(procFD, rel, b.link[:]); err == nil {
		ns, _ = parseNSLink(b.link[:n])
	}
	s.pidMu.Lock()
	e.netns, e.checked = ns, now
	s.pidMu.Unlock()
	return ns
}

// procScan is the state of one scan.
type procScan struct {
	fd     int // procRoot
	b      *scratch
	owners map[uint32]owner
	max    int
	want   uint32
	starts map[int32]uint64 // start times, read only for sockets held by several processes
}

// process records the sockets among the descriptors of pid, whose /proc entry is name.
func (sc *procScan) process(pid int32, name []byte) {
	rel := append(sc.b.rel[:0], name...)
	rel = append(rel, "/fd\x00"...)
	sc.b.rel = rel
	dir, err := openat(sc.fd, rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return
	}
	defer unix.Close(dir)
	for {
		n, err := unix.Getdents(dir, sc.b.fds[:])
		if err != nil || n == 0 {
			return
		}
		for off := 0; off < n; {
			start := off
			_, fdName, next := dirent(sc.b.fds[:n], off)
			off = next
			fd, ok := parsePID(fdName)
			if !ok {
				continue
			}
			// The name is NUL-terminated in place.
			nameZ := sc.b.fds[start+direntNameOff : start+direntNameOff+len(fdName)+1]
			ln, err := readlinkat(dir, nameZ, sc.b.link[:])
			if err != nil {
				continue
			}
			if ino, ok := parseSocketLink(sc.b.link[:ln]); ok {
				sc.record(ino, pid, fd)
			}
		}
	}
}

// record notes that pid holds socket ino as descriptor fd. A socket held by several
// processes (inherited across fork, passed over a unix socket) goes to the youngest
// holder: the service rather than the supervisor that made its listener, the worker
// rather than the master, the shell that a reverse shell's nc started.
func (sc *procScan) record(ino uint32, pid, fd int32) {
	prev, dup := sc.owners[ino]
	switch {
	case !dup:
		if len(sc.owners) >= sc.max && ino != sc.want {
			return
		}
		sc.owners[ino] = owner{pid: pid, fd: fd}
	case prev.pid == pid:
	default:
		ps, ns := sc.startTime(prev.pid), sc.startTime(pid)
		if ns > ps || ns == ps && pid > prev.pid {
			sc.owners[ino] = owner{pid: pid, fd: fd}
		}
	}
}

// trim brings the result within max when the wanted socket came in over it.
func (sc *procScan) trim() {
	for ino := range sc.owners {
		if len(sc.owners) <= sc.max {
			return
		}
		if ino != sc.want {
			delete(sc.owners, ino)
		}
	}
}

func (sc *procScan) startTime(pid int32) uint64 {
	if t, ok := sc.starts[pid]; ok {
		return t
	}
	if sc.starts == nil {
		sc.starts = map[int32]uint64{}
	}
	_, t := readStat(sc.fd, sc.b, pid)
	sc.starts[pid] = t
	return t
}

// parent returns the parent of pid, 0 when unknown.
func (sc *procScan) parent(pid int32) int32 {
	ppid, _ := readStat(sc.fd, sc.b, pid)
	return ppid
}

// readStat returns the parent and the start time of pid from /proc/PID/stat under the
// directory procFD; zeros when they cannot be read.
func readStat(procFD int, b *scratch, pid int32) (ppid int32, start uint64) {
	rel := strconv.AppendInt(b.rel[:0], int64(pid), 10)
	rel = append(rel, "/stat\x00"...)
	b.rel = rel
	n, err := readFileAt(procFD, rel, b.file[:])
	if err != nil {
		return 0, 0
	}
	ppid, _ = parseStatPPID(b.file[:n])
	start, _ = parseStatStartTime(b.file[:n])
	return ppid, start
}

// Directory entries as getdents64 returns them (struct linux_dirent64, include/linux/dirent.h):
// d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name NUL-terminated.
const (
	direntReclenOff = 16
	direntNameOff   = 19
)

// dirent returns the inode and name of the entry at off in a getdents64 buffer, and the
// offset of the next entry.
func dirent(buf []byte, off int) (ino uint64, name []byte, next int) {
	if off+direntNameOff > len(buf) {
		return 0, nil, len(buf)
	}
	reclen := int(binary.NativeEndian.Uint16(buf[off+direntReclenOff:]))
	if reclen < direntNameOff || off+reclen > len(buf) {
		return 0, nil, len(buf)
	}
	name = buf[off+direntNameOff : off+reclen]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	return binary.NativeEndian.Uint64(buf[off:]), name, off + reclen
}

// System calls on NUL-terminated paths held in byte slices: the string-taking wrappers
// of package unix copy every path into a new allocation.

func readlinkat(dirfd int, path, buf []byte) (int, error) {
	n, _, e := unix.Syscall6(unix.SYS_READLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(&path[0])),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func openat(dirfd int, path []byte, flags int) (int, error) {
	for {
		fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&path[0])),
			uintptr(flags|unix.O_CLOEXEC), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(fd), nil
	}
}

// readFileAt reads the start of a small /proc file into buf with a single read: procfs
// renders such a file whole and hands over as much as the buffer takes, so a second read
// would only find the end.
func readFileAt(dirfd int, path, buf []byte) (int, error) {
	fd, err := openat(dirfd, path, unix.O_RDONLY)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}
