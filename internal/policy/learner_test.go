package policy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)

func newLearner(t testing.TB, maxPorts int, rules ...Rule) *Learner {
	t.Helper()
	l, err := NewLearner(LearnerConfig{MaxPorts: maxPorts}, rules)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func learn(t testing.TB, l *Learner, c Conn, at time.Time) Change {
	t.Helper()
	ch, err := l.Learn(c, at)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// readable prints the learned rules the way `vigil rules` will.
func readable(rules []Rule) string {
	var b strings.Builder
	for _, r := range rules {
		fmt.Fprintf(&b, "%s\n", r)
	}
	return b.String()
}

// flow is what the agent sees; conn is what it hands the policy. The client's workload
// and port are dropped: rules are between groups, on the server's port.
type flow struct {
	clientWorkload, clientGroup string
	clientPort                  uint16
	serverGroup                 string
	serverPort                  uint16
	app                         string
}

func (f flow) conn() Conn {
	return Conn{From: f.clientGroup, To: f.serverGroup, Proto: ProtoTCP, Port: f.serverPort, App: f.app}
}

func TestLearnReplicasAndEphemeralPorts(t *testing.T) {
	l := newLearner(t, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 100 {
		f := flow{
			clientWorkload: fmt.Sprintf("web-%d", i%5), // five replicas
			clientGroup:    "vigil.web",
			clientPort:     uint16(32768 + rng.IntN(28232)), // ephemeral
			serverGroup:    "vigil.db",
			serverPort:     5432,
			app:            "postgresql",
		}
		ch := learn(t, l, f.conn(), t0.Add(time.Duration(i)*time.Second))
		if i > 0 && (len(ch.Added) != 0 || ch.Recompile()) {
			t.Fatalf("flow %d from %s:%d added %v", i, f.clientWorkload, f.clientPort, ch.Added)
		}
	}
	rules := l.Rules()
	if got, want := readable(rules), "vigil.web -> vigil.db tcp/5432 [postgresql] allow (learned)\n"; got != want {
		t.Fatalf("rules:\n%swant:\n%s", got, want)
	}
	r := rules[0]
	if r.Hits != 100 || !r.Created.Equal(t0) || !r.LastHit.Equal(t0.Add(99*time.Second)) {
		t.Errorf("hits %d, created %v, last %v", r.Hits, r.Created, r.LastHit)
	}
}

// When the capture misses a handshake and the ends are swapped, the "server port" is the
// client's ephemeral port: a new one each time. Those collapse instead of piling up.
func TestLearnSwappedEndsCollapse(t *testing.T) {
	l := newLearner(t, 0)
	for i := range 50 {
		learn(t, l, Conn{From: "vigil.db", To: "vigil.web", Proto: ProtoTCP, Port: uint16(40000 + 7*i)}, t0)
	}
	if got, want := readable(l.Rules()), "vigil.db -> vigil.web tcp/any allow (learned)\n"; got != want {
		t.Errorf("rules:\n%swant:\n%s", got, want)
	}
	if r := l.Rules()[0]; r.Hits != 50 {
		t.Errorf("hits = %d, want 50", r.Hits)
	}
}

func TestLearnPortCollapse(t *testing.T) {
	type step struct {
		port    uint16
		app     string
		added   []string // ports of added rules
		removed int
		rules   string
	}
	tests := []struct {
		name     string
		maxPorts int
		steps    []step
	}{
		{
			name: "contiguous ports collapse to a range", maxPorts: 3,
			steps: []step{
				{port: 8001, app: "http", added: []string{"tcp/8001"}},
				{port: 8000, app: "http", added: []string{"tcp/8000"}},
				{port: 8003, app: "grpc", added: []string{"tcp/8003"}},
				{port: 8002, app: "http", added: []string{"tcp/8000-8003"}, removed: 3,
					rules: "w -> s tcp/8000-8003 [grpc,http] allow (learned)\n"},
				{port: 8002, app: "http"}, // inside: a hit
				{port: 8004, app: "http", added: []string{"tcp/8000-8004"}, removed: 1, // adjacent: extends
					rules: "w -> s tcp/8000-8004 [grpc,http] allow (learned)\n"},
				{port: 7999, app: "http", added: []string{"tcp/7999-8004"}, removed: 1},
				{port: 9000, app: "http", added: []string{"tcp/9000"}, // apart: its own rule
					rules: "w -> s tcp/7999-8004 [grpc,http] allow (learned)\nw -> s tcp/9000 [http] allow (learned)\n"},
				{port: 8006, app: "http", added: []string{"tcp/8006"}},
				{port: 8005, app: "http", added: []string{"tcp/7999-8006"}, removed: 2, // bridges to 8006
					rules: "w -> s tcp/7999-8006 [grpc,http] allow (learned)\nw -> s tcp/9000 [http] allow (learned)\n"},
				{port: 9002, app: "http", added: []string{"tcp/9002"}},
				{port: 9004, app: "http", added: []string{"tcp/9004"}},
				{port: 9006, app: "http", added: []string{"tcp/any"}, removed: 4,
					rules: "w -> s tcp/any [grpc,http] allow (learned)\n"},
				{port: 1, app: "http"},
			},
		},
		{
			name: "scattered ports collapse to any", maxPorts: 0,
			steps: []step{
				{port: 22, added: []string{"tcp/22"}},
				{port: 80, added: []string{"tcp/80"}},
				{port: 443, added: []string{"tcp/443"}},
				{port: 3306, added: []string{"tcp/3306"}},
				{port: 5432, added: []string{"tcp/5432"}},
				{port: 6379, added: []string{"tcp/6379"}},
				{port: 8080, added: []string{"tcp/8080"}},
				{port: 9200, added: []string{"tcp/9200"}, rules: "" +
					"w -> s tcp/22 allow (learned)\nw -> s tcp/80 allow (learned)\nw -> s tcp/443 allow (learned)\n" +
					"w -> s tcp/3306 allow (learned)\nw -> s tcp/5432 allow (learned)\nw -> s tcp/6379 allow (learned)\n" +
					"w -> s tcp/8080 allow (learned)\nw -> s tcp/9200 allow (learned)\n"},
				{port: 9300, added: []string{"tcp/any"}, removed: 8, rules: "w -> s tcp/any allow (learned)\n"},
			},
		},
		{
			name: "limit of one", maxPorts: 1,
			steps: []step{
				{port: 53, app: "dns", added: []string{"tcp/53"}},
				{port: 54, app: "dns", added: []string{"tcp/53-54"}, removed: 1, rules: "w -> s tcp/53-54 [dns] allow (learned)\n"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLearner(t, tt.maxPorts)
			for i, s := range tt.steps {
				ch := learn(t, l, Conn{From: "w", To: "s", Proto: ProtoTCP, Port: s.port, App: s.app}, t0.Add(time.Duration(i)*time.Second))
				var added []string
				for _, r := range ch.Added {
					added = append(added, FormatPorts(r.Ports))
				}
				if !slices.Equal(added, s.added) || len(ch.Removed) != s.removed {
					t.Fatalf("step %d (port %d): added %v, removed %d; want %v, %d", i, s.port, added, len(ch.Removed), s.added, s.removed)
				}
				if s.rules != "" {
					if got := readable(l.Rules()); got != s.rules {
						t.Fatalf("step %d: rules:\n%swant:\n%s", i, got, s.rules)
					}
				}
			}
			var hits uint64
			for _, r := range l.Rules() {
				hits += r.Hits
				if !r.Created.Equal(t0) && len(l.Rules()) == 1 {
					t.Errorf("a collapsed rule forgot when it was created: %v", r.Created)
				}
			}
			if hits != uint64(len(tt.steps)) {
				t.Errorf("hits = %d, want %d (one per connection)", hits, len(tt.steps))
			}
		})
	}
}

func TestLearnCollapseIsPerKey(t *testing.T) {
	l := newLearner(t, 2)
	for _, c := range []Conn{
		{From: "a", To: "s", Proto: ProtoTCP, Port: 1},
		{From: "a", To: "s", Proto: ProtoTCP, Port: 2},
		{From: "b", To: "s", Proto: ProtoTCP, Port: 3}, // another client group
		{From: "a", To: "s", Proto: ProtoUDP, Port: 4}, // another protocol
		{From: "a", To: "t", Proto: ProtoTCP, Port: 5}, // another server group
	} {
		learn(t, l, c, t0)
	}
	want := "a -> s tcp/1 allow (learned)\na -> s tcp/2 allow (learned)\na -> s udp/4 allow (learned)\n" +
		"a -> t tcp/5 allow (learned)\nb -> s tcp/3 allow (learned)\n"
	if got := readable(l.Rules()); got != want {
		t.Errorf("rules:\n%swant:\n%s", got, want)
	}
}

func TestLearnExternalNames(t *testing.T) {
	l := newLearner(t, 0)
	learn(t, l, Conn{From: "vigil.web", To: ExternalEndpoint("API.Example.com."), Proto: ProtoTCP, Port: 443, App: "tls"}, t0)
	learn(t, l, Conn{From: "vigil.web", To: "external:api.example.com", Proto: ProtoTCP, Port: 443, App: "tls"}, t0)
	learn(t, l, Conn{From: "vigil.web", To: ExternalEndpoint(""), Proto: ProtoUDP, Port: 53, App: "dns"}, t0)
	learn(t, l, Conn{From: "External:CDN.example.net", To: "vigil.web", Proto: ProtoTCP, Port: 80, App: "http"}, t0)
	want := "external:cdn.example.net -> vigil.web tcp/80 [http] allow (learned)\n" +
		"vigil.web -> external udp/53 [dns] allow (learned)\n" +
		"vigil.web -> external:api.example.com tcp/443 [tls] allow (learned)\n"
	if got := readable(l.Rules()); got != want {
		t.Errorf("rules:\n%swant:\n%s", got, want)
	}
}

func TestLearnApps(t *testing.T) {
	tests := []struct {
		name string
		apps []string // one connection each, in order
		want []string // the rule's apps; nil: any application
		rec  []bool   // whether each call needs a recompile
	}{
		{"one app", []string{"http", "http"}, []string{"http"}, []bool{true, false}},
		{"apps join, sorted", []string{"http", "grpc", "http2", "grpc"}, []string{"grpc", "http", "http2"}, []bool{true, true, true, false}},
		{"unknown first: any", []string{"unknown", "http"}, nil, []bool{true, false}},
		{"unknown later lifts the list", []string{"http", "", "http"}, nil, []bool{true, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLearner(t, 0)
			for i, app := range tt.apps {
				ch := learn(t, l, Conn{From: "a", To: "b", Proto: ProtoTCP, Port: 80, App: app}, t0)
				if ch.Recompile() != tt.rec[i] {
					t.Errorf("connection %d (%q): Recompile = %v", i, app, ch.Recompile())
				}
			}
			r := l.Rules()
			if len(r) != 1 || !slices.Equal(r[0].Apps, tt.want) || (tt.want == nil) != (r[0].Apps == nil) {
				t.Errorf("rules %v, want apps %v", r, tt.want)
			}
		})
	}
}

func TestLearnIdempotentAndDeterministic(t *testing.T) {
	conns := []Conn{
		{From: "vigil.web", To: "vigil.db", Proto: ProtoTCP, Port: 5432, App: "postgresql"},
		{From: "vigil.web", To: "external:api.example.com", Proto: ProtoTCP, Port: 443, App: "tls"},
		{From: "vigil.web", To: "host", Proto: ProtoICMP},
		{From: "address:10.0.0.9", To: "vigil.web", Proto: ProtoTCP, Port: 9100},
	}
	a := newLearner(t, 0)
	for _, c := range conns {
		ch := learn(t, a, c, t0)
		if len(ch.Added) != 1 || !ch.Recompile() {
			t.Fatalf("first %+v: %+v", c, ch)
		}
		again := learn(t, a, c, t0.Add(time.Minute))
		if len(again.Added) != 0 || len(again.Removed) != 0 || len(again.Updated) != 1 || again.Recompile() {
			t.Fatalf("again %+v: %+v", c, again)
		}
		if u := again.Updated[0]; u.ID != ch.Added[0].ID || u.Hits != 2 || !u.LastHit.Equal(t0.Add(time.Minute)) || !u.Created.Equal(t0) {
			t.Errorf("updated %+v", u)
		}
	}
	// Another learner, in another order: the same rules and ids.
	b := newLearner(t, 0)
	for _, c := range slices.Backward(conns) {
		learn(t, b, c, t0)
	}
	ids := func(rules []Rule) (out []string) {
		for _, r := range rules {
			out = append(out, r.ID)
		}
		return out
	}
	if !slices.Equal(ids(a.Rules()), ids(b.Rules())) {
		t.Errorf("ids differ: %v, %v", ids(a.Rules()), ids(b.Rules()))
	}
	for _, r := range a.Rules() {
		if r.ID != LearnedRuleID(r.From, r.To, r.Ports[0]) || !strings.HasPrefix(r.ID, "l-") || len(r.ID) != 18 {
			t.Errorf("id %q of %s is not derived from its key", r.ID, r)
		}
		if err := r.Validate(); err != nil {
			t.Error(err)
		}
	}
	// A restart: the stored rules are loaded and the same connections come again.
	c := newLearner(t, 0, a.Rules()...)
	for _, conn := range conns {
		if ch := learn(t, c, conn, t0.Add(time.Hour)); len(ch.Added) != 0 {
			t.Errorf("after restart %+v added %v", conn, ch.Added)
		}
	}
	if c.Len() != len(conns) {
		t.Errorf("%d rules after restart, want %d", c.Len(), len(conns))
	}
}

func TestLearnThenEvaluate(t *testing.T) {
	p := &Policy{Rules: []Rule{rule(t, "u1", "vigil.web", "vigil.cache", "tcp/6379", "allow", "user")}}
	l := newLearner(t, 0, p.LearnedRules()...)
	e := compile(t, p)
	conns := []Conn{
		{From: "vigil.web", To: "vigil.db", Proto: ProtoTCP, Port: 5432, App: "postgresql"},
		{From: "vigil.web", To: "vigil.cache", Proto: ProtoTCP, Port: 6379, App: "redis"},
		{From: "vigil.web", To: "external:api.example.com", Proto: ProtoTCP, Port: 443, App: "tls"},
	}
	for round := range 2 {
		for _, c := range conns {
			v := e.Evaluate(c)
			e.Count(v, t0)
			if v.Action != ActionLearn {
				continue
			}
			if round > 0 {
				t.Errorf("round %d: %+v still learns", round, c)
			}
			ch := learn(t, l, c, t0)
			if ch.Recompile() {
				p.SetLearned(l.Rules())
				e = compile(t, p)
			}
		}
	}
	if len(p.Rules) != 3 || p.Rules[0].ID != "u1" {
		t.Fatalf("policy rules: %v", p.Rules)
	}
	// Monitor now: the same connections are allowed by rules, a new one is a violation.
	for _, c := range conns {
		c.ToMode = ModeMonitor
		if v := e.Evaluate(c); v.Action != ActionAllow {
			t.Errorf("%+v: %+v", c, v)
		}
	}
	v := e.Evaluate(Conn{From: "vigil.intruder", To: "vigil.db", Proto: ProtoTCP, Port: 5432, ToMode: ModeMonitor})
	if v.Action != ActionViolate || v.RuleID != "" {
		t.Errorf("new client: %+v", v)
	}
	hits := e.TakeHits()
	l.AddHits(hits)
	p.AddHits(hits)
	for _, r := range l.Rules() {
		if r.Hits != 2 { // learned once, counted once by the evaluator
			t.Errorf("%s: %d hits", r, r.Hits)
		}
	}
}

func TestLearnErrors(t *testing.T) {
	l := newLearner(t, 0)
	tests := []struct {
		c    Conn
		want error
	}{
		{Conn{From: "a", To: "b", Proto: ProtoTCP, Port: 1, ToMode: ModeMonitor}, ErrNotDiscover},
		{Conn{From: "a", To: "b", Proto: ProtoTCP, Port: 1, FromMode: ModeProtect}, ErrNotDiscover},
		{Conn{From: "", To: "b", Proto: ProtoTCP, Port: 1}, ErrInvalid},
		{Conn{From: "a", To: "external:", Proto: ProtoTCP, Port: 1}, ErrInvalid},
		{Conn{From: "a", To: "b", Proto: ProtoAny, Port: 1}, ErrInvalid},
		{Conn{From: "a", To: "b", Proto: 47, Port: 1}, ErrInvalid},
		{Conn{From: "a", To: "b", Proto: ProtoTCP, Port: 0}, ErrInvalid},
	}
	for _, tt := range tests {
		ch, err := l.Learn(tt.c, t0)
		if !errors.Is(err, tt.want) {
			t.Errorf("Learn(%+v) = %v, want %v", tt.c, err, tt.want)
		}
		if len(ch.Added)+len(ch.Updated)+len(ch.Removed) != 0 {
			t.Errorf("Learn(%+v) changed %+v", tt.c, ch)
		}
	}
	if l.Len() != 0 {
		t.Errorf("%d rules after errors", l.Len())
	}
}

func TestNewLearnerErrors(t *testing.T) {
	learned := rule(t, "l1", "a", "b", "tcp/80", "allow", "learned")
	span := rule(t, "l2", "a", "b", "tcp/8000-8100", "allow", "learned")
	tests := []struct {
		name  string
		rules []Rule
		msg   string
	}{
		{"user rule", []Rule{rule(t, "u", "a", "b", "tcp/80", "allow", "user")}, "origin is user"},
		{"invalid", []Rule{{ID: "x", Origin: OriginLearned}}, "invalid"},
		{"two ports", []Rule{rule(t, "l", "a", "b", "tcp/80,tcp/81", "allow", "learned")}, "ports of one protocol"},
		{"any protocol", []Rule{rule(t, "l", "a", "b", "any", "allow", "learned")}, "ports of one protocol"},
		{"same id", []Rule{learned, learned}, "id used twice"},
		{"same key", []Rule{learned, rule(t, "l9", "a", "b", "tcp/80", "allow", "learned")}, `same key as rule "l1"`},
		{"two spans", []Rule{span, rule(t, "l3", "a", "b", "tcp/any", "allow", "learned")}, "already has the collapsed rule"},
	}
	for _, tt := range tests {
		_, err := NewLearner(LearnerConfig{}, tt.rules)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %v, want ErrInvalid saying %q", tt.name, err, tt.msg)
		}
	}
	// Rules stored with other ids still key by their content.
	l := newLearner(t, 0, learned, span)
	if ch := learn(t, l, Conn{From: "a", To: "b", Proto: ProtoTCP, Port: 8050}, t0); len(ch.Updated) != 1 || ch.Updated[0].ID != "l2" {
		t.Errorf("loaded span: %+v", ch)
	}
}

func TestForget(t *testing.T) {
	l := newLearner(t, 0)
	ch := learn(t, l, Conn{From: "a", To: "b", Proto: ProtoTCP, Port: 80, App: "http"}, t0)
	id := ch.Added[0].ID
	r, ok := l.Forget(id)
	if !ok || r.ID != id || l.Len() != 0 {
		t.Fatalf("Forget = %v, %v; %d left", r, ok, l.Len())
	}
	if _, ok := l.Forget(id); ok {
		t.Error("forgot twice")
	}
	// Deleted by the user, learned again if seen again.
	if ch := learn(t, l, Conn{From: "a", To: "b", Proto: ProtoTCP, Port: 80, App: "http"}, t0); len(ch.Added) != 1 || ch.Added[0].ID != id || ch.Added[0].Hits != 1 {
		t.Errorf("relearned: %+v", ch)
	}
}

func TestSetLearned(t *testing.T) {
	p := &Policy{Rules: []Rule{
		rule(t, "l-old", "a", "b", "tcp/1", "allow", "learned"),
		rule(t, "u1", "a", "b", "tcp/2", "deny", "user"),
		rule(t, "i1", "a", "b", "tcp/3", "allow", "imported"),
	}}
	if got := p.LearnedRules(); len(got) != 1 || got[0].ID != "l-old" {
		t.Errorf("LearnedRules = %v", got)
	}
	p.SetLearned([]Rule{rule(t, "l-new", "a", "b", "tcp/4", "allow", "learned")})
	var ids []string
	for _, r := range p.Rules {
		ids = append(ids, r.ID)
	}
	if fmt.Sprint(ids) != "[u1 i1 l-new]" {
		t.Errorf("rules after SetLearned: %v", ids)
	}
}
