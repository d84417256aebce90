package procmon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

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
	// Rechecks counts misses that first read the descriptors of the processes near the
	// recent owners of sockets in the namespace; RecheckHits those answered so, without
	// a scan.
	Rechecks    uint64 `json:"rechecks"`
	RecheckHits uint64 `json:"recheck_hits"`
	Scans       uint64 `json:"scans"`
	// ScansLimited counts lookups given up because the /proc work of misses (re-checks
	// and scans) was over its CPU budget, or the namespace over its share of it.
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
	// The /proc work of misses is paid for in time (see budget.go): scanBudget seconds
	// per second for all namespaces together, at most scanBurst ahead, of which
	// scanReserve is left to namespaces within their share, nsShare seconds per second
	// each, at most nsShareBurst ahead. A scan for a container costs a fraction of a
	// millisecond, one of the host's namespace (every process's descriptors) many
	// milliseconds, so a count of scans would be either too tight for the one or too
	// loose for the other.
	scanBudget, scanBurst, scanReserve float64
	nsShare, nsShareBurst              float64
	// recentOwners is how many recent owners of new sockets a namespace remembers for
	// re-checks (0: none, every miss scans; at most maxRecentOwners); recheckProcs how
	// many descriptor tables one re-check reads at most.
	recentOwners, recheckProcs int
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
	scanReserve:   0.05,
	nsShare:       0.01, // 1% of one CPU
	nsShareBurst:  0.05,
	recentOwners:  maxRecentOwners,
	recheckProcs:  16,
	detailsTTL:    time.Second,
	pidSettle:     2 * time.Second,
	pidRecheck:    10 * time.Second,
}

// SocketOwners finds the processes that own TCP and UDP sockets in any network namespace
// on the host. It keeps one sock_diag socket per namespace recently asked about and a
// bounded cache from socket inode to owner. A cached owner is confirmed on every hit: its
// descriptor must still link to the socket. Its comm, exe and uid are read again when
// older than a second.
//
// A socket not in the cache (a miss) is looked for first among the processes that
// recently owned new sockets in its namespace and those next to them in the process tree
// (a re-check), since a container that opens many connections mostly opens them from one
// process, or from new children of one parent. Only when none of them holds it is /proc
// scanned for every process in the namespace (concurrent misses in one namespace share a
// scan). Both are paid from a CPU budget: 5% of one CPU for all namespaces together
// (bursts of 0.1 s), of which each namespace has a share of 1% (bursts of 50 ms). A
// namespace over its share may not take the last 50 ms of the budget, which are left for
// the others, so one container missing a lot cannot leave the others unattributed. A
// lookup refused by the budget returns false at once.
//
// Costs, in system calls: a hit is one or two sock_diag round trips and one readlink,
// without allocation. A re-check adds, for each of the (at most 16) processes it looks
// at, a readlink of ns/net and of the descriptor number its last socket had, and when
// that is not the socket one readlink per descriptor; and a read per thread of each
// parent whose children it lists; without allocation. A scan
// adds a listing of /proc, a readlink of ns/net for the processes not seen in the last
// seconds (the network namespace of every process is remembered by PID and checked again
// every 10 seconds), and one readlink per descriptor of the processes in the namespace.
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
	tokens    float64              // seconds of /proc work, all namespaces together
	tokensAt  time.Time

	pidMu     sync.Mutex
	pids      map[int32]*pidNetNS
	pidsCheck time.Time // when every process's namespace was last read

	lookups, found, fallbacks, hits, scans, limited atomic.Uint64
	rechecks, recheckHits                           atomic.Uint64
	lastWarn                                        atomic.Int64 // unix nanoseconds
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
// (closed, in TIME_WAIT), an owner outside the namespace, a namespace that is gone, a
// miss over the CPU budget of misses or its namespace's share of it, ctx done. It never guesses. Give ns.Inode when it is known: it
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
		Rechecks:          s.rechecks.Load(),
		RecheckHits:       s.recheckHits.Load(),
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

// owner finds the process holding socket sockIno in namespace nsIno, which existed at
// since: from the cache when the holder there still has it, else from a re-check of the
// namespace's recent owners, else from a scan that started after since (run here, or
// shared with a concurrent lookup).
func (s *SocketOwners) owner(ctx context.Context, nsIno uint64, sockIno uint32, since time.Time) (Process, bool) {
	scanned := false   // by this lookup or one it waited for
	rechecked := false // by this lookup
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
		if !s.mayReadLocked(st, start) {
			share := st.share
			s.mu.Unlock()
			s.limited.Add(1)
			s.warn("socket owner scans over their CPU budget", "netns", nsIno, "socket", sockIno, "over_share", share <= 0)
			return Process{}, false
		}

		if n := min(st.nrecent, s.lim.recentOwners); !rechecked && n > 0 {
			rechecked = true
			recent := st.recent
			s.mu.Unlock()
			s.rechecks.Add(1)
			o, ro, ok := s.recheck(ctx, nsIno, sockIno, recent[:n])
			s.mu.Lock()
			s.payLocked(st, time.Since(start).Seconds())
			if ok && !s.closed && s.owners[nsIno] == st {
				st.noteOwner(ro, s.lim.recentOwners)
				s.keepRecheckedLocked(nsIno, st, sockIno, o)
			}
			s.mu.Unlock()
			if !ok {
				continue // to the scan
			}
			if p, read, ok := s.confirm(o, sockIno); ok {
				s.recheckHits.Add(1)
				s.remember(nsIno, sockIno, o, p, read)
				return p, true
			}
			s.forget(nsIno, sockIno, o) // gone since: scan
			continue
		}

		done := make(chan struct{})
		st.scanning = done
		s.mu.Unlock()
		scanned = true

		s.scans.Add(1)
		found, ro, err := s.scan(ctx, nsIno, sockIno)

		s.mu.Lock()
		s.payLocked(st, time.Since(start).Seconds())
		st.scanning = nil
		if err == nil && !s.closed {
			s.cached += len(found) - len(st.sockets)
			st.sockets = found
			st.scanned = start
			st.nrechecked = 0 // they were in the map replaced
			if ro.pid != 0 {
				st.noteOwner(ro, s.lim.recentOwners)
			}
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
