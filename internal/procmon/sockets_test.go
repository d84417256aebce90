package procmon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeProc is a /proc tree under a temporary directory: the links and files the
// attribution reads, with the shapes the kernel gives them.
type fakeProc struct {
	t        *testing.T
	root     string
	children map[int][]int // by parent, oldest first
}

type fakeProcess struct {
	pid   int
	ppid  int // 0: none, and no children file lists it
	netns uint64
	comm  string
	exe   string
	uid   int
	start uint64
	fds   map[int]string // fd → link target
}

func newFakeProc(t *testing.T) *fakeProc {
	t.Helper()
	root := t.TempDir()
	f := &fakeProc{t: t, root: root, children: map[int][]int{}}
	// What a real /proc has besides processes, which scans must pass over.
	f.must(os.Symlink("1", filepath.Join(root, "self")))
	f.must(os.Mkdir(filepath.Join(root, "sys"), 0o755))
	f.must(os.WriteFile(filepath.Join(root, "cpuinfo"), []byte("processor: 0\n"), 0o644))
	// A process whose namespace cannot be read (like PID 1 under a sandbox) and one that
	// exited between the listing and the reads.
	f.must(os.MkdirAll(filepath.Join(root, "1", "fd"), 0o755))
	f.must(os.Mkdir(filepath.Join(root, "2"), 0o755))
	return f
}

func (f *fakeProc) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeProc) add(p fakeProcess) {
	f.t.Helper()
	dir := filepath.Join(f.root, strconv.Itoa(p.pid))
	f.must(os.MkdirAll(filepath.Join(dir, "ns"), 0o755))
	f.must(os.MkdirAll(filepath.Join(dir, "fd"), 0o755))
	f.must(os.Symlink(fmt.Sprintf("net:[%d]", p.netns), filepath.Join(dir, "ns", "net")))
	f.must(os.WriteFile(filepath.Join(dir, "comm"), []byte(p.comm+"\n"), 0o644))
	if p.exe != "" {
		f.must(os.Symlink(p.exe, filepath.Join(dir, "exe")))
	}
	status := fmt.Sprintf("Name:\t%s\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t%d\nPid:\t%d\nPPid:\t1\nTracerPid:\t0\n"+
		"Uid:\t%d\t%d\t%d\t%d\nGid:\t0\t0\t0\t0\n", p.comm, p.pid, p.pid, p.uid, p.uid, p.uid, p.uid)
	f.must(os.WriteFile(filepath.Join(dir, "status"), []byte(status), 0o644))
	f.must(os.WriteFile(filepath.Join(dir, "stat"), []byte(statLine(p.pid, p.ppid, p.comm, p.start)), 0o644))
	for fd, target := range p.fds {
		f.setFD(p.pid, fd, target)
	}
	f.writeChildren(p.pid)
	if p.ppid > 0 {
		f.children[p.ppid] = append(f.children[p.ppid], p.pid)
		f.writeChildren(p.ppid)
	}
}

// writeChildren writes /proc/PID/task/PID/children, as the kernel lists the children of
// a process's main thread: "PID PID ", oldest first.
func (f *fakeProc) writeChildren(pid int) {
	f.t.Helper()
	if _, err := os.Stat(filepath.Join(f.root, strconv.Itoa(pid))); err != nil {
		return // the parent is not (or no longer) there
	}
	task := filepath.Join(f.root, strconv.Itoa(pid), "task", strconv.Itoa(pid))
	f.must(os.MkdirAll(task, 0o755))
	var list strings.Builder
	for _, c := range f.children[pid] {
		fmt.Fprintf(&list, "%d ", c)
	}
	f.must(os.WriteFile(filepath.Join(task, "children"), []byte(list.String()), 0o644))
}

func (f *fakeProc) setFD(pid, fd int, target string) {
	f.t.Helper()
	link := filepath.Join(f.root, strconv.Itoa(pid), "fd", strconv.Itoa(fd))
	if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
		f.t.Fatal(err)
	}
	if target != "" {
		f.must(os.Symlink(target, link))
	}
}

func (f *fakeProc) setComm(pid int, comm string) {
	f.t.Helper()
	f.must(os.WriteFile(filepath.Join(f.root, strconv.Itoa(pid), "comm"), []byte(comm+"\n"), 0o644))
}

