package procmon

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestEncodeDiagRequest(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		name     string
		q        diagQuery
		family   uint8
		src, dst netip.AddrPort // as the request carries them
	}{
		{"tcp ipv4: src is the local end", diagQuery{protoTCP, ap("10.0.0.2:8080"), ap("10.0.0.3:41000")},
			unix.AF_INET, ap("10.0.0.2:8080"), ap("10.0.0.3:41000")},
		{"udp ipv4: src is the peer", diagQuery{protoUDP, ap("10.0.0.2:53"), ap("10.0.0.3:41000")},
			unix.AF_INET, ap("10.0.0.3:41000"), ap("10.0.0.2:53")},
		{"tcp ipv6", diagQuery{protoTCP, ap("[fd00::2]:443"), ap("[fd00::3]:50000")},
			unix.AF_INET6, ap("[fd00::2]:443"), ap("[fd00::3]:50000")},
	} {
		b := make([]byte, diagRequestLen)
		for i := range b {
			b[i] = 0xAA // must all be overwritten
		}
		encodeDiagRequest(b, tc.q, 77)
		ne := binary.NativeEndian
		if l, typ, flags, seq := ne.Uint32(b[0:]), ne.Uint16(b[4:]), ne.Uint16(b[6:]), ne.Uint32(b[8:]); l != diagRequestLen ||
			typ != sockDiagByFamily || flags != unix.NLM_F_REQUEST || seq != 77 || ne.Uint32(b[12:]) != 0 {
			t.Errorf("%s: header len %d type %d flags %#x seq %d", tc.name, l, typ, flags, seq)
		}
		r := b[nlmsgHdrLen:]
		if r[0] != tc.family || r[1] != tc.q.proto || r[2] != 0 || r[3] != 0 || ne.Uint32(r[4:]) != ^uint32(0) {
			t.Errorf("%s: family %d proto %d ext %d states %#x", tc.name, r[0], r[1], r[2], ne.Uint32(r[4:]))
		}
		src := netip.AddrPortFrom(addrOf(r[12:28], tc.family), binary.BigEndian.Uint16(r[8:]))
		dst := netip.AddrPortFrom(addrOf(r[28:44], tc.family), binary.BigEndian.Uint16(r[10:]))
		if src != tc.src || dst != tc.dst {
			t.Errorf("%s: src %v dst %v, want %v %v", tc.name, src, dst, tc.src, tc.dst)
		}
		if tc.family == unix.AF_INET && (!allZero(r[16:28]) || !allZero(r[32:44])) {
			t.Errorf("%s: IPv4 addresses must fill only the first 4 bytes: % x", tc.name, r[12:44])
		}
		if ne.Uint32(r[44:]) != 0 || ne.Uint32(r[48:]) != diagNoCookie || ne.Uint32(r[52:]) != diagNoCookie {
			t.Errorf("%s: interface %d cookie %#x %#x", tc.name, ne.Uint32(r[44:]), ne.Uint32(r[48:]), ne.Uint32(r[52:]))
		}
	}
}

func addrOf(b []byte, family uint8) netip.Addr {
	if family == unix.AF_INET {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16([16]byte(b))
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// diagMsg builds a netlink message carrying struct inet_diag_msg.
func diagMsg(seq uint32, family, state uint8, local, remote netip.AddrPort, uid, inode uint32) []byte {
	ne := binary.NativeEndian
	b := make([]byte, nlmsgHdrLen+diagMsgLen+8) // and an attribute's worth of tail
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], sockDiagByFamily)
	ne.PutUint32(b[8:], seq)
	m := b[nlmsgHdrLen:]
	m[0], m[1] = family, state
	binary.BigEndian.PutUint16(m[4:], local.Port())
	binary.BigEndian.PutUint16(m[6:], remote.Port())
	putAddr(m[8:24], local.Addr())
	putAddr(m[24:40], remote.Addr())
	ne.PutUint32(m[64:], uid)
	ne.PutUint32(m[68:], inode)
	return b
}

