package flow

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-sec/vigil/internal/dpi"
)

// Key identifies a flow whatever the direction of a packet: A is the lower endpoint.
// It is comparable and hashes without allocation.
type Key struct {
	Proto uint8
	A, B  netip.AddrPort
}

// keyOf returns the normalised key of p.
func keyOf(p *Packet) Key {
	if lessAddrPort(p.Src, p.Dst) {
		return Key{Proto: p.Proto, A: p.Src, B: p.Dst}
	}
	return Key{Proto: p.Proto, A: p.Dst, B: p.Src}
}

func lessAddrPort(a, b netip.AddrPort) bool {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c < 0
	}
	return a.Port() < b.Port()
}

// State is where a flow stands. UDP and ICMP flows are New until answered, then
// Established until they time out.
type State uint8

const (
	StateNew         State = iota // first packets; TCP: SYN seen, no answer yet
	StateEstablished              // TCP: both sides spoke; UDP/ICMP: answered
	StateClosing                  // TCP: a FIN was seen
	StateClosed                   // TCP: FINs both ways, or a RST
)

var stateNames = [...]string{"new", "established", "closing", "closed"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// MarshalText makes State readable in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads what MarshalText wrote.
func (s *State) UnmarshalText(b []byte) error {
	i, err := parseName(stateNames[:], b)
	*s = State(i)
	return err
}

func parseName(names []string, b []byte) (int, error) {
	for i, n := range names {
		if n == string(b) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown value %q", b)
}

// Initiator says how the client of a flow was told apart from its server.
type Initiator uint8

const (
	InitiatorSYN         Initiator = iota + 1 // the client sent the SYN
	InitiatorFirstPacket                      // UDP/ICMP: the client sent the first packet
	InitiatorPort                             // the handshake was missed: guessed from the ports
)

var initiatorNames = [...]string{"", "syn", "first-packet", "port-heuristic"}

func (i Initiator) String() string {
	if int(i) < len(initiatorNames) {
		return initiatorNames[i]
	}
	return "unknown"
}

// MarshalText makes Initiator readable in JSON.
func (i Initiator) MarshalText() ([]byte, error) { return []byte(i.String()), nil }

// UnmarshalText reads what MarshalText wrote.
func (i *Initiator) UnmarshalText(b []byte) error {
	n, err := parseName(initiatorNames[:], b)
	*i = Initiator(n)
	return err
}

// EndpointKind is what an end of a flow is.
type EndpointKind string

const (
	KindWorkload EndpointKind = "workload" // a container on this host
	KindHost     EndpointKind = "host"     // the host itself
	KindExternal EndpointKind = "external" // outside every container network and local subnet
	KindInternal EndpointKind = "internal" // on an internal network, but no workload Vigil knows
	KindAddress  EndpointKind = "address"  // offline analysis: a plain address
)

// Process is the process that owns a socket of a flow.
type Process struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	Exe  string `json:"exe"`
	UID  int    `json:"uid"`
}

// Endpoint is one end of a flow, identified once, when the flow is born.
type Endpoint struct {
	IP       netip.Addr   `json:"ip"`
	Port     uint16       `json:"port"`
	Kind     EndpointKind `json:"kind"`
	Workload string       `json:"workload,omitempty"` // workload ID
	Name     string       `json:"name,omitempty"`     // workload name, or the DNS name of an external address
	Group    string       `json:"group,omitempty"`
	Process  *Process     `json:"process,omitempty"`
}

// Record is a snapshot of a flow, as reported and served.
type Record struct {
	ID        uint64      `json:"id"`
	Proto     string      `json:"proto"`
	Client    Endpoint    `json:"client"`
	Server    Endpoint    `json:"server"`
	App       dpi.App     `json:"app"`
	AppDetail *dpi.Detail `json:"app_detail,omitempty"`
	// PortHint is the well-known service of the server port, recorded as a hint only:
	// App never comes from it.
	PortHint  string    `json:"port_hint,omitempty"`
	Initiator Initiator `json:"initiator"`
	Packets   uint64    `json:"packets"`
	Bytes     uint64    `json:"bytes"`
	// ClientPackets and so on split the totals by direction.
	ClientPackets uint64    `json:"client_packets"`
	ClientBytes   uint64    `json:"client_bytes"`
	ServerPackets uint64    `json:"server_packets"`
	ServerBytes   uint64    `json:"server_bytes"`
	FirstSeen     time.Time `json:"first_seen"`
	LastSeen      time.Time `json:"last_seen"`
	State         State     `json:"state"`
	// Verdict is what the policy said of the flow when it was first reported (allow,
	// learn, violate, deny) and RuleID the rule that decided ("" when the modes did).
	Verdict string `json:"verdict,omitempty"`
	RuleID  string `json:"rule_id,omitempty"`
	// End is why the flow was reported over: "timeout", "closed", "evicted", "shutdown",
	// or "eof" at the end of a capture file.
	End string `json:"end,omitempty"`
}

// ProtoName names an IP protocol.
func ProtoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMP:
		return "icmp"
	case ProtoICMPv6:
		return "icmpv6"
	}
	return "ip"
}
