//go:build integration

package integration

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/vigil-sec/vigil/internal/procmon"
	"github.com/vigil-sec/vigil/test/testenv"
)

// sockDeadline is how long a test waits for a connection to show in the kernel's tables.
const sockDeadline = 10 * time.Second

// Socket attribution in the test's own network namespace (the host's): a Go listener and
// UDP socket in this process, busybox clients (nc, nslookup) as child processes.
func TestSocketOwnersHostNetNS(t *testing.T) {
	s := procmon.NewSocketOwners("/proc", sockLogger(t))
	t.Cleanup(func() { s.Close() })
	ns := procmon.NetNSRef{Path: "/proc/self/ns/net", Inode: inode(t, "/proc/self/ns/net")}
	ctx := context.Background()
	self := procmon.Process{PID: os.Getpid(), Comm: readTrim(t, "/proc/self/comm"), UID: 0}
	if exe, err := os.Readlink("/proc/self/exe"); err == nil {
		self.Exe = exe
	}
	applets := sockApplets(t, "nc", "nslookup")

	for _, tc := range []struct {
		name, listen, connect string
	}{
		{"tcp ipv4", "127.0.0.1:0", "127.0.0.1"},
		{"tcp ipv6", "[::1]:0", "::1"},
		{"tcp ipv4 on a dual-stack listener", "[::]:0", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", tc.listen)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			port := ln.Addr().(*net.TCPAddr).Port
			server := netip.AddrPortFrom(netip.MustParseAddr(tc.connect), uint16(port))

			// nc stays connected while its standard input is open.
			nc := sockStart(t, applets["nc"], tc.connect, strconv.Itoa(port))
			conn := sockConnectionOf(t, nc.Process.Pid, "tcp", server)
			client := conn.local

			// Not accepted yet: the connection waits in the listener's queue and no
			// file holds it, so its owner is the listener's.
			before := s.Stats()
			sockExpect(t, "server end before accept", s, ns, 6, server, client, self)
			if got := s.Stats().ListenerFallbacks - before.ListenerFallbacks; got != 1 {
				t.Errorf("server end before accept: %d listener fallbacks, want 1", got)
			}

			p := sockExpect(t, "client end", s, ns, 6, client, server,
				procmon.Process{PID: nc.Process.Pid, Comm: "nc", UID: 0})
			if !strings.HasSuffix(p.Exe, "busybox") {
				t.Errorf("client end: exe %q, want busybox", p.Exe)
			}

			// A SYN from a peer that has no connection yet.
			sockExpect(t, "SYN from a new peer", s, ns, 6, server, netip.AddrPortFrom(client.Addr(), 1), self)

			accepted, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { accepted.Close() })
			before = s.Stats()
			sockExpect(t, "server end after accept", s, ns, 6, server, client, self)
			if got := s.Stats().ListenerFallbacks - before.ListenerFallbacks; got != 0 {
				t.Errorf("server end after accept: answered by the listener, want the accepted socket")
			}

			if server.Addr().Is4() {
				mapped := func(a netip.AddrPort) netip.AddrPort {
					return netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
				}
				sockExpect(t, "v4-mapped addresses", s, ns, 6, mapped(server), mapped(client), self)
			}
		})
	}

	t.Run("udp", func(t *testing.T) {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { u.Close() })
		server := u.LocalAddr().(*net.UDPAddr).AddrPort()

		sockExpect(t, "bound socket, any peer", s, ns, 17, server, netip.MustParseAddrPort("127.0.0.1:9"), self)

		// nslookup sends its query from a connected socket and waits for an answer that
		// never comes.
		nsl := sockStart(t, applets["nslookup"], "-timeout=60", "-retry=1", "vigil.invalid", server.String())
		if err := u.SetReadDeadline(time.Now().Add(sockDeadline)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		_, from, err := u.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("no query from nslookup: %v", err)
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		sockExpect(t, "client end", s, ns, 17, from, server, procmon.Process{PID: nsl.Process.Pid, Comm: "nslookup", UID: 0})
		sockExpect(t, "server end", s, ns, 17, server, from, self)
	})

	t.Run("no such socket", func(t *testing.T) {
		for _, proto := range []uint8{6, 17} {
			for _, loopback := range []string{"127.0.0.1", "::1"} {
				local := netip.AddrPortFrom(netip.MustParseAddr(loopback), sockFreePort(t, proto, loopback))
				remote := netip.AddrPortFrom(netip.MustParseAddr(loopback), 40000)
				if p, ok := s.Lookup(ctx, ns, proto, local, remote); ok {
					t.Errorf("proto %d %v ← %v: Lookup = %+v, want nothing", proto, local, remote, p)
				}
			}
		}
	})
}

