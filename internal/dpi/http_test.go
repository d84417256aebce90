package dpi

import (
	"reflect"
	"strings"
	"testing"
)

// parserCase is one input to one parser and what it must answer.
type parserCase struct {
	name string
	t    Transport
	dir  Direction
	in   string
	v    Verdict
	want Detail // checked on Match
}

// checkParser runs the cases through p, each with a fresh Detail.
func checkParser(t *testing.T, p Parser, cases []parserCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var d Detail
			tr := c.t
			if tr == 0 {
				tr = TCP
			}
			v := p.Inspect(tr, c.dir, []byte(c.in), &d)
			if v != c.v {
				t.Fatalf("verdict %d, want %d", v, c.v)
			}
			if v == Match && !reflect.DeepEqual(d, c.want) {
				t.Fatalf("Detail\n%+v %+v\nwant\n%+v %+v", d, d.DNS, c.want, c.want.DNS)
			}
			checkDetailText(t, &d)
		})
	}
}

// checkPrefixes shows p every beginning of a capture that it matches: none may be
// NoMatch, since the Inspector drops a parser for good on NoMatch.
func checkPrefixes(t *testing.T, p Parser, dir Direction, names ...string) {
	t.Helper()
	for _, name := range names {
		b := captured(t, name)
		b = b[:min(len(b), MaxInspect)]
		var d Detail
		if v := p.Inspect(TCP, dir, b, &d); v != Match {
			t.Fatalf("%s: verdict %d on the whole capture", name, v)
		}
		for i := range len(b) {
			var d Detail
			if v := p.Inspect(TCP, dir, b[:i], &d); v == NoMatch {
				t.Fatalf("%s: NoMatch on the first %d bytes", name, i)
			}
		}
	}
}