func (f *fakeProc) remove(pid int) {
	f.t.Helper()
	f.must(os.RemoveAll(filepath.Join(f.root, strconv.Itoa(pid))))
	for parent, kids := range f.children {
		if i := slices.Index(kids, pid); i >= 0 {
			f.children[parent] = slices.Delete(kids, i, i+1)
			f.writeChildren(parent)
		}
	}
}

func sock(ino uint32) string { return fmt.Sprintf("socket:[%d]", ino) }

// fakeDiag answers queries from a table, as the kernel's lookup would. Each open of the
// namespace gets a handle of its own, as each open makes a socket of its own.
type fakeDiag struct {
	mu       sync.Mutex
	answers  map[diagQuery]diagSocket
	queries  []diagQuery
	handles  int // open
	failNext error
}

func newFakeDiag() *fakeDiag { return &fakeDiag{answers: map[diagQuery]diagSocket{}} }

func (d *fakeDiag) set(proto uint8, local, remote string, sk diagSocket) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.answers[diagQuery{proto, netip.MustParseAddrPort(local), netip.MustParseAddrPort(remote)}] = sk
}

func (d *fakeDiag) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.handles == 0
}

type fakeDiagHandle struct {
	d      *fakeDiag
	closed bool // guarded by d.mu
}

func (h *fakeDiagHandle) query(q diagQuery) (diagSocket, error) {
	d := h.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queries = append(d.queries, q)
	if err := d.failNext; err != nil {
		d.failNext = nil
		return diagSocket{}, err
	}
	if h.closed {
		return diagSocket{}, errDiagClosed
	}
	sk, ok := d.answers[q]
	if !ok {
		return diagSocket{}, errNoSocket
	}
	return sk, nil
}

func (h *fakeDiagHandle) close() error {
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	if !h.closed {
		h.closed = true
		h.d.handles--
	}
	return nil
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newTestOwners returns a SocketOwners over a fake /proc whose namespaces answer from
// diags (by namespace inode); opens counts the sock_diag sockets opened.
func newTestOwners(t *testing.T, root string, diags map[uint64]*fakeDiag) (s *SocketOwners, opens *int) {
	t.Helper()
	s = NewSocketOwners(root, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { s.Close() })
	// Scans under the race detector on a loaded machine may take far longer than real
	// ones; only the test of the budget tests the budget.
	s.lim.scanBudget, s.lim.scanBurst, s.tokens = 1, 60, 60
	s.lim.nsShare, s.lim.nsShareBurst = 1, 60
	s.lim.detailsTTL = time.Hour
	var mu sync.Mutex
	n := 0
	s.open = func(ns NetNSRef, inode uint64) (sockDiag, error) {
		mu.Lock()
		defer mu.Unlock()
		d, ok := diags[inode]
		if !ok {
			return nil, errNetNSGone
		}
		n++
		d.mu.Lock()
		d.handles++
		d.mu.Unlock()
		return &fakeDiagHandle{d: d}, nil
	}
	return s, &n
}

const (
	nsA = 4026532001
	nsB = 4026532002
	nsC = 4026532003
)

func established(local, remote string, inode uint32) diagSocket {
	return diagSocket{family: unix.AF_INET, state: 1, local: netip.MustParseAddrPort(local),
		remote: netip.MustParseAddrPort(remote), inode: inode}
}

func listening(local string, inode uint32) diagSocket {
	l := netip.MustParseAddrPort(local)
	return diagSocket{family: unix.AF_INET, state: tcpListen, local: l,
		remote: netip.AddrPortFrom(netip.IPv4Unspecified(), 0), inode: inode}
}

func lookup(s *SocketOwners, ns uint64, proto uint8, local, remote string) (Process, bool) {
	return s.Lookup(context.Background(), NetNSRef{Path: "/nonexistent", Inode: ns}, proto,
		netip.MustParseAddrPort(local), netip.MustParseAddrPort(remote))
}

func TestLookupConnectedSocket(t *testing.T) {
	f := newFakeProc(t)
	f.add(fakeProcess{pid: 300, netns: nsA, comm: "nc", exe: "/bin/busybox", uid: 1000, start: 10,
		fds: map[int]string{0: "/dev/null", 1: "pipe:[99]", 3: sock(555), 4: "anon_inode:[eventpoll]"}})
	f.add(fakeProcess{pid: 301, netns: nsB, comm: "other", exe: "/bin/other", fds: map[int]string{3: sock(556)}})
	d := newFakeDiag()
	d.set(protoTCP, "10.0.0.2:41000", "10.0.0.3:80", established("10.0.0.2:41000", "10.0.0.3:80", 555))
	s, _ := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: d})

	p, ok := lookup(s, nsA, protoTCP, "10.0.0.2:41000", "10.0.0.3:80")
	want := Process{PID: 300, Comm: "nc", Exe: "/bin/busybox", UID: 1000}
	if !ok || p != want {
		t.Fatalf("Lookup = %+v, %v; want %+v", p, ok, want)
	}
	if st := s.Stats(); st.Scans != 1 || st.CacheHits != 0 || st.Found != 1 || st.ListenerFallbacks != 0 {
		t.Errorf("stats %+v, want one scan and no cache hit", st)
	}
	if len(d.queries) != 1 {
		t.Errorf("%d sock_diag queries for a connected socket, want 1", len(d.queries))
	}

	// A v4-mapped form of the same flow asks the same IPv4 question.
	p, ok = s.Lookup(context.Background(), NetNSRef{Inode: nsA}, protoTCP,
		netip.MustParseAddrPort("[::ffff:10.0.0.2]:41000"), netip.MustParseAddrPort("[::ffff:10.0.0.3]:80"))
	if !ok || p != want {
		t.Errorf("v4-mapped Lookup = %+v, %v", p, ok)
	}
	if q := d.queries[len(d.queries)-1]; !q.local.Addr().Is4() || !q.remote.Addr().Is4() {
		t.Errorf("v4-mapped addresses were not unmapped: %+v", q)
	}
	if st := s.Stats(); st.Scans != 1 || st.CacheHits != 1 {
		t.Errorf("stats %+v, want the second lookup answered from the cache", st)
	}
}