// Socket attribution inside containers: busybox httpd in one, a client nc in another, on
// one Docker network; each end looked up in its own container's namespace.
func TestSocketOwnersContainers(t *testing.T) {
	d := testenv.NewDocker(t)
	d.EnsureImage(t)
	netName := d.Network(t, "")
	server := d.Run(t, testenv.ContainerSpec{NetworkMode: netName, Cmd: []string{"httpd", "-f", "-p", "8080"}})
	serverIP := sockContainerIP(t, d, server.ID, netName)
	target := netip.AddrPortFrom(serverIP, 8080)
	clientCmd := "sleep 600 | nc " + serverIP.String() + " 8080"
	clientC := d.Run(t, testenv.ContainerSpec{NetworkMode: netName, Cmd: []string{"sh", "-c", clientCmd}})

	serverPID, clientPID := d.Inspect(t, server.ID).State.Pid, d.Inspect(t, clientC.ID).State.Pid
	serverNS := procmon.NetNSRef{Path: fmt.Sprintf("/proc/%d/ns/net", serverPID)}
	serverNS.Inode = inode(t, serverNS.Path)
	clientNS := procmon.NetNSRef{Path: fmt.Sprintf("/proc/%d/ns/net", clientPID)}
	clientNS.Inode = inode(t, clientNS.Path)

	// The connection as each namespace's own table lists it, once httpd has accepted it.
	var conn, accepted, listener sockEntry
	eventually(t, sockDeadline, "the client's connection", func() (bool, string) {
		all := sockTable(t, clientPID, "tcp")
		for _, e := range all {
			if e.state == tcpEstablished && e.remote == target {
				conn = e
				return true, ""
			}
		}
		return false, fmt.Sprint(all)
	})
	eventually(t, sockDeadline, "httpd to accept the connection", func() (bool, string) {
		all := sockTable(t, serverPID, "tcp")
		for _, e := range all {
			switch {
			case e.state == tcpEstablished && e.local == target && e.remote == conn.local && e.inode != 0:
				accepted = e
			case e.state == tcpListen && e.local.Port() == 8080:
				listener = e
			}
		}
		return accepted.inode != 0 && listener.inode != 0, fmt.Sprint(all)
	})

	// A host with a few hundred processes, for the latencies measured below.
	sockIdleProcesses(t, 250)

	s := procmon.NewSocketOwners("/proc", sockLogger(t))
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	created := time.Now()

	start := time.Now()
	p, ok := s.Lookup(ctx, serverNS, 6, target, conn.local)
	cold := time.Since(start)
	if !ok || p.Comm != "httpd" {
		t.Fatalf("server end: Lookup = %+v, %v; want httpd", p, ok)
	}
	sockCheckHolder(t, "server end", p, accepted.inode, server.ID, serverNS)

	p, ok = s.Lookup(ctx, clientNS, 6, conn.local, target)
	if !ok || p.Comm != "nc" || p.Exe != "/bin/busybox" || p.UID != 0 {
		t.Fatalf("client end: Lookup = %+v, %v; want nc, /bin/busybox, uid 0", p, ok)
	}
	sockCheckHolder(t, "client end", p, conn.inode, clientC.ID, clientNS)

	p, ok = s.Lookup(ctx, serverNS, 6, target, netip.MustParseAddrPort("192.0.2.1:4000"))
	if !ok || p.Comm != "httpd" {
		t.Fatalf("SYN from a new peer: Lookup = %+v, %v; want httpd", p, ok)
	}
	sockCheckHolder(t, "listener", p, listener.inode, server.ID, serverNS)

	for _, tc := range []struct {
		name          string
		ns            procmon.NetNSRef
		proto         uint8
		local, remote netip.AddrPort
	}{
		{"the server's end asked in the client's namespace", clientNS, 6, target, conn.local},
		{"a port nobody listens on", serverNS, 6, netip.AddrPortFrom(serverIP, 8081), conn.local},
		{"UDP where only TCP listens", serverNS, 17, target, conn.local},
		{"a client port with no socket", clientNS, 6, netip.AddrPortFrom(conn.local.Addr(), conn.local.Port()^1), target},
	} {
		if p, ok := s.Lookup(ctx, tc.ns, tc.proto, tc.local, tc.remote); ok {
			t.Errorf("%s: Lookup = %+v, want nothing", tc.name, p)
		}
	}

	// Latency. A hit: the same flow again.
	hits := make([]time.Duration, 0, 1000)
	for range cap(hits) {
		start := time.Now()
		if _, ok := s.Lookup(ctx, serverNS, 6, target, conn.local); !ok {
			t.Fatal("server end: lost")
		}
		hits = append(hits, time.Since(start))
	}
	// A miss: a client started by docker exec after the last scan, so its socket is new.
	// Each is stopped once looked up, so that the container keeps a handful of processes.
	// Misses in the first seconds re-read every process's namespace (all are new to s);
	// later ones only those of new processes.
	var young, settled []time.Duration
	seen := map[netip.AddrPort]bool{conn.local: true}
	for i := 0; len(settled) < 10 && i < 100; i++ {
		sockExecDetached(t, d, clientC.ID, "sh", "-c", clientCmd)
		var fresh sockEntry
		eventually(t, sockDeadline, fmt.Sprintf("exec'd client %d's connection", i), func() (bool, string) {
			for _, e := range sockTable(t, clientPID, "tcp") {
				if e.state == tcpEstablished && e.remote == target && !seen[e.local] {
					fresh = e
					return true, ""
				}
			}
			return false, "not yet"
		})
		seen[fresh.local] = true
		before := s.Stats()
		start := time.Now()
		p, ok := s.Lookup(ctx, clientNS, 6, fresh.local, target)
		if took := time.Since(start); start.Sub(created) < 3*time.Second {
			young = append(young, took)
		} else {
			settled = append(settled, took)
		}
		if !ok || p.Comm != "nc" {
			t.Fatalf("exec'd client %d: Lookup = %+v, %v; want nc", i, p, ok)
		}
		sockCheckHolder(t, "exec'd client", p, fresh.inode, clientC.ID, clientNS)
		// A new socket of a new process: found by a scan, or by a re-check should the
		// new process be next to a recent owner, never from the cache.
		if after := s.Stats(); after.Scans+after.RecheckHits != before.Scans+before.RecheckHits+1 {
			t.Errorf("exec'd client %d: found without reading /proc: %+v then %+v", i, before, after)
		}
		sockStopPipeline(t, p.PID, clientNS)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	t.Logf("Lookup latency with %d processes on the host, %d in the client container: first (opens the namespace, scans) %v; "+
		"hit %s; miss in the first 3s %s; miss later %s",
		len(procs), len(sockPIDsIn(t, clientNS.Inode)), cold, sockLatencies(hits), sockLatencies(young), sockLatencies(settled))
	t.Logf("stats %+v", s.Stats())
}

// A busy container, opening short connections in a loop, beside a quiet pair of
// containers. Each new connection is a new socket, so a miss, as the agent sees it: the
// busy client's are found mostly by re-checks (each nc is a sibling of the one before),
// not by scans of its namespace, and the quiet pair's lookups all succeed meanwhile. On a
// host with a thousand processes a scan costs milliseconds, so scans for every busy
// connection would go over the budget (and, before shares, leave the quiet pair without).
func TestSocketOwnersBusyNeighbour(t *testing.T) {
	d := testenv.NewDocker(t)
	d.EnsureImage(t)
	netName := d.Network(t, "")
	type pair struct {
		name               string
		server, client     testenv.Container
		serverNS, clientNS procmon.NetNSRef
		clientPID          int
		target             netip.AddrPort
	}
	nsOf := func(id string) (procmon.NetNSRef, int) {
		pid := d.Inspect(t, id).State.Pid
		ns := procmon.NetNSRef{Path: fmt.Sprintf("/proc/%d/ns/net", pid)}
		ns.Inode = inode(t, ns.Path)
		return ns, pid
	}
	// Each server hands every connection to a new child that holds it for a while.
	newPair := func(name, hold, client string) *pair {
		p := &pair{name: name}
		p.server = d.Run(t, testenv.ContainerSpec{NetworkMode: netName, Cmd: []string{"nc", "-ll", "-p", "8080", "-e", "sleep", hold}})
		p.target = netip.AddrPortFrom(sockContainerIP(t, d, p.server.ID, netName), 8080)
		p.serverNS, _ = nsOf(p.server.ID)
		cmd := strings.ReplaceAll(client, "SERVER", p.target.Addr().String())
		p.client = d.Run(t, testenv.ContainerSpec{NetworkMode: netName, Cmd: []string{"sh", "-c", cmd}})
		p.clientNS, p.clientPID = nsOf(p.client.ID)
		return p
	}
	busy := newPair("busy", "0.1", "for i in 1 2 3 4; do (while true; do echo x | nc SERVER 8080; done) & done; wait")
	quiet := newPair("quiet", "2", "while true; do echo x | nc SERVER 8080; sleep 0.5; done")

	sockIdleProcesses(t, 1000)

	s := procmon.NewSocketOwners("/proc", sockLogger(t))
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()

	type tally struct{ asked, found, byRecheck, byScan, byCache, limited int }
	var busyClient, busyServer, quietEnds tally
	count := func(tl *tally, ok bool, before, after procmon.Stats) {
		tl.asked++
		tl.limited += int(after.ScansLimited - before.ScansLimited)
		if !ok {
			return
		}
		tl.found++
		switch {
		case after.RecheckHits > before.RecheckHits:
			tl.byRecheck++
		case after.Scans > before.Scans:
			tl.byScan++
		default:
			tl.byCache++
		}
	}
	// lookupEnds looks up both ends of each connection of the pair's client not seen
	// before, as the agent would on the connection's first packets.
	seen := map[netip.AddrPort]bool{}
	lookupEnds := func(p *pair, client, server *tally, strict bool) {
		for _, e := range sockTable(t, p.clientPID, "tcp") {
			// Connected, or closing with nc still holding it (inode 0 once it has gone).
			if e.remote != p.target || e.inode == 0 || seen[e.local] || e.state == tcpListen {
				continue
			}
			seen[e.local] = true
			before := s.Stats()
			cp, ok := s.Lookup(ctx, p.clientNS, 6, e.local, p.target)
			after := s.Stats()
			count(client, ok && cp.Comm == "nc", before, after)
			if strict && (!ok || cp.Comm != "nc") {
				t.Errorf("%s client end %v (state %d): Lookup = %+v, %v; stats %+v", p.name, e.local, e.state, cp, ok, after)
			}
			before = after
			sp, ok := s.Lookup(ctx, p.serverNS, 6, p.target, e.local)
			after = s.Stats()
			// The child holding it, or the listener's owner before the child is there.
			count(server, ok && (sp.Comm == "sleep" || sp.Comm == "nc"), before, after)
			if strict && (!ok || sp.Comm != "sleep" && sp.Comm != "nc") {
				t.Errorf("%s server end ← %v: Lookup = %+v, %v; stats %+v", p.name, e.local, sp, ok, after)
			}
		}
	}

	for _, p := range []*pair{busy, quiet} {
		eventually(t, sockDeadline, p.name+" client's first connection", func() (bool, string) {
			all := sockTable(t, p.clientPID, "tcp")
			for _, e := range all {
				if e.remote == p.target && e.inode != 0 {
					return true, ""
				}
			}
			return false, fmt.Sprint(all)
		})
	}
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		lookupEnds(busy, &busyClient, &busyServer, false)
		lookupEnds(quiet, &quietEnds, &quietEnds, true)
	}
	st := s.Stats()
	t.Logf("busy client ends %+v, busy server ends %+v, quiet ends %+v; stats %+v", busyClient, busyServer, quietEnds, st)

	if quietEnds.asked < 4 {
		t.Errorf("quiet pair: %d lookups, want at least 4 (2 connections)", quietEnds.asked)
	}
	if busyClient.asked < 30 {
		t.Fatalf("busy client: %d connections looked up in 6 s, want at least 30", busyClient.asked)
	}
	// A connection can end between being listed and being looked up; most do not.
	if busyClient.found < busyClient.asked*8/10 {
		t.Errorf("busy client: %d of %d connections attributed, want 80%%", busyClient.found, busyClient.asked)
	}
	if fromProc := busyClient.byRecheck + busyClient.byScan; busyClient.byRecheck < fromProc*8/10 {
		t.Errorf("busy client: %d found by re-checks, %d by scans; want 80%% by re-checks", busyClient.byRecheck, busyClient.byScan)
	}
	if busyServer.found < busyServer.asked/2 {
		t.Errorf("busy server: %d of %d connections attributed, want half", busyServer.found, busyServer.asked)
	}
}

