// Package dpi identifies the application protocol of a flow from the first bytes each
// side sends (deep packet inspection), and reads from them what policy and the console
// show: the HTTP host and path, the TLS server name, the DNS question and answers, the
// server's software version, and so on.
//
// An Inspector holds the state of one flow. The flow table makes one per flow with
// NewInspector and feeds it each packet's payload, in capture order, with its direction
// and, for TCP, its sequence number. The Inspector reads each TCP direction as a stream,
// dropping retransmitted bytes, shows the bytes to the parsers (Parsers: one stateless
// value per protocol, shared by all flows; NewInspector(nil, ...) uses them) and settles
// on the first that matches. It looks at no more than MaxInspect bytes and MaxPackets
// packets of each direction; a flow that no parser matched within them is Unknown. The
// port plays no part: a flow on port 443 that no parser recognises is Unknown, and HTTP
// on port 5432 is HTTP.
//
// The package needs nothing from the kernel and does no I/O; it only reads the payloads
// it is given.
//
// Traps:
//   - An Inspector is not safe for concurrent use: feed each flow from one goroutine.
//   - One Inspector per flow, for the flow's life: it must see each direction from its
//     first payload byte. After a gap in a direction's sequence numbers it reads no more
//     of that direction, rather than guess what the hole held.
//   - Feed does not keep the payload, but the *DNSMessage given to the onDNS callback is
//     reused after the callback returns.
//   - Detail is nil until a parser matched. It is allocated apart from the Inspector:
//     keep it, and drop the Inspector once Done.
//   - A DNS flow with an onDNS callback is never Done while both directions are readable,
//     so that every message reaches the callback; the cost is bounded per message.
package dpi
