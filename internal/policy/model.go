package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every error that reports a malformed mode, port, endpoint,
// criterion, group, rule or policy, so that the API can tell bad input from a failure.
var ErrInvalid = errors.New("invalid")

func invalid(what, input, why string, args ...any) error {
	return fmt.Errorf("%w %s %q: %s", ErrInvalid, what, input, fmt.Sprintf(why, args...))
}

// parseName finds s among names (compared without regard to case or surrounding space),
// skipping the empty names that stand for invalid zero values.
func parseName(what string, names []string, s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for i, n := range names {
		if n != "" && n == t {
			return i, nil
		}
	}
	return 0, invalid(what, s, "want one of %s", strings.Join(nonEmpty(names), ", "))
}

func nonEmpty(names []string) []string {
	var out []string
	for _, n := range names {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

func nameOf(names []string, i int, kind string) string {
	if i >= 0 && i < len(names) && names[i] != "" {
		return names[i]
	}
	return kind + "(" + strconv.Itoa(i) + ")"
}

func marshalName(what string, names []string, i int) ([]byte, error) {
	if i < 0 || i >= len(names) || names[i] == "" {
		return nil, fmt.Errorf("%w %s %d", ErrInvalid, what, i)
	}
	return []byte(names[i]), nil
}

// Mode is how a group treats connections that no rule matches. Modes are ordered from
// the most permissive to the strictest; the zero Mode is Discover, the initial default.
type Mode uint8

const (
	ModeDiscover Mode = iota // allowed, and learned as a rule
	ModeMonitor              // allowed, and reported as a violation
	ModeProtect              // blocked, and reported as a violation
)

var modeNames = [...]string{"discover", "monitor", "protect"}

func (m Mode) String() string { return nameOf(modeNames[:], int(m), "mode") }

// ParseMode reads "discover", "monitor" or "protect".
func ParseMode(s string) (Mode, error) {
	i, err := parseName("mode", modeNames[:], s)
	return Mode(i), err
}

// MarshalText writes the mode's name, for JSON and YAML.
func (m Mode) MarshalText() ([]byte, error) { return marshalName("mode", modeNames[:], int(m)) }

// UnmarshalText reads what MarshalText wrote.
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := ParseMode(string(b))
	if err == nil {
		*m = v
	}
	return err
}

func (m Mode) valid() bool { return m <= ModeProtect }

// Stricter returns the stricter of two modes: the one that decides a connection between
// groups in different modes. A value that is not a Mode counts as stricter than Protect,
// so that a corrupt mode fails closed.
func Stricter(a, b Mode) Mode { return max(a, b) }

// Action is what a rule does with the connections it matches (allow or deny), and what a
// verdict says of a connection (any of the four).
type Action uint8

const (
	ActionAllow   Action = iota + 1 // let through: a rule allowed it
	ActionDeny                      // block: a deny rule, or no rule in Protect mode
	ActionLearn                     // let through and learn: no rule, Discover mode
	ActionViolate                   // let through and report: no rule, Monitor mode
)

var actionNames = [...]string{"", "allow", "deny", "learn", "violate"}

func (a Action) String() string { return nameOf(actionNames[:], int(a), "action") }

// ParseAction reads "allow", "deny", "learn" or "violate".
func ParseAction(s string) (Action, error) {
	i, err := parseName("action", actionNames[:], s)
	return Action(i), err
}

// MarshalText writes the action's name.
func (a Action) MarshalText() ([]byte, error) {
	return marshalName("action", actionNames[:], int(a))
}

// UnmarshalText reads what MarshalText wrote.
func (a *Action) UnmarshalText(b []byte) error {
	v, err := ParseAction(string(b))
	if err == nil {
		*a = v
	}
	return err
}

// Blocks reports whether the connection must be stopped. Anything that is not one of the
// three permissive actions blocks, so that a zero Verdict fails closed.
func (a Action) Blocks() bool {
	return a != ActionAllow && a != ActionLearn && a != ActionViolate
}

// RuleOrigin says where a rule came from.
type RuleOrigin uint8

const (
	OriginLearned  RuleOrigin = iota + 1 // written by the Learner in Discover mode
	OriginUser                           // written by a person through the API or CLI
	OriginImported                       // read from a policy file; ranks as a user rule
)

var ruleOriginNames = [...]string{"", "learned", "user", "imported"}

func (o RuleOrigin) String() string { return nameOf(ruleOriginNames[:], int(o), "origin") }

// ParseRuleOrigin reads "learned", "user" or "imported".
func ParseRuleOrigin(s string) (RuleOrigin, error) {
	i, err := parseName("rule origin", ruleOriginNames[:], s)
	return RuleOrigin(i), err
}

// MarshalText writes the origin's name.
func (o RuleOrigin) MarshalText() ([]byte, error) {
	return marshalName("rule origin", ruleOriginNames[:], int(o))
}

// UnmarshalText reads what MarshalText wrote.
func (o *RuleOrigin) UnmarshalText(b []byte) error {
	v, err := ParseRuleOrigin(string(b))
	if err == nil {
		*o = v
	}
	return err
}

// GroupOrigin says how a group's members are chosen.
type GroupOrigin uint8

const (
	// GroupLearned: the agent puts every workload in one learned group, named after its
	// compose service or image, so replicas share it. It has no criteria.
	GroupLearned GroupOrigin = iota + 1
	// GroupCustom: a person defined the group by criteria; a workload or address may
	// belong to several custom groups besides its learned one.
	GroupCustom
)

var groupOriginNames = [...]string{"", "learned", "custom"}

func (o GroupOrigin) String() string { return nameOf(groupOriginNames[:], int(o), "origin") }

// ParseGroupOrigin reads "learned" or "custom".
func ParseGroupOrigin(s string) (GroupOrigin, error) {
	i, err := parseName("group origin", groupOriginNames[:], s)
	return GroupOrigin(i), err
}

// MarshalText writes the origin's name.
func (o GroupOrigin) MarshalText() ([]byte, error) {
	return marshalName("group origin", groupOriginNames[:], int(o))
}

// UnmarshalText reads what MarshalText wrote.
func (o *GroupOrigin) UnmarshalText(b []byte) error {
	v, err := ParseGroupOrigin(string(b))
	if err == nil {
		*o = v
	}
	return err
}

// Proto is an IP protocol, by its IANA number. ProtoAny stands for every protocol.
type Proto uint8

const (
	ProtoAny    Proto = 0
	ProtoICMP   Proto = 1
	ProtoTCP    Proto = 6
	ProtoUDP    Proto = 17
	ProtoICMPv6 Proto = 58
	ProtoSCTP   Proto = 132
)

func (p Proto) String() string {
	switch p {
	case ProtoAny:
		return "any"
	case ProtoICMP:
		return "icmp"
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMPv6:
		return "icmpv6"
	case ProtoSCTP:
		return "sctp"
	}
	return "proto(" + strconv.Itoa(int(p)) + ")"
}

// ParseProto reads a protocol name as the flow table writes it ("tcp", "udp", "sctp",
// "icmp", "icmpv6"). It does not allocate, so the agent may call it per flow.
func ParseProto(s string) (Proto, error) {
	switch s {
	case "tcp", "TCP":
		return ProtoTCP, nil
	case "udp", "UDP":
		return ProtoUDP, nil
	case "sctp", "SCTP":
		return ProtoSCTP, nil
	case "icmp", "ICMP":
		return ProtoICMP, nil
	case "icmpv6", "ICMPv6", "ICMPV6":
		return ProtoICMPv6, nil
	case "any":
		return ProtoAny, nil
	}
	return 0, invalid("protocol", s, "want tcp, udp, sctp, icmp, icmpv6 or any")
}

// hasPorts reports whether the protocol carries ports. Rules for the others match every
// connection of the protocol, whatever Conn.Port holds.
func (p Proto) hasPorts() bool { return p == ProtoTCP || p == ProtoUDP || p == ProtoSCTP }

func (p Proto) known() bool {
	return p == ProtoAny || p.hasPorts() || p == ProtoICMP || p == ProtoICMPv6
}

// PortRange is the protocol and server ports of a rule: "tcp/5432", "udp/53",
// "tcp/8000-8100", "tcp/any", "icmp" or "any" (every protocol and port). Build one with
// Port, PortSpan or AnyPort; the zero PortRange is not valid, so a forgotten field is
// caught rather than read as "any".
type PortRange struct {
	Proto       Proto
	First, Last uint16
}

// Port is one port of a protocol.
func Port(p Proto, port uint16) PortRange { return PortRange{p, port, port} }

// PortSpan is the ports first to last, both included.
func PortSpan(p Proto, first, last uint16) PortRange { return PortRange{p, first, last} }

// AnyPort is every port of a protocol; AnyPort(ProtoAny) is every connection.
func AnyPort(p Proto) PortRange { return PortRange{p, 0, 65535} }

// IsAny reports whether the range covers every port of its protocol.
func (r PortRange) IsAny() bool { return r.First == 0 && r.Last == 65535 }

// Contains reports whether a connection of protocol p to server port port is in range.
func (r PortRange) Contains(p Proto, port uint16) bool {
	if r.Proto == ProtoAny {
		return true
	}
	if r.Proto != p {
		return false
	}
	return !p.hasPorts() || (r.First <= port && port <= r.Last)
}

// Validate says what is wrong with r, if anything.
func (r PortRange) Validate() error {
	switch {
	case !r.Proto.known():
		return invalid("ports", r.String(), "unknown protocol %d", r.Proto)
	case !r.Proto.hasPorts() && !r.IsAny():
		return invalid("ports", r.String(), "%s has no ports", r.Proto)
	case r.IsAny():
		return nil
	case r.First == 0:
		return invalid("ports", r.String(), "port 0 is not a server port; use %s/any", r.Proto)
	case r.First > r.Last:
		return invalid("ports", r.String(), "the range ends before it starts")
	}
	return nil
}

func (r PortRange) String() string {
	switch {
	case r.Proto == ProtoAny && r.IsAny():
		return "any"
	case !r.Proto.hasPorts() && r.IsAny():
		return r.Proto.String()
	case r.IsAny():
		return r.Proto.String() + "/any"
	case r.First == r.Last:
		return r.Proto.String() + "/" + strconv.Itoa(int(r.First))
	}
	return r.Proto.String() + "/" + strconv.Itoa(int(r.First)) + "-" + strconv.Itoa(int(r.Last))
}

// MarshalText writes the canonical form.
func (r PortRange) MarshalText() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return []byte(r.String()), nil
}