func sockLatencies(d []time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	slices.Sort(d)
	return fmt.Sprintf("median %v p99 %v (n=%d)", d[len(d)/2], d[len(d)*99/100], len(d))
}

// sockPIDsIn lists the processes in a network namespace.
func sockPIDsIn(t *testing.T, netns uint64) []int {
	t.Helper()
	want := fmt.Sprintf("net:[%d]", netns)
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, p := range procs {
		if link, err := os.Readlink(p + "/ns/net"); err == nil && link == want {
			pid, _ := strconv.Atoi(filepath.Base(p))
			out = append(out, pid)
		}
	}
	return out
}

// sockIdleProcesses starts n sleeping processes for the test's duration.
func sockIdleProcesses(t *testing.T, n int) {
	t.Helper()
	for range n {
		cmd := exec.Command("sleep", "600")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
}

// sockExpect looks up a flow and checks the owner against want (its Exe only when want
// has one).
func sockExpect(t *testing.T, what string, s *procmon.SocketOwners, ns procmon.NetNSRef, proto uint8, local, remote netip.AddrPort, want procmon.Process) procmon.Process {
	t.Helper()
	p, ok := s.Lookup(context.Background(), ns, proto, local, remote)
	got := p
	if want.Exe == "" {
		got.Exe = ""
	}
	if !ok || got != want {
		t.Errorf("%s: Lookup(proto %d, %v ← %v) = %+v, %v; want %+v", what, proto, local, remote, p, ok, want)
	}
	return p
}

// sockCheckHolder checks, through /proc and not through procmon, that p is a host process
// of the container, in the namespace, holding the socket.
func sockCheckHolder(t *testing.T, what string, p procmon.Process, sockInode uint64, containerID string, ns procmon.NetNSRef) {
	t.Helper()
	if !slices.Contains(sockInodes(p.PID), sockInode) {
		t.Errorf("%s: pid %d does not hold socket %d", what, p.PID, sockInode)
	}
	if got := inode(t, fmt.Sprintf("/proc/%d/ns/net", p.PID)); got != ns.Inode {
		t.Errorf("%s: pid %d is in network namespace %d, want %d", what, p.PID, got, ns.Inode)
	}
	if cg := readTrim(t, fmt.Sprintf("/proc/%d/cgroup", p.PID)); !strings.Contains(cg, containerID) {
		t.Errorf("%s: pid %d is not in container %s: cgroup %s", what, p.PID, containerID[:12], cg)
	}
	if comm := readTrim(t, fmt.Sprintf("/proc/%d/comm", p.PID)); comm != p.Comm {
		t.Errorf("%s: pid %d comm %q, Lookup said %q", what, p.PID, comm, p.Comm)
	}
}

func sockLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(sockTestWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type sockTestWriter struct{ t *testing.T }

func (w sockTestWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// sockApplets makes links named after busybox applets, so that the processes started
// from them carry the applet's name as their comm.
func sockApplets(t *testing.T, names ...string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	out := map[string]string{}
	for _, n := range names {
		out[n] = filepath.Join(dir, n)
		if err := os.Symlink(testenv.BusyboxPath, out[n]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// sockStart starts a command with its standard input held open, and kills it when the
// test ends.
func sockStart(t *testing.T, path string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(path, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		stdin.Close()
	})
	return cmd
}

// sockStopPipeline kills the processes of the shell pipeline that pid is part of: the
// children of its parent, a shell in the same network namespace, which this test started.
// Should the parent be anything else, only pid is killed.
func sockStopPipeline(t *testing.T, pid int, ns procmon.NetNSRef) {
	t.Helper()
	stat := readTrim(t, fmt.Sprintf("/proc/%d/stat", pid))
	ppid := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])[1]
	victims := []string{strconv.Itoa(pid)}
	if readTrim(t, "/proc/"+ppid+"/comm") == "sh" && inode(t, "/proc/"+ppid+"/ns/net") == ns.Inode {
		victims = strings.Fields(readTrim(t, fmt.Sprintf("/proc/%s/task/%s/children", ppid, ppid)))
	}
	for _, v := range victims {
		n, _ := strconv.Atoi(v)
		if err := syscall.Kill(n, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			t.Errorf("kill %d: %v", n, err)
		}
	}
}

// sockExecDetached runs a command in a container in the background.
func sockExecDetached(t *testing.T, d *testenv.Docker, id string, cmd ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ex, err := d.Client.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd})
	if err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, id[:12], err)
	}
	if _, err := d.Client.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true}); err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, id[:12], err)
	}
}

