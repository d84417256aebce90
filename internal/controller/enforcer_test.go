package controller

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/vigil-sec/vigil/internal/dpi"
	"github.com/vigil-sec/vigil/internal/enforce"
	"github.com/vigil-sec/vigil/internal/policy"
	"github.com/vigil-sec/vigil/internal/workload"
)

type fakeKernel struct {
	applied map[string]enforce.Plan
	removed []string
	applies int
	cuts    []string
	resets  []string
}

func (k *fakeKernel) Apply(p enforce.Plan) error { k.applied[p.NetNS] = p; k.applies++; return nil }
func (k *fakeKernel) CutDisallowed(p enforce.Plan) (int, error) {
	k.cuts = append(k.cuts, p.NetNS)
	return 0, nil
}
func (k *fakeKernel) ListenDenied(ctx context.Context, ns string, fn func(enforce.Denied)) error {
	<-ctx.Done()
	return nil
}
func (k *fakeKernel) Reset(ns string, inode uint64, local, remote netip.AddrPort) error {
	k.resets = append(k.resets, ns+" "+local.String()+" "+remote.String())
	return nil
}
func (k *fakeKernel) Remove(ns string) error {
	delete(k.applied, ns)
	k.removed = append(k.removed, ns)
	return nil
}

func ctr(id, name, group, ip string) workload.Workload {
	return workload.Workload{ID: id, Name: name, Kind: workload.KindContainer, Group: group,
		IPs: []netip.Addr{netip.MustParseAddr(ip)}, NetNS: workload.NetNS{Path: "/proc/" + id + "/ns/net", Inode: 1}}
}

func TestEnforcerCompilesAndReconciles(t *testing.T) {
	e, _ := newEngine(t, nil)
	r := conn(1, "web-1", "vigil.web", "db", "vigil.db", 5432, dpi.PostgreSQL, 1)
	e.Judge(&r) // learned web -> db tcp/5432
	ws := []workload.Workload{
		ctr("db", "db", "vigil.db", "10.0.0.2"),
		ctr("w1", "web-1", "vigil.web", "10.0.0.3"),
		{ID: workload.HostID, Kind: workload.KindHost, Group: workload.HostGroup, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}},
	}
	k := &fakeKernel{applied: map[string]enforce.Plan{}}
	enf := NewEnforcer(e, func() []workload.Workload { return ws }, k, slog.New(slog.NewTextHandler(io.Discard, nil)))
	e.SetOnChange(enf.Kick)

	enf.Reconcile()
	if len(k.applied) != 0 {
		t.Fatalf("plans applied in discover mode: %+v", k.applied)
	}
	if err := e.SetMode("vigil.db", policy.ModeProtect); err != nil {
		t.Fatal(err)
	}
	enf.Reconcile()
	p, ok := k.applied["/proc/db/ns/net"]
	if !ok || len(k.applied) != 1 {
		t.Fatalf("applied = %+v, want only db's plan", k.applied)
	}
	if len(p.Ingress) != 1 || p.Ingress[0].Proto != 6 || p.Ingress[0].PortFirst != 5432 || p.Ingress[0].Set != "in_6_5432_5432" ||
		len(p.Ingress[0].Peers) != 1 || p.Ingress[0].Peers[0] != netip.MustParsePrefix("10.0.0.3/32") || len(p.Egress) != 0 {
		t.Fatalf("db plan = %+v", p)
	}
	// Unchanged: not applied again. A new replica: applied with both peers.
	enf.Reconcile()
	if k.applies != 1 {
		t.Errorf("unchanged plan applied %d times", k.applies)
	}
	ws = append(ws, ctr("w2", "web-2", "vigil.web", "10.0.0.4"))
	enf.Reconcile()
	if got := k.applied["/proc/db/ns/net"].Ingress[0].Peers; len(got) != 2 || k.applies != 2 {
		t.Errorf("after a new replica: peers %v, applies %d", got, k.applies)
	}
	// Back to monitor: the table goes.
	if err := e.SetMode("vigil.db", policy.ModeMonitor); err != nil {
		t.Fatal(err)
	}
	enf.Reconcile()
	if len(k.applied) != 0 || len(k.removed) != 1 {
		t.Errorf("after leaving protect: applied %v removed %v", k.applied, k.removed)
	}
	select {
	case <-enf.kick:
	default:
		t.Error("policy changes did not kick the enforcer")
	}
}

func TestMergeAllows(t *testing.T) {
	a := []enforce.Allow{
		{Set: "g_a", Proto: 6, PortFirst: 80, PortLast: 80, Peers: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}},
		{Set: "g_b", Proto: 6, PortFirst: 80, PortLast: 80, Peers: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32"), netip.MustParsePrefix("10.0.0.1/32")}},
		{Set: "g_a", Proto: 17, PortFirst: 53, PortLast: 53, Peers: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}},
	}
	got := merge("in", a)
	if len(got) != 2 || len(got[0].Peers) != 2 || got[0].Set != "in_6_80_80" || got[1].Proto != 17 {
		t.Fatalf("merge = %+v", got)
	}
}
