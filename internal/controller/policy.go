package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-sec/vigil/internal/flow"
	"github.com/vigil-sec/vigil/internal/policy"
	"github.com/vigil-sec/vigil/internal/workload"
)

// PolicyStore persists policy changes as they are made; the store package's DB is one.
// Every method is one transaction.
type PolicyStore interface {
	PutRules(rules []policy.Rule) error
	DeleteRules(ids []string) error
	PutGroup(g policy.Group) error
	DeleteGroup(name string) error
	SetDefaultMode(m policy.Mode) error
	SavePolicy(p policy.Policy) error
}

// Errors of policy changes.
var (
	ErrNoRule  = errors.New("no such rule")
	ErrLearned = errors.New("not a learned rule")
)

// PolicyEngine judges each flow against the policy when it is first reported: it writes
// the verdict and deciding rule onto the flow, learns unmatched connections of groups in
// Discover mode, and raises a violation event (aggregated: repeats add to its count) for
// unmatched connections in Monitor and Protect mode. Changes are persisted before they
// take effect. It is safe for concurrent use.
type PolicyEngine struct {
	store    PolicyStore
	events   *Events
	log      *slog.Logger
	subjects func(workloadID string) (policy.Subject, bool)

	eval atomic.Pointer[policy.Evaluator]

	mu       sync.Mutex
	pol      policy.Policy // user and imported rules, groups, default mode; learned rules live in learner
	learner  *policy.Learner
	viol     map[string]uint64 // violation key -> event ID
	denied   map[fiveTuple]deniedTuple
	reset    func(flow.Record, func(bool, error))
	onChange func() // called (without blocking) after each new evaluator
	// For auto-promotion: when each group was first seen in a flow, and when a rule was
	// last learned for it.
	firstSeen   map[string]time.Time
	lastLearned map[string]time.Time
}

// NewPolicyEngine starts from p (as loaded from the store). store may be nil (nothing
// persisted). subjects describes a workload for custom groups' criteria; it may be nil.
func NewPolicyEngine(p policy.Policy, store PolicyStore, events *Events, subjects func(string) (policy.Subject, bool), log *slog.Logger) (*PolicyEngine, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("stored policy: %w", err)
	}
	learner, err := policy.NewLearner(policy.LearnerConfig{}, p.LearnedRules())
	if err != nil {
		return nil, err
	}
	p.Rules = slices.Clone(p.Rules) // SetLearned filters in place: keep the caller's slice intact
	p.Groups = slices.Clone(p.Groups)
	p.SetLearned(nil)
	e := &PolicyEngine{store: store, events: events, log: log, subjects: subjects, pol: p, learner: learner, viol: map[string]uint64{}, denied: map[fiveTuple]deniedTuple{},
		firstSeen: map[string]time.Time{}, lastLearned: map[string]time.Time{}}
	if err := e.compileLocked(); err != nil {
		return nil, err
	}
	// Violations reloaded from the store keep aggregating their repeats.
	for _, ev := range events.List("violation", 0) {
		d := ev.Detail
		key := fmt.Sprintf("%v|%v|%v|%d|%v|%v", d["from"], d["to"], d["proto"], count(d["port"]), d["app"], d["verdict"])
		if _, ok := e.viol[key]; !ok {
			e.viol[key] = ev.ID
		}
	}
	return e, nil
}

// compileLocked builds a new evaluator from the policy and the learned rules, carrying
// the hits counted by the old one.
func (e *PolicyEngine) compileLocked() error {
	e.collectHitsLocked()
	p := e.pol
	p.Rules = slices.Clone(p.Rules)
	p.SetLearned(e.learner.Rules())
	ev, err := p.Compile()
	if err != nil {
		return err
	}
	e.eval.Store(ev)
	if e.onChange != nil {
		e.onChange()
	}
	return nil
}

// SetOnChange has fn called, without blocking, whenever the policy changes (the
// enforcer's Kick). Call it before Judge is.
func (e *PolicyEngine) SetOnChange(fn func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onChange = fn
}

func (e *PolicyEngine) collectHitsLocked() {
	if old := e.eval.Load(); old != nil {
		hits := old.TakeHits()
		e.pol.AddHits(hits)
		e.learner.AddHits(hits)
	}
}

