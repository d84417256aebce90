package policy

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DefaultMaxPorts is how many ports of one server a client group may be learned on, one
// rule each, before they collapse into a range or "any".
const DefaultMaxPorts = 8

// ErrNotDiscover is returned by Learner.Learn for a connection that is not in Discover
// mode: only Discover learns.
var ErrNotDiscover = errors.New("connection is not in discover mode")

// LearnerConfig tunes a Learner.
type LearnerConfig struct {
	// MaxPorts is how many distinct server ports a (client group, server group,
	// protocol) keeps as rules of one port each. One more collapses them, with any
	// collapsed range, into a single rule: a port range when they are contiguous, else
	// "<proto>/any". Zero means DefaultMaxPorts.
	MaxPorts int
}

// Learner turns connections that no rule matched, in Discover mode, into learned allow
// rules between groups. It owns the learned rules: load it with the stored ones, feed it
// connections whose verdict is ActionLearn, persist what each Learn returns, and compile
// a new Evaluator when Change.Recompile says so.
//
// A learned rule is keyed by (client group, server group, protocol/server port), so a new
// replica adds nothing and the client's ephemeral port never appears; its id is derived
// from the key (LearnedRuleID), so the same rule learned again after a restart is the
// same rule. Learning a connection already learned changes only the rule's hits.
//
// A Learner is not safe for concurrent use.
type Learner struct {
	maxPorts int
	rules    map[string]*Rule
	slots    map[learnKey]*slot
}

type learnKey struct {
	from, to string
	proto    Proto
}

// slot holds the learned rules of one key: rules of one port each, and at most one rule
// of a range, "<proto>/any", or a protocol without ports.
type slot struct {
	singles map[uint16]string // port → rule id
	span    string            // rule id, or ""
}

// Change is what one call to Learn did to the learned rules, for the caller to persist.
type Change struct {
	Added   []Rule
	Updated []Rule // hits, last hit, applications
	Removed []Rule // merged into an Added rule, when ports collapse

	matching bool
}

// Recompile reports whether what the learned rules match changed, so that a new
// Evaluator is needed; a change of hits alone does not need one.
func (c *Change) Recompile() bool { return len(c.Added) > 0 || len(c.Removed) > 0 || c.matching }

// NewLearner returns a Learner holding the learned rules given (the stored ones, say;
// other rules are refused), or an error naming the first that does not fit.
func NewLearner(cfg LearnerConfig, learned []Rule) (*Learner, error) {
	l := &Learner{
		maxPorts: cfg.MaxPorts,
		rules:    make(map[string]*Rule, len(learned)),
		slots:    make(map[learnKey]*slot),
	}
	if l.maxPorts <= 0 {
		l.maxPorts = DefaultMaxPorts
	}
	for i := range learned {
		if err := l.load(learned[i]); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *Learner) load(r Rule) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("load learned rules: %w", err)
	}
	if r.Origin != OriginLearned {
		return fmt.Errorf("load learned rules: %w rule %q: origin is %s, not learned", ErrInvalid, r.ID, r.Origin)
	}
	if len(r.Ports) != 1 || r.Ports[0].Proto == ProtoAny {
		return fmt.Errorf("load learned rules: %w rule %q: a learned rule has ports of one protocol, not %s", ErrInvalid, r.ID, FormatPorts(r.Ports))
	}
	if _, dup := l.rules[r.ID]; dup {
		return fmt.Errorf("load learned rules: %w rule %q: id used twice", ErrInvalid, r.ID)
	}
	r = r.Clone()
	r.From, _ = CanonicalEndpoint(r.From)
	r.To, _ = CanonicalEndpoint(r.To)
	pr := r.Ports[0]
	s := l.slot(learnKey{r.From, r.To, pr.Proto})
	if pr.Proto.hasPorts() && pr.First == pr.Last {
		if other, dup := s.singles[pr.First]; dup {
			return fmt.Errorf("load learned rules: %w rule %q: same key as rule %q", ErrInvalid, r.ID, other)
		}
		s.singles[pr.First] = r.ID
	} else {
		if s.span != "" {
			return fmt.Errorf("load learned rules: %w rule %q: %s -> %s already has the collapsed rule %q", ErrInvalid, r.ID, r.From, r.To, s.span)
		}
		s.span = r.ID
	}
	l.rules[r.ID] = &r
	return nil
}

func (l *Learner) slot(k learnKey) *slot {
	s := l.slots[k]
	if s == nil {
		s = &slot{singles: make(map[uint16]string)}
		l.slots[k] = s
	}
	return s
}

