package dpi

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// captured returns the bytes of testdata/<name>.bin (see testdata/README.md).
func captured(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".bin"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// ourParsers are the parsers of this file's author, for tests that must not depend on
// the others.
func ourParsers() []Parser { return []Parser{NewTLS(), NewHTTP(), NewHTTP2(), NewSSH(), NewDNS()} }

// segmentSize is the segment size of the TCP tests: Ethernet's MTU less IP and TCP headers with
// timestamps.
const segmentSize = 1448

// feedStream feeds b as TCP segments of at most size bytes from sequence number isn,
// and reports whether the Inspector was done after the last one.
func feedStream(in *Inspector, dir Direction, isn uint32, b []byte, size int) bool {
	done := in.Done()
	for off := 0; off < len(b); off += size {
		done = in.Feed(TCP, dir, isn+uint32(off), b[off:min(off+size, len(b))])
	}
	return done
}

// flowCase is a capture of both sides of one flow and what identifying it must give.
type flowCase struct {
	name         string
	t            Transport
	serverFirst  bool
	noServerSide bool
	app          App
	want         Detail
	done         bool
}

var flowCases = []flowCase{
	{
		name: "http/curl-get", t: TCP, app: HTTP, done: true,
		want: Detail{Method: "GET", Host: "127.0.0.1:18001", Path: "/v3/kv/range?limit=10", UserAgent: "curl/7.88.1", Status: 200},
	},
	{
		name: "http/curl-post", t: TCP, app: HTTP, done: true,
		want: Detail{Method: "POST", Host: "localhost:18002", Path: "/logs-2026/_search", UserAgent: "curl/7.88.1", Status: 200},
	},
	{
		name: "http2/curl-get", t: TCP, app: HTTP2, done: true,
		want: Detail{Method: "GET", Host: "127.0.0.1:18003", Path: "/hello", UserAgent: "curl/7.88.1", Status: 200},
	},
	{
		name: "http2/nghttp-get", t: TCP, app: HTTP2, done: true,
		want: Detail{Method: "GET", Host: "127.0.0.1:18005", Path: "/index.html", UserAgent: "nghttp2/1.52.0", Status: 200},
	},
	{
		name: "http2/curl-grpc", t: TCP, app: GRPC, done: true,
		want: Detail{Method: "POST", Host: "127.0.0.1:18004", Path: "/helloworld.Greeter/SayHello", UserAgent: "curl/7.88.1", ContentType: "application/grpc", Status: 200},
	},
	{
		name: "tls/curl-tls13", t: TCP, app: TLS, done: true,
		want: Detail{TLSVersion: "TLS 1.3", SNI: "example.test", ALPN: []string{"h2", "http/1.1"}},
	},
	{
		// The client offers TLS 1.3; the server chooses 1.2.
		name: "tls/openssl-tls12", t: TCP, app: TLS, done: true,
		want: Detail{TLSVersion: "TLS 1.2", SNI: "example.test", ALPN: []string{"h2", "http/1.1"}},
	},
	{
		name: "tls/go-tls13", t: TCP, app: TLS, noServerSide: true,
		want: Detail{TLSVersion: "TLS 1.3", SNI: "api.example.test", ALPN: []string{"h2", "http/1.1"}},
	},
	{
		name: "ssh/openssh", t: TCP, app: SSH, serverFirst: true, done: true,
		want: Detail{Version: "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10", ClientVersion: "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"},
	},
	{
		name: "dns/udp-a", t: UDP, app: DNS, done: true,
		want: Detail{DNS: &DNSMessage{ID: 41235, Response: true, Query: "www.example.test", QType: "A", RCode: "NOERROR", Answers: []DNSAnswer{
			{Name: "www.example.test", Type: "CNAME", TTL: 300, Target: "edge.cdn.example.test"},
			{Name: "edge.cdn.example.test", Type: "A", TTL: 60, Addr: dnsAddr("192.0.2.10")},
			{Name: "edge.cdn.example.test", Type: "A", TTL: 60, Addr: dnsAddr("192.0.2.11")},
		}}},
	},
	{
		name: "dns/udp-aaaa", t: UDP, app: DNS, done: true,
		want: Detail{DNS: &DNSMessage{ID: 30787, Response: true, Query: "api.example.test", QType: "AAAA", RCode: "NOERROR", Answers: []DNSAnswer{
			{Name: "api.example.test", Type: "AAAA", TTL: 120, Addr: dnsAddr("2001:db8::10")},
		}}},
	},
	{
		name: "dns/udp-nxdomain", t: UDP, app: DNS, done: true,
		want: Detail{DNS: &DNSMessage{ID: 21070, Response: true, Query: "missing.example.test", QType: "A", RCode: "NXDOMAIN"}},
	},
	{
		name: "dns/tcp-a", t: TCP, app: DNS, done: true,
		want: Detail{DNS: &DNSMessage{ID: 6393, Response: true, Query: "db.example.test", QType: "A", RCode: "NOERROR", Answers: []DNSAnswer{
			{Name: "db.example.test", Type: "CNAME", TTL: 300, Target: "edge.cdn.example.test"},
			{Name: "edge.cdn.example.test", Type: "A", TTL: 60, Addr: dnsAddr("192.0.2.10")},
			{Name: "edge.cdn.example.test", Type: "A", TTL: 60, Addr: dnsAddr("192.0.2.11")},
		}}},
	},
}

// run feeds the capture of c to in, the sides in the order given, TCP in MSS segments.
func (c flowCase) run(tb testing.TB, in *Inspector, serverFirst bool) {
	tb.Helper()
	sides := []Direction{FromClient, FromServer}
	if serverFirst {
		sides = []Direction{FromServer, FromClient}
	}
	for _, dir := range sides {
		file := c.name + ".client"
		if dir == FromServer {
			if c.noServerSide {
				continue
			}
			file = c.name + ".server"
		}
		b := captured(tb, file)
		if c.t == UDP {
			in.Feed(UDP, dir, 0, b)
		} else {
			feedStream(in, dir, 1000+uint32(dir)*7777, b, segmentSize)
		}
	}
}

func TestIdentifyCaptures(t *testing.T) {
	for _, c := range flowCases {
		for _, reversed := range []bool{false, true} {
			name := c.name
			if reversed {
				name += "/other-side-first"
			}
			t.Run(name, func(t *testing.T) {
				in := NewInspector(nil, nil)
				c.run(t, in, c.serverFirst != reversed)
				if in.App() != c.app {
					t.Errorf("App = %s, want %s", in.App(), c.app)
				}
				if !reflect.DeepEqual(in.Detail(), &c.want) {
					t.Errorf("Detail =\n%+v\nwant\n%+v", in.Detail(), c.want)
				}
				if in.Done() != c.done {
					t.Errorf("Done = %v, want %v", in.Done(), c.done)
				}
				if in.Done() && (in.dir[0].buf != nil || in.dir[1].buf != nil) {
					t.Error("buffers kept after Done")
				}
			})
		}
	}
}

// TestIdentifyInterleaved delivers each side in four segments, the sides taking turns,
// so that a parser sees the other side before it settles.
func TestIdentifyInterleaved(t *testing.T) {
	for _, c := range flowCases {
		if c.t != TCP || c.noServerSide {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			in := NewInspector(nil, nil)
			sides := [2][]byte{captured(t, c.name+".client"), captured(t, c.name+".server")}
			var off [2]int
			for turn := range 8 {
				dir := Direction(turn % 2)
				if c.serverFirst {
					dir = dir.Other()
				}
				b := sides[dir]
				end := min(len(b), off[dir]+(len(b)+3)/4)
				in.Feed(TCP, dir, uint32(off[dir]), b[off[dir]:end])
				off[dir] = end
			}
			if in.App() != c.app || !reflect.DeepEqual(in.Detail(), &c.want) || !in.Done() {
				t.Fatalf("%s %+v done %v, want %s %+v", in.App(), in.Detail(), in.Done(), c.app, c.want)
			}
		})
	}
}