// endpointName is the policy's name for a flow's end.
func endpointName(ep flow.Endpoint) string {
	switch ep.Kind {
	case flow.KindWorkload:
		return ep.Group
	case flow.KindHost:
		return policy.EndpointHost
	case flow.KindExternal:
		return policy.ExternalEndpoint(ep.Name)
	}
	return policy.AddressEndpoint(ep.IP)
}

func (e *PolicyEngine) side(ev *policy.Evaluator, ep flow.Endpoint) (name string, groups []string, mode policy.Mode) {
	name = endpointName(ep)
	mode = ev.ModeOf(name)
	if ep.Kind == flow.KindWorkload && e.subjects != nil {
		if s, ok := e.subjects(ep.Workload); ok {
			groups = ev.GroupsOf(s, nil)
		}
	}
	for _, g := range groups {
		mode = policy.Stricter(mode, ev.ModeOf(g))
	}
	return name, groups, mode
}

// conn describes a flow record as the evaluator ev judges it.
func (e *PolicyEngine) conn(ev *policy.Evaluator, r *flow.Record) policy.Conn {
	c := policy.Conn{Port: r.Server.Port, App: string(r.App)}
	c.From, c.FromGroups, c.FromMode = e.side(ev, r.Client)
	c.To, c.ToGroups, c.ToMode = e.side(ev, r.Server)
	if p, err := policy.ParseProto(r.Proto); err == nil {
		c.Proto = p
	}
	if c.Proto == policy.ProtoICMP || c.Proto == policy.ProtoICMPv6 {
		c.Port = 0
	}
	return c
}

// Judge decides a flow's verdict and writes it on r.
func (e *PolicyEngine) Judge(r *flow.Record) {
	ev := e.eval.Load()
	c := e.conn(ev, r)
	v := ev.Evaluate(c)
	if (v.Action == policy.ActionViolate || v.Action == policy.ActionDeny) && r.App == "" && r.Proto == "tcp" {
		// DPI has not seen the application yet: a rule naming applications covers the
		// connection provisionally, and Rejudge decides when the application is known.
		c.AppPending = true
		if pv := ev.Evaluate(c); pv.Action == policy.ActionAllow {
			v = pv
		}
	}
	ev.Count(v, r.LastSeen)
	r.Verdict, r.RuleID = v.Action.String(), v.RuleID
	e.seen(c.From, c.To, r.FirstSeen)
	switch v.Action {
	case policy.ActionLearn:
		// A flow whose direction was only guessed from its ports could teach a rule the
		// wrong way round; it is judged but not learned from.
		if r.Initiator != flow.InitiatorPort {
			e.learn(c, r.LastSeen)
		}
	case policy.ActionViolate, policy.ActionDeny:
		id := e.violation(c, v, r, seenByCapture)
		if v.Action == policy.ActionDeny {
			e.resetAsync(r, id)
		}
	}
}

func (e *PolicyEngine) learn(c policy.Conn, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch, err := e.learner.Learn(c, at)
	if err != nil {
		e.log.Debug("not learned", "from", c.From, "to", c.To, "err", err)
		return
	}
	if len(ch.Added) > 0 {
		e.lastLearned[c.From], e.lastLearned[c.To] = at, at
	}
	if e.store != nil {
		if err := e.persistChange(ch); err != nil {
			e.log.Warn("persist learned rules", "err", err)
		}
	}
	if ch.Recompile() {
		if err := e.compileLocked(); err != nil {
			e.log.Warn("compile policy", "err", err)
		}
	}
}

func (e *PolicyEngine) persistChange(ch policy.Change) error {
	put := append(slices.Clone(ch.Added), ch.Updated...)
	if len(put) > 0 {
		if err := e.store.PutRules(put); err != nil {
			return err
		}
	}
	if len(ch.Removed) > 0 {
		ids := make([]string, len(ch.Removed))
		for i, r := range ch.Removed {
			ids[i] = r.ID
		}
		return e.store.DeleteRules(ids)
	}
	return nil
}

// violationKey is what aggregates repeats of one violation.
func violationKey(c *policy.Conn, r *flow.Record, verdict string) string {
	return c.From + "|" + c.To + "|" + r.Proto + "|" + strconv.Itoa(int(c.Port)) + "|" + string(r.App) + "|" + verdict
}

