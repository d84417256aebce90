package controller

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/dpi"
	"github.com/vigil-sec/vigil/internal/flow"
	"github.com/vigil-sec/vigil/internal/policy"
)

// memStore records what the engine persists.
type memStore struct {
	rules  map[string]policy.Rule
	groups map[string]policy.Group
	mode   policy.Mode
}

func newMemStore() *memStore {
	return &memStore{rules: map[string]policy.Rule{}, groups: map[string]policy.Group{}}
}
func (m *memStore) PutRules(rs []policy.Rule) error {
	for _, r := range rs {
		m.rules[r.ID] = r
	}
	return nil
}
func (m *memStore) DeleteRules(ids []string) error {
	for _, id := range ids {
		delete(m.rules, id)
	}
	return nil
}
func (m *memStore) PutGroup(g policy.Group) error      { m.groups[g.Name] = g; return nil }
func (m *memStore) DeleteGroup(n string) error         { delete(m.groups, n); return nil }
func (m *memStore) SetDefaultMode(p policy.Mode) error { m.mode = p; return nil }
func (m *memStore) SavePolicy(p policy.Policy) error {
	m.rules, m.groups, m.mode = map[string]policy.Rule{}, map[string]policy.Group{}, p.DefaultMode
	for _, r := range p.Rules {
		m.rules[r.ID] = r
	}
	for _, g := range p.Groups {
		m.groups[g.Name] = g
	}
	return nil
}

func conn(id uint64, client, clientGroup, server, serverGroup string, port uint16, app dpi.App, at int) flow.Record {
	return flow.Record{ID: id, Proto: "tcp", App: app, Initiator: flow.InitiatorSYN,
		Client: flow.Endpoint{IP: netip.MustParseAddr("172.17.0.9"), Port: 40000 + uint16(id), Kind: flow.KindWorkload, Workload: client + "-id", Name: client, Group: clientGroup,
			Process: &flow.Process{PID: 42, Comm: "psql"}},
		Server:    flow.Endpoint{IP: netip.MustParseAddr("172.17.0.3"), Port: port, Kind: flow.KindWorkload, Workload: server + "-id", Name: server, Group: serverGroup},
		FirstSeen: time.Unix(int64(at), 0), LastSeen: time.Unix(int64(at), 0)}
}

