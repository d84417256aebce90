package procmon

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Benchmarks on the real kernel, in the test's own network namespace: the host's, where
// every process on the host is a candidate owner, so a miss here is the worst case. No
// privileges are needed: only the test's own descriptors must be readable.
//
//	go test -run '^$' -bench . -benchmem ./internal/procmon/
//
// With -procs=N the benchmark first starts N idle processes, to measure a busier host.

var benchProcs = flag.Int("procs", 0, "idle processes to start before a benchmark")

func BenchmarkLookup(b *testing.B) {
	spawnIdle(b, *benchProcs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	dial := func() (client, server net.Conn) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		return c, s
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		b.Fatal(err)
	}
	ns := NetNSRef{Path: "/proc/self/ns/net", Inode: st.Ino}
	ctx := context.Background()
	ends := func(c net.Conn) (netip.AddrPort, netip.AddrPort) {
		return netip.MustParseAddrPort(c.LocalAddr().String()), netip.MustParseAddrPort(c.RemoteAddr().String())
	}

	b.Run("hit", func(b *testing.B) {
		s := NewSocketOwners("", nil)
		defer s.Close()
		c, srv := dial()
		defer c.Close()
		defer srv.Close()
		local, remote := ends(c)
		if _, ok := s.Lookup(ctx, ns, protoTCP, local, remote); !ok {
			b.Fatal("not found")
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := s.Lookup(ctx, ns, protoTCP, local, remote); !ok {
				b.Fatal("not found")
			}
		}
	})

	b.Run("listener-fallback-hit", func(b *testing.B) {
		s := NewSocketOwners("", nil)
		defer s.Close()
		local := netip.MustParseAddrPort(ln.Addr().String())
		remote := netip.MustParseAddrPort("127.0.0.9:9")
		if _, ok := s.Lookup(ctx, ns, protoTCP, local, remote); !ok {
			b.Fatal("not found")
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := s.Lookup(ctx, ns, protoTCP, local, remote); !ok {
				b.Fatal("not found")
			}
		}
	})

	// A miss: a new connection, so a new socket, each time. Without re-checks, each is a
	// scan of the host's namespace, every process on the host; with them, the owner of the
	// previous one is read first, and holds it.
	miss := func(b *testing.B, recentOwners int) {
		s := NewSocketOwners("", nil)
		defer s.Close()
		s.lim.scanBudget, s.lim.scanBurst = 1e9, 1e9
		s.lim.recentOwners = recentOwners
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			c, srv := dial()
			local, remote := ends(c)
			b.StartTimer()
			if _, ok := s.Lookup(ctx, ns, protoTCP, local, remote); !ok {
				b.Fatal("not found")
			}
			b.StopTimer()
			c.Close()
			srv.Close()
			b.StartTimer()
		}
		st := s.Stats()
		b.ReportMetric(float64(st.Scans)/float64(st.Lookups), "scans/op")
	}
	b.Run("miss-scans-host-netns", func(b *testing.B) { miss(b, 0) })
	b.Run("miss-recheck", func(b *testing.B) { miss(b, maxRecentOwners) })

	b.Run("not-found", func(b *testing.B) {
		s := NewSocketOwners("", nil)
		defer s.Close()
		local := netip.MustParseAddrPort("127.0.0.1:1")
		remote := netip.MustParseAddrPort("127.0.0.9:9")
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := s.Lookup(ctx, ns, protoTCP, local, remote); ok {
				b.Fatal("found")
			}
		}
	})
}

