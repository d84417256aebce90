package dpi

import "bytes"

// NewHTTP returns the parser of HTTP/1.0 and HTTP/1.1 in clear text, which is also what
// etcd's gateway, Consul, Elasticsearch and most REST APIs speak.
//
// A request line ("GET /path HTTP/1.1") gives Method and Path, and its headers Host and
// User-Agent; a status line ("HTTP/1.1 200 OK") gives Status, skipping interim 1xx
// answers when the final one is in the bytes seen. Either one matches, from either
// direction. A request matches once its headers end (or MaxInspect bytes are seen), so
// that Host is not missed when the headers span segments. The method is case-sensitive
// and the version must be HTTP/1.0 or HTTP/1.1, so Redis and Memcached inline commands
// ("GET key") and RTSP are not taken for HTTP.
//
// The parser holds no state and is safe for concurrent use.
func NewHTTP() Parser { return httpParser{} }

type httpParser struct{}

func (httpParser) App() App { return HTTP }

// Bounds on what a Detail keeps of a request.
const (
	httpMaxPath      = 512
	httpMaxHost      = 256
	httpMaxUserAgent = 256
)

// httpMethods are the methods of RFC 9110, PATCH (RFC 5789) and the WebDAV ones
// (RFC 4918, 3253, 5323) clients send. PRI is left out: it opens HTTP/2.
var httpMethods = [...]string{
	"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
	"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT", "SEARCH",
}

const httpMaxMethod = len("PROPPATCH")

func (p httpParser) Inspect(t Transport, dir Direction, data []byte, d *Detail) Verdict {
	if t != TCP {
		return NoMatch
	}
	if len(data) == 0 {
		return NeedMore
	}
	if len(data) >= 2 && data[0] == 'H' && data[1] == 'T' {
		return httpResponse(data, d)
	}
	if len(data) == 1 && data[0] == 'H' {
		return NeedMore // HEAD or HTTP/
	}
	return httpRequest(data, d)
}

// httpRequest reads a request line and the headers that follow it.
func httpRequest(data []byte, d *Detail) Verdict {
	sp := bytes.IndexByte(data[:min(len(data), httpMaxMethod+1)], ' ')
	if sp < 0 {
		if len(data) > httpMaxMethod {
			return NoMatch
		}
		for _, m := range httpMethods {
			if len(data) <= len(m) && string(data) == m[:len(data)] {
				return NeedMore
			}
		}
		return NoMatch
	}
	method := httpMethodName(data[:sp])
	if method == "" {
		return NoMatch
	}
	rest := data[sp+1:]
	end := 0
	for ; end < len(rest) && rest[end] != ' '; end++ {
		if c := rest[end]; c < 0x21 || c == 0x7f {
			return NoMatch
		}
	}
	if end == len(rest) {
		return NeedMore
	}
	if end == 0 {
		return NoMatch
	}
	target := rest[:end]
	headers, v := httpVersionLine(rest[end+1:])
	if v != Match {
		return v
	}

	var host, agent []byte
	complete := false
	for !complete {
		nl := bytes.IndexByte(headers, '\n')
		if nl < 0 {
			break
		}
		line := headers[:nl]
		headers = headers[nl+1:]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			complete = true
			break
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		switch {
		case host == nil && httpFieldIs(name, "host"):
			host = bytes.TrimSpace(value)
		case agent == nil && httpFieldIs(name, "user-agent"):
			agent = bytes.TrimSpace(value)
		}
	}
	if !complete && len(data) < MaxInspect {
		return NeedMore
	}

	// One allocation for the three strings.
	var buf [httpMaxHost + httpMaxPath + httpMaxUserAgent]byte
	b := lowerASCII(appendPrintable(buf[:0], host, httpMaxHost))
	nh := len(b)
	b = appendPrintable(b, target, httpMaxPath)
	np := len(b)
	b = appendPrintable(b, agent, httpMaxUserAgent)
	s := string(b)
	d.Method = method
	d.Host, d.Path, d.UserAgent = s[:nh], s[nh:np], s[np:]
	return Match
}

// httpVersionLine checks that b opens with "HTTP/1.0" or "HTTP/1.1" and a line end, and
// returns what follows.
func httpVersionLine(b []byte) ([]byte, Verdict) {
	const version = "HTTP/1."
	for i := range len(version) + 1 {
		if i == len(b) {
			return nil, NeedMore
		}
		ok := i < len(version) && b[i] == version[i] || i == len(version) && (b[i] == '0' || b[i] == '1')
		if !ok {
			return nil, NoMatch
		}
	}
	b = b[len(version)+1:]
	switch {
	case len(b) == 0:
		return nil, NeedMore
	case b[0] == '\n':
		return b[1:], Match
	case b[0] != '\r':
		return nil, NoMatch
	case len(b) == 1:
		return nil, NeedMore
	case b[1] == '\n':
		return b[2:], Match
	}
	return nil, NoMatch
}

// httpResponse reads a status line; for an interim (1xx) answer it looks for the final
// one after its headers.
func httpResponse(data []byte, d *Detail) Verdict {
	final := len(data) >= MaxInspect // no more bytes will be shown
	status, v := httpStatusLine(data)
	if v != Match {
		return v
	}
	for {
		d.Status = status
		if status >= 200 || status == 101 {
			return Match
		}
		end := bytes.Index(data, []byte("\r\n\r\n"))
		if end < 0 {
			if final {
				return Match
			}
			return NeedMore
		}
		data = data[end+4:]
		next, v := httpStatusLine(data)
		switch v {
		case NeedMore:
			if final {
				return Match
			}
			return NeedMore
		case NoMatch:
			return Match // the interim answer settled it already
		}
		status = next
	}
}

// httpStatusLine reads "HTTP/1.x NNN" followed by a space or a line end.
func httpStatusLine(b []byte) (int, Verdict) {
	const version = "HTTP/1."
	for i := range 13 {
		if i == len(b) {
			return 0, NeedMore
		}
		c := b[i]
		var ok bool
		switch {
		case i < len(version):
			ok = c == version[i]
		case i == 7:
			ok = c == '0' || c == '1'
		case i == 8:
			ok = c == ' '
		case i == 9:
			ok = c >= '1' && c <= '5'
		case i < 12:
			ok = c >= '0' && c <= '9'
		default:
			ok = c == ' ' || c == '\r' || c == '\n'
		}
		if !ok {
			return 0, NoMatch
		}
	}
	return int(b[9]-'0')*100 + int(b[10]-'0')*10 + int(b[11]-'0'), Match
}

// httpMethodName returns the known method spelled by b, or "".
func httpMethodName(b []byte) string {
	for _, m := range httpMethods {
		if string(b) == m {
			return m
		}
	}
	return ""
}

// httpFieldIs reports whether the header name b is name (lower case), ignoring case.
func httpFieldIs(b []byte, name string) bool {
	if len(b) != len(name) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

// literal reports whether b begins with s (Match), is a shorter beginning of s
// (NeedMore), or neither (NoMatch).
func literal(b []byte, s string) Verdict {
	n := min(len(b), len(s))
	if string(b[:n]) != s[:n] {
		return NoMatch
	}
	if n < len(s) {
		return NeedMore
	}
	return Match
}
