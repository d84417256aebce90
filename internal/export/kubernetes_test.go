package export

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-sec/vigil/internal/policy"
	"github.com/vigil-sec/vigil/internal/workload"
)

// Plain mirrors of the fields the exports write, after networking.k8s.io/v1 and
// cilium.io/v2. Decoding with KnownFields rejects any field they do not declare, so a
// misspelt or misplaced field fails the test.

type objectMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type k8sSelector struct {
	MatchLabels      map[string]string `yaml:"matchLabels"`
	MatchExpressions []struct {
		Key      string   `yaml:"key"`
		Operator string   `yaml:"operator"`
		Values   []string `yaml:"values"`
	} `yaml:"matchExpressions"`
}

type networkPolicy struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       struct {
		PodSelector *k8sSelector `yaml:"podSelector"`
		PolicyTypes []string     `yaml:"policyTypes"`
		Ingress     []npRule     `yaml:"ingress"`
		Egress      []npRule     `yaml:"egress"`
	} `yaml:"spec"`
}

type npRule struct {
	From  []npPeer `yaml:"from"`
	To    []npPeer `yaml:"to"`
	Ports []struct {
		Protocol string `yaml:"protocol"`
		Port     *int   `yaml:"port"`
		EndPort  *int   `yaml:"endPort"`
	} `yaml:"ports"`
}

type npPeer struct {
	PodSelector       *k8sSelector `yaml:"podSelector"`
	NamespaceSelector *k8sSelector `yaml:"namespaceSelector"`
	IPBlock           *struct {
		CIDR   string   `yaml:"cidr"`
		Except []string `yaml:"except"`
	} `yaml:"ipBlock"`
}

type ciliumPolicy struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       struct {
		EndpointSelector *k8sSelector `yaml:"endpointSelector"`
		Ingress          []ciliumRule `yaml:"ingress"`
		Egress           []ciliumRule `yaml:"egress"`
	} `yaml:"spec"`
}

type ciliumRule struct {
	FromEndpoints []k8sSelector `yaml:"fromEndpoints"`
	FromCIDR      []string      `yaml:"fromCIDR"`
	FromEntities  []string      `yaml:"fromEntities"`
	ToEndpoints   []k8sSelector `yaml:"toEndpoints"`
	ToCIDR        []string      `yaml:"toCIDR"`
	ToEntities    []string      `yaml:"toEntities"`
	ToFQDNs       []struct {
		MatchName    string `yaml:"matchName"`
		MatchPattern string `yaml:"matchPattern"`
	} `yaml:"toFQDNs"`
	ToPorts []struct {
		Ports []struct {
			Port     string `yaml:"port"`
			EndPort  *int   `yaml:"endPort"`
			Protocol string `yaml:"protocol"`
		} `yaml:"ports"`
		Rules *struct {
			DNS []struct {
				MatchPattern string `yaml:"matchPattern"`
			} `yaml:"dns"`
		} `yaml:"rules"`
	} `yaml:"toPorts"`
}

// decodeAll decodes every document of a stream strictly into a new T each.
func decodeAll[T any](t *testing.T, data []byte) []T {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var out []T
	for {
		var v T
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("document %d: %v", len(out), err)
		}
		out = append(out, v)
	}
}

func checkMeta(t *testing.T, m objectMeta, wantNS string) {
	t.Helper()
	if len(m.Name) > 253 || !subdomainRe.MatchString(m.Name) {
		t.Errorf("name %q is not a DNS subdomain", m.Name)
	}
	if m.Namespace != wantNS && !dnsLabelRe.MatchString(m.Namespace) {
		t.Errorf("%s: namespace %q", m.Name, m.Namespace)
	}
	if m.Labels[managedByLabel] != "vigil" || m.Annotations[groupAnnot] == "" {
		t.Errorf("%s: labels %v annotations %v", m.Name, m.Labels, m.Annotations)
	}
	if _, err := policy.ParseMode(m.Annotations[modeAnnot]); err != nil {
		t.Errorf("%s: %v", m.Name, err)
	}
}

