package dpi

import "encoding/binary"

// NewAMQP returns the parser of AMQP: 0-9-1 (RabbitMQ, LavinMQ, Qpid), and the 0-8, 0-9
// and 1.0 headers that open the older and newer versions.
//
// The client speaks first, with an 8-byte protocol header: "AMQP" and the version
// ("AMQP\x00\x00\x09\x01" for 0-9-1). An AMQP 1.0 header matches at once. After a 0-9-1
// header the parser waits (NeedMore) for the client's Connection.Open, which comes once
// the server has spoken: its Connection.Start-Ok names the user (PLAIN mechanism),
// recorded as User, and Open the virtual host, recorded as Database. The server answers
// the header with Connection.Start, which matches, and whose "product" and "version"
// properties give Version; or with the header of the version it would speak instead.
//
// The parser holds no state and is safe for concurrent use.
func NewAMQP() Parser { return amqpParser{} }

type amqpParser struct{}

func (amqpParser) App() App { return AMQP }

// Frame and method numbers, from the AMQP 0-9-1 specification.
const (
	amqpHeaderLen     = 8
	amqpFrameMethod   = 1
	amqpFrameEnd      = 0xce
	amqpClassConn     = 10
	amqpMethodStart   = 10
	amqpMethodStartOk = 11
	amqpMethodOpen    = 40
	amqpMaxFrame      = MaxInspect - 8 // frames before tuning are a few hundred bytes
	amqpMaxTableDepth = 4
)

// amqpHeaders are the protocol headers a peer may open with: 0-9-1, then the 0-9 and
// the two 0-8 forms RabbitMQ accepts, then AMQP 1.0 plain, TLS and SASL.
var amqpHeaders = [...]string{
	"AMQP\x00\x00\x09\x01",
	"AMQP\x01\x01\x00\x09",
	"AMQP\x01\x01\x08\x00",
	"AMQP\x01\x01\x09\x01",
	"AMQP\x00\x01\x00\x00",
	"AMQP\x02\x01\x00\x00",
	"AMQP\x03\x01\x00\x00",
}

func (p amqpParser) Inspect(t Transport, dir Direction, data []byte, d *Detail) Verdict {
	if t != TCP {
		return NoMatch
	}
	data = data[:min(len(data), MaxInspect)] // what is judged at MaxInspect stays judged
	switch amqpHeader(data) {
	case NeedMore:
		return NeedMore
	case NoMatch:
		if dir == FromServer {
			return p.inspectStart(data, d)
		}
		return NoMatch
	}
	if dir == FromServer || !amqp091(data) {
		// A server sends a header only to refuse the client's version; AMQP 1.0 names
		// its virtual host much later.
		return Match
	}
	return p.inspectLogin(data, d)
}

// amqp091 reports whether the header opening data announces 0-9-1 or one of the
// versions RabbitMQ serves as 0-9-1 (0-9, 0-8) rather than AMQP 1.0 ("AMQP" id 1 0 0).
func amqp091(data []byte) bool { return data[4] == 1 || data[5] == 0 }

// amqpHeader judges data against the protocol headers.
func amqpHeader(data []byte) Verdict {
	n := min(len(data), amqpHeaderLen)
	for _, h := range amqpHeaders {
		if string(data[:n]) == h[:n] {
			if n < amqpHeaderLen {
				return NeedMore
			}
			return Match
		}
	}
	return NoMatch
}

// inspectStart reads the server's Connection.Start: version-major 0, version-minor 9,
// the server properties, the mechanisms and the locales.
func (amqpParser) inspectStart(data []byte, d *Detail) Verdict {
	payload, v := amqpMethod(data, amqpMethodStart)
	if v != Match {
		return v
	}
	if len(payload) < 2+4 || payload[0] != 0 || payload[1] != 9 {
		return NoMatch
	}
	props := payload[2:]
	size := int(binary.BigEndian.Uint32(props))
	if 4+size+4 > len(props) {
		return NoMatch
	}
	// The frame, class, method and version settle it; a property table this parser
	// cannot read only loses the version.
	var product, version []byte
	table := props[4 : 4+size]
	for i := 0; i < len(table); {
		name, typ, value, next, ok := amqpField(table, i)
		if !ok || typ == 'F' && !amqpTableOK(value, 1) {
			product, version = nil, nil
			break
		}
		if typ == 'S' {
			switch string(name) {
			case "product":
				product = value
			case "version":
				version = value
			}
		}
		i = next
	}
	switch {
	case len(product) > 0 && len(version) > 0:
		d.Version = printableJoin(product, ' ', version)
	case len(version) > 0:
		d.Version = printable(version, appMaxText)
	}
	return Match
}

// inspectLogin reads what a 0-9-1 client sends after its header: Connection.Start-Ok,
// whose PLAIN response "\x00user\x00password" names the user, Tune-Ok, then
// Connection.Open, which names the virtual host. The header settles the protocol, but
// the user and the virtual host come only after the server has spoken twice: until
// Open is seen, well-formed frames are NeedMore. A malformed frame, or MaxInspect
// bytes, settle it with what was read.
func (amqpParser) inspectLogin(data []byte, d *Detail) Verdict {
	var user, vhost []byte
	open := false
	for rest := data[amqpHeaderLen:]; len(rest) > 0 && !open; {
		frame, next, v := amqpFrame(rest)
		if v == NeedMore && len(data) < MaxInspect {
			return NeedMore
		}
		if v != Match {
			break
		}
		rest = rest[next:]
		if frame[0] != amqpFrameMethod || len(frame) < 7+4 ||
			binary.BigEndian.Uint16(frame[7:]) != amqpClassConn {
			continue
		}
		args := frame[7+4:]
		switch binary.BigEndian.Uint16(frame[9:]) {
		case amqpMethodStartOk:
			user = amqpStartOkUser(args)
		case amqpMethodOpen:
			vhost, _, _ = amqpShortString(args, 0)
			open = true
		}
	}
	if !open && len(data) < MaxInspect && amqpFramesOK(data[amqpHeaderLen:]) {
		return NeedMore
	}
	if len(user) > 0 {
		d.User = printable(user, appMaxText)
	}
	if len(vhost) > 0 {
		d.Database = printable(vhost, appMaxText)
	}
	return Match
}