// Followup completes the violation event of a flow judged earlier with what its later
// report knows (the client's process arrives after the start when the client container
// was registered late).
func (e *PolicyEngine) Followup(r *flow.Record) {
	if (r.Verdict != "violate" && r.Verdict != "deny") || r.Client.Process == nil {
		return
	}
	c := e.conn(e.eval.Load(), r)
	key := violationKey(&c, r, r.Verdict)
	e.mu.Lock()
	defer e.mu.Unlock()
	if id, ok := e.viol[key]; ok {
		e.events.Update(id, func(ev *Event) {
			if old, ok := ev.Detail["client"].(flow.Endpoint); !ok || old.Process == nil {
				ev.Detail["client"] = r.Client
			}
		})
	}
}

// violation raises, or adds to, the event for an unmatched connection seen by source.
func (e *PolicyEngine) violation(c policy.Conn, v policy.Verdict, r *flow.Record, source string) uint64 {
	return e.violationWith(c, v, r, source, nil)
}

// violationWith is violation with extra details for a new event. It returns the ID of
// the event raised or added to.
func (e *PolicyEngine) violationWith(c policy.Conn, v policy.Verdict, r *flow.Record, source string, extra map[string]any) uint64 {
	port := strconv.Itoa(int(c.Port))
	key := violationKey(&c, r, v.Action.String())
	e.mu.Lock()
	defer e.mu.Unlock()
	var tuple fiveTuple
	if v.Action == policy.ActionDeny {
		tuple = tupleOf(r)
		if d, ok := e.denied[tuple]; ok && r.FirstSeen.Sub(d.at).Abs() < denyMemory {
			// The other source already counted this connection: say it saw it too.
			e.events.Update(d.event, func(ev *Event) {
				ev.Detail["seen_by"] = addSource(ev.Detail["seen_by"], source)
				if old, ok := ev.Detail["client"].(flow.Endpoint); ok && old.Process == nil && r.Client.Process != nil {
					ev.Detail["client"] = r.Client
				}
			})
			return d.event
		}
	}
	remember := func(id uint64) {
		if v.Action != policy.ActionDeny {
			return
		}
		if len(e.denied) >= 4096 {
			for t, d := range e.denied {
				if r.FirstSeen.Sub(d.at) > denyMemory || len(e.denied) >= 8192 {
					delete(e.denied, t)
				}
			}
		}
		e.denied[tuple] = deniedTuple{at: r.FirstSeen, event: id}
	}
	if id, ok := e.viol[key]; ok && e.events.Update(id, func(ev *Event) {
		ev.Detail["seen_by"] = addSource(ev.Detail["seen_by"], source)
		ev.Detail["count"] = count(ev.Detail["count"]) + 1
		ev.Detail["last_seen"] = r.LastSeen
		ev.Detail["last_flow"] = r.ID
		// Keep the most telling client: the latest one, unless it lost its process.
		if old, ok := ev.Detail["client"].(flow.Endpoint); !ok || old.Process == nil || r.Client.Process != nil {
			ev.Detail["client"] = r.Client
		}
	}) {
		remember(id)
		return id
	}
	sev := "warning"
	if v.Action == policy.ActionDeny {
		sev = "critical"
	}
	what := r.Proto + "/" + port
	if c.Port == 0 {
		what = r.Proto
	}
	evt := Event{
		Time:     r.FirstSeen,
		Type:     "violation",
		Severity: sev,
		Summary:  fmt.Sprintf("%s -> %s %s %s: %s", endpointLabel(r.Client, c.From), endpointLabel(r.Server, c.To), what, r.App, v.Reason),
		Detail: map[string]any{
			"verdict": v.Action.String(), "reason": v.Reason, "rule_id": v.RuleID, "mode": v.Mode.String(),
			"from": c.From, "to": c.To, "proto": r.Proto, "port": c.Port, "app": string(r.App),
			"client": r.Client, "server": r.Server,
			"count": 1, "first_seen": r.FirstSeen, "last_seen": r.LastSeen, "first_flow": r.ID, "last_flow": r.ID,
			"seen_by": []string{source},
		},
	}
	for k, x := range extra {
		evt.Detail[k] = x
	}
	ev := e.events.Add(evt)
	remember(ev.ID)
	e.viol[key] = ev.ID
	if len(e.viol) > e.events.max {
		clear(e.viol) // the events they point to have been dropped anyway
		e.viol[key] = ev.ID
	}
	return ev.ID
}

