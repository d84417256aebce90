//go:build integration

package enforce

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"
)

const (
	addrA = "198.18.200.1"
	addrB = "198.18.200.2"
	port  = "8080"
)

// pair is two network namespaces joined by a veth pair: A (the client) and B (the
// protected workload).
type pair struct {
	a, b string // names under /run/netns
}

func (p pair) pathA() string { return "/run/netns/" + p.a }
func (p pair) pathB() string { return "/run/netns/" + p.b }

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

func newPair(t *testing.T) pair {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(b)
	p := pair{a: "vt-enf-" + id + "-a", b: "vt-enf-" + id + "-b"}
	for _, ns := range []string{p.a, p.b} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	va, vb := "vta"+id, "vtb"+id
	run(t, "ip", "link", "add", va, "netns", p.a, "type", "veth", "peer", "name", vb, "netns", p.b)
	run(t, "ip", "-n", p.a, "addr", "add", addrA+"/30", "dev", va)
	run(t, "ip", "-n", p.b, "addr", "add", addrB+"/30", "dev", vb)
	run(t, "ip", "-n", p.a, "link", "set", va, "up")
	run(t, "ip", "-n", p.b, "link", "set", vb, "up")
	return p
}

// inNS runs fn on a thread moved into the namespace at path. Sockets fn creates stay in
// that namespace after it returns.
func inNS(t *testing.T, path string, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		ns, err := netns.GetFromPath(path)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		fn()
		// A thread that cannot go back stays locked, so the runtime discards it.
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("enter %s: %v", path, err)
	}
}

// listen serves TCP on B until the test ends; each connection gets "ok".
func listen(t *testing.T, p pair) {
	t.Helper()
	var ln net.Listener
	var err error
	inNS(t, p.pathB(), func() { ln, err = net.Listen("tcp", net.JoinHostPort(addrB, port)) })
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
			c.Write([]byte("ok"))
			c.Close()
		}
	}()
}

// dial connects from A to B's listener and reads its greeting.
func dial(t *testing.T, p pair, timeout time.Duration) error {
	t.Helper()
	var c net.Conn
	var err error
	inNS(t, p.pathA(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(addrB, port))
	})
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	b := make([]byte, 2)
	if _, err := c.Read(b); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if string(b) != "ok" {
		return fmt.Errorf("read %q", b)
	}
	return nil
}

// eventually polls dial until check accepts its result or the deadline passes.
func eventually(t *testing.T, what string, p pair, check func(error) bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = dial(t, p, 500*time.Millisecond); check(err) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: last dial: %v", what, err)
}

func connects(err error) bool { return err == nil }

func plan(p pair, peers ...netip.Prefix) Plan {
	return Plan{
		Workload: "b", NetNS: p.pathB(), Log: true,
		Ingress: []Allow{{Set: "g_vigil_clients", Peers: peers, Proto: 6, PortFirst: 8080, PortLast: 8080}},
	}
}

