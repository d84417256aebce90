package procmon

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetNSRef names a network namespace: Inode identifies it, Path is a way to open it
// (/proc/PID/ns/net of a process inside, or a bind mount such as /run/netns/NAME). When
// Inode is zero it is read from Path.
type NetNSRef struct {
	Path  string `json:"path"`
	Inode uint64 `json:"inode"`
}

// Process is the owner of a socket, as the host sees it.
type Process struct {
	PID int `json:"pid"`
	// Comm is /proc/PID/comm: the name the process was executed under (an applet's name
	// for busybox), at most 15 bytes.
	Comm string `json:"comm"`
	// Exe is the link /proc/PID/exe as the host reads it: for a process in a container,
	// the path inside the container's root. Empty when the kernel does not say (a kernel
	// thread, a process that is exiting).
	Exe string `json:"exe"`
	// UID is the real user ID from /proc/PID/status, in the host's user namespace.
	UID int `json:"uid"`
}

// Stats counts what a SocketOwners has done since it was made.
type Stats struct {
	Lookups uint64 `json:"lookups"`
	// Found counts lookups that returned an owner; ListenerFallbacks those among them
	// that were answered by the listening socket because no connected one matched.
	Found             uint64 `json:"found"`
	ListenerFallbacks uint64 `json:"listener_fallbacks"`
	// CacheHits counts owners confirmed from the cache, without a /proc scan.
	CacheHits uint64 `json:"cache_hits"`
	Scans     uint64 `json:"scans"`
	// ScansLimited counts lookups given up because scans were over their CPU budget.
	ScansLimited uint64 `json:"scans_limited"`
}

// Protocol numbers Lookup accepts.
const (
	protoTCP = unix.IPPROTO_TCP
	protoUDP = unix.IPPROTO_UDP
)

// limits bound the work and memory of a SocketOwners.
type limits struct {
	maxSockets    int           // cached socket→owner entries, all namespaces together
	maxNamespaces int           // namespaces with cached owners
	maxConns      int           // open sock_diag sockets, each keeping its namespace alive
	connIdle      time.Duration // a sock_diag socket unused this long is closed
	// Scans are paid for in time: scanBudget seconds of scanning per second, at most
	// scanBurst seconds ahead. A scan for a container costs a fraction of a millisecond,
	// one of the host's namespace (every process's descriptors) many milliseconds, so a
	// count of scans would be either too tight for the one or too loose for the other.
	scanBudget, scanBurst float64
	// detailsTTL is how long a cached owner's comm, exe and uid are trusted before they
	// are read again. Its hold on the socket is checked on every hit regardless.
	detailsTTL time.Duration
	// A process's network namespace is read again when it was first seen less than
	// pidSettle ago (runc, nsenter and ip netns exec switch namespaces right after they
	// start) and otherwise every pidRecheck.
	pidSettle, pidRecheck time.Duration
}

var defaultLimits = limits{
	maxSockets:    1 << 16,
	maxNamespaces: 1024,
	maxConns:      256,
	connIdle:      30 * time.Second,
	scanBudget:    0.05, // 5% of one CPU
	scanBurst:     0.1,
	detailsTTL:    time.Second,
	pidSettle:     2 * time.Second,
	pidRecheck:    10 * time.Second,
}

// sockDiag answers sock_diag queries inside one network namespace.
type sockDiag interface {
	// query returns the socket the kernel finds for q, errNoSocket when there is none.
	query(q diagQuery) (diagSocket, error)
	close() error
}

var (
	errNoSocket   = errors.New("no such socket")
	errDiagClosed = errors.New("sock_diag socket closed")
	errNetNSGone  = errors.New("network namespace is gone")
)

