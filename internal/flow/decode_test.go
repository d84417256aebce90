package flow

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"
)

// readPcap returns the frames and timestamps (unix ns) of a capture file.
func readPcap(t testing.TB, path string) ([][]byte, []int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	var ts []int64
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		frames = append(frames, data)
		ts = append(ts, ci.Timestamp.UnixNano())
	}
	return frames, ts
}

func TestDecodeCapture(t *testing.T) {
	frames, _ := readPcap(t, "testdata/loopback.pcap")
	if len(frames) != 31 {
		t.Fatalf("capture has %d frames, want 31", len(frames))
	}
	var p Packet
	counts := map[uint8]int{}
	var syn, httpReq, v6 int
	for i, fr := range frames {
		if err := Decode(fr, &p); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		counts[p.Proto]++
		if p.Proto == ProtoTCP && p.TCPFlags&(FlagSYN|FlagACK) == FlagSYN {
			syn++
		}
		if len(p.Payload) > 4 && string(p.Payload[:4]) == "GET " {
			httpReq++
			if p.Dst.Port() != 18080 && p.Dst.Port() != 18081 {
				t.Errorf("HTTP request to port %d", p.Dst.Port())
			}
		}
		if p.Src.Addr() == netip.IPv6Loopback() {
			v6++
		}
		if p.Length < 20 || p.Length > len(fr) {
			t.Errorf("frame %d: length %d out of range (frame %d bytes)", i, p.Length, len(fr))
		}
	}
	if counts[ProtoTCP] == 0 || counts[ProtoUDP] == 0 || counts[ProtoICMP] == 0 || counts[ProtoICMPv6] == 0 {
		t.Errorf("protocol counts %v: want TCP, UDP, ICMP and ICMPv6", counts)
	}
	if syn < 2 || httpReq != 2 || v6 == 0 {
		t.Errorf("syn=%d http requests=%d ipv6=%d", syn, httpReq, v6)
	}
}

// frame builds an Ethernet frame around an IP packet.
func frame(etherType uint16, vlans []uint16, ip []byte) []byte {
	b := make([]byte, 12, 64+len(ip))
	b[6], b[11] = 0x02, 0x07 // source MAC 02:00:00:00:00:07
	for _, v := range vlans {
		b = binary.BigEndian.AppendUint16(b, etherTypeVLAN)
		b = binary.BigEndian.AppendUint16(b, v)
	}
	b = binary.BigEndian.AppendUint16(b, etherType)
	return append(b, ip...)
}

func ipv4(proto uint8, src, dst [4]byte, flagsFrag uint16, l4 []byte) []byte {
	b := make([]byte, 20, 20+len(l4))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(l4)))
	binary.BigEndian.PutUint16(b[6:], flagsFrag)
	b[8], b[9] = 64, proto
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	return append(b, l4...)
}

func tcp(sport, dport uint16, seq uint32, flags uint8, payload string) []byte {
	b := make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], seq)
	b[12] = 5 << 4
	b[13] = flags
	return append(b, payload...)
}

func udp(sport, dport uint16, payload string) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

func ipv6(next uint8, src, dst [16]byte, ext []byte, l4 []byte) []byte {
	b := make([]byte, 40, 40+len(ext)+len(l4))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(ext)+len(l4)))
	b[6], b[7] = next, 64
	copy(b[8:], src[:])
	copy(b[24:], dst[:])
	b = append(b, ext...)
	return append(b, l4...)
}

var (
	ipA = [4]byte{10, 0, 0, 1}
	ipB = [4]byte{10, 0, 0, 2}
)