func TestHTTPParser(t *testing.T) {
	curl := string(captured(t, "http/curl-get.client"))
	checkParser(t, NewHTTP(), []parserCase{
		{name: "curl", in: curl, v: Match, want: Detail{Method: "GET", Host: "127.0.0.1:18001", Path: "/v3/kv/range?limit=10", UserAgent: "curl/7.88.1"}},
		{name: "curl over UDP", t: UDP, in: curl, v: NoMatch},
		{name: "one letter", in: "G", v: NeedMore},
		{name: "H", in: "H", v: NeedMore},
		{name: "method prefix", in: "GE", v: NeedMore},
		{name: "webdav prefix", in: "PROPF", v: NeedMore},
		{name: "method", in: "DELETE", v: NeedMore},
		{name: "target", in: "GET /index", v: NeedMore},
		{name: "version prefix", in: "GET / HTTP/1", v: NeedMore},
		{name: "line without CRLF", in: "GET / HTTP/1.1", v: NeedMore},
		{name: "CR", in: "GET / HTTP/1.1\r", v: NeedMore},
		{name: "headers not ended", in: "GET / HTTP/1.1\r\nHost: a\r\n", v: NeedMore},
		{name: "minimal", in: "GET / HTTP/1.0\r\n\r\n", v: Match, want: Detail{Method: "GET", Path: "/"}},
		{name: "bare LF", in: "OPTIONS * HTTP/1.1\nhOsT:  Api.Example \nUSER-AGENT: x/1\n\n", v: Match, want: Detail{Method: "OPTIONS", Path: "*", Host: "api.example", UserAgent: "x/1"}},
		{name: "CONNECT", in: "CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n", v: Match, want: Detail{Method: "CONNECT", Path: "db.internal:5432", Host: "db.internal:5432"}},
		{name: "webdav", in: "PROPFIND /dav/ HTTP/1.1\r\nHost: DAV.example\r\nDepth: 1\r\n\r\n", v: Match, want: Detail{Method: "PROPFIND", Path: "/dav/", Host: "dav.example"}},
		{name: "absolute URI", in: "GET http://proxy.test/x HTTP/1.1\r\n\r\n", v: Match, want: Detail{Method: "GET", Path: "http://proxy.test/x"}},
		{name: "first Host wins", in: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", v: Match, want: Detail{Method: "GET", Path: "/", Host: "a"}},
		{name: "lower-case method", in: "get / HTTP/1.1\r\n\r\n", v: NoMatch},
		{name: "unknown method", in: "FETCH / HTTP/1.1\r\n\r\n", v: NoMatch},
		{name: "PRI is HTTP/2", in: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", v: NoMatch},
		{name: "HTTP/2.0 version", in: "GET / HTTP/2.0\r\n\r\n", v: NoMatch},
		{name: "RTSP", in: "OPTIONS rtsp://cam/ RTSP/1.0\r\n", v: NoMatch},
		{name: "HTTP/0.9 or Redis inline", in: "GET /index.html\r\n", v: NoMatch},
		{name: "memcached", in: "get key\r\n", v: NoMatch},
		{name: "double space", in: "GET  / HTTP/1.1\r\n", v: NoMatch},
		{name: "control byte in target", in: "GET /\x01 HTTP/1.1\r\n", v: NoMatch},
		{name: "junk after version", in: "GET / HTTP/1.1x\r\n", v: NoMatch},
		{name: "RESP", in: "*1\r\n$4\r\nPING\r\n", v: NoMatch},
		{name: "TLS", in: "\x16\x03\x01\x02\x00", v: NoMatch},
		{name: "empty", in: "", v: NeedMore},

		{name: "status", dir: FromServer, in: "HTTP/1.1 404 Not Found\r\n", v: Match, want: Detail{Status: 404}},
		{name: "status without reason", dir: FromServer, in: "HTTP/1.0 204\r\n", v: Match, want: Detail{Status: 204}},
		{name: "status prefix", dir: FromServer, in: "HTTP/1.1 20", v: NeedMore},
		{name: "status digits only", dir: FromServer, in: "HTTP/1.1 200", v: NeedMore},
		{name: "interim then final", dir: FromServer, in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n", v: Match, want: Detail{Status: 201}},
		{name: "interim alone", dir: FromServer, in: "HTTP/1.1 100 Continue\r\n\r\n", v: NeedMore},
		{name: "interim then junk", dir: FromServer, in: "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nxyz", v: Match, want: Detail{Status: 103}},
		{name: "switching protocols", dir: FromServer, in: "HTTP/1.1 101 Switching Protocols\r\n", v: Match, want: Detail{Status: 101}},
		{name: "status 999", dir: FromServer, in: "HTTP/1.1 999 X\r\n", v: NoMatch},
		{name: "status letters", dir: FromServer, in: "HTTP/1.1 2x0 X\r\n", v: NoMatch},
		{name: "HTTP/2 status line", dir: FromServer, in: "HTTP/2 200\r\n", v: NoMatch},
		{name: "RTSP reply", dir: FromServer, in: "RTSP/1.0 200 OK\r\n", v: NoMatch},
		{name: "response from the client side", in: "HTTP/1.1 200 OK\r\n", v: Match, want: Detail{Status: 200}},
	})
}

func TestHTTPPrefixes(t *testing.T) {
	checkPrefixes(t, NewHTTP(), FromClient, "http/curl-get.client", "http/curl-post.client")
	checkPrefixes(t, NewHTTP(), FromServer, "http/curl-get.server", "http/curl-post.server")
}

func TestHTTPLongValues(t *testing.T) {
	req := "GET /" + strings.Repeat("a", 2000) + " HTTP/1.1\r\nHost: " + strings.Repeat("h", 1000) + "\r\nUser-Agent: " + strings.Repeat("u", 1000) + "\r\n\r\n"
	var d Detail
	if v := NewHTTP().Inspect(TCP, FromClient, []byte(req), &d); v != Match {
		t.Fatalf("verdict %d", v)
	}
	if len(d.Path) != httpMaxPath || len(d.Host) != httpMaxHost || len(d.UserAgent) != httpMaxUserAgent {
		t.Fatalf("lengths %d %d %d", len(d.Path), len(d.Host), len(d.UserAgent))
	}
}

// fuzzParser checks that p never panics, answers a known verdict, records bounded
// printable text, and never says NoMatch on a beginning of bytes it would take.
func fuzzParser(f *testing.F, p Parser, seeds ...string) {
	for _, s := range seeds {
		b := captured(f, s)
		f.Add(b, false, strings.HasSuffix(s, ".server"), uint16(len(b)/2))
	}
	f.Fuzz(func(t *testing.T, data []byte, udp, server bool, cut uint16) {
		tr, dir := TCP, FromClient
		if udp {
			tr = UDP
		}
		if server {
			dir = FromServer
		}
		data = data[:min(len(data), MaxInspect)]
		var d Detail
		v := p.Inspect(tr, dir, data, &d)
		if v > Match {
			t.Fatalf("verdict %d", v)
		}
		checkDetailText(t, &d)
		if v == Match {
			// As the Inspector does: the other direction, with what was learned.
			p.Inspect(tr, dir.Other(), data, &d)
			checkDetailText(t, &d)
		}
		if tr == TCP && len(data) > 0 {
			var pd Detail
			if pv := p.Inspect(tr, dir, data[:int(cut)%len(data)], &pd); pv == NoMatch && v != NoMatch {
				t.Fatalf("NoMatch on the first %d bytes, %d on all %d", int(cut)%len(data), v, len(data))
			}
		}
	})
}

func FuzzHTTP(f *testing.F) {
	fuzzParser(f, NewHTTP(), "http/curl-get.client", "http/curl-post.client", "http/curl-get.server", "lookalike/redis-inline-get.client")
}
