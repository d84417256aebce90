package enforce

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Plan is what one protected workload may do: the peers, protocols and ports it may
// accept connections from (Ingress) and open connections to (Egress). Anything else is
// rejected.
type Plan struct {
	// Workload names the workload, for errors and logs only.
	Workload string
	// NetNS is the path of the workload's network namespace, e.g. /proc/PID/ns/net.
	NetNS string
	// Inode is the namespace's inode as the caller resolved it; when non-zero, Apply
	// refuses a namespace at NetNS with another inode (the process died, its PID was
	// reused).
	Inode uint64
	// Addrs are the workload's own addresses. They tell, in the connection tracking
	// table, which connections the workload accepted and which it opened (CutDisallowed).
	Addrs   []netip.Addr
	Ingress []Allow
	Egress  []Allow
	// Log sends a rate-limited sample of rejected packets to NFLOG group NFLogGroup.
	Log bool
}

// Allow lets traffic with the peers of one set, on one protocol and port range, through.
type Allow struct {
	// Set names the peer set, e.g. "g_vigil_web". Allows that name the same set share it;
	// its members are the union of their Peers.
	Set   string
	Peers []netip.Prefix
	// Proto is the IP protocol number (6 tcp, 17 udp); 0 is any protocol.
	Proto uint8
	// PortFirst and PortLast bound the destination port; 0, 0 is any port. A port range
	// needs Proto 6 or 17.
	PortFirst, PortLast uint16
}

// ErrInvalidPlan is returned, wrapped, for a plan or set update that cannot be installed.
var ErrInvalidPlan = errors.New("invalid enforcement plan")

const (
	// TableName is the name of the inet table Vigil installs in each protected namespace.
	TableName = "vigil"
	// NFLogGroup is the NFLOG group rejected packets are logged to when Plan.Log is set.
	NFLogGroup = 0x5647
	// LogPrefix starts every NFLOG message of a rejected packet.
	LogPrefix = "vigil-deny "

	// maxSetName leaves room for the family suffix within NFT_SET_MAXNAMELEN (256 with
	// the terminating NUL).
	maxSetName = 255 - len("_v4")
)

func (a Allow) validate() error {
	if a.Set == "" || len(a.Set) > maxSetName {
		return fmt.Errorf("%w: set name %q must have 1 to %d bytes", ErrInvalidPlan, a.Set, maxSetName)
	}
	if a.PortFirst > a.PortLast {
		return fmt.Errorf("%w: set %s: port range %d-%d is reversed", ErrInvalidPlan, a.Set, a.PortFirst, a.PortLast)
	}
	if a.PortLast != 0 && a.Proto != unix.IPPROTO_TCP && a.Proto != unix.IPPROTO_UDP {
		return fmt.Errorf("%w: set %s: a port range needs tcp or udp, not protocol %d", ErrInvalidPlan, a.Set, a.Proto)
	}
	for _, p := range a.Peers {
		if !p.IsValid() {
			return fmt.Errorf("%w: set %s: invalid peer prefix", ErrInvalidPlan, a.Set)
		}
	}
	return nil
}

func (p Plan) validate() error {
	if p.NetNS == "" {
		return fmt.Errorf("%w: workload %s: no network namespace", ErrInvalidPlan, p.Workload)
	}
	for _, a := range slices.Concat(p.Ingress, p.Egress) {
		if err := a.validate(); err != nil {
			return fmt.Errorf("workload %s: %w", p.Workload, err)
		}
	}
	return nil
}

// Permits tells whether p lets a new connection through: when ingress, one from peer
// to the workload's port; else one from the workload to peer's port. It answers as the
// table's allow rules do (loopback is always allowed; a peer matches an allow when one
// of the allow's prefixes contains it).
func (p Plan) Permits(ingress bool, peer netip.Addr, proto uint8, port uint16) bool {
	peer = peer.Unmap()
	if peer.IsLoopback() {
		return true
	}
	allows := p.Egress
	if ingress {
		allows = p.Ingress
	}
	for _, a := range allows {
		if a.Proto != 0 && a.Proto != proto {
			continue
		}
		if a.PortLast != 0 && (port < a.PortFirst || port > a.PortLast) {
			continue
		}
		for _, pr := range a.Peers {
			if pr = netip.PrefixFrom(pr.Addr().Unmap(), pr.Bits()-unmapShift(pr)); pr.Contains(peer) {
				return true
			}
		}
	}
	return false
}

// peerSets gathers the members of every set the plan names, in order of first use.
func (p Plan) peerSets() (names []string, members map[string][]netip.Prefix) {
	members = map[string][]netip.Prefix{}
	for _, a := range slices.Concat(p.Ingress, p.Egress) {
		if _, ok := members[a.Set]; !ok {
			names = append(names, a.Set)
		}
		members[a.Set] = append(members[a.Set], a.Peers...)
	}
	return names, members
}

// family is what differs between the IPv4 and IPv6 halves of the table.
type family struct {
	suffix  string
	nfproto byte
	keyType nftables.SetDatatype
	// Offsets of the source and destination addresses in the network header.
	saddr, daddr, addrLen uint32
}

var (
	ipv4 = family{suffix: "_v4", nfproto: unix.NFPROTO_IPV4, keyType: nftables.TypeIPAddr, saddr: 12, daddr: 16, addrLen: 4}
	ipv6 = family{suffix: "_v6", nfproto: unix.NFPROTO_IPV6, keyType: nftables.TypeIP6Addr, saddr: 8, daddr: 24, addrLen: 16}
)