// TestSplitAnywhere delivers the client's first bytes in two segments, split at every
// point, and expects what one segment gives.
func TestSplitAnywhere(t *testing.T) {
	for _, name := range []string{
		"tls/curl-tls13.client", "tls/go-tls13.client", "tls/openssl-tls12.client",
		"http/curl-get.client", "http/curl-post.client", "http2/curl-grpc.client",
		"http2/nghttp-get.client", "ssh/openssh.server", "dns/tcp-a.client",
	} {
		t.Run(name, func(t *testing.T) {
			b := captured(t, name)
			dir := FromClient
			if strings.HasSuffix(name, ".server") {
				dir = FromServer
			}
			whole := NewInspector(nil, nil)
			whole.Feed(TCP, dir, 1, b)
			if whole.App() == Unknown {
				t.Fatal("not identified in one segment")
			}
			for i := 1; i < len(b); i++ {
				in := NewInspector(nil, nil)
				in.Feed(TCP, dir, 1, b[:i])
				in.Feed(TCP, dir, 1+uint32(i), b[i:])
				if in.App() != whole.App() || !reflect.DeepEqual(in.Detail(), whole.Detail()) {
					t.Fatalf("split at %d: %s %+v, want %s %+v", i, in.App(), in.Detail(), whole.App(), whole.Detail())
				}
			}
		})
	}
}

