package dpi

import "encoding/binary"

// NewMySQL returns the parser of the MySQL client/server protocol, which MariaDB, Percona,
// TiDB and Vitess speak too.
//
// The server speaks first: its initial handshake (protocol 10) gives Version, with the
// "5.5.5-" that MariaDB puts in front for old clients taken off. A server that refuses the
// client before any handshake (too many connections, host not allowed) sends an error
// packet instead, which matches too. From the client, the handshake response gives User
// and Database; an SSLRequest (the client then starts TLS) matches with nothing to record.
//
// The parser holds no state and is safe for concurrent use.
func NewMySQL() Parser { return mysqlParser{} }

type mysqlParser struct{}

func (mysqlParser) App() App { return MySQL }

// Capability flags, from include/mysql_com.h of the MySQL server.
const (
	// CLIENT_LONG_PASSWORD, which MariaDB clients clear to say that the last 4 bytes of
	// the filler hold MariaDB's own capabilities.
	mysqlClientMySQL      = 0x00000001
	mysqlConnectWithDB    = 0x00000008
	mysqlProtocol41       = 0x00000200
	mysqlSSL              = 0x00000800
	mysqlSecureConnection = 0x00008000
	mysqlPluginAuthLenEnc = 0x00200000
)

const (
	mysqlHandshakeV10       = 0x0a     // protocol version of every server since 3.21
	mysqlErrPacket          = 0xff     // first byte of an ERR packet
	mysqlMaxHandshake       = 1024     // an initial handshake is about 100 bytes
	mysqlMaxVersion         = 128      // "8.0.36-0ubuntu0.22.04.1" and the like
	mysqlMaxRefusal         = 512      // "Host '...' is not allowed to connect to this MariaDB server"
	mysqlFirstErrorCode     = 1000     // server error codes start here
	mysqlLastErrorCode      = 9999     // and stay below this
	mysqlSSLRequestLength   = 32       // capabilities, max packet, charset, filler
	mysqlMaxResponse        = 1 << 16  // a handshake response with connection attributes
	mysqlMaxName            = 384      // 80 characters of up to 4 bytes, and some slack
	mysqlMariaDBVersionHack = "5.5.5-" // what MariaDB puts before its version
)

func (p mysqlParser) Inspect(t Transport, dir Direction, data []byte, d *Detail) Verdict {
	if t != TCP {
		return NoMatch
	}
	data = data[:min(len(data), MaxInspect)] // what is judged at MaxInspect stays judged
	if v := mysqlHeaderPrefix(dir, data); v != NeedMore || len(data) < 5 {
		return v
	}
	length := int(data[0]) | int(data[1])<<8 | int(data[2])<<16
	payload := data[4:]
	if len(payload) > length {
		payload = payload[:length]
	}
	complete := len(data)-4 >= length
	// mysqlHeaderPrefix checked the sequence ids: 0 from the server, 1 from the client.
	if dir == FromServer {
		switch payload[0] {
		case mysqlHandshakeV10:
			return p.inspectHandshake(length, payload, d)
		case mysqlErrPacket:
			return p.inspectRefusal(length, payload, complete)
		}
		return NoMatch
	}
	return p.inspectResponse(length, payload, complete, len(data) >= MaxInspect, d)
}

// mysqlHeaderPrefix judges the first bytes of a packet header.
func mysqlHeaderPrefix(dir Direction, data []byte) Verdict {
	if len(data) < 4 {
		return NeedMore
	}
	length := int(data[0]) | int(data[1])<<8 | int(data[2])<<16
	if dir == FromServer {
		if data[3] != 0 || length < 4 || length > mysqlMaxHandshake {
			return NoMatch
		}
		return NeedMore
	}
	if data[3] != 1 || length < mysqlSSLRequestLength || length > mysqlMaxResponse {
		return NoMatch
	}
	return NeedMore
}

// inspectHandshake reads the initial handshake packet, protocol 10.
func (mysqlParser) inspectHandshake(length int, payload []byte, d *Detail) Verdict {
	if length < 1+2+4+8+1+2 || length > mysqlMaxHandshake {
		return NoMatch
	}
	// Server version: printable, starting with a digit, NUL-terminated.
	i := 1
	for ; i < len(payload) && payload[i] != 0; i++ {
		if !asciiGraphic(payload[i]) || i == 1 && !asciiDigit(payload[i]) || i > mysqlMaxVersion {
			return NoMatch
		}
	}
	if i == len(payload) {
		if i == length {
			return NoMatch
		}
		return NeedMore
	}
	version := payload[1:i]
	if len(version) == 0 {
		return NoMatch
	}
	rest := payload[i+1:]
	// connection id (4), auth-plugin-data part 1 (8), filler (1), capabilities, low half (2)
	if i+1+15 > length {
		return NoMatch
	}
	if len(rest) < 15 {
		return NeedMore
	}
	caps := binary.LittleEndian.Uint16(rest[13:15])
	if rest[12] != 0 || caps&mysqlProtocol41 == 0 {
		return NoMatch
	}
	if len(version) > len(mysqlMariaDBVersionHack) && string(version[:len(mysqlMariaDBVersionHack)]) == mysqlMariaDBVersionHack {
		version = version[len(mysqlMariaDBVersionHack):]
	}
	d.Version = printable(version, appMaxText)
	return Match
}

