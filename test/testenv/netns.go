package testenv

import (
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
