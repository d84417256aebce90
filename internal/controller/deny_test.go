package controller

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/dpi"
	"github.com/vigil-sec/vigil/internal/enforce"
	"github.com/vigil-sec/vigil/internal/flow"
	"github.com/vigil-sec/vigil/internal/policy"
	"github.com/vigil-sec/vigil/internal/workload"
)

// classifier stands in for the agent's: it names the test's two workloads.
func classifier(ap netip.AddrPort) flow.Endpoint {
	ep := flow.Endpoint{IP: ap.Addr(), Port: ap.Port(), Kind: flow.KindExternal, Group: "external"}
	switch ap.Addr().String() {
	case "172.17.0.9":
		ep.Kind, ep.Workload, ep.Name, ep.Group = flow.KindWorkload, "intruder-id", "intruder", "vigil.intruder"
	case "172.17.0.3":
		ep.Kind, ep.Workload, ep.Name, ep.Group = flow.KindWorkload, "db-id", "db", "vigil.db"
	}
	return ep
}

func denyEvents(t *testing.T, events *Events) []Event {
	t.Helper()
	var out []Event
	for _, ev := range events.List("violation", 0) {
		if ev.Detail["verdict"] == "deny" {
			out = append(out, ev)
		}
	}
	return out
}

func TestDeniedCountsOnceWithCapture(t *testing.T) {
	e, events := newEngine(t, nil)
	if err := e.SetMode("vigil.db", policy.ModeProtect); err != nil {
		t.Fatal(err)
	}
	// Capture sees the refused SYN on the db's veth...
	r := conn(1, "intruder", "vigil.intruder", "db", "vigil.db", 8080, "", 10)
	e.Judge(&r)
	if r.Verdict != "deny" {
		t.Fatalf("verdict %q, want deny", r.Verdict)
	}
	// ...and the db's table logs it.
	d := enforce.Denied{Time: r.FirstSeen.Add(time.Millisecond), Proto: 6, In: true,
		Src: netip.AddrPortFrom(r.Client.IP, r.Client.Port), Dst: netip.AddrPortFrom(r.Server.IP, r.Server.Port)}
	e.Denied(d, classifier)
	evs := denyEvents(t, events)
	if len(evs) != 1 || count(evs[0].Detail["count"]) != 1 {
		t.Fatalf("deny events %+v, want one with count 1", evs)
	}
	if got := addSource(evs[0].Detail["seen_by"], ""); !slices.Contains(got, seenByCapture) || !slices.Contains(got, seenByKernel) {
		t.Errorf("seen_by %v, want capture and kernel", got)
	}
	// A second attempt from another port counts again, whichever source reports first.
	d.Src = netip.AddrPortFrom(d.Src.Addr(), d.Src.Port()+1)
	e.Denied(d, classifier)
	r2 := conn(1, "intruder", "vigil.intruder", "db", "vigil.db", 8080, "", 11)
	r2.Client.Port = d.Src.Port()
	e.Judge(&r2)
	evs = denyEvents(t, events)
	if len(evs) != 1 || count(evs[0].Detail["count"]) != 2 {
		t.Fatalf("deny events %+v, want one with count 2", evs)
	}
}

func TestDeniedEgressIsKnownOnlyFromTheKernel(t *testing.T) {
	e, events := newEngine(t, nil)
	if err := e.SetMode("vigil.db", policy.ModeProtect); err != nil {
		t.Fatal(err)
	}
	e.Denied(enforce.Denied{Time: time.Unix(5, 0), Proto: 6,
		Src: netip.MustParseAddrPort("172.17.0.3:41000"), Dst: netip.MustParseAddrPort("198.18.0.1:443")}, classifier)
	evs := denyEvents(t, events)
	if len(evs) != 1 {
		t.Fatalf("deny events %+v, want one", evs)
	}
	d := evs[0].Detail
	if d["from"] != "vigil.db" || d["to"] != "external" || d["port"] != uint16(443) || d["proto"] != "tcp" {
		t.Errorf("event detail %+v", d)
	}
	if cl, _ := d["client"].(flow.Endpoint); cl.Workload != "db-id" {
		t.Errorf("client %+v, want the db workload", d["client"])
	}
}