func checkSelector(t *testing.T, where string, s *k8sSelector, cilium bool) {
	t.Helper()
	if s == nil {
		t.Errorf("%s: no selector", where)
		return
	}
	key := func(k string) string {
		if cilium {
			k = strings.TrimPrefix(k, "k8s:")
		}
		return k
	}
	for k, v := range s.MatchLabels {
		if !validLabelKey(key(k)) || len(v) > 63 || !labelValueRe.MatchString(v) {
			t.Errorf("%s: label %q=%q", where, k, v)
		}
	}
	for _, e := range s.MatchExpressions {
		if !validLabelKey(key(e.Key)) {
			t.Errorf("%s: key %q", where, e.Key)
		}
		switch e.Operator {
		case "In", "NotIn":
			if len(e.Values) == 0 {
				t.Errorf("%s: %s without values", where, e.Operator)
			}
		case "Exists", "DoesNotExist":
			if len(e.Values) != 0 {
				t.Errorf("%s: %s with values", where, e.Operator)
			}
		default:
			t.Errorf("%s: operator %q", where, e.Operator)
		}
	}
}

func checkCIDR(t *testing.T, where, c string) {
	t.Helper()
	p, err := netip.ParsePrefix(c)
	if err != nil || p != p.Masked() {
		t.Errorf("%s: CIDR %q", where, c)
	}
}

func TestNetworkPolicies(t *testing.T) {
	p := richPolicy()
	out, err := NetworkPolicies(p, "shop")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "networkpolicy.yaml", out)
	nps := decodeAll[networkPolicy](t, out)
	if len(nps) != 4 {
		t.Fatalf("%d NetworkPolicies, want 4 (payments, vigil.db, vigil.shop-api, vigil.web)", len(nps))
	}
	byName := make(map[string]networkPolicy)
	for _, np := range nps {
		if np.APIVersion != "networking.k8s.io/v1" || np.Kind != "NetworkPolicy" {
			t.Errorf("%s: %s %s", np.Metadata.Name, np.APIVersion, np.Kind)
		}
		checkMeta(t, np.Metadata, "shop")
		checkSelector(t, np.Metadata.Name+" podSelector", np.Spec.PodSelector, false)
		if got, want := slices.Contains(np.Spec.PolicyTypes, "Ingress"), len(np.Spec.Ingress) > 0; want && !got {
			t.Errorf("%s: ingress rules without the Ingress policy type", np.Metadata.Name)
		}
		if got, want := slices.Contains(np.Spec.PolicyTypes, "Egress"), len(np.Spec.Egress) > 0; got != want {
			t.Errorf("%s: policyTypes %v with %d egress rules", np.Metadata.Name, np.Spec.PolicyTypes, len(np.Spec.Egress))
		}
		for _, dir := range []struct {
			name  string
			rules []npRule
		}{{"ingress", np.Spec.Ingress}, {"egress", np.Spec.Egress}} {
			for i, r := range dir.rules {
				where := np.Metadata.Name + " " + dir.name + "[" + strconv.Itoa(i) + "]"
				peers := r.From
				if dir.name == "egress" {
					peers = r.To
					if len(r.From) > 0 {
						t.Errorf("%s: from in an egress rule", where)
					}
				} else if len(r.To) > 0 {
					t.Errorf("%s: to in an ingress rule", where)
				}
				for _, pe := range peers {
					if (pe.IPBlock != nil) == (pe.PodSelector != nil || pe.NamespaceSelector != nil) {
						t.Errorf("%s: a peer is an ipBlock or selectors, not both nor neither", where)
					}
					if pe.IPBlock != nil {
						checkCIDR(t, where, pe.IPBlock.CIDR)
					}
					if pe.PodSelector != nil {
						checkSelector(t, where+" podSelector", pe.PodSelector, false)
					}
					if pe.NamespaceSelector != nil {
						checkSelector(t, where+" namespaceSelector", pe.NamespaceSelector, false)
					}
				}
				for _, pp := range r.Ports {
					if pp.Protocol != "TCP" && pp.Protocol != "UDP" && pp.Protocol != "SCTP" {
						t.Errorf("%s: protocol %q", where, pp.Protocol)
					}
					if pp.Port != nil && (*pp.Port < 1 || *pp.Port > 65535) {
						t.Errorf("%s: port %d", where, *pp.Port)
					}
					if pp.EndPort != nil && (pp.Port == nil || *pp.EndPort <= *pp.Port || *pp.EndPort > 65535) {
						t.Errorf("%s: endPort %d after port %v", where, *pp.EndPort, pp.Port)
					}
				}
			}
		}
		byName[np.Metadata.Name] = np
	}

	// What the policy says, read from the objects.
	db := byName["vigil.db"]
	if db.Spec.PodSelector.MatchLabels[groupLabel] != "db" || len(db.Spec.Ingress) != 2 || len(db.Spec.PolicyTypes) != 1 {
		t.Errorf("vigil.db: %+v", db.Spec)
	}
	if pay := byName["vigil-payments"]; pay.Metadata.Namespace != "billing" || pay.Spec.PodSelector.MatchLabels["app"] != "payments" {
		t.Errorf("payments goes to its own namespace and selects app=payments: %+v", pay)
	} else if ns := pay.Spec.Ingress[0].From[0].NamespaceSelector; ns == nil || ns.MatchLabels[namespaceNameLabel] != "shop" {
		t.Errorf("payments: a peer from namespace shop needs a namespaceSelector: %+v", pay.Spec.Ingress[0])
	}
	api := byName["vigil.shop-api"]
	if len(api.Spec.Egress) != 5 || !slices.Equal(api.Spec.PolicyTypes, []string{"Ingress", "Egress"}) {
		t.Errorf("vigil.shop-api: want 4 egress rules and DNS, got %d, types %v", len(api.Spec.Egress), api.Spec.PolicyTypes)
	}
	legacy := api.Spec.Egress[0]
	if legacy.To[0].IPBlock.CIDR != "10.0.0.7/32" || *legacy.Ports[0].Port != 9000 || *legacy.Ports[0].EndPort != 9100 {
		t.Errorf("address rule: %+v", legacy)
	}
	text := string(out)
	for _, r := range p.Rules {
		if !strings.Contains(text, r.ID+" ") && !strings.Contains(text, r.ID+":") {
			t.Errorf("rule %s is not mentioned in the output", r.ID)
		}
	}
	for _, s := range []string{"pods must carry the label vigil.group=web", "Not exported: u-ci-db", "widened: a NetworkPolicy cannot name DNS names", "l-host-web (host may connect to vigil.web on tcp/8080 with http) needs no rule"} {
		if !strings.Contains(text, s) {
			t.Errorf("no comment %q", s)
		}
	}
}

