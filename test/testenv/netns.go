package testenv

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// NetNS creates a named network namespace (ip netns add) and deletes it when the test
// ends. It returns the namespace's path under /run/netns.
func NetNS(t testing.TB, name string) string {
	t.Helper()
	if name == "" {
		name = RandomName("vigil-test")
	}
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, strings.TrimSpace(string(out)))
		}
	})
	return "/run/netns/" + name
}

// IP runs an ip(8) command and fails the test when it fails.
func IP(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out)
}

// Internet is a stand-in for the internet: a network namespace with its own routed range,
// reachable from the host and from containers (through the host's routing), so that
// traffic "to the internet" in a test never leaves the machine.
type Internet struct {
	NS   string // namespace name, for ip netns exec
	Host string // the host's address on the link
	Addr string // the namespace's address: the "internet server"
}

// internetRange is from 198.18.0.0/15, reserved for benchmarking (RFC 2544) and never
// routed on the internet; each test gets its own /30 from a random third octet.
const internetPrefix = "198.18."

// NewInternet creates the namespace, a veth to it and the route, checks that the host
// reaches it, and removes everything when the test ends.
func NewInternet(t testing.TB) *Internet {
	t.Helper()
	name := RandomName("vt-inet")
	NetNS(t, name)
	third := int(name[len(name)-1])%200 + 20
	in := &Internet{NS: name, Host: fmt.Sprintf("%s%d.1", internetPrefix, third), Addr: fmt.Sprintf("%s%d.2", internetPrefix, third)}
	hostIf := "vti" + name[len(name)-6:]
	IP(t, "link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", name)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostIf).Run() })
	IP(t, "addr", "add", in.Host+"/30", "dev", hostIf)
	IP(t, "link", "set", hostIf, "up")
	IP(t, "-n", name, "addr", "add", in.Addr+"/30", "dev", "eth0")
	IP(t, "-n", name, "link", "set", "eth0", "up")
	IP(t, "-n", name, "link", "set", "lo", "up")
	IP(t, "-n", name, "route", "add", "default", "via", in.Host)
	// Checked before any test traffic: the route to the stand-in must be the veth.
	if out := IP(t, "route", "get", in.Addr); !strings.Contains(out, "dev "+hostIf) {
		t.Fatalf("route to %s does not go through %s: %s", in.Addr, hostIf, out)
	}
	return in
}

// Start runs a command inside the namespace in the background and kills it when the test
// ends.
func (in *Internet) Start(t testing.TB, args ...string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", in.NS}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v in %s: %v", args, in.NS, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}
