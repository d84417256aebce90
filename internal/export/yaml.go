package export

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-sec/vigil/internal/policy"
)

// The apiVersion and kind of a Vigil policy file.
const (
	APIVersion = "vigil.dev/v1alpha1"
	KindPolicy = "Policy"
)

// MaxYAMLSize is the largest policy file UnmarshalYAML reads. A policy of 10,000 rules
// takes about 2 MiB.
const MaxYAMLSize = 8 << 20

// maxProblems is how many problems a FileError lists; the rest are counted. A hostile
// file of a million bad rules must not become a million lines of errors.
const maxProblems = 100

// maxMessage is how much of one problem's message is printed: messages quote the
// value at fault, which a hostile file may make megabytes long.
const maxMessage = 300

// ErrTooLarge is wrapped by the problem reported for a file larger than MaxYAMLSize.
var ErrTooLarge = errors.New("policy file too large")

// Problem is one thing wrong in a policy file.
type Problem struct {
	// Line and Column are 1-based; 0 when not known (the YAML parser reports lines of
	// syntax errors without columns; the size limit has neither).
	Line, Column int
	// Path is where in the document: "spec.rules[3].ports[0]"; empty for the whole
	// document. Indexes count from 0.
	Path string
	// Err says what is wrong. It wraps policy.ErrInvalid.
	Err error
}

func (p Problem) Error() string { return p.format("") }

func (p Problem) Unwrap() error { return p.Err }

func (p Problem) format(file string) string {
	var b strings.Builder
	if file != "" {
		b.WriteString(file)
		b.WriteString(":")
	}
	if p.Line > 0 {
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(":")
		if p.Column > 0 {
			b.WriteString(strconv.Itoa(p.Column))
			b.WriteString(":")
		}
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	msg := p.Err.Error()
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "..."
	}
	b.WriteString(msg)
	return b.String()
}

// FileError is every problem UnmarshalYAML found in a policy file, in the order of the
// file, one a line when printed: "policy.yaml:12:9: spec.rules[3].ports[0]: invalid
// ports "tcp/70000": port 70000 is out of range 1-65535".
type FileError struct {
	// File names the file in messages; UnmarshalYAML leaves it empty for the caller
	// to set (errors.As).
	File     string
	Problems []Problem
}

func (e *FileError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.format(e.File)
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, so that errors.Is(err, policy.ErrInvalid) holds.
func (e *FileError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// invalidError is a problem found by this package rather than by internal/policy.
type invalidError struct {
	msg  string
	also error // another sentinel it stands for, or nil
}

func (e *invalidError) Error() string { return e.msg }

func (e *invalidError) Unwrap() []error {
	if e.also != nil {
		return []error{policy.ErrInvalid, e.also}
	}
	return []error{policy.ErrInvalid}
}

// MarshalYAML writes p as one policy document: groups sorted by name, rules by from, to
// and ports, each rule under a comment that says it in words. Hits, last hit and
// creation time go under status, and only for the rules that have them. p must be
// valid; endpoints are written in canonical form.
func MarshalYAML(p policy.Policy) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("export policy: %w", err)
	}
	groups := slices.Clone(p.Groups)
	slices.SortStableFunc(groups, func(a, b policy.Group) int { return strings.Compare(a.Name, b.Name) })
	rules := sortedRules(p.Rules)

	spec := mapping("defaultMode", scalar(p.DefaultMode.String()))
	if len(groups) > 0 {
		list := sequence()
		for _, g := range groups {
			m := mapping("name", scalar(g.Name), "mode", scalar(g.Mode.String()), "origin", scalar(g.Origin.String()))
			if len(g.Criteria) > 0 {
				cs := sequence()
				for _, c := range g.Criteria {
					cs.Content = append(cs.Content, scalar(c.String()))
				}
				add(m, "criteria", cs)
			}
			list.Content = append(list.Content, m)
		}
		add(spec, "groups", list)
	}
	status := sequence()
	if len(rules) > 0 {
		list := sequence()
		for _, r := range rules {
			ports := flow(sequence())
			for _, pr := range r.Ports {
				ports.Content = append(ports.Content, scalar(pr.String()))
			}
			m := mapping("id", scalar(r.ID), "from", scalar(r.From), "to", scalar(r.To), "ports", ports)
			if len(r.Apps) > 0 {
				apps := flow(sequence())
				for _, a := range r.Apps {
					apps.Content = append(apps.Content, scalar(a))
				}
				add(m, "apps", apps)
			}
			add(m, "action", scalar(r.Action.String()))
			add(m, "origin", scalar(r.Origin.String()))
			m.HeadComment = sentence(r)
			list.Content = append(list.Content, m)

			if r.Hits == 0 && r.LastHit.IsZero() && r.Created.IsZero() {
				continue
			}
			s := mapping("id", scalar(r.ID))
			if r.Hits > 0 {
				add(s, "hits", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatUint(r.Hits, 10)})
			}
			if !r.LastHit.IsZero() {
				add(s, "lastHit", timestamp(r.LastHit))
			}
			if !r.Created.IsZero() {
				add(s, "created", timestamp(r.Created))
			}
			status.Content = append(status.Content, s)
		}
		add(spec, "rules", list)
	}

	doc := mapping("apiVersion", scalar(APIVersion), "kind", scalar(KindPolicy), "spec", spec)
	if len(status.Content) > 0 {
		st := mapping("rules", status)
		add(doc, "status", st)
		doc.Content[len(doc.Content)-2].HeadComment = "Observed by Vigil, not policy. Delete this section to share the policy without counters."
	}
	doc.HeadComment = "Vigil policy: the groups, their modes and the rules between them.\n" +
		"Check and apply it with: vigil policy apply -f FILE"
	return encode(doc)
}

