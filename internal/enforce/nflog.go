package enforce

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Denied is one packet the table rejected and logged.
type Denied struct {
	// Time is when the kernel logged the packet, or when Vigil received it if the
	// packet carried no timestamp.
	Time time.Time
	// Src and Dst are the packet's addresses; the ports are 0 for a protocol without
	// ports (ICMP).
	Src, Dst netip.AddrPort
	Proto    uint8
	// In is true for a packet the workload received (input chain), false for one it
	// sent (output chain).
	In bool
}

// nfnetlink_log protocol numbers, from include/uapi/linux/netfilter/nfnetlink_log.h.
const (
	nfnlSubsysULOG     = 4
	nfulnlMsgPacket    = 0
	nfulnlMsgConfig    = 1
	nfulaPacketHdr     = 1
	nfulaTimestamp     = 3
	nfulaPayload       = 9
	nfulaCfgCmd        = 1
	nfulaCfgMode       = 2
	nfulaCfgTimeout    = 4
	nfulaCfgQThresh    = 5
	nfulnlCfgCmdBind   = 1
	nfulnlCopyPacket   = 2
	nfInetLocalIn      = 1
	nflogCopyRange     = 256 // IPv6 header, extension headers and the ports
	nfgenmsgLen        = 4
	packetHdrMinLen    = 4
	packetTimestampLen = 16
)

// DenyLog receives the packets the table logs in one namespace (NFLOG group
// NFLogGroup). Only one DenyLog can be open per namespace: the kernel gives a group to
// one socket. Run and Close may be called from different goroutines; Run must be called
// at most once.
type DenyLog struct {
	path      string
	conn      *netlink.Conn
	closeOnce sync.Once
	malformed atomic.Uint64
	lost      atomic.Uint64
}

// OpenDenyLog subscribes to the deny log of the namespace at netnsPath. Packets logged
// from then on are queued for Run; the caller closes the DenyLog.
func OpenDenyLog(netnsPath string) (*DenyLog, error) {
	ns, err := openNetNS(netnsPath)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: int(ns)})
	if err != nil {
		return nil, fmt.Errorf("nfnetlink in %s: %w", netnsPath, err)
	}
	l := &DenyLog{path: netnsPath, conn: c}
	if err := l.bind(); err != nil {
		c.Close()
		return nil, fmt.Errorf("bind NFLOG group %d in %s: %w", NFLogGroup, netnsPath, err)
	}
	return l, nil
}

// bind sends the one config message that binds the group and sets how packets are
// copied and delivered: the kernel applies the bind command before the other
// attributes of the same message.
func (l *DenyLog) bind() error {
	ae := netlink.NewAttributeEncoder()
	ae.Bytes(nfulaCfgCmd, []byte{nfulnlCfgCmdBind})
	mode := make([]byte, 6) // struct nfulnl_msg_config_mode, packed
	binary.BigEndian.PutUint32(mode, nflogCopyRange)
	mode[4] = nfulnlCopyPacket
	ae.Bytes(nfulaCfgMode, mode)
	// Deliver each packet at once rather than batching up to 100 or 1 s.
	ae.Bytes(nfulaCfgQThresh, binary.BigEndian.AppendUint32(nil, 1))
	ae.Bytes(nfulaCfgTimeout, binary.BigEndian.AppendUint32(nil, 0))
	attrs, err := ae.Encode()
	if err != nil {
		return err
	}
	hdr := []byte{unix.AF_UNSPEC, 0 /* NFNETLINK_V0 */, 0, 0}
	binary.BigEndian.PutUint16(hdr[2:], NFLogGroup)
	req, err := l.conn.Send(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(nfnlSubsysULOG<<8 | nfulnlMsgConfig),
			Flags: netlink.Request | netlink.Acknowledge,
		},
		Data: append(hdr, attrs...),
	})
	if err != nil {
		return err
	}
	// A logged packet can arrive before the acknowledgement (Conn.Execute would reject
	// it as a reply with the wrong sequence), so read until the acknowledgement comes;
	// such a packet is dropped.
	for {
		msgs, err := l.conn.Receive()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Type == netlink.Error && m.Header.Sequence == req.Header.Sequence {
				return nil
			}
		}
	}
}

// Run calls fn with each denied packet until ctx is done or the DenyLog is closed, and
// then closes it. It returns ctx.Err() when ctx ended it. fn runs on Run's goroutine;
// while it blocks, the kernel queues packets and drops them when the socket is full
// (counted by Lost).
func (l *DenyLog) Run(ctx context.Context, fn func(Denied)) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	defer l.Close()
	for {
		msgs, err := l.conn.Receive()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, unix.ENOBUFS) {
				l.lost.Add(1)
				continue
			}
			return fmt.Errorf("receive NFLOG in %s: %w", l.path, err)
		}
		for _, m := range msgs {
			if m.Header.Type != netlink.HeaderType(nfnlSubsysULOG<<8|nfulnlMsgPacket) {
				continue
			}
			var d Denied
			if !decodeNFLogPacket(m.Data, &d) {
				l.malformed.Add(1)
				continue
			}
			if d.Time.IsZero() {
				d.Time = time.Now()
			}
			fn(d)
		}
	}
}