// addSource adds source to the list of sources of an event's detail (a []string in
// memory, []any once reloaded from the store).
func addSource(list any, source string) []string {
	var out []string
	switch l := list.(type) {
	case []string:
		out = l
	case []any:
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	if !slices.Contains(out, source) {
		out = append(slices.Clone(out), source)
	}
	return out
}

func endpointLabel(ep flow.Endpoint, name string) string {
	label := name
	if ep.Kind == flow.KindWorkload && ep.Name != "" {
		label = ep.Name + " (" + name + ")"
	}
	if ep.Process != nil {
		label += " [" + ep.Process.Comm + "/" + strconv.Itoa(ep.Process.PID) + "]"
	}
	return label
}

// PolicyView is the policy as the API shows it.
type PolicyView struct {
	DefaultMode policy.Mode    `json:"default_mode"`
	Groups      []policy.Group `json:"groups"`
	Rules       []policy.Rule  `json:"rules"`
}

// Policy returns the whole policy, learned rules and current hit counts included.
func (e *PolicyEngine) Policy() policy.Policy {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.collectHitsLocked()
	p := e.pol
	p.Groups = slices.Clone(p.Groups)
	p.Rules = slices.Clone(p.Rules)
	p.SetLearned(e.learner.Rules())
	return p
}

// Apply replaces the whole policy (groups, rules, learned rules, default mode) at once,
// as read from a policy file. Nothing changes when p is invalid.
func (e *PolicyEngine) Apply(p policy.Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	learner, err := policy.NewLearner(policy.LearnerConfig{}, p.LearnedRules())
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.store != nil {
		if err := e.store.SavePolicy(p); err != nil {
			return err
		}
	}
	p.Rules = slices.Clone(p.Rules)
	p.Groups = slices.Clone(p.Groups)
	p.SetLearned(nil)
	e.pol, e.learner = p, learner
	e.eval.Store(nil) // the old counters belong to the replaced rules
	return e.compileLocked()
}

// SetMode sets a group's mode (adding the group to the policy if it is a learned group
// not listed yet).
func (e *PolicyEngine) SetMode(group string, m policy.Mode) error {
	if _, err := policy.CanonicalEndpoint(group); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	i := slices.IndexFunc(e.pol.Groups, func(g policy.Group) bool { return g.Name == group })
	g := policy.Group{Name: group, Origin: policy.GroupLearned, Mode: m}
	if i >= 0 {
		g = e.pol.Groups[i]
		g.Mode = m
	}
	if err := g.Validate(); err != nil {
		return err
	}
	if e.store != nil {
		if err := e.store.PutGroup(g); err != nil {
			return err
		}
	}
	if i >= 0 {
		e.pol.Groups[i] = g
	} else {
		e.pol.Groups = append(e.pol.Groups, g)
	}
	return e.compileLocked()
}

// PutGroup adds or replaces a custom group (criteria choose its members).
func (e *PolicyEngine) PutGroup(g policy.Group) error {
	g.Origin = policy.GroupCustom
	if err := g.Validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.store != nil {
		if err := e.store.PutGroup(g); err != nil {
			return err
		}
	}
	if i := slices.IndexFunc(e.pol.Groups, func(x policy.Group) bool { return x.Name == g.Name }); i >= 0 {
		e.pol.Groups[i] = g
	} else {
		e.pol.Groups = append(e.pol.Groups, g)
	}
	return e.compileLocked()
}

// SetDefaultMode sets the mode of groups the policy does not list.
func (e *PolicyEngine) SetDefaultMode(m policy.Mode) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.store != nil {
		if err := e.store.SetDefaultMode(m); err != nil {
			return err
		}
	}
	e.pol.DefaultMode = m
	return e.compileLocked()
}