// amqpFramesOK reports whether b is a run of whole, well-formed frames.
func amqpFramesOK(b []byte) bool {
	for len(b) > 0 {
		_, next, v := amqpFrame(b)
		if v != Match {
			return false
		}
		b = b[next:]
	}
	return true
}

// amqpStartOkUser returns the user that the arguments of Connection.Start-Ok name:
// client-properties (a table), mechanism (short string), response (long string). Only
// PLAIN is read.
func amqpStartOkUser(args []byte) []byte {
	if len(args) < 4 {
		return nil
	}
	at := 4 + int(binary.BigEndian.Uint32(args))
	mech, at, ok := amqpShortString(args, at)
	if !ok || string(mech) != "PLAIN" || at+4 > len(args) {
		return nil
	}
	n := int(binary.BigEndian.Uint32(args[at:]))
	if n > len(args)-at-4 {
		return nil
	}
	return amqpPlainUser(args[at+4 : at+4+n])
}

// amqpPlainUser returns the authentication identity of a SASL PLAIN response,
// "authzid\x00authcid\x00password", leaving the password unread.
func amqpPlainUser(resp []byte) []byte {
	first := -1
	for i, c := range resp {
		if c == 0 {
			if first >= 0 {
				return resp[first+1 : i]
			}
			first = i
		}
	}
	return nil
}

// amqpMethod returns the arguments of the Connection method frame at the start of data.
func amqpMethod(data []byte, method uint16) ([]byte, Verdict) {
	// type, channel 0, size, then class and method
	want := [...]byte{amqpFrameMethod, 0, 0}
	for i := 0; i < len(data) && i < len(want); i++ {
		if data[i] != want[i] {
			return nil, NoMatch
		}
	}
	if len(data) >= 7 {
		size := binary.BigEndian.Uint32(data[3:])
		if size < 4 || size > amqpMaxFrame {
			return nil, NoMatch
		}
	}
	if len(data) >= 9 && binary.BigEndian.Uint16(data[7:]) != amqpClassConn {
		return nil, NoMatch
	}
	if len(data) >= 11 && binary.BigEndian.Uint16(data[9:]) != method {
		return nil, NoMatch
	}
	frame, _, v := amqpFrame(data)
	if v != Match {
		return nil, v
	}
	return frame[11:], Match
}

// amqpFrame returns the frame at the start of data without its end octet, and the index
// after it.
func amqpFrame(data []byte) ([]byte, int, Verdict) {
	if len(data) > 0 && data[0] != amqpFrameMethod && data[0] != 2 && data[0] != 3 && data[0] != 8 {
		return nil, 0, NoMatch // not a method, content header, body or heartbeat frame
	}
	if len(data) < 7 {
		return nil, 0, NeedMore
	}
	size := int(binary.BigEndian.Uint32(data[3:]))
	if size > amqpMaxFrame {
		return nil, 0, NoMatch
	}
	end := 7 + size
	if len(data) <= end {
		return nil, 0, NeedMore
	}
	if data[end] != amqpFrameEnd {
		return nil, 0, NoMatch
	}
	return data[:end], end + 1, Match
}

// amqpShortString reads a short string (length octet, bytes) at b[i:].
func amqpShortString(b []byte, i int) ([]byte, int, bool) {
	if i < 0 || i >= len(b) {
		return nil, i, false
	}
	end := i + 1 + int(b[i])
	if end > len(b) {
		return nil, i, false
	}
	return b[i+1 : end], end, true
}

// amqpTableOK reports whether b is a well-formed field table (without its size).
func amqpTableOK(b []byte, depth int) bool {
	for i := 0; i < len(b); {
		_, typ, value, next, ok := amqpField(b, i)
		if !ok || typ == 'F' && (depth >= amqpMaxTableDepth || !amqpTableOK(value, depth+1)) {
			return false
		}
		i = next
	}
	return true
}

// amqpField reads the field of a table at b[i:]: its name, type and value, and the
// index after it. Field types are those of RabbitMQ's errata to 0-9-1.
func amqpField(b []byte, i int) (name []byte, typ byte, value []byte, next int, ok bool) {
	name, i, ok = amqpShortString(b, i)
	if !ok || len(name) == 0 || i >= len(b) {
		return nil, 0, nil, 0, false
	}
	typ = b[i]
	i++
	var n int
	switch typ {
	case 'V':
		n = 0
	case 't', 'b', 'B':
		n = 1
	case 's', 'u':
		n = 2
	case 'I', 'i', 'f':
		n = 4
	case 'D':
		n = 5
	case 'l', 'd', 'T':
		n = 8
	case 'S', 'x', 'A', 'F':
		if i+4 > len(b) {
			return nil, 0, nil, 0, false
		}
		n = int(binary.BigEndian.Uint32(b[i:]))
		i += 4
	default:
		return nil, 0, nil, 0, false
	}
	if n > len(b)-i {
		return nil, 0, nil, 0, false
	}
	return name, typ, b[i : i+n], i + n, true
}
