package enforce

import (
	"net/netip"
	"testing"

	"github.com/ti-mo/conntrack"
)

func TestPermits(t *testing.T) {
	p := Plan{
		Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::2")},
		Ingress: []Allow{
			{Set: "in_6_5432_5432", Proto: 6, PortFirst: 5432, PortLast: 5432, Peers: pfx("10.0.0.3/32", "10.0.1.0/24", "fd00::3/128")},
			{Set: "in_any", Proto: 0, Peers: pfx("10.0.0.9/32")},
		},
		Egress: []Allow{
			{Set: "out_17_53_53", Proto: 17, PortFirst: 53, PortLast: 53, Peers: pfx("0.0.0.0/0")},
			{Set: "out_6_any", Proto: 6, Peers: pfx("::ffff:10.0.0.7/128")},
		},
	}
	a := netip.MustParseAddr
	cases := []struct {
		name    string
		ingress bool
		peer    string
		proto   uint8
		port    uint16
		want    bool
	}{
		{"allowed peer and port", true, "10.0.0.3", 6, 5432, true},
		{"allowed subnet", true, "10.0.1.77", 6, 5432, true},
		{"v6 peer", true, "fd00::3", 6, 5432, true},
		{"v4-mapped peer", true, "::ffff:10.0.0.3", 6, 5432, true},
		{"other port", true, "10.0.0.3", 6, 5433, false},
		{"other proto", true, "10.0.0.3", 17, 5432, false},
		{"other peer", true, "10.0.0.4", 6, 5432, false},
		{"any-protocol allow", true, "10.0.0.9", 1, 0, true},
		{"ingress allow is not egress", false, "10.0.0.3", 6, 5432, false},
		{"egress dns anywhere", false, "192.0.2.1", 17, 53, true},
		{"egress tcp any port to mapped prefix", false, "10.0.0.7", 6, 443, true},
		{"egress other", false, "10.0.0.8", 6, 443, false},
		{"loopback always", true, "127.0.0.1", 6, 1, true},
	}
	for _, c := range cases {
		if got := p.Permits(c.ingress, a(c.peer), c.proto, c.port); got != c.want {
			t.Errorf("%s: Permits(%v, %s, %d, %d) = %v, want %v", c.name, c.ingress, c.peer, c.proto, c.port, got, c.want)
		}
	}

	tuple := func(src, dst string, proto uint8, dport uint16) conntrack.Tuple {
		var o conntrack.Tuple
		o.IP.SourceAddress, o.IP.DestinationAddress = a(src), a(dst)
		o.Proto.Protocol, o.Proto.SourcePort, o.Proto.DestinationPort = proto, 40000, dport
		return o
	}
	dis := []struct {
		name string
		o    conntrack.Tuple
		want bool
	}{
		{"allowed client", tuple("10.0.0.3", "10.0.0.2", 6, 5432), false},
		{"withdrawn client", tuple("10.0.0.4", "10.0.0.2", 6, 5432), true},
		{"workload's allowed egress", tuple("10.0.0.2", "192.0.2.1", 17, 53), false},
		{"workload's disallowed egress", tuple("10.0.0.2", "192.0.2.1", 6, 443), true},
		{"loopback", tuple("127.0.0.1", "127.0.0.1", 6, 80), false},
		{"not the workload's", tuple("10.9.9.9", "10.9.9.8", 6, 80), false},
	}
	for _, c := range dis {
		if got := disallowed(p, c.o); got != c.want {
			t.Errorf("%s: disallowed = %v, want %v", c.name, got, c.want)
		}
	}
}