// LearnedRuleID derives a learned rule's id from its key, so that learning the same
// connection after a restart finds the same rule. Endpoints must be canonical.
func LearnedRuleID(from, to string, ports PortRange) string {
	sum := sha256.Sum256([]byte(from + "\x00" + to + "\x00" + ports.String()))
	return "l-" + hex.EncodeToString(sum[:8])
}

// Learn records c, a connection in Discover mode that no rule matched, at time at.
func (l *Learner) Learn(c Conn, at time.Time) (Change, error) {
	var ch Change
	if m := Stricter(c.FromMode, c.ToMode); m != ModeDiscover {
		return ch, fmt.Errorf("learn %s -> %s: %w (%s)", c.From, c.To, ErrNotDiscover, m)
	}
	from, err := CanonicalEndpoint(c.From)
	if err != nil {
		return ch, fmt.Errorf("learn: from: %w", err)
	}
	to, err := CanonicalEndpoint(c.To)
	if err != nil {
		return ch, fmt.Errorf("learn: to: %w", err)
	}
	if c.Proto == ProtoAny || !c.Proto.known() {
		return ch, fmt.Errorf("learn %s -> %s: %w protocol %s", from, to, ErrInvalid, c.Proto)
	}
	if c.Proto.hasPorts() && c.Port == 0 {
		return ch, fmt.Errorf("learn %s -> %s: %w server port 0", from, to, ErrInvalid)
	}

	k := learnKey{from, to, c.Proto}
	s := l.slot(k)
	if !c.Proto.hasPorts() {
		if s.span != "" {
			l.touch(&ch, l.rules[s.span], c.App, at)
			return ch, nil
		}
		return ch, l.replace(&ch, k, s, AnyPort(c.Proto), nil, c.App, at)
	}
	var span PortRange
	if s.span != "" {
		span = l.rules[s.span].Ports[0]
		if span.Contains(c.Proto, c.Port) {
			l.touch(&ch, l.rules[s.span], c.App, at)
			return ch, nil
		}
	}
	if id, ok := s.singles[c.Port]; ok {
		l.touch(&ch, l.rules[id], c.App, at)
		return ch, nil
	}

	// A port not seen before.
	if s.span != "" && !span.IsAny() && (int(c.Port) == int(span.First)-1 || int(c.Port) == int(span.Last)+1) {
		lo, hi := min(span.First, c.Port), max(span.Last, c.Port)
		old := []string{s.span}
		for {
			if id, ok := s.singles[lo-1]; ok && lo > 1 {
				old, lo = append(old, id), lo-1
			} else if id, ok := s.singles[hi+1]; ok && hi < 65535 {
				old, hi = append(old, id), hi+1
			} else {
				break
			}
		}
		return ch, l.replace(&ch, k, s, PortSpan(c.Proto, lo, hi), old, c.App, at)
	}
	if len(s.singles) < l.maxPorts {
		return ch, l.replace(&ch, k, s, Port(c.Proto, c.Port), nil, c.App, at)
	}
	return ch, l.collapse(&ch, k, s, c, at)
}

// collapse merges every rule of the slot and the new port into one: their range when
// the ports they cover are contiguous, else every port of the protocol.
func (l *Learner) collapse(ch *Change, k learnKey, s *slot, c Conn, at time.Time) error {
	lo, hi, n := c.Port, c.Port, 1
	var old []string
	var span PortRange
	if s.span != "" {
		old = append(old, s.span)
		span = l.rules[s.span].Ports[0]
		lo, hi = min(lo, span.First), max(hi, span.Last)
		n += int(span.Last-span.First) + 1
	}
	for port, id := range s.singles {
		old = append(old, id)
		lo, hi = min(lo, port), max(hi, port)
		if s.span == "" || !span.Contains(k.proto, port) {
			n++
		}
	}
	slices.Sort(old)
	pr := AnyPort(k.proto)
	if n == int(hi-lo)+1 {
		pr = PortSpan(k.proto, lo, hi)
	}
	return l.replace(ch, k, s, pr, old, c.App, at)
}