func TestLookupListenerFallback(t *testing.T) {
	f := newFakeProc(t)
	f.add(fakeProcess{pid: 400, netns: nsA, comm: "httpd", exe: "/bin/busybox", fds: map[int]string{3: sock(700)}})
	d := newFakeDiag()
	// Accepted but not yet taken from the queue: the kernel knows the connection, but no
	// file holds it (inode 0).
	d.set(protoTCP, "10.0.0.2:8080", "10.0.0.3:41000", established("10.0.0.2:8080", "10.0.0.3:41000", 0))
	d.set(protoTCP, "10.0.0.2:8080", "0.0.0.0:0", listening("0.0.0.0:8080", 700))
	// The kernel's own lookup fell back to the listener (nothing in the established table).
	d.set(protoTCP, "10.0.0.2:8080", "10.0.0.9:5000", listening("0.0.0.0:8080", 700))
	s, _ := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: d})

	for _, remote := range []string{"10.0.0.3:41000", "10.0.0.9:5000"} {
		p, ok := lookup(s, nsA, protoTCP, "10.0.0.2:8080", remote)
		if !ok || p.PID != 400 || p.Comm != "httpd" {
			t.Errorf("from %s: Lookup = %+v, %v; want the listener's owner", remote, p, ok)
		}
	}
	if st := s.Stats(); st.ListenerFallbacks != 2 {
		t.Errorf("stats %+v, want 2 listener fallbacks", st)
	}

	// A client end with no socket at all: no listener on that port either.
	if p, ok := lookup(s, nsA, protoTCP, "10.0.0.2:41999", "10.0.0.3:80"); ok {
		t.Errorf("no socket: Lookup = %+v", p)
	}
	// A listener on another port is not an answer, should the kernel give it.
	d.set(protoTCP, "10.0.0.2:9090", "0.0.0.0:0", listening("0.0.0.0:8080", 700))
	if p, ok := lookup(s, nsA, protoTCP, "10.0.0.2:9090", "10.0.0.3:1"); ok {
		t.Errorf("listener on another port: Lookup = %+v", p)
	}
}

