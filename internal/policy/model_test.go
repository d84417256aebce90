package policy

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in   string
		want PortRange
		out  string
	}{
		{"tcp/5432", Port(ProtoTCP, 5432), "tcp/5432"},
		{"udp/53", Port(ProtoUDP, 53), "udp/53"},
		{"tcp/8000-8100", PortSpan(ProtoTCP, 8000, 8100), "tcp/8000-8100"},
		{"tcp/8080-8080", Port(ProtoTCP, 8080), "tcp/8080"},
		{"tcp/1-65535", PortSpan(ProtoTCP, 1, 65535), "tcp/1-65535"},
		{"tcp/any", AnyPort(ProtoTCP), "tcp/any"},
		{"tcp", AnyPort(ProtoTCP), "tcp/any"},
		{" TCP/0443 ", Port(ProtoTCP, 443), "tcp/443"},
		{"sctp/3868", Port(ProtoSCTP, 3868), "sctp/3868"},
		{"icmp", AnyPort(ProtoICMP), "icmp"},
		{"icmpv6", AnyPort(ProtoICMPv6), "icmpv6"},
		{"any", AnyPort(ProtoAny), "any"},
		{"ANY", AnyPort(ProtoAny), "any"},
	}
	for _, tt := range tests {
		got, err := ParsePortRange(tt.in)
		if err != nil {
			t.Errorf("ParsePortRange(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want || got.String() != tt.out {
			t.Errorf("ParsePortRange(%q) = %+v (%s), want %+v (%s)", tt.in, got, got, tt.want, tt.out)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("%q: parsed range does not validate: %v", tt.in, err)
		}
	}
}

func TestParsePortRangeErrors(t *testing.T) {
	tests := []struct{ in, msg string }{
		{"", "empty"},
		{"  ", "empty"},
		{"5432", `unknown protocol "5432"`},
		{"http/80", `unknown protocol "http"`},
		{"tcp/", "missing port number"},
		{"tcp/http", `port "http" is not a number`},
		{"tcp/-80", "missing port number"},
		{"tcp/+80", `port "+80" is not a number`},
		{"tcp/0", "out of range 1-65535"},
		{"tcp/65536", "out of range 1-65535"},
		{"tcp/99999999999999999999", "out of range 1-65535"},
		{"tcp/8100-8000", "ends before it starts; write tcp/8000-8100"},
		{"tcp/80-", "missing port number"},
		{"tcp/80-90-100", `port "90-100" is not a number`},
		{"tcp/80 ,", "not a number"},
		{"icmp/8", "icmp has no ports"},
		{"icmp/any", "icmp has no ports"},
		{"any/80", "takes no port"},
	}
	for _, tt := range tests {
		_, err := ParsePortRange(tt.in)
		if err == nil {
			t.Errorf("ParsePortRange(%q): no error", tt.in)
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParsePortRange(%q) = %v, want an ErrInvalid saying %q", tt.in, err, tt.msg)
		}
		if !strings.Contains(err.Error(), `"`+tt.in+`"`) {
			t.Errorf("ParsePortRange(%q) = %v: the error does not quote the input", tt.in, err)
		}
	}
}

func TestPortRangeValidate(t *testing.T) {
	bad := []PortRange{
		{},                // the zero value is not "any"
		{Proto: ProtoTCP}, // port 0
		{Proto: ProtoTCP, First: 9, Last: 8},
		{Proto: ProtoICMP, First: 8, Last: 8},
		{Proto: 99, First: 0, Last: 65535},
		{Proto: ProtoAny, First: 1, Last: 1},
	}
	for _, r := range bad {
		if err := r.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v.Validate() = %v, want ErrInvalid", r, err)
		}
		if _, err := r.MarshalText(); err == nil {
			t.Errorf("%+v marshals", r)
		}
	}
}

func TestParsePorts(t *testing.T) {
	got, err := ParsePorts("tcp/80, tcp/443,udp/53")
	if err != nil {
		t.Fatal(err)
	}
	if s := FormatPorts(got); s != "tcp/80,tcp/443,udp/53" {
		t.Errorf("FormatPorts = %q", s)
	}
	for _, in := range []string{"", "tcp/80,", "tcp/80,,udp/53", "tcp/80,udp/x"} {
		if _, err := ParsePorts(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePorts(%q) = %v, want ErrInvalid", in, err)
		}
	}
}

