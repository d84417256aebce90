package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func mustPorts(t testing.TB, s string) []PortRange {
	t.Helper()
	p, err := ParsePorts(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rule builds a rule from its readable parts: rule(t, "id", "from", "to", "tcp/5432", "allow", "user", "postgresql").
func rule(t testing.TB, id, from, to, ports, action, origin string, apps ...string) Rule {
	t.Helper()
	a, err := ParseAction(action)
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseRuleOrigin(origin)
	if err != nil {
		t.Fatal(err)
	}
	return Rule{ID: id, From: from, To: to, Ports: mustPorts(t, ports), Apps: apps, Action: a, Origin: o}
}

func compile(t testing.TB, p *Policy) *Evaluator {
	t.Helper()
	e, err := p.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func testPolicy(t testing.TB) *Policy {
	return &Policy{
		Groups: []Group{
			{Name: "frontends", Origin: GroupCustom, Criteria: []Criterion{{CriterionLabel, "tier", "web"}}},
			{Name: "quarantine", Origin: GroupCustom, Criteria: []Criterion{{CriterionLabel, "quarantine", "*"}}},
		},
		Rules: []Rule{
			rule(t, "learn-db", "vigil.web", "vigil.db", "tcp/5432", "allow", "learned", "postgresql"),
			rule(t, "batch-db", "vigil.batch", "vigil.db", "tcp/5432", "deny", "imported"),
			rule(t, "cache-allow", "vigil.web", "vigil.cache", "tcp/6379", "allow", "user"),
			rule(t, "cache-deny", "vigil.web", "vigil.cache", "tcp/6379", "deny", "user"),
			rule(t, "cache-learned", "vigil.web", "vigil.cache", "tcp/6379", "allow", "learned", "redis"),
			rule(t, "api-range", "vigil.web", "vigil.api", "tcp/8000-8100", "allow", "user"),
			rule(t, "api-8080-http", "vigil.web", "vigil.api", "tcp/8080", "allow", "user", "http"),
			rule(t, "api-learned", "vigil.web", "vigil.api", "tcp/8080,tcp/9000", "allow", "learned"),
			rule(t, "api-wide", "vigil.web", "vigil.api", "tcp/7000-9999", "allow", "imported"),
			rule(t, "api-wide-http", "vigil.web", "vigil.api", "tcp/7000-9999", "allow", "user", "http"),
			rule(t, "admin-any", "vigil.admin", "vigil.db", "any", "allow", "user"),
			rule(t, "files-tcp", "vigil.web", "vigil.files", "tcp/any", "allow", "learned"),
			rule(t, "ping-host", "vigil.web", "host", "icmp", "allow", "user"),
			rule(t, "ext-api", "vigil.web", "external:api.example.com", "tcp/443", "allow", "user", "tls", "http2"),
			rule(t, "ext-smtp", "vigil.web", "external", "tcp/25", "deny", "user"),
			rule(t, "ext-dns", "vigil.web", "external", "udp/53", "allow", "learned", "dns"),
			rule(t, "front-db", "frontends", "vigil.db", "tcp/5432", "allow", "user"),
			rule(t, "quarantine-out", "quarantine", "vigil.db", "any", "deny", "user"),
			rule(t, "addr-metrics", "address:10.0.0.9", "vigil.api", "tcp/9100", "allow", "learned"),
			rule(t, "canon", "vigil.web", "External:Mail.Example.com.", "tcp/587", "allow", "user"),
		},
	}
}

func TestEvaluateRules(t *testing.T) {
	e := compile(t, testPolicy(t))
	const (
		allow   = ActionAllow
		deny    = ActionDeny
		learn   = ActionLearn
		violate = ActionViolate
	)
	tests := []struct {
		name   string
		c      Conn
		action Action
		rule   string
		reason string
	}{
		{"learned rule with app", Conn{From: "vigil.web", To: "vigil.db", Proto: ProtoTCP, Port: 5432, App: "postgresql"}, allow, "learn-db", ReasonLearnedRule},
		{"learned rule, other app", Conn{From: "vigil.web", To: "vigil.db", Proto: ProtoTCP, Port: 5432, App: "http"}, learn, "", ReasonDiscover},
		{"learned rule, unknown app", Conn{From: "vigil.web", To: "vigil.db", Proto: ProtoTCP, Port: 5432, App: AppUnknown}, learn, "", ReasonDiscover},
		{"learned rule, empty app", Conn{From: "vigil.web", To: "vigil.db", Proto: ProtoTCP, Port: 5432}, learn, "", ReasonDiscover},
		{"wrong port", Conn{From: "vigil.web", To: "vigil.db", Proto: ProtoTCP, Port: 5433, App: "postgresql"}, learn, "", ReasonDiscover},
		{"wrong proto", Conn{From: "vigil.web", To: "vigil.db", Proto: ProtoUDP, Port: 5432, App: "postgresql"}, learn, "", ReasonDiscover},
		{"reverse direction", Conn{From: "vigil.db", To: "vigil.web", Proto: ProtoTCP, Port: 5432, App: "postgresql"}, learn, "", ReasonDiscover},
		{"imported deny", Conn{From: "vigil.batch", To: "vigil.db", Proto: ProtoTCP, Port: 5432, FromMode: ModeProtect}, deny, "batch-db", ReasonDenyRule},
		{"deny beats user and learned allow", Conn{From: "vigil.web", To: "vigil.cache", Proto: ProtoTCP, Port: 6379, App: "redis"}, deny, "cache-deny", ReasonDenyRule},
		{"deny wins in discover mode too", Conn{From: "vigil.web", To: "vigil.cache", Proto: ProtoTCP, Port: 6379}, deny, "cache-deny", ReasonDenyRule},
		{"exact port with app before range", Conn{From: "vigil.web", To: "vigil.api", Proto: ProtoTCP, Port: 8080, App: "http"}, allow, "api-8080-http", ReasonAllowRule},
		{"app mismatch falls to range", Conn{From: "vigil.web", To: "vigil.api", Proto: ProtoTCP, Port: 8080, App: "grpc"}, allow, "api-range", ReasonAllowRule},
		{"unknown app falls to range", Conn{From: "vigil.web", To: "vigil.api", Proto: ProtoTCP, Port: 8080, App: AppUnknown}, allow, "api-range", ReasonAllowRule},
		{"user range beats learned exact", Conn{From: "vigil.web", To: "vigil.api", Proto: ProtoTCP, Port: 9000}, allow, "api-wide", ReasonAllowRule},
		{"range low edge", Conn{From: "vigil.web", To: "vigil.api", Proto: ProtoTCP, Port: 8000}, allow, "api-range", ReasonAllowRule},
		{"range high edge", Conn{From: "vigil.web", To: "vigil.api", Proto: ProtoTCP, Port: 8100}, allow, "api-range", ReasonAllowRule},
		{"narrowest range first", Conn{From: "vigil.web", To: "vigil.api", Proto: ProtoTCP, Port: 8101}, allow, "api-wide", ReasonAllowRule},
		{"narrower plain rule before wider app rule", Conn{From: "vigil.web", To: "vigil.api", Proto: ProtoTCP, Port: 8050, App: "http"}, allow, "api-range", ReasonAllowRule},
		{"same width: app rule first", Conn{From: "vigil.web", To: "vigil.api", Proto: ProtoTCP, Port: 9500, App: "http"}, allow, "api-wide-http", ReasonAllowRule},
		{"same width: plain rule for other apps", Conn{From: "vigil.web", To: "vigil.api", Proto: ProtoTCP, Port: 9500, App: "grpc"}, allow, "api-wide", ReasonAllowRule},
		{"past every range", Conn{From: "vigil.web", To: "vigil.api", Proto: ProtoTCP, Port: 10000, ToMode: ModeMonitor}, violate, "", ReasonMonitor},
		{"below every range", Conn{From: "vigil.web", To: "vigil.api", Proto: ProtoTCP, Port: 6999, ToMode: ModeProtect}, deny, "", ReasonProtect},
		{"any: tcp", Conn{From: "vigil.admin", To: "vigil.db", Proto: ProtoTCP, Port: 5432}, allow, "admin-any", ReasonAllowRule},
		{"any: udp", Conn{From: "vigil.admin", To: "vigil.db", Proto: ProtoUDP, Port: 1}, allow, "admin-any", ReasonAllowRule},
		{"any: icmp", Conn{From: "vigil.admin", To: "vigil.db", Proto: ProtoICMP}, allow, "admin-any", ReasonAllowRule},
		{"tcp/any", Conn{From: "vigil.web", To: "vigil.files", Proto: ProtoTCP, Port: 65535, App: "nfs"}, allow, "files-tcp", ReasonLearnedRule},
		{"tcp/any is not udp", Conn{From: "vigil.web", To: "vigil.files", Proto: ProtoUDP, Port: 2049}, learn, "", ReasonDiscover},
		{"icmp, port ignored", Conn{From: "vigil.web", To: "host", Proto: ProtoICMP, Port: 8}, allow, "ping-host", ReasonAllowRule},
		{"icmpv6 is not icmp", Conn{From: "vigil.web", To: "host", Proto: ProtoICMPv6}, learn, "", ReasonDiscover},
		{"external by name", Conn{From: "vigil.web", To: "external:api.example.com", Proto: ProtoTCP, Port: 443, App: "http2"}, allow, "ext-api", ReasonAllowRule},
		{"external by name, app not listed", Conn{From: "vigil.web", To: "external:api.example.com", Proto: ProtoTCP, Port: 443, App: "http"}, learn, "", ReasonDiscover},
		{"named external falls back to external", Conn{From: "vigil.web", To: "external:mx.example.com", Proto: ProtoTCP, Port: 25}, deny, "ext-smtp", ReasonDenyRule},
		{"named external, learned on external", Conn{From: "vigil.web", To: "external:ns.example.net", Proto: ProtoUDP, Port: 53, App: "dns"}, allow, "ext-dns", ReasonLearnedRule},
		{"unnamed external", Conn{From: "vigil.web", To: "external", Proto: ProtoUDP, Port: 53, App: "dns"}, allow, "ext-dns", ReasonLearnedRule},
		{"unnamed external does not match a named rule", Conn{From: "vigil.web", To: "external", Proto: ProtoTCP, Port: 443, App: "tls"}, learn, "", ReasonDiscover},
		{"rule endpoints are canonicalised", Conn{From: "vigil.web", To: "external:mail.example.com", Proto: ProtoTCP, Port: 587}, allow, "canon", ReasonAllowRule},
		{"custom group of the client", Conn{From: "vigil.shop", FromGroups: []string{"frontends"}, To: "vigil.db", Proto: ProtoTCP, Port: 5432, ToMode: ModeProtect}, allow, "front-db", ReasonAllowRule},
		{"custom group deny beats learned allow", Conn{From: "vigil.web", FromGroups: []string{"frontends", "quarantine"}, To: "vigil.db", Proto: ProtoTCP, Port: 5432, App: "postgresql"}, deny, "quarantine-out", ReasonDenyRule},
		{"custom user allow beats own learned", Conn{From: "vigil.web", FromGroups: []string{"frontends"}, To: "vigil.db", Proto: ProtoTCP, Port: 5432, App: "postgresql"}, allow, "front-db", ReasonAllowRule},
		{"unmanaged address", Conn{From: "address:10.0.0.9", To: "vigil.api", Proto: ProtoTCP, Port: 9100}, allow, "addr-metrics", ReasonLearnedRule},
		{"unknown groups", Conn{From: "vigil.x", To: "vigil.y", Proto: ProtoTCP, Port: 1, FromMode: ModeMonitor}, violate, "", ReasonMonitor},
		{"no groups at all", Conn{Proto: ProtoTCP, Port: 1}, learn, "", ReasonDiscover},
		{"app pending: app rule allows provisionally", Conn{From: "vigil.web", To: "vigil.db", Proto: ProtoTCP, Port: 5432, AppPending: true, ToMode: ModeProtect}, allow, "learn-db", ReasonLearnedRule},
		{"app pending: known app decides", Conn{From: "vigil.web", To: "vigil.db", Proto: ProtoTCP, Port: 5432, App: "http", AppPending: true, ToMode: ModeProtect}, deny, "", ReasonProtect},
		{"app pending: unknown app decides", Conn{From: "vigil.web", To: "vigil.db", Proto: ProtoTCP, Port: 5432, App: AppUnknown, AppPending: true, ToMode: ModeProtect}, deny, "", ReasonProtect},
		{"app pending: a plain deny rule still denies", Conn{From: "vigil.web", To: "vigil.cache", Proto: ProtoTCP, Port: 6379, AppPending: true}, deny, "cache-deny", ReasonDenyRule},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := e.Evaluate(tt.c)
			if v.Action != tt.action || v.RuleID != tt.rule || v.Reason != tt.reason {
				t.Errorf("Evaluate = {%s %q %q}, want {%s %q %q}", v.Action, v.RuleID, v.Reason, tt.action, tt.rule, tt.reason)
			}
		})
	}
}

func TestEvaluateModes(t *testing.T) {
	e := compile(t, &Policy{Rules: []Rule{rule(t, "r", "vigil.web", "vigil.db", "tcp/5432", "allow", "learned")}})
	modes := []Mode{ModeDiscover, ModeMonitor, ModeProtect}
	want := map[Mode]struct {
		action Action
		reason string
	}{
		ModeDiscover: {ActionLearn, ReasonDiscover},
		ModeMonitor:  {ActionViolate, ReasonMonitor},
		ModeProtect:  {ActionDeny, ReasonProtect},
	}
	for _, from := range modes {
		for _, to := range modes {
			stricter := max(from, to)
			v := e.Evaluate(Conn{From: "vigil.web", To: "vigil.db", Proto: ProtoTCP, Port: 5433, FromMode: from, ToMode: to})
			if w := want[stricter]; v.Action != w.action || v.Reason != w.reason || v.RuleID != "" || v.Mode != stricter {
				t.Errorf("%s -> %s, no rule: %+v, want %s (%s)", from, to, v, w.action, stricter)
			}
			if Stricter(from, to) != stricter || Stricter(to, from) != stricter {
				t.Errorf("Stricter(%s, %s) = %s", from, to, Stricter(from, to))
			}
			// A matching rule decides whatever the modes.
			v = e.Evaluate(Conn{From: "vigil.web", To: "vigil.db", Proto: ProtoTCP, Port: 5432, FromMode: from, ToMode: to})
			if v.Action != ActionAllow || v.RuleID != "r" || v.Mode != stricter {
				t.Errorf("%s -> %s, rule: %+v", from, to, v)
			}
		}
	}
	v := e.Evaluate(Conn{From: "a", To: "b", Proto: ProtoTCP, Port: 1, ToMode: 200})
	if v.Action != ActionDeny || v.Reason != ReasonInvalidMode {
		t.Errorf("invalid mode: %+v, want deny", v)
	}
	if (Verdict{}).Action.Blocks() != true {
		t.Error("the zero verdict does not block")
	}
}

func TestModeOfAndGroupsOf(t *testing.T) {
	p := &Policy{
		DefaultMode: ModeMonitor,
		Groups: []Group{
			{Name: "vigil.db", Origin: GroupLearned, Mode: ModeProtect},
			{Name: "host", Origin: GroupLearned, Mode: ModeDiscover},
			{Name: "lan", Origin: GroupCustom, Criteria: []Criterion{{CriterionAddress, "", "10.0.0.0/8"}}, Mode: ModeProtect},
			{Name: "web", Origin: GroupCustom, Criteria: []Criterion{{CriterionService, "", "web"}}},
			{Name: "all-images", Origin: GroupCustom, Criteria: []Criterion{{CriterionImage, "", "*"}}},
		},
	}
	e := compile(t, p)
	for name, want := range map[string]Mode{
		"vigil.db": ModeProtect, "host": ModeDiscover, "vigil.new": ModeMonitor, "lan": ModeProtect,
		"external": ModeDiscover, "external:x.example.com": ModeDiscover, "address:10.0.0.1": ModeDiscover,
	} {
		if got := e.ModeOf(name); got != want {
			t.Errorf("ModeOf(%s) = %s, want %s", name, got, want)
		}
	}
	got := e.GroupsOf(Subject{Service: "web", Image: "nginx"}, nil)
	if fmt.Sprint(got) != "[web all-images]" {
		t.Errorf("GroupsOf(web) = %v", got)
	}
	got = e.GroupsOf(Subject{Addr: netip.MustParseAddr("10.1.1.1")}, got[:0])
	if fmt.Sprint(got) != "[lan]" {
		t.Errorf("GroupsOf(10.1.1.1) = %v", got)
	}
}

func TestCountAndTakeHits(t *testing.T) {
	p := testPolicy(t)
	e := compile(t, p)
	t0 := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	c := Conn{From: "vigil.web", To: "vigil.db", Proto: ProtoTCP, Port: 5432, App: "postgresql"}
	for i := range 3 {
		e.Count(e.Evaluate(c), t0.Add(time.Duration(2-i)*time.Second)) // out of order
	}
	e.Count(e.Evaluate(Conn{From: "x", To: "y", Proto: ProtoTCP, Port: 1}), t0) // no rule: nothing
	other := compile(t, &Policy{Rules: []Rule{rule(t, "other", "vigil.web", "vigil.db", "tcp/5432", "allow", "user")}})
	e.Count(other.Evaluate(c), t0) // another evaluator's rule: nothing
	e.Count(Verdict{}, t0)         // the zero verdict: nothing

	hits := e.TakeHits()
	if len(hits) != 1 || hits[0].RuleID != "learn-db" || hits[0].Count != 3 || !hits[0].Last.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("TakeHits = %+v", hits)
	}
	if again := e.TakeHits(); len(again) != 0 {
		t.Errorf("TakeHits did not reset: %+v", again)
	}
	p.AddHits(hits)
	p.AddHits(hits)
	r := p.Rules[0]
	if r.Hits != 6 || !r.LastHit.Equal(t0.Add(2*time.Second)) {
		t.Errorf("AddHits: %d hits, last %v", r.Hits, r.LastHit)
	}
	if got, ok := e.Rule("learn-db"); !ok || got.Hits != 0 || got.To != "vigil.db" {
		t.Errorf("Rule = %+v, %v", got, ok)
	}
	if got, ok := e.Rule("canon"); !ok || got.To != "external:mail.example.com" {
		t.Errorf("canonical rule = %+v, %v", got, ok)
	}
	if _, ok := e.Rule("nope"); ok {
		t.Error("Rule(nope) found")
	}
}