func (f family) is(a netip.Addr) bool { return a.Is4() == (f.nfproto == unix.NFPROTO_IPV4) }

// intervalElements turns prefixes into the elements of an nftables interval set of
// family f: for each maximal run of covered addresses, its first address and the address
// after its last, flagged as the interval's end. Prefixes of the other family are left
// out. Overlapping and adjacent prefixes are merged, because the kernel rejects
// overlapping intervals.
func intervalElements(f family, prefixes []netip.Prefix) []nftables.SetElement {
	type span struct{ first, last netip.Addr }
	var spans []span
	for _, p := range prefixes {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapShift(p)).Masked()
		if !p.IsValid() || !f.is(p.Addr()) {
			continue
		}
		spans = append(spans, span{p.Addr(), lastAddr(p)})
	}
	slices.SortFunc(spans, func(a, b span) int { return a.first.Compare(b.first) })
	var merged []span
	for _, s := range spans {
		if n := len(merged); n > 0 {
			prev := &merged[n-1]
			next := prev.last.Next()
			if !next.IsValid() || s.first.Compare(next) <= 0 {
				if s.last.Compare(prev.last) > 0 {
					prev.last = s.last
				}
				continue
			}
		}
		merged = append(merged, s)
	}
	out := make([]nftables.SetElement, 0, 2*len(merged))
	for _, s := range merged {
		out = append(out, nftables.SetElement{Key: s.first.AsSlice()})
		// A run reaching the family's last address has no end element: the interval is
		// open to the top.
		if end := s.last.Next(); end.IsValid() {
			out = append(out, nftables.SetElement{Key: end.AsSlice(), IntervalEnd: true})
		}
	}
	return out
}

// unmapShift is how many prefix bits an IPv4-mapped IPv6 prefix loses when unmapped.
func unmapShift(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return 96
	}
	return 0
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Register 1 holds every value a rule compares.
const reg = 1

// allowExprs builds the rule `meta nfproto F ip[6] saddr|daddr @set [meta l4proto P]
// [th dport A-B] accept`.
func allowExprs(f family, ingress bool, set *nftables.Set, a Allow) []expr.Any {
	off := f.daddr
	if ingress {
		off = f.saddr
	}
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{f.nfproto}},
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: f.addrLen},
		&expr.Lookup{SourceRegister: reg, SetName: set.Name, SetID: set.ID},
	}
	if a.Proto != 0 {
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{a.Proto}},
		)
	}
	if a.PortLast != 0 {
		// The destination port is the third and fourth byte of both TCP and UDP headers.
		e = append(e, &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
		e = append(e, rangeExprs(binaryutil.BigEndian.PutUint16(a.PortFirst), binaryutil.BigEndian.PutUint16(a.PortLast))...)
	}
	return append(e, &expr.Verdict{Kind: expr.VerdictAccept})
}

// rangeExprs compares register reg with [first, last]; cmp compares big-endian bytes as
// numbers.
func rangeExprs(first, last []byte) []expr.Any {
	if slices.Equal(first, last) {
		return []expr.Any{&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: first}}
	}
	return []expr.Any{
		&expr.Cmp{Op: expr.CmpOpGte, Register: reg, Data: first},
		&expr.Cmp{Op: expr.CmpOpLte, Register: reg, Data: last},
	}
}

// ctEstablishedExprs is `ct state established,related accept`. The conntrack state is a
// bitmask in host byte order.
func ctEstablishedExprs() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: reg, Key: expr.CtKeySTATE},
		&expr.Bitwise{
			SourceRegister: reg, DestRegister: reg, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  binaryutil.NativeEndian.PutUint32(0),
		},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg, Data: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
}

// loopbackExprs is `iifname "lo" accept` (input) or `oifname "lo" accept` (output).
func loopbackExprs(ingress bool) []expr.Any {
	key := expr.MetaKeyOIFNAME
	if ingress {
		key = expr.MetaKeyIIFNAME
	}
	return []expr.Any{
		&expr.Meta{Key: key, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: ifname("lo")},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
}

// neighborDiscoveryExprs accepts ICMPv6 router and neighbor solicitations and
// advertisements (types 133-136): without them IPv6 stops resolving neighbors.
func neighborDiscoveryExprs() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{unix.IPPROTO_ICMPV6}},
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpGte, Register: reg, Data: []byte{133}},
		&expr.Cmp{Op: expr.CmpOpLte, Register: reg, Data: []byte{136}},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
}

// logExprs is `limit rate 5/second log prefix "vigil-deny " group NFLogGroup`.
func logExprs() []expr.Any {
	return []expr.Any{
		&expr.Limit{Type: expr.LimitTypePkts, Rate: 5, Unit: expr.LimitTimeSecond, Burst: 5},
		&expr.Log{
			Key:   1<<unix.NFTA_LOG_PREFIX | 1<<unix.NFTA_LOG_GROUP,
			Data:  []byte(LogPrefix),
			Group: NFLogGroup,
		},
	}
}

// rejectTCPExprs is `meta l4proto tcp reject with tcp reset`.
func rejectTCPExprs() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Reject{Type: unix.NFT_REJECT_TCP_RST},
	}
}

// rejectExprs is `reject with icmpx port-unreachable`, which answers in the packet's
// own family.
func rejectExprs() []expr.Any {
	return []expr.Any{
		&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH},
	}
}

// ifname pads an interface name to IFNAMSIZ, as the kernel compares it.
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}