// TestHandshakeRecords splits a ClientHello across three TLS records, each in its own
// segment.
func TestHandshakeRecords(t *testing.T) {
	hello := captured(t, "tls/curl-tls13.client")
	rec := tlsRecords(t, hello, 100, 300)
	in := NewInspector(nil, nil)
	seq := uint32(5)
	for _, r := range rec {
		in.Feed(TCP, FromClient, seq, r)
		seq += uint32(len(r))
	}
	want := Detail{TLSVersion: "TLS 1.3", SNI: "example.test", ALPN: []string{"h2", "http/1.1"}}
	if in.App() != TLS || !reflect.DeepEqual(*in.Detail(), want) {
		t.Fatalf("%s %+v, want tls %+v", in.App(), in.Detail(), want)
	}
}

// tlsRecords re-frames the first handshake record of b as records cut at the given
// offsets of its fragment, each record returned on its own.
func tlsRecords(tb testing.TB, b []byte, cuts ...int) [][]byte {
	tb.Helper()
	n := int(b[3])<<8 | int(b[4])
	frag := b[5 : 5+n]
	var out [][]byte
	prev := 0
	for _, c := range append(cuts, len(frag)) {
		r := []byte{b[0], b[1], b[2], byte((c - prev) >> 8), byte(c - prev)}
		out = append(out, append(r, frag[prev:c]...))
		prev = c
	}
	return out
}

func TestRetransmission(t *testing.T) {
	req := captured(t, "http/curl-post.client")
	const isn = 4000
	segs := [][2]int{{0, 40}, {0, 40}, {20, 60}, {60, 100}, {30, 50}, {100, len(req)}, {0, len(req)}}
	in := NewInspector(nil, nil)
	for _, s := range segs {
		in.Feed(TCP, FromClient, isn+uint32(s[0]), req[s[0]:s[1]])
	}
	want := NewInspector(nil, nil)
	want.Feed(TCP, FromClient, isn, req)
	if in.App() != HTTP || !reflect.DeepEqual(in.Detail(), want.Detail()) {
		t.Fatalf("%s %+v, want http %+v", in.App(), in.Detail(), want.Detail())
	}

	// A retransmission whose bytes differ does not replace what was read first.
	in = NewInspector(nil, nil)
	in.Feed(TCP, FromClient, isn, req[:30])
	forged := bytes.Repeat([]byte{'X'}, 30)
	in.Feed(TCP, FromClient, isn, forged)
	in.Feed(TCP, FromClient, isn+30, req[30:])
	if !reflect.DeepEqual(in.Detail(), want.Detail()) {
		t.Fatalf("%+v, want %+v", in.Detail(), want.Detail())
	}

	// Retransmissions are not counted against MaxPackets.
	in = NewInspector(nil, nil)
	in.Feed(TCP, FromClient, isn, req[:10])
	for range 3 * MaxPackets {
		in.Feed(TCP, FromClient, isn, req[:10])
	}
	in.Feed(TCP, FromClient, isn+10, req[10:])
	if in.App() != HTTP {
		t.Fatalf("App = %s after retransmissions", in.App())
	}
}

func TestSequenceWraps(t *testing.T) {
	req := captured(t, "http/curl-get.client")
	in := NewInspector(nil, nil)
	isn := uint32(1<<32 - 20) // the request crosses 2^32
	feedStream(in, FromClient, isn, req, 15)
	in.Feed(TCP, FromClient, isn, req[:15]) // an old segment from before the wrap
	if in.App() != HTTP || in.Detail().Host != "127.0.0.1:18001" {
		t.Fatalf("%s %+v", in.App(), in.Detail())
	}
}

