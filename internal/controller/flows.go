package controller

import (
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/vigil-sec/vigil/internal/flow"
)

// ErrLagged ends a subscription whose reader fell behind.
var ErrLagged = errors.New("subscriber fell behind")

// Flows keeps the flows reported by agents: the active ones, a bounded history of ended
// ones, and the graph of who talks to whom.
type Flows struct {
	mu      sync.Mutex
	active  map[uint64]flow.Record
	recent  []flow.Record // ring of ended flows
	next    int           // where the next ended flow goes in recent
	full    bool
	subs    map[*FlowSub]struct{}
	graph   *graph
	dropped uint64
	judge   Judge
}

// Judge decides a flow's verdict when it is first reported (Judge) and may complete what
// it raised from later reports of the same flow (Followup).
type Judge interface {
	Judge(r *flow.Record)
	Followup(r *flow.Record)
	// Rejudge judges again a flow allowed provisionally, once DPI has named its
	// application.
	Rejudge(r *flow.Record)
}

// SetJudge has every flow judged (its verdict and rule written on it) when it is first
// reported. Call it before reports arrive.
func (c *Flows) SetJudge(j Judge) { c.judge = j }

// NewFlows keeps up to maxRecent ended flows and maxEdges graph edges.
func NewFlows(maxRecent, maxEdges int) *Flows {
	return &Flows{
		active: map[uint64]flow.Record{},
		recent: make([]flow.Record, max(maxRecent, 1)),
		subs:   map[*FlowSub]struct{}{},
		graph:  newGraph(maxEdges),
	}
}

// ReportFlows implements agent.Reporter.
func (c *Flows) ReportFlows(events []flow.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range events {
		r := ev.Record
		prev, seen := c.active[r.ID]
		switch {
		case seen:
			r.Verdict, r.RuleID = prev.Verdict, prev.RuleID
			if c.judge != nil && prev.Client.Process == nil && r.Client.Process != nil {
				c.judge.Followup(&r)
			}
			if c.judge != nil && prev.App == "" && r.App != "" && r.Verdict == "allow" {
				c.judge.Rejudge(&r)
			}
		case c.judge != nil:
			c.judge.Judge(&r)
		}
		ev.Record = r
		c.graph.add(r, prev, seen)
		switch ev.Type {
		case flow.EventStart, flow.EventUpdate:
			c.active[r.ID] = r
			if len(c.active) > len(c.recent) {
				// The agent could not report some ends (a flood evicted more flows than it
				// can report); keep the active set bounded all the same.
				for id := range c.active {
					delete(c.active, id)
					c.dropped++
					break
				}
			}
		case flow.EventEnd:
			delete(c.active, r.ID)
			c.recent[c.next] = r
			c.next = (c.next + 1) % len(c.recent)
			c.full = c.full || c.next == 0
		}
		for s := range c.subs {
			if !s.match(&r) {
				continue
			}
			select {
			case s.c <- ev:
			default:
				s.err = ErrLagged
				close(s.c)
				delete(c.subs, s)
				c.dropped++
			}
		}
	}
}

// Filter selects flows. Empty fields match everything.
type Filter struct {
	Workload string // ID, or name, of either end's workload
	Group    string // either end's group
	App      string
	Proto    string
	Since    time.Time // last seen at or after
}

func (f *Filter) match(r *flow.Record) bool {
	if f.Workload != "" && !endIs(r.Client, f.Workload) && !endIs(r.Server, f.Workload) {
		return false
	}
	if f.Group != "" && r.Client.Group != f.Group && r.Server.Group != f.Group {
		return false
	}
	if f.App != "" && string(r.App) != f.App {
		return false
	}
	if f.Proto != "" && r.Proto != f.Proto {
		return false
	}
	if !f.Since.IsZero() && r.LastSeen.Before(f.Since) {
		return false
	}
	return true
}

func endIs(e flow.Endpoint, ref string) bool {
	return e.Workload != "" && (e.Workload == ref || e.Name == ref || len(ref) >= 4 && len(e.Workload) > len(ref) && e.Workload[:len(ref)] == ref)
}

// List returns the flows that match f, active and ended, most recently seen first, at
// most limit of them.
func (c *Flows) List(f Filter, limit int) []flow.Record {
	c.mu.Lock()
	out := make([]flow.Record, 0, min(limit, len(c.active)+len(c.recent)))
	for _, r := range c.active {
		if f.match(&r) {
			out = append(out, r)
		}
	}
	n := c.next
	if c.full {
		n = len(c.recent)
	}
	for i := range n {
		if r := &c.recent[i]; f.match(r) {
			out = append(out, *r)
		}
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b flow.Record) int {
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		return int(b.ID) - int(a.ID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// FlowSub delivers flow events as they are reported.
type FlowSub struct {
	C <-chan flow.Event

	c      chan flow.Event
	filter Filter
	flows  *Flows
	err    error // guarded by flows.mu
}

func (s *FlowSub) match(r *flow.Record) bool { return s.filter.match(r) }

// Subscribe delivers the events of matching flows from now on.
func (c *Flows) Subscribe(f Filter, buffer int) *FlowSub {
	ch := make(chan flow.Event, max(buffer, 1))
	s := &FlowSub{C: ch, c: ch, filter: f, flows: c}
	c.mu.Lock()
	c.subs[s] = struct{}{}
	c.mu.Unlock()
	return s
}

// Close ends the subscription.
func (s *FlowSub) Close() {
	s.flows.mu.Lock()
	defer s.flows.mu.Unlock()
	if _, ok := s.flows.subs[s]; ok {
		delete(s.flows.subs, s)
		close(s.c)
	}
}

// Err tells why the channel closed: nil after Close, ErrLagged when the reader fell
// behind.
func (s *FlowSub) Err() error {
	s.flows.mu.Lock()
	defer s.flows.mu.Unlock()
	return s.err
}

// Graph returns the connection graph.
func (c *Flows) Graph() Graph {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.graph.snapshot()
}