func TestLookupUDP(t *testing.T) {
	f := newFakeProc(t)
	f.add(fakeProcess{pid: 500, netns: nsA, comm: "dnsd", exe: "/bin/dnsd", fds: map[int]string{5: sock(800)}})
	d := newFakeDiag()
	d.set(protoUDP, "10.0.0.2:53", "10.0.0.3:41000", diagSocket{family: unix.AF_INET, state: 7,
		local: netip.MustParseAddrPort("0.0.0.0:53"), remote: netip.MustParseAddrPort("0.0.0.0:0"), inode: 800})
	s, _ := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: d})

	if p, ok := lookup(s, nsA, protoUDP, "10.0.0.2:53", "10.0.0.3:41000"); !ok || p.PID != 500 {
		t.Errorf("unconnected UDP socket: Lookup = %+v, %v", p, ok)
	}
	// UDP has no second query: the kernel's lookup already covers unconnected sockets.
	n := len(d.queries)
	if p, ok := lookup(s, nsA, protoUDP, "10.0.0.2:54", "10.0.0.3:41000"); ok {
		t.Errorf("no UDP socket: Lookup = %+v", p)
	}
	if len(d.queries) != n+1 {
		t.Errorf("%d queries for a missing UDP socket, want 1", len(d.queries)-n)
	}
	// A connected socket for another peer is not this flow's.
	d.set(protoUDP, "10.0.0.2:55", "10.0.0.3:41000", established("10.0.0.2:55", "10.0.0.4:41000", 800))
	if p, ok := lookup(s, nsA, protoUDP, "10.0.0.2:55", "10.0.0.3:41000"); ok {
		t.Errorf("socket connected elsewhere: Lookup = %+v", p)
	}
}

func TestLookupRefusesBadInput(t *testing.T) {
	f := newFakeProc(t)
	d := newFakeDiag()
	s, _ := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: d})
	ns := NetNSRef{Inode: nsA}
	ctx := context.Background()
	ap := netip.MustParseAddrPort
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		name          string
		ctx           context.Context
		proto         uint8
		local, remote netip.AddrPort
	}{
		{"ICMP", ctx, 1, ap("10.0.0.2:1"), ap("10.0.0.3:2")},
		{"mixed families", ctx, protoTCP, ap("10.0.0.2:1"), ap("[fd00::3]:2")},
		{"invalid address", ctx, protoTCP, netip.AddrPort{}, ap("10.0.0.3:2")},
		{"local port 0", ctx, protoTCP, ap("10.0.0.2:0"), ap("10.0.0.3:2")},
		{"cancelled", cancelled, protoTCP, ap("10.0.0.2:1"), ap("10.0.0.3:2")},
	} {
		if p, ok := s.Lookup(tc.ctx, ns, tc.proto, tc.local, tc.remote); ok {
			t.Errorf("%s: Lookup = %+v", tc.name, p)
		}
	}
	if len(d.queries) != 0 {
		t.Errorf("bad input reached the kernel: %v", d.queries)
	}
	// A namespace that cannot be opened.
	if p, ok := lookup(s, nsB, protoTCP, "10.0.0.2:1", "10.0.0.3:2"); ok {
		t.Errorf("unknown namespace: Lookup = %+v", p)
	}
}

func TestLookupNeverInventsAnOwner(t *testing.T) {
	f := newFakeProc(t)
	// The socket's only holder lives in another namespace (like dockerd serving DNS in a
	// container's namespace).
	f.add(fakeProcess{pid: 600, netns: nsB, comm: "dockerd", exe: "/usr/bin/dockerd", fds: map[int]string{9: sock(900)}})
	f.add(fakeProcess{pid: 601, netns: nsA, comm: "app", exe: "/app", fds: map[int]string{3: sock(901)}})
	d := newFakeDiag()
	d.set(protoTCP, "10.0.0.2:1000", "10.0.0.3:80", established("10.0.0.2:1000", "10.0.0.3:80", 900))
	d.set(protoTCP, "10.0.0.2:1001", "10.0.0.3:80", established("10.0.0.2:1001", "10.0.0.3:80", 902)) // nobody's
	d.set(protoTCP, "10.0.0.2:1002", "10.0.0.3:80", diagSocket{family: unix.AF_INET, state: 6,
		local: netip.MustParseAddrPort("10.0.0.2:1002"), remote: netip.MustParseAddrPort("10.0.0.3:80")}) // TIME_WAIT
	s, _ := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: d})

	for _, local := range []string{"10.0.0.2:1000", "10.0.0.2:1001", "10.0.0.2:1002"} {
		if p, ok := lookup(s, nsA, protoTCP, local, "10.0.0.3:80"); ok {
			t.Errorf("%s: Lookup = %+v, want nothing", local, p)
		}
	}
}

