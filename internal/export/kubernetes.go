package export

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-sec/vigil/internal/policy"
)

// Labels the Kubernetes outputs select by.
const (
	// groupLabel names a pod's learned group, without the "vigil." prefix. It mirrors
	// workload.LabelGroup, which the agent reads to name a container's group; export
	// depends on policy only, and a test keeps the two equal.
	groupLabel  = "vigil.group"
	groupPrefix = "vigil." // workload.GroupPrefix

	// podNamespaceLabel is how a label criterion names a namespace: the label the
	// kubelet puts on every container of a pod, and Cilium on every endpoint.
	podNamespaceLabel    = "io.kubernetes.pod.namespace"
	ciliumNamespaceLabel = "k8s:" + podNamespaceLabel
	// namespaceNameLabel is set by Kubernetes on every namespace to its name.
	namespaceNameLabel = "kubernetes.io/metadata.name"

	managedByLabel = "app.kubernetes.io/managed-by"
	groupAnnot     = "vigil.dev/group"
	modeAnnot      = "vigil.dev/mode"
)

// maxCiliumPorts is how many ports one Cilium PortRule may list (the CRD's maxItems).
const maxCiliumPorts = 40

// NetworkPolicies writes Kubernetes NetworkPolicy objects (networking.k8s.io/v1), as a
// multi-document YAML stream, for p's allow rules of every origin: one object per group
// that receives connections, selecting its pods, with one ingress rule per Vigil rule.
// A group that reaches addresses outside the cluster also gets its egress restricted,
// to its allow rules plus DNS to kube-dns.
//
// namespace is where the objects go and where pods are assumed to run, unless a group
// names its namespace with a label criterion io.kubernetes.pod.namespace=NAME; empty
// leaves metadata.namespace out (kubectl's current namespace).
//
// What a NetworkPolicy cannot say is widened, never dropped, with a comment: a DNS name
// becomes any address (0.0.0.0/0 and ::/0) on the rule's ports, ICMP becomes every port
// of the peer, applications are not checked. Traffic from and to the node needs no rule
// (Kubernetes always allows it). Deny rules are not exported.
func NetworkPolicies(p policy.Policy, namespace string) ([]byte, error) {
	x, err := newExporter(p, namespace, formatNetworkPolicy)
	if err != nil {
		return nil, err
	}
	var docs []*yaml.Node
	for _, t := range x.targets {
		docs = append(docs, x.networkPolicy(t))
	}
	return x.stream(docs)
}

// CiliumPolicies writes CiliumNetworkPolicy objects (cilium.io/v2), like NetworkPolicies
// but in Cilium's terms: endpointSelector and fromEndpoints/toEndpoints from the same
// labels, toPorts without L7 rules, entities for external (world) and host, and toFQDNs
// for DNS names (matchName) and dns criteria (matchPattern; Vigil's leading "*." becomes
// Cilium's "**.", which also spans several labels). A group whose egress is restricted
// may reach kube-dns on port 53 with the DNS rule Cilium needs to learn the addresses of
// toFQDNs names.
func CiliumPolicies(p policy.Policy, namespace string) ([]byte, error) {
	x, err := newExporter(p, namespace, formatCilium)
	if err != nil {
		return nil, err
	}
	var docs []*yaml.Node
	for _, t := range x.targets {
		docs = append(docs, x.ciliumPolicy(t))
	}
	return x.stream(docs)
}

type format uint8

const (
	formatNetworkPolicy format = iota + 1
	formatCilium
)

func (f format) String() string {
	if f == formatCilium {
		return "CiliumNetworkPolicy"
	}
	return "NetworkPolicy"
}

type peerKind uint8

const (
	peerPods     peerKind = iota + 1 // pods chosen by labels
	peerCIDRs                        // addresses
	peerWorld                        // any address outside the cluster
	peerHost                         // the node
	peerFQDNs                        // DNS names or patterns
	peerAnywhere                     // cannot be written: any peer
)

// peer is an end of a rule in the terms both formats share.
type peer struct {
	kind  peerKind
	group string // peerPods: the group
	pods  selector
	ns    nsScope
	cidrs []string
	fqdns []fqdn
	// note says how the peer was chosen when it is not exact, for a comment.
	note string
}

