package dpi

// NewRedis returns the parser of RESP, the protocol of Redis (and of the servers that
// speak it: Valkey, KeyDB, Dragonfly).
//
// The client speaks first. Its opening is a RESP array of bulk strings whose first
// element names the command ("*1\r\n$4\r\nPING\r\n" gives Command "PING"), or an inline
// command line; inline lines are taken only for a known command that no other text
// protocol opens with, so "GET", "SET" and "QUIT" (Memcached, mail, FTP) are never taken
// inline. From the server, the reply to HELLO gives Version; Redis-only errors
// (-NOAUTH, -DENIED of protected mode, ...) match; any other well-formed reply is
// NeedMore, since "+OK\r\n" alone says nothing.
//
// The parser holds no state and is safe for concurrent use.
func NewRedis() Parser { return redisParser{} }

type redisParser struct{}

func (redisParser) App() App { return Redis }

const (
	// redisMaxLine bounds a RESP header or inline line this parser waits for.
	redisMaxLine = 1024
	// redisMaxName bounds a command name; the longest Redis commands have about 20
	// letters, module commands a few more.
	redisMaxName = 64
	// redisMaxArgs is the largest first array Redis accepts from a client.
	redisMaxArgs = 1 << 20
	// redisMaxDepth bounds the nesting of a reply this parser walks.
	redisMaxDepth = 4
)

// redisInline lists the commands taken in inline form, as typed into telnet or sent by
// health checks: Redis's own words, and no word that opens another text protocol or
// a sentence ("HELLO" is left to the RESP form). Commands shared with Memcached (GET,
// SET, INCR, ...) or with mail and FTP (QUIT, AUTH) are left out on purpose.
var redisInline = [...]string{
	"CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DBSIZE", "DEL", "ECHO", "EXISTS",
	"FLUSHALL", "FLUSHDB", "HGETALL", "INFO", "KEYS", "LRANGE", "MONITOR", "PING",
	"PSUBSCRIBE", "PSYNC", "PUBLISH", "REPLICAOF", "SCAN", "SELECT", "SLAVEOF",
	"SLOWLOG", "SMEMBERS", "SUBSCRIBE", "SYNC", "TTL", "ZRANGE",
}

// redisServerErrors are error codes only a Redis server sends. -DENIED is sent unasked
// to a client that protected mode refuses.
var redisServerErrors = [...]string{
	"NOAUTH ", "WRONGPASS ", "DENIED ", "NOPERM ", "LOADING ", "MASTERDOWN ",
	"MISCONF ", "CLUSTERDOWN ", "CROSSSLOT ", "WRONGTYPE ", "NOSCRIPT ", "BUSYKEY ",
	"EXECABORT ", "NOREPLICAS ", "READONLY ",
}

func (p redisParser) Inspect(t Transport, dir Direction, data []byte, d *Detail) Verdict {
	if t != TCP {
		return NoMatch
	}
	if len(data) == 0 {
		return NeedMore
	}
	if dir == FromServer {
		return p.inspectReply(data, d)
	}
	if data[0] == '*' {
		return p.inspectArray(data, d)
	}
	return p.inspectInline(data, d)
}

// inspectArray reads "*<n>\r\n$<len>\r\n<name>\r\n".
func (redisParser) inspectArray(data []byte, d *Detail) Verdict {
	n, i, v := redisHeader(data, 0, '*', false)
	if v != Match {
		return v
	}
	if n < 1 || n > redisMaxArgs {
		return NoMatch
	}
	l, i, v := redisHeader(data, i, '$', false)
	if v != Match {
		return v
	}
	if l < 1 || l > redisMaxName {
		return NoMatch
	}
	end := i + int(l)
	for j := i; j < end && j < len(data); j++ {
		if !redisNameByte(data[j], j == i) {
			return NoMatch
		}
	}
	switch {
	case len(data) < end+2:
		if len(data) > end && data[end] != '\r' {
			return NoMatch
		}
		return NeedMore
	case data[end] != '\r' || data[end+1] != '\n':
		return NoMatch
	}
	d.Command = redisUpper(data[i:end])
	return Match
}