func TestDecode(t *testing.T) {
	v6a := netip.MustParseAddr("fd00::1").As16()
	v6b := netip.MustParseAddr("fd00::2").As16()
	hopByHop := append([]byte{ProtoTCP, 0}, make([]byte, 6)...) // 8-byte extension header
	fragFirst := []byte{ProtoUDP, 0, 0, 1, 0, 0, 0, 9}          // offset 0, more fragments
	fragLater := []byte{ProtoUDP, 0, 0x05, 0x00, 0, 0, 0, 9}    // offset 160
	tests := []struct {
		name    string
		frame   []byte
		err     error
		proto   uint8
		src     string
		dst     string
		payload string
		vlan    uint16
	}{
		{"tcp syn", frame(etherTypeIPv4, nil, ipv4(ProtoTCP, ipA, ipB, 0x4000, tcp(40000, 80, 1, FlagSYN, ""))), nil, ProtoTCP, "10.0.0.1:40000", "10.0.0.2:80", "", 0},
		{"tcp payload", frame(etherTypeIPv4, nil, ipv4(ProtoTCP, ipA, ipB, 0, tcp(40000, 80, 2, FlagPSH|FlagACK, "GET / HTTP/1.1\r\n"))), nil, ProtoTCP, "10.0.0.1:40000", "10.0.0.2:80", "GET / HTTP/1.1\r\n", 0},
		{"udp", frame(etherTypeIPv4, nil, ipv4(ProtoUDP, ipA, ipB, 0, udp(5353, 53, "q"))), nil, ProtoUDP, "10.0.0.1:5353", "10.0.0.2:53", "q", 0},
		{"vlan", frame(etherTypeIPv4, []uint16{42}, ipv4(ProtoUDP, ipA, ipB, 0, udp(1, 2, ""))), nil, ProtoUDP, "10.0.0.1:1", "10.0.0.2:2", "", 42},
		{"qinq", frame(etherTypeIPv4, []uint16{7, 42}, ipv4(ProtoUDP, ipA, ipB, 0, udp(1, 2, "x"))), nil, ProtoUDP, "10.0.0.1:1", "10.0.0.2:2", "x", 7},
		{"icmp echo", frame(etherTypeIPv4, nil, ipv4(ProtoICMP, ipA, ipB, 0, []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1})), nil, ProtoICMP, "10.0.0.1:4660", "10.0.0.2:4660", "", 0},
		{"ipv6 tcp", frame(etherTypeIPv6, nil, ipv6(ProtoTCP, v6a, v6b, nil, tcp(1234, 443, 9, FlagSYN, ""))), nil, ProtoTCP, "[fd00::1]:1234", "[fd00::2]:443", "", 0},
		{"ipv6 hop-by-hop", frame(etherTypeIPv6, nil, ipv6(0, v6a, v6b, hopByHop, tcp(1234, 443, 9, FlagACK, "hi"))), nil, ProtoTCP, "[fd00::1]:1234", "[fd00::2]:443", "hi", 0},
		{"ipv6 first fragment", frame(etherTypeIPv6, nil, ipv6(ip6Fragment, v6a, v6b, fragFirst, udp(1, 2, "a"))), nil, ProtoUDP, "[fd00::1]:1", "[fd00::2]:2", "a", 0},
		{"ipv6 later fragment", frame(etherTypeIPv6, nil, ipv6(ip6Fragment, v6a, v6b, fragLater, []byte("rest"))), ErrFragment, 0, "", "", "", 0},
		{"ipv4 later fragment", frame(etherTypeIPv4, nil, ipv4(ProtoUDP, ipA, ipB, 0x0010, []byte("rest"))), ErrFragment, 0, "", "", "", 0},
		{"arp", frame(0x0806, nil, make([]byte, 28)), ErrNotIP, 0, "", "", "", 0},
		{"gre", frame(etherTypeIPv4, nil, ipv4(47, ipA, ipB, 0, make([]byte, 8))), ErrUnsupported, 0, "", "", "", 0},
		{"short ethernet", []byte{1, 2, 3}, ErrTruncated, 0, "", "", "", 0},
		{"bad ihl", func() []byte {
			f := frame(etherTypeIPv4, nil, ipv4(ProtoTCP, ipA, ipB, 0, tcp(1, 2, 0, 0, "")))
			f[14] = 0x41
			return f
		}(), ErrMalformed, 0, "", "", "", 0},
		{"bad tcp offset", func() []byte {
			f := frame(etherTypeIPv4, nil, ipv4(ProtoTCP, ipA, ipB, 0, tcp(1, 2, 0, 0, "")))
			f[14+20+12] = 0xf0
			return f
		}(), ErrMalformed, 0, "", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			err := Decode(tt.frame, &p)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if p.Proto != tt.proto || p.Src.String() != tt.src || p.Dst.String() != tt.dst || string(p.Payload) != tt.payload || p.VLAN != tt.vlan {
				t.Errorf("got proto %d %s -> %s payload %q vlan %d", p.Proto, p.Src, p.Dst, p.Payload, p.VLAN)
			}
			if p.SrcMAC != [6]byte{0x02, 0, 0, 0, 0, 0x07} {
				t.Errorf("source MAC %x", p.SrcMAC)
			}
		})
	}
}

func TestDecodeSnapLength(t *testing.T) {
	full := frame(etherTypeIPv4, nil, ipv4(ProtoTCP, ipA, ipB, 0, tcp(1, 2, 3, FlagACK, "0123456789abcdef")))
	var p Packet
	if err := Decode(full[:len(full)-10], &p); err != nil {
		t.Fatal(err)
	}
	if p.Length != 20+20+16 || string(p.Payload) != "012345" {
		t.Errorf("cut frame: length %d payload %q; want the wire length 56 and the bytes kept", p.Length, p.Payload)
	}
}

func TestDecodeEveryTruncation(t *testing.T) {
	full := frame(etherTypeIPv4, []uint16{5}, ipv4(ProtoTCP, ipA, ipB, 0, tcp(1, 2, 3, FlagACK, "payload")))
	var p Packet
	for n := range len(full) {
		_ = Decode(full[:n], &p) // must not panic
		if len(p.Payload) > n {
			t.Fatalf("payload of %d bytes from a %d-byte frame", len(p.Payload), n)
		}
	}
}

func FuzzDecode(f *testing.F) {
	frames, _ := readPcap(f, "testdata/loopback.pcap")
	for _, fr := range frames {
		f.Add(fr)
	}
	f.Add(frame(etherTypeIPv6, nil, ipv6(0, [16]byte{}, [16]byte{}, []byte{ip6Routing, 0, 0, 0, 0, 0, 0, 0}, nil)))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		if err := Decode(b, &p); err != nil {
			return
		}
		if len(p.Payload) > len(b) || p.Length > 65535+40 {
			t.Fatalf("decoded lengths out of bounds: length %d payload %d frame %d", p.Length, len(p.Payload), len(b))
		}
		if !p.Src.Addr().IsValid() || !p.Dst.Addr().IsValid() {
			t.Fatalf("decoded invalid addresses %v %v", p.Src, p.Dst)
		}
	})
}
