package testenv

import (
	"context"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// RunWith creates and starts a container as Run does (test image, labels, a command that
// sleeps, an init so that removal is immediate), but lets mutate change the full
// configuration before the container is created: capabilities, read-only root, security
// options, memory and PIDs limits, mounts, PID/IPC/UTS modes, restart policy, ports.
// The container is removed when the test ends, pass or fail.
func (d *Docker) RunWith(t testing.TB, spec ContainerSpec, mutate func(*container.Config, *container.HostConfig)) Container {
	t.Helper()
	ctx := context.Background()
	if spec.Name == "" {
		spec.Name = RandomName("vigil-test")
	}
	if spec.Image == "" {
		spec.Image = d.EnsureImage(t)
	}
	if len(spec.Cmd) == 0 {
		spec.Cmd = []string{"sleep", "3600"}
	}
	labels := testLabels()
	for k, v := range spec.Labels {
		labels[k] = v
	}
	mode := container.NetworkMode(spec.NetworkMode)
	if mode == "" {
		mode = "bridge"
	}
	cfg := &container.Config{Image: spec.Image, Cmd: spec.Cmd, Labels: labels, User: spec.User}
	hc := &container.HostConfig{
		NetworkMode: mode,
		Privileged:  spec.Privileged,
		ExtraHosts:  spec.ExtraHosts,
		Init:        boolPtr(true),
	}
	if mutate != nil {
		mutate(cfg, hc)
	}
	res, err := d.Client.ContainerCreate(ctx, client.ContainerCreateOptions{Name: spec.Name, Config: cfg, HostConfig: hc})
	if err != nil {
		t.Fatalf("create container %s: %v", spec.Name, err)
	}
	t.Cleanup(func() { d.Remove(t, res.ID) })
	for _, n := range spec.Networks {
		if _, err := d.Client.NetworkConnect(ctx, n, client.NetworkConnectOptions{Container: res.ID}); err != nil {
			t.Fatalf("connect %s to network %s: %v", spec.Name, n, err)
		}
	}
	d.Start(t, res.ID)
	return Container{ID: res.ID, Name: spec.Name}
}