func newEngine(t *testing.T, st PolicyStore) (*PolicyEngine, *Events) {
	t.Helper()
	events := NewEvents(100)
	e, err := NewPolicyEngine(policy.Policy{}, st, events, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return e, events
}

func TestLearnThenMonitor(t *testing.T) {
	st := newMemStore()
	e, events := newEngine(t, st)

	r := conn(1, "web-1", "vigil.web", "db", "vigil.db", 5432, dpi.PostgreSQL, 1)
	e.Judge(&r)
	if r.Verdict != "learn" || r.RuleID != "" {
		t.Fatalf("first flow in discover: verdict %q rule %q", r.Verdict, r.RuleID)
	}
	if len(st.rules) != 1 {
		t.Fatalf("learned rules persisted: %+v", st.rules)
	}
	// A replica, on another ephemeral port, matches the learned rule.
	r2 := conn(2, "web-2", "vigil.web", "db", "vigil.db", 5432, dpi.PostgreSQL, 2)
	e.Judge(&r2)
	if r2.Verdict != "allow" || r2.RuleID == "" {
		t.Fatalf("replica: verdict %q rule %q", r2.Verdict, r2.RuleID)
	}

	if err := e.SetMode("vigil.db", policy.ModeMonitor); err != nil {
		t.Fatal(err)
	}
	if st.groups["vigil.db"].Mode != policy.ModeMonitor {
		t.Errorf("mode not persisted: %+v", st.groups)
	}
	for i := range 3 {
		v := conn(uint64(10+i), "intruder", "vigil.intruder", "db", "vigil.db", 5432, dpi.PostgreSQL, 10+i)
		e.Judge(&v)
		if v.Verdict != "violate" {
			t.Fatalf("intruder in monitor: verdict %q", v.Verdict)
		}
	}
	evs := events.List("violation", 0)
	if len(evs) != 1 {
		t.Fatalf("violations = %+v, want one aggregated event", evs)
	}
	d := evs[0].Detail
	if d["count"] != 3 || d["from"] != "vigil.intruder" || d["to"] != "vigil.db" || d["port"] != uint16(5432) || d["app"] != "postgresql" {
		t.Errorf("violation detail = %+v", d)
	}
	if c, ok := d["client"].(flow.Endpoint); !ok || c.Process == nil || c.Process.Comm != "psql" {
		t.Errorf("violation lacks the client process: %+v", d["client"])
	}
	if len(st.rules) != 1 {
		t.Errorf("monitor mode learned: %+v", st.rules)
	}

	// Protect: the same connection is denied, and reported as its own event.
	if err := e.SetMode("vigil.db", policy.ModeProtect); err != nil {
		t.Fatal(err)
	}
	v := conn(20, "intruder", "vigil.intruder", "db", "vigil.db", 5432, dpi.PostgreSQL, 20)
	e.Judge(&v)
	if v.Verdict != "deny" || len(events.List("violation", 0)) != 2 {
		t.Errorf("protect: verdict %q, %d events", v.Verdict, len(events.List("violation", 0)))
	}
}

func TestUserRulesAndPromotion(t *testing.T) {
	st := newMemStore()
	e, events := newEngine(t, st)
	if err := e.SetDefaultMode(policy.ModeMonitor); err != nil {
		t.Fatal(err)
	}
	ports, _ := policy.ParsePorts("tcp/6379")
	u, err := e.AddRule(policy.Rule{From: "vigil.api", To: "vigil.cache", Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	r := conn(1, "api", "vigil.api", "cache", "vigil.cache", 6379, dpi.Redis, 1)
	e.Judge(&r)
	if r.Verdict != "allow" || r.RuleID != u.ID || len(events.List("", 0)) != 0 {
		t.Fatalf("user rule: verdict %q rule %q (want %q)", r.Verdict, r.RuleID, u.ID)
	}
	if _, err := e.AddRule(policy.Rule{From: "vigil.api", To: "vigil.cache"}); err == nil {
		t.Error("a rule without ports was accepted")
	}
	if err := e.DeleteRule(u.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.rules[u.ID]; ok {
		t.Error("deleted rule still stored")
	}
	if err := e.DeleteRule("u-nope"); !errors.Is(err, ErrNoRule) {
		t.Errorf("delete unknown: %v", err)
	}

	// Learn in discover, promote, and the promoted rule still allows.
	if err := e.SetDefaultMode(policy.ModeDiscover); err != nil {
		t.Fatal(err)
	}
	r = conn(2, "api", "vigil.api", "cache", "vigil.cache", 6379, dpi.Redis, 2)
	e.Judge(&r)
	pol := e.Policy()
	learned := pol.LearnedRules()
	if len(learned) != 1 {
		t.Fatalf("learned = %+v", learned)
	}
	p, err := e.Promote(learned[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	pol = e.Policy()
	if p.Origin != policy.OriginUser || p.ID == learned[0].ID || len(pol.LearnedRules()) != 0 {
		t.Errorf("promoted = %+v", p)
	}
	if _, err := e.Promote(p.ID); !errors.Is(err, ErrLearned) {
		t.Errorf("promoting a user rule: %v", err)
	}
	r = conn(3, "api", "vigil.api", "cache", "vigil.cache", 6379, dpi.Redis, 3)
	e.Judge(&r)
	if r.Verdict != "allow" || r.RuleID != p.ID {
		t.Errorf("after promotion: %q %q", r.Verdict, r.RuleID)
	}
}

func TestFlowsCarryVerdicts(t *testing.T) {
	e, _ := newEngine(t, nil)
	c := NewFlows(10, 100)
	c.SetJudge(e)
	r := conn(1, "web", "vigil.web", "db", "vigil.db", 5432, dpi.PostgreSQL, 1)
	c.ReportFlows([]flow.Event{{Type: flow.EventStart, Record: r}, {Type: flow.EventEnd, Record: r}})
	got := c.List(Filter{}, 0)
	if len(got) != 1 || got[0].Verdict != "learn" {
		t.Fatalf("flows = %+v; the end keeps the verdict judged at the start", got)
	}
}

func TestSimulate(t *testing.T) {
	e, _ := newEngine(t, nil)
	allowed := conn(1, "web", "vigil.web", "db", "vigil.db", 5432, dpi.PostgreSQL, 1)
	e.Judge(&allowed) // learned in discover
	records := []flow.Record{
		conn(2, "web", "vigil.web", "db", "vigil.db", 5432, dpi.PostgreSQL, 2),
		conn(3, "batch", "vigil.batch", "db", "vigil.db", 5432, dpi.PostgreSQL, 3),
		conn(4, "batch", "vigil.batch", "db", "vigil.db", 5432, dpi.PostgreSQL, 4),
	}
	res, err := e.Simulate(records, policy.ModeProtect, []string{"vigil.db"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].From != "vigil.batch" || res[0].Flows != 2 || res[0].Verdict != "deny" || res[0].Clients[0] != "batch" {
		t.Fatalf("simulation = %+v, want the two batch flows denied", res)
	}
	// The real policy is untouched.
	r := conn(5, "batch", "vigil.batch", "db", "vigil.db", 5432, dpi.PostgreSQL, 5)
	e.Judge(&r)
	if r.Verdict != "learn" {
		t.Errorf("simulation changed the policy: verdict %q", r.Verdict)
	}
}

func TestFollowupAddsLateProcess(t *testing.T) {
	e, events := newEngine(t, nil)
	if err := e.SetDefaultMode(policy.ModeMonitor); err != nil {
		t.Fatal(err)
	}
	r := conn(1, "late", "vigil.late", "db", "vigil.db", 5432, dpi.PostgreSQL, 1)
	r.Client.Process = nil
	c := NewFlows(10, 100)
	c.SetJudge(e)
	c.ReportFlows([]flow.Event{{Type: flow.EventStart, Record: r}})
	r.Client.Process = &flow.Process{PID: 7, Comm: "psql"}
	c.ReportFlows([]flow.Event{{Type: flow.EventEnd, Record: r}})
	evs := events.List("violation", 0)
	if len(evs) != 1 {
		t.Fatalf("events = %+v", evs)
	}
	if cl, ok := evs[0].Detail["client"].(flow.Endpoint); !ok || cl.Process == nil || cl.Process.Comm != "psql" {
		t.Errorf("client = %+v, want the process that arrived with the end", evs[0].Detail["client"])
	}
}

func TestApplyReplacesPolicy(t *testing.T) {
	st := newMemStore()
	e, _ := newEngine(t, st)
	r := conn(1, "web", "vigil.web", "db", "vigil.db", 5432, dpi.PostgreSQL, 1)
	e.Judge(&r) // learned
	exported := e.Policy()
	fresh, _ := newEngine(t, newMemStore())
	if err := fresh.Apply(exported); err != nil {
		t.Fatal(err)
	}
	got := fresh.Policy()
	if len(got.Rules) != 1 || got.Rules[0].ID != exported.Rules[0].ID {
		t.Fatalf("applied policy = %+v, want %+v", got, exported)
	}
	r2 := conn(2, "web", "vigil.web", "db", "vigil.db", 5432, dpi.PostgreSQL, 2)
	fresh.Judge(&r2)
	if r2.Verdict != "allow" {
		t.Errorf("after apply: %q", r2.Verdict)
	}
	bad := exported
	bad.Rules = append([]policy.Rule{{ID: "x", From: "", To: "vigil.db"}}, bad.Rules...)
	if err := fresh.Apply(bad); err == nil {
		t.Error("an invalid policy was applied")
	}
	if got := fresh.Policy(); len(got.Rules) != 1 {
		t.Errorf("a failed apply changed the policy: %+v", got.Rules)
	}
}

func TestAutoPromotion(t *testing.T) {
	e, events := newEngine(t, newMemStore())
	r := conn(1, "web", "vigil.web", "db", "vigil.db", 5432, dpi.PostgreSQL, 1000)
	e.Judge(&r)
	if got := e.PromoteQuiet(time.Unix(1000, 0).Add(time.Hour), 2*time.Hour); len(got) != 0 {
		t.Fatalf("promoted too early: %v", got)
	}
	// A new rule for db resets its quiet period, not web's.
	r2 := conn(2, "batch", "vigil.batch", "db", "vigil.db", 5432, dpi.PostgreSQL, 1000+3600)
	e.Judge(&r2)
	got := e.PromoteQuiet(time.Unix(1000, 0).Add(2*time.Hour), 2*time.Hour)
	if len(got) != 1 || got[0] != "vigil.web" {
		t.Fatalf("promoted %v, want only vigil.web", got)
	}
	r3 := conn(3, "web", "vigil.web", "cache", "vigil.cache", 6379, dpi.Redis, 1000+7300)
	e.Judge(&r3)
	if r3.Verdict != "violate" {
		t.Errorf("web after promotion: %q, want violate", r3.Verdict)
	}
	if evs := events.List("policy.promoted", 0); len(evs) != 1 || evs[0].Detail["group"] != "vigil.web" {
		t.Errorf("events = %+v", evs)
	}
}

func TestCustomGroupRules(t *testing.T) {
	events := NewEvents(10)
	subjects := func(id string) (policy.Subject, bool) {
		if id == "api-id" {
			return policy.Subject{Name: "api", Labels: map[string]string{"tier": "web"}}, true
		}
		return policy.Subject{}, false
	}
	e, err := NewPolicyEngine(policy.Policy{DefaultMode: policy.ModeMonitor}, nil, events, subjects, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	crit, err := policy.ParseCriterion("label:tier=web")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.PutGroup(policy.Group{Name: "web-tier", Criteria: []policy.Criterion{crit}, Mode: policy.ModeMonitor}); err != nil {
		t.Fatal(err)
	}
	ports, _ := policy.ParsePorts("tcp/5432")
	if _, err := e.AddRule(policy.Rule{From: "web-tier", To: "vigil.db", Ports: ports}); err != nil {
		t.Fatal(err)
	}
	in := conn(1, "api", "vigil.api", "db", "vigil.db", 5432, dpi.PostgreSQL, 1)
	e.Judge(&in)
	out := conn(2, "batch", "vigil.batch", "db", "vigil.db", 5432, dpi.PostgreSQL, 2)
	e.Judge(&out)
	if in.Verdict != "allow" || out.Verdict != "violate" {
		t.Errorf("member of the custom group: %q, outsider: %q", in.Verdict, out.Verdict)
	}
	if err := e.PutGroup(policy.Group{Name: "bad group"}); err == nil {
		t.Error("an invalid group was accepted")
	}
}