// inspectRefusal reads an ERR packet sent instead of the handshake.
func (mysqlParser) inspectRefusal(length int, payload []byte, complete bool) Verdict {
	if length < 4 || length > mysqlMaxRefusal {
		return NoMatch
	}
	if len(payload) >= 3 {
		code := int(binary.LittleEndian.Uint16(payload[1:3]))
		if code < mysqlFirstErrorCode || code > mysqlLastErrorCode {
			return NoMatch
		}
	}
	for _, c := range payload[min(3, len(payload)):] {
		if c < ' ' && c != '\t' || c == 0x7f {
			return NoMatch
		}
	}
	if !complete {
		return NeedMore
	}
	return Match
}

// inspectResponse reads the client's HandshakeResponse41 or SSLRequest. final says that
// no more bytes will be shown: a database still cut short is then left out.
func (mysqlParser) inspectResponse(length int, payload []byte, complete, final bool, d *Detail) Verdict {
	if length < mysqlSSLRequestLength || length > mysqlMaxResponse {
		return NoMatch
	}
	// capabilities (4), max packet size (4), character set (1), filler (23): the filler is
	// zero, except that MariaDB keeps its own capabilities in the last 4 bytes.
	fixed := payload[:min(len(payload), mysqlSSLRequestLength)]
	var caps uint32
	if len(fixed) >= 4 {
		caps = binary.LittleEndian.Uint32(fixed)
		if caps&mysqlProtocol41 == 0 {
			return NoMatch
		}
	}
	if len(fixed) > 8 && fixed[8] == 0 {
		return NoMatch
	}
	for k := 9; k < len(fixed); k++ {
		if fixed[k] != 0 && (k < 28 || caps&mysqlClientMySQL != 0) {
			return NoMatch
		}
	}
	if len(fixed) < mysqlSSLRequestLength {
		return NeedMore
	}
	if length == mysqlSSLRequestLength {
		if caps&mysqlSSL == 0 {
			return NoMatch
		}
		return Match
	}
	body := payload[mysqlSSLRequestLength:]
	bodyLen := length - mysqlSSLRequestLength
	user, n, v := mysqlCString(body, bodyLen)
	if v != Match {
		return v
	}
	var db []byte
	if caps&mysqlConnectWithDB != 0 {
		db, v = mysqlDatabase(caps, body[n:], bodyLen-n, complete)
		switch {
		case v == NoMatch:
			return NoMatch
		case v == NeedMore && !final:
			return NeedMore
		}
	}
	d.User = printable(user, appMaxText)
	if len(db) > 0 {
		d.Database = printable(db, appMaxText)
	}
	return Match
}

// mysqlDatabase reads the auth response and the database that follow the user in a
// handshake response; b is what is there of them, of which limit bytes belong to the
// packet.
func mysqlDatabase(caps uint32, b []byte, limit int, complete bool) ([]byte, Verdict) {
	if len(b) == 0 {
		if complete {
			return nil, NoMatch
		}
		return nil, NeedMore
	}
	var authLen, skip int
	switch {
	case caps&mysqlPluginAuthLenEnc != 0:
		authLen, skip = mysqlLenEnc(b)
	case caps&mysqlSecureConnection != 0:
		authLen, skip = int(b[0]), 1
	default:
		_, m, v := mysqlCString(b, limit)
		if v != Match {
			return nil, v
		}
		skip = m
	}
	switch {
	case skip < 0 || skip == 0 && complete:
		return nil, NoMatch
	case skip == 0:
		return nil, NeedMore
	}
	n := skip + authLen
	switch {
	case n > limit:
		return nil, NoMatch
	case n == limit:
		return nil, Match // no database after all
	case n >= len(b):
		return nil, NeedMore
	}
	db, _, v := mysqlCString(b[n:], limit-n)
	return db, v
}

// mysqlCString reads a NUL-terminated name from b, of which limit bytes belong to the
// packet. It returns the name and the index after its NUL.
func mysqlCString(b []byte, limit int) ([]byte, int, Verdict) {
	for k := 0; k < len(b) && k < limit; k++ {
		if b[k] == 0 {
			return b[:k], k + 1, Match
		}
		if b[k] < ' ' || b[k] == 0x7f || k >= mysqlMaxName {
			return nil, 0, NoMatch
		}
	}
	if len(b) >= limit {
		return nil, 0, NoMatch
	}
	return nil, 0, NeedMore
}

// mysqlLenEnc reads a length-encoded integer. It returns the value and how many bytes it
// took: 0 when b is too short to say, -1 when the encoding is not a length.
func mysqlLenEnc(b []byte) (int, int) {
	if len(b) == 0 {
		return 0, 0
	}
	switch c := b[0]; {
	case c < 0xfb:
		return int(c), 1
	case c == 0xfc:
		if len(b) < 3 {
			return 0, 0
		}
		return int(binary.LittleEndian.Uint16(b[1:3])), 3
	case c == 0xfd:
		if len(b) < 4 {
			return 0, 0
		}
		return int(b[1]) | int(b[2])<<8 | int(b[3])<<16, 4
	}
	// 0xfe (8 bytes) is longer than any auth response; 0xfb and 0xff are not lengths.
	return 0, -1
}
