package enforce

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

func pfx(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

type elem struct {
	key string
	end bool
}

func elems(t *testing.T, es []nftables.SetElement) []elem {
	t.Helper()
	out := make([]elem, len(es))
	for i, e := range es {
		a, ok := netip.AddrFromSlice(e.Key)
		if !ok {
			t.Fatalf("element %d: key %x is no address", i, e.Key)
		}
		out[i] = elem{a.String(), e.IntervalEnd}
	}
	return out
}

func TestIntervalElements(t *testing.T) {
	tests := []struct {
		name  string
		f     family
		peers []netip.Prefix
		want  []elem
	}{
		{"empty", ipv4, nil, []elem{}},
		{"host", ipv4, pfx("198.18.0.1/32"), []elem{{"198.18.0.1", false}, {"198.18.0.2", true}}},
		{"unmasked prefix", ipv4, pfx("10.1.2.3/24"), []elem{{"10.1.2.0", false}, {"10.1.3.0", true}}},
		{"sorted, overlap merged", ipv4, pfx("10.0.1.0/24", "10.0.0.0/16", "8.0.0.0/8"),
			[]elem{{"8.0.0.0", false}, {"9.0.0.0", true}, {"10.0.0.0", false}, {"10.1.0.0", true}}},
		{"adjacent merged", ipv4, pfx("10.0.0.0/25", "10.0.0.128/25"), []elem{{"10.0.0.0", false}, {"10.0.1.0", true}}},
		{"top of space has no end", ipv4, pfx("255.255.255.0/24"), []elem{{"255.255.255.0", false}}},
		{"everything", ipv4, pfx("0.0.0.0/0"), []elem{{"0.0.0.0", false}}},
		{"other family left out", ipv4, pfx("fd00::/64", "10.0.0.1/32"), []elem{{"10.0.0.1", false}, {"10.0.0.2", true}}},
		{"mapped v4 unmapped", ipv4, pfx("::ffff:10.0.0.0/120"), []elem{{"10.0.0.0", false}, {"10.0.1.0", true}}},
		{"v6", ipv6, pfx("fd00::/64", "10.0.0.1/32"), []elem{{"fd00::", false}, {"fd00:0:0:1::", true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := elems(t, intervalElements(tt.f, tt.peers))
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIntervalElementsMergesTouchingAfterSort(t *testing.T) {
	// 9/8 ends right where 10/8 starts: one interval.
	got := elems(t, intervalElements(ipv4, pfx("10.0.0.0/8", "9.0.0.0/8")))
	want := []elem{{"9.0.0.0", false}, {"11.0.0.0", true}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestAllowExprs(t *testing.T) {
	set := &nftables.Set{Name: "g_web_v4", ID: 7}
	tests := []struct {
		name    string
		f       family
		ingress bool
		a       Allow
		offset  uint32
		ports   []expr.Any
		proto   bool
	}{
		{"v4 ingress tcp port", ipv4, true, Allow{Set: "g", Proto: 6, PortFirst: 80, PortLast: 80}, 12,
			[]expr.Any{&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{0, 80}}}, true},
		{"v4 egress udp range", ipv4, false, Allow{Set: "g", Proto: 17, PortFirst: 1000, PortLast: 2000}, 16,
			[]expr.Any{
				&expr.Cmp{Op: expr.CmpOpGte, Register: reg, Data: []byte{0x03, 0xe8}},
				&expr.Cmp{Op: expr.CmpOpLte, Register: reg, Data: []byte{0x07, 0xd0}},
			}, true},
		{"v6 ingress any", ipv6, true, Allow{Set: "g"}, 8, nil, false},
		{"v6 egress any", ipv6, false, Allow{Set: "g"}, 24, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := allowExprs(tt.f, tt.ingress, set, tt.a)
			if c := e[1].(*expr.Cmp); c.Data[0] != tt.f.nfproto {
				t.Errorf("nfproto %d, want %d", c.Data[0], tt.f.nfproto)
			}
			p := e[2].(*expr.Payload)
			if p.Base != expr.PayloadBaseNetworkHeader || p.Offset != tt.offset || p.Len != tt.f.addrLen {
				t.Errorf("address payload %+v, want offset %d len %d", p, tt.offset, tt.f.addrLen)
			}
			if l := e[3].(*expr.Lookup); l.SetName != set.Name || l.SetID != set.ID || l.SourceRegister != reg {
				t.Errorf("lookup %+v", l)
			}
			rest := e[4:]
			if tt.proto {
				if c := rest[1].(*expr.Cmp); c.Data[0] != tt.a.Proto {
					t.Errorf("l4proto %d, want %d", c.Data[0], tt.a.Proto)
				}
				rest = rest[2:]
			}
			if tt.ports != nil {
				p := rest[0].(*expr.Payload)
				if p.Base != expr.PayloadBaseTransportHeader || p.Offset != 2 || p.Len != 2 {
					t.Errorf("port payload %+v", p)
				}
				for i, w := range tt.ports {
					g := rest[1+i].(*expr.Cmp)
					if g.Op != w.(*expr.Cmp).Op || !slices.Equal(g.Data, w.(*expr.Cmp).Data) {
						t.Errorf("port cmp %d: %+v, want %+v", i, g, w)
					}
				}
				rest = rest[1+len(tt.ports):]
			}
			if len(rest) != 1 {
				t.Fatalf("%d expressions after the match, want the verdict only", len(rest))
			}
			if v := rest[0].(*expr.Verdict); v.Kind != expr.VerdictAccept {
				t.Errorf("verdict %v", v.Kind)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	bad := []Plan{
		{Workload: "w"},
		{Workload: "w", NetNS: "/x", Ingress: []Allow{{Set: ""}}},
		{Workload: "w", NetNS: "/x", Ingress: []Allow{{Set: "g", Proto: 6, PortFirst: 90, PortLast: 80}}},
		{Workload: "w", NetNS: "/x", Egress: []Allow{{Set: "g", PortFirst: 80, PortLast: 80}}},
		{Workload: "w", NetNS: "/x", Egress: []Allow{{Set: "g", Proto: 1, PortFirst: 80, PortLast: 80}}},
		{Workload: "w", NetNS: "/x", Egress: []Allow{{Set: "g", Peers: []netip.Prefix{{}}}}},
	}
	for i, p := range bad {
		if err := p.validate(); !errors.Is(err, ErrInvalidPlan) {
			t.Errorf("plan %d: err %v, want ErrInvalidPlan", i, err)
		}
	}
	ok := Plan{Workload: "w", NetNS: "/x", Ingress: []Allow{{Set: "g", Proto: 6, PortFirst: 80, PortLast: 90}, {Set: "h", Proto: 1}}}
	if err := ok.validate(); err != nil {
		t.Errorf("valid plan: %v", err)
	}
}

func TestPeerSetsUnion(t *testing.T) {
	p := Plan{
		Ingress: []Allow{{Set: "a", Peers: pfx("10.0.0.1/32")}, {Set: "b"}},
		Egress:  []Allow{{Set: "a", Peers: pfx("10.0.0.2/32")}},
	}
	names, members := p.peerSets()
	if !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("names %v", names)
	}
	if len(members["a"]) != 2 || len(members["b"]) != 0 {
		t.Errorf("members %v", members)
	}
}