type fqdn struct{ name, pattern string }

type requirement struct {
	key, op string
	values  []string
}

// selector is a Kubernetes label selector.
type selector struct {
	labels map[string]string
	exprs  []requirement
}

// nsScope is the namespaces of a group of pods: any, the ones named, or (neither) the
// namespace the export was asked for.
type nsScope struct {
	any   bool
	names []string
}

type entry struct {
	rule policy.Rule
	peer peer
}

// target is one exported object: a group of pods, the rules that reach it (in) and the
// rules it reaches out with (out).
type target struct {
	self    peer
	in, out []entry
	egress  bool
}

type exporter struct {
	format    format
	namespace string
	groups    map[string]policy.Group
	defMode   policy.Mode
	rules     int // allow rules exported
	targets   []*target
	notes     []string // for the head of the stream
}

var (
	dnsLabelRe   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	labelNameRe  = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	labelValueRe = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)
	subdomainRe  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	fqdnNameRe   = regexp.MustCompile(`^([-a-zA-Z0-9_]+[.]?)+$`)
)

func newExporter(p policy.Policy, namespace string, f format) (*exporter, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("export %s: %w", f, err)
	}
	if namespace != "" && (len(namespace) > 63 || !dnsLabelRe.MatchString(namespace)) {
		return nil, fmt.Errorf("export %s: %w namespace %q: want a DNS label (lower-case letters, digits and '-', at most 63)", f, policy.ErrInvalid, namespace)
	}
	x := &exporter{format: f, namespace: namespace, groups: make(map[string]policy.Group, len(p.Groups)), defMode: p.DefaultMode}
	for _, g := range p.Groups {
		x.groups[g.Name] = g
	}
	byGroup := make(map[string]*target)
	get := func(pe peer) *target {
		t := byGroup[pe.group]
		if t == nil {
			t = &target{self: pe}
			byGroup[pe.group] = t
		}
		return t
	}
	for _, r := range sortedRules(p.Rules) {
		if r.Action != policy.ActionAllow {
			x.notes = append(x.notes, fmt.Sprintf("Not exported: %s (%s): a %s only allows; what the rule denies is blocked unless an allow rule here covers it.", r.ID, sentence(r), f))
			continue
		}
		from, to := x.resolve(r.From), x.resolve(r.To)
		if from.kind != peerPods && to.kind != peerPods {
			why := "neither end is a group of pods"
			for _, n := range []string{from.note, to.note} {
				if n != "" {
					why += "; " + n
				}
			}
			x.notes = append(x.notes, fmt.Sprintf("Not exported: %s (%s): %s.", r.ID, sentence(r), why))
			continue
		}
		x.rules++
		if to.kind == peerPods {
			t := get(to)
			t.in = append(t.in, entry{rule: r, peer: from})
		}
		if from.kind == peerPods {
			t := get(from)
			t.out = append(t.out, entry{rule: r, peer: to})
			if to.kind == peerCIDRs || to.kind == peerWorld || to.kind == peerFQDNs {
				t.egress = true
			}
		}
	}
	for _, t := range byGroup {
		if len(t.in) > 0 || t.egress {
			x.targets = append(x.targets, t)
		}
	}
	slices.SortFunc(x.targets, func(a, b *target) int { return strings.Compare(a.self.group, b.self.group) })
	return x, nil
}

