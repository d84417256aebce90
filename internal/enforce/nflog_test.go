package enforce

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
)

func ipv4TCP(src, dst string, sport, dport uint16) []byte {
	b := make([]byte, 40)
	b[0] = 0x45
	b[9] = 6
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	binary.BigEndian.PutUint16(b[20:], sport)
	binary.BigEndian.PutUint16(b[22:], dport)
	return b
}

func ipv6UDP(src, dst string, sport, dport uint16, ext ...byte) []byte {
	b := make([]byte, 40)
	b[0] = 0x60
	b[6] = 17
	if len(ext) > 0 {
		b[6] = 0 // hop-by-hop options, then UDP
	}
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	b = append(b, ext...)
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	return append(b, 0, 8, 0, 0)
}

func nflogMsg(t *testing.T, hook byte, ts bool, payload []byte) []byte {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	ae.Bytes(nfulaPacketHdr, []byte{0x08, 0x00, hook, 0})
	if ts {
		v := binary.BigEndian.AppendUint64(nil, 1700000000)
		ae.Bytes(nfulaTimestamp, binary.BigEndian.AppendUint64(v, 250000))
	}
	ae.Bytes(10, []byte(LogPrefix+"\x00"))
	if payload != nil {
		ae.Bytes(nfulaPayload, payload)
	}
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{2, 0, 0x56, 0x47}, b...)
}

func TestDecodeNFLogPacket(t *testing.T) {
	hbh := []byte{17, 0, 1, 4, 0, 0, 0, 0} // next header UDP, length 8, PadN
	tests := []struct {
		name string
		msg  []byte
		ok   bool
		want Denied
	}{
		{"ipv4 tcp input", nflogMsg(t, 1, true, ipv4TCP("198.18.200.1", "198.18.200.2", 40000, 8080)), true, Denied{
			Time: time.Unix(1700000000, 250000000),
			Src:  netip.MustParseAddrPort("198.18.200.1:40000"), Dst: netip.MustParseAddrPort("198.18.200.2:8080"),
			Proto: 6, In: true,
		}},
		{"ipv6 udp output", nflogMsg(t, 3, false, ipv6UDP("fd00::1", "fd00::2", 53000, 53)), true, Denied{
			Src: netip.MustParseAddrPort("[fd00::1]:53000"), Dst: netip.MustParseAddrPort("[fd00::2]:53"), Proto: 17,
		}},
		{"ipv6 hop-by-hop", nflogMsg(t, 1, false, ipv6UDP("fd00::1", "fd00::2", 1, 2, hbh...)), true, Denied{
			Src: netip.MustParseAddrPort("[fd00::1]:1"), Dst: netip.MustParseAddrPort("[fd00::2]:2"), Proto: 17, In: true,
		}},
		{"no payload", nflogMsg(t, 1, false, nil), false, Denied{}},
		{"truncated ipv4", nflogMsg(t, 1, false, ipv4TCP("1.1.1.1", "2.2.2.2", 1, 2)[:22]), false, Denied{}},
		{"bad ihl", nflogMsg(t, 1, false, append([]byte{0x41}, ipv4TCP("1.1.1.1", "2.2.2.2", 1, 2)[1:]...)), false, Denied{}},
		{"truncated ipv6", nflogMsg(t, 1, false, ipv6UDP("fd00::1", "fd00::2", 1, 2)[:41]), false, Denied{}},
		{"not ip", nflogMsg(t, 1, false, []byte{0x20, 0, 0}), false, Denied{}},
		{"short body", []byte{2, 0}, false, Denied{}},
		{"bad attributes", []byte{2, 0, 0, 0, 0xff, 0xff, 1}, false, Denied{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Denied
			ok := decodeNFLogPacket(tt.msg, &d)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v (%+v)", ok, tt.ok, d)
			}
			if ok && d != tt.want {
				t.Errorf("got %+v\nwant %+v", d, tt.want)
			}
		})
	}
}

func TestDecodeIPv4Fragment(t *testing.T) {
	b := ipv4TCP("1.1.1.1", "2.2.2.2", 1, 2)
	binary.BigEndian.PutUint16(b[6:], 10) // offset 80 bytes: no ports here
	if decodeIPPacket(b, &Denied{}) {
		t.Fatal("a later fragment decoded")
	}
}

func FuzzDecodeNFLogPacket(f *testing.F) {
	f.Add(ipv4TCP("198.18.200.1", "198.18.200.2", 40000, 8080))
	f.Add(ipv6UDP("fd00::1", "fd00::2", 1, 2, 17, 0, 1, 4, 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, payload []byte) {
		var d Denied
		decodeIPPacket(payload, &d)
	})
}

func BenchmarkDecodeIPPacket(b *testing.B) {
	p := ipv4TCP("198.18.200.1", "198.18.200.2", 40000, 8080)
	b.ReportAllocs()
	var d Denied
	for b.Loop() {
		decodeIPPacket(p, &d)
	}
}
