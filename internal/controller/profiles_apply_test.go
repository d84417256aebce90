package controller

import (
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/vigil-sec/vigil/internal/policy"
	"github.com/vigil-sec/vigil/internal/procmon"
)

func TestReplaceProfiles(t *testing.T) {
	e, err := NewProcessEngine(nil, NewEvents(10), func(string, string) policy.Mode { return policy.ModeMonitor }, "/proc",
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ReplaceProfiles(map[string][]procmon.ProfileEntry{
		"vigil.web": {{Exe: "/usr/sbin/nginx", Name: "nginx", UID: 101}},
	}); err != nil {
		t.Fatal(err)
	}
	p, ok := e.Profile("vigil.web")
	if !ok || len(p.Entries) != 1 || p.Entries[0].Name != "nginx" || p.Entries[0].FirstSeen.IsZero() {
		t.Fatalf("profile %+v %v", p, ok)
	}
	for name, bad := range map[string]map[string][]procmon.ProfileEntry{
		"relative exe": {"vigil.web": {{Exe: "nginx", Name: "nginx"}}},
		"empty name":   {"vigil.web": {{Exe: "/usr/sbin/nginx"}}},
		"negative uid": {"vigil.web": {{Exe: "/usr/sbin/nginx", Name: "nginx", UID: -1}}},
		"bad group":    {"web/../x": {{Exe: "/usr/sbin/nginx", Name: "nginx"}}},
	} {
		if err := e.ReplaceProfiles(bad); !errors.Is(err, policy.ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", name, err)
		}
	}
	if p, _ := e.Profile("vigil.web"); len(p.Entries) != 1 || p.Entries[0].Name != "nginx" {
		t.Errorf("a refused replacement changed the profile: %+v", p)
	}
}