// resolve turns a rule's endpoint (valid: the policy was validated) into a peer.
func (x *exporter) resolve(endpoint string) peer {
	e, err := policy.ParseEndpoint(endpoint)
	if err != nil {
		return peer{kind: peerAnywhere, note: err.Error()}
	}
	switch e.Kind {
	case policy.KindExternal:
		if e.Name == "" {
			return peer{kind: peerWorld}
		}
		return peer{kind: peerFQDNs, fqdns: []fqdn{{name: e.Name}}}
	case policy.KindHost:
		return peer{kind: peerHost}
	case policy.KindAddress:
		return peer{kind: peerCIDRs, cidrs: []string{netip.PrefixFrom(e.Addr, e.Addr.BitLen()).String()}}
	}
	g, ok := x.groups[e.Name]
	if !ok || g.Origin != policy.GroupCustom {
		return x.convention(e.Name, "")
	}
	var labels, addrs, names, other []policy.Criterion
	for _, c := range g.Criteria {
		switch c.Kind {
		case policy.CriterionLabel:
			labels = append(labels, c)
		case policy.CriterionAddress:
			addrs = append(addrs, c)
		case policy.CriterionDNS:
			names = append(names, c)
		default:
			other = append(other, c)
		}
	}
	workloads := len(labels)+len(other) > 0
	switch {
	case !workloads && len(names) == 0:
		p := peer{kind: peerCIDRs}
		for _, c := range addrs {
			p.cidrs = append(p.cidrs, c.Value)
		}
		return p
	case !workloads && len(addrs) == 0:
		p := peer{kind: peerFQDNs}
		for _, c := range names {
			f, ok := ciliumFQDN(c.Value)
			if !ok {
				return peer{kind: peerWorld, note: fmt.Sprintf("%s: %s has no equivalent in Cilium's DNS patterns; any external address instead", e.Name, c)}
			}
			p.fqdns = append(p.fqdns, f)
		}
		return p
	case !workloads:
		return peer{kind: peerWorld, note: fmt.Sprintf("%s: address and dns criteria together cannot be written; any external address instead", e.Name)}
	case len(other)+len(addrs)+len(names) > 0:
		return x.convention(e.Name, fmt.Sprintf("its criteria (%s) cannot be written as a label selector", criteriaList(g.Criteria)))
	}
	sel, ns, why := labelSelector(labels)
	if why != "" {
		return x.convention(e.Name, why)
	}
	return peer{kind: peerPods, group: e.Name, pods: sel, ns: ns}
}

// convention selects a group's pods by the label vigil.group, as the agent names a
// container's learned group.
func (x *exporter) convention(group, why string) peer {
	value := strings.TrimPrefix(group, groupPrefix)
	if len(value) > 63 || !labelValueRe.MatchString(value) {
		return peer{kind: peerAnywhere, note: fmt.Sprintf("%s: the name does not fit a label value, so its pods cannot be selected; any peer instead", group)}
	}
	note := fmt.Sprintf("%s: pods must carry the label %s=%s", group, groupLabel, value)
	if why != "" {
		note += " (" + why + ")"
	}
	return peer{kind: peerPods, group: group, pods: selector{labels: map[string]string{groupLabel: value}}, note: note}
}

func criteriaList(cs []policy.Criterion) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, ", ")
}

// labelSelector writes label criteria as a selector: criteria of one key are
// alternatives (In), "*" is Exists. Globs other than "*" cannot be written; why says so.
func labelSelector(labels []policy.Criterion) (sel selector, ns nsScope, why string) {
	var keys []string
	values := make(map[string][]string)
	for _, c := range labels {
		if _, seen := values[c.Key]; !seen {
			keys = append(keys, c.Key)
		}
		values[c.Key] = append(values[c.Key], c.Value)
	}
	sel.labels = make(map[string]string)
	for _, k := range keys {
		vs := values[k]
		if slices.Contains(vs, "*") {
			if k == podNamespaceLabel {
				ns.any = true
			} else if validLabelKey(k) {
				sel.exprs = append(sel.exprs, requirement{key: k, op: "Exists"})
			} else {
				return selector{}, nsScope{}, fmt.Sprintf("%q is not a Kubernetes label key", k)
			}
			continue
		}
		slices.Sort(vs)
		vs = slices.Compact(vs)
		for _, v := range vs {
			if strings.ContainsAny(v, "*?") {
				return selector{}, nsScope{}, fmt.Sprintf("label:%s=%s is a pattern a label selector cannot express", k, v)
			}
			if k == podNamespaceLabel && (len(v) > 63 || !dnsLabelRe.MatchString(v)) {
				return selector{}, nsScope{}, fmt.Sprintf("%q is not a namespace name", v)
			}
			if len(v) > 63 || !labelValueRe.MatchString(v) {
				return selector{}, nsScope{}, fmt.Sprintf("%q is not a Kubernetes label value", v)
			}
		}
		switch {
		case k == podNamespaceLabel:
			ns.names = vs
		case !validLabelKey(k):
			return selector{}, nsScope{}, fmt.Sprintf("%q is not a Kubernetes label key", k)
		case len(vs) == 1:
			sel.labels[k] = vs[0]
		default:
			sel.exprs = append(sel.exprs, requirement{key: k, op: "In", values: vs})
		}
	}
	return sel, ns, ""
}

