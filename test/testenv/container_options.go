package testenv

import (
	"testing"

	"github.com/moby/moby/api/types/container"
)

// RunWith creates and starts a container as Run does, but lets mutate change the full
// configuration before the container is created: capabilities, read-only root, security
// options, memory and PIDs limits, mounts, PID/IPC/UTS modes, restart policy, ports.
// The container is removed when the test ends, pass or fail.
func (d *Docker) RunWith(t testing.TB, spec ContainerSpec, mutate func(*container.Config, *container.HostConfig)) Container {
	t.Helper()
	c := d.create(t, spec, mutate)
	d.Start(t, c.ID)
	return c
}