func TestCacheConfirmsOwnerOnHit(t *testing.T) {
	f := newFakeProc(t)
	f.add(fakeProcess{pid: 700, netns: nsA, comm: "client", exe: "/bin/client", uid: 5, fds: map[int]string{3: sock(1000)}})
	d := newFakeDiag()
	d.set(protoTCP, "10.0.0.2:1000", "10.0.0.3:80", established("10.0.0.2:1000", "10.0.0.3:80", 1000))
	s, _ := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: d})
	look := func() (Process, bool) { return lookup(s, nsA, protoTCP, "10.0.0.2:1000", "10.0.0.3:80") }

	if p, ok := look(); !ok || p.PID != 700 {
		t.Fatalf("first Lookup = %+v, %v", p, ok)
	}
	// Renamed (exec, prctl): a hit within detailsTTL answers from memory, a later one
	// reads the name again.
	f.setComm(700, "renamed")
	if p, ok := look(); !ok || p.Comm != "client" {
		t.Errorf("after rename, within detailsTTL: Lookup = %+v, %v; want the name as read", p, ok)
	}
	s.lim.detailsTTL = 0
	if p, ok := look(); !ok || p.Comm != "renamed" {
		t.Errorf("after rename: Lookup = %+v, %v", p, ok)
	}
	if st := s.Stats(); st.Scans != 1 {
		t.Errorf("hits scanned: %+v", st)
	}

	// The socket moved to another process (passed over a unix socket, then closed): the
	// cached holder no longer has it, so a scan finds the new one.
	f.setFD(700, 3, sock(1001))
	f.add(fakeProcess{pid: 701, netns: nsA, comm: "heir", exe: "/bin/heir", fds: map[int]string{7: sock(1000)}})
	if p, ok := look(); !ok || p.PID != 701 || p.Comm != "heir" {
		t.Errorf("after the socket moved: Lookup = %+v, %v", p, ok)
	}
	if st := s.Stats(); st.Scans != 2 {
		t.Errorf("stats %+v, want a second scan", st)
	}

	// The holder is gone: nothing, after one more scan, and no second scan within it.
	f.remove(701)
	if p, ok := look(); ok {
		t.Errorf("holder gone: Lookup = %+v", p)
	}
	if st := s.Stats(); st.Scans != 3 {
		t.Errorf("stats %+v, want 3 scans", st)
	}
}

func TestProcessNetNSMemory(t *testing.T) {
	f := newFakeProc(t)
	f.add(fakeProcess{pid: 1400, netns: nsB, comm: "runc", exe: "/runc", fds: map[int]string{3: sock(6000)}})
	f.add(fakeProcess{pid: 1401, netns: nsA, comm: "app", exe: "/app", fds: map[int]string{3: sock(6001)}})
	d := newFakeDiag()
	for i, ino := range []uint32{6001, 6002, 6003, 6004, 6005} {
		local := fmt.Sprintf("10.0.0.2:%d", 1000+i)
		d.set(protoTCP, local, "10.0.0.3:80", established(local, "10.0.0.3:80", ino))
	}
	s, _ := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: d})
	s.lim.pidSettle = 0
	s.lim.pidRecheck = time.Hour
	// This is about the scan's memory of namespaces; a re-check, which reads the
	// namespace of each process it looks at, would answer some of these lookups first.
	s.lim.recentOwners = 0
	look := func(port int) (Process, bool) {
		return lookup(s, nsA, protoTCP, fmt.Sprintf("10.0.0.2:%d", port), "10.0.0.3:80")
	}
	if p, ok := look(1000); !ok || p.PID != 1401 {
		t.Fatalf("Lookup = %+v, %v", p, ok)
	}
	ns1400 := func() uint64 {
		s.pidMu.Lock()
		defer s.pidMu.Unlock()
		return s.pids[1400].netns
	}
	if ns1400() != nsB {
		t.Fatalf("pid 1400 remembered in namespace %d, want %d", ns1400(), nsB)
	}

	// A settled process that moves to another namespace is not seen there until the
	// periodic recheck: the cost of not reading every process's namespace on every scan.
	moveTo := func(pid int, ns uint64, fd int, ino uint32) {
		link := filepath.Join(f.root, strconv.Itoa(pid), "ns", "net")
		f.must(os.Remove(link))
		f.must(os.Symlink(fmt.Sprintf("net:[%d]", ns), link))
		f.setFD(pid, fd, sock(ino))
	}
	moveTo(1400, nsA, 4, 6002)
	if p, ok := look(1001); ok {
		t.Errorf("moved process found before the recheck: %+v", p)
	}
	s.lim.pidRecheck = 0
	if p, ok := look(1001); !ok || p.PID != 1400 {
		t.Errorf("after the recheck: Lookup = %+v, %v", p, ok)
	}

	// A young process is read every time.
	moveTo(1400, nsB, 5, 6003)
	look(1004) // a miss: scans, learns 1400 in B
	if ns1400() != nsB {
		t.Fatalf("pid 1400 remembered in namespace %d, want %d", ns1400(), nsB)
	}
	s.lim.pidRecheck = time.Hour
	s.lim.pidSettle = time.Hour
	s.pidMu.Lock()
	s.pidsCheck = time.Now()
	s.pidMu.Unlock()
	moveTo(1400, nsA, 5, 6003)
	if p, ok := look(1002); !ok || p.PID != 1400 {
		t.Errorf("young process: Lookup = %+v, %v", p, ok)
	}

	// A new process under a PID that was in another namespace: its /proc entry is a new
	// directory, so the memory of the old one does not apply.
	s.lim.pidSettle = 0
	s.lim.pidRecheck = time.Hour
	f.add(fakeProcess{pid: 1402, netns: nsB, comm: "old", exe: "/old"})
	look(1000) // a hit: no scan
	look(1004) // a miss: scans, learns 1402 in B
	s.pidMu.Lock()
	_, known := s.pids[1402]
	s.pidMu.Unlock()
	if !known {
		t.Fatal("pid 1402 not remembered")
	}
	// The old directory stays until the new one exists, so the two cannot share an inode.
	gone := filepath.Join(f.root, "gone")
	f.must(os.Rename(filepath.Join(f.root, "1402"), gone))
	f.add(fakeProcess{pid: 1402, netns: nsA, comm: "new", exe: "/new", fds: map[int]string{3: sock(6004)}})
	f.must(os.RemoveAll(gone))
	if p, ok := look(1003); !ok || p.PID != 1402 || p.Comm != "new" {
		t.Errorf("reused pid: Lookup = %+v, %v", p, ok)
	}

	// Processes that are gone are forgotten.
	f.remove(1401)
	look(1004)
	s.pidMu.Lock()
	_, known = s.pids[1401]
	s.pidMu.Unlock()
	if known {
		t.Error("pid 1401 is gone but remembered")
	}
}

