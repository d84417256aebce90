package workload

import (
	"strings"
	"testing"
)

func TestGroupName(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		image  string
		want   string
	}{
		{"label wins over compose and image", map[string]string{LabelGroup: "payments", LabelComposeService: "web"}, "nginx", "vigil.payments"},
		{"label already prefixed", map[string]string{LabelGroup: "vigil.payments"}, "nginx", "vigil.payments"},
		{"label is normalised", map[string]string{LabelGroup: "Payments API_v2"}, "nginx", "vigil.payments-api-v2"},
		{"compose project and service", map[string]string{LabelComposeProject: "shop", LabelComposeService: "web"}, "nginx:1.25", "vigil.shop-web"},
		{"compose service alone", map[string]string{LabelComposeService: "db"}, "postgres", "vigil.db"},
		{"official image drops library and tag", nil, "nginx:1.25", "vigil.nginx"},
		{"fully qualified official image", nil, "docker.io/library/redis:7-alpine", "vigil.redis"},
		{"registry host and port dropped", nil, "registry.example.com:5000/team/api:v3", "vigil.team-api"},
		{"digest dropped", nil, "ghcr.io/acme/worker@sha256:" + strings.Repeat("ab", 32), "vigil.acme-worker"},
		{"local test image", nil, "vigil-test/busybox:latest", "vigil.vigil-test-busybox"},
		{"image id", nil, "sha256:" + strings.Repeat("0123456789", 7)[:64], "vigil.image-012345678901"},
		{"bare image id", nil, strings.Repeat("fe", 32), "vigil.image-fefefefefefe"},
		{"empty image", nil, "", "vigil.unknown"},
		{"empty label falls through", map[string]string{LabelGroup: "  "}, "busybox", "vigil.busybox"},
		{"only symbols", map[string]string{LabelGroup: "___"}, "x", "vigil.unnamed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := GroupName(tt.labels, tt.image); got != tt.want {
				t.Errorf("GroupName(%v, %q) = %q, want %q", tt.labels, tt.image, got, tt.want)
			}
		})
	}
}

func TestGroupNameReplicasShareGroup(t *testing.T) {
	// Compose names replicas shop-web-1, shop-web-2; they carry the same labels.
	a := GroupName(map[string]string{LabelComposeProject: "shop", LabelComposeService: "web", "com.docker.compose.container-number": "1"}, "shop-web")
	b := GroupName(map[string]string{LabelComposeProject: "shop", LabelComposeService: "web", "com.docker.compose.container-number": "2"}, "shop-web")
	if a != b {
		t.Fatalf("replicas got different groups %q and %q", a, b)
	}
}

func TestDNSLabelBounds(t *testing.T) {
	long := strings.Repeat("service", 20)
	a := dnsLabel(long + "-a")
	b := dnsLabel(long + "-b")
	for _, l := range []string{a, b} {
		if len(l) > maxLabel {
			t.Errorf("label %q is %d characters, more than %d", l, len(l), maxLabel)
		}
		if strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			t.Errorf("label %q starts or ends with a hyphen", l)
		}
	}
	if a == b {
		t.Errorf("long names differing at the end collapsed to the same label %q", a)
	}
}

func FuzzGroupName(f *testing.F) {
	f.Add("payments", "shop", "web", "nginx:1.25")
	f.Add("", "", "", "registry.example.com:5000/a/b@sha256:"+strings.Repeat("0", 64))
	f.Add("ÜBER—Service", "", "", "")
	f.Fuzz(func(t *testing.T, group, project, service, image string) {
		g := GroupName(map[string]string{LabelGroup: group, LabelComposeProject: project, LabelComposeService: service}, image)
		label, ok := strings.CutPrefix(g, GroupPrefix)
		if !ok {
			t.Fatalf("group %q lacks prefix", g)
		}
		if label == "" || len(label) > maxLabel {
			t.Fatalf("label %q has bad length %d", label, len(label))
		}
		for i, r := range label {
			valid := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || (r == '-' && i > 0 && i < len(label)-1)
			if !valid {
				t.Fatalf("label %q has invalid character %q at %d", label, r, i)
			}
		}
	})
}