// AddRule adds a user rule; its ID is made here.
func (e *PolicyEngine) AddRule(r policy.Rule) (policy.Rule, error) {
	r.ID = newRuleID()
	r.Origin = policy.OriginUser
	if r.Action == 0 {
		r.Action = policy.ActionAllow
	}
	r.Hits, r.LastHit, r.Created = 0, time.Time{}, time.Now().UTC()
	if err := r.Validate(); err != nil {
		return r, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.store != nil {
		if err := e.store.PutRules([]policy.Rule{r}); err != nil {
			return r, err
		}
	}
	e.pol.Rules = append(e.pol.Rules, r)
	return r, e.compileLocked()
}

// DeleteRule removes a rule, learned or not.
func (e *PolicyEngine) DeleteRule(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := slices.IndexFunc(e.pol.Rules, func(r policy.Rule) bool { return r.ID == id })
	if i < 0 {
		if _, ok := e.learner.Forget(id); !ok {
			return fmt.Errorf("%w %q", ErrNoRule, id)
		}
	} else {
		e.pol.Rules = slices.Delete(e.pol.Rules, i, i+1)
	}
	if e.store != nil {
		if err := e.store.DeleteRules([]string{id}); err != nil {
			return err
		}
	}
	return e.compileLocked()
}

// Promote turns a learned rule into a user rule (with a new ID: a learned rule's ID
// belongs to its key, which may be learned again).
func (e *PolicyEngine) Promote(id string) (policy.Rule, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.collectHitsLocked()
	r, ok := e.learner.Forget(id)
	if !ok {
		if slices.ContainsFunc(e.pol.Rules, func(r policy.Rule) bool { return r.ID == id }) {
			return policy.Rule{}, fmt.Errorf("%w: %q", ErrLearned, id)
		}
		return policy.Rule{}, fmt.Errorf("%w %q", ErrNoRule, id)
	}
	r.ID, r.Origin = newRuleID(), policy.OriginUser
	if e.store != nil {
		if err := e.store.PutRules([]policy.Rule{r}); err != nil {
			return r, err
		}
		if err := e.store.DeleteRules([]string{id}); err != nil {
			return r, err
		}
	}
	e.pol.Rules = append(e.pol.Rules, r)
	return r, e.compileLocked()
}

func newRuleID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "u-" + hex.EncodeToString(b)
}

// SubjectOf describes a workload for custom groups' criteria.
func SubjectOf(w workload.Workload) policy.Subject {
	s := policy.Subject{Name: w.Name, Image: w.Image, Service: w.Labels[workload.LabelComposeService], Labels: w.Labels}
	if len(w.IPs) > 0 {
		s.Addr = w.IPs[0]
	}
	return s
}