func TestScanTolerance(t *testing.T) {
	f := newFakeProc(t)
	// Entries of fd that are not numbers, links that are not sockets, an fd dir missing.
	f.add(fakeProcess{pid: 800, netns: nsA, comm: "x", exe: "/x", fds: map[int]string{1: "/dev/pts/0", 2: "pipe:[5]"}})
	f.must(os.Symlink(sock(1), filepath.Join(f.root, "800", "fd", "notanumber")))
	f.add(fakeProcess{pid: 801, netns: nsA, comm: "nofd", exe: "/y"})
	f.must(os.RemoveAll(filepath.Join(f.root, "801", "fd")))
	// A process without an exe link (a kernel thread, a zombie) still owns its socket.
	f.add(fakeProcess{pid: 802, netns: nsA, comm: "noexe", fds: map[int]string{3: sock(1100)}})
	d := newFakeDiag()
	d.set(protoTCP, "10.0.0.2:1000", "10.0.0.3:80", established("10.0.0.2:1000", "10.0.0.3:80", 1100))
	d.set(protoTCP, "10.0.0.2:1001", "10.0.0.3:80", established("10.0.0.2:1001", "10.0.0.3:80", 1))
	s, _ := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: d})

	p, ok := lookup(s, nsA, protoTCP, "10.0.0.2:1000", "10.0.0.3:80")
	if want := (Process{PID: 802, Comm: "noexe"}); !ok || p != want {
		t.Errorf("Lookup = %+v, %v; want %+v", p, ok, want)
	}
	if p, ok := lookup(s, nsA, protoTCP, "10.0.0.2:1001", "10.0.0.3:80"); ok {
		t.Errorf("link under a non-numeric fd name counted: %+v", p)
	}
	// A process that vanished between scan and read is not reported.
	f.must(os.Remove(filepath.Join(f.root, "802", "comm")))
	if p, ok := lookup(s, nsA, protoTCP, "10.0.0.2:1000", "10.0.0.3:80"); ok {
		t.Errorf("unreadable comm: Lookup = %+v", p)
	}
}