// SocketOwners finds the processes that own TCP and UDP sockets in any network namespace
// on the host. It keeps one sock_diag socket per namespace recently asked about and a
// bounded cache from socket inode to owner, refreshed by scanning /proc when a socket is
// not in it (within a CPU budget; concurrent misses in one namespace share a scan). A
// cached owner is confirmed on every hit: its descriptor must still link to the socket.
// Its comm, exe and uid are read again when older than a second.
//
// Costs, in system calls: a hit is one or two sock_diag round trips and one readlink,
// without allocation. A miss adds a scan: a listing of /proc, a readlink of ns/net for the
// processes not seen in the last seconds (the network namespace of every process is
// remembered by PID and checked again every 10 seconds), and one readlink per descriptor
// of the processes in the namespace.
//
// It is safe for concurrent use by multiple goroutines. Close releases its sockets.
type SocketOwners struct {
	procRoot string
	log      *slog.Logger
	lim      limits
	open     func(ns NetNSRef, inode uint64) (sockDiag, error)
	bufs     sync.Pool // *scratch

	mu        sync.Mutex
	closed    bool
	conns     map[uint64]*diagConn // by namespace inode
	nextPrune time.Time
	owners    map[uint64]*nsOwners // by namespace inode
	cached    int                  // entries in all owners maps
	tokens    float64              // seconds of scanning
	tokensAt  time.Time

	pidMu     sync.Mutex
	pids      map[int32]*pidNetNS
	pidsCheck time.Time // when every process's namespace was last read

	lookups, found, fallbacks, hits, scans, limited atomic.Uint64
	lastWarn                                        atomic.Int64 // unix nanoseconds
}

type diagConn struct {
	diag    sockDiag
	lastUse time.Time
}

// nsOwners is what the last scan of one namespace found.
type nsOwners struct {
	sockets map[uint32]owner // by socket inode
	// scanned is when the last complete scan started; every socket that existed then and
	// had an owner in the namespace is in sockets.
	scanned  time.Time
	scanning chan struct{} // closed when the running scan ends; nil when none runs
	lastUse  time.Time
}

type owner struct {
	pid, fd int32
	proc    Process   // as last read, so that a hit allocates nothing while it holds
	read    time.Time // when proc was read; zero before the first hit
}

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