// inspectInline reads "<command>[ args]\r\n" for a command of redisInline.
func (redisParser) inspectInline(data []byte, d *Detail) Verdict {
	n := 0
	for n < len(data) && n <= redisMaxName && asciiLetter(data[n]) {
		n++
	}
	name := data[:n]
	if n == len(data) {
		for _, c := range redisInline {
			if asciiIsPrefixFold(name, c) {
				return NeedMore
			}
		}
		return NoMatch
	}
	if !redisIsInline(name) {
		return NoMatch
	}
	switch data[n] {
	case ' ', '\r', '\n':
	default:
		return NoMatch
	}
	for i := n; i < len(data); i++ {
		if i >= redisMaxLine {
			return NoMatch
		}
		switch c := data[i]; {
		case c == '\n':
			d.Command = redisUpper(name)
			return Match
		case c == '\r':
			if i+1 < len(data) && data[i+1] != '\n' {
				return NoMatch
			}
		case c == '\t' || c >= ' ' && c != 0x7f:
		default:
			return NoMatch
		}
	}
	return NeedMore
}

func redisIsInline(name []byte) bool {
	for _, c := range redisInline {
		if len(name) == len(c) && asciiHasPrefixFold(name, c) {
			return true
		}
	}
	return false
}

// inspectReply reads the first reply a server sent.
func (p redisParser) inspectReply(data []byte, d *Detail) Verdict {
	switch data[0] {
	case '-':
		line, _, v := redisLine(data, 1)
		if v != Match {
			return v
		}
		for _, code := range redisServerErrors {
			if len(line) >= len(code) && string(line[:len(code)]) == code {
				return Match
			}
		}
		return NeedMore
	case '%', '*':
		return p.inspectHello(data, d)
	}
	_, v := redisSkip(data, 0, 0)
	if v == NoMatch {
		return NoMatch
	}
	return NeedMore
}

// inspectHello reads the reply to HELLO: a map (RESP3) or a flat array (RESP2) of
// "server", "redis", "version", "7.2.4", ... It returns NeedMore for any other
// well-formed aggregate.
func (redisParser) inspectHello(data []byte, d *Detail) Verdict {
	n, i, v := redisHeader(data, 0, data[0], true)
	if v != Match {
		return v
	}
	pairs := n
	if data[0] == '*' {
		pairs = n / 2
	}
	if n < 1 {
		return NeedMore
	}
	var server, version []byte
	for k := int64(0); k < pairs; k++ {
		key, next, v := redisString(data, i)
		if v == NeedMore {
			return NeedMore
		}
		if v == NoMatch || (k == 0 && string(key) != "server") {
			// Not a HELLO reply: judge it as any other reply.
			if _, v := redisSkip(data, 0, 0); v == NoMatch {
				return NoMatch
			}
			return NeedMore
		}
		i = next
		switch string(key) {
		case "server", "version":
			val, next, v := redisString(data, i)
			if v != Match {
				return v
			}
			if string(key) == "server" {
				server = val
			} else {
				version = val
			}
			i = next
		default:
			next, v := redisSkip(data, i, 1)
			if v != Match {
				return v
			}
			i = next
		}
		if server != nil && version != nil {
			if len(server) == 0 || len(version) == 0 {
				return NoMatch
			}
			if string(server) == "redis" {
				d.Version = printable(version, appMaxText)
			} else {
				d.Version = printableJoin(server, ' ', version)
			}
			return Match
		}
	}
	return NeedMore
}

// redisSkip walks one reply element at data[i:] and returns where the next one starts.
// NeedMore means the element is well-formed so far but not complete.
func redisSkip(data []byte, i, depth int) (int, Verdict) {
	if i >= len(data) {
		return i, NeedMore
	}
	typ := data[i]
	switch typ {
	case '+', '-', ':', ',', '#', '_', '(':
		line, next, v := redisLine(data, i+1)
		if v != Match {
			return i, v
		}
		if !redisSimpleOK(typ, line) {
			return i, NoMatch
		}
		return next, Match
	case '$', '!', '=':
		n, next, v := redisHeader(data, i, typ, true)
		if v != Match {
			return i, v
		}
		if n < 0 {
			if typ != '$' || n != -1 {
				return i, NoMatch
			}
			return next, Match
		}
		if n > 512<<20 {
			return i, NoMatch
		}
		end := next + int(n)
		if len(data) < end+2 {
			return i, NeedMore
		}
		if data[end] != '\r' || data[end+1] != '\n' {
			return i, NoMatch
		}
		return end + 2, Match
	case '*', '%', '~', '>', '|':
		n, next, v := redisHeader(data, i, typ, true)
		if v != Match {
			return i, v
		}
		if n < 0 {
			if typ != '*' || n != -1 {
				return i, NoMatch
			}
			return next, Match
		}
		if typ == '%' || typ == '|' {
			n *= 2
		}
		if depth >= redisMaxDepth {
			// Deeper than a first reply needs to be: accept it unread.
			return len(data), NeedMore
		}
		for k := int64(0); k < n; k++ {
			var v Verdict
			next, v = redisSkip(data, next, depth+1)
			if v != Match {
				return i, v
			}
		}
		return next, Match
	}
	return i, NoMatch
}