func TestGapStopsDirection(t *testing.T) {
	hello := captured(t, "tls/curl-tls13.client")
	in := NewInspector(nil, nil)
	in.Feed(TCP, FromClient, 100, hello[:200])
	// The segment after a lost one: what follows the hole is never parsed.
	in.Feed(TCP, FromClient, 100+300, hello[300:])
	in.Feed(TCP, FromClient, 100+200, hello[200:300]) // the lost one, late
	if in.App() != Unknown || in.Done() {
		t.Fatalf("App %s, Done %v after a gap", in.App(), in.Done())
	}
	if !in.dir[FromClient].closed || in.dir[FromClient].buf != nil {
		t.Fatal("client direction still open after a gap")
	}
	// The server's side is whole and settles the flow.
	feedStream(in, FromServer, 9, captured(t, "tls/curl-tls13.server"), segmentSize)
	if in.App() != TLS || in.Detail().TLSVersion != "TLS 1.3" || in.Detail().SNI != "" || !in.Done() {
		t.Fatalf("App %s, %+v, Done %v", in.App(), in.Detail(), in.Done())
	}

	// A gap in both directions ends the flow as Unknown.
	in = NewInspector(nil, nil)
	in.Feed(TCP, FromClient, 100, hello[:200])
	in.Feed(TCP, FromClient, 400, hello[300:])
	in.Feed(TCP, FromServer, 7, []byte{0x16, 0x03})
	if done := in.Feed(TCP, FromServer, 70, []byte{0x03}); !done || in.App() != Unknown {
		t.Fatalf("done %v, App %s", done, in.App())
	}

	// After a match, a gap in the direction the parser waits for ends the flow.
	in = NewInspector(nil, nil)
	in.Feed(TCP, FromClient, 1, captured(t, "http/curl-get.client"))
	in.Feed(TCP, FromServer, 1, []byte("HTTP/1.1 2"))
	if done := in.Feed(TCP, FromServer, 50, []byte("00 OK\r\n")); !done || in.App() != HTTP || in.Detail().Status != 0 {
		t.Fatalf("done %v, App %s, %+v", done, in.App(), in.Detail())
	}
}

// TestRandomIsUnknown: random payloads are no application, whatever the port would have
// said (Feed is not told the port).
func TestRandomIsUnknown(t *testing.T) {
	var _ func(Transport, Direction, uint32, []byte) bool = (&Inspector{}).Feed // no port
	rng := rand.New(rand.NewPCG(1, 2))
	for _, set := range []struct {
		name    string
		parsers []Parser
	}{{"ours", ourParsers()}, {"all", nil}} {
		t.Run(set.name, func(t *testing.T) {
			for i := range 3000 {
				tr := TCP
				if i%3 == 0 {
					tr = UDP
				}
				in := NewInspector(set.parsers, nil)
				seq := [2]uint32{rng.Uint32(), rng.Uint32()}
				var first [][]byte
				for p := 0; p < 2*MaxPackets && !in.Done(); p++ {
					dir := Direction(rng.IntN(2))
					b := make([]byte, 1+rng.IntN(1500))
					for j := range b {
						b[j] = byte(rng.Uint32())
					}
					if len(first) < 2 {
						first = append(first, b)
					}
					in.Feed(tr, dir, seq[dir], b)
					seq[dir] += uint32(len(b))
				}
				if in.App() != Unknown {
					t.Fatalf("flow %d (%v): random bytes taken for %s (%+v); first payloads %x", i, tr, in.App(), in.Detail(), first)
				}
			}
		})
	}
}

func TestLookalikesAreNotHTTP(t *testing.T) {
	names := []string{"lookalike/redis-cli-set.client", "lookalike/redis-inline-get.client"}
	others, _ := filepath.Glob("testdata/redis/*.client.bin")
	for _, o := range others {
		names = append(names, strings.TrimSuffix(strings.TrimPrefix(o, "testdata/"), ".bin"))
	}
	for _, name := range names {
		b := captured(t, name)
		var d Detail
		if v := NewHTTP().Inspect(TCP, FromClient, b, &d); v != NoMatch {
			t.Errorf("%s: HTTP parser says %d", name, v)
		}
		in := NewInspector(nil, nil)
		in.Feed(TCP, FromClient, 0, b)
		if in.App() == HTTP {
			t.Errorf("%s: identified as HTTP", name)
		}
	}
}