// NewSocketOwners returns a SocketOwners that reads processes under procRoot (the host's
// /proc; "/proc" when empty) and logs to log (nothing when nil).
func NewSocketOwners(procRoot string, log *slog.Logger) *SocketOwners {
	if procRoot == "" {
		procRoot = "/proc"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var self uint64
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err == nil {
		self = st.Ino
	} else {
		log.Warn("cannot read own network namespace; sock_diag sockets will always be opened through setns", "error", err)
	}
	s := &SocketOwners{
		procRoot: procRoot,
		log:      log,
		lim:      defaultLimits,
		conns:    map[uint64]*diagConn{},
		owners:   map[uint64]*nsOwners{},
		pids:     map[int32]*pidNetNS{},
	}
	s.open = func(ns NetNSRef, inode uint64) (sockDiag, error) { return openNetlinkDiag(ns, inode, self) }
	s.tokens = s.lim.scanBurst
	return s
}

// Lookup returns the owner of the TCP or UDP socket (proto 6 or 17) whose local address
// is local and whose peer is remote, in the network namespace ns. IPv4 flows are found on
// IPv6 sockets that accept them (v4-mapped addresses), and local and remote may be given
// either way.
//
// The socket is the one the kernel would deliver a packet from remote to local to: the
// connected socket of the flow, or, when there is none, the listening TCP socket or the
// unconnected UDP socket bound to local's port on local's address or the wildcard
// address. So the server end of a connection whose SYN has only just arrived, or that
// waits in the accept queue, is attributed to the listener's owner.
//
// ok is false when the owner cannot be found: no such socket, a socket no process holds
// (closed, in TIME_WAIT), an owner outside the namespace, a namespace that is gone, scans
// over their CPU budget, ctx done. It never guesses. Give ns.Inode when it is known: it
// saves a stat of ns.Path.
func (s *SocketOwners) Lookup(ctx context.Context, ns NetNSRef, proto uint8, local, remote netip.AddrPort) (p Process, ok bool) {
	s.lookups.Add(1)
	if proto != protoTCP && proto != protoUDP || ctx.Err() != nil {
		return Process{}, false
	}
	local = netip.AddrPortFrom(local.Addr().Unmap().WithZone(""), local.Port())
	remote = netip.AddrPortFrom(remote.Addr().Unmap().WithZone(""), remote.Port())
	if !local.Addr().IsValid() || !remote.Addr().IsValid() || local.Addr().Is4() != remote.Addr().Is4() || local.Port() == 0 {
		return Process{}, false
	}
	inode := ns.Inode
	if inode == 0 {
		var st unix.Stat_t
		if err := unix.Stat(ns.Path, &st); err != nil {
			s.warn("stat network namespace", "path", ns.Path, "error", err)
			return Process{}, false
		}
		inode = st.Ino
	}

	sk, fallback, err := s.findSocket(ns, inode, proto, local, remote)
	if err != nil {
		switch {
		case errors.Is(err, errNoSocket):
		case errors.Is(err, errNetNSGone), errors.Is(err, errDiagClosed):
			s.log.Debug("sock_diag lookup", "netns", inode, "error", err)
		default:
			s.warn("sock_diag lookup", "netns", inode, "proto", proto, "local", local, "remote", remote, "error", err)
		}
		return Process{}, false
	}
	// The socket existed at this instant, so a scan that starts later sees its owner.
	since := time.Now()
	if p, ok = s.owner(ctx, inode, sk.inode, since); ok {
		s.found.Add(1)
		if fallback {
			s.fallbacks.Add(1)
		}
	}
	return p, ok
}

// Stats returns the counters.
func (s *SocketOwners) Stats() Stats {
	return Stats{
		Lookups:           s.lookups.Load(),
		Found:             s.found.Load(),
		ListenerFallbacks: s.fallbacks.Load(),
		CacheHits:         s.hits.Load(),
		Scans:             s.scans.Load(),
		ScansLimited:      s.limited.Load(),
	}
}

// Close closes the sock_diag sockets, letting their namespaces go. Lookups after Close
// find nothing.
func (s *SocketOwners) Close() error {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = map[uint64]*diagConn{}
	s.owners = map[uint64]*nsOwners{}
	s.cached = 0
	s.mu.Unlock()
	var errs []error
	for ino, c := range conns {
		if err := c.diag.close(); err != nil {
			errs = append(errs, fmt.Errorf("close sock_diag socket of netns %d: %w", ino, err))
		}
	}
	return errors.Join(errs...)
}

// warn logs unexpected failures at most once a second: Lookup has no error to return, and
// a persistent failure must show without flooding the log at the rate of new flows.
func (s *SocketOwners) warn(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := s.lastWarn.Load()
	if now-last < int64(time.Second) || !s.lastWarn.CompareAndSwap(last, now) {
		s.log.Debug(msg, args...)
		return
	}
	s.log.Warn(msg, args...)
}

// findSocket asks the kernel for the socket of the flow. fallback says that the answer is
// the listening socket because no connected socket with an owner matched.
func (s *SocketOwners) findSocket(ns NetNSRef, inode uint64, proto uint8, local, remote netip.AddrPort) (sk diagSocket, fallback bool, err error) {
	for attempt := 0; ; attempt++ {
		var d sockDiag
		if d, err = s.diag(ns, inode); err != nil {
			return diagSocket{}, false, err
		}
		sk, fallback, err = resolveSocket(d, proto, local, remote)
		if !errors.Is(err, errDiagClosed) || attempt > 0 {
			return sk, fallback, err
		}
		// Closed under us for being idle or the least recently used: open a new one.
	}
}

// resolveSocket is the kernel's own demultiplexing, asked twice at most. The exact query
// already falls back to listeners and unconnected UDP sockets when nothing in the
// established table matches; the second query covers a TCP flow whose connected socket
// exists but has no owner yet (SYN_RECV, or established and waiting in the accept queue:
// inode 0), where the listener's owner is the one that will accept it.
func resolveSocket(d sockDiag, proto uint8, local, remote netip.AddrPort) (diagSocket, bool, error) {
	sk, err := d.query(diagQuery{proto: proto, local: local, remote: remote})
	if err == nil && sk.inode != 0 && sk.matches(proto, local, remote) {
		return sk, sk.listening(proto), nil
	}
	if err != nil && !errors.Is(err, errNoSocket) {
		return diagSocket{}, false, err
	}
	if proto != protoTCP {
		return diagSocket{}, false, errNoSocket
	}
	unspecified := netip.IPv4Unspecified()
	if local.Addr().Is6() {
		unspecified = netip.IPv6Unspecified()
	}
	sk, err = d.query(diagQuery{proto: proto, local: local, remote: netip.AddrPortFrom(unspecified, 0)})
	if err != nil {
		return diagSocket{}, false, err
	}
	if sk.inode == 0 || sk.state != tcpListen || sk.local.Port() != local.Port() {
		return diagSocket{}, false, errNoSocket
	}
	return sk, true, nil
}

// diag returns the sock_diag socket of the namespace, opening it when needed.
func (s *SocketOwners) diag(ns NetNSRef, inode uint64) (sockDiag, error) {
	now := time.Now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errDiagClosed
	}
	if c, ok := s.conns[inode]; ok {
		c.lastUse = now
		var idle []sockDiag
		if now.After(s.nextPrune) {
			idle = s.pruneConnsLocked(now)
		}
		s.mu.Unlock()
		closeAll(idle)
		return c.diag, nil
	}
	s.mu.Unlock()

	d, err := s.open(ns, inode)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		d.close()
		return nil, errDiagClosed
	}
	if c, ok := s.conns[inode]; ok { // opened concurrently
		c.lastUse = now
		s.mu.Unlock()
		d.close()
		return c.diag, nil
	}
	s.conns[inode] = &diagConn{diag: d, lastUse: now}
	idle := s.pruneConnsLocked(now)
	s.mu.Unlock()
	closeAll(idle)
	return d, nil
}