// sentence says a rule in words: "vigil.web may connect to vigil.db on tcp/5432 with
// postgresql".
func sentence(r policy.Rule) string {
	var b strings.Builder
	b.WriteString(r.From)
	if r.Action == policy.ActionDeny {
		b.WriteString(" may not connect to ")
	} else {
		b.WriteString(" may connect to ")
	}
	b.WriteString(r.To)
	b.WriteString(" on ")
	for i, pr := range r.Ports {
		if i > 0 {
			b.WriteString(", ")
		}
		switch {
		case pr.Proto == policy.ProtoAny:
			b.WriteString("any protocol and port")
		case pr.IsAny() && strings.Contains(pr.String(), "/"):
			b.WriteString("any " + pr.Proto.String() + " port")
		default:
			b.WriteString(pr.String())
		}
	}
	if len(r.Apps) > 0 {
		b.WriteString(" with ")
		b.WriteString(strings.Join(r.Apps, " or "))
	}
	return b.String()
}

// sortedRules returns copies of rules with canonical endpoints, ordered by from, to,
// ports, then action, origin and id so that the order is total.
func sortedRules(rules []policy.Rule) []policy.Rule {
	if len(rules) == 0 {
		return nil
	}
	out := make([]policy.Rule, len(rules))
	for i, r := range rules {
		r = r.Clone()
		if from, err := policy.CanonicalEndpoint(r.From); err == nil {
			r.From = from
		}
		if to, err := policy.CanonicalEndpoint(r.To); err == nil {
			r.To = to
		}
		out[i] = r
	}
	slices.SortStableFunc(out, func(a, b policy.Rule) int {
		return cmp.Or(
			strings.Compare(a.From, b.From),
			strings.Compare(a.To, b.To),
			slices.CompareFunc(a.Ports, b.Ports, func(x, y policy.PortRange) int {
				return cmp.Or(cmp.Compare(x.Proto, y.Proto), cmp.Compare(x.First, y.First), cmp.Compare(x.Last, y.Last))
			}),
			cmp.Compare(a.Action, b.Action),
			cmp.Compare(a.Origin, b.Origin),
			strings.Compare(a.ID, b.ID),
		)
	})
	return out
}

func timestamp(t time.Time) *yaml.Node {
	return scalar(t.UTC().Format(time.RFC3339Nano))
}

// Nodes are built by hand rather than from tagged structs so that the output carries
// comments and chooses flow or block style per list.

func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func sequence(items ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: items}
}

func flow(n *yaml.Node) *yaml.Node {
	n.Style = yaml.FlowStyle
	return n
}

// mapping builds a mapping from alternating keys (string) and values (*yaml.Node).
func mapping(kv ...any) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(kv); i += 2 {
		add(m, kv[i].(string), kv[i+1].(*yaml.Node))
	}
	return m
}