func sockContainerIP(t *testing.T, d *testenv.Docker, id, network string) netip.Addr {
	t.Helper()
	ep := d.Inspect(t, id).NetworkSettings.Networks[network]
	if ep == nil || !ep.IPAddress.IsValid() {
		t.Fatalf("container %s has no address on %s", id[:12], network)
	}
	return ep.IPAddress.Unmap()
}

// sockFreePort returns a port on which nothing is bound now.
func sockFreePort(t *testing.T, proto uint8, addr string) uint16 {
	t.Helper()
	hostPort := net.JoinHostPort(addr, "0")
	if proto == 6 {
		ln, err := net.Listen("tcp", hostPort)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return uint16(ln.Addr().(*net.TCPAddr).Port)
	}
	c, err := net.ListenPacket("udp", hostPort)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

// TCP states as /proc/net/tcp prints them (include/net/tcp_states.h).
const (
	tcpEstablished = 1
	tcpListen      = 10
)

// sockEntry is one line of /proc/PID/net/{tcp,udp}{,6}.
type sockEntry struct {
	local, remote netip.AddrPort
	state         uint8
	inode         uint64
}

func (e sockEntry) String() string {
	return fmt.Sprintf("%v→%v st %d ino %d", e.local, e.remote, e.state, e.inode)
}

// sockTable reads the sockets of proto ("tcp" or "udp") in the network namespace of pid,
// IPv4 and IPv6, with v4-mapped addresses unmapped.
func sockTable(t *testing.T, pid int, proto string) []sockEntry {
	t.Helper()
	var out []sockEntry
	for _, name := range []string{proto, proto + "6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, name))
		if err != nil {
			t.Fatalf("read sockets of %d: %v", pid, err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		for _, line := range lines[1:] {
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			local, err1 := sockProcAddr(f[1])
			remote, err2 := sockProcAddr(f[2])
			state, err3 := strconv.ParseUint(f[3], 16, 8)
			ino, err4 := strconv.ParseUint(f[9], 10, 64)
			if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
				t.Fatalf("unreadable line of /proc/%d/net/%s: %q", pid, name, line)
			}
			out = append(out, sockEntry{local: local, remote: remote, state: uint8(state), inode: ino})
		}
	}
	return out
}

// sockProcAddr parses "0100007F:1F90": the address as the kernel's 32-bit words printed in
// host byte order, then the port.
func sockProcAddr(s string) (netip.AddrPort, error) {
	addrHex, portHex, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("no port in %q", s)
	}
	raw, err := hex.DecodeString(addrHex)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", addrHex)
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(b)
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", portHex)
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

// sockInodes lists the socket inodes among pid's descriptors.
func sockInodes(pid int) []uint64 {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	var out []uint64
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if s, ok := strings.CutPrefix(target, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
				out = append(out, ino)
			}
		}
	}
	return out
}

// sockConnectionOf waits until process pid holds an established connection of proto to
// remote and returns it.
func sockConnectionOf(t *testing.T, pid int, proto string, remote netip.AddrPort) sockEntry {
	t.Helper()
	var found sockEntry
	eventually(t, sockDeadline, fmt.Sprintf("pid %d to connect to %v", pid, remote), func() (bool, string) {
		held := sockInodes(pid)
		all := sockTable(t, pid, proto)
		for _, e := range all {
			if e.state == tcpEstablished && e.remote == remote && slices.Contains(held, e.inode) {
				found = e
				return true, ""
			}
		}
		return false, fmt.Sprintf("holds %v; table %v", held, all)
	})
	return found
}
