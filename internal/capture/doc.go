// Package capture gets frames off network interfaces: today an AF_PACKET TPACKET_V3 ring
// per interface (pure Go, through gopacket's afpacket), and capture files for offline
// analysis; an eBPF source can replace the rings behind the same [Source] interface.
//
// A ring needs CAP_NET_RAW in the interface's namespace (root in practice) and maps
// BlockSize*NumBlocks bytes of memory per interface. A frame handed to a Handler lives in
// the ring and is valid only during the call: copy what must outlive it. Rings keep only
// the first SnapLen bytes of each frame (a BPF filter cuts them in the kernel), which is
// what flow decoding and DPI need; byte counters still count the wire length.
package capture
