package dpi

import "net/netip"

// App names an application protocol.
type App string

// The applications Vigil identifies. Unknown is what a flow is when no parser matched:
// it is never guessed from the port.
const (
	Unknown    App = "unknown"
	HTTP       App = "http"
	HTTP2      App = "http2"
	GRPC       App = "grpc"
	TLS        App = "tls"
	DNS        App = "dns"
	SSH        App = "ssh"
	Redis      App = "redis"
	MySQL      App = "mysql"
	PostgreSQL App = "postgresql"
	MongoDB    App = "mongodb"
	Memcached  App = "memcached"
	Kafka      App = "kafka"
	AMQP       App = "amqp"
	MQTT       App = "mqtt"
	NATS       App = "nats"
)

// Transport is the layer-4 protocol a payload travelled over.
type Transport uint8

const (
	TCP Transport = iota + 1
	UDP
)

// Direction says which end sent a payload.
type Direction uint8

const (
	FromClient Direction = iota
	FromServer
)

// Other returns the opposite direction.
func (d Direction) Other() Direction { return 1 - d }

// MaxInspect is how many bytes of each direction of a TCP stream are looked at, at most.
const MaxInspect = 4096

// Verdict is a parser's answer on the bytes it was shown.
type Verdict uint8

const (
	// NoMatch: the bytes are not this protocol; the parser is not asked again for this
	// flow.
	NoMatch Verdict = iota
	// NeedMore: the bytes are a valid beginning of this protocol but do not settle it
	// (too short, or the other direction must speak first); show more when there is more.
	NeedMore
	// Match: the bytes are this protocol. Detail holds what could be read.
	Match
)

// Parser recognises one application protocol from the first bytes of a flow.
//
// Inspect is shown the bytes of one direction from the first byte of the stream
// (for TCP: everything in order so far, up to MaxInspect; for UDP: one datagram). It must
// not keep data beyond the call, must not panic on any input, and should allocate only
// for what it records in d. The same parser may be shown the other direction too,
// before or after it matched, to complete d (an HTTP response status, a TLS server
// version); it then sets only fields it learns from that direction.
//
// The Inspector shows a parser that has not matched yet a fresh, zero Detail on every call
// and keeps it only when the call answers Match, so a NoMatch or NeedMore answer may leave
// d half-filled without harm. Once the parser matched, it is shown the flow's own Detail.
type Parser interface {
	App() App
	Inspect(t Transport, dir Direction, data []byte, d *Detail) Verdict
}

// Detail is what inspection learned about a flow's application. Every field is optional.
type Detail struct {
	// HTTP/1.x and HTTP/2 (from the first request and response).
	Method    string `json:"method,omitempty"`
	Host      string `json:"host,omitempty"`
	Path      string `json:"path,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	Status    int    `json:"status,omitempty"`
	// ContentType of the first request (HTTP/2: tells gRPC apart).
	ContentType string `json:"content_type,omitempty"`

	// TLS: the version negotiated (from the ServerHello when seen, else the ClientHello's
	// highest offered), the server name and the protocols offered by the client.
	TLSVersion string   `json:"tls_version,omitempty"`
	SNI        string   `json:"sni,omitempty"`
	ALPN       []string `json:"alpn,omitempty"`

	// DNS: the question of the first message and, for responses, the answers.
	DNS *DNSMessage `json:"dns,omitempty"`

	// Version is what the server announces of itself: SSH banner, MySQL server version,
	// NATS server version, and so on. ClientVersion is the client's, where sent (SSH).
	Version       string `json:"version,omitempty"`
	ClientVersion string `json:"client_version,omitempty"`

	// Command is the first command or operation a client sent (Redis "PING", Memcached
	// "get", Kafka "ApiVersions", MongoDB "OP_MSG", ...).
	Command string `json:"command,omitempty"`
	// User and Database where the protocol's opening names them (PostgreSQL, MySQL,
	// MongoDB, AMQP virtual host, MQTT client id as User).
	User     string `json:"user,omitempty"`
	Database string `json:"database,omitempty"`
}

// DNSMessage is the part of a DNS message Vigil keeps.
type DNSMessage struct {
	ID       uint16      `json:"id"`
	Response bool        `json:"response"`
	Query    string      `json:"query,omitempty"` // the first question's name, without the final dot
	QType    string      `json:"qtype,omitempty"` // "A", "AAAA", "CNAME", ... or "TYPE123"
	RCode    string      `json:"rcode,omitempty"` // "NOERROR", "NXDOMAIN", ...
	Answers  []DNSAnswer `json:"answers,omitempty"`
}

// DNSAnswer is one address record of a response (A, AAAA), or a CNAME (Target set).
type DNSAnswer struct {
	Name   string     `json:"name"`
	Type   string     `json:"type"`
	TTL    uint32     `json:"ttl"`
	Addr   netip.Addr `json:"addr,omitzero"`
	Target string     `json:"target,omitempty"`
}
