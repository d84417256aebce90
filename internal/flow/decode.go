package flow

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// IP protocol numbers the decoder knows.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
)

// TCP flags.
const (
	FlagFIN uint8 = 0x01
	FlagSYN uint8 = 0x02
	FlagRST uint8 = 0x04
	FlagPSH uint8 = 0x08
	FlagACK uint8 = 0x10
)

const (
	etherTypeIPv4  = 0x0800
	etherTypeIPv6  = 0x86DD
	etherTypeVLAN  = 0x8100
	etherTypeQinQ  = 0x88A8
	etherHeaderLen = 14
)

// Decoding errors. They are counted, never fatal: a malformed frame is dropped.
var (
	ErrTruncated   = errors.New("truncated frame")
	ErrNotIP       = errors.New("not an IP packet")
	ErrMalformed   = errors.New("malformed header")
	ErrFragment    = errors.New("non-first IP fragment")
	ErrUnsupported = errors.New("unsupported transport protocol")
)

// Packet is what the flow table needs of one frame. Decode fills it in place without
// allocating; Payload points into the frame and is valid only as long as the frame is.
type Packet struct {
	SrcMAC   [6]byte
	VLAN     uint16
	Proto    uint8
	Src, Dst netip.AddrPort
	// Length is the IP packet's length (header included) as its header gives it, what
	// byte counters count, even when the capture kept only the first bytes.
	Length   int
	TCPFlags uint8
	Seq      uint32
	// ICMPType and ICMPCode for ICMP and ICMPv6.
	ICMPType, ICMPCode uint8
	Payload            []byte
}

// Decode parses an Ethernet frame (with up to two VLAN tags) carrying IPv4 or IPv6 and
// TCP, UDP, ICMP or ICMPv6. It never allocates and never reads out of bounds.
func Decode(frame []byte, p *Packet) error {
	if len(frame) < etherHeaderLen {
		return ErrTruncated
	}
	copy(p.SrcMAC[:], frame[6:12])
	p.VLAN = 0
	et := binary.BigEndian.Uint16(frame[12:14])
	off := etherHeaderLen
	for i := 0; i < 2 && (et == etherTypeVLAN || et == etherTypeQinQ); i++ {
		if len(frame) < off+4 {
			return ErrTruncated
		}
		if p.VLAN == 0 {
			p.VLAN = binary.BigEndian.Uint16(frame[off:]) & 0x0fff
		}
		et = binary.BigEndian.Uint16(frame[off+2:])
		off += 4
	}
	switch et {
	case etherTypeIPv4:
		return decodeIPv4(frame[off:], p)
	case etherTypeIPv6:
		return decodeIPv6(frame[off:], p)
	}
	return ErrNotIP
}

// DecodeIP parses a packet that starts at the IP header (a raw or cooked capture).
func DecodeIP(pkt []byte, p *Packet) error {
	p.SrcMAC = [6]byte{}
	p.VLAN = 0
	if len(pkt) < 1 {
		return ErrTruncated
	}
	switch pkt[0] >> 4 {
	case 4:
		return decodeIPv4(pkt, p)
	case 6:
		return decodeIPv6(pkt, p)
	}
	return ErrNotIP
}

func decodeIPv4(b []byte, p *Packet) error {
	if len(b) < 20 {
		return ErrTruncated
	}
	if b[0]>>4 != 4 {
		return ErrMalformed
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || total < ihl || len(b) < ihl {
		return ErrMalformed
	}
	// The frame may hold less than the packet (a snap length cut it: the header still
	// says what crossed the wire, and that is what counters count) or more (Ethernet
	// padding). TSO super-frames may say 0.
	length, end := total, total
	if total == 0 {
		length, end = len(b), len(b)
	} else if end > len(b) {
		end = len(b)
	}
	if binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
		return ErrFragment
	}
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	p.Length = length
	return decodeTransport(b[9], b[ihl:end], src, dst, p)
}

// IPv6 extension headers the decoder walks over.
const (
	ip6HopByHop = 0
	ip6Routing  = 43
	ip6Fragment = 44
	ip6DestOpts = 60
	ip6NoNext   = 59
)

func decodeIPv6(b []byte, p *Packet) error {
	if len(b) < 40 {
		return ErrTruncated
	}
	if b[0]>>4 != 6 {
		return ErrMalformed
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	length, end := 40+plen, 40+plen
	if plen == 0 { // jumbogram or TSO super-frame
		length, end = len(b), len(b)
	} else if end > len(b) {
		end = len(b)
	}
	src := netip.AddrFrom16([16]byte(b[8:24])).Unmap()
	dst := netip.AddrFrom16([16]byte(b[24:40])).Unmap()
	next := b[6]
	off := 40
	for range 8 {
		switch next {
		case ip6HopByHop, ip6Routing, ip6DestOpts:
			if end < off+8 {
				return ErrTruncated
			}
			hl := (int(b[off+1]) + 1) * 8
			if end < off+hl {
				return ErrTruncated
			}
			next = b[off]
			off += hl
			continue
		case ip6Fragment:
			if end < off+8 {
				return ErrTruncated
			}
			if binary.BigEndian.Uint16(b[off+2:off+4])&0xfff8 != 0 {
				return ErrFragment
			}
			next = b[off]
			off += 8
			continue
		case ip6NoNext:
			return ErrUnsupported
		}
		p.Length = length
		return decodeTransport(next, b[off:end], src, dst, p)
	}
	return ErrMalformed
}

func decodeTransport(proto uint8, b []byte, src, dst netip.Addr, p *Packet) error {
	p.Proto = proto
	p.TCPFlags, p.Seq, p.ICMPType, p.ICMPCode = 0, 0, 0, 0
	p.Payload = nil
	switch proto {
	case ProtoTCP:
		if len(b) < 20 {
			return ErrTruncated
		}
		doff := int(b[12]>>4) * 4
		if doff < 20 || doff > len(b) {
			return ErrMalformed
		}
		p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[0:2]))
		p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[2:4]))
		p.Seq = binary.BigEndian.Uint32(b[4:8])
		p.TCPFlags = b[13]
		p.Payload = b[doff:]
	case ProtoUDP:
		if len(b) < 8 {
			return ErrTruncated
		}
		ulen := int(binary.BigEndian.Uint16(b[4:6]))
		end := len(b)
		if ulen >= 8 && ulen < end {
			end = ulen
		}
		p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[0:2]))
		p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[2:4]))
		p.Payload = b[8:end]
	case ProtoICMP, ProtoICMPv6:
		if len(b) < 4 {
			return ErrTruncated
		}
		p.ICMPType, p.ICMPCode = b[0], b[1]
		// ICMP has no ports; echo requests and replies are told apart by their
		// identifier, which stands in for both ports so that a ping is one flow.
		var id uint16
		if isEcho(proto, b[0]) && len(b) >= 8 {
			id = binary.BigEndian.Uint16(b[4:6])
		}
		p.Src = netip.AddrPortFrom(src, id)
		p.Dst = netip.AddrPortFrom(dst, id)
		p.Payload = nil
	default:
		p.Src = netip.AddrPortFrom(src, 0)
		p.Dst = netip.AddrPortFrom(dst, 0)
		return ErrUnsupported
	}
	return nil
}

func isEcho(proto, typ uint8) bool {
	if proto == ProtoICMP {
		return typ == 8 || typ == 0
	}
	return typ == 128 || typ == 129
}