// replace adds the learned rule for pr, merging into it (and removing) the rules old:
// their hits add up, their applications join, the earliest creation stays.
func (l *Learner) replace(ch *Change, k learnKey, s *slot, pr PortRange, old []string, app string, at time.Time) error {
	r := Rule{
		ID:      LearnedRuleID(k.from, k.to, pr),
		From:    k.from,
		To:      k.to,
		Ports:   []PortRange{pr},
		Action:  ActionAllow,
		Origin:  OriginLearned,
		Hits:    1,
		LastHit: at,
		Created: at,
	}
	anyApp := app == "" || app == AppUnknown
	if !anyApp {
		r.Apps = []string{app}
	}
	if other, taken := l.rules[r.ID]; taken && !slices.Contains(old, r.ID) {
		return fmt.Errorf("learn %s: id %s is taken by %s", r, r.ID, other)
	}
	for _, id := range old {
		o := l.rules[id]
		r.Hits += o.Hits
		if o.LastHit.After(r.LastHit) {
			r.LastHit = o.LastHit
		}
		if !o.Created.IsZero() && o.Created.Before(r.Created) {
			r.Created = o.Created
		}
		anyApp = anyApp || len(o.Apps) == 0
		r.Apps = append(r.Apps, o.Apps...)
		l.remove(id)
		ch.Removed = append(ch.Removed, *o)
	}
	if anyApp {
		r.Apps = nil
	} else {
		slices.Sort(r.Apps)
		r.Apps = slices.Compact(r.Apps)
	}
	if pr.Proto.hasPorts() && pr.First == pr.Last {
		s.singles[pr.First] = r.ID
	} else {
		s.span = r.ID
	}
	l.slots[k] = s // removing the old rules may have emptied and dropped it
	l.rules[r.ID] = &r
	ch.Added = append(ch.Added, r.Clone())
	return nil
}

// touch counts a hit on r and widens its applications to the connection's: an
// application not seen yet joins the list; an unidentified one lifts the list, since
// only a rule without applications matches it.
func (l *Learner) touch(ch *Change, r *Rule, app string, at time.Time) {
	r.Hits++
	if at.After(r.LastHit) {
		r.LastHit = at
	}
	if len(r.Apps) > 0 {
		switch {
		case app == "" || app == AppUnknown:
			r.Apps = nil
			ch.matching = true
		case !slices.Contains(r.Apps, app):
			r.Apps = append(r.Apps, app)
			slices.Sort(r.Apps)
			ch.matching = true
		}
	}
	ch.Updated = append(ch.Updated, r.Clone())
}

func (l *Learner) remove(id string) {
	r := l.rules[id]
	if r == nil {
		return
	}
	delete(l.rules, id)
	pr := r.Ports[0]
	k := learnKey{r.From, r.To, pr.Proto}
	s := l.slots[k]
	if s == nil {
		return
	}
	if s.span == id {
		s.span = ""
	} else if s.singles[pr.First] == id {
		delete(s.singles, pr.First)
	}
	if s.span == "" && len(s.singles) == 0 {
		delete(l.slots, k)
	}
}

// Forget drops a learned rule: the user deleted it, or promoted it to a user rule. It
// returns the rule dropped, if there was one.
func (l *Learner) Forget(id string) (Rule, bool) {
	r, ok := l.rules[id]
	if !ok {
		return Rule{}, false
	}
	l.remove(id)
	return *r, true
}

// AddHits adds hits counted by an Evaluator to the learned rules; others are ignored.
func (l *Learner) AddHits(hits []Hit) {
	for _, h := range hits {
		if r, ok := l.rules[h.RuleID]; ok {
			addHit(r, h)
		}
	}
}

// Rules returns copies of the learned rules, ordered by from, to, protocol and port.
func (l *Learner) Rules() []Rule {
	out := make([]Rule, 0, len(l.rules))
	for _, r := range l.rules {
		out = append(out, r.Clone())
	}
	slices.SortFunc(out, compareRules)
	return out
}

func compareRules(a, b Rule) int {
	if c := strings.Compare(a.From, b.From); c != 0 {
		return c
	}
	if c := strings.Compare(a.To, b.To); c != 0 {
		return c
	}
	pa, pb := a.Ports[0], b.Ports[0]
	if c := cmp.Compare(pa.Proto, pb.Proto); c != 0 {
		return c
	}
	if c := cmp.Compare(pa.First, pb.First); c != 0 {
		return c
	}
	return cmp.Compare(pa.Last, pb.Last)
}

// Len returns the number of learned rules.
func (l *Learner) Len() int { return len(l.rules) }

// LearnedRules returns copies of p's learned rules, to start a Learner with.
func (p *Policy) LearnedRules() []Rule {
	var out []Rule
	for _, r := range p.Rules {
		if r.Origin == OriginLearned {
			out = append(out, r.Clone())
		}
	}
	return out
}

// SetLearned replaces p's learned rules by learned (a Learner's Rules), after the others.
func (p *Policy) SetLearned(learned []Rule) {
	p.Rules = slices.DeleteFunc(p.Rules, func(r Rule) bool { return r.Origin == OriginLearned })
	for _, r := range learned {
		p.Rules = append(p.Rules, r.Clone())
	}
}
