package export

import (
	"errors"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/policy"
	"github.com/vigil-sec/vigil/internal/procmon"
)

func TestProcessProfilesRoundTrip(t *testing.T) {
	pol, err := MarshalYAML(policy.Policy{DefaultMode: policy.ModeDiscover})
	if err != nil {
		t.Fatal(err)
	}
	in := []ProcessProfile{{Group: "vigil.web", Entries: []procmon.ProfileEntry{{Exe: "/usr/sbin/nginx", Name: "nginx", UID: 101}}}}
	doc, err := MarshalProcessProfiles(in)
	if err != nil {
		t.Fatal(err)
	}
	file := append(append(pol, "---\n"...), doc...)
	if _, err := UnmarshalYAML(file); err != nil {
		t.Fatalf("the policy file with its profiles is refused: %v\n%s", err, file)
	}
	out, err := UnmarshalProcessProfiles(file)
	if err != nil || len(out) != 1 || out[0].Group != "vigil.web" || out[0].Entries[0].UID != 101 || out[0].Entries[0].Exe != "/usr/sbin/nginx" {
		t.Fatalf("read back %+v, %v", out, err)
	}
	if empty, err := MarshalProcessProfiles(nil); err != nil || empty != nil {
		t.Errorf("no profiles: %q %v", empty, err)
	}
	for _, bad := range []string{
		"apiVersion: vigil.dev/v1alpha1\nkind: ProcessProfiles\nspec:\n  groups:\n    - name: g\n      processes:\n        - {exe: relative, name: x, uid: 0}\n",
		"apiVersion: vigil.dev/v1alpha1\nkind: ProcessProfiles\nspec:\n  groups:\n    - name: g\n      processes:\n        - {exe: /x, name: x, uid: -1, extra: 1}\n",
		"apiVersion: vigil.dev/v1alpha1\nkind: ProcessProfiles\nspec:\n  groups: []\n---\nkind: x\n",
	} {
		_, err := UnmarshalYAML(append(append(pol, "---\n"...), bad...))
		if err == nil || !errors.Is(err, policy.ErrInvalid) {
			t.Errorf("bad profiles accepted: %v\n%s", err, bad)
		}
	}
	if _, err := UnmarshalYAML(append(append(pol, "---\n"...), "kind: Other\n"...)); err == nil || !strings.Contains(err.Error(), "second one") {
		t.Errorf("another second document: %v", err)
	}
}
