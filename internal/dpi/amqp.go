package dpi

import "encoding/binary"

// NewAMQP returns the parser of AMQP: 0-9-1 (RabbitMQ, LavinMQ, Qpid), and the 0-8, 0-9
// and 1.0 headers that open the older and newer versions.
//
// The client speaks first, with an 8-byte protocol header: "AMQP" and the version
// ("AMQP\x00\x00\x09\x01" for 0-9-1). After it, a 0-9-1 client's Connection.Start-Ok
// names the user (PLAIN mechanism) and its Connection.Open the virtual host, which are
// recorded as User and Database when they are among the bytes seen. The server answers
// with Connection.Start, whose "product" and "version" properties give Version, or
// with the header of the version it would speak instead.
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
	if v := amqpHeader(data); v != NoMatch {
		if v == Match && dir == FromClient {
			p.readClientFrames(data[amqpHeaderLen:], d)
		}
		return v
	}
	if dir == FromServer {
		return p.inspectStart(data, d)
	}
	return NoMatch
}

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
	var product, version []byte
	table := props[4 : 4+size]
	for i := 0; i < len(table); {
		name, typ, value, next, ok := amqpField(table, i)
		if !ok || typ == 'F' && !amqpTableOK(value, 1) {
			return NoMatch
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

// readClientFrames reads, best effort, the frames a 0-9-1 client sends after its header:
// Connection.Start-Ok (the PLAIN response "\x00user\x00password" names the user) and,
// after Tune-Ok, Connection.Open (the virtual host).
func (amqpParser) readClientFrames(data []byte, d *Detail) {
	for len(data) > 0 {
		frame, next, v := amqpFrame(data)
		if v != Match {
			return
		}
		data = data[next:]
		if frame[0] != amqpFrameMethod || len(frame) < 7+4 ||
			binary.BigEndian.Uint16(frame[7:]) != amqpClassConn {
			continue
		}
		args := frame[7+4:]
		switch binary.BigEndian.Uint16(frame[9:]) {
		case amqpMethodStartOk:
			// client-properties (table), mechanism (shortstr), response (longstr)
			if len(args) < 4 {
				return
			}
			at := 4 + int(binary.BigEndian.Uint32(args))
			mech, at, ok := amqpShortString(args, at)
			if !ok || string(mech) != "PLAIN" || at+4 > len(args) {
				return
			}
			n := int(binary.BigEndian.Uint32(args[at:]))
			if at+4+n > len(args) {
				return
			}
			if user := amqpPlainUser(args[at+4 : at+4+n]); len(user) > 0 {
				d.User = printable(user, appMaxText)
			}
		case amqpMethodOpen:
			if vhost, _, ok := amqpShortString(args, 0); ok && len(vhost) > 0 {
				d.Database = printable(vhost, appMaxText)
			}
			return
		}
	}
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
