//go:build integration

package enforce

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
)

const echoPort = 8081

// echo serves TCP on B's echoPort until the test ends, echoing what each client sends.
func echo(t *testing.T, p pair) {
	t.Helper()
	var ln net.Listener
	var err error
	inNS(t, p.pathB(), func() {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(netip.MustParseAddr(addrB), echoPort).String())
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
}

// roundTrip sends one byte on c and waits for its echo.
func roundTrip(c net.Conn, timeout time.Duration) error {
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte{'x'}); err != nil {
		return err
	}
	b := make([]byte, 1)
	_, err := io.ReadFull(c, b)
	return err
}

func echoPlan(p pair, peers ...netip.Prefix) Plan {
	return Plan{
		Workload: "b", NetNS: p.pathB(), Log: true,
		Ingress: []Allow{{Set: "g_vigil_clients", Peers: peers, Proto: 6, PortFirst: echoPort, PortLast: echoPort}},
	}
}

func TestCutWithdrawnPeer(t *testing.T) {
	p := newPair(t)
	echo(t, p)
	t.Cleanup(func() { _ = Remove(p.pathB()) })
	a, b := netip.MustParseAddr(addrA), netip.MustParseAddr(addrB)

	if err := Apply(echoPlan(p, netip.PrefixFrom(a, 32))); err != nil {
		t.Fatal(err)
	}
	var c net.Conn
	var err error
	inNS(t, p.pathA(), func() {
		c, err = net.DialTimeout("tcp", netip.AddrPortFrom(b, echoPort).String(), time.Second)
	})
	if err != nil {
		t.Fatalf("allowed A: dial: %v", err)
	}
	defer c.Close()
	if err := roundTrip(c, time.Second); err != nil {
		t.Fatalf("allowed A: %v", err)
	}

	// Withdraw A: its established connection survives on conntrack alone.
	if err := Apply(echoPlan(p, netip.MustParsePrefix("198.18.201.0/24"))); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(c, time.Second); err != nil {
		t.Fatalf("withdrawn A before Cut: %v", err)
	}

	n, err := Cut(p.pathB(), b, echoPort, 6, func(peer netip.Addr) bool { return peer == a })
	if err != nil || n != 0 {
		t.Fatalf("Cut keeping A = %d, %v; want 0, nil", n, err)
	}
	if err := roundTrip(c, time.Second); err != nil {
		t.Fatalf("kept A: %v", err)
	}

	n, err = Cut(p.pathB(), b, echoPort, 6, func(peer netip.Addr) bool { return peer != a })
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("Cut deleted %d entries, want 1", n)
	}
	// The next segment from A is new to conntrack, so the table resets it.
	deadline := time.Now().Add(time.Second)
	for {
		err = roundTrip(c, time.Until(deadline))
		if err != nil {
			break
		}
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("after Cut: %v, want a reset within 1 s", err)
	}

	if _, err := Cut("/run/netns/vt-enf-absent", b, echoPort, 6, func(netip.Addr) bool { return false }); !errors.Is(err, ErrNoNetNS) {
		t.Fatalf("Cut in a missing namespace = %v, want ErrNoNetNS", err)
	}
}

func TestListenDeniedConnection(t *testing.T) {
	p := newPair(t)
	listen(t, p)
	t.Cleanup(func() { _ = Remove(p.pathB()) })
	if err := Apply(plan(p, netip.MustParsePrefix("198.18.201.0/24"))); err != nil {
		t.Fatal(err)
	}
	l, err := OpenDenyLog(p.pathB())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	denied := make(chan Denied, 16)
	done := make(chan error, 1)
	go func() {
		done <- l.Run(ctx, func(d Denied) {
			select {
			case denied <- d:
			default:
			}
		})
	}()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	}()

	start := time.Now()
	if err := dial(t, p, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial = %v, want connection refused", err)
	}
	want := netip.MustParseAddr(addrA)
	timeout := time.After(time.Second - time.Since(start))
	for {
		select {
		case d := <-denied:
			if d.Src.Addr() != want || d.Dst.Port() != 8080 || d.Proto != 6 || !d.In {
				t.Logf("other denied packet: %+v", d)
				continue
			}
			if d.Dst.Addr() != netip.MustParseAddr(addrB) {
				t.Errorf("Dst = %v, want %s:8080", d.Dst, addrB)
			}
			if d.Time.IsZero() || time.Since(d.Time) > time.Minute {
				t.Errorf("Time = %v", d.Time)
			}
			if n := l.Malformed(); n != 0 {
				t.Errorf("%d malformed packets", n)
			}
			return
		case err := <-done:
			t.Fatalf("Run ended: %v", err)
		case <-timeout:
			t.Fatalf("no Denied for %s within 1 s", want)
		}
	}
}

func TestListenDeniedMissingNamespace(t *testing.T) {
	err := ListenDenied(context.Background(), "/run/netns/vt-enf-absent", func(Denied) {})
	if !errors.Is(err, ErrNoNetNS) {
		t.Fatalf("ListenDenied = %v, want ErrNoNetNS", err)
	}
	if _, err := os.Stat("/run/netns/vt-enf-absent"); err == nil {
		t.Fatal("test namespace path exists")
	}
}