func TestCiliumPolicies(t *testing.T) {
	out, err := CiliumPolicies(richPolicy(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "cilium.yaml", out)
	cnps := decodeAll[ciliumPolicy](t, out)
	if len(cnps) != 4 {
		t.Fatalf("%d CiliumNetworkPolicies, want 4", len(cnps))
	}
	entities := []string{"all", "world", "cluster", "host", "remote-node", "kube-apiserver", "init", "health", "unmanaged", "none", "ingress"}
	byName := make(map[string]ciliumPolicy)
	for _, c := range cnps {
		if c.APIVersion != "cilium.io/v2" || c.Kind != "CiliumNetworkPolicy" {
			t.Errorf("%s: %s %s", c.Metadata.Name, c.APIVersion, c.Kind)
		}
		checkMeta(t, c.Metadata, "shop")
		checkSelector(t, c.Metadata.Name+" endpointSelector", c.Spec.EndpointSelector, true)
		if len(c.Spec.Ingress)+len(c.Spec.Egress) == 0 {
			t.Errorf("%s: neither ingress nor egress", c.Metadata.Name)
		}
		for _, dir := range []struct {
			name  string
			rules []ciliumRule
		}{{"ingress", c.Spec.Ingress}, {"egress", c.Spec.Egress}} {
			for i, r := range dir.rules {
				where := c.Metadata.Name + " " + dir.name + "[" + strconv.Itoa(i) + "]"
				from := b2i(len(r.FromEndpoints) > 0) + b2i(len(r.FromCIDR) > 0) + b2i(len(r.FromEntities) > 0)
				to := b2i(len(r.ToEndpoints) > 0) + b2i(len(r.ToCIDR) > 0) + b2i(len(r.ToEntities) > 0) + b2i(len(r.ToFQDNs) > 0)
				if dir.name == "ingress" && (from != 1 || to != 0) || dir.name == "egress" && (to != 1 || from != 0) {
					t.Errorf("%s: want exactly one peer of the rule's direction (toFQDNs may not share a rule with other to*)", where)
				}
				for j := range r.FromEndpoints {
					checkSelector(t, where, &r.FromEndpoints[j], true)
				}
				for j := range r.ToEndpoints {
					checkSelector(t, where, &r.ToEndpoints[j], true)
				}
				for _, cidr := range append(slices.Clone(r.FromCIDR), r.ToCIDR...) {
					checkCIDR(t, where, cidr)
				}
				for _, e := range append(slices.Clone(r.FromEntities), r.ToEntities...) {
					if !slices.Contains(entities, e) {
						t.Errorf("%s: entity %q", where, e)
					}
				}
				for _, f := range r.ToFQDNs {
					switch {
					case (f.MatchName == "") == (f.MatchPattern == ""):
						t.Errorf("%s: an FQDN selector has matchName or matchPattern", where)
					case f.MatchName != "" && !fqdnNameRe.MatchString(f.MatchName):
						t.Errorf("%s: matchName %q", where, f.MatchName)
					case f.MatchPattern != "" && !regexpFQDNPattern.MatchString(f.MatchPattern):
						t.Errorf("%s: matchPattern %q", where, f.MatchPattern)
					}
				}
				for _, tp := range r.ToPorts {
					if len(tp.Ports) == 0 || len(tp.Ports) > maxCiliumPorts {
						t.Errorf("%s: %d ports in one port rule", where, len(tp.Ports))
					}
					for _, pp := range tp.Ports {
						n, err := strconv.Atoi(pp.Port)
						if err != nil || n < 0 || n > 65535 {
							t.Errorf("%s: port %q", where, pp.Port)
						}
						if pp.EndPort != nil && (n == 0 || *pp.EndPort <= n || *pp.EndPort > 65535) {
							t.Errorf("%s: endPort %d after port %d", where, *pp.EndPort, n)
						}
						if !slices.Contains([]string{"TCP", "UDP", "SCTP", "ANY"}, pp.Protocol) {
							t.Errorf("%s: protocol %q", where, pp.Protocol)
						}
					}
					if tp.Rules != nil && (len(tp.Rules.DNS) == 0 || tp.Ports[0].Port != "53") {
						t.Errorf("%s: the only L7 rule written is the DNS rule on port 53: %+v", where, tp.Rules)
					}
				}
			}
		}
		byName[c.Metadata.Name] = c
	}

	api := byName["vigil.shop-api"]
	var names, patterns []string
	for _, r := range api.Spec.Egress {
		for _, f := range r.ToFQDNs {
			names = append(names, f.MatchName)
			patterns = append(patterns, f.MatchPattern)
		}
	}
	if !slices.Contains(names, "api.stripe.com") || !slices.Contains(names, "hooks.slack.com") || !slices.Contains(patterns, "**.stripe.com") {
		t.Errorf("toFQDNs: names %q patterns %q", names, patterns)
	}
	dns := api.Spec.Egress[len(api.Spec.Egress)-1]
	if dns.ToEndpoints[0].MatchLabels["k8s:k8s-app"] != "kube-dns" || dns.ToPorts[0].Rules.DNS[0].MatchPattern != "*" {
		t.Errorf("DNS visibility rule: %+v", dns)
	}
	web := byName["vigil.web"]
	var sawHost, sawWorld bool
	for _, r := range web.Spec.Ingress {
		sawHost = sawHost || slices.Contains(r.FromEntities, "host")
		sawWorld = sawWorld || slices.Contains(r.FromEntities, "world")
	}
	if !sawHost || !sawWorld {
		t.Errorf("vigil.web ingress from host and world: %+v", web.Spec.Ingress)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// regexpFQDNPattern is the CRD's pattern for matchPattern.
var regexpFQDNPattern = regexp.MustCompile(`^([-a-zA-Z0-9_*]+[.]?)+$`)

func TestKubernetesEmptyAndInvalid(t *testing.T) {
	for _, f := range []func(policy.Policy, string) ([]byte, error){NetworkPolicies, CiliumPolicies} {
		out, err := f(policy.Policy{}, "")
		if err != nil {
			t.Fatal(err)
		}
		if n := len(decodeAll[map[string]any](t, out)); n != 0 {
			t.Errorf("an empty policy gave %d objects:\n%s", n, out)
		}
		if _, err := f(richPolicy(), "Not_A_Namespace"); !errors.Is(err, policy.ErrInvalid) {
			t.Errorf("bad namespace: %v", err)
		}
		bad := richPolicy()
		bad.Groups = append(bad.Groups, bad.Groups[0])
		if _, err := f(bad, "shop"); !errors.Is(err, policy.ErrInvalid) {
			t.Errorf("invalid policy: %v", err)
		}
		// Without a namespace, objects carry none and peers need no namespaceSelector,
		// but for groups that name theirs.
		out, err = f(richPolicy(), "")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), "namespace: shop") {
			t.Errorf("namespace shop appears with no namespace asked for")
		}
		rev := richPolicy()
		slices.Reverse(rev.Rules)
		slices.Reverse(rev.Groups)
		again, err := f(rev, "")
		if err != nil || !bytes.Equal(again, out) {
			t.Errorf("output depends on the order of the input: %v\n%s", err, firstDiff(string(out), string(again)))
		}
	}
}

func TestLabelSelector(t *testing.T) {
	for _, tc := range []struct {
		criteria []string
		labels   map[string]string
		exprs    []requirement
		ns       nsScope
		fails    bool
	}{
		{criteria: []string{"label:app=web"}, labels: map[string]string{"app": "web"}},
		{criteria: []string{"label:tier=web", "label:app=x", "label:tier=api"}, labels: map[string]string{"app": "x"},
			exprs: []requirement{{key: "tier", op: "In", values: []string{"api", "web"}}}},
		{criteria: []string{"label:team=*", "label:team=a"}, labels: map[string]string{}, exprs: []requirement{{key: "team", op: "Exists"}}},
		{criteria: []string{"label:app=web", "label:io.kubernetes.pod.namespace=shop"}, labels: map[string]string{"app": "web"}, ns: nsScope{names: []string{"shop"}}},
		{criteria: []string{"label:io.kubernetes.pod.namespace=*"}, labels: map[string]string{}, ns: nsScope{any: true}},
		{criteria: []string{"label:app=web-*"}, fails: true},
		{criteria: []string{"label:app=we?"}, fails: true},
		{criteria: []string{"label:app=has space"}, fails: true},
		{criteria: []string{"label:-bad=x"}, fails: true},
		{criteria: []string{"label:io.kubernetes.pod.namespace=Shop"}, fails: true},
	} {
		var cs []policy.Criterion
		for _, s := range tc.criteria {
			cs = append(cs, crit(s))
		}
		sel, ns, why := labelSelector(cs)
		if tc.fails {
			if why == "" {
				t.Errorf("%v: written as %+v, want a reason it cannot be", tc.criteria, sel)
			}
			continue
		}
		if why != "" || !equalMaps(sel.labels, tc.labels) || !slices.EqualFunc(sel.exprs, tc.exprs, func(a, b requirement) bool {
			return a.key == b.key && a.op == b.op && slices.Equal(a.values, b.values)
		}) || ns.any != tc.ns.any || !slices.Equal(ns.names, tc.ns.names) {
			t.Errorf("%v: got %+v %+v %q", tc.criteria, sel, ns, why)
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestCiliumFQDN(t *testing.T) {
	for in, want := range map[string]fqdn{
		"api.example.com": {name: "api.example.com"},
		"*":               {pattern: "*"},
		"*.example.com":   {pattern: "**.example.com"},
	} {
		if got, ok := ciliumFQDN(in); !ok || got != want {
			t.Errorf("%q: got %+v %v, want %+v", in, got, ok, want)
		}
	}
	for _, in := range []string{"api-*.example.com", "*.*.example.com", "api?.example.com", "a..b", "*example.com"} {
		if got, ok := ciliumFQDN(in); ok {
			t.Errorf("%q written as %+v; Cilium would not match the same names", in, got)
		}
	}
}

func TestObjectName(t *testing.T) {
	seen := make(map[string]string)
	for _, g := range []string{"vigil.web", "web", "vigil-web", "web-tier", "Web-Tier", "web_tier", "a..b", "0", "vigil.A", strings.Repeat("x", 253), strings.Repeat("x", 252) + "y"} {
		n := objectName(g)
		if len(n) > 253 || !subdomainRe.MatchString(n) {
			t.Errorf("%q: %q is not a DNS subdomain", g, n)
		}
		if other, dup := seen[n]; dup {
			t.Errorf("%q and %q share the name %q", g, other, n)
		}
		seen[n] = g
	}
	if objectName("vigil.web") != "vigil.web" || objectName("web-tier") != "vigil-web-tier" {
		t.Errorf("readable names changed: %q %q", objectName("vigil.web"), objectName("web-tier"))
	}
}

func TestConventionMatchesWorkload(t *testing.T) {
	if groupLabel != workload.LabelGroup || groupPrefix != workload.GroupPrefix {
		t.Errorf("export selects learned groups by %s and prefix %q; the agent names them by %s and %q",
			groupLabel, groupPrefix, workload.LabelGroup, workload.GroupPrefix)
	}
	// A pod labelled as the export says lands in the group the export selects.
	if got := workload.GroupName(map[string]string{workload.LabelGroup: "shop-api"}, "img"); got != "vigil.shop-api" {
		t.Errorf("GroupName = %q", got)
	}
}