func validLabelKey(k string) bool {
	prefix, name, ok := strings.Cut(k, "/")
	if !ok {
		prefix, name = "", k
	} else if prefix == "" || len(prefix) > 253 || !subdomainRe.MatchString(prefix) {
		return false
	}
	return len(name) <= 63 && labelNameRe.MatchString(name)
}

// ciliumFQDN writes a Vigil dns criterion as a Cilium FQDN selector. Vigil's '*' spans
// dots and Cilium's does not, so only a whole name, "*" and a leading "*." (Cilium's
// "**.") mean the same in both.
func ciliumFQDN(v string) (fqdn, bool) {
	switch {
	case !strings.ContainsAny(v, "*?"):
		return fqdn{name: v}, fqdnNameRe.MatchString(v)
	case v == "*":
		return fqdn{pattern: "*"}, true
	case strings.HasPrefix(v, "*.") && !strings.ContainsAny(v[2:], "*?"):
		return fqdn{pattern: "**." + v[2:]}, fqdnNameRe.MatchString(v[2:])
	}
	return fqdn{}, false
}

// namespaceOf is where a target's object goes.
func (x *exporter) namespaceOf(t *target) string {
	if len(t.self.ns.names) == 1 {
		return t.self.ns.names[0]
	}
	return x.namespace
}

// peerNamespaces returns the namespaces a peer's pods must be looked for in, from an
// object in namespace ns: nil for ns itself, an empty non-nil slice for any.
func (x *exporter) peerNamespaces(p peer, ns string) (names []string, anyNS bool) {
	if p.ns.any {
		return nil, true
	}
	names = p.ns.names
	if len(names) == 0 && x.namespace != "" {
		names = []string{x.namespace}
	}
	if len(names) == 0 || (len(names) == 1 && names[0] == ns) {
		return nil, false
	}
	return names, false
}

func (x *exporter) modeOf(group string) policy.Mode {
	if g, ok := x.groups[group]; ok {
		return g.Mode
	}
	return x.defMode
}

// objectName turns a group name into an object name (a DNS subdomain): "vigil.web"
// stays, "web-tier" becomes "vigil-web-tier" (so that a group "web" and the learned
// "vigil.web" differ), and a name that has to change further keeps a short hash of the
// original so that two groups never share an object.
func objectName(group string) string {
	name := group
	if !strings.HasPrefix(name, groupPrefix) {
		name = "vigil-" + name
	}
	if len(name) <= 253 && subdomainRe.MatchString(name) {
		return name
	}
	base := strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(name))
	if len(base) > 240 {
		base = base[:240]
	}
	for strings.Contains(base, "..") || strings.Contains(base, ".-") || strings.Contains(base, "-.") {
		base = strings.NewReplacer("..", ".", ".-", ".", "-.", ".").Replace(base)
	}
	sum := sha256.Sum256([]byte(group))
	return strings.Trim(base, ".-") + "-" + hex.EncodeToString(sum[:4])
}

func (x *exporter) metadata(t *target, ns string) *yaml.Node {
	m := mapping("name", scalar(objectName(t.self.group)))
	if ns != "" {
		add(m, "namespace", scalar(ns))
	}
	add(m, "labels", mapping(managedByLabel, scalar("vigil")))
	add(m, "annotations", mapping(groupAnnot, scalar(t.self.group), modeAnnot, scalar(x.modeOf(t.self.group).String())))
	return m
}