// BenchmarkScanOtherNetNS is the part of a miss in a container's namespace that does not
// depend on the container: listing /proc and finding the processes in the namespace.
// "first" is the first scan, which reads every process's namespace; "settled" a later
// one, which remembers them.
func BenchmarkScanOtherNetNS(b *testing.B) {
	spawnIdle(b, *benchProcs)
	ctx := context.Background()
	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s := NewSocketOwners("", nil)
			if _, _, err := s.scan(ctx, 1, 0); err != nil { // no namespace has inode 1
				b.Fatal(err)
			}
		}
	})
	b.Run("settled", func(b *testing.B) {
		s := NewSocketOwners("", nil)
		s.lim.pidSettle = 0
		s.lim.pidRecheck = time.Hour
		if _, _, err := s.scan(ctx, 1, 0); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.scan(ctx, 1, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRecheck is the /proc work of a miss answered by a re-check, in the test's own
// namespace, to set against BenchmarkScanOtherNetNS (what a scan of a container's
// namespace costs before it reads a single descriptor) and against
// BenchmarkLookup/miss-scans-host-netns (a scan of the host's namespace):
//
//   - recent-owner: the socket is held by the recent owner itself (this process), under
//     the descriptor number it used last; -other-fd under another one, so that its
//     descriptors are listed;
//   - sibling: by a new child of the recent owner's parent, which has exited (a shell
//     loop's next client): the dead owner, then the parent's children are read;
//   - nobody-near: by no process the re-check looks at, the cost it adds before the scan.
func BenchmarkRecheck(b *testing.B) {
	spawnIdle(b, *benchProcs)
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	srv, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()

	self := int32(os.Getpid())
	inode := func(conn net.Conn) (ino uint32, fd int32) {
		rc, err := conn.(*net.TCPConn).SyscallConn()
		if err != nil {
			b.Fatal(err)
		}
		rc.Control(func(d uintptr) {
			var st unix.Stat_t
			if err := unix.Fstat(int(d), &st); err != nil {
				b.Fatal(err)
			}
			ino, fd = uint32(st.Ino), int32(d)
		})
		return ino, fd
	}
	clientIno, clientFD := inode(c)
	serverIno, _ := inode(srv)
	type benchCase struct {
		name   string
		want   uint32
		recent []recentOwner
		holder int32
	}
	run := func(cases ...benchCase) {
		for _, tc := range cases {
			b.Run(tc.name, func(b *testing.B) {
				s := NewSocketOwners("", nil)
				defer s.Close()
				b.ReportAllocs()
				for b.Loop() {
					o, _, ok := s.recheck(ctx, st.Ino, tc.want, tc.recent)
					if ok != (tc.holder != 0) || o.pid != tc.holder {
						b.Fatalf("recheck = %+v, %v; want pid %d", o, ok, tc.holder)
					}
				}
			})
		}
	}
	parent := int32(os.Getppid())
	run(
		benchCase{"recent-owner", clientIno, []recentOwner{{pid: self, ppid: parent, fd: clientFD}}, self},
		benchCase{"recent-owner-other-fd", clientIno, []recentOwner{{pid: self, ppid: parent, fd: -1}}, self},
		benchCase{"nobody-near", 1, []recentOwner{{pid: self, ppid: parent, fd: -1}}, 0},
	)

	// A child that holds the server end, inherited, and a PID that is gone.
	f, err := srv.(*net.TCPConn).File()
	if err != nil {
		b.Fatal(err)
	}
	child := exec.Command("sleep", "3600")
	child.ExtraFiles = []*os.File{f}
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	srv.Close() // now only the child holds it
	b.Cleanup(func() {
		_ = child.Process.Kill()
		_ = child.Wait()
	})
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		b.Fatal(err)
	}
	dead, kid := int32(gone.Process.Pid), int32(child.Process.Pid)
	const childFD = 3 // the first of ExtraFiles
	run(
		benchCase{"sibling", serverIno, []recentOwner{{pid: dead, ppid: self, fd: childFD}}, kid},
		benchCase{"sibling-other-fd", serverIno, []recentOwner{{pid: dead, ppid: self, fd: -1}}, kid},
	)
}

// spawnIdle starts n sleeping processes for the benchmark's duration. They are children
// of a shell, not of the benchmark, whose own children a re-check reads.
func spawnIdle(b *testing.B, n int) {
	b.Helper()
	if n == 0 {
		return
	}
	cmd := exec.Command("sh", "-c", fmt.Sprintf("for i in $(seq %d); do sleep 3600 & done; wait", n))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	// Until they are all there.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		if len(strings.Fields(string(kids))) >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d idle processes not started in a minute", n)
		}
	}
}