func TestSharedSocketGoesToYoungestHolder(t *testing.T) {
	f := newFakeProc(t)
	f.add(fakeProcess{pid: 900, netns: nsA, comm: "master", exe: "/nginx", start: 100, fds: map[int]string{6: sock(1200)}})
	f.add(fakeProcess{pid: 950, netns: nsA, comm: "worker", exe: "/nginx", start: 300, fds: map[int]string{6: sock(1200)}})
	f.add(fakeProcess{pid: 910, netns: nsA, comm: "worker", exe: "/nginx", start: 200, fds: map[int]string{6: sock(1200), 7: sock(1200)}})
	d := newFakeDiag()
	d.set(protoTCP, "10.0.0.2:80", "10.0.0.3:5000", listening("0.0.0.0:80", 1200))
	s, _ := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: d})
	if p, ok := lookup(s, nsA, protoTCP, "10.0.0.2:80", "10.0.0.3:5000"); !ok || p.PID != 950 {
		t.Errorf("Lookup = %+v, %v; want pid 950, the youngest holder", p, ok)
	}
}

func TestCacheBounds(t *testing.T) {
	f := newFakeProc(t)
	diags := map[uint64]*fakeDiag{}
	for i, ns := range []uint64{nsA, nsB, nsC} {
		fds := map[int]string{}
		for fd := 3; fd < 6; fd++ {
			fds[fd] = sock(uint32(2000 + 10*i + fd))
		}
		f.add(fakeProcess{pid: 1000 + i, netns: ns, comm: "p", exe: "/p", fds: fds})
		d := newFakeDiag()
		d.set(protoTCP, "10.0.0.2:1000", "10.0.0.3:80", established("10.0.0.2:1000", "10.0.0.3:80", uint32(2000+10*i+5)))
		diags[ns] = d
	}
	s, _ := newTestOwners(t, f.root, diags)
	s.lim.maxSockets = 5
	s.lim.maxNamespaces = 2

	check := func(step string, wantNS ...uint64) {
		t.Helper()
		s.mu.Lock()
		defer s.mu.Unlock()
		total := 0
		for _, st := range s.owners {
			total += len(st.sockets)
		}
		if total != s.cached || s.cached > s.lim.maxSockets || len(s.owners) > s.lim.maxNamespaces {
			t.Errorf("%s: %d entries (counted %d) in %d namespaces; bounds %d, %d",
				step, total, s.cached, len(s.owners), s.lim.maxSockets, s.lim.maxNamespaces)
		}
		for _, ns := range wantNS {
			if _, ok := s.owners[ns]; !ok {
				t.Errorf("%s: namespace %d not cached", step, ns)
			}
		}
	}
	for _, ns := range []uint64{nsA, nsB} {
		if _, ok := lookup(s, ns, protoTCP, "10.0.0.2:1000", "10.0.0.3:80"); !ok {
			t.Fatalf("namespace %d: not found", ns)
		}
	}
	check("after A and B", nsB) // 3+3 > 5: A, the least recently used, went
	if _, ok := lookup(s, nsC, protoTCP, "10.0.0.2:1000", "10.0.0.3:80"); !ok {
		t.Fatal("namespace C: not found")
	}
	check("after C", nsC)
	scans := s.Stats().Scans
	if _, ok := lookup(s, nsA, protoTCP, "10.0.0.2:1000", "10.0.0.3:80"); !ok {
		t.Fatal("namespace A again: not found")
	}
	if s.Stats().Scans != scans+1 {
		t.Error("an evicted namespace was answered without a scan")
	}
	check("after A again", nsA)

	// One namespace with more sockets than the whole cache keeps the one asked for.
	s.lim.maxSockets = 1
	if p, ok := lookup(s, nsB, protoTCP, "10.0.0.2:1000", "10.0.0.3:80"); !ok || p.PID != 1001 {
		t.Errorf("truncated scan lost the wanted socket: %+v, %v", p, ok)
	}
	check("truncated", nsB)
}

func TestScanRateLimit(t *testing.T) {
	f := newFakeProc(t)
	f.add(fakeProcess{pid: 1100, netns: nsA, comm: "p", exe: "/p", fds: map[int]string{3: sock(3000)}})
	d := newFakeDiag()
	d.set(protoTCP, "10.0.0.2:1000", "10.0.0.3:80", established("10.0.0.2:1000", "10.0.0.3:80", 3000))
	d.set(protoTCP, "10.0.0.2:1001", "10.0.0.3:80", established("10.0.0.2:1001", "10.0.0.3:80", 3001))
	s, _ := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: d})
	// Room for one scan, whatever it costs, and then no refill worth speaking of.
	s.lim.scanBudget = 1e-12
	s.lim.scanBurst = 1e-12
	s.tokens = 1e-12

	if _, ok := lookup(s, nsA, protoTCP, "10.0.0.2:1000", "10.0.0.3:80"); !ok {
		t.Fatal("first lookup: not found")
	}
	f.setFD(1100, 4, sock(3001))
	if p, ok := lookup(s, nsA, protoTCP, "10.0.0.2:1001", "10.0.0.3:80"); ok {
		t.Errorf("over the scan limit: Lookup = %+v", p)
	}
	if st := s.Stats(); st.Scans != 1 || st.ScansLimited != 1 {
		t.Errorf("stats %+v", st)
	}
	// Hits need no scan and go on working.
	if _, ok := lookup(s, nsA, protoTCP, "10.0.0.2:1000", "10.0.0.3:80"); !ok {
		t.Error("cached socket: not found under the scan limit")
	}
}