// pruneConnsLocked removes the sockets idle for too long and, beyond maxConns, the least
// recently used ones, and returns them for closing outside the lock.
func (s *SocketOwners) pruneConnsLocked(now time.Time) []sockDiag {
	s.nextPrune = now.Add(s.lim.connIdle / 2)
	var out []sockDiag
	for ino, c := range s.conns {
		if now.Sub(c.lastUse) > s.lim.connIdle {
			out = append(out, c.diag)
			delete(s.conns, ino)
		}
	}
	for len(s.conns) > s.lim.maxConns {
		var oldest uint64
		var at time.Time
		for ino, c := range s.conns {
			if at.IsZero() || c.lastUse.Before(at) {
				oldest, at = ino, c.lastUse
			}
		}
		out = append(out, s.conns[oldest].diag)
		delete(s.conns, oldest)
	}
	return out
}

func closeAll(ds []sockDiag) {
	for _, d := range ds {
		d.close()
	}
}

// owner finds the process holding socket sockIno in namespace nsIno, which existed at
// since: from the cache when the holder there still has it, else from a scan that
// started after since (run here, or shared with a concurrent lookup).
func (s *SocketOwners) owner(ctx context.Context, nsIno uint64, sockIno uint32, since time.Time) (Process, bool) {
	scanned := false // by this lookup or one it waited for
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return Process{}, false
		}
		st := s.nsLocked(nsIno, since)
		fresh := !st.scanned.IsZero() && !st.scanned.Before(since)
		if o, ok := st.sockets[sockIno]; ok {
			s.mu.Unlock()
			if p, read, ok := s.confirm(o, sockIno); ok {
				if !scanned {
					s.hits.Add(1)
				}
				if read != o.read {
					s.remember(nsIno, sockIno, o, p, read)
				}
				return p, true
			}
			s.forget(nsIno, sockIno, o)
			if fresh {
				return Process{}, false
			}
			continue
		}
		if fresh {
			s.mu.Unlock()
			return Process{}, false
		}
		if ch := st.scanning; ch != nil {
			s.mu.Unlock()
			select {
			case <-ch:
				scanned = true
				continue
			case <-ctx.Done():
				return Process{}, false
			}
		}
		start := time.Now()
		if !s.takeTokenLocked(start) {
			s.mu.Unlock()
			s.limited.Add(1)
			s.warn("socket owner scans over their CPU budget", "netns", nsIno, "socket", sockIno)
			return Process{}, false
		}
		done := make(chan struct{})
		st.scanning = done
		s.mu.Unlock()
		scanned = true

		s.scans.Add(1)
		found, err := s.scan(ctx, nsIno, sockIno)

		s.mu.Lock()
		s.tokens -= time.Since(start).Seconds()
		st.scanning = nil
		if err == nil && !s.closed {
			s.cached += len(found) - len(st.sockets)
			st.sockets = found
			st.scanned = start
			s.evictLocked(nsIno)
		}
		s.mu.Unlock()
		close(done)
		if err != nil {
			if ctx.Err() == nil {
				s.warn("scan for socket owners", "netns", nsIno, "error", err)
			}
			return Process{}, false
		}
	}
}

