package dpi

import "encoding/binary"

// NewPostgreSQL returns the parser of the PostgreSQL frontend/backend protocol, version 3
// (PostgreSQL 7.4 and later, and what CockroachDB, YugabyteDB and Redshift speak).
//
// The client speaks first, with a message that has no type byte: a StartupMessage
// (protocol 3.x; its "user" and "database" parameters give User and Database), a
// CancelRequest, or an SSLRequest or GSSENCRequest. After one of the last two the parser
// waits for what the client sends once the server answered: a TLS or GSSAPI handshake
// (nothing more can be read) or, encryption refused, the StartupMessage. Command names
// the request that opened the conversation in the clear: "StartupMessage",
// "CancelRequest", or "SSLRequest" or "GSSENCRequest" when encryption followed. From the
// server, the answer to the startup (an authentication request, an error or a protocol
// negotiation) matches, and a ParameterStatus "server_version" among the bytes seen
// gives Version.
//
// The parser holds no state and is safe for concurrent use.
func NewPostgreSQL() Parser { return postgresParser{} }

type postgresParser struct{}

func (postgresParser) App() App { return PostgreSQL }

// Request codes, from src/include/libpq/pqcomm.h.
const (
	postgresProtocol3    = 3 << 16  // major 3 in the high half, minor in the low half
	postgresMaxMinor     = 15       // 3.0 to 3.2 exist; leave room for a few more
	postgresCancel       = 80877102 // 1234 << 16 | 5678
	postgresSSL          = 80877103 // 1234 << 16 | 5679
	postgresGSSENC       = 80877104 // 1234 << 16 | 5680
	postgresMaxStartup   = 10000    // MAX_STARTUP_PACKET_LENGTH in the server
	postgresMaxCancel    = 12 + 256 // 3.2 allows cancel keys of up to 256 bytes
	postgresMaxParamName = 64       // "application_name", "_pq_.some_option", ...
	postgresMaxFirstMsg  = 2048     // an authentication request or a startup error
)

func (p postgresParser) Inspect(t Transport, dir Direction, data []byte, d *Detail) Verdict {
	if t != TCP {
		return NoMatch
	}
	if dir == FromServer {
		return p.inspectServer(data, d)
	}
	return p.inspectClient(data, d)
}

func (p postgresParser) inspectClient(data []byte, d *Detail) Verdict {
	data = data[:min(len(data), MaxInspect)] // what is judged at MaxInspect stays judged
	return p.inspectRequest(data, len(data) == MaxInspect, d)
}

// inspectRequest reads the request at the start of data. final says that no more bytes
// will be shown.
func (p postgresParser) inspectRequest(data []byte, final bool, d *Detail) Verdict {
	if !postgresOpeningPrefix(data) {
		return NoMatch
	}
	if len(data) < 8 {
		return NeedMore
	}
	length := int(binary.BigEndian.Uint32(data))
	code := binary.BigEndian.Uint32(data[4:8])
	switch {
	case code == postgresSSL || code == postgresGSSENC:
		if length != 8 {
			return NoMatch
		}
		// The server answers with one byte, and the client goes on with a TLS or GSSAPI
		// handshake (S, G) or, refused (N), with its next request in the clear, which
		// names the user: wait for it.
		rest := data[8:]
		if len(rest) == 0 {
			return NeedMore
		}
		if v := p.inspectRequest(rest, final, d); v != NoMatch {
			return v
		}
		if code == postgresSSL {
			d.Command = "SSLRequest"
		} else {
			d.Command = "GSSENCRequest"
		}
		return Match
	case code == postgresCancel:
		if length < 16 || length > postgresMaxCancel {
			return NoMatch
		}
		if len(data) < length {
			return NeedMore
		}
		d.Command = "CancelRequest"
		return Match
	case code>>16 != 3 || code&0xffff > postgresMaxMinor:
		return NoMatch
	case length < 9 || length > postgresMaxStartup:
		return NoMatch
	}
	// StartupMessage: name\0value\0 pairs up to a final \0 at the end of the message.
	end := min(length, len(data))
	var user, database []byte
	for i := 8; i < end; {
		if data[i] == 0 {
			if i != length-1 {
				return NoMatch
			}
			return postgresStartup(d, user, database)
		}
		name, next, v := postgresCString(data[:end], i, postgresMaxParamName, true)
		if v == Match {
			var value []byte
			value, next, v = postgresCString(data[:end], next, length, false)
			switch string(name) {
			case "user":
				user = value
			case "database":
				database = value
			}
		}
		switch {
		case v == NoMatch || v == NeedMore && end == length:
			return NoMatch
		case v == NeedMore && final:
			// Too long to see whole: take it for what it looks like so far.
			return postgresStartup(d, user, database)
		case v == NeedMore:
			return NeedMore
		}
		i = next
	}
	if end == length {
		return NoMatch // no final NUL
	}
	if final {
		return postgresStartup(d, user, database)
	}
	return NeedMore
}