func TestConcurrentMissesShareOneScan(t *testing.T) {
	f := newFakeProc(t)
	for i := range 20 {
		f.add(fakeProcess{pid: 1200 + i, netns: nsA, comm: "p", exe: "/p", fds: map[int]string{3: sock(uint32(4000 + i))}})
	}
	d := newFakeDiag()
	for i := range 20 {
		local := fmt.Sprintf("10.0.0.2:%d", 1000+i)
		d.set(protoTCP, local, "10.0.0.3:80", established(local, "10.0.0.3:80", uint32(4000+i)))
	}
	s, _ := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: d})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			p, ok := lookup(s, nsA, protoTCP, fmt.Sprintf("10.0.0.2:%d", 1000+i), "10.0.0.3:80")
			if !ok || p.PID != 1200+i {
				t.Errorf("lookup %d = %+v, %v", i, p, ok)
			}
		})
	}
	wg.Wait()
	if st := s.Stats(); st.Scans != 1 {
		t.Errorf("%d scans for sockets that all existed before the first, want 1", st.Scans)
	}
}

func TestDiagSocketsLifecycle(t *testing.T) {
	f := newFakeProc(t)
	f.add(fakeProcess{pid: 1300, netns: nsA, comm: "p", exe: "/p", fds: map[int]string{3: sock(5000)}})
	f.add(fakeProcess{pid: 1301, netns: nsB, comm: "q", exe: "/q", fds: map[int]string{3: sock(5001)}})
	da, db := newFakeDiag(), newFakeDiag()
	da.set(protoTCP, "10.0.0.2:1000", "10.0.0.3:80", established("10.0.0.2:1000", "10.0.0.3:80", 5000))
	db.set(protoTCP, "10.0.0.2:1000", "10.0.0.3:80", established("10.0.0.2:1000", "10.0.0.3:80", 5001))
	s, opens := newTestOwners(t, f.root, map[uint64]*fakeDiag{nsA: da, nsB: db})

	lookup(s, nsA, protoTCP, "10.0.0.2:1000", "10.0.0.3:80")
	lookup(s, nsA, protoTCP, "10.0.0.2:1000", "10.0.0.3:80")
	if *opens != 1 {
		t.Errorf("%d sock_diag sockets opened for one namespace, want 1", *opens)
	}

	// Beyond maxConns, the least recently used socket is closed, letting its namespace go.
	s.lim.maxConns = 1
	lookup(s, nsB, protoTCP, "10.0.0.2:1000", "10.0.0.3:80")
	if !da.isClosed() || db.isClosed() {
		t.Errorf("after a second namespace with room for one: A closed %v, B closed %v", da.isClosed(), db.isClosed())
	}

	// Closed under a lookup (evicted between finding and using it): asked again.
	s.lim.maxConns = 10
	db.mu.Lock()
	db.failNext = errDiagClosed
	db.mu.Unlock()
	if p, ok := lookup(s, nsB, protoTCP, "10.0.0.2:1000", "10.0.0.3:80"); !ok || p.PID != 1301 {
		t.Errorf("after the socket was closed under the lookup: %+v, %v", p, ok)
	}

	// Idle sockets are closed on a later lookup.
	s.lim.connIdle = 0
	s.mu.Lock()
	s.nextPrune = s.nextPrune.Add(-s.lim.connIdle - 1)
	s.mu.Unlock()
	lookup(s, nsA, protoTCP, "10.0.0.2:1000", "10.0.0.3:80")
	if !db.isClosed() {
		t.Error("idle socket of namespace B left open")
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !da.isClosed() {
		t.Error("Close left a socket open")
	}
	if p, ok := lookup(s, nsA, protoTCP, "10.0.0.2:1000", "10.0.0.3:80"); ok {
		t.Errorf("Lookup after Close = %+v", p)
	}
}
