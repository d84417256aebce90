package procmon

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// statsDelta is what happened between two Stats.
func statsDelta(before, after Stats) Stats {
	return Stats{
		Lookups:      after.Lookups - before.Lookups,
		Found:        after.Found - before.Found,
		CacheHits:    after.CacheHits - before.CacheHits,
		Rechecks:     after.Rechecks - before.Rechecks,
		RecheckHits:  after.RecheckHits - before.RecheckHits,
		Scans:        after.Scans - before.Scans,
		ScansLimited: after.ScansLimited - before.ScansLimited,
	}
}

// expectLookup looks up the TCP flow from local to 10.0.0.3:80 in ns, checks the owner
// (none when wantPID is 0) and how it was found.
func expectLookup(t *testing.T, s *SocketOwners, ns uint64, local string, wantPID int, how Stats) {
	t.Helper()
	before := s.Stats()
	p, ok := lookup(s, ns, protoTCP, local, "10.0.0.3:80")
	switch {
	case wantPID == 0 && ok:
		t.Errorf("%s: Lookup = %+v, want nothing", local, p)
	case wantPID != 0 && (!ok || p.PID != wantPID):
		t.Errorf("%s: Lookup = %+v, %v; want pid %d", local, p, ok, wantPID)
	}
	got := statsDelta(before, s.Stats())
	got.Lookups, got.Found = 0, 0
	if got != how {
		t.Errorf("%s: %+v, want %+v", local, got, how)
	}
}

var (
	byScan            = Stats{Scans: 1}
	byRecheck         = Stats{Rechecks: 1, RecheckHits: 1}
	byRecheckThenScan = Stats{Rechecks: 1, Scans: 1}
	fromCache         = Stats{CacheHits: 1}
)

// connections makes diag answer for the TCP flows from 10.0.0.2:PORT to 10.0.0.3:80 with
// socket inode INODE, for each PORT → INODE.
func connections(d *fakeDiag, socks map[int]uint32) {
	for port, ino := range socks {
		local := fmt.Sprintf("10.0.0.2:%d", port)
		d.set(protoTCP, local, "10.0.0.3:80", established(local, "10.0.0.3:80", ino))
	}
}

func TestRecheckFindsNewSocketOfRecentOwner(t *testing.T) {
	f := newFakeProc(t)
	// A client that connects in a loop from one process, among others in its namespace.
	f.add(fakeProcess{pid: 1500, netns: nsA, comm: "client", exe: "/client", uid: 7, fds: map[int]string{0: "/dev/null", 3: sock(7000)}})
	f.add(fakeProcess{pid: 1510, netns: nsA, comm: "other", exe: "/other", fds: map[int]string{3: sock(7010)}})
	d := newFakeDiag()
	connections(d, map[int]uint32{1000: 7000, 1001: 7001, 1002: 7002})
	s, _ := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: d})

	expectLookup(t, s, nsA, "10.0.0.2:1000", 1500, byScan) // nothing known yet
	f.setFD(1500, 3, "")                                   // closed
	f.setFD(1500, 4, sock(7001))                           // and the next one opened
	expectLookup(t, s, nsA, "10.0.0.2:1001", 1500, byRecheck)
	if p, _ := lookup(s, nsA, protoTCP, "10.0.0.2:1001", "10.0.0.3:80"); p != (Process{PID: 1500, Comm: "client", Exe: "/client", UID: 7}) {
		t.Errorf("found by a re-check: %+v", p)
	}
	// The answer is cached like a scan's.
	expectLookup(t, s, nsA, "10.0.0.2:1001", 1500, fromCache)

	// A socket the recent owner does not hold: the re-check finds nothing, the scan does.
	f.setFD(1510, 4, sock(7002))
	expectLookup(t, s, nsA, "10.0.0.2:1002", 1510, byRecheckThenScan)
	s.mu.Lock()
	recent := s.owners[nsA].recent[:s.owners[nsA].nrecent]
	s.mu.Unlock()
	if len(recent) != 2 || recent[0].pid != 1510 || recent[1].pid != 1500 {
		t.Errorf("recent owners %v, want 1510 then 1500", recent)
	}
}