// redisSimpleOK checks the line of a one-line reply element.
func redisSimpleOK(typ byte, line []byte) bool {
	switch typ {
	case ':', '(':
		_, ok := redisInt(line, true)
		return ok
	case '#':
		return len(line) == 1 && (line[0] == 't' || line[0] == 'f')
	case '_':
		return len(line) == 0
	case ',':
		if len(line) == 0 || len(line) > 64 {
			return false
		}
		for _, c := range line {
			switch {
			case asciiDigit(c):
			case c == '+', c == '-', c == '.', c == 'e', c == 'E', c == 'i', c == 'n', c == 'f', c == 'a':
			default:
				return false
			}
		}
	}
	return true
}

// redisString reads a bulk ($) or simple (+) string element.
func redisString(data []byte, i int) ([]byte, int, Verdict) {
	if i >= len(data) {
		return nil, i, NeedMore
	}
	switch data[i] {
	case '+':
		line, next, v := redisLine(data, i+1)
		return line, next, v
	case '$':
		n, next, v := redisHeader(data, i, '$', true)
		if v != Match {
			return nil, i, v
		}
		if n < 0 || n > redisMaxLine {
			return nil, i, NoMatch
		}
		end := next + int(n)
		if len(data) < end+2 {
			return nil, i, NeedMore
		}
		if data[end] != '\r' || data[end+1] != '\n' {
			return nil, i, NoMatch
		}
		return data[next:end], end + 2, Match
	}
	return nil, i, NoMatch
}

// redisHeader reads "<typ><integer>\r\n" at data[i:] and returns the integer and the
// index after the line. Negative values are allowed only when signed is set.
func redisHeader(data []byte, i int, typ byte, signed bool) (int64, int, Verdict) {
	if i >= len(data) {
		return 0, i, NeedMore
	}
	if data[i] != typ {
		return 0, i, NoMatch
	}
	line, next, v := redisLine(data, i+1)
	if v == NeedMore {
		// What was seen of the line must still be able to become a valid integer.
		rest := data[i+1:]
		if len(rest) > 0 && rest[len(rest)-1] == '\r' {
			rest = rest[:len(rest)-1]
		}
		if signed && len(rest) > 0 && rest[0] == '-' {
			rest = rest[1:]
		}
		if len(rest) > 18 {
			return 0, i, NoMatch
		}
		for _, c := range rest {
			if !asciiDigit(c) {
				return 0, i, NoMatch
			}
		}
		return 0, i, NeedMore
	}
	if v != Match {
		return 0, i, v
	}
	n, ok := redisInt(line, signed)
	if !ok {
		return 0, i, NoMatch
	}
	return n, next, Match
}

// redisInt parses a decimal integer of at most 18 digits.
func redisInt(b []byte, signed bool) (int64, bool) {
	neg := false
	if signed && len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !asciiDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// redisLine returns the text of the CRLF-terminated line at data[i:] and the index after
// it. The text must be printable (UTF-8 is let through).
func redisLine(data []byte, i int) ([]byte, int, Verdict) {
	for j := i; j < len(data); j++ {
		c := data[j]
		if c == '\r' {
			if j+1 == len(data) {
				return nil, i, NeedMore
			}
			if data[j+1] != '\n' {
				return nil, i, NoMatch
			}
			return data[i:j], j + 2, Match
		}
		if c < ' ' && c != '\t' || c == 0x7f || j-i >= redisMaxLine {
			return nil, i, NoMatch
		}
	}
	return nil, i, NeedMore
}

// redisNameByte reports whether c may appear in a command name ("JSON.SET" included).
func redisNameByte(c byte, first bool) bool {
	if first {
		return asciiLetter(c)
	}
	return asciiLetter(c) || asciiDigit(c) || c == '.' || c == '_' || c == '-' || c == '|'
}

// redisUpper returns the command name in upper case, as Redis documents it.
func redisUpper(name []byte) string {
	var buf [redisMaxName]byte
	n := copy(buf[:], name)
	for k := 0; k < n; k++ {
		if c := buf[k]; c >= 'a' && c <= 'z' {
			buf[k] = c - ('a' - 'A')
		}
	}
	return string(buf[:n])
}
