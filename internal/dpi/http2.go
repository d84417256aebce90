package dpi

import (
	"encoding/binary"
	"strconv"
	"strings"

	"golang.org/x/net/http2/hpack"
)

// NewHTTP2 returns the parser of HTTP/2 in clear text with prior knowledge (RFC 9113,
// section 3.3), as gRPC and h2c clients speak it. HTTP/2 inside TLS is not seen here: it
// is TLS, with "h2" in Detail.ALPN.
//
// From the client, the connection preface and then the first request's header block
// give Method, Host (:authority, or a host field), Path, UserAgent and ContentType; a
// content-type of application/grpc (or application/grpc+proto, ...) makes the
// application GRPC. The server opens with a SETTINGS frame; its first response header
// block gives Status. Either side matches once its first header block has been read, or
// once MaxInspect valid bytes have been seen.
//
// The parser holds no state and is safe for concurrent use.
func NewHTTP2() Parser { return http2Parser{} }

type http2Parser struct{}

func (http2Parser) App() App { return HTTP2 }

func (http2Parser) refineApp(d *Detail) App {
	if strings.HasPrefix(d.ContentType, "application/grpc") {
		return GRPC
	}
	return HTTP2
}

const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Frame types and flags, from RFC 9113 section 6.
const (
	http2FrameHeaders      = 0x1
	http2FrameSettings     = 0x4
	http2FrameContinuation = 0x9
	http2FlagEndHeaders    = 0x4
	http2FlagPadded        = 0x8
	http2FlagPriority      = 0x20
	http2FrameHeaderLen    = 9
	// http2MaxSettings bounds the server's first SETTINGS frame: six settings are
	// defined, a few more by extensions.
	http2MaxSettings = 16
)

const http2MaxContentType = 128

func (http2Parser) Inspect(t Transport, dir Direction, data []byte, d *Detail) Verdict {
	if t != TCP {
		return NoMatch
	}
	final := len(data) >= MaxInspect
	switch literal(data, http2Preface) {
	case NeedMore:
		return NeedMore
	case Match:
		return http2Frames(data[len(http2Preface):], final, false, d)
	}
	if dir == FromClient {
		return NoMatch
	}
	// The server's preface is a SETTINGS frame (not an acknowledgement) on stream 0.
	for i := range min(len(data), http2FrameHeaderLen) {
		ok := true
		switch i {
		case 0:
			ok = data[0] == 0
		case 2:
			n := int(data[1])<<8 | int(data[2])
			ok = n%6 == 0 && n <= 6*http2MaxSettings
		case 3:
			ok = data[3] == http2FrameSettings
		case 4, 5, 6, 7, 8:
			ok = data[i] == 0
		}
		if !ok {
			return NoMatch
		}
	}
	if len(data) < http2FrameHeaderLen {
		return NeedMore
	}
	return http2Frames(data, final, true, d)
}

// http2Frames walks the frames of b up to the first header block and reads it. final
// says no more bytes will follow: the connection is HTTP/2 even without a header block.
func http2Frames(b []byte, final, server bool, d *Detail) Verdict {
	for {
		typ, stream, _, rest, ok := http2Frame(b)
		if !ok {
			if final {
				return Match
			}
			return NeedMore
		}
		if typ == http2FrameHeaders && stream != 0 {
			return http2HeaderBlock(b, final, server, d)
		}
		b = rest
	}
}

// http2Frame splits the whole frame at the start of b from what follows.
func http2Frame(b []byte) (typ byte, stream uint32, payload, rest []byte, ok bool) {
	if len(b) < http2FrameHeaderLen {
		return 0, 0, nil, nil, false
	}
	n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
	if len(b) < http2FrameHeaderLen+n {
		return 0, 0, nil, nil, false
	}
	stream = binary.BigEndian.Uint32(b[5:9]) & 0x7fffffff
	return b[3], stream, b[http2FrameHeaderLen : http2FrameHeaderLen+n], b[http2FrameHeaderLen+n:], true
}

// http2HeaderBlock decodes the header block that starts with the HEADERS frame at the
// start of b and goes on in CONTINUATION frames.
func http2HeaderBlock(b []byte, final, server bool, d *Detail) Verdict {
	// First make sure the whole block is there.
	rest := b
	for first := true; ; first = false {
		typ, _, _, next, ok := http2Frame(rest)
		if !ok {
			if final {
				return Match
			}
			return NeedMore
		}
		if !first && typ != http2FrameContinuation {
			return Match // a broken block, but HTTP/2 all the same
		}
		if rest[4]&http2FlagEndHeaders != 0 {
			break
		}
		rest = next
	}

	// A block that does not decode still says HTTP/2; what decoded before the error is
	// kept, hence the errors of Write and Close end the block and nothing more.
	var f http2Fields
	dec := hpack.NewDecoder(4096, f.emit)
	dec.SetMaxStringLength(MaxInspect)
	rest = b
	for {
		_, _, payload, next, _ := http2Frame(rest)
		flags := rest[4]
		if flags&http2FlagPadded != 0 && rest[3] == http2FrameHeaders {
			if len(payload) == 0 || int(payload[0]) >= len(payload) {
				break
			}
			payload = payload[1 : len(payload)-int(payload[0])]
		}
		if flags&http2FlagPriority != 0 && rest[3] == http2FrameHeaders {
			if len(payload) < 5 {
				break
			}
			payload = payload[5:]
		}
		if _, err := dec.Write(payload); err != nil {
			break
		}
		if flags&http2FlagEndHeaders != 0 {
			dec.Close()
			break
		}
		rest = next
	}
	if server {
		if n, err := strconv.Atoi(f.status); err == nil && n >= 100 && n <= 999 {
			d.Status = n
		}
		return Match
	}
	if f.method != "" {
		d.Method = httpMethodName([]byte(f.method))
		if d.Method == "" {
			d.Method = printable([]byte(f.method), httpMaxMethod)
		}
	}
	if f.authority != "" {
		d.Host = printableLower([]byte(f.authority), httpMaxHost)
	}
	if f.path != "" {
		d.Path = printable([]byte(f.path), httpMaxPath)
	}
	if f.userAgent != "" {
		d.UserAgent = printable([]byte(f.userAgent), httpMaxUserAgent)
	}
	if f.contentType != "" {
		d.ContentType = printable([]byte(f.contentType), http2MaxContentType)
	}
	return Match
}

// http2Fields collects the header fields a Detail keeps, first occurrence wins.
type http2Fields struct {
	method, authority, path, userAgent, contentType, status string
}

func (f *http2Fields) emit(h hpack.HeaderField) {
	var dst *string
	switch h.Name {
	case ":method":
		dst = &f.method
	case ":authority":
		dst = &f.authority
	case "host":
		if f.authority == "" {
			dst = &f.authority
		}
	case ":path":
		dst = &f.path
	case "user-agent":
		dst = &f.userAgent
	case "content-type":
		dst = &f.contentType
	case ":status":
		dst = &f.status
	}
	if dst != nil && *dst == "" {
		*dst = h.Value
	}
}