func (x *exporter) head(t *target) string {
	lines := []string{fmt.Sprintf("Vigil group %s (%s mode in Vigil; enforced as soon as it is applied).", t.self.group, x.modeOf(t.self.group))}
	if t.self.note != "" {
		lines = append(lines, "The selector: "+t.self.note+".")
	}
	if len(t.self.ns.names) > 1 || t.self.ns.any {
		ns := x.namespaceOf(t)
		if ns == "" {
			ns = "the one it is applied to"
		}
		lines = append(lines, fmt.Sprintf("The group spans namespaces; this object covers namespace %s only.", ns))
	}
	if t.egress {
		lines = append(lines, "Egress is restricted because the group reaches addresses outside the cluster.")
	}
	return strings.Join(lines, "\n")
}

// stream writes the objects as one YAML stream under a comment that says what was
// exported and what was not.
func (x *exporter) stream(docs []*yaml.Node) ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s objects exported by Vigil: %d objects for %d allow rules.\n", x.format, len(docs), x.rules)
	b.WriteString("# They are enforced as soon as they are applied, whatever the groups' modes in Vigil.\n")
	b.WriteString("# Read the comments: what the format cannot say exactly is widened, and says so.\n")
	for _, n := range x.notes {
		b.WriteString("# " + n + "\n")
	}
	if len(docs) == 0 {
		return []byte(b.String()), nil
	}
	body, err := encode(docs...)
	if err != nil {
		return nil, err
	}
	return append([]byte(b.String()+"---\n"), body...), nil
}

// comment heads an entry: the rule in words, then what was lost in translation.
func (x *exporter) comment(e entry, notes ...string) string {
	lines := []string{e.rule.ID + ": " + sentence(e.rule)}
	if e.peer.note != "" {
		lines = append(lines, e.peer.note)
	}
	if len(e.rule.Apps) > 0 {
		lines = append(lines, fmt.Sprintf("not checked: application %s (a %s without L7 rules sees addresses and ports only)", strings.Join(e.rule.Apps, ", "), x.format))
	}
	for _, n := range notes {
		if n != "" {
			lines = append(lines, n)
		}
	}
	return strings.Join(lines, "\n")
}

// portsAll reports whether a rule's ports must be written as every port: "any", or a
// protocol without ports (ICMP), which neither format can name. The note says which.
func portsAll(ports []policy.PortRange) (all bool, note string) {
	for _, pr := range ports {
		if pr.Proto == policy.ProtoAny {
			return true, ""
		}
	}
	for _, pr := range ports {
		if pr.Proto != policy.ProtoTCP && pr.Proto != policy.ProtoUDP && pr.Proto != policy.ProtoSCTP {
			return true, fmt.Sprintf("widened: %s cannot be named, so every protocol and port of this peer is allowed", pr)
		}
	}
	return false, ""
}

func protoName(p policy.Proto) string { return strings.ToUpper(p.String()) }

func intNode(n int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(n)}
}

func selectorNode(s selector) *yaml.Node {
	m := mapping()
	if len(s.labels) > 0 {
		ml := mapping()
		keys := make([]string, 0, len(s.labels))
		for k := range s.labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			add(ml, k, scalar(s.labels[k]))
		}
		add(m, "matchLabels", ml)
	}
	if len(s.exprs) > 0 {
		list := sequence()
		for _, r := range s.exprs {
			e := mapping("key", scalar(r.key), "operator", scalar(r.op))
			if len(r.values) > 0 {
				vs := flow(sequence())
				for _, v := range r.values {
					vs.Content = append(vs.Content, scalar(v))
				}
				add(e, "values", vs)
			}
			list.Content = append(list.Content, e)
		}
		add(m, "matchExpressions", list)
	}
	return m
}

func withNamespaces(s selector, key string, names []string, anyNS bool) selector {
	out := selector{labels: make(map[string]string, len(s.labels)+1), exprs: slices.Clone(s.exprs)}
	for k, v := range s.labels {
		out.labels[k] = v
	}
	switch {
	case anyNS:
		out.exprs = append(out.exprs, requirement{key: key, op: "Exists"})
	case len(names) == 1:
		out.labels[key] = names[0]
	case len(names) > 1:
		out.exprs = append(out.exprs, requirement{key: key, op: "In", values: names})
	}
	return out
}

// NetworkPolicy