func TestRecheckFindsSiblingsAndChildren(t *testing.T) {
	f := newFakeProc(t)
	// A shell that runs a new client per connection.
	f.add(fakeProcess{pid: 1600, netns: nsA, comm: "sh", exe: "/bin/sh"})
	f.add(fakeProcess{pid: 1601, ppid: 1600, netns: nsA, comm: "nc", exe: "/bin/nc", start: 10, fds: map[int]string{3: sock(7100)}})
	// A server that forks a handler per connection, in another namespace.
	f.add(fakeProcess{pid: 1700, netns: nsB, comm: "httpd", exe: "/bin/httpd", fds: map[int]string{3: sock(7200)}})
	da, db := newFakeDiag(), newFakeDiag()
	connections(da, map[int]uint32{1000: 7100, 1001: 7101, 1002: 7102})
	db.set(protoTCP, "10.0.0.2:80", "0.0.0.0:0", listening("0.0.0.0:80", 7200))
	db.set(protoTCP, "10.0.0.2:80", "10.0.0.9:5000", established("10.0.0.2:80", "10.0.0.9:5000", 7201))
	db.set(protoTCP, "10.0.0.2:80", "10.0.0.9:5001", established("10.0.0.2:80", "10.0.0.9:5001", 7202))
	s, _ := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: da, nsB: db})

	expectLookup(t, s, nsA, "10.0.0.2:1000", 1601, byScan)
	f.remove(1601) // done; the next client starts
	f.add(fakeProcess{pid: 1602, ppid: 1600, netns: nsA, comm: "nc", exe: "/bin/nc", start: 20, fds: map[int]string{3: sock(7101)}})
	expectLookup(t, s, nsA, "10.0.0.2:1001", 1602, byRecheck)
	// Still running while the next one starts: the newest is looked at first, but both
	// are siblings of the recent owner.
	f.add(fakeProcess{pid: 1603, ppid: 1600, netns: nsA, comm: "nc", exe: "/bin/nc", start: 30, fds: map[int]string{3: sock(7102)}})
	expectLookup(t, s, nsA, "10.0.0.2:1002", 1603, byRecheck)

	// The server end: a SYN answered by the listener (a scan), then the accepted
	// connections, each held by a new child of the listener's owner.
	server := func(remote string, wantPID int, how Stats) {
		t.Helper()
		before := s.Stats()
		p, ok := lookup(s, nsB, protoTCP, "10.0.0.2:80", remote)
		if !ok || p.PID != wantPID {
			t.Errorf("from %s: Lookup = %+v, %v; want pid %d", remote, p, ok, wantPID)
		}
		if got := statsDelta(before, s.Stats()); got.Scans != how.Scans || got.RecheckHits != how.RecheckHits {
			t.Errorf("from %s: %+v, want %+v", remote, got, how)
		}
	}
	server("10.0.0.9:4999", 1700, byScan)
	f.add(fakeProcess{pid: 1701, ppid: 1700, netns: nsB, comm: "httpd", exe: "/bin/httpd", fds: map[int]string{0: sock(7201), 1: sock(7201)}})
	server("10.0.0.9:5000", 1701, byRecheck)
	f.remove(1701)
	f.add(fakeProcess{pid: 1702, ppid: 1700, netns: nsB, comm: "httpd", exe: "/bin/httpd", fds: map[int]string{0: sock(7202)}})
	server("10.0.0.9:5001", 1702, byRecheck)
}

