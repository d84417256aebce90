package export

import (
	"time"

	"github.com/vigil-sec/vigil/internal/policy"
)

func crit(s string) policy.Criterion {
	c, err := policy.ParseCriterion(s)
	if err != nil {
		panic(err)
	}
	return c
}

func ports(s string) []policy.PortRange {
	p, err := policy.ParsePorts(s)
	if err != nil {
		panic(err)
	}
	return p
}

// richPolicy has every kind of group, endpoint, port form, action and origin, in no
// particular order, and rules with and without hits and times.
func richPolicy() policy.Policy {
	t0 := time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)
	learned := func(id, from, to, p string, apps ...string) policy.Rule {
		return policy.Rule{ID: id, From: from, To: to, Ports: ports(p), Apps: apps,
			Action: policy.ActionAllow, Origin: policy.OriginLearned, Hits: 3, LastHit: t0.Add(time.Hour), Created: t0}
	}
	user := func(id, from, to, p string, a policy.Action, apps ...string) policy.Rule {
		return policy.Rule{ID: id, From: from, To: to, Ports: ports(p), Apps: apps, Action: a, Origin: policy.OriginUser, Created: t0.Add(time.Minute)}
	}
	return policy.Policy{
		DefaultMode: policy.ModeMonitor,
		Groups: []policy.Group{
			{Name: "web-tier", Origin: policy.GroupCustom, Mode: policy.ModeProtect, Criteria: []policy.Criterion{crit("label:tier=web"), crit("label:tier=frontend")}},
			{Name: "vigil.web", Origin: policy.GroupLearned, Mode: policy.ModeDiscover},
			{Name: "vigil.db", Origin: policy.GroupLearned, Mode: policy.ModeMonitor},
			{Name: "vigil.shop-api", Origin: policy.GroupLearned, Mode: policy.ModeProtect},
			{Name: "payments", Origin: policy.GroupCustom, Mode: policy.ModeMonitor, Criteria: []policy.Criterion{crit("label:app=payments"), crit("label:io.kubernetes.pod.namespace=billing")}},
			{Name: "corp-net", Origin: policy.GroupCustom, Mode: policy.ModeDiscover, Criteria: []policy.Criterion{crit("address:10.20.0.0/16"), crit("address:192.168.1.0/24")}},
			{Name: "saas", Origin: policy.GroupCustom, Mode: policy.ModeDiscover, Criteria: []policy.Criterion{crit("dns:*.stripe.com"), crit("dns:hooks.slack.com")}},
			{Name: "builders", Origin: policy.GroupCustom, Mode: policy.ModeMonitor, Criteria: []policy.Criterion{crit("image:ghcr.io/acme/*"), crit("name:ci-*")}},
			{Name: "host", Origin: policy.GroupLearned, Mode: policy.ModeMonitor},
		},
		Rules: []policy.Rule{
			learned("l-web-db", "vigil.web", "vigil.db", "tcp/5432", "postgresql"),
			user("u-tier-api", "web-tier", "vigil.shop-api", "tcp/8080,tcp/8443", policy.ActionAllow, "http", "grpc"),
			learned("l-api-stripe", "vigil.shop-api", "external:api.stripe.com", "tcp/443", "tls"),
			{ID: "i-api-saas", From: "vigil.shop-api", To: "saas", Ports: ports("tcp/443"), Action: policy.ActionAllow, Origin: policy.OriginImported},
			user("u-api-legacy", "vigil.shop-api", "address:10.0.0.7", "tcp/9000-9100", policy.ActionAllow),
			user("u-corp-web", "corp-net", "vigil.web", "tcp/any", policy.ActionAllow),
			learned("l-ext-web", "external", "vigil.web", "tcp/80", "http"),
			user("u-ci-db", "builders", "vigil.db", "tcp/5432", policy.ActionDeny),
			learned("l-web-dns", "vigil.web", "host", "udp/53", "dns"),
			learned("l-web-ping", "vigil.web", "vigil.db", "icmp"),
			user("u-pay-api", "payments", "vigil.shop-api", "any", policy.ActionAllow),
			learned("l-api-ext", "vigil.shop-api", "external", "udp/any"),
			learned("l-host-web", "host", "vigil.web", "tcp/8080", "http"),
			learned("l-web-pay", "vigil.web", "payments", "sctp/3868"),
			user("u-web-ldap", "vigil.web", "corp-net", "tcp/636", policy.ActionAllow, "ldap"),
			{ID: "u-web-any", From: "vigil.web", To: "vigil.shop-api", Ports: ports("tcp/8080"), Action: policy.ActionAllow, Origin: policy.OriginUser},
		},
	}
}