func add(m *yaml.Node, key string, value *yaml.Node) {
	m.Content = append(m.Content, scalar(key), value)
}

func encode(docs ...*yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			return nil, fmt.Errorf("encode YAML: %w", err)
		}
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	return buf.Bytes(), nil
}

// UnmarshalYAML reads a policy file: one YAML document as MarshalYAML writes it. It is
// strict (unknown fields, duplicate keys, groups or rule ids, and anchors' aliases are
// errors) and all or nothing: either a valid Policy, or a *FileError listing every
// problem found, with line and column.
//
// A rule without origin is imported (it came from a file); a group without origin is
// custom when it has criteria and learned when not. status is optional; its entries
// must name rules of spec. Aliases (*name) are refused: a policy under review must say
// what it allows where it allows it, and refusing them rules out alias bombs.
func UnmarshalYAML(data []byte) (policy.Policy, error) {
	r := reader{}
	if len(data) > MaxYAMLSize {
		r.add(nil, "", &invalidError{
			msg:  fmt.Sprintf("policy file of %d bytes is larger than the limit of %d", len(data), MaxYAMLSize),
			also: ErrTooLarge,
		})
		return policy.Policy{}, r.err()
	}
	p := r.document(data)
	if err := r.err(); err != nil {
		return policy.Policy{}, err
	}
	return p, nil
}

type reader struct {
	problems []Problem
	more     int // problems past maxProblems, counted but not kept
}

func (r *reader) add(n *yaml.Node, path string, err error) {
	if len(r.problems) >= maxProblems {
		r.more++
		return
	}
	p := Problem{Path: path, Err: err}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	r.problems = append(r.problems, p)
}

func (r *reader) addf(n *yaml.Node, path, format string, args ...any) {
	if len(r.problems) >= maxProblems {
		r.more++ // not formatted: a hostile file may have millions
		return
	}
	r.add(n, path, &invalidError{msg: fmt.Sprintf(format, args...)})
}

func (r *reader) err() error {
	if len(r.problems) == 0 {
		return nil
	}
	slices.SortStableFunc(r.problems, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	probs := r.problems
	if r.more > 0 {
		probs = append(probs, Problem{Err: &invalidError{msg: fmt.Sprintf("%d more problems not shown", r.more)}})
	}
	return &FileError{Problems: probs}
}

var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntax reports an error of the YAML parser, which says the line but not the column.
func (r *reader) syntax(err error) {
	msg := err.Error()
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		r.add(&yaml.Node{Line: line}, "", &invalidError{msg: "YAML: " + m[2]})
		return
	}
	r.add(nil, "", &invalidError{msg: "YAML: " + strings.TrimPrefix(msg, "yaml: ")})
}

func (r *reader) document(data []byte) policy.Policy {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			r.addf(nil, "", "the file is empty; want a %s document (apiVersion: %s)", KindPolicy, APIVersion)
		} else {
			r.syntax(err)
		}
		return policy.Policy{}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		r.syntax(err)
		return policy.Policy{}
	default:
		// The one document that may follow: the process profiles an export writes.
		if r.profilesDocument(dec, &next) {
			break
		}
		at := &next
		if len(next.Content) > 0 {
			at = next.Content[0]
		}
		r.addf(at, "", "a policy file holds one YAML document; this is a second one")
		return policy.Policy{}
	}
	if r.aliases(&doc) {
		return policy.Policy{}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		r.addf(&doc, "", "want a %s document", KindPolicy)
		return policy.Policy{}
	}
	return r.policy(doc.Content[0])
}

// aliases reports every alias in the document. The tree as parsed holds each alias once
// (it is not expanded), so this walk is linear in the file.
func (r *reader) aliases(doc *yaml.Node) bool {
	found := false
	stack := []*yaml.Node{doc}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n.Kind == yaml.AliasNode {
			r.addf(n, "", "alias *%s: aliases are not allowed in a policy file; write the value out", n.Value)
			found = true
			continue
		}
		for i := len(n.Content) - 1; i >= 0; i-- {
			stack = append(stack, n.Content[i])
		}
	}
	return found
}