func TestRecheckGivesSocketToYoungestHolder(t *testing.T) {
	f := newFakeProc(t)
	f.add(fakeProcess{pid: 1800, netns: nsA, comm: "nc", exe: "/bin/nc", start: 100, fds: map[int]string{3: sock(7300)}})
	d := newFakeDiag()
	connections(d, map[int]uint32{1000: 7300, 1001: 7301})
	s, _ := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: d})
	expectLookup(t, s, nsA, "10.0.0.2:1000", 1800, byScan)

	// A reverse shell: nc connects, then starts a shell that inherits the socket, which
	// starts another.
	f.setFD(1800, 4, sock(7301))
	f.add(fakeProcess{pid: 1801, ppid: 1800, netns: nsA, comm: "sh", exe: "/bin/sh", start: 200, fds: map[int]string{0: sock(7301), 1: sock(7301)}})
	f.add(fakeProcess{pid: 1802, ppid: 1801, netns: nsA, comm: "sh", exe: "/bin/sh", start: 300, fds: map[int]string{0: sock(7301)}})
	f.add(fakeProcess{pid: 1803, ppid: 1801, netns: nsA, comm: "sleep", exe: "/bin/sleep", start: 400})
	expectLookup(t, s, nsA, "10.0.0.2:1001", 1802, byRecheck)

	// The scan agrees.
	s.lim.recentOwners = 0
	s.mu.Lock()
	s.owners = map[uint64]*nsOwners{}
	s.cached = 0
	s.mu.Unlock()
	expectLookup(t, s, nsA, "10.0.0.2:1001", 1802, byScan)
}

func TestRecheckNeverLeavesTheNamespace(t *testing.T) {
	f := newFakeProc(t)
	// Container processes whose parent, and whose parent's other children, are in
	// another namespace (a shim on the host starts the container's processes).
	f.add(fakeProcess{pid: 1899, netns: nsB, comm: "shim", exe: "/shim"})
	f.add(fakeProcess{pid: 1900, ppid: 1899, netns: nsA, comm: "app", exe: "/app", fds: map[int]string{3: sock(7400)}})
	// A process in another namespace holding a socket of A, like dockerd serving DNS in
	// a container's namespace.
	f.add(fakeProcess{pid: 1901, ppid: 1899, netns: nsB, comm: "dockerd", exe: "/dockerd", fds: map[int]string{9: sock(7401)}})
	d := newFakeDiag()
	connections(d, map[int]uint32{1000: 7400, 1001: 7401})
	s, _ := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: d})

	expectLookup(t, s, nsA, "10.0.0.2:1000", 1900, byScan)
	expectLookup(t, s, nsA, "10.0.0.2:1001", 0, byRecheckThenScan)

	// A recent owner that moved to another namespace is no longer one of A's.
	f.setFD(1900, 4, sock(7401))
	f.must(os.Remove(filepath.Join(f.root, "1900", "ns", "net")))
	f.must(os.Symlink(fmt.Sprintf("net:[%d]", nsB), filepath.Join(f.root, "1900", "ns", "net")))
	before := s.Stats()
	if p, ok := lookup(s, nsA, protoTCP, "10.0.0.2:1001", "10.0.0.3:80"); ok {
		t.Errorf("moved owner: Lookup = %+v", p)
	}
	if got := statsDelta(before, s.Stats()); got.RecheckHits != 0 {
		t.Errorf("moved owner found by a re-check: %+v", got)
	}
}

func TestRecheckIsBounded(t *testing.T) {
	f := newFakeProc(t)
	// A parent with more children than a re-check reads.
	f.add(fakeProcess{pid: 3000, netns: nsA, comm: "master", exe: "/m"})
	for i := 1; i <= 30; i++ {
		f.add(fakeProcess{pid: 3000 + i, ppid: 3000, netns: nsA, comm: "worker", exe: "/w", start: uint64(i)})
	}
	f.setFD(3030, 3, sock(7500)) // the newest
	d := newFakeDiag()
	connections(d, map[int]uint32{1000: 7500, 1001: 7501, 1002: 7502})
	s, _ := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: d})
	s.lim.recheckProcs = 16
	expectLookup(t, s, nsA, "10.0.0.2:1000", 3030, byScan)

	f.setFD(3016, 3, sock(7501)) // 15th newest: within reach
	expectLookup(t, s, nsA, "10.0.0.2:1001", 3016, byRecheck)
	f.setFD(3001, 3, sock(7502)) // the oldest: beyond it
	expectLookup(t, s, nsA, "10.0.0.2:1002", 3001, byRecheckThenScan)
}

