package controller

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/vigil-sec/vigil/internal/flow"
)

// Graph is who talks to whom: nodes are groups, workloads, the host, external names and
// other addresses; edges join clients to servers per protocol, port and application.
type Graph struct {
	Nodes []Node `json:"nodes"`
	// Edges join group-level nodes (a workload's group; other nodes stand for
	// themselves); WorkloadEdges the same flows between workloads.
	Edges         []Edge `json:"edges"`
	WorkloadEdges []Edge `json:"workload_edges"`
	// DroppedEdges counts edges not kept because the graph reached its bound.
	DroppedEdges uint64 `json:"dropped_edges"`
}

// Node is an endpoint of the graph.
type Node struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"` // group, workload, host, external, internal, address
	Label string `json:"label"`
	// Group is the group node a workload node belongs to.
	Group string `json:"group,omitempty"`
}

// Edge aggregates the flows from one node to another with one protocol, port and app.
type Edge struct {
	Source    string    `json:"source"`
	Target    string    `json:"target"`
	Proto     string    `json:"proto"`
	Port      uint16    `json:"port"`
	App       string    `json:"app"`
	Flows     uint64    `json:"flows"`
	Bytes     uint64    `json:"bytes"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

type edgeKey struct {
	source, target, proto, app string
	port                       uint16
}

type graph struct {
	max     int
	nodes   map[string]Node
	edges   map[edgeKey]*Edge
	wedges  map[edgeKey]*Edge
	dropped uint64
}

func newGraph(max int) *graph {
	return &graph{max: max, nodes: map[string]Node{}, edges: map[edgeKey]*Edge{}, wedges: map[edgeKey]*Edge{}}
}

// nodeOf returns the group-level and workload-level node IDs of an endpoint, adding the
// nodes to the graph while it has room (as many nodes as edges at most).
func (g *graph) nodeOf(e flow.Endpoint) (groupID, workloadID string) {
	switch e.Kind {
	case flow.KindWorkload:
		gid := "group:" + e.Group
		g.addNode(Node{ID: gid, Kind: "group", Label: e.Group})
		wid := "workload:" + e.Workload
		g.addNode(Node{ID: wid, Kind: "workload", Label: e.Name, Group: gid})
		return gid, wid
	case flow.KindHost:
		g.addNode(Node{ID: "host", Kind: "host", Label: cmp.Or(e.Name, "host")})
		return "host", "host"
	case flow.KindExternal:
		label := cmp.Or(e.Name, e.IP.String())
		id := "external:" + label
		g.addNode(Node{ID: id, Kind: "external", Label: label})
		return id, id
	default:
		id := string(e.Kind) + ":" + e.IP.String()
		g.addNode(Node{ID: id, Kind: string(e.Kind), Label: e.IP.String()})
		return id, id
	}
}

func (g *graph) addNode(n Node) {
	if _, ok := g.nodes[n.ID]; ok || len(g.nodes) < g.max {
		g.nodes[n.ID] = n // a renamed workload keeps its node with the new label
	}
}

// add folds one event's record in: a flow counts once, bytes count as they grow. A flow
// whose application (or ends) became known after its start moves, with its bytes, from
// the edge it was first counted on to the right one.
func (g *graph) add(r, prev flow.Record, seen bool) {
	gk, wk := g.keys(r)
	if seen {
		if pg, pw := g.keys(prev); pg != gk || pw != wk {
			g.unbump(g.edges, pg, prev.Bytes)
			g.unbump(g.wedges, pw, prev.Bytes)
			seen = false
		}
	}
	var flows uint64
	bytes := r.Bytes
	if seen {
		bytes -= min(prev.Bytes, r.Bytes)
	} else {
		flows = 1
	}
	g.bump(g.edges, gk, r, flows, bytes)
	g.bump(g.wedges, wk, r, flows, bytes)
}

// keys returns the group-level and workload-level edges of a flow.
func (g *graph) keys(r flow.Record) (edgeKey, edgeKey) {
	cg, cw := g.nodeOf(r.Client)
	sg, sw := g.nodeOf(r.Server)
	port := r.Server.Port
	if r.Proto == "icmp" || r.Proto == "icmpv6" {
		port = 0
	}
	return edgeKey{cg, sg, r.Proto, string(r.App), port}, edgeKey{cw, sw, r.Proto, string(r.App), port}
}

// unbump takes one flow and its bytes off an edge, removing the edge when nothing is left.
func (g *graph) unbump(m map[edgeKey]*Edge, k edgeKey, bytes uint64) {
	e := m[k]
	if e == nil {
		return
	}
	e.Flows -= min(e.Flows, 1)
	e.Bytes -= min(e.Bytes, bytes)
	if e.Flows == 0 {
		delete(m, k)
	}
}

func (g *graph) bump(m map[edgeKey]*Edge, k edgeKey, r flow.Record, flows, bytes uint64) {
	e := m[k]
	if e == nil {
		if len(m) >= g.max {
			g.dropped++
			return
		}
		e = &Edge{Source: k.source, Target: k.target, Proto: k.proto, Port: k.port, App: k.app, FirstSeen: r.FirstSeen}
		m[k] = e
	}
	e.Flows += flows
	e.Bytes += bytes
	if r.FirstSeen.Before(e.FirstSeen) {
		e.FirstSeen = r.FirstSeen
	}
	if r.LastSeen.After(e.LastSeen) {
		e.LastSeen = r.LastSeen
	}
}

func (g *graph) snapshot() Graph {
	out := Graph{Nodes: make([]Node, 0, len(g.nodes)), Edges: edgeList(g.edges), WorkloadEdges: edgeList(g.wedges), DroppedEdges: g.dropped}
	for _, n := range g.nodes {
		out.Nodes = append(out.Nodes, n)
	}
	slices.SortFunc(out.Nodes, func(a, b Node) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func edgeList(m map[edgeKey]*Edge) []Edge {
	out := make([]Edge, 0, len(m))
	for _, e := range m {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b Edge) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target),
			cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port), cmp.Compare(a.App, b.App))
	})
	return out
}

// EdgeLabel is how an edge reads on a map: "http tcp/80".
func EdgeLabel(e Edge) string {
	if e.Port == 0 {
		return e.App + " " + e.Proto
	}
	return e.App + " " + e.Proto + "/" + strconv.Itoa(int(e.Port))
}