func TestMaxInspect(t *testing.T) {
	// A request line that never ends is given up at MaxInspect, and never buffers more.
	long := append([]byte("GET /"), bytes.Repeat([]byte("a"), 3*MaxInspect)...)
	in := NewInspector(nil, nil)
	for off := 0; off < len(long) && !in.Done(); off += 1000 {
		in.Feed(TCP, FromClient, uint32(off), long[off:min(off+1000, len(long))])
		if n := len(in.dir[FromClient].buf); n > MaxInspect || cap(in.dir[FromClient].buf) > MaxInspect {
			t.Fatalf("buffered %d bytes (cap %d)", n, cap(in.dir[FromClient].buf))
		}
	}
	if !in.Done() || in.App() != Unknown {
		t.Fatalf("Done %v, App %s", in.Done(), in.App())
	}

	// Headers longer than MaxInspect: what came within it is kept.
	req := []byte("GET /big HTTP/1.1\r\nHost: big.example\r\nCookie: " + strings.Repeat("c", 2*MaxInspect) + "\r\n\r\n")
	for _, size := range []int{segmentSize, len(req)} {
		in = NewInspector(nil, nil)
		feedStream(in, FromClient, 0, req, size)
		if in.App() != HTTP || in.Detail().Host != "big.example" || in.Detail().Path != "/big" {
			t.Fatalf("segments of %d: %s %+v", size, in.App(), in.Detail())
		}
	}

	// Paths are cut.
	in = NewInspector(nil, nil)
	in.Feed(TCP, FromClient, 0, []byte("GET /"+strings.Repeat("p", 1000)+" HTTP/1.1\r\n\r\n"))
	if len(in.Detail().Path) != httpMaxPath {
		t.Fatalf("path of %d bytes", len(in.Detail().Path))
	}
}

func TestMaxPackets(t *testing.T) {
	req := captured(t, "http/curl-get.client")
	in := NewInspector(nil, nil)
	for i := range MaxPackets {
		if in.Done() {
			t.Fatalf("done after %d one-byte segments", i)
		}
		in.Feed(TCP, FromClient, uint32(i), req[i:i+1])
	}
	if !in.Done() || in.App() != Unknown {
		t.Fatalf("Done %v, App %s after %d segments", in.Done(), in.App(), MaxPackets)
	}
}

func TestEmptyPayloads(t *testing.T) {
	in := NewInspector(nil, nil)
	for i := range 100 {
		if in.Feed(TCP, Direction(i%2), uint32(i*1000), nil) {
			t.Fatal("done on empty payloads")
		}
	}
	if in.dir[0].started || in.dir[1].started || in.dir[0].packets != 0 {
		t.Fatal("empty payloads counted")
	}
	in.Feed(TCP, FromClient, 5, captured(t, "http/curl-get.client"))
	if in.App() != HTTP {
		t.Fatalf("App %s", in.App())
	}
}

func TestDoneIsFinal(t *testing.T) {
	c := flowCases[0]
	in := NewInspector(nil, nil)
	c.run(t, in, false)
	if !in.Done() {
		t.Fatal("not done")
	}
	before := *in.Detail()
	tls := captured(t, "tls/curl-tls13.client")
	for _, dir := range []Direction{FromClient, FromServer} {
		if !in.Feed(TCP, dir, 0, tls) || !in.Feed(UDP, dir, 0, tls) {
			t.Fatal("Feed after Done returned false")
		}
	}
	if in.App() != HTTP || !reflect.DeepEqual(*in.Detail(), before) {
		t.Fatal("changed after Done")
	}
	in.Reset()
	if in.Done() || in.App() != Unknown || in.Detail() != nil {
		t.Fatal("Reset did not reset")
	}
}