func TestPortRangeContains(t *testing.T) {
	tests := []struct {
		r     string
		proto Proto
		port  uint16
		want  bool
	}{
		{"tcp/5432", ProtoTCP, 5432, true},
		{"tcp/5432", ProtoUDP, 5432, false},
		{"tcp/5432", ProtoTCP, 5433, false},
		{"tcp/8000-8100", ProtoTCP, 8000, true},
		{"tcp/8000-8100", ProtoTCP, 8100, true},
		{"tcp/8000-8100", ProtoTCP, 8101, false},
		{"tcp/any", ProtoTCP, 1, true},
		{"tcp/any", ProtoUDP, 1, false},
		{"icmp", ProtoICMP, 0, true},
		{"icmp", ProtoICMP, 8, true},
		{"any", ProtoSCTP, 9, true},
	}
	for _, tt := range tests {
		r, err := ParsePortRange(tt.r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Contains(tt.proto, tt.port); got != tt.want {
			t.Errorf("%s contains %s/%d = %v, want %v", tt.r, tt.proto, tt.port, got, tt.want)
		}
	}
}

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in   string
		want Endpoint
		out  string
	}{
		{"vigil.web", Endpoint{Kind: KindGroup, Name: "vigil.web"}, "vigil.web"},
		{"Frontends_2", Endpoint{Kind: KindGroup, Name: "Frontends_2"}, "Frontends_2"},
		{"external", Endpoint{Kind: KindExternal}, "external"},
		{"External", Endpoint{Kind: KindExternal}, "external"},
		{"external:api.example.com", Endpoint{Kind: KindExternal, Name: "api.example.com"}, "external:api.example.com"},
		{"external:API.Example.COM.", Endpoint{Kind: KindExternal, Name: "api.example.com"}, "external:api.example.com"},
		{"external:_sip._tcp.example.com", Endpoint{Kind: KindExternal, Name: "_sip._tcp.example.com"}, "external:_sip._tcp.example.com"},
		{"host", Endpoint{Kind: KindHost}, "host"},
		{" host ", Endpoint{Kind: KindHost}, "host"},
		{"address:10.0.0.7", Endpoint{Kind: KindAddress, Addr: netip.MustParseAddr("10.0.0.7")}, "address:10.0.0.7"},
		{"address:::ffff:10.0.0.7", Endpoint{Kind: KindAddress, Addr: netip.MustParseAddr("10.0.0.7")}, "address:10.0.0.7"},
		{"address:fd00::1", Endpoint{Kind: KindAddress, Addr: netip.MustParseAddr("fd00::1")}, "address:fd00::1"},
	}
	for _, tt := range tests {
		got, err := ParseEndpoint(tt.in)
		if err != nil {
			t.Errorf("ParseEndpoint(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want || got.String() != tt.out {
			t.Errorf("ParseEndpoint(%q) = %+v (%s), want %+v (%s)", tt.in, got, got, tt.want, tt.out)
		}
	}
}

func TestParseEndpointErrors(t *testing.T) {
	tests := []struct{ in, msg string }{
		{"", "empty"},
		{"any", "reserved"},
		{"address", "reserved"},
		{"external:", "no DNS name after external:"},
		{"external:*.example.com", "custom group with a dns criterion"},
		{"external:a..b", "empty label"},
		{"external:a b", `character ' ' is not allowed`},
		{"external:" + strings.Repeat("a", 64) + ".com", "at most 63"},
		{"address:10.0.0", "is not an IP address"},
		{"address:fe80::1%eth0", "zone"},
		{"address:", "is not an IP address"},
		{"pod:web", `unknown kind "pod"`},
		{"-web", "starts with a letter or digit"},
		{"web/api", `character '/' is not allowed in a group name`},
		{"web api", `character ' ' is not allowed`},
		{strings.Repeat("g", 254), "at most 253"},
	}
	for _, tt := range tests {
		_, err := ParseEndpoint(tt.in)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseEndpoint(%q) = %v, want an ErrInvalid saying %q", tt.in, err, tt.msg)
		}
	}
}

