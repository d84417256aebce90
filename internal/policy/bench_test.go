package policy

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

var benchApps = []string{"http", "grpc", "postgresql", "redis", "mysql", "tls", "dns", "kafka"}

// benchPolicy builds a policy of groups groups and rules rules, with the mix a real
// policy has: mostly learned single ports, some ranges, "tcp/any" and "any", user allow
// and deny rules, a third naming applications.
func benchPolicy(tb testing.TB, groups, rules int) *Policy {
	rng := rand.New(rand.NewPCG(42, 4242))
	name := func() string { return fmt.Sprintf("vigil.svc-%04d", rng.IntN(groups)) }
	p := &Policy{DefaultMode: ModeMonitor}
	for i := range groups {
		p.Groups = append(p.Groups, Group{Name: fmt.Sprintf("vigil.svc-%04d", i), Origin: GroupLearned, Mode: Mode(i % 3)})
	}
	for i := range rules {
		r := Rule{ID: fmt.Sprintf("r%05d", i), From: name(), To: name(), Action: ActionAllow, Origin: OriginLearned, Created: time.Unix(0, 0)}
		switch n := rng.IntN(100); {
		case n < 70:
			r.Ports = []PortRange{Port(ProtoTCP, uint16(1+rng.IntN(65535)))}
		case n < 80:
			r.Ports = []PortRange{Port(ProtoUDP, uint16(1+rng.IntN(65535)))}
		case n < 90:
			lo := uint16(1 + rng.IntN(60000))
			r.Ports = []PortRange{PortSpan(ProtoTCP, lo, lo+uint16(rng.IntN(1000)))}
		case n < 95:
			r.Ports = []PortRange{AnyPort(ProtoTCP)}
		default:
			r.Ports = []PortRange{AnyPort(ProtoAny)}
		}
		if rng.IntN(3) == 0 {
			r.Apps = []string{benchApps[rng.IntN(len(benchApps))]}
		}
		switch n := rng.IntN(100); {
		case n < 5:
			r.Origin, r.Action = OriginUser, ActionDeny
		case n < 20:
			r.Origin = OriginUser
		}
		p.Rules = append(p.Rules, r)
	}
	return p
}

// benchConns returns connections of which about two thirds hit a rule (on its pair,
// inside its ports) and the rest miss: a known pair on another port, or a pair of groups
// with no rule.
func benchConns(p *Policy, n int) []Conn {
	rng := rand.New(rand.NewPCG(7, 77))
	conns := make([]Conn, n)
	for i := range conns {
		r := &p.Rules[rng.IntN(len(p.Rules))]
		pr := r.Ports[0]
		c := Conn{From: r.From, To: r.To, Proto: pr.Proto, Port: pr.First, App: benchApps[rng.IntN(len(benchApps))]}
		if pr.Proto == ProtoAny {
			c.Proto = ProtoTCP
		}
		if pr.Last > pr.First {
			c.Port = pr.First + uint16(rng.IntN(int(pr.Last-pr.First)+1))
		}
		if len(r.Apps) > 0 && rng.IntN(2) == 0 {
			c.App = r.Apps[0]
		}
		switch rng.IntN(6) {
		case 0:
			c.Port = uint16(1 + rng.IntN(65535))
		case 1:
			c.From = p.Groups[rng.IntN(len(p.Groups))].Name
		}
		c.FromMode, c.ToMode = Mode(rng.IntN(3)), Mode(rng.IntN(3))
		conns[i] = c
	}
	return conns
}

// BenchmarkEvaluate is the benchmark: 1,000 groups, 10,000 rules, one goroutine.
func BenchmarkEvaluate(b *testing.B) {
	p := benchPolicy(b, 1000, 10000)
	e, err := p.Compile()
	if err != nil {
		b.Fatal(err)
	}
	conns := benchConns(p, 1<<14)
	matched := 0
	for _, c := range conns {
		if e.Evaluate(c).RuleID != "" {
			matched++
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var v Verdict
	for i := 0; b.Loop(); i++ {
		v = e.Evaluate(conns[i&(len(conns)-1)])
	}
	_ = v
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verdicts/s")
	b.ReportMetric(float64(matched)/float64(len(conns))*100, "%matched")
}

// BenchmarkEvaluateAndCount adds counting the hit, as the agent will.
func BenchmarkEvaluateAndCount(b *testing.B) {
	p := benchPolicy(b, 1000, 10000)
	e, err := p.Compile()
	if err != nil {
		b.Fatal(err)
	}
	conns := benchConns(p, 1<<14)
	at := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e.Count(e.Evaluate(conns[i&(len(conns)-1)]), at)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verdicts/s")
}

// BenchmarkEvaluateParallel evaluates from GOMAXPROCS goroutines at once.
func BenchmarkEvaluateParallel(b *testing.B) {
	p := benchPolicy(b, 1000, 10000)
	e, err := p.Compile()
	if err != nil {
		b.Fatal(err)
	}
	conns := benchConns(p, 1<<14)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(conns))
		for pb.Next() {
			e.Evaluate(conns[i&(len(conns)-1)])
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verdicts/s")
}

// BenchmarkCompile is what a policy change costs.
func BenchmarkCompile(b *testing.B) {
	p := benchPolicy(b, 1000, 10000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Compile(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLearnRepeat is learning a connection already learned (before a recompile).
func BenchmarkLearnRepeat(b *testing.B) {
	l, err := NewLearner(LearnerConfig{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	c := Conn{From: "vigil.web", To: "vigil.db", Proto: ProtoTCP, Port: 5432, App: "postgresql"}
	at := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Learn(c, at); err != nil {
			b.Fatal(err)
		}
	}
}