// nsLocked returns the cache of a namespace, making it when needed.
func (s *SocketOwners) nsLocked(nsIno uint64, now time.Time) *nsOwners {
	st, ok := s.owners[nsIno]
	if ok {
		st.lastUse = now
		return st
	}
	st = &nsOwners{sockets: map[uint32]owner{}, lastUse: now}
	s.owners[nsIno] = st
	s.evictLocked(nsIno)
	return st
}

// evictLocked drops the least recently used namespaces until the cache is within its
// bounds, but never keep, the namespace at hand. Namespaces being scanned stay too: their
// scan will store into them.
func (s *SocketOwners) evictLocked(keep uint64) {
	for s.cached > s.lim.maxSockets || len(s.owners) > s.lim.maxNamespaces {
		var victim uint64
		var at time.Time
		found := false
		for ino, st := range s.owners {
			if ino != keep && st.scanning == nil && (!found || st.lastUse.Before(at)) {
				victim, at, found = ino, st.lastUse, true
			}
		}
		if !found {
			return
		}
		s.cached -= len(s.owners[victim].sockets)
		delete(s.owners, victim)
	}
}

// remember stores what was read of a confirmed owner, if the entry is still that owner.
func (s *SocketOwners) remember(nsIno uint64, sockIno uint32, o owner, p Process, read time.Time) {
	s.mu.Lock()
	if st, ok := s.owners[nsIno]; ok {
		if cur, ok := st.sockets[sockIno]; ok && cur.pid == o.pid && cur.fd == o.fd {
			cur.proc, cur.read = p, read
			st.sockets[sockIno] = cur
		}
	}
	s.mu.Unlock()
}

// forget drops an entry whose holder no longer has the socket.
func (s *SocketOwners) forget(nsIno uint64, sockIno uint32, o owner) {
	s.mu.Lock()
	if st, ok := s.owners[nsIno]; ok {
		if cur, ok := st.sockets[sockIno]; ok && cur.pid == o.pid && cur.fd == o.fd {
			delete(st.sockets, sockIno)
			s.cached--
		}
	}
	s.mu.Unlock()
}

// takeTokenLocked says whether a scan may start: the bucket holds seconds of scanning,
// filled at scanBudget per second up to scanBurst, and each scan takes out what it cost
// once it is done (so the bucket may go below zero).
func (s *SocketOwners) takeTokenLocked(now time.Time) bool {
	if !s.tokensAt.IsZero() {
		s.tokens = min(s.lim.scanBurst, s.tokens+now.Sub(s.tokensAt).Seconds()*s.lim.scanBudget)
	}
	s.tokensAt = now
	return s.tokens > 0
}

// The /proc side. Paths are built in pooled buffers and passed to the system calls
// NUL-terminated, so that confirming a cached owner allocates nothing.

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
// maxSockets, but always keeps want.
func (s *SocketOwners) scan(ctx context.Context, nsIno uint64, want uint32) (map[uint32]owner, error) {
	b := s.scratch()
	defer s.bufs.Put(b)
	root := append(b.path[:0], s.procRoot...)
	root = append(root, 0)
	b.path = root
	procFD, err := openat(unix.AT_FDCWD, root, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s.procRoot, err)
	}
	defer unix.Close(procFD)

	start := time.Now()
	s.pidMu.Lock()
	recheck := start.Sub(s.pidsCheck) >= s.lim.pidRecheck
	if recheck {
		s.pidsCheck = start
	}
	s.pidMu.Unlock()

	sc := procScan{fd: procFD, b: b, owners: map[uint32]owner{}, max: s.lim.maxSockets, want: want}
	for {
		n, err := unix.Getdents(procFD, b.dents[:])
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", s.procRoot, err)
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
				return nil, err
			}
			if s.netnsOf(procFD, pid, dino, name, b, start, recheck) == nsIno {
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
	return sc.owners, nil
}