func TestRecentOwners(t *testing.T) {
	var st nsOwners
	pids := func() []int32 {
		var out []int32
		for _, r := range st.recent[:st.nrecent] {
			out = append(out, r.pid)
		}
		return out
	}
	for _, pid := range []int32{1, 2, 3, 2, 4, 5} {
		st.noteOwner(recentOwner{pid: pid, ppid: 100 + pid}, 4)
	}
	if got := pids(); !slices.Equal(got, []int32{5, 4, 2, 3}) {
		t.Errorf("recent owners %v, want [5 4 2 3]", got)
	}
	st.noteOwner(recentOwner{pid: 3, ppid: 9}, 4)
	if got := pids(); !slices.Equal(got, []int32{3, 5, 4, 2}) || st.recent[0].ppid != 9 {
		t.Errorf("recent owners %v (first %+v), want [3 5 4 2] with the new parent", got, st.recent[0])
	}
	for pid := range int32(20) {
		st.noteOwner(recentOwner{pid: 100 + pid}, 100)
	}
	if st.nrecent != maxRecentOwners || st.recent[0].pid != 119 {
		t.Errorf("%d recent owners, first %d; want %d, 119", st.nrecent, st.recent[0].pid, maxRecentOwners)
	}
	st = nsOwners{}
	st.noteOwner(recentOwner{pid: 1}, 0)
	if st.nrecent != 0 {
		t.Error("kept a recent owner with room for none")
	}
}

func TestRecheckedEntriesAreBounded(t *testing.T) {
	f := newFakeProc(t)
	f.add(fakeProcess{pid: 3100, netns: nsA, comm: "client", exe: "/c", fds: map[int]string{3: sock(8000)}})
	f.add(fakeProcess{pid: 3101, netns: nsB, comm: "quiet", exe: "/q", fds: map[int]string{3: sock(9000)}})
	da, db := newFakeDiag(), newFakeDiag()
	socks := map[int]uint32{}
	for i := range 200 {
		socks[1000+i] = uint32(8000 + i)
	}
	connections(da, socks)
	connections(db, map[int]uint32{1000: 9000})
	s, _ := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: da, nsB: db})
	s.lim.maxSockets = recheckedKept + 10

	expectLookup(t, s, nsB, "10.0.0.2:1000", 3101, byScan)
	expectLookup(t, s, nsA, "10.0.0.2:1000", 3100, byScan)
	// A busy client: each connection a new socket of the same process, found by a
	// re-check and cached.
	for i := 1; i < 200; i++ {
		f.setFD(3100, 3, sock(uint32(8000+i)))
		expectLookup(t, s, nsA, fmt.Sprintf("10.0.0.2:%d", 1000+i), 3100, byRecheck)
	}
	s.mu.Lock()
	total := 0
	for _, st := range s.owners {
		total += len(st.sockets)
	}
	inA := len(s.owners[nsA].sockets)
	_, quietKept := s.owners[nsB]
	s.mu.Unlock()
	if total != s.cached || inA > recheckedKept+1 {
		t.Errorf("%d entries (counted %d), %d in the busy namespace; want at most %d there", total, s.cached, inA, recheckedKept+1)
	}
	// Its connections did not push the quiet namespace out of the cache.
	if !quietKept {
		t.Error("the quiet namespace was evicted")
	}
	expectLookup(t, s, nsB, "10.0.0.2:1000", 3101, fromCache)
	// The latest re-checked sockets are still cached; the oldest are not.
	expectLookup(t, s, nsA, "10.0.0.2:1199", 3100, fromCache)
	f.setFD(3100, 4, sock(8001))
	expectLookup(t, s, nsA, "10.0.0.2:1001", 3100, byRecheck)
}