func (x *exporter) networkPolicy(t *target) *yaml.Node {
	ns := x.namespaceOf(t)
	spec := mapping("podSelector", selectorNode(t.self.pods))
	types := flow(sequence())
	if len(t.in) > 0 {
		types.Content = append(types.Content, scalar("Ingress"))
	}
	if t.egress {
		types.Content = append(types.Content, scalar("Egress"))
	}
	add(spec, "policyTypes", types)
	var implied []string
	if len(t.in) > 0 {
		list := sequence()
		for _, e := range t.in {
			if item := x.npEntry(e, "from", ns, &implied); item != nil {
				list.Content = append(list.Content, item)
			}
		}
		if len(list.Content) > 0 {
			add(spec, "ingress", list)
		}
	}
	if t.egress {
		list := sequence()
		for _, e := range t.out {
			if item := x.npEntry(e, "to", ns, &implied); item != nil {
				list.Content = append(list.Content, item)
			}
		}
		dns := mapping(
			"to", sequence(mapping(
				"namespaceSelector", selectorNode(selector{labels: map[string]string{namespaceNameLabel: "kube-system"}}),
				"podSelector", selectorNode(selector{labels: map[string]string{"k8s-app": "kube-dns"}}),
			)),
			"ports", sequence(
				mapping("protocol", scalar("UDP"), "port", intNode(53)),
				mapping("protocol", scalar("TCP"), "port", intNode(53)),
			),
		)
		dns.HeadComment = "DNS to kube-dns, so that the pods can still resolve names (not a Vigil rule)"
		list.Content = append(list.Content, dns)
		add(spec, "egress", list)
	}
	doc := mapping("apiVersion", scalar("networking.k8s.io/v1"), "kind", scalar("NetworkPolicy"),
		"metadata", x.metadata(t, ns), "spec", spec)
	head := x.head(t)
	for _, s := range implied {
		head += "\n" + s
	}
	doc.HeadComment = head
	return doc
}

// npEntry writes one ingress ("from") or egress ("to") rule, or nil for traffic that
// Kubernetes allows without one (the node), noted in implied.
func (x *exporter) npEntry(e entry, dir, ns string, implied *[]string) *yaml.Node {
	item := mapping()
	var widened string
	switch p := e.peer; p.kind {
	case peerHost:
		*implied = append(*implied, fmt.Sprintf("%s (%s) needs no rule: Kubernetes always allows traffic between a pod and its node.", e.rule.ID, sentence(e.rule)))
		return nil
	case peerPods:
		pe := mapping()
		names, anyNS := x.peerNamespaces(p, ns)
		if anyNS || len(names) > 0 {
			add(pe, "namespaceSelector", selectorNode(withNamespaces(selector{}, namespaceNameLabel, names, anyNS)))
		}
		add(pe, "podSelector", selectorNode(p.pods))
		add(item, dir, sequence(pe))
	case peerCIDRs:
		list := sequence()
		for _, c := range p.cidrs {
			list.Content = append(list.Content, mapping("ipBlock", mapping("cidr", scalar(c))))
		}
		add(item, dir, list)
	case peerWorld, peerFQDNs:
		if p.kind == peerFQDNs {
			widened = "widened: a NetworkPolicy cannot name DNS names, so any address is allowed on these ports"
		} else {
			widened = "external: a NetworkPolicy cannot tell outside addresses from the cluster's, so any address is allowed"
		}
		add(item, dir, sequence(
			mapping("ipBlock", mapping("cidr", scalar("0.0.0.0/0"))),
			mapping("ipBlock", mapping("cidr", scalar("::/0"))),
		))
	case peerAnywhere:
		widened = "widened: no " + dir + ", so any peer is allowed"
	}
	all, portNote := portsAll(e.rule.Ports)
	if !all {
		list := sequence()
		for _, pr := range e.rule.Ports {
			m := mapping("protocol", scalar(protoName(pr.Proto)))
			if !pr.IsAny() {
				add(m, "port", intNode(int(pr.First)))
				if pr.Last != pr.First {
					add(m, "endPort", intNode(int(pr.Last)))
				}
			}
			list.Content = append(list.Content, m)
		}
		add(item, "ports", list)
	}
	if len(item.Content) == 0 {
		// An empty rule is written {} and allows everything, as intended, but say so.
		widened = "allows every peer, protocol and port"
	}
	item.HeadComment = x.comment(e, widened, portNote)
	return item
}