// netnsOf returns the network namespace inode of process pid, whose /proc entry is name
// with inode dino, from memory when it was read recently enough, else from
// /proc/PID/ns/net. It is 0 for a process gone or hidden from us (EACCES on a hardened
// host), which cannot own anything we could report.
func (s *SocketOwners) netnsOf(procFD int, pid int32, dino uint64, name []byte, b *scratch, now time.Time, recheck bool) uint64 {
	s.pidMu.Lock()
	e := s.pids[pid]
	if e == nil || e.dino != dino {
		e = &pidNetNS{dino: dino, first: now}
		s.pids[pid] = e
	}
	e.seen = now
	ns := e.netns
	fresh := ns != 0 && !recheck && now.Sub(e.first) >= s.lim.pidSettle && !e.checked.IsZero()
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
	rel := strconv.AppendInt(sc.b.rel[:0], int64(pid), 10)
	rel = append(rel, "/stat\x00"...)
	sc.b.rel = rel
	var t uint64
	if n, err := readFileAt(sc.fd, rel, sc.b.file[:]); err == nil {
		t, _ = parseStatStartTime(sc.b.file[:n])
	}
	sc.starts[pid] = t
	return t
}

// Parsers of what /proc says.

// parseSocketLink parses the target of a /proc/PID/fd link to a socket: "socket:[INODE]".
func parseSocketLink(b []byte) (uint32, bool) {
	v, ok := parseBracketed(b, "socket:[")
	if !ok || v > math.MaxUint32 {
		return 0, false
	}
	return uint32(v), true
}

// parseNSLink parses the target of /proc/PID/ns/net: "net:[INODE]".
func parseNSLink(b []byte) (uint64, bool) {
	return parseBracketed(b, "net:[")
}

func parseBracketed(b []byte, prefix string) (uint64, bool) {
	if len(b) < len(prefix)+2 || string(b[:len(prefix)]) != prefix || b[len(b)-1] != ']' {
		return 0, false
	}
	return parseUint(b[len(prefix) : len(b)-1])
}

// parseStatusUID returns the real user ID: the first number of the Uid line of
// /proc/PID/status ("Uid:\treal\teffective\tsaved\tfilesystem").
func parseStatusUID(b []byte) (int, bool) {
	var line []byte
	if bytes.HasPrefix(b, []byte("Uid:")) {
		line = b[len("Uid:"):]
	} else if i := bytes.Index(b, []byte("\nUid:")); i >= 0 {
		line = b[i+len("\nUid:"):]
	} else {
		return 0, false
	}
	line = bytes.TrimLeft(line, " \t")
	end := 0
	for end < len(line) && line[end] >= '0' && line[end] <= '9' {
		end++
	}
	if end == len(line) || (line[end] != '\t' && line[end] != ' ' && line[end] != '\n') {
		return 0, false
	}
	v, ok := parseUint(line[:end])
	if !ok || v > math.MaxUint32 {
		return 0, false
	}
	return int(v), true
}

// parseStatStartTime returns field 22 of /proc/PID/stat, the start time in clock ticks
// after boot. The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatStartTime(b []byte) (uint64, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	fields := bytes.Fields(b[i+1:]) // field 3 onwards
	const startTime = 22 - 3
	if len(fields) <= startTime {
		return 0, false
	}
	return parseUint(fields[startTime])
}

// parsePID parses a /proc or /proc/PID/fd entry name; other names are not numbers.
func parsePID(b []byte) (int32, bool) {
	v, ok := parseUint(b)
	if !ok || v > math.MaxInt32 {
		return 0, false
	}
	return int32(v), true
}

func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
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

// The sock_diag side.

// diagQuery is one exact sock_diag request.
type diagQuery struct {
	proto         uint8
	local, remote netip.AddrPort
}

// diagSocket is what the kernel says of a socket; it mirrors struct inet_diag_msg
// (include/uapi/linux/inet_diag.h), with the addresses as the socket sees them.
type diagSocket struct {
	family        uint8
	state         uint8
	local, remote netip.AddrPort
	uid           uint32
	inode         uint32
}

// TCP states (include/net/tcp_states.h).
const tcpListen = 10

// matches says whether the kernel's answer is a socket for the flow: bound to local's
// port and, unless it is a listener or an unconnected UDP socket, connected to remote.
// The kernel's lookup guarantees it; this guards against answers to a stale request.
func (sk diagSocket) matches(proto uint8, local, remote netip.AddrPort) bool {
	if sk.local.Port() != local.Port() {
		return false
	}
	if sk.listening(proto) {
		return true
	}
	return sk.remote.Port() == remote.Port() && sk.remote.Addr().Unmap() == remote.Addr()
}