func TestAppMismatchIsResetInProtect(t *testing.T) {
	e, events := newEngine(t, nil)
	if _, err := e.AddRule(policy.Rule{From: "vigil.web", To: "vigil.cache", Ports: []policy.PortRange{{Proto: policy.ProtoTCP, First: 6379, Last: 6379}},
		Apps: []string{"redis"}, Action: policy.ActionAllow}); err != nil {
		t.Fatal(err)
	}
	if err := e.SetMode("vigil.cache", policy.ModeProtect); err != nil {
		t.Fatal(err)
	}
	resets := make(chan flow.Record, 1)
	e.SetReset(func(r flow.Record, done func(bool, error)) { resets <- r; done(true, nil) })

	// Redis: allowed provisionally at birth, confirmed once DPI names it.
	ok := conn(1, "web-1", "vigil.web", "cache", "vigil.cache", 6379, "", 1)
	e.Judge(&ok)
	if ok.Verdict != "allow" {
		t.Fatalf("provisional verdict %q, want allow", ok.Verdict)
	}
	ok.App = dpi.Redis
	e.Rejudge(&ok)
	if ok.Verdict != "allow" || len(events.List("violation", 0)) != 0 {
		t.Fatalf("redis: verdict %q, events %+v", ok.Verdict, events.List("violation", 0))
	}

	// HTTP on the redis port: a deny, and the connection is reset.
	bad := conn(2, "web-1", "vigil.web", "cache", "vigil.cache", 6379, "", 2)
	e.Judge(&bad)
	bad.App = dpi.HTTP
	e.Rejudge(&bad)
	if bad.Verdict != "deny" {
		t.Fatalf("http on the redis port: verdict %q, want deny", bad.Verdict)
	}
	select {
	case r := <-resets:
		if r.ID != bad.ID {
			t.Errorf("reset flow %d, want %d", r.ID, bad.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the connection was not reset")
	}
	evs := denyEvents(t, events)
	if len(evs) != 1 || evs[0].Detail["app"] != "http" || evs[0].Detail["provisional_rule"] == nil {
		t.Fatalf("events %+v", evs)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, ev := range events.List("violation", 0) {
			if ev.ID == evs[0].ID && ev.Detail["reset"] == true {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error("the event does not say the connection was reset")
}

func TestEnforcerCutsAndResets(t *testing.T) {
	e, _ := newEngine(t, nil)
	r := conn(1, "web-1", "vigil.web", "db", "vigil.db", 5432, dpi.PostgreSQL, 1)
	e.Judge(&r)
	ws := []workload.Workload{ctr("db-id", "db", "vigil.db", "172.17.0.3"), ctr("w1", "web-1", "vigil.web", "172.17.0.9")}
	k := &fakeKernel{applied: map[string]enforce.Plan{}}
	enf := NewEnforcer(e, func() []workload.Workload { return ws }, k, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := e.SetMode("vigil.db", policy.ModeProtect); err != nil {
		t.Fatal(err)
	}
	enf.Reconcile()
	p := k.applied["/proc/db-id/ns/net"]
	if len(k.cuts) != 1 || k.cuts[0] != p.NetNS || !slices.Equal(p.Addrs, []netip.Addr{netip.MustParseAddr("172.17.0.3")}) {
		t.Fatalf("cuts %v, plan addrs %v", k.cuts, p.Addrs)
	}
	enf.Reconcile() // unchanged: neither applied nor cut again
	if len(k.cuts) != 1 {
		t.Errorf("cuts %v after an unchanged reconcile", k.cuts)
	}
	// The table permits web -> db tcp/5432: a connection denied on other grounds (its
	// application, say) is reset from db's namespace.
	if ok, err := enf.reset(r); !ok || err != nil || len(k.resets) != 1 || k.resets[0] != "/proc/db-id/ns/net 172.17.0.3:5432 172.17.0.9:40001" {
		t.Errorf("reset = %v, %v; resets %v", ok, err, k.resets)
	}
	// One the table refuses is the kernel's business: nothing to reset.
	refused := r
	refused.Server.Port = 22
	if ok, _ := enf.reset(refused); ok {
		t.Error("a connection the table refuses was reset")
	}
	other := r
	other.Server.Workload = "nobody"
	if ok, _ := enf.reset(other); ok {
		t.Error("reset of a connection without a protected end said it found one")
	}
	// Queued resets are served by Run.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go enf.Run(ctx, false)
	done := make(chan bool, 1)
	if !enf.Reset(ResetRequest{Flow: r, Done: func(ok bool, err error) { done <- ok && err == nil }}) {
		t.Fatal("reset queue full")
	}
	select {
	case ok := <-done:
		if !ok {
			t.Error("queued reset failed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("queued reset not served")
	}
}

func TestDeniedConnectionsAreHandedToReset(t *testing.T) {
	e, events := newEngine(t, nil)
	if _, err := e.AddRule(policy.Rule{From: "vigil.web", To: "vigil.cache", Ports: []policy.PortRange{{Proto: policy.ProtoTCP, First: 6379, Last: 6379}},
		Apps: []string{"redis"}, Action: policy.ActionAllow}); err != nil {
		t.Fatal(err)
	}
	if err := e.SetMode("vigil.cache", policy.ModeProtect); err != nil {
		t.Fatal(err)
	}
	var asked []uint64
	e.SetReset(func(r flow.Record, done func(bool, error)) {
		asked = append(asked, r.ID)
		done(r.ID == 3, nil) // the enforcer finds only the first let through by a table
	})
	// DPI named the application before the first report: judged deny at once.
	bad := conn(3, "web-1", "vigil.web", "cache", "vigil.cache", 6379, dpi.HTTP, 3)
	e.Judge(&bad)
	syn := conn(4, "web-1", "vigil.web", "cache", "vigil.cache", 6380, "", 4)
	e.Judge(&syn)
	udp := conn(5, "web-1", "vigil.web", "cache", "vigil.cache", 53, "", 5)
	udp.Proto = "udp"
	e.Judge(&udp)
	if bad.Verdict != "deny" || syn.Verdict != "deny" || udp.Verdict != "deny" {
		t.Fatalf("verdicts %q %q %q, want deny", bad.Verdict, syn.Verdict, udp.Verdict)
	}
	if !slices.Equal(asked, []uint64{3, 4}) {
		t.Errorf("resets asked for flows %v, want the TCP ones, 3 and 4", asked)
	}
	for _, ev := range denyEvents(t, events) {
		want := ev.Detail["port"] == uint16(6379)
		if got := ev.Detail["reset"] == true; got != want {
			t.Errorf("event on port %v: reset %v, want %v", ev.Detail["port"], got, want)
		}
	}
}