// CiliumNetworkPolicy

func (x *exporter) ciliumPolicy(t *target) *yaml.Node {
	ns := x.namespaceOf(t)
	spec := mapping("endpointSelector", selectorNode(t.self.pods))
	if len(t.in) > 0 {
		list := sequence()
		for _, e := range t.in {
			list.Content = append(list.Content, x.ciliumEntry(e, "from", ns))
		}
		add(spec, "ingress", list)
	}
	if t.egress {
		list := sequence()
		for _, e := range t.out {
			list.Content = append(list.Content, x.ciliumEntry(e, "to", ns))
		}
		dns := mapping(
			"toEndpoints", sequence(selectorNode(selector{labels: map[string]string{
				ciliumNamespaceLabel: "kube-system",
				"k8s:k8s-app":        "kube-dns",
			}})),
			"toPorts", sequence(mapping(
				"ports", sequence(mapping("port", scalar("53"), "protocol", scalar("ANY"))),
				"rules", mapping("dns", sequence(mapping("matchPattern", scalar("*")))),
			)),
		)
		dns.HeadComment = "DNS to kube-dns, through Cilium's DNS proxy so that toFQDNs learns the addresses of names (not a Vigil rule)"
		list.Content = append(list.Content, dns)
		add(spec, "egress", list)
	}
	doc := mapping("apiVersion", scalar("cilium.io/v2"), "kind", scalar("CiliumNetworkPolicy"),
		"metadata", x.metadata(t, ns), "spec", spec)
	doc.HeadComment = x.head(t)
	return doc
}

func (x *exporter) ciliumEntry(e entry, dir, ns string) *yaml.Node {
	item := mapping()
	var widened string
	entities := func(names ...string) {
		list := flow(sequence())
		for _, n := range names {
			list.Content = append(list.Content, scalar(n))
		}
		add(item, dir+"Entities", list)
	}
	switch p := e.peer; p.kind {
	case peerPods:
		names, anyNS := x.peerNamespaces(p, ns)
		add(item, dir+"Endpoints", sequence(selectorNode(withNamespaces(p.pods, ciliumNamespaceLabel, names, anyNS))))
	case peerCIDRs:
		list := sequence()
		for _, c := range p.cidrs {
			list.Content = append(list.Content, scalar(c))
		}
		add(item, dir+"CIDR", list)
	case peerHost:
		entities("host")
	case peerWorld:
		entities("world")
	case peerFQDNs:
		if dir == "from" {
			widened = "widened: a connection cannot be allowed by the DNS name of its client, so any external address is"
			entities("world")
			break
		}
		list := sequence()
		for _, f := range p.fqdns {
			if f.name != "" {
				list.Content = append(list.Content, mapping("matchName", scalar(f.name)))
			} else {
				list.Content = append(list.Content, mapping("matchPattern", scalar(f.pattern)))
			}
		}
		add(item, "toFQDNs", list)
	case peerAnywhere:
		widened = "widened: any peer is allowed"
		entities("all")
	}
	all, portNote := portsAll(e.rule.Ports)
	if !all {
		rules := sequence()
		for chunk := range slices.Chunk(e.rule.Ports, maxCiliumPorts) {
			list := sequence()
			for _, pr := range chunk {
				m := mapping()
				if pr.IsAny() {
					add(m, "port", scalar("0"))
				} else {
					add(m, "port", scalar(strconv.Itoa(int(pr.First))))
					if pr.Last != pr.First {
						add(m, "endPort", intNode(int(pr.Last)))
					}
				}
				add(m, "protocol", scalar(protoName(pr.Proto)))
				list.Content = append(list.Content, m)
			}
			rules.Content = append(rules.Content, mapping("ports", list))
		}
		add(item, "toPorts", rules)
	}
	item.HeadComment = x.comment(e, widened, portNote)
	return item
}