// listening says whether the socket takes packets from any peer.
func (sk diagSocket) listening(proto uint8) bool {
	if proto == protoTCP {
		return sk.state == tcpListen
	}
	return sk.remote.Port() == 0
}

// Layout of a request (struct nlmsghdr then struct inet_diag_req_v2) and of the part of
// a reply that is read (struct inet_diag_msg after the nlmsghdr).
const (
	nlmsgHdrLen      = unix.SizeofNlMsghdr // 16
	diagReqLen       = 56
	diagRequestLen   = nlmsgHdrLen + diagReqLen
	diagMsgLen       = 72
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	diagNoCookie     = ^uint32(0)
)

// encodeDiagRequest writes an exact (not dump) request for q into b, which must hold
// diagRequestLen bytes. Ports and addresses are in network order, the rest in host order.
//
// For TCP the kernel reads id.src as the socket's local end. For UDP it reads them the
// other way round ("src and dst are swapped for historical reasons", net/ipv4/udp_diag.c):
// id.src is the peer, the sender of the packet being demultiplexed.
func encodeDiagRequest(b []byte, q diagQuery, seq uint32) {
	clear(b[:diagRequestLen])
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], diagRequestLen)
	ne.PutUint16(b[4:], sockDiagByFamily)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(b[8:], seq)
	r := b[nlmsgHdrLen:]
	r[0] = unix.AF_INET
	if q.local.Addr().Is6() {
		r[0] = unix.AF_INET6
	}
	r[1] = q.proto
	ne.PutUint32(r[4:], ^uint32(0)) // every state
	src, dst := q.local, q.remote
	if q.proto == protoUDP {
		src, dst = dst, src
	}
	binary.BigEndian.PutUint16(r[8:], src.Port())
	binary.BigEndian.PutUint16(r[10:], dst.Port())
	putAddr(r[12:28], src.Addr())
	putAddr(r[28:44], dst.Addr())
	// r[44:48] interface: any
	ne.PutUint32(r[48:], diagNoCookie)
	ne.PutUint32(r[52:], diagNoCookie)
}

func putAddr(b []byte, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
		return
	}
	v := a.As16()
	copy(b, v[:])
}

// parseDiagReply reads the answer to request seq from the messages in b. done is false
// when b holds nothing for seq (an answer to an earlier request that timed out), so the
// caller reads again.
func parseDiagReply(b []byte, seq uint32) (sk diagSocket, done bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b[0:]))
		if l < nlmsgHdrLen || l > len(b) {
			return diagSocket{}, true, fmt.Errorf("malformed netlink message (length %d of %d)", l, len(b))
		}
		typ, mseq := ne.Uint16(b[4:]), ne.Uint32(b[8:])
		body := b[nlmsgHdrLen:l]
		if al := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1); al < len(b) {
			b = b[al:]
		} else {
			b = nil
		}
		if mseq != seq {
			continue
		}
		switch typ {
		case unix.NLMSG_ERROR:
			if len(body) < 4 {
				return diagSocket{}, true, errors.New("short netlink error message")
			}
			errno := -int32(ne.Uint32(body))
			switch {
			case errno == 0: // an acknowledgement
				continue
			case syscall.Errno(errno) == unix.ENOENT:
				return diagSocket{}, true, errNoSocket
			default:
				return diagSocket{}, true, syscall.Errno(errno)
			}
		case unix.NLMSG_DONE:
			return diagSocket{}, true, errNoSocket
		case sockDiagByFamily:
			sk, err := parseDiagMsg(body)
			return sk, true, err
		}
	}
	return diagSocket{}, false, nil
}

// parseDiagMsg parses struct inet_diag_msg.
func parseDiagMsg(b []byte) (diagSocket, error) {
	if len(b) < diagMsgLen {
		return diagSocket{}, fmt.Errorf("short inet_diag_msg (%d bytes)", len(b))
	}
	ne := binary.NativeEndian
	sk := diagSocket{family: b[0], state: b[1]}
	sport, dport := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:])
	var src, dst netip.Addr
	switch sk.family {
	case unix.AF_INET:
		src, dst = netip.AddrFrom4([4]byte(b[8:12])), netip.AddrFrom4([4]byte(b[24:28]))
	case unix.AF_INET6:
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
	default:
		return diagSocket{}, fmt.Errorf("inet_diag_msg of family %d", sk.family)
	}
	sk.local, sk.remote = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	sk.uid = ne.Uint32(b[64:])
	sk.inode = ne.Uint32(b[68:])
	return sk, nil
}