// TestUDPDatagramsStandAlone: datagrams are not joined.
func TestUDPDatagramsStandAlone(t *testing.T) {
	q := captured(t, "dns/udp-a.client")
	in := NewInspector(ourParsers(), nil)
	in.Feed(UDP, FromClient, 0, q[:20])
	in.Feed(UDP, FromClient, 0, q[20:])
	if in.App() != Unknown || !in.Done() {
		t.Fatalf("App %s, Done %v from two halves", in.App(), in.Done())
	}
	in = NewInspector(ourParsers(), nil)
	in.Feed(UDP, FromClient, 0, q)
	if in.App() != DNS {
		t.Fatalf("App %s", in.App())
	}
}

func TestDNSMessagesAfterMatch(t *testing.T) {
	var got []DNSMessage
	onDNS := func(m *DNSMessage) {
		c := *m
		c.Answers = append([]DNSAnswer(nil), m.Answers...)
		got = append(got, c)
	}
	pairs := []string{"dns/udp-a", "dns/udp-aaaa", "dns/udp-nxdomain"}

	t.Run("udp", func(t *testing.T) {
		got = nil
		in := NewInspector(nil, onDNS)
		for round := range 3 {
			for _, p := range pairs {
				in.Feed(UDP, FromClient, 0, captured(t, p+".client"))
				in.Feed(UDP, FromServer, 0, captured(t, p+".server"))
				in.Feed(UDP, FromServer, 0, []byte("not dns")) // ignored
			}
			if in.Done() {
				t.Fatalf("done after round %d", round)
			}
		}
		if len(got) != 3*2*len(pairs) {
			t.Fatalf("%d messages, want %d", len(got), 3*2*len(pairs))
		}
		if got[4].Query != "missing.example.test" || got[5].RCode != "NXDOMAIN" || got[3].Answers[0].Addr != dnsAddr("2001:db8::10") {
			t.Fatalf("messages: %+v", got)
		}
		if d := in.Detail().DNS; d == nil || d.Query != "www.example.test" || len(d.Answers) != 3 || !d.Response {
			t.Fatalf("Detail.DNS = %+v", d)
		}
		if in.App() != DNS {
			t.Fatalf("App %s", in.App())
		}
	})

	t.Run("tcp", func(t *testing.T) {
		got = nil
		q := captured(t, "dns/tcp-a.client")
		r := captured(t, "dns/tcp-a.server")
		// A message too long to be read, between two that are: the framing holds.
		big := make([]byte, 2+MaxInspect+100)
		big[0], big[1] = byte((len(big)-2)>>8), byte(len(big)-2)
		client := append(append(append([]byte{}, q...), q...), q...) // pipelined queries
		server := append(append(append([]byte{}, r...), big...), r...)
		in := NewInspector(nil, onDNS)
		feedStream(in, FromClient, 77, client[:30], 30)
		feedStream(in, FromClient, 77+30, client[30:], 7)
		in.Feed(TCP, FromClient, 77, client[:50]) // retransmitted
		feedStream(in, FromServer, 5, server, 13)
		if len(got) != 5 {
			t.Fatalf("%d messages, want 5: %+v", len(got), got)
		}
		for i, want := range []bool{false, false, false, true, true} {
			if got[i].Response != want || got[i].Query != "db.example.test" {
				t.Fatalf("message %d: %+v", i, got[i])
			}
		}
		if in.Done() {
			t.Fatal("done")
		}
		if d := in.Detail().DNS; d == nil || !d.Response || len(d.Answers) != 3 {
			t.Fatalf("Detail.DNS = %+v", d)
		}
		// A gap in both directions ends it.
		in.Feed(TCP, FromClient, 77+uint32(len(client))+10, q)
		if in.Feed(TCP, FromServer, 1, r) || !in.Feed(TCP, FromServer, 5+uint32(len(server))+1, r) {
			t.Fatal("not done after gaps on both sides")
		}
	})

	t.Run("no callback", func(t *testing.T) {
		in := NewInspector(nil, nil)
		in.Feed(UDP, FromClient, 0, captured(t, "dns/udp-a.client"))
		if in.Done() {
			t.Fatal("done before the response")
		}
		if !in.Feed(UDP, FromServer, 0, captured(t, "dns/udp-a.server")) {
			t.Fatal("not done after the response")
		}
	})
}