// SimResult is one kind of connection a simulated policy would not allow: the flows
// between two ends on one port and application, with how many there were.
type SimResult struct {
	From      string    `json:"from"`
	To        string    `json:"to"`
	Proto     string    `json:"proto"`
	Port      uint16    `json:"port"`
	App       string    `json:"app"`
	Verdict   string    `json:"verdict"`
	Flows     int       `json:"flows"`
	Clients   []string  `json:"clients"` // workload names (or addresses) seen on the client side
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// Simulate replays recorded flows against the current policy with the given mode set on
// the given groups (every group and the default when groups is empty) and returns what
// would not have been allowed: denied in Protect, reported in Monitor. It changes nothing
// and counts no hits.
func (e *PolicyEngine) Simulate(records []flow.Record, mode policy.Mode, groups []string) ([]SimResult, error) {
	p := e.Policy()
	if len(groups) == 0 {
		p.DefaultMode = mode
		for i := range p.Groups {
			p.Groups[i].Mode = mode
		}
	}
	for _, g := range groups {
		i := slices.IndexFunc(p.Groups, func(x policy.Group) bool { return x.Name == g })
		if i < 0 {
			p.Groups = append(p.Groups, policy.Group{Name: g, Origin: policy.GroupLearned, Mode: mode})
			continue
		}
		p.Groups[i].Mode = mode
	}
	ev, err := p.Compile()
	if err != nil {
		return nil, err
	}
	type key struct {
		from, to, proto, app, verdict string
		port                          uint16
	}
	byKey := map[key]*SimResult{}
	var order []key
	for i := range records {
		r := &records[i]
		c := e.conn(ev, r)
		v := ev.Evaluate(c)
		if v.Action != policy.ActionDeny && v.Action != policy.ActionViolate {
			continue
		}
		k := key{c.From, c.To, r.Proto, string(r.App), v.Action.String(), c.Port}
		s := byKey[k]
		if s == nil {
			s = &SimResult{From: k.from, To: k.to, Proto: k.proto, Port: k.port, App: k.app, Verdict: k.verdict, FirstSeen: r.FirstSeen, LastSeen: r.LastSeen}
			byKey[k] = s
			order = append(order, k)
		}
		s.Flows++
		client := r.Client.Name
		if client == "" {
			client = r.Client.IP.String()
		}
		if !slices.Contains(s.Clients, client) && len(s.Clients) < 20 {
			s.Clients = append(s.Clients, client)
		}
		if r.FirstSeen.Before(s.FirstSeen) {
			s.FirstSeen = r.FirstSeen
		}
		if r.LastSeen.After(s.LastSeen) {
			s.LastSeen = r.LastSeen
		}
	}
	out := make([]SimResult, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	slices.SortFunc(out, func(a, b SimResult) int { return b.Flows - a.Flows })
	return out, nil
}

// isGroup reports whether an endpoint name is a group (not external, host or address),
// the only kind of end that has a mode to promote.
func isGroup(name string) bool {
	ep, err := policy.ParseEndpoint(name)
	return err == nil && ep.Kind == policy.KindGroup
}

func (e *PolicyEngine) seen(from, to string, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, g := range []string{from, to} {
		if _, ok := e.firstSeen[g]; !ok && isGroup(g) {
			e.firstSeen[g] = at
		}
	}
}

// PromoteQuiet moves every group still in Discover mode that has been seen for at least
// quiet, and has learned no new rule for that long, to Monitor, raising a
// policy.promoted event for each. It returns the groups it promoted.
func (e *PolicyEngine) PromoteQuiet(now time.Time, quiet time.Duration) []string {
	ev := e.eval.Load()
	e.mu.Lock()
	var due []string
	for g, first := range e.firstSeen {
		last := first
		if l := e.lastLearned[g]; l.After(last) {
			last = l
		}
		if ev.ModeOf(g) == policy.ModeDiscover && now.Sub(last) >= quiet && now.Sub(first) >= quiet {
			due = append(due, g)
		}
	}
	e.mu.Unlock()
	slices.Sort(due)
	var done []string
	for _, g := range due {
		if err := e.SetMode(g, policy.ModeMonitor); err != nil {
			e.log.Warn("auto-promote", "group", g, "err", err)
			continue
		}
		done = append(done, g)
		e.events.Add(Event{Time: now.UTC(), Type: "policy.promoted", Severity: "info",
			Summary: fmt.Sprintf("%s moved from discover to monitor: no new connection learned for %s", g, quiet),
			Detail:  map[string]any{"group": g, "from": "discover", "to": "monitor", "quiet": quiet.String()}})
	}
	return done
}

// RunAutoPromote checks for quiet groups every minute (or every quiet/10 when shorter)
// until ctx ends. quiet 0 disables it.
func (e *PolicyEngine) RunAutoPromote(ctx context.Context, quiet time.Duration) error {
	if quiet <= 0 {
		return nil
	}
	t := time.NewTicker(min(time.Minute, max(quiet/10, time.Second)))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			e.PromoteQuiet(now, quiet)
		}
	}
}

// count reads an event's count, which is an int in memory and a float64 once the event
// has been through JSON (reloaded after a restart).
func count(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case float64:
		return int(n)
	}
	return 0
}

// FlushHits writes the rules whose hit counters moved since the last flush.
func (e *PolicyEngine) FlushHits() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.store == nil {
		return nil
	}
	ev := e.eval.Load()
	if ev == nil {
		return nil
	}
	hits := ev.TakeHits()
	if len(hits) == 0 {
		return nil
	}
	e.pol.AddHits(hits)
	e.learner.AddHits(hits)
	moved := map[string]bool{}
	for _, h := range hits {
		moved[h.RuleID] = true
	}
	var put []policy.Rule
	for _, r := range e.pol.Rules {
		if moved[r.ID] {
			put = append(put, r)
		}
	}
	for _, r := range e.learner.Rules() {
		if moved[r.ID] {
			put = append(put, r)
		}
	}
	return e.store.PutRules(put)
}

// RunHitFlush persists hit counters every interval until ctx ends, and once more then.
func (e *PolicyEngine) RunHitFlush(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := e.FlushHits(); err != nil {
				e.log.Warn("persist rule hits", "err", err)
			}
			return nil
		case <-t.C:
			if err := e.FlushHits(); err != nil {
				e.log.Warn("persist rule hits", "err", err)
			}
		}
	}
}