func errMsg(seq uint32, errno syscall.Errno) []byte {
	ne := binary.NativeEndian
	b := make([]byte, nlmsgHdrLen+4+nlmsgHdrLen)
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.NLMSG_ERROR)
	ne.PutUint32(b[8:], seq)
	ne.PutUint32(b[nlmsgHdrLen:], uint32(-int32(errno)))
	return b
}

func TestParseDiagReply(t *testing.T) {
	ap := netip.MustParseAddrPort
	v4 := diagMsg(9, unix.AF_INET, 1, ap("10.0.0.2:8080"), ap("10.0.0.3:41000"), 1000, 5555)
	sk, done, err := parseDiagReply(v4, 9)
	if err != nil || !done {
		t.Fatalf("IPv4 reply: %v, done %v", err, done)
	}
	want := diagSocket{family: unix.AF_INET, state: 1, local: ap("10.0.0.2:8080"), remote: ap("10.0.0.3:41000"), uid: 1000, inode: 5555}
	if sk != want {
		t.Errorf("IPv4 reply = %+v, want %+v", sk, want)
	}

	mapped := diagMsg(3, unix.AF_INET6, tcpListen, ap("[::ffff:10.0.0.2]:8080"), ap("[::]:0"), 0, 77)
	if sk, _, err = parseDiagReply(mapped, 3); err != nil || sk.local != ap("[::ffff:10.0.0.2]:8080") || sk.inode != 77 {
		t.Errorf("IPv6 reply = %+v, %v", sk, err)
	}

	if _, done, err = parseDiagReply(errMsg(4, unix.ENOENT), 4); !done || !errors.Is(err, errNoSocket) {
		t.Errorf("ENOENT: done %v err %v, want errNoSocket", done, err)
	}
	if _, done, err = parseDiagReply(errMsg(4, unix.EPERM), 4); !done || !errors.Is(err, unix.EPERM) {
		t.Errorf("EPERM: done %v err %v", done, err)
	}

	// An answer to an earlier request that timed out is skipped, in its own read or
	// before the awaited one in the same.
	if _, done, err = parseDiagReply(v4, 10); done || err != nil {
		t.Errorf("stale reply alone: done %v err %v, want to read again", done, err)
	}
	both := append(errMsg(8, unix.ENOENT), v4...)
	if sk, done, err = parseDiagReply(both, 9); !done || err != nil || sk.inode != 5555 {
		t.Errorf("stale then awaited: %+v done %v err %v", sk, done, err)
	}

	if _, _, err = parseDiagReply(v4[:40], 9); err == nil {
		t.Error("truncated message: no error")
	}
	short := diagMsg(9, unix.AF_INET, 1, ap("10.0.0.2:8080"), ap("10.0.0.3:41000"), 0, 1)[:nlmsgHdrLen+20]
	binary.NativeEndian.PutUint32(short, uint32(len(short)))
	if _, _, err = parseDiagReply(short, 9); err == nil {
		t.Error("short inet_diag_msg: no error")
	}
	if _, _, err = parseDiagReply(diagMsg(9, unix.AF_UNIX, 1, ap("10.0.0.2:1"), ap("10.0.0.3:2"), 0, 1), 9); err == nil {
		t.Error("unknown family: no error")
	}
}

func FuzzParseDiagReply(f *testing.F) {
	ap := netip.MustParseAddrPort
	f.Add(diagMsg(1, unix.AF_INET, 1, ap("10.0.0.2:8080"), ap("10.0.0.3:41000"), 1000, 5555))
	f.Add(diagMsg(1, unix.AF_INET6, 10, ap("[fd00::1]:80"), ap("[::]:0"), 0, 1))
	f.Add(errMsg(1, unix.ENOENT))
	f.Add(append(errMsg(0, unix.ENOENT), errMsg(1, 0)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		sk, done, err := parseDiagReply(b, 1)
		if err == nil && done && sk.family != unix.AF_INET && sk.family != unix.AF_INET6 {
			t.Fatalf("accepted family %d", sk.family)
		}
	})
}
