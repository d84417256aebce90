package dpi

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// h2Frame builds one HTTP/2 frame.
func h2Frame(typ, flags byte, stream uint32, payload []byte) []byte {
	n := len(payload)
	b := []byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags, byte(stream >> 24), byte(stream >> 16), byte(stream >> 8), byte(stream)}
	return append(b, payload...)
}

// h2Block encodes header fields, name and value in turn.
func h2Block(fields ...string) []byte {
	var buf bytes.Buffer
	e := hpack.NewEncoder(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		e.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return buf.Bytes()
}

func TestHTTP2Parser(t *testing.T) {
	settings := h2Frame(http2FrameSettings, 0, 0, []byte{0, 3, 0, 0, 0, 100})
	block := h2Block(":method", "POST", ":scheme", "http", ":authority", "GRPC.Example:50051", ":path", "/pkg.Svc/Call", "content-type", "application/grpc+proto", "user-agent", "grpc-go/1.70.0")
	// HEADERS padded and with a priority, the block cut in three by CONTINUATIONs.
	padded := append(append([]byte{4}, 0, 0, 0, 0, 16), block[:10]...)
	padded = append(padded, 0, 0, 0, 0)
	split := http2Preface + string(settings) +
		string(h2Frame(http2FrameHeaders, http2FlagPadded|http2FlagPriority, 1, padded)) +
		string(h2Frame(http2FrameContinuation, 0, 1, block[10:20])) +
		string(h2Frame(http2FrameContinuation, http2FlagEndHeaders, 1, block[20:]))
	grpcWant := Detail{Method: "POST", Host: "grpc.example:50051", Path: "/pkg.Svc/Call", UserAgent: "grpc-go/1.70.0", ContentType: "application/grpc+proto"}
	oneFrame := http2Preface + string(settings) + string(h2Frame(http2FrameHeaders, http2FlagEndHeaders, 1, block))
	serverHeaders := string(settings) + string(h2Frame(http2FrameSettings, 1, 0, nil)) + string(h2Frame(http2FrameHeaders, http2FlagEndHeaders, 1, h2Block(":status", "404")))
	hostOnly := http2Preface + string(h2Frame(http2FrameHeaders, http2FlagEndHeaders, 3, h2Block(":method", "GET", "host", "h.example", ":path", "/")))

	checkParser(t, NewHTTP2(), []parserCase{
		{name: "curl", in: string(captured(t, "http2/curl-get.client")), v: Match, want: Detail{Method: "GET", Host: "127.0.0.1:18003", Path: "/hello", UserAgent: "curl/7.88.1"}},
		{name: "nghttp, PRIORITY frames first", in: string(captured(t, "http2/nghttp-get.client")), v: Match, want: Detail{Method: "GET", Host: "127.0.0.1:18005", Path: "/index.html", UserAgent: "nghttp2/1.52.0"}},
		{name: "curl gRPC", in: string(captured(t, "http2/curl-grpc.client")), v: Match, want: Detail{Method: "POST", Host: "127.0.0.1:18004", Path: "/helloworld.Greeter/SayHello", UserAgent: "curl/7.88.1", ContentType: "application/grpc"}},
		{name: "go server", dir: FromServer, in: string(captured(t, "http2/curl-get.server")), v: Match, want: Detail{Status: 200}},
		{name: "one HEADERS frame", in: oneFrame, v: Match, want: grpcWant},
		{name: "padding, priority, continuations", in: split, v: Match, want: grpcWant},
		{name: "host field", in: hostOnly, v: Match, want: Detail{Method: "GET", Host: "h.example", Path: "/"}},
		{name: "server status", dir: FromServer, in: serverHeaders, v: Match, want: Detail{Status: 404}},
		{name: "preface prefix", in: "PRI * HTTP/2", v: NeedMore},
		{name: "preface", in: http2Preface, v: NeedMore},
		{name: "preface and SETTINGS", in: http2Preface + string(settings), v: NeedMore},
		{name: "block not ended", in: split[:len(split)-20], v: NeedMore},
		{name: "server SETTINGS", dir: FromServer, in: string(settings), v: NeedMore},
		{name: "server SETTINGS header", dir: FromServer, in: string(settings[:5]), v: NeedMore},
		{name: "HTTP/1 PRI", in: "PRI * HTTP/1.1\r\n", v: NoMatch},
		{name: "frames without preface", in: string(settings), v: NoMatch},
		{name: "server SETTINGS ACK first", dir: FromServer, in: string(h2Frame(http2FrameSettings, 1, 0, nil)), v: NoMatch},
		{name: "server SETTINGS of 7 bytes", dir: FromServer, in: string(h2Frame(http2FrameSettings, 0, 0, make([]byte, 7))), v: NoMatch},
		{name: "server SETTINGS on stream 1", dir: FromServer, in: string(h2Frame(http2FrameSettings, 0, 1, nil)), v: NoMatch},
		{name: "server HEADERS first", dir: FromServer, in: string(h2Frame(http2FrameHeaders, 4, 1, h2Block(":status", "200"))), v: NoMatch},
		{name: "HTTP/1 response", dir: FromServer, in: "HTTP/1.1 200 OK\r\n", v: NoMatch},
		{name: "UDP", t: UDP, in: oneFrame, v: NoMatch},
	})

	for _, c := range []struct {
		ct   string
		want App
	}{{"application/grpc", GRPC}, {"application/grpc+proto", GRPC}, {"application/json", HTTP2}, {"", HTTP2}} {
		if got := (http2Parser{}).refineApp(&Detail{ContentType: c.ct}); got != c.want {
			t.Errorf("content-type %q: %s, want %s", c.ct, got, c.want)
		}
	}
}

func TestHTTP2Prefixes(t *testing.T) {
	checkPrefixes(t, NewHTTP2(), FromClient, "http2/curl-get.client", "http2/nghttp-get.client", "http2/curl-grpc.client")
	checkPrefixes(t, NewHTTP2(), FromServer, "http2/curl-get.server", "http2/nghttp-get.server", "http2/curl-grpc.server")
}

func FuzzHTTP2(f *testing.F) {
	fuzzParser(f, NewHTTP2(), "http2/curl-get.client", "http2/nghttp-get.client", "http2/curl-grpc.client", "http2/curl-get.server")
}
