package controller

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/dpi"
	"github.com/vigil-sec/vigil/internal/flow"
)

func rec(id uint64, client, server string, app dpi.App, bytes uint64, at int) flow.Record {
	ep := func(s, g string) flow.Endpoint {
		return flow.Endpoint{IP: netip.MustParseAddr("172.17.0.1"), Port: 80, Kind: flow.KindWorkload, Workload: s + "-id", Name: s, Group: g}
	}
	return flow.Record{ID: id, Proto: "tcp", Client: ep(client, "vigil."+client), Server: ep(server, "vigil."+server),
		App: app, Bytes: bytes, FirstSeen: time.Unix(int64(at), 0), LastSeen: time.Unix(int64(at), 0)}
}

func TestFlowsHistoryAndFilters(t *testing.T) {
	c := NewFlows(2, 100)
	c.ReportFlows([]flow.Event{
		{Type: flow.EventStart, Record: rec(1, "shop", "db", dpi.PostgreSQL, 100, 1)},
		{Type: flow.EventStart, Record: rec(2, "shop", "cache", dpi.Redis, 10, 2)},
		{Type: flow.EventEnd, Record: rec(3, "batch", "db", dpi.PostgreSQL, 5, 3)},
		{Type: flow.EventEnd, Record: rec(4, "batch", "db", dpi.PostgreSQL, 5, 4)},
		{Type: flow.EventEnd, Record: rec(5, "batch", "db", dpi.PostgreSQL, 5, 5)}, // pushes 3 out
		{Type: flow.EventEnd, Record: rec(2, "shop", "cache", dpi.Redis, 20, 6)},   // 2 ends, pushes 4 out
	})
	all := c.List(Filter{}, 0)
	var ids []uint64
	for _, r := range all {
		ids = append(ids, r.ID)
	}
	if len(ids) != 3 || ids[0] != 2 || ids[1] != 5 || ids[2] != 1 {
		t.Fatalf("List = %v, want [2 5 1] (newest first, history bounded to 2)", ids)
	}
	for _, tt := range []struct {
		f    Filter
		want int
	}{
		{Filter{Group: "vigil.db"}, 2},
		{Filter{App: "redis"}, 1},
		{Filter{Workload: "shop"}, 2},
		{Filter{Workload: "shop-id"}, 2},
		{Filter{Workload: "nobody"}, 0},
		{Filter{Proto: "udp"}, 0},
		{Filter{Since: time.Unix(5, 0)}, 2},
	} {
		if got := len(c.List(tt.f, 0)); got != tt.want {
			t.Errorf("filter %+v: %d flows, want %d", tt.f, got, tt.want)
		}
	}
	if got := len(c.List(Filter{}, 1)); got != 1 {
		t.Errorf("limit 1 gave %d", got)
	}
}

func TestGraphCountsFlowsOnceAndBytesAsTheyGrow(t *testing.T) {
	c := NewFlows(10, 100)
	c.ReportFlows([]flow.Event{
		{Type: flow.EventStart, Record: rec(1, "shop", "db", dpi.PostgreSQL, 100, 1)},
		{Type: flow.EventUpdate, Record: rec(1, "shop", "db", dpi.PostgreSQL, 250, 2)},
		{Type: flow.EventEnd, Record: rec(1, "shop", "db", dpi.PostgreSQL, 300, 3)},
		{Type: flow.EventEnd, Record: rec(2, "shop", "db", dpi.PostgreSQL, 50, 4)}, // never started: still one flow
	})
	g := c.Graph()
	if len(g.Edges) != 1 || len(g.WorkloadEdges) != 1 {
		t.Fatalf("edges %+v / %+v", g.Edges, g.WorkloadEdges)
	}
	e := g.Edges[0]
	if e.Source != "group:vigil.shop" || e.Target != "group:vigil.db" || e.Flows != 2 || e.Bytes != 350 || e.App != "postgresql" {
		t.Errorf("edge = %+v, want 2 flows and 350 bytes", e)
	}
	if !e.FirstSeen.Equal(time.Unix(1, 0)) || !e.LastSeen.Equal(time.Unix(4, 0)) {
		t.Errorf("edge times %v..%v", e.FirstSeen, e.LastSeen)
	}
	if len(g.Nodes) != 4 { // two groups, two workloads
		t.Errorf("nodes = %+v", g.Nodes)
	}
}

func TestGraphBounded(t *testing.T) {
	c := NewFlows(10, 3)
	for i := range 10 {
		r := rec(uint64(i), "c", "s", dpi.HTTP, 1, i)
		r.Server.Port = uint16(1000 + i)
		c.ReportFlows([]flow.Event{{Type: flow.EventEnd, Record: r}})
	}
	g := c.Graph()
	if len(g.Edges) != 3 || g.DroppedEdges == 0 || len(g.Nodes) > 3 {
		t.Errorf("edges %d dropped %d nodes %d; want the bound of 3 kept", len(g.Edges), g.DroppedEdges, len(g.Nodes))
	}
}

func TestSubscribe(t *testing.T) {
	c := NewFlows(10, 100)
	sub := c.Subscribe(Filter{App: "http"}, 2)
	c.ReportFlows([]flow.Event{
		{Type: flow.EventStart, Record: rec(1, "a", "b", dpi.DNS, 1, 1)},
		{Type: flow.EventStart, Record: rec(2, "a", "b", dpi.HTTP, 1, 1)},
	})
	if ev := <-sub.C; ev.Record.ID != 2 {
		t.Fatalf("got flow %d, want the http one", ev.Record.ID)
	}
	for i := range 5 { // more than the buffer holds
		c.ReportFlows([]flow.Event{{Type: flow.EventStart, Record: rec(uint64(10+i), "a", "b", dpi.HTTP, 1, 1)}})
	}
	for range sub.C {
	}
	if !errors.Is(sub.Err(), ErrLagged) {
		t.Errorf("Err = %v, want ErrLagged", sub.Err())
	}
	sub.Close() // closing a dropped subscription is harmless
}

func TestGraphMovesFlowWhenAppIsLearned(t *testing.T) {
	c := NewFlows(10, 100)
	c.ReportFlows([]flow.Event{
		{Type: flow.EventStart, Record: rec(1, "shop", "db", dpi.Unknown, 100, 1)},
		{Type: flow.EventEnd, Record: rec(1, "shop", "db", dpi.PostgreSQL, 300, 2)},
	})
	g := c.Graph()
	if len(g.Edges) != 1 || g.Edges[0].App != "postgresql" || g.Edges[0].Flows != 1 || g.Edges[0].Bytes != 300 {
		t.Fatalf("edges = %+v, want the one flow on the postgresql edge", g.Edges)
	}
}

func TestActiveBounded(t *testing.T) {
	c := NewFlows(5, 100)
	for i := range 50 {
		c.ReportFlows([]flow.Event{{Type: flow.EventStart, Record: rec(uint64(i), "a", "b", dpi.HTTP, 1, i)}})
	}
	if n := len(c.List(Filter{}, 0)); n > 5 {
		t.Errorf("%d active flows kept, bound 5", n)
	}
}