// Close releases the subscription. It is safe to call more than once.
func (l *DenyLog) Close() error {
	var err error
	l.closeOnce.Do(func() { err = l.conn.Close() })
	return err
}

// Malformed is how many logged packets could not be decoded and were skipped.
func (l *DenyLog) Malformed() uint64 { return l.malformed.Load() }

// Lost is how many times the kernel reported dropping log messages because the socket
// was full.
func (l *DenyLog) Lost() uint64 { return l.lost.Load() }

// ListenDenied calls fn with each packet the table in the namespace at netnsPath denies
// and logs, until ctx is done; it then returns ctx.Err(). Packets denied before the
// subscription is in place are missed: use OpenDenyLog and Run to know when it is.
func ListenDenied(ctx context.Context, netnsPath string, fn func(Denied)) error {
	l, err := OpenDenyLog(netnsPath)
	if err != nil {
		return err
	}
	return l.Run(ctx, fn)
}

// decodeNFLogPacket decodes an NFULNL_MSG_PACKET message body (struct nfgenmsg, then
// attributes) into d and reports whether it held a packet Denied can describe.
func decodeNFLogPacket(b []byte, d *Denied) bool {
	if len(b) < nfgenmsgLen {
		return false
	}
	ad, err := netlink.NewAttributeDecoder(b[nfgenmsgLen:])
	if err != nil {
		return false
	}
	hook := -1
	var payload []byte
	for ad.Next() {
		switch ad.Type() {
		case nfulaPacketHdr:
			// struct nfulnl_msg_packet_hdr { __be16 hw_protocol; __u8 hook; __u8 _pad; }
			ad.Do(func(v []byte) error {
				if len(v) >= packetHdrMinLen {
					hook = int(v[2])
				}
				return nil
			})
		case nfulaTimestamp:
			// struct nfulnl_msg_packet_timestamp { __be64 sec; __be64 usec; }
			ad.Do(func(v []byte) error {
				if len(v) >= packetTimestampLen {
					sec := binary.BigEndian.Uint64(v)
					usec := binary.BigEndian.Uint64(v[8:])
					d.Time = time.Unix(int64(sec), int64(usec)*1000)
				}
				return nil
			})
		case nfulaPayload:
			ad.Do(func(v []byte) error { payload = v; return nil })
		}
	}
	if ad.Err() != nil || hook < 0 {
		return false
	}
	d.In = hook == nfInetLocalIn
	return decodeIPPacket(payload, d)
}

// decodeIPPacket fills d's addresses, ports and protocol from an IPv4 or IPv6 packet
// that starts at b. It reports false for a truncated or malformed header, or for a
// fragment that is not the first (it carries no ports).
func decodeIPPacket(b []byte, d *Denied) bool {
	if len(b) < 1 {
		return false
	}
	var src, dst netip.Addr
	var proto uint8
	var l4 []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return false
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return false
		}
		if binary.BigEndian.Uint16(b[6:])&0x1fff != 0 {
			return false
		}
		proto = b[9]
		src = netip.AddrFrom4([4]byte(b[12:16]))
		dst = netip.AddrFrom4([4]byte(b[16:20]))
		l4 = b[ihl:]
	case 6:
		if len(b) < 40 {
			return false
		}
		src = netip.AddrFrom16([16]byte(b[8:24]))
		dst = netip.AddrFrom16([16]byte(b[24:40]))
		next, rest := b[6], b[40:]
	headers:
		for {
			switch next {
			case unix.IPPROTO_HOPOPTS, unix.IPPROTO_ROUTING, unix.IPPROTO_DSTOPTS:
				if len(rest) < 8 {
					return false
				}
				n := (int(rest[1]) + 1) * 8
				if len(rest) < n {
					return false
				}
				next, rest = rest[0], rest[n:]
				continue
			case unix.IPPROTO_FRAGMENT:
				if len(rest) < 8 || binary.BigEndian.Uint16(rest[2:])&0xfff8 != 0 {
					return false
				}
				next, rest = rest[0], rest[8:]
				continue
			}
			break headers
		}
		proto, l4 = next, rest
	default:
		return false
	}
	var sport, dport uint16
	switch proto {
	case unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_UDPLITE, unix.IPPROTO_SCTP:
		if len(l4) < 4 {
			return false
		}
		sport = binary.BigEndian.Uint16(l4)
		dport = binary.BigEndian.Uint16(l4[2:])
	}
	d.Src = netip.AddrPortFrom(src, sport)
	d.Dst = netip.AddrPortFrom(dst, dport)
	d.Proto = proto
	return true
}