func (r *reader) policy(root *yaml.Node) policy.Policy {
	var p policy.Policy
	top, ok := r.fields(root, "", "apiVersion", "kind", "spec", "status")
	if !ok {
		return p
	}
	r.require(root, "", top, "apiVersion", "kind", "spec")
	if n := top["apiVersion"]; n != nil {
		if v, ok := r.scalar(n, "apiVersion"); ok && v != APIVersion {
			r.addf(n, "apiVersion", "%q is not a version this Vigil reads; want %s", v, APIVersion)
		}
	}
	if n := top["kind"]; n != nil {
		if v, ok := r.scalar(n, "kind"); ok && v != KindPolicy {
			r.addf(n, "kind", "%q is not a Vigil policy; want %s", v, KindPolicy)
		}
	}
	if spec := top["spec"]; spec != nil {
		if f, ok := r.fields(spec, "spec", "defaultMode", "groups", "rules"); ok {
			r.require(spec, "spec", f, "defaultMode")
			if n := f["defaultMode"]; n != nil {
				if v, ok := r.scalar(n, "spec.defaultMode"); ok {
					m, err := policy.ParseMode(v)
					if err != nil {
						r.add(n, "spec.defaultMode", err)
					}
					p.DefaultMode = m
				}
			}
			if n := f["groups"]; n != nil {
				p.Groups = r.groups(n, "spec.groups")
			}
			if n := f["rules"]; n != nil {
				p.Rules = r.rules(n, "spec.rules")
			}
		}
	}
	if n := top["status"]; n != nil {
		r.status(n, "status", p.Rules)
	}
	if len(r.problems) == 0 {
		// Everything Validate checks was checked above, field by field; this catches
		// what a later change to internal/policy adds.
		if err := p.Validate(); err != nil {
			r.add(root, "spec", err)
		}
	}
	return p
}

func (r *reader) groups(n *yaml.Node, path string) []policy.Group {
	items, ok := r.list(n, path)
	if !ok {
		return nil
	}
	var out []policy.Group
	first := make(map[string]*yaml.Node)
	for i, item := range items {
		at := path + "[" + strconv.Itoa(i) + "]"
		f, ok := r.fields(item, at, "name", "mode", "origin", "criteria")
		if !ok {
			continue
		}
		before := r.count()
		r.require(item, at, f, "name", "mode")
		var g policy.Group
		if n := f["name"]; n != nil {
			if v, ok := r.scalar(n, at+".name"); ok {
				probe := policy.Group{Name: v, Origin: policy.GroupLearned}
				if err := probe.Validate(); err != nil {
					r.add(n, at+".name", err)
				} else if prev, dup := first[v]; dup {
					r.addf(n, at+".name", "group %q is defined twice (first at line %d)", v, prev.Line)
				} else {
					first[v] = n
				}
				g.Name = v
			}
		}
		if n := f["mode"]; n != nil {
			if v, ok := r.scalar(n, at+".mode"); ok {
				m, err := policy.ParseMode(v)
				if err != nil {
					r.add(n, at+".mode", err)
				}
				g.Mode = m
			}
		}
		if n := f["criteria"]; n != nil {
			cs, _ := r.list(n, at+".criteria")
			for j, c := range cs {
				cat := fmt.Sprintf("%s.criteria[%d]", at, j)
				if v, ok := r.scalar(c, cat); ok {
					crit, err := policy.ParseCriterion(v)
					if err != nil {
						r.add(c, cat, err)
					}
					g.Criteria = append(g.Criteria, crit)
				}
			}
		}
		g.Origin = policy.GroupLearned
		if len(g.Criteria) > 0 {
			g.Origin = policy.GroupCustom
		}
		if n := f["origin"]; n != nil {
			if v, ok := r.scalar(n, at+".origin"); ok {
				o, err := policy.ParseGroupOrigin(v)
				if err != nil {
					r.add(n, at+".origin", err)
				}
				g.Origin = o
			}
		}
		if r.count() == before {
			if err := g.Validate(); err != nil {
				r.add(item, at, err)
			}
		}
		out = append(out, g)
	}
	return out
}