// UnmarshalText reads what ParsePortRange reads.
func (r *PortRange) UnmarshalText(b []byte) error {
	v, err := ParsePortRange(string(b))
	if err == nil {
		*r = v
	}
	return err
}

// ParsePortRange reads "tcp/5432", "udp/53", "tcp/8000-8100", "tcp/any" (or "tcp"),
// "icmp", "icmpv6" and "any". Case and surrounding space do not matter.
func ParsePortRange(s string) (PortRange, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" {
		return PortRange{}, invalid("ports", s, "empty; want e.g. tcp/5432, udp/53, tcp/8000-8100 or any")
	}
	name, ports, slash := strings.Cut(t, "/")
	var p Proto
	switch name {
	case "any":
		if slash {
			return PortRange{}, invalid("ports", s, "any stands for every protocol and port and takes no port")
		}
		return AnyPort(ProtoAny), nil
	case "tcp", "udp", "sctp", "icmp", "icmpv6":
		p, _ = ParseProto(name)
	default:
		return PortRange{}, invalid("ports", s, "unknown protocol %q; want tcp, udp, sctp, icmp, icmpv6 or any", name)
	}
	if !slash || ports == "any" {
		if !slash || p.hasPorts() {
			return AnyPort(p), nil
		}
	}
	if !p.hasPorts() {
		return PortRange{}, invalid("ports", s, "%s has no ports", p)
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	first, err := parsePortNumber(s, lo)
	if err != nil {
		return PortRange{}, err
	}
	last := first
	if isRange {
		if last, err = parsePortNumber(s, hi); err != nil {
			return PortRange{}, err
		}
	}
	r := PortSpan(p, first, last)
	if first > last {
		return PortRange{}, invalid("ports", s, "the range ends before it starts; write %s/%d-%d", p, last, first)
	}
	return r, nil
}

