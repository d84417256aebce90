// Package agent wires the parts that run on one host: the workload registry, packet
// capture on each workload's host-side veth, the flow table with DPI, DNS naming of
// external addresses, and socket-to-process attribution. It reports flow events to a
// controller through the [Reporter] interface: an in-process call under `vigil up`, a
// stream to a remote controller in cluster mode.
//
// The agent needs root (AF_PACKET, other namespaces' sockets, /proc). Run owns every
// goroutine it starts and returns when its context ends, after closing the rings.
package agent