// TestDetailText: what the parsers record is bounded, printable UTF-8.
func TestDetailText(t *testing.T) {
	req := "GET /\x00\xff\xfe/é HTTP/1.1\r\nHost: EXAMPLE.test\x1b[31m\r\nUser-Agent: " + strings.Repeat("\xc3", 600) + "\r\n\r\n"
	var d Detail
	if v := NewHTTP().Inspect(TCP, FromClient, []byte(req), &d); v != NoMatch {
		t.Fatalf("control byte in the target: %d", v) // a NUL is not a request target
	}
	req = strings.Replace(req, "\x00", "", 1)
	if v := NewHTTP().Inspect(TCP, FromClient, []byte(req), &d); v != Match {
		t.Fatalf("verdict %d", v)
	}
	if d.Path != `/\xff\xfe/é` || d.Host != `example.test\x1b[31m` || len(d.UserAgent) != httpMaxUserAgent {
		t.Fatalf("%q %q %d", d.Path, d.Host, len(d.UserAgent))
	}
	checkDetailText(t, &d)
}

// checkDetailText fails when a string of d is not valid UTF-8 or longer than a parser
// of this file's author records.
func checkDetailText(tb testing.TB, d *Detail) {
	tb.Helper()
	strs := []string{d.Method, d.Host, d.Path, d.UserAgent, d.ContentType, d.TLSVersion, d.SNI, d.Version, d.ClientVersion}
	strs = append(strs, d.ALPN...)
	if d.DNS != nil {
		strs = append(strs, d.DNS.Query, d.DNS.QType, d.DNS.RCode)
		for _, a := range d.DNS.Answers {
			strs = append(strs, a.Name, a.Type, a.Target)
		}
	}
	for _, s := range strs {
		if !utf8.ValidString(s) || len(s) > 4*255 {
			tb.Fatalf("bad Detail string %q", s)
		}
		for _, r := range s {
			if r < 0x20 || r == 0x7f {
				tb.Fatalf("control character in %q", s)
			}
		}
	}
}

// FuzzInspector feeds two streams in segments with random sequence numbers:
// retransmissions and overlaps must give what the same bytes in order give, and gaps must
// not break the bounds.
func FuzzInspector(f *testing.F) {
	for _, c := range flowCases {
		if c.t != TCP || c.noServerSide {
			continue
		}
		cl := captured(f, c.name+".client")
		sv := captured(f, c.name+".server")
		f.Add(cl[:min(len(cl), 600)], sv[:min(len(sv), 600)], []byte{0, 40, 1, 60, 3, 20, 4, 10, 2, 250, 5, 100, 0, 255, 1, 255}, uint32(1<<32-30), uint32(7), false)
	}
	f.Add(captured(f, "dns/udp-a.client"), captured(f, "dns/udp-a.server"), []byte{0, 60, 1, 200, 0, 5}, uint32(0), uint32(0), true)
	f.Fuzz(func(t *testing.T, client, server, script []byte, isnC, isnS uint32, udp bool) {
		streams := [2][]byte{client, server}
		isn := [2]uint32{isnC, isnS}
		var messages int
		onDNS := func(m *DNSMessage) { messages++ }
		got := NewInspector(nil, onDNS)
		ref := NewInspector(nil, onDNS) // shown only the new bytes, in order
		var sent [2]int
		for i := 0; i+1 < len(script); i += 2 {
			op, n := script[i], int(script[i+1])+1
			dir := Direction(op & 1)
			s := streams[dir]
			if udp {
				b := s[:min(n, len(s))]
				if got.Feed(UDP, dir, 0, b) != ref.Feed(UDP, dir, 0, b) {
					t.Fatal("UDP: Inspectors disagree")
				}
				continue
			}
			at := sent[dir]
			switch op >> 1 % 4 {
			case 0: // the next bytes
			case 1: // a retransmission of old bytes
				at = max(0, sent[dir]-n)
				n = min(n, sent[dir]-at)
			case 2: // old and new bytes
				at = max(0, sent[dir]-n/2)
			case 3: // past a hole
				at = sent[dir] + 1 + int(op>>3)
			}
			if at >= len(s) || n == 0 {
				continue
			}
			end := min(at+n, len(s))
			gd := got.Feed(TCP, dir, isn[dir]+uint32(at), s[at:end])
			rd := ref.Done()
			switch {
			case at > sent[dir]:
				rd = ref.Feed(TCP, dir, isn[dir]+uint32(at), s[at:end])
			case end > sent[dir]:
				rd = ref.Feed(TCP, dir, isn[dir]+uint32(sent[dir]), s[sent[dir]:end])
			}
			sent[dir] = max(sent[dir], end)
			if gd != rd || got.App() != ref.App() || !reflect.DeepEqual(got.Detail(), ref.Detail()) {
				t.Fatalf("op %d: got %v %s %+v, want %v %s %+v", i/2, gd, got.App(), got.Detail(), rd, ref.App(), ref.Detail())
			}
			for _, st := range got.dir {
				if len(st.buf) > MaxInspect || cap(st.buf) > MaxInspect {
					t.Fatalf("buffer of %d bytes", cap(st.buf))
				}
				if got.Done() && st.buf != nil {
					t.Fatal("buffer kept after Done")
				}
			}
		}
		if got.Done() && !got.Feed(TCP, FromClient, 0, client) {
			t.Fatal("Feed after Done returned false")
		}
	})
}

