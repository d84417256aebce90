package docker

import (
	"encoding/json"
	"errors"
	"net/netip"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/vigil-sec/vigil/internal/workload"
)

func TestTranslate(t *testing.T) {
	ctr := func(a events.Action) events.Message {
		return events.Message{Type: events.ContainerEventType, Action: a, Actor: events.Actor{ID: "c1"}}
	}
	nw := func(a events.Action, attrs map[string]string) events.Message {
		return events.Message{Type: events.NetworkEventType, Action: a, Actor: events.Actor{ID: "n1", Attributes: attrs}}
	}
	tests := []struct {
		name string
		msg  events.Message
		want workload.RuntimeEvent
		ok   bool
	}{
		{"start", ctr(events.ActionStart), workload.RuntimeEvent{Kind: workload.EventChanged, ID: "c1"}, true},
		{"rename", ctr(events.ActionRename), workload.RuntimeEvent{Kind: workload.EventChanged, ID: "c1"}, true},
		{"kill may be survived", ctr(events.ActionKill), workload.RuntimeEvent{Kind: workload.EventChanged, ID: "c1"}, true},
		{"die", ctr(events.ActionDie), workload.RuntimeEvent{Kind: workload.EventRemoved, ID: "c1"}, true},
		{"destroy", ctr(events.ActionDestroy), workload.RuntimeEvent{Kind: workload.EventRemoved, ID: "c1"}, true},
		{"create is not running yet", ctr(events.ActionCreate), workload.RuntimeEvent{}, false},
		{"exec is noise", ctr("exec_start: sh"), workload.RuntimeEvent{}, false},
		{"network connect", nw(events.ActionConnect, map[string]string{"container": "c2"}), workload.RuntimeEvent{Kind: workload.EventChanged, ID: "c2"}, true},
		{"network disconnect", nw(events.ActionDisconnect, map[string]string{"container": "c2"}), workload.RuntimeEvent{Kind: workload.EventChanged, ID: "c2"}, true},
		{"connect without container", nw(events.ActionConnect, nil), workload.RuntimeEvent{}, false},
		{"network create", nw(events.ActionCreate, nil), workload.RuntimeEvent{Kind: workload.EventHostChanged}, true},
		{"network destroy", nw(events.ActionDestroy, nil), workload.RuntimeEvent{Kind: workload.EventHostChanged}, true},
		{"image event", events.Message{Type: events.ImageEventType, Action: events.ActionPull}, workload.RuntimeEvent{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := translate(tt.msg)
			if ok != tt.ok || got != tt.want {
				t.Errorf("translate = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// inspectJSON is what Docker 20.10 (API 1.41) answers for a compose container on a
// user-defined network with a published port, trimmed to the fields that matter.
const inspectJSON = `{
  "Id": "3846513a0b50d1f0e8e5c6d6d7c2a3b1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5",
  "Created": "2026-11-29T19:49:58.123456789Z",
  "State": {"Status": "running", "Running": true, "Pid": 4242, "StartedAt": "2026-11-29T19:49:59.5Z"},
  "Image": "sha256:9b2a1e0f",
  "Name": "/shop-web-1",
  "HostConfig": {"NetworkMode": "shop_default", "Privileged": false},
  "Config": {"Image": "nginx:1.25", "User": "", "Labels": {"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}},
  "NetworkSettings": {
    "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}], "443/tcp": null},
    "Networks": {
      "shop_default": {"NetworkID": "net1", "EndpointID": "ep1", "Gateway": "172.20.0.1", "IPAddress": "172.20.0.3",
        "IPPrefixLen": 16, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "MacAddress": "02:42:AC:14:00:03", "Aliases": ["web", "3846513a0b50"]}
    }
  }
}`

func TestFromInspect(t *testing.T) {
	var c container.InspectResponse
	if err := json.Unmarshal([]byte(inspectJSON), &c); err != nil {
		t.Fatal(err)
	}
	w, err := fromInspect(c)
	if err != nil {
		t.Fatal(err)
	}
	if w.Name != "shop-web-1" || w.Group != "vigil.shop-web" || w.PID != 4242 || w.User != "root" ||
		w.Image != "nginx:1.25" || w.ImageID != "sha256:9b2a1e0f" || w.NetworkMode != "shop_default" || w.State != "running" {
		t.Errorf("workload = %+v", w)
	}
	if len(w.Networks) != 1 {
		t.Fatalf("networks = %+v", w.Networks)
	}
	n := w.Networks[0]
	if n.Name != "shop_default" || n.IPv4 != netip.MustParseAddr("172.20.0.3") || n.IPv4Prefix != 16 ||
		n.MAC != "02:42:ac:14:00:03" || n.IPv6.IsValid() || n.Gateway != netip.MustParseAddr("172.20.0.1") {
		t.Errorf("network = %+v", n)
	}
	if len(w.Ports) != 2 || w.Ports[0].ContainerPort != 80 || w.Ports[0].HostPort != 8080 || w.Ports[0].Protocol != "tcp" {
		t.Errorf("ports = %+v", w.Ports)
	}
	if w.Started.IsZero() || w.Created.IsZero() {
		t.Errorf("times not parsed: created %v started %v", w.Created, w.Started)
	}
	if w.SharesNetNSWith != "" {
		t.Errorf("shares = %q", w.SharesNetNSWith)
	}
}

func TestFromInspectNetworkModes(t *testing.T) {
	tests := []struct {
		mode   container.NetworkMode
		shares string
	}{
		{"host", workload.HostID},
		{"container:3846513a0b50d1f0", "3846513a0b50d1f0"},
		{"none", ""},
		{"bridge", ""},
	}
	for _, tt := range tests {
		c := container.InspectResponse{
			ID:         "x",
			State:      &container.State{Running: true, Pid: 7},
			HostConfig: &container.HostConfig{NetworkMode: tt.mode},
		}
		w, err := fromInspect(c)
		if err != nil {
			t.Fatal(err)
		}
		if w.SharesNetNSWith != tt.shares || w.NetworkMode != string(tt.mode) {
			t.Errorf("mode %s: shares %q, want %q", tt.mode, w.SharesNetNSWith, tt.shares)
		}
	}
}

func TestFromInspectNotRunning(t *testing.T) {
	for _, st := range []*container.State{nil, {Running: false, Pid: 0}, {Running: true, Pid: 0}} {
		_, err := fromInspect(container.InspectResponse{ID: "x", State: st})
		if !errors.Is(err, workload.ErrGone) {
			t.Errorf("state %+v: err = %v, want ErrGone", st, err)
		}
	}
}