// postgresOpeningPrefix checks what is there of the first 8 bytes a client sends: every
// length it may open with is below 2^16, and every code starts with 00 03 (protocol 3)
// or 04 d2 (the 1234 of the special requests).
func postgresOpeningPrefix(data []byte) bool {
	for k := 0; k < len(data) && k < 6; k++ {
		c := data[k]
		switch k {
		case 0, 1:
			if c != 0 {
				return false
			}
		case 4:
			if c != 0 && c != 0x04 {
				return false
			}
		case 5:
			if data[4] == 0 && c != 3 || data[4] == 0x04 && c != 0xd2 {
				return false
			}
		}
	}
	return len(data) < 4 || binary.BigEndian.Uint32(data) >= 8
}

// postgresStartup records what a StartupMessage told.
func postgresStartup(d *Detail, user, database []byte) Verdict {
	if user != nil {
		d.User = printable(user, appMaxText)
	}
	if database != nil {
		d.Database = printable(database, appMaxText)
	}
	d.Command = "StartupMessage"
	return Match
}

// postgresCString reads a NUL-terminated string at b[i:] of at most max bytes. Names
// must be printable ASCII and not empty; values may hold any byte but NUL.
func postgresCString(b []byte, i, max int, name bool) ([]byte, int, Verdict) {
	for k := i; k < len(b); k++ {
		c := b[k]
		if c == 0 {
			if name && k == i {
				return nil, i, NoMatch
			}
			return b[i:k], k + 1, Match
		}
		if k-i >= max || name && !asciiGraphic(c) {
			return nil, i, NoMatch
		}
	}
	return nil, i, NeedMore
}

// inspectServer reads what the server answers to the client's opening.
func (postgresParser) inspectServer(data []byte, d *Detail) Verdict {
	if len(data) == 0 {
		return NeedMore
	}
	i := 0
	switch data[0] {
	case 'S', 'G':
		// Yes to SSLRequest or GSSENCRequest: encrypted bytes follow. A TLS record
		// starts with 0x16; GSSAPI packets with a length below 16 kB.
		switch {
		case len(data) == 1:
			return NeedMore
		case data[0] == 'S' && data[1] == 0x16, data[0] == 'G' && data[1] == 0:
			return NeedMore
		}
		return NoMatch
	case 'N':
		// No to SSLRequest or GSSENCRequest; the answer to the startup follows.
		if len(data) == 1 {
			return NeedMore
		}
		i = 1
	}
	typ := data[i]
	if typ != 'R' && typ != 'E' && typ != 'v' {
		return NoMatch
	}
	msg, next, v := postgresMessage(data, i, postgresMaxFirstMsg)
	if v != Match {
		return v
	}
	ok := false
	switch typ {
	case 'R':
		ok = postgresAuthOK(msg)
	case 'E':
		ok = postgresErrorOK(msg)
	case 'v':
		ok = len(msg) >= 8 && binary.BigEndian.Uint32(msg[4:8]) < 64
	}
	if !ok {
		return NoMatch
	}
	// ParameterStatus messages follow a successful authentication.
	for i = next; ; {
		m, n, v := postgresMessage(data, i, postgresMaxFirstMsg)
		if v != Match {
			break
		}
		if data[i] == 'S' {
			name, k, v := postgresCString(m, 0, postgresMaxParamName, true)
			if v == Match && string(name) == "server_version" {
				if value, _, v := postgresCString(m, k, len(m), false); v == Match && len(value) > 0 {
					d.Version = printable(value, appMaxText)
				}
				break
			}
		}
		i = n
	}
	return Match
}

// postgresMessage returns the body of the typed message at data[i:], at most max bytes
// long, and the index after it.
func postgresMessage(data []byte, i, max int) ([]byte, int, Verdict) {
	if len(data) < i+5 {
		return nil, i, NeedMore
	}
	length := int(binary.BigEndian.Uint32(data[i+1:]))
	if length < 4 || length > max {
		return nil, i, NoMatch
	}
	end := i + 1 + length
	if len(data) < end {
		return nil, i, NeedMore
	}
	return data[i+5 : end], end, Match
}

// postgresAuthOK checks an Authentication message: a known request code and the length
// that code has.
func postgresAuthOK(msg []byte) bool {
	if len(msg) < 4 {
		return false
	}
	switch code := binary.BigEndian.Uint32(msg); code {
	case 0, 2, 3, 6, 7, 9: // ok, Kerberos V5, cleartext, SCM, GSS, SSPI
		return len(msg) == 4
	case 5: // MD5, with a 4-byte salt
		return len(msg) == 8
	case 8, 11, 12: // GSS continue, SASL continue, SASL final
		return true
	case 10: // SASL: mechanism names, each NUL-terminated, then a NUL
		mechs := msg[4:]
		if len(mechs) < 2 || mechs[len(mechs)-1] != 0 || mechs[0] == 0 {
			return false
		}
		for _, c := range mechs {
			if c != 0 && !asciiGraphic(c) {
				return false
			}
		}
		return true
	}
	return false
}

// postgresErrorOK checks an ErrorResponse: fields of a type letter and a NUL-terminated
// value, then a NUL, with a severity among them.
func postgresErrorOK(msg []byte) bool {
	severity := false
	for i := 0; i < len(msg); {
		c := msg[i]
		if c == 0 {
			return i == len(msg)-1 && severity
		}
		if !asciiLetter(c) {
			return false
		}
		_, next, v := postgresCString(msg, i+1, len(msg), false)
		if v != Match {
			return false
		}
		if c == 'S' || c == 'V' {
			severity = true
		}
		i = next
	}
	return false
}