// netlinkDiag is a NETLINK_INET_DIAG socket created inside one network namespace. The
// kernel answers an exact request while sending it, so the socket blocks (with a
// timeout as a guard) rather than going through the poller. Queries are serialised.
type netlinkDiag struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	req [diagRequestLen]byte
	buf [8192]byte
}

// diagTimeout bounds a sock_diag round trip, which the kernel answers at once.
const diagTimeout = time.Second

// openNetlinkDiag opens a sock_diag socket in the namespace ns, whose inode is inode;
// self is the inode of this process's own namespace, where no setns is needed.
func openNetlinkDiag(ns NetNSRef, inode, self uint64) (sockDiag, error) {
	var fd int
	if inode == self && self != 0 {
		var err error
		if fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_INET_DIAG); err != nil {
			return nil, fmt.Errorf("sock_diag socket: %w", err)
		}
	} else {
		h, err := netns.GetFromPath(ns.Path)
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
				return nil, fmt.Errorf("open %s: %w", ns.Path, errNetNSGone)
			}
			return nil, fmt.Errorf("open %s: %w", ns.Path, err)
		}
		defer h.Close()
		var st unix.Stat_t
		if err := unix.Fstat(int(h), &st); err != nil {
			return nil, fmt.Errorf("stat %s: %w", ns.Path, err)
		}
		if st.Ino != inode {
			// The process the path named has gone and its pid been reused.
			return nil, fmt.Errorf("%s is namespace %d, not %d: %w", ns.Path, st.Ino, inode, errNetNSGone)
		}
		if fd, err = socketInNetNS(h); err != nil {
			return nil, fmt.Errorf("sock_diag socket in %s: %w", ns.Path, err)
		}
	}
	tv := unix.NsecToTimeval(diagTimeout.Nanoseconds())
	for _, opt := range []int{unix.SO_RCVTIMEO, unix.SO_SNDTIMEO} {
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, opt, &tv); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("sock_diag socket timeout: %w", err)
		}
	}
	return &netlinkDiag{fd: fd}, nil
}

// socketInNetNS creates a NETLINK_INET_DIAG socket in the namespace ns. A socket stays in
// the namespace it was made in, so only its creation needs setns: that happens on a
// locked thread of a goroutine of its own. If the thread cannot return to its own
// namespace, the goroutine exits with the thread still locked, and the runtime destroys
// the thread rather than let other goroutines run in the wrong namespace.
func socketInNetNS(ns netns.NsHandle) (int, error) {
	type result struct {
		fd  int
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{-1, fmt.Errorf("own network namespace: %w", err)}
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			done <- result{-1, fmt.Errorf("setns: %w", err)}
			return
		}
		fd, serr := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_INET_DIAG)
		if err := netns.Set(orig); err != nil {
			if serr == nil {
				unix.Close(fd)
			}
			done <- result{-1, fmt.Errorf("return to own network namespace: %w", err)}
			return // still locked: the thread ends with the goroutine
		}
		runtime.UnlockOSThread()
		done <- result{fd, serr}
	}()
	r := <-done
	return r.fd, r.err
}

func (d *netlinkDiag) query(q diagQuery) (diagSocket, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return diagSocket{}, errDiagClosed
	}
	d.seq++
	encodeDiagRequest(d.req[:], q, d.seq)
	for {
		_, err := unix.Write(d.fd, d.req[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return diagSocket{}, fmt.Errorf("send sock_diag request: %w", err)
		}
		break
	}
	for {
		// A receive timeout makes recv fail with EINTR on any signal, SA_RESTART or not,
		// and the Go runtime signals threads to preempt them.
		n, err := unix.Read(d.fd, d.buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return diagSocket{}, fmt.Errorf("receive sock_diag reply: %w", err)
		}
		sk, done, err := parseDiagReply(d.buf[:n], d.seq)
		if done {
			return sk, err
		}
	}
}

func (d *netlinkDiag) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}