func (r *reader) rules(n *yaml.Node, path string) []policy.Rule {
	items, ok := r.list(n, path)
	if !ok {
		return nil
	}
	var out []policy.Rule
	first := make(map[string]*yaml.Node)
	for i, item := range items {
		at := path + "[" + strconv.Itoa(i) + "]"
		f, ok := r.fields(item, at, "id", "from", "to", "ports", "apps", "action", "origin")
		if !ok {
			continue
		}
		before := r.count()
		r.require(item, at, f, "id", "from", "to", "ports", "action")
		rule := policy.Rule{Origin: policy.OriginImported}
		if n := f["id"]; n != nil {
			if v, ok := r.scalar(n, at+".id"); ok {
				// A rule that is valid but for its id tells what is wrong with the id.
				probe := policy.Rule{ID: v, From: policy.EndpointHost, To: policy.EndpointHost,
					Ports: []policy.PortRange{policy.AnyPort(policy.ProtoAny)}, Action: policy.ActionAllow, Origin: policy.OriginUser}
				if err := probe.Validate(); err != nil {
					r.add(n, at+".id", err)
				} else if prev, dup := first[v]; dup {
					r.addf(n, at+".id", "rule id %q is used twice (first at line %d)", v, prev.Line)
				} else {
					first[v] = n
				}
				rule.ID = v
			}
		}
		for _, end := range []struct {
			key string
			dst *string
		}{{"from", &rule.From}, {"to", &rule.To}} {
			if n := f[end.key]; n != nil {
				if v, ok := r.scalar(n, at+"."+end.key); ok {
					e, err := policy.CanonicalEndpoint(v)
					if err != nil {
						r.add(n, at+"."+end.key, err)
					}
					*end.dst = e
				}
			}
		}
		if n := f["ports"]; n != nil {
			ps, _ := r.list(n, at+".ports")
			if len(ps) == 0 && n.Kind == yaml.SequenceNode {
				r.addf(n, at+".ports", "no ports; write [any] for every protocol and port")
			}
			for j, pn := range ps {
				pat := fmt.Sprintf("%s.ports[%d]", at, j)
				if v, ok := r.scalar(pn, pat); ok {
					pr, err := policy.ParsePortRange(v)
					if err != nil {
						r.add(pn, pat, err)
					}
					rule.Ports = append(rule.Ports, pr)
				}
			}
		}
		if n := f["apps"]; n != nil {
			as, _ := r.list(n, at+".apps")
			for j, an := range as {
				aat := fmt.Sprintf("%s.apps[%d]", at, j)
				v, ok := r.scalar(an, aat)
				if !ok {
					continue
				}
				probe := policy.Rule{ID: "probe", From: policy.EndpointHost, To: policy.EndpointHost,
					Ports: []policy.PortRange{policy.AnyPort(policy.ProtoAny)}, Apps: []string{v},
					Action: policy.ActionAllow, Origin: policy.OriginUser}
				switch err := probe.Validate(); {
				case err != nil:
					if inner := errors.Unwrap(err); inner != nil {
						err = inner // without the probe's id
					}
					r.add(an, aat, err)
				case slices.Contains(rule.Apps, v):
					r.addf(an, aat, "application %q is listed twice", v)
				}
				rule.Apps = append(rule.Apps, v)
			}
		}
		if n := f["action"]; n != nil {
			if v, ok := r.scalar(n, at+".action"); ok {
				a, err := policy.ParseAction(v)
				switch {
				case err != nil:
					r.add(n, at+".action", err)
				case a != policy.ActionAllow && a != policy.ActionDeny:
					r.addf(n, at+".action", "a rule can allow or deny, not %s", a)
				}
				rule.Action = a
			}
		}
		if n := f["origin"]; n != nil {
			if v, ok := r.scalar(n, at+".origin"); ok {
				o, err := policy.ParseRuleOrigin(v)
				if err != nil {
					r.add(n, at+".origin", err)
				}
				rule.Origin = o
			}
		}
		if r.count() == before {
			if err := rule.Validate(); err != nil {
				r.add(item, at, err)
			}
		}
		out = append(out, rule)
	}
	return out
}

