package dpi

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

func dnsAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// dnsBuild packs a message with one question and the given answers.
func dnsBuild(tb testing.TB, h dnsmessage.Header, name string, typ dnsmessage.Type, answers ...func(*dnsmessage.Builder) error) []byte {
	tb.Helper()
	b := dnsmessage.NewBuilder(nil, h)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		tb.Fatal(err)
	}
	if err := b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}); err != nil {
		tb.Fatal(err)
	}
	if err := b.StartAnswers(); err != nil {
		tb.Fatal(err)
	}
	for _, a := range answers {
		if err := a(&b); err != nil {
			tb.Fatal(err)
		}
	}
	msg, err := b.Finish()
	if err != nil {
		tb.Fatal(err)
	}
	return msg
}

// dnsWithLength prefixes a message with its length, as over TCP.
func dnsWithLength(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)
}

func TestDNSParser(t *testing.T) {
	query := captured(t, "dns/udp-a.client")
	response := captured(t, "dns/udp-a.server")
	setFlags := func(b []byte, set, clear uint16) string {
		b = append([]byte(nil), b...)
		f := binary.BigEndian.Uint16(b[2:])
		binary.BigEndian.PutUint16(b[2:], f&^clear|set)
		return string(b)
	}
	setCount := func(b []byte, i int, n uint16) string {
		b = append([]byte(nil), b...)
		binary.BigEndian.PutUint16(b[4+2*i:], n)
		return string(b)
	}
	root := dnsBuild(t, dnsmessage.Header{ID: 1}, ".", dnsmessage.TypeNS)
	odd := dnsBuild(t, dnsmessage.Header{ID: 2}, "x.test.", dnsmessage.Type(12345))
	many := dnsBuild(t, dnsmessage.Header{ID: 3, Response: true, RCode: dnsmessage.RCodeServerFailure}, "many.test.", dnsmessage.TypeA, func(b *dnsmessage.Builder) error {
		for i := range 40 {
			if err := b.AResource(dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("many.test."), Class: dnsmessage.ClassINET, TTL: 1}, dnsmessage.AResource{A: [4]byte{10, 0, 0, byte(i)}}); err != nil {
				return err
			}
		}
		return b.MXResource(dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("many.test."), Class: dnsmessage.ClassINET}, dnsmessage.MXResource{MX: dnsmessage.MustNewName("mx.test.")})
	})
	var manyAnswers []DNSAnswer
	for i := range dnsMaxAnswers {
		manyAnswers = append(manyAnswers, DNSAnswer{Name: "many.test", Type: "A", TTL: 1, Addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})})
	}
	truncated := setFlags(response[:len(response)-10], dnsFlagTruncated, 0)
	// The last A record is cut: the two before it are kept.
	aRecord := []DNSAnswer{
		{Name: "www.example.test", Type: "CNAME", TTL: 300, Target: "edge.cdn.example.test"},
		{Name: "edge.cdn.example.test", Type: "A", TTL: 60, Addr: dnsAddr("192.0.2.10")},
	}
	loop := append(append([]byte(nil), query[:12]...), 0xc0, 12, 0, 1, 0, 1) // a name that points at itself
	bigResponse := dnsWithLength(many)
	bigResponse[0], bigResponse[1] = 0x20, 0 // says 8192 bytes

	checkParser(t, NewDNS(), []parserCase{
		{name: "dig query", t: UDP, in: string(query), v: Match, want: Detail{DNS: &DNSMessage{ID: 41235, Query: "www.example.test", QType: "A"}}},
		{name: "response", t: UDP, dir: FromServer, in: string(response), v: Match, want: Detail{DNS: &DNSMessage{ID: 41235, Response: true, Query: "www.example.test", QType: "A", RCode: "NOERROR", Answers: []DNSAnswer{
			aRecord[0], aRecord[1],
			{Name: "edge.cdn.example.test", Type: "A", TTL: 60, Addr: dnsAddr("192.0.2.11")},
		}}}},
		{name: "TCP query", in: string(captured(t, "dns/tcp-a.client")), v: Match, want: Detail{DNS: &DNSMessage{ID: 6393, Query: "db.example.test", QType: "A"}}},
		{name: "root", t: UDP, in: string(root), v: Match, want: Detail{DNS: &DNSMessage{ID: 1, Query: ".", QType: "NS"}}},
		{name: "unknown type", t: UDP, in: string(odd), v: Match, want: Detail{DNS: &DNSMessage{ID: 2, Query: "x.test", QType: "TYPE12345"}}},
		{name: "answers kept are bounded", t: UDP, in: string(many), v: Match, want: Detail{DNS: &DNSMessage{ID: 3, Response: true, Query: "many.test", QType: "A", RCode: "SERVFAIL", Answers: manyAnswers}}},
		{name: "truncated response", t: UDP, in: truncated, v: Match, want: Detail{DNS: &DNSMessage{ID: 41235, Response: true, Query: "www.example.test", QType: "A", RCode: "NOERROR", Answers: aRecord}}},
		{name: "TCP response longer than seen", dir: FromServer, in: string(append(bigResponse, make([]byte, MaxInspect)...)[:MaxInspect]), v: Match, want: Detail{DNS: &DNSMessage{ID: 3, Response: true, Query: "many.test", QType: "A", RCode: "SERVFAIL", Answers: manyAnswers}}},

		{name: "cut response", t: UDP, in: string(response[:len(response)-10]), v: NoMatch},
		{name: "trailing record claimed", t: UDP, in: setCount(query, 2, 1), v: NoMatch},
		{name: "Z bit", t: UDP, in: setFlags(query, dnsFlagZ, 0), v: NoMatch},
		{name: "opcode 3", t: UDP, in: setFlags(query, 3<<11, 0), v: NoMatch},
		{name: "two questions", t: UDP, in: setCount(query, 0, 2), v: NoMatch},
		{name: "no question", t: UDP, in: setCount(query, 0, 0), v: NoMatch},
		{name: "query with an answer", t: UDP, in: setCount(query, 1, 1), v: NoMatch},
		{name: "query with an rcode", t: UDP, in: setFlags(query, 3, 0), v: NoMatch},
		{name: "name loop", t: UDP, in: string(loop), v: NoMatch},
		{name: "header only", t: UDP, in: string(query[:12]), v: NoMatch},
		{name: "short", t: UDP, in: "\x00\x01", v: NoMatch},
		{name: "TCP length byte", in: "\x00", v: NeedMore},
		{name: "TCP header coming", in: string(captured(t, "dns/tcp-a.client")[:10]), v: NeedMore},
		{name: "TCP length too small", in: "\x00\x05abcde", v: NoMatch},
		{name: "TCP query too long", in: "\x20\x00", v: NoMatch},
		{name: "TCP response coming", dir: FromServer, in: "\x20\x00", v: NeedMore},
		{name: "TCP bad header", in: "\x00\x20" + setFlags(query, dnsFlagZ, 0)[:14], v: NoMatch},
		{name: "HTTP over TCP", in: "GET / HTTP/1.1\r\n\r\n", v: NoMatch},
	})
}

func TestDNSPrefixes(t *testing.T) {
	checkPrefixes(t, NewDNS(), FromClient, "dns/tcp-a.client")
	checkPrefixes(t, NewDNS(), FromServer, "dns/tcp-a.server")
}

func FuzzDNS(f *testing.F) {
	for _, name := range []string{"dns/udp-a.client", "dns/udp-a.server", "dns/udp-aaaa.server", "dns/udp-nxdomain.server"} {
		f.Add(captured(f, name), true, false, uint16(20))
	}
	fuzzParser(f, NewDNS(), "dns/tcp-a.client", "dns/tcp-a.server")
}