func TestEndpointHelpers(t *testing.T) {
	tests := []struct{ got, want string }{
		{ExternalEndpoint("API.example.com."), "external:api.example.com"},
		{ExternalEndpoint(""), "external"},
		{ExternalEndpoint("not a name"), "external"},
		{AddressEndpoint(netip.MustParseAddr("::ffff:192.168.1.9")), "address:192.168.1.9"},
		{AddressEndpoint(netip.MustParseAddr("fe80::1%eth0")), "address:fe80::1"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
		if _, err := ParseEndpoint(tt.got); err != nil {
			t.Errorf("%q does not parse: %v", tt.got, err)
		}
	}
}

func TestParseCriterion(t *testing.T) {
	tests := []struct {
		in   string
		want Criterion
	}{
		{"label:tier=web", Criterion{CriterionLabel, "tier", "web"}},
		{"label:app.kubernetes.io/name=*", Criterion{CriterionLabel, "app.kubernetes.io/name", "*"}},
		{"label:k=a=b", Criterion{CriterionLabel, "k", "a=b"}},
		{"label:k=", Criterion{CriterionLabel, "k", ""}},
		{"image:ghcr.io/acme/*", Criterion{CriterionImage, "", "ghcr.io/acme/*"}},
		{"name:web-?", Criterion{CriterionName, "", "web-?"}},
		{"service:db", Criterion{CriterionService, "", "db"}},
		{"address:10.1.2.3/8", Criterion{CriterionAddress, "", "10.0.0.0/8"}},
		{"address:10.1.2.3", Criterion{CriterionAddress, "", "10.1.2.3/32"}},
		{"address:fd00::/8", Criterion{CriterionAddress, "", "fd00::/8"}},
		{"dns:*.Example.com.", Criterion{CriterionDNS, "", "*.example.com"}},
		{"DNS:api.example.com", Criterion{CriterionDNS, "", "api.example.com"}},
	}
	for _, tt := range tests {
		got, err := ParseCriterion(tt.in)
		if err != nil {
			t.Errorf("ParseCriterion(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseCriterion(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		again, err := ParseCriterion(got.String())
		if err != nil || again != got {
			t.Errorf("%q does not round-trip: %+v, %v", got, again, err)
		}
	}
	for _, in := range []string{"", "tier=web", "label:=web", "label:tier", "label:ti er=web", "image:", "name:a b",
		"address:10.0.0.0/33", "address:x", "dns:", "dns:a/b", "pod:web"} {
		if _, err := ParseCriterion(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseCriterion(%q) = %v, want ErrInvalid", in, err)
		}
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		fold, want bool
	}{
		{"", "", false, true},
		{"*", "", false, true},
		{"*", "anything/at.all", false, true},
		{"web-*", "web-1", false, true},
		{"web-*", "api-1", false, false},
		{"web-?", "web-12", false, false},
		{"*.example.com", "api.example.com", false, true},
		{"*.example.com", "example.com", false, false},
		{"a*b*c", "axxbyyc", false, true},
		{"a*b*c", "axxbyy", false, false},
		{"*API*", "my-api-1", true, true},
		{"*API*", "my-api-1", false, false},
	}
	for _, tt := range tests {
		if got := glob(tt.pattern, tt.s, tt.fold); got != tt.want {
			t.Errorf("glob(%q, %q, %v) = %v, want %v", tt.pattern, tt.s, tt.fold, got, tt.want)
		}
	}
}

func TestGroupMatch(t *testing.T) {
	crit := func(ss ...string) []Criterion {
		var out []Criterion
		for _, s := range ss {
			c, err := ParseCriterion(s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
		return out
	}
	web := Subject{Name: "shop-web-1", Image: "docker.io/library/nginx:1.25", Service: "web",
		Labels: map[string]string{"tier": "web", "team": "shop"}}
	api := Subject{Name: "shop-api-1", Image: "ghcr.io/acme/api@sha256:0123", Service: "api",
		Labels: map[string]string{"tier": "api"}}
	ext := Subject{Addr: netip.MustParseAddr("93.184.216.34"), DNSName: "API.Example.com."}
	lan := Subject{Addr: netip.MustParseAddr("::ffff:10.2.3.4")}

	tests := []struct {
		name     string
		criteria []Criterion
		s        Subject
		want     bool
	}{
		{"label", crit("label:tier=web"), web, true},
		{"label other value", crit("label:tier=web"), api, false},
		{"label missing", crit("label:team=*"), api, false},
		{"same key is or", crit("label:tier=web", "label:tier=api"), api, true},
		{"different keys are and", crit("label:tier=web", "label:team=shop"), web, true},
		{"different keys are and, one fails", crit("label:tier=api", "label:team=shop"), web, false},
		{"image short name", crit("image:nginx"), web, true},
		{"image with library", crit("image:library/nginx"), web, true},
		{"image full", crit("image:docker.io/library/ngin?"), web, true},
		{"image tag ignored", crit("image:nginx:1.25"), web, false},
		{"image without registry", crit("image:acme/*"), api, true},
		{"image glob", crit("image:ghcr.io/*"), api, true},
		{"name glob", crit("name:shop-*-1"), api, true},
		{"service", crit("service:web"), web, true},
		{"kinds are and", crit("service:web", "image:acme/*"), web, false},
		{"kinds are or within", crit("service:web", "service:api", "image:*"), api, true},
		{"cidr", crit("address:10.0.0.0/8"), lan, true},
		{"cidr miss", crit("address:192.168.0.0/16"), lan, false},
		{"cidr no address", crit("address:0.0.0.0/0"), web, false},
		{"dns glob folds case", crit("dns:*.example.com"), ext, true},
		{"dns miss", crit("dns:*.example.org"), ext, false},
	}
	for _, tt := range tests {
		g := Group{Name: "g", Origin: GroupCustom, Criteria: tt.criteria}
		if err := g.Validate(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := g.Match(tt.s); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
	learned := Group{Name: "vigil.web", Origin: GroupLearned}
	if learned.Match(web) {
		t.Error("a learned group matched by criteria")
	}
}

func TestGroupValidate(t *testing.T) {
	c := Criterion{CriterionService, "", "web"}
	tests := []struct {
		g   Group
		msg string
	}{
		{Group{Name: "vigil.web", Origin: GroupLearned}, ""},
		{Group{Name: "host", Origin: GroupLearned, Mode: ModeProtect}, ""},
		{Group{Name: "web", Origin: GroupCustom, Criteria: []Criterion{c}}, ""},
		{Group{Name: "", Origin: GroupLearned}, "empty"},
		{Group{Name: "external", Origin: GroupLearned}, "special endpoint"},
		{Group{Name: "Host", Origin: GroupLearned}, `write it as "host"`},
		{Group{Name: "web", Origin: GroupLearned, Criteria: []Criterion{c}}, "learned group has no criteria"},
		{Group{Name: "web", Origin: GroupCustom}, "at least one criterion"},
		{Group{Name: "host", Origin: GroupCustom, Criteria: []Criterion{c}}, "not a custom group"},
		{Group{Name: "web", Origin: GroupCustom, Criteria: []Criterion{{CriterionAddress, "", "10.1.0.0/8"}}}, "canonical"},
		{Group{Name: "web", Origin: GroupCustom, Criteria: []Criterion{{Kind: 42, Value: "x"}}}, "unknown kind"},
		{Group{Name: "web"}, "origin must be"},
		{Group{Name: "web", Origin: GroupLearned, Mode: 3}, "unknown mode"},
	}
	for _, tt := range tests {
		err := tt.g.Validate()
		if tt.msg == "" {
			if err != nil {
				t.Errorf("%+v: %v", tt.g, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%+v: Validate = %v, want ErrInvalid saying %q", tt.g, err, tt.msg)
		}
	}
}

func validRule() Rule {
	return Rule{ID: "r1", From: "vigil.web", To: "vigil.db", Ports: []PortRange{Port(ProtoTCP, 5432)},
		Apps: []string{"postgresql"}, Action: ActionAllow, Origin: OriginUser}
}

func TestRuleValidate(t *testing.T) {
	tests := []struct {
		edit func(*Rule)
		msg  string
	}{
		{func(r *Rule) {}, ""},
		{func(r *Rule) { r.ID = "" }, "an id has 1 to"},
		{func(r *Rule) { r.ID = "a b" }, "not allowed in an id"},
		{func(r *Rule) { r.From = "" }, "from: invalid endpoint"},
		{func(r *Rule) { r.To = "external:" }, "to: invalid endpoint"},
		{func(r *Rule) { r.Ports = nil }, "no ports; write any"},
		{func(r *Rule) { r.Ports = []PortRange{{}} }, "invalid ports"},
		{func(r *Rule) { r.Apps = []string{"HTTP"} }, "not allowed"},
		{func(r *Rule) { r.Apps = []string{"unknown"} }, "drop the apps"},
		{func(r *Rule) { r.Apps = []string{"http", "http"} }, "listed twice"},
		{func(r *Rule) { r.Action = ActionLearn }, "allow or deny"},
		{func(r *Rule) { r.Action = 0 }, "allow or deny"},
		{func(r *Rule) { r.Origin = 0 }, "origin must be"},
		{func(r *Rule) { r.Origin, r.Action = OriginLearned, ActionDeny }, "a learned rule can only allow"},
	}
	for i, tt := range tests {
		r := validRule()
		tt.edit(&r)
		err := r.Validate()
		if tt.msg == "" {
			if err != nil {
				t.Errorf("case %d: %v", i, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("case %d: Validate = %v, want ErrInvalid saying %q", i, err, tt.msg)
		}
	}
}

func TestPolicyValidateReportsEverything(t *testing.T) {
	bad := validRule()
	bad.ID = "r2"
	bad.Ports = nil
	p := Policy{
		DefaultMode: 9,
		Groups: []Group{
			{Name: "vigil.web", Origin: GroupLearned},
			{Name: "vigil.web", Origin: GroupLearned},
		},
		Rules: []Rule{validRule(), validRule(), bad},
	}
	err := p.Validate()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate = %v", err)
	}
	for _, msg := range []string{"default mode 9", `group "vigil.web": defined twice`, `rule "r1": id used twice`, `rule "r2": no ports`} {
		if !strings.Contains(err.Error(), msg) {
			t.Errorf("%v\ndoes not say %q", err, msg)
		}
	}
	if _, err := p.Compile(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Compile = %v, want ErrInvalid", err)
	}
}

func TestTextRoundTrip(t *testing.T) {
	r := validRule()
	r.Ports = []PortRange{Port(ProtoTCP, 5432), AnyPort(ProtoICMP), PortSpan(ProtoUDP, 8000, 8100)}
	p := Policy{
		DefaultMode: ModeMonitor,
		Groups: []Group{{Name: "web", Origin: GroupCustom, Mode: ModeProtect,
			Criteria: []Criterion{{CriterionLabel, "tier", "web"}, {CriterionAddress, "", "10.0.0.0/8"}}}},
		Rules: []Rule{r},
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"default_mode":"monitor"`, `"mode":"protect"`, `"origin":"custom"`,
		`"criteria":["label:tier=web","address:10.0.0.0/8"]`, `"ports":["tcp/5432","icmp","udp/8000-8100"]`,
		`"action":"allow"`, `"origin":"user"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s\nlacks %s", b, want)
		}
	}
	var back Policy
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(back)
	if string(b) != string(b2) {
		t.Errorf("round trip differs:\n%s\n%s", b, b2)
	}
	if err := json.Unmarshal([]byte(`{"default_mode":"strict"}`), &back); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad mode: %v", err)
	}
	if _, err := json.Marshal(Rule{Action: 9}); err == nil {
		t.Error("an invalid action marshals")
	}
}

func TestEnumParsing(t *testing.T) {
	for _, m := range []Mode{ModeDiscover, ModeMonitor, ModeProtect} {
		if got, err := ParseMode(" " + strings.ToUpper(m.String())); err != nil || got != m {
			t.Errorf("ParseMode(%s) = %v, %v", m, got, err)
		}
	}
	if _, err := ParseMode("learn"); err == nil || !strings.Contains(err.Error(), "want one of discover, monitor, protect") {
		t.Errorf("ParseMode(learn) = %v", err)
	}
	if _, err := ParseAction(""); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseAction empty = %v", err)
	}
	if _, err := ParseRuleOrigin(""); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseRuleOrigin empty = %v", err)
	}
	if o, err := ParseGroupOrigin("custom"); err != nil || o != GroupCustom {
		t.Errorf("ParseGroupOrigin = %v, %v", o, err)
	}
	if Mode(7).String() != "mode(7)" || Action(0).String() != "action(0)" {
		t.Error("invalid values print badly")
	}
	if !Action(0).Blocks() || !ActionDeny.Blocks() || ActionViolate.Blocks() || ActionLearn.Blocks() || ActionAllow.Blocks() {
		t.Error("Blocks")
	}
	for _, s := range []string{"tcp", "udp", "sctp", "icmp", "icmpv6", "any"} {
		if p, err := ParseProto(s); err != nil || p.String() != s {
			t.Errorf("ParseProto(%s) = %v, %v", s, p, err)
		}
	}
	if _, err := ParseProto("ip"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseProto(ip) = %v", err)
	}
}

func TestRuleString(t *testing.T) {
	r := validRule()
	r.Origin = OriginLearned
	if got, want := r.String(), "vigil.web -> vigil.db tcp/5432 [postgresql] allow (learned)"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
