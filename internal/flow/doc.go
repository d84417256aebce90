// Package flow turns captured frames into flows: it decodes Ethernet (with VLAN tags),
// IPv4, IPv6 (walking extension headers), TCP, UDP, ICMP and ICMPv6, and keeps a bounded
// table of flows keyed by the normalised 5-tuple, so that both directions of a
// connection, and a connection seen on two interfaces, are one flow.
//
// For each flow the table decides the client (from the SYN, else the first packet, else
// the ports), counts packets and bytes per direction, follows TCP state, feeds the first
// payload bytes to DPI until the application is settled, and ages flows out with
// per-state timeouts. Sweep reports starts, periodic updates and ends as Events.
//
// Traps: [Decode] fills a Packet whose Payload points into the frame, valid only until
// the frame's buffer is reused (a capture ring's slot). A [Flow] is guarded by its
// table's lock; outside the table, use [Record] snapshots. The table is safe for
// concurrent Add from many capture goroutines; Sweep must have one caller at a time.
// Memory is bounded by Config.MaxFlows: past it the least recently active flow is evicted
// and counted.
package flow