func parsePortNumber(input, s string) (uint16, error) {
	if s == "" {
		return 0, invalid("ports", input, "missing port number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, invalid("ports", input, "port %q is not a number", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n < 1 || n > 65535 {
		return 0, invalid("ports", input, "port %s is out of range 1-65535", s)
	}
	return uint16(n), nil
}

// ParsePorts reads a comma-separated list of port ranges: "tcp/80, tcp/443".
func ParsePorts(s string) ([]PortRange, error) {
	if strings.TrimSpace(s) == "" {
		return nil, invalid("ports", s, "empty; want e.g. tcp/5432, udp/53, tcp/8000-8100 or any")
	}
	var out []PortRange
	for part := range strings.SplitSeq(s, ",") {
		r, err := ParsePortRange(part)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// FormatPorts writes ports the way ParsePorts reads them.
func FormatPorts(ports []PortRange) string {
	parts := make([]string, len(ports))
	for i, r := range ports {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// Special endpoint names, used in rules in place of a group name.
const (
	// EndpointExternal is any address outside the host's and cluster's networks;
	// "external:<dns-name>" narrows it to the addresses a DNS name resolved to.
	EndpointExternal = "external"
	// EndpointHost is the node itself.
	EndpointHost = "host"
)

// AppUnknown is the application of a connection that DPI could not identify. It matches
// only rules that name no application.
const AppUnknown = "unknown"

// EndpointKind is what an end of a rule or connection is.
type EndpointKind uint8

const (
	KindGroup    EndpointKind = iota + 1 // a learned or custom group, by name
	KindExternal                         // "external" or "external:<dns-name>"
	KindHost                             // "host"
	KindAddress                          // "address:<ip>", an unmanaged address on an internal network
)

// Endpoint is a parsed end of a rule. Rules and connections carry endpoints as their
// canonical strings (Endpoint.String), which index the evaluator without allocation.
type Endpoint struct {
	Kind EndpointKind
	// Name is the group name (KindGroup) or the DNS name (KindExternal; empty for any
	// external address).
	Name string
	Addr netip.Addr // KindAddress
}

func (e Endpoint) String() string {
	switch e.Kind {
	case KindGroup:
		return e.Name
	case KindExternal:
		if e.Name == "" {
			return EndpointExternal
		}
		return EndpointExternal + ":" + e.Name
	case KindHost:
		return EndpointHost
	case KindAddress:
		return "address:" + e.Addr.String()
	}
	return ""
}

// MarshalText writes the canonical form.
func (e Endpoint) MarshalText() ([]byte, error) {
	s := e.String()
	if _, err := ParseEndpoint(s); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// UnmarshalText reads what ParseEndpoint reads.
func (e *Endpoint) UnmarshalText(b []byte) error {
	v, err := ParseEndpoint(string(b))
	if err == nil {
		*e = v
	}
	return err
}

const endpointForms = "want a group name, external, external:DNS-NAME, host or address:IP"

// ParseEndpoint reads a group name or a special endpoint: "external",
// "external:api.example.com", "host", "address:10.0.0.7". The keywords and DNS names are
// read without regard to case (DNS names lose a trailing dot); group names keep theirs.
func ParseEndpoint(s string) (Endpoint, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return Endpoint{}, invalid("endpoint", s, "empty; %s", endpointForms)
	}
	if kind, rest, ok := strings.Cut(t, ":"); ok {
		switch strings.ToLower(kind) {
		case "external":
			if rest == "" {
				return Endpoint{}, invalid("endpoint", s, "no DNS name after external:; write external for any external address")
			}
			name, err := canonicalDNSName(rest)
			if err != nil {
				return Endpoint{}, invalid("endpoint", s, "%v", err)
			}
			return Endpoint{Kind: KindExternal, Name: name}, nil
		case "address":
			a, err := netip.ParseAddr(rest)
			if err != nil {
				return Endpoint{}, invalid("endpoint", s, "%q is not an IP address", rest)
			}
			if a.Zone() != "" {
				return Endpoint{}, invalid("endpoint", s, "an address with a zone cannot stand in a rule")
			}
			return Endpoint{Kind: KindAddress, Addr: a.Unmap()}, nil
		}
		return Endpoint{}, invalid("endpoint", s, "unknown kind %q; %s", kind, endpointForms)
	}
	switch strings.ToLower(t) {
	case EndpointExternal:
		return Endpoint{Kind: KindExternal}, nil
	case EndpointHost:
		return Endpoint{Kind: KindHost}, nil
	case "any", "address":
		return Endpoint{}, invalid("endpoint", s, "%q is reserved; %s", t, endpointForms)
	}
	if err := checkGroupName(t); err != nil {
		return Endpoint{}, invalid("endpoint", s, "%v", err)
	}
	return Endpoint{Kind: KindGroup, Name: t}, nil
}

// CanonicalEndpoint returns the canonical form of an endpoint string, as rules and the
// evaluator's index hold it.
func CanonicalEndpoint(s string) (string, error) {
	e, err := ParseEndpoint(s)
	if err != nil {
		return "", err
	}
	return e.String(), nil
}

// ExternalEndpoint names an external address by the DNS name it was reached by:
// "external:api.example.com", or "external" when the name is empty or not a valid DNS name.
func ExternalEndpoint(dnsName string) string {
	if dnsName == "" {
		return EndpointExternal
	}
	name, err := canonicalDNSName(dnsName)
	if err != nil {
		return EndpointExternal
	}
	return EndpointExternal + ":" + name
}

// AddressEndpoint names an unmanaged address: "address:10.0.0.7".
func AddressEndpoint(a netip.Addr) string { return "address:" + a.WithZone("").Unmap().String() }

const maxName = 253

// CheckGroupName returns an error wrapping ErrInvalid when s cannot name a group.
func CheckGroupName(s string) error {
	if s == "" {
		return fmt.Errorf("%w group name: empty", ErrInvalid)
	}
	if err := checkGroupName(s); err != nil {
		return fmt.Errorf("%w group name %q: %s", ErrInvalid, s, err)
	}
	return nil
}

func checkGroupName(s string) error {
	if len(s) > maxName {
		return fmt.Errorf("a group name has at most %d characters", maxName)
	}
	if !isAlnum(s[0]) {
		return errors.New("a group name starts with a letter or digit")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '-' && c != '_' {
			return fmt.Errorf("character %q is not allowed in a group name (letters, digits, '.', '-' and '_' are)", c)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// canonicalDNSName lower-cases a DNS name and drops its trailing dot. Underscores are
// allowed, as in service records.
func canonicalDNSName(s string) (string, error) {
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	if s == "" || len(s) > maxName {
		return "", fmt.Errorf("a DNS name has 1 to %d characters", maxName)
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if label == 0 {
				return "", errors.New("empty label in DNS name")
			}
			label = 0
			continue
		case (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_':
		case c == '*' || c == '?':
			return "", errors.New("a rule names one DNS name; for a pattern, define a custom group with a dns criterion")
		default:
			return "", fmt.Errorf("character %q is not allowed in a DNS name", c)
		}
		if label++; label > 63 {
			return "", errors.New("a DNS label has at most 63 characters")
		}
	}
	if label == 0 {
		return "", errors.New("empty label in DNS name")
	}
	return s, nil
}

// CriterionKind is what a custom group's criterion looks at.
type CriterionKind uint8

const (
	CriterionLabel   CriterionKind = iota + 1 // "label:KEY=VALUE-GLOB"
	CriterionImage                            // "image:REPOSITORY-GLOB" (tag and digest ignored)
	CriterionName                             // "name:GLOB", the workload's name
	CriterionService                          // "service:GLOB", the compose service
	CriterionAddress                          // "address:CIDR" (or one IP)
	CriterionDNS                              // "dns:GLOB", the DNS name of an external address
)

var criterionNames = [...]string{"", "label", "image", "name", "service", "address", "dns"}

func (k CriterionKind) String() string { return nameOf(criterionNames[:], int(k), "criterion") }

// Criterion is one condition a workload or address must meet to belong to a custom group.
// Globs match with '*' (any run of characters, '/' and '.' included) and '?' (one).
type Criterion struct {
	Kind  CriterionKind
	Key   string // the label key (CriterionLabel)
	Value string // glob, or CIDR for CriterionAddress
}

func (c Criterion) String() string {
	if c.Kind == CriterionLabel {
		return "label:" + c.Key + "=" + c.Value
	}
	return c.Kind.String() + ":" + c.Value
}

// MarshalText writes the form ParseCriterion reads.
func (c Criterion) MarshalText() ([]byte, error) {
	s := c.String()
	v, err := ParseCriterion(s)
	if err != nil {
		return nil, err
	}
	if v != c {
		return nil, invalid("criterion", s, "not in canonical form; write %s", v)
	}
	return []byte(s), nil
}

// UnmarshalText reads what ParseCriterion reads.
func (c *Criterion) UnmarshalText(b []byte) error {
	v, err := ParseCriterion(string(b))
	if err == nil {
		*c = v
	}
	return err
}

const criterionForms = "want label:KEY=VALUE, image:GLOB, name:GLOB, service:GLOB, address:CIDR or dns:GLOB"

// ParseCriterion reads "label:tier=web", "image:ghcr.io/acme/*", "name:web-*",
// "service:db", "address:10.0.0.0/8" or "dns:*.example.com".
func ParseCriterion(s string) (Criterion, error) {
	t := strings.TrimSpace(s)
	kind, value, ok := strings.Cut(t, ":")
	if !ok {
		return Criterion{}, invalid("criterion", s, criterionForms)
	}
	i, err := parseName("criterion kind", criterionNames[:], kind)
	if err != nil {
		return Criterion{}, invalid("criterion", s, "unknown kind %q; %s", kind, criterionForms)
	}
	c := Criterion{Kind: CriterionKind(i), Value: value}
	switch c.Kind {
	case CriterionLabel:
		key, v, ok := strings.Cut(value, "=")
		if !ok || key == "" {
			return Criterion{}, invalid("criterion", s, "want label:KEY=VALUE (VALUE may be a glob such as *)")
		}
		for i := 0; i < len(key); i++ {
			if k := key[i]; !isAlnum(k) && k != '.' && k != '-' && k != '_' && k != '/' {
				return Criterion{}, invalid("criterion", s, "character %q is not allowed in a label key", k)
			}
		}
		if hasControl(v) {
			return Criterion{}, invalid("criterion", s, "control character in label value")
		}
		c.Key, c.Value = key, v
	case CriterionImage, CriterionName, CriterionService:
		if value == "" {
			return Criterion{}, invalid("criterion", s, "empty pattern")
		}
		if hasControl(value) || strings.ContainsAny(value, " \t") {
			return Criterion{}, invalid("criterion", s, "space or control character in pattern")
		}
	case CriterionAddress:
		p, err := parsePrefix(value)
		if err != nil {
			return Criterion{}, invalid("criterion", s, "%q is not a CIDR or an IP address", value)
		}
		c.Value = p.String()
	case CriterionDNS:
		v := strings.ToLower(strings.TrimSuffix(value, "."))
		if v == "" {
			return Criterion{}, invalid("criterion", s, "empty pattern")
		}
		for i := 0; i < len(v); i++ {
			if d := v[i]; !isAlnum(d) && d != '.' && d != '-' && d != '_' && d != '*' && d != '?' {
				return Criterion{}, invalid("criterion", s, "character %q is not allowed in a DNS pattern", d)
			}
		}
		c.Value = v
	}
	return c, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() {
			return netip.Prefix{}, errors.New("IPv4-mapped prefix")
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("zone")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// Subject is what custom group criteria are matched against: a workload (the agent fills
// it from internal/workload) or an address (Addr, and DNSName when known).
type Subject struct {
	Name    string
	Image   string // the image reference; tag and digest are ignored
	Service string // the compose service
	Labels  map[string]string
	Addr    netip.Addr
	DNSName string
}

// Match reports whether s meets the criterion.
func (c Criterion) Match(s Subject) bool {
	switch c.Kind {
	case CriterionLabel:
		v, ok := s.Labels[c.Key]
		return ok && glob(c.Value, v, false)
	case CriterionImage:
		return matchImage(c.Value, s.Image)
	case CriterionName:
		return s.Name != "" && glob(c.Value, s.Name, false)
	case CriterionService:
		return s.Service != "" && glob(c.Value, s.Service, false)
	case CriterionAddress:
		p, err := netip.ParsePrefix(c.Value)
		return err == nil && s.Addr.IsValid() && p.Contains(s.Addr.Unmap())
	case CriterionDNS:
		return s.DNSName != "" && glob(c.Value, strings.TrimSuffix(s.DNSName, "."), true)
	}
	return false
}

// matchImage matches a repository glob against an image reference, with and without its
// registry host and Docker Hub's "library/", so that "nginx" matches
// "docker.io/library/nginx:1.25" and "acme/*" matches "ghcr.io/acme/api@sha256:...".
func matchImage(pattern, image string) bool {
	repo := image
	if i := strings.IndexByte(repo, '@'); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo = repo[:i]
	}
	if repo == "" {
		return false
	}
	if glob(pattern, repo, false) {
		return true
	}
	if host, rest, ok := strings.Cut(repo, "/"); ok && (strings.ContainsAny(host, ".:") || host == "localhost") {
		repo = rest
		if glob(pattern, repo, false) {
			return true
		}
	}
	if rest, ok := strings.CutPrefix(repo, "library/"); ok {
		return glob(pattern, rest, false)
	}
	return false
}

// glob matches s against a pattern of literal bytes, '*' and '?', in linear space and
// without allocation. fold compares ASCII letters without regard to case.
func glob(pattern, s string, fold bool) bool {
	px, sx := 0, 0
	nextPx, nextSx := 0, 0
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				nextPx, nextSx = px, sx+1
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			default:
				if sx < len(s) && sameByte(c, s[sx], fold) {
					px++
					sx++
					continue
				}
			}
		}
		if 0 < nextSx && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}

func sameByte(a, b byte, fold bool) bool {
	if a == b {
		return true
	}
	if !fold {
		return false
	}
	if 'A' <= a && a <= 'Z' {
		a += 'a' - 'A'
	}
	if 'A' <= b && b <= 'Z' {
		b += 'a' - 'A'
	}
	return a == b
}

// Group is a set of workloads (or addresses) that rules name as a whole, and the mode in
// which their unmatched connections are judged.
type Group struct {
	Name   string      `json:"name"`
	Origin GroupOrigin `json:"origin"`
	// Criteria choose a custom group's members. Criteria of one kind (and, for labels,
	// one key) are alternatives; criteria of different kinds must all hold. So
	// "label:tier=web, label:tier=api, image:acme/*" is (tier web or api) and acme image.
	Criteria []Criterion `json:"criteria,omitempty"`
	Mode     Mode        `json:"mode"`
}

// Match reports whether s belongs to the custom group g. Learned groups have no
// criteria, and match nothing here: the agent names a workload's learned group.
func (g *Group) Match(s Subject) bool {
	if g.Origin != GroupCustom || len(g.Criteria) == 0 {
		return false
	}
	for i, c := range g.Criteria {
		if slices.ContainsFunc(g.Criteria[:i], c.sameAxis) {
			continue // this axis was decided with its first criterion
		}
		ok := false
		for _, d := range g.Criteria[i:] {
			if c.sameAxis(d) && d.Match(s) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (c Criterion) sameAxis(d Criterion) bool {
	return c.Kind == d.Kind && (c.Kind != CriterionLabel || c.Key == d.Key)
}

// Validate says what is wrong with g, if anything.
func (g *Group) Validate() error {
	e, err := ParseEndpoint(g.Name)
	if err != nil {
		return fmt.Errorf("group %q: %w", g.Name, err)
	}
	if e.Kind != KindGroup && e.Kind != KindHost {
		return invalid("group", g.Name, "%s is a special endpoint and cannot be a group", e)
	}
	if e.String() != g.Name {
		return invalid("group", g.Name, "write it as %q", e)
	}
	if !g.Mode.valid() {
		return invalid("group", g.Name, "unknown mode %d", g.Mode)
	}
	switch g.Origin {
	case GroupLearned:
		if len(g.Criteria) > 0 {
			return invalid("group", g.Name, "a learned group has no criteria; make it a custom group")
		}
	case GroupCustom:
		if e.Kind == KindHost {
			return invalid("group", g.Name, "host is not a custom group")
		}
		if len(g.Criteria) == 0 {
			return invalid("group", g.Name, "a custom group needs at least one criterion")
		}
		for _, c := range g.Criteria {
			v, err := ParseCriterion(c.String())
			if err != nil {
				return fmt.Errorf("group %q: %w", g.Name, err)
			}
			if v != c {
				return invalid("group", g.Name, "criterion %q is not in canonical form; write %s", c, v)
			}
		}
	default:
		return invalid("group", g.Name, "origin must be learned or custom")
	}
	return nil
}

// Rule allows or denies connections from one group (or special endpoint) to another, on
// some protocols and server ports, optionally for some applications only.
type Rule struct {
	ID    string      `json:"id"`
	From  string      `json:"from"` // the client's group or special endpoint
	To    string      `json:"to"`   // the server's
	Ports []PortRange `json:"ports"`
	// Apps, when set, limit the rule to connections whose application DPI identified as
	// one of them; a connection whose application is unknown matches only rules without.
	Apps    []string   `json:"apps,omitempty"`
	Action  Action     `json:"action"`
	Origin  RuleOrigin `json:"origin"`
	Hits    uint64     `json:"hits"`
	LastHit time.Time  `json:"last_hit,omitzero"`
	Created time.Time  `json:"created,omitzero"`
}

// Clone returns a copy that shares no slices with r.
func (r Rule) Clone() Rule {
	r.Ports = slices.Clone(r.Ports)
	r.Apps = slices.Clone(r.Apps)
	return r
}

// String reads as a person would say the rule: "vigil.web -> vigil.db tcp/5432
// [postgresql] allow (learned)".
func (r Rule) String() string {
	var b strings.Builder
	b.WriteString(r.From)
	b.WriteString(" -> ")
	b.WriteString(r.To)
	b.WriteByte(' ')
	b.WriteString(FormatPorts(r.Ports))
	if len(r.Apps) > 0 {
		b.WriteString(" [")
		b.WriteString(strings.Join(r.Apps, ","))
		b.WriteByte(']')
	}
	b.WriteByte(' ')
	b.WriteString(r.Action.String())
	b.WriteString(" (")
	b.WriteString(r.Origin.String())
	b.WriteByte(')')
	return b.String()
}

const maxID = 128

// Validate says what is wrong with r, if anything. Endpoints may be in any form
// ParseEndpoint reads; Compile and the Learner use their canonical forms.
func (r *Rule) Validate() error {
	if r.ID == "" || len(r.ID) > maxID {
		return invalid("rule", r.ID, "an id has 1 to %d characters", maxID)
	}
	for i := 0; i < len(r.ID); i++ {
		if c := r.ID[i]; !isAlnum(c) && c != '.' && c != '-' && c != '_' && c != ':' {
			return invalid("rule", r.ID, "character %q is not allowed in an id", c)
		}
	}
	if _, err := ParseEndpoint(r.From); err != nil {
		return fmt.Errorf("rule %q: from: %w", r.ID, err)
	}
	if _, err := ParseEndpoint(r.To); err != nil {
		return fmt.Errorf("rule %q: to: %w", r.ID, err)
	}
	if len(r.Ports) == 0 {
		return invalid("rule", r.ID, "no ports; write any for every protocol and port")
	}
	for _, p := range r.Ports {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("rule %q: %w", r.ID, err)
		}
	}
	for i, a := range r.Apps {
		if err := checkApp(a); err != nil {
			return fmt.Errorf("rule %q: %w", r.ID, err)
		}
		if slices.Contains(r.Apps[:i], a) {
			return invalid("rule", r.ID, "application %q is listed twice", a)
		}
	}
	switch r.Action {
	case ActionAllow, ActionDeny:
	default:
		return invalid("rule", r.ID, "action must be allow or deny")
	}
	switch r.Origin {
	case OriginLearned:
		if r.Action != ActionAllow {
			return invalid("rule", r.ID, "a learned rule can only allow")
		}
	case OriginUser, OriginImported:
	default:
		return invalid("rule", r.ID, "origin must be learned, user or imported")
	}
	return nil
}

func checkApp(a string) error {
	if a == "" || len(a) > 64 {
		return invalid("application", a, "a name has 1 to 64 characters")
	}
	if a == AppUnknown {
		return invalid("application", a, "unknown connections match only rules that name no application; drop the apps")
	}
	for i := 0; i < len(a); i++ {
		if c := a[i]; !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '.' && c != '-' && c != '_' {
			return invalid("application", a, "character %q is not allowed (lower-case letters, digits, '.', '-', '_')", c)
		}
	}
	return nil
}

// Policy is the whole of what the evaluator judges by: groups with their modes, and
// rules. It is plain data, read and written by the store and the policy file, and not
// safe for concurrent use; Compile turns it into an Evaluator.
type Policy struct {
	// DefaultMode is the mode of groups the policy does not list, such as a learned group
	// seen for the first time.
	DefaultMode Mode    `json:"default_mode"`
	Groups      []Group `json:"groups"`
	Rules       []Rule  `json:"rules"`
}

// Validate reports every problem in p at once (joined), each naming its group or rule.
func (p *Policy) Validate() error {
	var errs []error
	if !p.DefaultMode.valid() {
		errs = append(errs, fmt.Errorf("%w default mode %d", ErrInvalid, p.DefaultMode))
	}
	groups := make(map[string]bool, len(p.Groups))
	for i := range p.Groups {
		g := &p.Groups[i]
		if err := g.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if groups[g.Name] {
			errs = append(errs, invalid("group", g.Name, "defined twice"))
		}
		groups[g.Name] = true
	}
	ids := make(map[string]bool, len(p.Rules))
	for i := range p.Rules {
		r := &p.Rules[i]
		if err := r.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if ids[r.ID] {
			errs = append(errs, invalid("rule", r.ID, "id used twice"))
		}
		ids[r.ID] = true
	}
	return errors.Join(errs...)
}

// Hit is what an Evaluator counted for one rule: Count matches, the last at Last.
type Hit struct {
	RuleID string
	Count  uint64
	Last   time.Time
}

// AddHits adds counted hits to p's rules; hits of rules p does not hold are ignored.
func (p *Policy) AddHits(hits []Hit) {
	if len(hits) == 0 {
		return
	}
	at := make(map[string]int, len(p.Rules))
	for i := range p.Rules {
		at[p.Rules[i].ID] = i
	}
	for _, h := range hits {
		if i, ok := at[h.RuleID]; ok {
			addHit(&p.Rules[i], h)
		}
	}
}

func addHit(r *Rule, h Hit) {
	r.Hits += h.Count
	if h.Last.After(r.LastHit) {
		r.LastHit = h.Last
	}
}
