package agent

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/dpi"
	"github.com/vigil-sec/vigil/internal/flow"
	"github.com/vigil-sec/vigil/internal/workload"
)

func TestNamesLearnAndExpire(t *testing.T) {
	n := NewNames(3)
	now := time.Unix(1000, 0)
	ip := netip.MustParseAddr("203.0.113.7")
	n.Learn(&dpi.DNSMessage{Response: true, Query: "API.Example.com.", Answers: []dpi.DNSAnswer{
		{Name: "api.example.com", Type: "CNAME", Target: "edge.cdn.example.net"},
		{Name: "edge.cdn.example.net", Type: "A", TTL: 0, Addr: ip},
	}}, now)
	if name, ok := n.Lookup(ip, now.Add(30*time.Second)); !ok || name != "api.example.com" {
		t.Fatalf("Lookup = %q, %v; want the asked name, kept at least a minute though the TTL was 0", name, ok)
	}
	if _, ok := n.Lookup(ip, now.Add(2*time.Minute)); ok {
		t.Error("name outlived its (raised) TTL")
	}
	// Queries and failed answers teach nothing.
	n.Learn(&dpi.DNSMessage{Response: false, Query: "x.test", Answers: []dpi.DNSAnswer{{Addr: netip.MustParseAddr("192.0.2.1"), TTL: 60}}}, now)
	if n.Len() != 1 {
		t.Errorf("a query was learned from: %d names", n.Len())
	}
	// The cache is bounded.
	for i := range 10 {
		n.Learn(&dpi.DNSMessage{Response: true, Query: "h.test", Answers: []dpi.DNSAnswer{{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), TTL: 600}}}, now)
	}
	if n.Len() > 3 {
		t.Errorf("cache holds %d names, bound 3", n.Len())
	}
}

func TestIndexEndpoints(t *testing.T) {
	owner := workload.Workload{ID: "aaa", Name: "web", Kind: workload.KindContainer, Group: "vigil.web",
		IPs:      []netip.Addr{netip.MustParseAddr("172.18.0.2")},
		Networks: []workload.Network{{Name: "n", IPv4: netip.MustParseAddr("172.18.0.2"), IPv4Prefix: 16}},
		Interfaces: []workload.Interface{{Name: "veth1", IPs: []netip.Addr{netip.MustParseAddr("172.18.0.2")},
			Subnets: []netip.Prefix{netip.MustParsePrefix("172.18.0.0/16")}}},
		NetNS: workload.NetNS{Inode: 7}}
	sidecar := workload.Workload{ID: "bbb", Name: "proxy", Kind: workload.KindContainer, Group: "vigil.proxy",
		SharesNetNSWith: "aaa", IPs: []netip.Addr{netip.MustParseAddr("172.18.0.2")}, NetNS: workload.NetNS{Inode: 7}}
	host := workload.Workload{ID: workload.HostID, Name: "node1", Kind: workload.KindHost, Group: workload.HostGroup,
		IPs:        []netip.Addr{netip.MustParseAddr("192.168.1.10")},
		Interfaces: []workload.Interface{{Name: "eth0", Subnets: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}}}}
	// The sidecar comes first: the owner must still stand for the shared address.
	idx := buildIndex([]workload.Workload{sidecar, owner, host})
	names := NewNames(10)
	now := time.Unix(5000, 0)
	names.Learn(&dpi.DNSMessage{Response: true, Query: "api.example.com", Answers: []dpi.DNSAnswer{{Addr: netip.MustParseAddr("203.0.113.9"), TTL: 300}}}, now)
	clock := func() time.Time { return now }

	tests := []struct {
		addr  string
		kind  flow.EndpointKind
		name  string
		group string
	}{
		{"172.18.0.2:80", flow.KindWorkload, "web", "vigil.web"},
		{"192.168.1.10:22", flow.KindHost, "node1", workload.HostGroup},
		{"172.18.0.99:80", flow.KindInternal, "", ""},
		{"192.168.1.77:80", flow.KindInternal, "", ""},
		{"203.0.113.9:443", flow.KindExternal, "api.example.com", ExternalGroup},
		{"198.51.100.1:443", flow.KindExternal, "", ExternalGroup},
		{"[fe80::1]:546", flow.KindInternal, "", ""},
	}
	for _, tt := range tests {
		e, _ := idx.endpoint(netip.MustParseAddrPort(tt.addr), names, clock)
		if e.Kind != tt.kind || e.Name != tt.name || e.Group != tt.group {
			t.Errorf("%s: kind %q name %q group %q; want %q %q %q", tt.addr, e.Kind, e.Name, e.Group, tt.kind, tt.name, tt.group)
		}
	}
	if _, ok := idx.captured[netip.MustParseAddr("172.18.0.2")]; !ok {
		t.Error("the owner's veth address is not marked captured")
	}
	if _, ok := idx.captured[netip.MustParseAddr("192.168.1.10")]; ok {
		t.Error("the host's address is marked captured: host traffic would be dropped as a duplicate")
	}
}
