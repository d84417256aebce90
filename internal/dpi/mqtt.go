package dpi

import (
	"encoding/binary"
	"unicode/utf8"
)

// NewMQTT returns the parser of MQTT 3.1 ("MQIsdp", level 3), 3.1.1 (level 4) and 5.
//
// The client speaks first, with a CONNECT packet: fixed header 0x10, the remaining
// length, the protocol name and level, connect flags that obey the specification, the
// keep-alive, (MQTT 5) the properties, and the client identifier, recorded as User. The
// server's CONNACK is four bytes that could be many things, so from the server a
// well-formed CONNACK is NeedMore and never a match.
//
// The parser holds no state and is safe for concurrent use.
func NewMQTT() Parser { return mqttParser{} }

type mqttParser struct{}

func (mqttParser) App() App { return MQTT }

const (
	mqttConnect     = 0x10
	mqttConnack     = 0x20
	mqttAuth        = 0xf0 // MQTT 5 enhanced authentication, which may precede CONNACK
	mqttBridgeBit   = 0x80 // set on the level by Mosquitto and other bridges
	mqttMaxClientID = 1024 // 23 bytes are guaranteed, brokers accept more
	mqttMaxConnack  = 1024 // a CONNACK with MQTT 5 properties
	mqttMaxRemain   = 268435455
)

func (p mqttParser) Inspect(t Transport, dir Direction, data []byte, d *Detail) Verdict {
	if t != TCP {
		return NoMatch
	}
	data = data[:min(len(data), MaxInspect)] // what is judged at MaxInspect stays judged
	if len(data) == 0 {
		return NeedMore
	}
	if dir == FromServer {
		return p.inspectConnack(data)
	}
	v := p.inspectConnect(data, d)
	if v == NeedMore && len(data) >= MaxInspect {
		// Properties longer than what is inspected: the header has said enough.
		return Match
	}
	return v
}

// inspectConnect reads a CONNECT packet up to the client identifier.
func (mqttParser) inspectConnect(data []byte, d *Detail) Verdict {
	if data[0] != mqttConnect {
		return NoMatch
	}
	remain, at, v := mqttVarint(data, 1)
	if v != Match {
		return v
	}
	if remain < 12 {
		return NoMatch
	}
	end := at + remain // where the packet ends
	// Protocol name and level.
	var level byte
	switch {
	case mqttHasPrefix(data[at:], "\x00\x04MQTT"):
		at += 6
		level = 4
	case mqttHasPrefix(data[at:], "\x00\x06MQIsdp"):
		at += 8
		level = 3
	case len(data)-at < 8 && (mqttIsPrefix(data[at:], "\x00\x04MQTT") || mqttIsPrefix(data[at:], "\x00\x06MQIsdp")):
		return NeedMore
	default:
		return NoMatch
	}
	if len(data) < at+4 {
		if len(data) > at && !mqttLevelOK(data[at], level) {
			return NoMatch
		}
		if len(data) > at+1 && !mqttFlagsOK(data[at+1], data[at]&^mqttBridgeBit) {
			return NoMatch
		}
		return NeedMore
	}
	if !mqttLevelOK(data[at], level) || !mqttFlagsOK(data[at+1], data[at]&^mqttBridgeBit) {
		return NoMatch
	}
	version := data[at] &^ mqttBridgeBit
	at += 4 // level, flags, keep-alive
	if version == 5 {
		props, next, v := mqttVarint(data, at)
		if v != Match {
			return v
		}
		at = next + props
		if at > end {
			return NoMatch
		}
	}
	// Client identifier.
	if at+2 > end {
		return NoMatch
	}
	if len(data) < at+2 {
		return NeedMore
	}
	n := int(binary.BigEndian.Uint16(data[at:]))
	at += 2
	if n > mqttMaxClientID || at+n > end {
		return NoMatch
	}
	id := data[at:min(at+n, len(data))]
	for _, c := range id {
		if c < ' ' || c == 0x7f {
			return NoMatch
		}
	}
	if len(id) < n {
		return NeedMore
	}
	if !utf8.Valid(id) {
		return NoMatch
	}
	if n > 0 {
		d.User = printable(id, appMaxText)
	}
	return Match
}

// inspectConnack judges a CONNACK (or an MQTT 5 AUTH), which is never distinct enough
// to match.
func (mqttParser) inspectConnack(data []byte) Verdict {
	if data[0] != mqttConnack && data[0] != mqttAuth {
		return NoMatch
	}
	remain, at, v := mqttVarint(data, 1)
	if v != Match {
		return v
	}
	if remain < 2 || remain > mqttMaxConnack {
		if data[0] == mqttAuth && remain == 0 {
			return NeedMore
		}
		return NoMatch
	}
	if data[0] == mqttConnack && len(data) > at {
		if data[at] > 1 { // session present
			return NoMatch
		}
		if len(data) > at+1 {
			code := data[at+1]
			// 3.1 and 3.1.1 return codes are 0 to 5, MQTT 5 reason codes 0 or 0x80 and up.
			if code > 5 && code < 0x80 || code > 0x9f {
				return NoMatch
			}
		}
	}
	return NeedMore
}

// mqttVarint reads a remaining-length or property-length integer at data[i:]: up to four
// bytes, seven bits each, least significant first, in the fewest bytes.
func mqttVarint(data []byte, i int) (int, int, Verdict) {
	n, shift := 0, 0
	for k := 0; k < 4; k++ {
		if i+k >= len(data) {
			return 0, 0, NeedMore
		}
		c := data[i+k]
		n |= int(c&0x7f) << shift
		if c&0x80 == 0 {
			if k > 0 && c == 0 {
				return 0, 0, NoMatch // not the shortest form
			}
			return n, i + k + 1, Match
		}
		shift += 7
	}
	return 0, 0, NoMatch
}

// mqttLevelOK checks the protocol level against the protocol name: "MQIsdp" is 3,
// "MQTT" is 4 or 5.
func mqttLevelOK(level, nameLevel byte) bool {
	level &^= mqttBridgeBit
	if nameLevel == 3 {
		return level == 3
	}
	return level == 4 || level == 5
}

// mqttFlagsOK checks the connect flags: the reserved bit is zero, will QoS and retain
// are zero without a will, will QoS is not 3, and before MQTT 5 a password needs a user
// name.
func mqttFlagsOK(flags, level byte) bool {
	const (
		reserved = 0x01
		will     = 0x04
		willQoS  = 0x18
		retain   = 0x20
		password = 0x40
		username = 0x80
	)
	switch {
	case flags&reserved != 0,
		flags&will == 0 && flags&(willQoS|retain) != 0,
		flags&willQoS == willQoS,
		level < 5 && flags&password != 0 && flags&username == 0:
		return false
	}
	return true
}

func mqttHasPrefix(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

func mqttIsPrefix(b []byte, p string) bool {
	return len(b) <= len(p) && string(b) == p[:len(b)]
}