func BenchmarkFeedDone(b *testing.B) {
	in := NewInspector(nil, nil)
	flowCases[0].run(b, in, false)
	if !in.Done() {
		b.Fatal("not done")
	}
	payload := captured(b, "http/curl-get.client")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in.Feed(TCP, Direction(i&1), uint32(i), payload)
	}
}

// benchmarkIdentify measures the first packet of a flow: all parsers are offered it.
func benchmarkIdentify(b *testing.B, name string, want App) {
	payload := captured(b, name)
	in := NewInspector(nil, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		in.Reset()
		in.Feed(TCP, FromClient, 1, payload)
	}
	if in.App() != want {
		b.Fatalf("App %s", in.App())
	}
}

func BenchmarkIdentifyHTTP(b *testing.B) { benchmarkIdentify(b, "http/curl-get.client", HTTP) }

func BenchmarkIdentifyTLS(b *testing.B) { benchmarkIdentify(b, "tls/curl-tls13.client", TLS) }

func BenchmarkIdentifySSH(b *testing.B) { benchmarkIdentify(b, "ssh/openssh.server", SSH) }

// BenchmarkRejectRandom measures a first packet that every parser turns down or waits on.
func BenchmarkRejectRandom(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	payload := make([]byte, 1024)
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	in := NewInspector(nil, nil)
	b.ReportAllocs()
	for b.Loop() {
		in.Reset()
		in.Feed(TCP, FromClient, 1, payload)
	}
}

// BenchmarkDNSMessage measures one response handed to onDNS on a flow known to be DNS.
func BenchmarkDNSMessage(b *testing.B) {
	in := NewInspector(nil, func(*DNSMessage) {})
	in.Feed(UDP, FromClient, 0, captured(b, "dns/udp-a.client"))
	r := captured(b, "dns/udp-a.server")
	in.Feed(UDP, FromServer, 0, r)
	b.ReportAllocs()
	for b.Loop() {
		in.Feed(UDP, FromServer, 0, r)
	}
}

func TestParsers(t *testing.T) {
	ps := Parsers()
	want := []App{TLS, HTTP, HTTP2, SSH, PostgreSQL, MySQL, MongoDB, Redis, Memcached, Kafka, AMQP, MQTT, NATS, DNS}
	var got []App
	for _, p := range ps {
		got = append(got, p.App())
		// One set of parsers serves every flow: they must hold no state.
		if typ := reflect.TypeOf(p); typ.Kind() != reflect.Struct || typ.NumField() != 0 {
			t.Errorf("%s parser is a %v: not a stateless value", p.App(), typ)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parsers() = %v, want %v", got, want)
	}
	ps[0] = nil
	if Parsers()[0] == nil {
		t.Fatal("Parsers() shares its slice")
	}
	// 64 parsers fill the candidate set: the last one is still tried.
	full := make([]Parser, maxParsers)
	for i := range full {
		full[i] = NewSSH()
	}
	full[maxParsers-1] = NewHTTP()
	in := NewInspector(full, nil)
	in.Feed(TCP, FromClient, 0, captured(t, "http/curl-get.client"))
	if in.App() != HTTP {
		t.Fatalf("App %s with 64 parsers", in.App())
	}
	defer func() {
		if recover() == nil {
			t.Fatal("no panic with 65 parsers")
		}
	}()
	NewInspector(make([]Parser, 65), nil)
}