func TestEnforceAllowDenyUpdateRemove(t *testing.T) {
	p := newPair(t)
	listen(t, p)
	t.Cleanup(func() { _ = Remove(p.pathB()) })

	eventually(t, "no plan: A connects", p, connects)

	if err := Apply(plan(p, netip.MustParsePrefix("198.18.201.0/24"))); err != nil {
		t.Fatal(err)
	}
	if ok, err := Installed(p.pathB()); err != nil || !ok {
		t.Fatalf("Installed = %v, %v after Apply", ok, err)
	}
	// A refused client fails fast: a reset, well inside a second, not a timeout.
	start := time.Now()
	err := dial(t, p, 2*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("A not in the set: dial = %v, want connection refused", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusal took %v", d)
	}

	if err := UpdateSet(p.pathB(), "g_vigil_clients", []netip.Prefix{netip.MustParsePrefix(addrA + "/32")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A added to the set: A connects", p, connects)

	if err := Remove(p.pathB()); err != nil {
		t.Fatal(err)
	}
	if ok, err := Installed(p.pathB()); err != nil || ok {
		t.Fatalf("Installed = %v, %v after Remove", ok, err)
	}
	if err := Remove(p.pathB()); err != nil {
		t.Fatalf("Remove without a table: %v", err)
	}
	eventually(t, "table removed: A connects", p, connects)
}

func tablesIn(t *testing.T, path string) int {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tb := range tables {
		if tb.Name == TableName {
			n++
		}
	}
	return n
}

func setElements(t *testing.T, path, set string) int {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.GetSetByName(&nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}, set)
	if err != nil {
		t.Fatal(err)
	}
	es, err := c.GetSetElements(s)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func TestApplyTwiceOneTable(t *testing.T) {
	p := newPair(t)
	t.Cleanup(func() { _ = Remove(p.pathB()) })
	for i := range 2 {
		if err := Apply(plan(p, netip.MustParsePrefix(addrA+"/32"))); err != nil {
			t.Fatalf("Apply %d: %v", i, err)
		}
		if n := tablesIn(t, p.pathB()); n != 1 {
			t.Fatalf("after Apply %d: %d vigil tables, want 1", i, n)
		}
	}
}

// TestApplyConcurrent applies plans to several namespaces at once; run with -race.
func TestApplyConcurrent(t *testing.T) {
	pairs := []pair{newPair(t), newPair(t), newPair(t)}
	errc := make(chan error, len(pairs))
	for _, p := range pairs {
		go func() { errc <- Apply(plan(p, netip.MustParsePrefix(addrA+"/32"))) }()
	}
	for range pairs {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	for _, p := range pairs {
		if n := tablesIn(t, p.pathB()); n != 1 {
			t.Errorf("%s: %d vigil tables, want 1", p.b, n)
		}
	}
}

func TestApplyWrongInode(t *testing.T) {
	p := newPair(t)
	pl := plan(p)
	pl.Inode = 1
	if err := Apply(pl); !errors.Is(err, ErrNetNSChanged) {
		t.Fatalf("Apply = %v, want ErrNetNSChanged", err)
	}
	if err := Apply(Plan{Workload: "gone", NetNS: "/run/netns/vt-enf-absent"}); !errors.Is(err, ErrNoNetNS) {
		t.Fatalf("Apply = %v, want ErrNoNetNS", err)
	}
}

// TestApplyThousandPeers times Apply and UpdateSet with a 1,000-element peer set and
// checks the allowed peer among them still connects.
func TestApplyThousandPeers(t *testing.T) {
	p := newPair(t)
	listen(t, p)
	t.Cleanup(func() { _ = Remove(p.pathB()) })
	peers := []netip.Prefix{netip.MustParsePrefix(addrA + "/32")}
	for i := 0; len(peers) < 1000; i++ {
		// Every other address, so no two merge into one interval.
		a := netip.AddrFrom4([4]byte{10, byte(i >> 7), byte(i << 1), 0})
		peers = append(peers, netip.PrefixFrom(a, 32))
	}
	start := time.Now()
	if err := Apply(plan(p, peers...)); err != nil {
		t.Fatal(err)
	}
	applied := time.Since(start)
	start = time.Now()
	if err := UpdateSet(p.pathB(), "g_vigil_clients", peers); err != nil {
		t.Fatal(err)
	}
	t.Logf("1,000-element set: Apply %v, UpdateSet %v", applied, time.Since(start))
	if n := setElements(t, p.pathB(), "g_vigil_clients_v4"); n != 2*len(peers) {
		t.Errorf("set holds %d elements, want %d (a start and an end per peer)", n, 2*len(peers))
	}
	eventually(t, "A among 1,000 peers connects", p, connects)
}

// TestApplyThousandsOfRules applies a plan of 2,000 port rules (4,000 with both
// families): one batch, larger than the default netlink send buffer allows.
func TestApplyThousandsOfRules(t *testing.T) {
	p := newPair(t)
	t.Cleanup(func() { _ = Remove(p.pathB()) })
	pl := plan(p, netip.MustParsePrefix(addrA+"/32"))
	for i := range 2000 {
		pl.Ingress = append(pl.Ingress, Allow{Set: "many", Peers: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")},
			Proto: 6, PortFirst: uint16(20000 + i), PortLast: uint16(20000 + i)})
	}
	start := time.Now()
	if err := Apply(pl); err != nil {
		t.Fatalf("Apply of 2,000 rules: %v", err)
	}
	t.Logf("Apply of %d ingress rules took %v", len(pl.Ingress), time.Since(start))
	if n := tablesIn(t, p.pathB()); n != 1 {
		t.Fatalf("%d vigil tables, want 1", n)
	}
}
