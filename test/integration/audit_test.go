//go:build integration

package integration

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/vigil-sec/vigil/internal/audit"
	"github.com/vigil-sec/vigil/test/testenv"
)

// TestAuditNamesOffendingContainers loads the real daemon's containers and checks that
// the runtime checks name the badly configured containers, and only them.
func TestAuditNamesOffendingContainers(t *testing.T) {
	d := testenv.NewDocker(t)
	d.EnsureImage(t)

	badly := func(c *container.Config, h *container.HostConfig) {
		h.PidMode = "host"
		h.CapAdd = []string{"SYS_ADMIN"}
		h.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
	}
	// Privileged and root are split over two containers: runc cannot start a privileged
	// container as root where dockerd's capability bounding set lacks one the kernel has
	// (as in some sandboxes), while a privileged non-root one starts everywhere.
	bad := d.RunWith(t, testenv.ContainerSpec{Name: testenv.RandomName("vigil-audit-bad"), NetworkMode: "host", Privileged: true, User: "65534"}, badly)
	badRoot := d.RunWith(t, testenv.ContainerSpec{Name: testenv.RandomName("vigil-audit-root"), NetworkMode: "host", User: "root"}, badly)
	hardened := d.RunWith(t, testenv.ContainerSpec{Name: testenv.RandomName("vigil-audit-hardened"), User: "1000"}, func(c *container.Config, h *container.HostConfig) {
		h.ReadonlyRootfs = true
		h.CapDrop = []string{"ALL"}
		h.SecurityOpt = []string{"no-new-privileges"}
		h.Memory = 64 << 20
		pids := int64(64)
		h.PidsLimit = &pids
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := audit.LoadEnv(ctx, d.Client, "/", "/proc")
	if err != nil {
		t.Fatalf("LoadEnv: %v", err)
	}
	for _, part := range []string{"docker", "containers", "images"} {
		if err := env.LoadErrors[part]; err != nil {
			t.Errorf("loading %s: %v", part, err)
		}
	}
	loaded := map[string]bool{}
	for _, c := range env.Containers {
		loaded[c.ID] = true
	}
	for _, c := range []testenv.Container{bad, badRoot, hardened} {
		if !loaded[c.ID] {
			t.Fatalf("container %s is not in the loaded Env", c.Name)
		}
	}

	rep := audit.Run(ctx, env, audit.Filter{})
	results := map[string]audit.Result{}
	for _, r := range rep.Results {
		results[r.ID] = r
	}
	named := func(r audit.Result, c testenv.Container) bool {
		for _, tg := range r.Targets {
			if tg.Kind == "container" && tg.ID == c.ID && tg.Name == c.Name {
				return true
			}
		}
		return false
	}
	for _, tt := range []struct {
		id, what     string
		bad, badRoot bool // whether each is expected among the WARN's targets
	}{
		{"5.5", "privileged", true, false},
		{"5.10", "host network", true, true},
		{"5.16", "host PID namespace", true, true},
		{"5.32", "Docker socket mounted", true, true},
		{"5.4", "capabilities added", true, true},
		{"5.11", "no memory limit", true, true},
		{"4.1", "running as root", false, true},
		{"5.26", "no-new-privileges not set", true, true},
		{"5.13", "writable root filesystem", true, true},
		{"5.29", "no PIDs limit", true, true},
	} {
		r, ok := results[tt.id]
		if !ok {
			t.Errorf("%s (%s): no result", tt.id, tt.what)
			continue
		}
		if r.Status != audit.Warn {
			t.Errorf("%s (%s): %s %q, want WARN", tt.id, tt.what, r.Status, r.Reason)
			continue
		}
		if got := named(r, bad); got != tt.bad {
			t.Errorf("%s (%s): privileged container named=%v, want %v; targets %v", tt.id, tt.what, got, tt.bad, r.Targets)
		}
		if got := named(r, badRoot); got != tt.badRoot {
			t.Errorf("%s (%s): root container named=%v, want %v; targets %v", tt.id, tt.what, got, tt.badRoot, r.Targets)
		}
		if named(r, hardened) {
			t.Errorf("%s (%s): the hardened container is named: %v", tt.id, tt.what, r.Evidence)
		}
	}
}