// status folds hits, last hit and creation time into the rules they name.
func (r *reader) status(n *yaml.Node, path string, rules []policy.Rule) {
	f, ok := r.fields(n, path, "rules")
	if !ok || f["rules"] == nil {
		return
	}
	byID := make(map[string]int, len(rules))
	for i := range rules {
		if _, dup := byID[rules[i].ID]; !dup {
			byID[rules[i].ID] = i
		}
	}
	items, _ := r.list(f["rules"], path+".rules")
	seen := make(map[string]*yaml.Node)
	for i, item := range items {
		at := fmt.Sprintf("%s.rules[%d]", path, i)
		sf, ok := r.fields(item, at, "id", "hits", "lastHit", "created")
		if !ok {
			continue
		}
		r.require(item, at, sf, "id")
		idNode := sf["id"]
		if idNode == nil {
			continue
		}
		id, ok := r.scalar(idNode, at+".id")
		if !ok {
			continue
		}
		ri, known := byID[id]
		switch prev, dup := seen[id]; {
		case dup:
			r.addf(idNode, at+".id", "rule %q has a status already (at line %d)", id, prev.Line)
			continue
		case !known:
			r.addf(idNode, at+".id", "no rule %q in spec.rules", id)
			continue
		}
		seen[id] = idNode
		rule := &rules[ri]
		if hn := sf["hits"]; hn != nil {
			if v, ok := r.scalar(hn, at+".hits"); ok {
				h, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					r.addf(hn, at+".hits", "%q is not a count (0 to %d)", v, uint64(1<<64-1))
				}
				rule.Hits = h
			}
		}
		for _, t := range []struct {
			key string
			dst *time.Time
		}{{"lastHit", &rule.LastHit}, {"created", &rule.Created}} {
			tn := sf[t.key]
			if tn == nil {
				continue
			}
			v, ok := r.scalar(tn, at+"."+t.key)
			if !ok {
				continue
			}
			ts, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				r.addf(tn, at+"."+t.key, "%q is not a time in RFC 3339 form, such as 2025-01-31T12:00:00Z", v)
				continue
			}
			*t.dst = ts.UTC()
		}
	}
}

func (r *reader) count() int { return len(r.problems) + r.more }

// fields checks that n is a mapping of known keys, each given once, and returns the
// values by key.
func (r *reader) fields(n *yaml.Node, path string, known ...string) (map[string]*yaml.Node, bool) {
	if n.Kind != yaml.MappingNode {
		r.addf(n, path, "want a mapping with %s, not %s", strings.Join(known, ", "), describe(n))
		return nil, false
	}
	if !r.tag(n, path, "!!map") {
		return nil, false
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	keys := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			r.addf(k, path, "want a field name, not %s", describe(k))
			continue
		}
		at := join(path, k.Value)
		if !slices.Contains(known, k.Value) {
			r.addf(k, at, "unknown field %q; want %s", k.Value, strings.Join(known, ", "))
			continue
		}
		if prev, dup := keys[k.Value]; dup {
			r.addf(k, at, "field %q is given twice (first at line %d)", k.Value, prev.Line)
			continue
		}
		keys[k.Value] = k
		out[k.Value] = v
	}
	return out, true
}

func (r *reader) require(n *yaml.Node, path string, f map[string]*yaml.Node, names ...string) {
	for _, name := range names {
		if _, ok := f[name]; !ok {
			r.addf(n, path, "missing field %q", name)
		}
	}
}

// scalar returns the text of a single value. Numbers and booleans are read as the text
// they are written with (an id may be 123); null is a missing value.
func (r *reader) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		r.addf(n, path, "want a single value, not %s", describe(n))
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
		return n.Value, true
	case "!!null":
		r.addf(n, path, "missing value")
	default:
		r.addf(n, path, "tag %s is not allowed here", n.Tag)
	}
	return "", false
}

// list returns the items of a list; null (a key with nothing after it) is an empty list.
func (r *reader) list(n *yaml.Node, path string) ([]*yaml.Node, bool) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		r.addf(n, path, "want a list, not %s", describe(n))
		return nil, false
	}
	if !r.tag(n, path, "!!seq") {
		return nil, false
	}
	return n.Content, true
}

func (r *reader) tag(n *yaml.Node, path, want string) bool {
	if n.ShortTag() != want {
		r.addf(n, path, "tag %s is not allowed here", n.Tag)
		return false
	}
	return true
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing"
		}
		if len(n.Value) > 40 {
			return strconv.Quote(n.Value[:40]) + "..."
		}
		return strconv.Quote(n.Value)
	}
	return "an empty document"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