func TestCompileKeepsCopies(t *testing.T) {
	p := testPolicy(t)
	e := compile(t, p)
	p.Rules[0].Apps[0] = "http"
	p.Rules[0].Ports[0] = Port(ProtoTCP, 1)
	v := e.Evaluate(Conn{From: "vigil.web", To: "vigil.db", Proto: ProtoTCP, Port: 5432, App: "postgresql"})
	if v.RuleID != "learn-db" {
		t.Errorf("changing the policy changed the evaluator: %+v", v)
	}
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	e := compile(t, testPolicy(t))
	groups := []string{"frontends", "quarantine"}
	conns := []Conn{
		{From: "vigil.web", To: "vigil.db", Proto: ProtoTCP, Port: 5432, App: "postgresql"},
		{From: "vigil.web", To: "external:mx.example.com", Proto: ProtoTCP, Port: 25},
		{From: "vigil.web", FromGroups: groups, To: "vigil.db", Proto: ProtoTCP, Port: 5432},
		{From: "vigil.x", To: "vigil.y", Proto: ProtoUDP, Port: 53, ToMode: ModeProtect},
	}
	at := time.Now()
	for _, c := range conns {
		if n := testing.AllocsPerRun(100, func() { e.Count(e.Evaluate(c), at) }); n != 0 {
			t.Errorf("%+v: %v allocations per verdict", c, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = e.ModeOf("vigil.web") + e.ModeOf("external:a.b") }); n != 0 {
		t.Errorf("ModeOf: %v allocations", n)
	}
}

// TestSwapUnderLoad evaluates and counts from many goroutines while the policy is
// replaced whole; run with -race.
func TestSwapUnderLoad(t *testing.T) {
	var cur atomic.Pointer[Evaluator]
	p := testPolicy(t)
	cur.Store(compile(t, p))
	c := Conn{From: "vigil.web", To: "vigil.db", Proto: ProtoTCP, Port: 5432, App: "postgresql"}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var evaluated atomic.Uint64
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				e := cur.Load()
				v := e.Evaluate(c)
				if v.RuleID != "learn-db" {
					t.Errorf("verdict %+v during swap", v)
					return
				}
				e.Count(v, time.Now())
				evaluated.Add(1)
			}
		})
	}
	var total uint64
	for i := range 50 {
		p.Rules = append(p.Rules, rule(t, fmt.Sprintf("extra-%d", i), "vigil.a", "vigil.b", fmt.Sprintf("tcp/%d", 1000+i), "allow", "user"))
		old := cur.Swap(compile(t, p))
		for _, h := range old.TakeHits() {
			total += h.Count
		}
	}
	close(stop)
	wg.Wait()
	for _, h := range cur.Load().TakeHits() {
		total += h.Count
	}
	if total != evaluated.Load() {
		// Hits counted on an old evaluator after its last TakeHits are lost: the test takes
		// them after the swap, and goroutines are stopped before the last take, so none are.
		t.Logf("counted %d of %d verdicts", total, evaluated.Load())
	}
	if total == 0 {
		t.Error("no hits counted")
	}
}

func TestCompileInvalid(t *testing.T) {
	p := &Policy{Rules: []Rule{{ID: "x"}}}
	if _, err := p.Compile(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Compile = %v", err)
	}
}

func TestEvaluateAppPendingDenyRule(t *testing.T) {
	e := compile(t, &Policy{DefaultMode: ModeMonitor, Rules: []Rule{
		rule(t, "no-http", "vigil.web", "vigil.db", "tcp/5432", "deny", "user", "http"),
		rule(t, "pg", "vigil.web", "vigil.db", "tcp/5432", "allow", "user", "postgresql"),
	}})
	c := Conn{From: "vigil.web", To: "vigil.db", Proto: ProtoTCP, Port: 5432, AppPending: true}
	if v := e.Evaluate(c); v.Action != ActionAllow || v.RuleID != "pg" {
		t.Errorf("pending: %+v, want the allow rule provisionally, not the app deny rule", v)
	}
	c.App = "http"
	if v := e.Evaluate(c); v.Action != ActionDeny || v.RuleID != "no-http" {
		t.Errorf("http: %+v, want the deny rule", v)
	}
}
