package policy

import (
	"cmp"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Conn is a connection as the evaluator judges it: who connects to whom, on what, and in
// which modes the two ends are. Endpoint names must be canonical (group names as they
// stand, ExternalEndpoint, AddressEndpoint, EndpointHost): Evaluate does not parse them.
type Conn struct {
	// From and To are the client's and the server's group or special endpoint: the
	// learned group of a workload, "host", "external:<dns-name>" (or "external"),
	// "address:<ip>". The Learner keys rules by these.
	From, To string
	// FromGroups and ToGroups are custom groups the ends also belong to
	// (Evaluator.GroupsOf); rules naming them apply too. They may be nil.
	FromGroups, ToGroups []string
	Proto                Proto
	Port                 uint16 // the server's port; the client's never matters
	App                  string // as DPI identified it; "" or AppUnknown when it did not
	// AppPending says DPI has not decided yet (App is ""): allow rules naming
	// applications match provisionally (deny rules naming applications do not), and the
	// connection is judged again once App is known.
	AppPending bool
	// FromMode and ToMode are the ends' modes (Evaluator.ModeOf). An end without a mode
	// of its own, such as an external address, is ModeDiscover, so the other end decides.
	FromMode, ToMode Mode
}

// Verdict is what the policy says of a connection, and why.
type Verdict struct {
	Action Action
	// RuleID is the rule that decided, or "" when none matched and the modes decided.
	RuleID string
	// Reason says why in words, for events and the console (one of the Reason constants).
	Reason string
	// Mode is the stricter of the two ends' modes: what decided when no rule matched.
	Mode Mode

	rule int32 // index of the deciding rule in the Evaluator's rules, or -1
}

// Reasons a Verdict gives. They are constant so that a verdict never allocates.
const (
	ReasonDenyRule    = "a deny rule matched"
	ReasonAllowRule   = "an allow rule matched"
	ReasonLearnedRule = "a learned rule matched"
	ReasonDiscover    = "no rule matched; discover mode learns the connection"
	ReasonMonitor     = "no rule matched; monitor mode reports it as a violation"
	ReasonProtect     = "no rule matched; protect mode blocks it"
	ReasonInvalidMode = "no rule matched, and a mode is not valid: blocked"
)

// Rule tiers, in the order they are consulted: user deny, user allow, learned allow.
// Imported rules rank as user rules.
const (
	tierDeny = iota
	tierAllow
	tierLearned
	numTiers
)

var tierReasons = [numTiers]string{ReasonDenyRule, ReasonAllowRule, ReasonLearnedRule}

func tierOf(r *Rule) int {
	switch {
	case r.Action == ActionDeny:
		return tierDeny
	case r.Origin == OriginLearned:
		return tierLearned
	}
	return tierAllow
}

// Evaluator is the compiled, immutable form of a Policy. It is safe for concurrent use by
// multiple goroutines. To change the policy, compile a new Evaluator and swap it in whole
// (an atomic.Pointer); the old one keeps answering correctly for the policy it was
// built from.
//
// Rules are indexed by (from, to) pair, then by tier, then by protocol and port as a
// sorted list of disjoint port segments, each naming the rules that cover it, most
// specific first. A verdict costs one map lookup per pair of groups the connection's
// ends belong to and a binary search in that pair's rules: O(log k) in the k rules of
// the pair, whatever the size of the policy.
type Evaluator struct {
	pairs       map[pairKey]*pairIndex
	cand        []int32 // rule indexes, the segments' candidate lists laid end to end
	rules       []Rule  // canonical copies, indexed by cand
	byID        map[string]int32
	counters    []counter
	modes       map[string]Mode
	defaultMode Mode
	custom      []Group
}

type pairKey struct{ from, to string }

type pairIndex struct {
	tiers [numTiers][]segment
}

// segment is the keys lo..hi (proto<<16 | port) and the rules that cover all of them,
// cand[first:end], most specific first.
type segment struct {
	lo, hi     uint32
	first, end int32
}

type counter struct {
	hits atomic.Uint64
	last atomic.Int64 // unix nanoseconds
}

// Compile validates p and builds its Evaluator. The Evaluator keeps copies: p may change
// afterwards.
func (p *Policy) Compile() (*Evaluator, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	e := &Evaluator{
		pairs:       make(map[pairKey]*pairIndex),
		rules:       make([]Rule, len(p.Rules)),
		byID:        make(map[string]int32, len(p.Rules)),
		counters:    make([]counter, len(p.Rules)),
		modes:       make(map[string]Mode, len(p.Groups)),
		defaultMode: p.DefaultMode,
	}
	for _, g := range p.Groups {
		e.modes[g.Name] = g.Mode
		if g.Origin == GroupCustom {
			g.Criteria = slices.Clone(g.Criteria)
			e.custom = append(e.custom, g)
		}
	}

	items := make(map[pairKey]*[numTiers][]item)
	for i := range p.Rules {
		r := p.Rules[i].Clone()
		// Validate parsed both ends already.
		r.From, _ = CanonicalEndpoint(r.From)
		r.To, _ = CanonicalEndpoint(r.To)
		e.rules[i] = r
		e.byID[r.ID] = int32(i)
		k := pairKey{r.From, r.To}
		t := items[k]
		if t == nil {
			t = new([numTiers][]item)
			items[k] = t
		}
		tier := tierOf(&r)
		for _, pr := range r.Ports {
			lo, hi := keyRange(pr)
			t[tier] = append(t[tier], item{lo: lo, hi: hi, rule: int32(i)})
		}
	}
	for k, t := range items {
		pi := &pairIndex{}
		for tier := range t {
			pi.tiers[tier] = e.segments(t[tier])
		}
		e.pairs[k] = pi
	}
	return e, nil
}

// keyRange maps a port range into the key space proto<<16 | port. A protocol without
// ports covers all its keys, so whatever Conn.Port holds for it does not matter.
func keyRange(r PortRange) (lo, hi uint32) {
	if r.Proto == ProtoAny {
		return 0, 0xFF_FFFF
	}
	p := uint32(r.Proto) << 16
	if !r.Proto.hasPorts() {
		return p, p | 0xFFFF
	}
	return p | uint32(r.First), p | uint32(r.Last)
}

type item struct {
	lo, hi uint32
	rule   int32
}

// segments cuts the key space at every range boundary of items and, for each piece that
// some rule covers, lists the covering rules: narrowest range first, then rules that
// name applications before those that do not, then by id, so that the most specific rule
// is the one a verdict names. A rule without applications matches every connection it
// covers, so a list ends with the first such rule. Neighbouring pieces with the same list
// are merged. Building is quadratic in the rules of one pair and tier, which are few
// (the Learner collapses a pair's ports past a limit): 1,000 overlapping ranges in one
// pair compile in tens of milliseconds.
func (e *Evaluator) segments(items []item) []segment {
	if len(items) == 0 {
		return nil
	}
	cuts := make([]uint32, 0, 2*len(items))
	for _, it := range items {
		cuts = append(cuts, it.lo, it.hi+1)
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)

	var segs []segment
	var cover []item
	for i := 0; i+1 < len(cuts); i++ {
		lo, hi := cuts[i], cuts[i+1]-1
		cover = cover[:0]
		last := -1 // the first rule without applications, in list order
		for j, it := range items {
			if it.lo > lo || hi > it.hi {
				continue
			}
			if len(e.rules[it.rule].Apps) > 0 {
				cover = append(cover, it)
			} else if last < 0 || e.compareItems(it, items[last]) < 0 {
				last = j
			}
		}
		if last >= 0 {
			cover = slices.DeleteFunc(cover, func(it item) bool { return e.compareItems(it, items[last]) > 0 })
			cover = append(cover, items[last])
		}
		if len(cover) == 0 {
			continue
		}
		slices.SortFunc(cover, e.compareItems)
		first := int32(len(e.cand))
		for _, it := range cover {
			if !slices.Contains(e.cand[first:], it.rule) { // a rule may cover a key twice
				e.cand = append(e.cand, it.rule)
			}
		}
		end := int32(len(e.cand))
		if n := len(segs); n > 0 {
			prev := &segs[n-1]
			if prev.hi+1 == lo && slices.Equal(e.cand[prev.first:prev.end], e.cand[first:end]) {
				prev.hi = hi
				e.cand = e.cand[:first]
				continue
			}
		}
		segs = append(segs, segment{lo: lo, hi: hi, first: first, end: end})
	}
	return slices.Clip(segs)
}

// compareItems orders the rules covering a key: narrowest range first, then rules naming
// applications, then by id.
func (e *Evaluator) compareItems(a, b item) int {
	if c := cmp.Compare(a.hi-a.lo, b.hi-b.lo); c != 0 {
		return c
	}
	ra, rb := &e.rules[a.rule], &e.rules[b.rule]
	if c := cmp.Compare(b2i(len(ra.Apps) == 0), b2i(len(rb.Apps) == 0)); c != 0 {
		return c
	}
	if c := strings.Compare(ra.ID, rb.ID); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// Evaluate judges c: the first rule that matches, user deny rules before user allow
// rules before learned ones, decides; else the stricter of the two ends' modes does.
// It does not allocate, and counts nothing: see Count.
func (e *Evaluator) Evaluate(c Conn) Verdict {
	key := uint32(c.Proto)<<16 | uint32(c.Port)
	known := c.App != "" && c.App != AppUnknown
	pending := c.AppPending && c.App == ""
	best, bestTier := int32(-1), numTiers

	fromExt := strings.HasPrefix(c.From, "external:")
	toExt := strings.HasPrefix(c.To, "external:")
	nFrom := 1 + len(c.FromGroups) + b2i(fromExt)
	nTo := 1 + len(c.ToGroups) + b2i(toExt)
	for i := 0; i < nFrom && bestTier > tierDeny; i++ {
		from := endpointAt(c.From, c.FromGroups, i)
		for j := 0; j < nTo && bestTier > tierDeny; j++ {
			p := e.pairs[pairKey{from, endpointAt(c.To, c.ToGroups, j)}]
			if p == nil {
				continue
			}
			for t := 0; t < bestTier; t++ {
				if r := e.match(p.tiers[t], key, c.App, known, pending && t != tierDeny); r >= 0 {
					best, bestTier = r, t
					break
				}
			}
		}
	}

	mode := Stricter(c.FromMode, c.ToMode)
	if best >= 0 {
		a := ActionAllow
		if bestTier == tierDeny {
			a = ActionDeny
		}
		return Verdict{Action: a, RuleID: e.rules[best].ID, Reason: tierReasons[bestTier], Mode: mode, rule: best}
	}
	v := Verdict{Mode: mode, rule: -1}
	switch mode {
	case ModeDiscover:
		v.Action, v.Reason = ActionLearn, ReasonDiscover
	case ModeMonitor:
		v.Action, v.Reason = ActionViolate, ReasonMonitor
	case ModeProtect:
		v.Action, v.Reason = ActionDeny, ReasonProtect
	default:
		v.Action, v.Reason = ActionDeny, ReasonInvalidMode
	}
	return v
}

// endpointAt enumerates the names an end answers to: its own, its custom groups, and
// "external" after "external:<name>", so that rules for any external address apply to
// named ones too.
func endpointAt(own string, groups []string, i int) string {
	switch {
	case i == 0:
		return own
	case i <= len(groups):
		return groups[i-1]
	}
	return EndpointExternal
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// match returns the first rule of segs that covers key and accepts app (every app while
// it is pending), or -1.
func (e *Evaluator) match(segs []segment, key uint32, app string, known, pending bool) int32 {
	lo, hi := 0, len(segs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if segs[m].hi < key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(segs) || segs[lo].lo > key {
		return -1
	}
	for _, r := range e.cand[segs[lo].first:segs[lo].end] {
		apps := e.rules[r].Apps
		if len(apps) == 0 || pending || (known && slices.Contains(apps, app)) {
			return r
		}
	}
	return -1
}

// Count records a hit at time at on the rule that decided v, if any. A verdict of another
// Evaluator counts only if its rule has the same place and id here. It does not
// allocate, and is safe to call concurrently with everything else.
func (e *Evaluator) Count(v Verdict, at time.Time) {
	if v.rule < 0 || int(v.rule) >= len(e.rules) || e.rules[v.rule].ID != v.RuleID {
		return
	}
	c := &e.counters[v.rule]
	c.hits.Add(1)
	ns := at.UnixNano()
	for {
		old := c.last.Load()
		if ns <= old || c.last.CompareAndSwap(old, ns) {
			return
		}
	}
}

// TakeHits returns the hits counted since Compile or the last TakeHits, and resets them.
// Fold them into the stored rules (Policy.AddHits, Learner.AddHits). After swapping in a
// new Evaluator, take the old one's hits once more to keep those counted meanwhile.
func (e *Evaluator) TakeHits() []Hit {
	var out []Hit
	for i := range e.counters {
		c := &e.counters[i]
		n := c.hits.Swap(0)
		if n == 0 {
			continue
		}
		out = append(out, Hit{RuleID: e.rules[i].ID, Count: n, Last: time.Unix(0, c.last.Load()).UTC()})
	}
	return out
}

// Rule returns the rule with the given id as compiled (endpoints canonical, hits as of
// Compile).
func (e *Evaluator) Rule(id string) (Rule, bool) {
	i, ok := e.byID[id]
	if !ok {
		return Rule{}, false
	}
	return e.rules[i].Clone(), true
}

// ModeOf returns the mode of an end: its group's mode, the policy's default mode for a
// group the policy does not list, and ModeDiscover for external addresses and unmanaged
// addresses, which have no mode of their own. It does not allocate.
func (e *Evaluator) ModeOf(endpoint string) Mode {
	if m, ok := e.modes[endpoint]; ok {
		return m
	}
	if endpoint == EndpointExternal || strings.HasPrefix(endpoint, "external:") || strings.HasPrefix(endpoint, "address:") {
		return ModeDiscover
	}
	return e.defaultMode
}

// GroupsOf appends to dst the names of the custom groups s belongs to, in policy order.
// It is linear in the custom groups: call it when a workload appears or an address is
// first seen, and keep the answer, not once per connection.
func (e *Evaluator) GroupsOf(s Subject, dst []string) []string {
	for i := range e.custom {
		if e.custom[i].Match(s) {
			dst = append(dst, e.custom[i].Name)
		}
	}
	return dst
}

// Len returns the number of rules compiled.
func (e *Evaluator) Len() int { return len(e.rules) }
