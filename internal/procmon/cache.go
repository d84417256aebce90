package procmon

import "time"

// The cache: per network namespace, the owners of its sockets as the last scan found them
// (and a few that re-checks found since), the processes that recently owned new sockets
// there, and the namespace's share of the CPU budget. All of it is guarded by
// SocketOwners.mu.

const (
	// maxRecentOwners bounds the recent owners a namespace remembers.
	maxRecentOwners = 8
	// recheckedKept bounds the entries re-checks add to a namespace's sockets between
	// two scans. They serve later lookups of the same socket (a listener, an unconnected
	// UDP socket); a busy container's short connections would otherwise fill the cache
	// and push out the other namespaces.
	recheckedKept = 64
)

// nsOwners is what is known of the sockets of one namespace.
type nsOwners struct {
	sockets map[uint32]owner // by socket inode
	// scanned is when the last complete scan started; every socket that existed then and
	// had an owner in the namespace is in sockets.
	scanned  time.Time
	scanning chan struct{} // closed when the running scan ends; nil when none runs
	lastUse  time.Time

	// recent are the processes that most recently owned a new socket here (found by a
	// scan or a re-check), most recent first: where a re-check looks.
	recent  [maxRecentOwners]recentOwner
	nrecent int
	// rechecked is a ring of the sockets that re-checks added to sockets since the last
	// scan, oldest at rcHead; the oldest goes when one more comes.
	rechecked  [recheckedKept]uint32
	rcHead     int
	nrechecked int

	// share is this namespace's share of the CPU budget, in seconds, as of shareAt; see
	// budget.go.
	share   float64
	shareAt time.Time
}

// recentOwner is a process that owned a new socket of a namespace, its parent as it was
// then, and the descriptor it held it under.
type recentOwner struct {
	pid, ppid, fd int32
}

type owner struct {
	pid, fd int32
	proc    Process   // as last read, so that a hit allocates nothing while it holds
	read    time.Time // when proc was read; zero before the first hit
}

// nsLocked returns the cache of a namespace, making it when needed.
func (s *SocketOwners) nsLocked(nsIno uint64, now time.Time) *nsOwners {
	st, ok := s.owners[nsIno]
	if ok {
		st.lastUse = now
		return st
	}
	st = &nsOwners{sockets: map[uint32]owner{}, lastUse: now, share: s.lim.nsShareBurst, shareAt: now}
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

// noteOwner puts o at the front of the namespace's recent owners, keeping at most n.
func (st *nsOwners) noteOwner(o recentOwner, n int) {
	n = min(n, len(st.recent))
	if n <= 0 {
		return
	}
	i := 0
	for i < st.nrecent && st.recent[i].pid != o.pid {
		i++
	}
	if i == st.nrecent { // not there: the last one makes room
		i = min(st.nrecent, n-1)
		st.nrecent = i + 1
	}
	copy(st.recent[1:i+1], st.recent[:i])
	st.recent[0] = o
}

// keepRecheckedLocked caches the owner a re-check found for sockIno in namespace nsIno,
// dropping the oldest such entry beyond recheckedKept.
func (s *SocketOwners) keepRecheckedLocked(nsIno uint64, st *nsOwners, sockIno uint32, o owner) {
	if _, ok := st.sockets[sockIno]; ok {
		return // found meanwhile by a scan, or by a concurrent re-check
	}
	if st.nrechecked == len(st.rechecked) {
		old := st.rechecked[st.rcHead]
		if _, ok := st.sockets[old]; ok {
			delete(st.sockets, old)
			s.cached--
		}
		st.rcHead = (st.rcHead + 1) % len(st.rechecked)
		st.nrechecked--
	}
	st.rechecked[(st.rcHead+st.nrechecked)%len(st.rechecked)] = sockIno
	st.nrechecked++
	st.sockets[sockIno] = o
	s.cached++
	s.evictLocked(nsIno)
}
