package policy

import (
	"testing"
)

// FuzzParse feeds the text parsers (ports, endpoints, criteria) and checks that whatever
// they accept is valid and survives a round trip through its canonical form, and that
// the evaluator takes any endpoint name without trouble.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"tcp/5432", "udp/53", "tcp/8000-8100", "tcp/any", "tcp", "icmp", "icmpv6", "any", "sctp/1-65535",
		"tcp/80, udp/53", "tcp/0", "tcp/65536", "tcp/9-8", "icmp/8",
		"vigil.web", "external", "external:api.example.com", "External:API.Example.COM.", "host",
		"address:10.0.0.7", "address:::ffff:10.0.0.7", "address:fe80::1%eth0", "pod:x",
		"label:tier=web", "image:ghcr.io/acme/*", "name:web-?", "service:db", "address:10.0.0.0/8",
		"dns:*.example.com", "",
	} {
		f.Add(s)
	}
	e, err := (&Policy{Rules: []Rule{
		{ID: "a", From: "vigil.web", To: "external", Ports: []PortRange{AnyPort(ProtoAny)}, Action: ActionAllow, Origin: OriginUser},
	}}).Compile()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if r, err := ParsePortRange(s); err == nil {
			if err := r.Validate(); err != nil {
				t.Fatalf("ParsePortRange(%q) = %+v, which does not validate: %v", s, r, err)
			}
			again, err := ParsePortRange(r.String())
			if err != nil || again != r {
				t.Fatalf("%q -> %q -> %+v, %v", s, r, again, err)
			}
			if !r.Contains(r.Proto, r.First) || !r.Contains(r.Proto, r.Last) {
				t.Fatalf("%s does not contain its own ends", r)
			}
		}
		if ps, err := ParsePorts(s); err == nil {
			again, err := ParsePorts(FormatPorts(ps))
			if err != nil || FormatPorts(again) != FormatPorts(ps) {
				t.Fatalf("%q -> %q -> %v, %v", s, FormatPorts(ps), again, err)
			}
		}
		if ep, err := ParseEndpoint(s); err == nil {
			c := ep.String()
			again, err := ParseEndpoint(c)
			if err != nil || again != ep || again.String() != c {
				t.Fatalf("%q -> %q -> %+v, %v", s, c, again, err)
			}
			if _, err := ep.MarshalText(); err != nil {
				t.Fatalf("%q does not marshal: %v", c, err)
			}
		}
		if cr, err := ParseCriterion(s); err == nil {
			again, err := ParseCriterion(cr.String())
			if err != nil || again != cr {
				t.Fatalf("%q -> %q -> %+v, %v", s, cr, again, err)
			}
			if _, err := cr.MarshalText(); err != nil {
				t.Fatalf("%q does not marshal: %v", cr, err)
			}
			cr.Match(Subject{Name: s, Image: s, Service: s, DNSName: s, Labels: map[string]string{cr.Key: s}})
		}
		if _, err := ParseEndpoint(ExternalEndpoint(s)); err != nil {
			t.Fatalf("ExternalEndpoint(%q) = %q, which does not parse: %v", s, ExternalEndpoint(s), err)
		}
		if !glob(s, s, false) {
			t.Fatalf("glob(%q) does not match itself", s)
		}
		e.Evaluate(Conn{From: s, To: s, FromGroups: []string{s}, Proto: ProtoTCP, Port: 1, App: s})
	})
}
