package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/vigil-sec/vigil/internal/workload"
)

// DefaultHost is where the Docker daemon listens unless DOCKER_HOST says otherwise.
const DefaultHost = client.DefaultDockerHost

// Runtime is the Docker adapter. It is safe for concurrent use.
type Runtime struct {
	cli  *client.Client
	host string
}

// New connects to the daemon at host (a DOCKER_HOST style URL; empty means DOCKER_HOST
// from the environment, else the default socket). It does not contact the daemon: call
// Ping to find out whether it answers.
func New(host string) (*Runtime, error) {
	opts := []client.Opt{client.FromEnv}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client for %q: %w", host, err)
	}
	return &Runtime{cli: cli, host: cli.DaemonHost()}, nil
}

// Host is the daemon address in use.
func (d *Runtime) Host() string { return d.host }

// Client gives access to the underlying Engine API client, for other read-only users
// such as the audit.
func (d *Runtime) Client() *client.Client { return d.cli }

// Close releases the client's connections.
func (d *Runtime) Close() error { return d.cli.Close() }

// Name implements workload.Runtime.
func (d *Runtime) Name() string { return "docker" }

// Ping checks that the daemon answers and returns its version.
func (d *Runtime) Ping(ctx context.Context) (string, error) {
	v, err := d.cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", err
	}
	return v.Version, nil
}

// Watch implements workload.Runtime.
func (d *Runtime) Watch(ctx context.Context) (<-chan workload.RuntimeEvent, <-chan error, error) {
	f := client.Filters{}
	f.Add("type", string(events.ContainerEventType), string(events.NetworkEventType))
	res := d.cli.Events(ctx, client.EventsListOptions{Filters: f})
	// The client returns once the daemon has answered; a failed request shows up at once
	// on the error channel.
	select {
	case err := <-res.Err:
		if err == nil {
			err = errors.New("event stream closed")
		}
		return nil, nil, err
	default:
	}
	out := make(chan workload.RuntimeEvent, 64)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-res.Err:
				errc <- err
				return
			case m := <-res.Messages:
				ev, ok := translate(m)
				if !ok {
					continue
				}
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, errc, nil
}

// translate maps a Docker event to what it means for the registry.
func translate(m events.Message) (workload.RuntimeEvent, bool) {
	switch m.Type {
	case events.ContainerEventType:
		switch m.Action {
		// A kill may be caught or ignored by the process: inspecting tells.
		case events.ActionStart, events.ActionRestart, events.ActionRename, events.ActionPause,
			events.ActionUnPause, events.ActionUpdate, events.ActionKill:
			return workload.RuntimeEvent{Kind: workload.EventChanged, ID: m.Actor.ID}, true
		case events.ActionDie, events.ActionStop, events.ActionDestroy:
			return workload.RuntimeEvent{Kind: workload.EventRemoved, ID: m.Actor.ID}, true
		}
	case events.NetworkEventType:
		switch m.Action {
		case events.ActionConnect, events.ActionDisconnect:
			if id := m.Actor.Attributes["container"]; id != "" {
				return workload.RuntimeEvent{Kind: workload.EventChanged, ID: id}, true
			}
		case events.ActionCreate, events.ActionDestroy, events.ActionRemove:
			return workload.RuntimeEvent{Kind: workload.EventHostChanged}, true
		}
	}
	return workload.RuntimeEvent{}, false
}

// List implements workload.Runtime.
func (d *Runtime) List(ctx context.Context) ([]workload.Workload, error) {
	res, err := d.cli.ContainerList(ctx, client.ContainerListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]workload.Workload, 0, len(res.Items))
	for _, c := range res.Items {
		w, err := d.Inspect(ctx, c.ID)
		if errors.Is(err, workload.ErrGone) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// Inspect implements workload.Runtime.
func (d *Runtime) Inspect(ctx context.Context, id string) (workload.Workload, error) {
	res, err := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return workload.Workload{}, fmt.Errorf("container %s: %w", id, workload.ErrGone)
	}
	if err != nil {
		return workload.Workload{}, fmt.Errorf("inspect container %s: %w", id, err)
	}
	w, err := fromInspect(res.Container)
	if err != nil {
		return workload.Workload{}, err
	}
	return w, nil
}

// fromInspect turns Docker's description of a container into a workload (without the
// kernel facts, which the registry's resolver adds).
func fromInspect(c container.InspectResponse) (workload.Workload, error) {
	if c.State == nil || !c.State.Running || c.State.Pid <= 0 {
		return workload.Workload{}, fmt.Errorf("container %s: %w", c.ID, workload.ErrGone)
	}
	w := workload.Workload{
		ID:      c.ID,
		Name:    strings.TrimPrefix(c.Name, "/"),
		Kind:    workload.KindContainer,
		Runtime: "docker",
		ImageID: c.Image,
		State:   string(c.State.Status),
		PID:     c.State.Pid,
	}
	if c.Config != nil {
		w.Image = c.Config.Image
		w.Labels = c.Config.Labels
		w.User = c.Config.User
	}
	if w.User == "" {
		w.User = "root" // what the process runs as when the image sets no user
	}
	w.Group = workload.GroupName(w.Labels, w.Image)
	w.Created = parseTime(c.Created)
	w.Started = parseTime(c.State.StartedAt)
	if hc := c.HostConfig; hc != nil {
		w.Privileged = hc.Privileged
		w.NetworkMode = string(hc.NetworkMode)
		switch {
		case hc.NetworkMode.IsHost():
			w.SharesNetNSWith = workload.HostID
		case hc.NetworkMode.IsContainer():
			w.SharesNetNSWith = hc.NetworkMode.ConnectedContainer()
		}
	}
	if ns := c.NetworkSettings; ns != nil {
		for name, ep := range ns.Networks {
			if ep == nil {
				continue
			}
			w.Networks = append(w.Networks, workload.Network{
				Name:        name,
				ID:          ep.NetworkID,
				IPv4:        ep.IPAddress,
				IPv4Prefix:  ep.IPPrefixLen,
				IPv6:        ep.GlobalIPv6Address,
				IPv6Prefix:  ep.GlobalIPv6PrefixLen,
				Gateway:     ep.Gateway,
				IPv6Gateway: ep.IPv6Gateway,
				MAC:         strings.ToLower(ep.MacAddress.String()),
				Aliases:     ep.Aliases,
			})
		}
		sortNetworks(w.Networks)
		for port, bindings := range ns.Ports {
			for _, b := range bindings {
				hp, _ := strconv.ParseUint(b.HostPort, 10, 16)
				w.Ports = append(w.Ports, workload.PublishedPort{
					Protocol:      string(port.Proto()),
					ContainerPort: port.Num(),
					HostIP:        b.HostIP,
					HostPort:      uint16(hp),
				})
			}
		}
		sortPorts(w.Ports)
	}
	return w, nil
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

func sortNetworks(n []workload.Network) {
	slices.SortFunc(n, func(a, b workload.Network) int { return strings.Compare(a.Name, b.Name) })
}

func sortPorts(p []workload.PublishedPort) {
	slices.SortFunc(p, func(a, b workload.PublishedPort) int {
		if a.ContainerPort != b.ContainerPort {
			return int(a.ContainerPort) - int(b.ContainerPort)
		}
		if a.Protocol != b.Protocol {
			return strings.Compare(a.Protocol, b.Protocol)
		}
		if c := a.HostIP.Compare(b.HostIP); c != 0 {
			return c
		}
		return int(a.HostPort) - int(b.HostPort)
	})
}
