package dpi

import "encoding/binary"

// NewMongoDB returns the parser of the MongoDB wire protocol (also spoken by FerretDB,
// Amazon DocumentDB and Azure Cosmos DB for MongoDB).
//
// Every message opens with a 16-byte header: length, request id, the id of the request
// it answers, and an opcode. A client's first message is a request (it answers nothing)
// in OP_MSG, OP_QUERY or OP_COMPRESSED. Command is the first key of the command
// document ("hello", "isMaster", "find", ...) when it can be read, else the opcode's
// name; Database is the command's "$db" (OP_MSG) or the part of the collection name
// before the dot (OP_QUERY). A server's first message answers a request, in OP_MSG or
// OP_REPLY, with a document.
//
// The parser holds no state and is safe for concurrent use.
func NewMongoDB() Parser { return mongoParser{} }

type mongoParser struct{}

func (mongoParser) App() App { return MongoDB }

// Opcodes and limits, from the MongoDB Wire Protocol reference.
const (
	mongoOpReply      = 1
	mongoOpQuery      = 2004
	mongoOpCompressed = 2012
	mongoOpMsg        = 2013
	mongoHeaderLen    = 16
	mongoMaxMessage   = 48000000 // maxMessageSizeBytes
	mongoMaxName      = 255      // a full collection name; command names are far shorter
	// OP_MSG flag bits: checksumPresent, moreToCome, exhaustAllowed; the others are
	// reserved and must be zero.
	mongoMsgFlags = 1<<0 | 1<<1 | 1<<16
	// OP_QUERY flags use bits 1 to 7; bit 0 is reserved.
	mongoQueryFlags = 0xfe
	// OP_REPLY flags use bits 0 to 3.
	mongoReplyFlags = 0x0f
)

func (p mongoParser) Inspect(t Transport, dir Direction, data []byte, d *Detail) Verdict {
	if t != TCP {
		return NoMatch
	}
	if len(data) >= 4 && !mongoLengthOK(data) {
		return NoMatch
	}
	// A request answers nothing (responseTo 0); a reply answers a request.
	if len(data) >= 12 && (binary.LittleEndian.Uint32(data[8:]) == 0) != (dir == FromClient) {
		return NoMatch
	}
	if len(data) < mongoHeaderLen {
		return NeedMore
	}
	length := int(binary.LittleEndian.Uint32(data))
	op := binary.LittleEndian.Uint32(data[12:])
	body := data[mongoHeaderLen:min(len(data), length)]
	bodyLen := length - mongoHeaderLen
	if dir == FromClient {
		switch op {
		case mongoOpMsg:
			return p.inspectMsg(body, bodyLen, d)
		case mongoOpQuery:
			return p.inspectQuery(body, bodyLen, d)
		case mongoOpCompressed:
			return p.inspectCompressed(body, d)
		}
		return NoMatch
	}
	switch op {
	case mongoOpMsg:
		return p.inspectMsg(body, bodyLen, nil)
	case mongoOpReply:
		return p.inspectReply(body, bodyLen)
	case mongoOpCompressed:
		return p.inspectCompressed(body, nil)
	}
	return NoMatch
}

// mongoLengthOK checks the messageLength at the start of data: at least a header and an
// OP_MSG with an empty document (flags, kind, 5 bytes), at most maxMessageSizeBytes.
func mongoLengthOK(data []byte) bool {
	n := binary.LittleEndian.Uint32(data)
	return n >= mongoHeaderLen+10 && n <= mongoMaxMessage
}

// inspectMsg reads OP_MSG: flags, then sections; the first is the command document
// (kind 0) or a document sequence (kind 1). d is nil for a server's reply.
func (mongoParser) inspectMsg(body []byte, bodyLen int, d *Detail) Verdict {
	if len(body) < 5 {
		if len(body) >= 4 && binary.LittleEndian.Uint32(body)&^mongoMsgFlags != 0 {
			return NoMatch
		}
		return NeedMore
	}
	if binary.LittleEndian.Uint32(body)&^mongoMsgFlags != 0 {
		return NoMatch
	}
	switch body[4] {
	case 0:
		key, doc, v := mongoFirstKey(body[5:], bodyLen-5)
		if v != Match || d == nil {
			return v
		}
		d.Command = printable(key, appMaxText)
		if db := mongoStringField(doc, "$db"); len(db) > 0 {
			d.Database = printable(db, appMaxText)
		}
		return Match
	case 1:
		// size, then the sequence's identifier ("documents", ...)
		rest := body[5:]
		if len(rest) >= 4 {
			size := int(binary.LittleEndian.Uint32(rest))
			if size < 5 || size > bodyLen-5 {
				return NoMatch
			}
		}
		_, _, v := mongoCString(rest[min(4, len(rest)):], bodyLen-9)
		if v != Match || d == nil {
			return v
		}
		d.Command = "OP_MSG"
		return Match
	}
	return NoMatch
}

// inspectQuery reads OP_QUERY: flags, "db.collection", skip, limit, query document. The
// handshake of drivers that have not yet learned the server speaks OP_MSG is an
// OP_QUERY on "admin.$cmd".
func (mongoParser) inspectQuery(body []byte, bodyLen int, d *Detail) Verdict {
	if len(body) < 4 {
		return NeedMore
	}
	if binary.LittleEndian.Uint32(body)&^mongoQueryFlags != 0 {
		return NoMatch
	}
	coll, n, v := mongoCString(body[4:], bodyLen-4)
	if v != Match {
		return v
	}
	dot := -1
	for k, c := range coll {
		if c == '.' {
			dot = k
			break
		}
	}
	if dot < 1 || dot == len(coll)-1 {
		return NoMatch
	}
	at := 4 + n + 8 // numberToSkip, numberToReturn
	if at > bodyLen {
		return NoMatch
	}
	if at > len(body) {
		return NeedMore
	}
	key, _, v := mongoFirstKey(body[at:], bodyLen-at)
	if v != Match {
		return v
	}
	if string(coll[dot:]) == ".$cmd" {
		d.Command = printable(key, appMaxText)
	} else {
		d.Command = "OP_QUERY"
	}
	d.Database = printable(coll[:dot], appMaxText)
	return Match
}

// inspectReply reads OP_REPLY: flags, cursor id, starting from, number returned, then
// the documents.
func (mongoParser) inspectReply(body []byte, bodyLen int) Verdict {
	if len(body) >= 4 && binary.LittleEndian.Uint32(body)&^mongoReplyFlags != 0 {
		return NoMatch
	}
	if len(body) < 20 {
		if bodyLen < 20 {
			return NoMatch
		}
		return NeedMore
	}
	if int32(binary.LittleEndian.Uint32(body[16:])) < 0 {
		return NoMatch
	}
	if bodyLen == 20 {
		return Match // no document
	}
	_, _, v := mongoFirstKey(body[20:], bodyLen-20)
	return v
}

// inspectCompressed reads OP_COMPRESSED: the original opcode, its size and a compressor
// id. A compressed message carries no readable command. d is nil for a reply.
func (mongoParser) inspectCompressed(body []byte, d *Detail) Verdict {
	if len(body) >= 4 {
		switch binary.LittleEndian.Uint32(body) {
		case mongoOpMsg, mongoOpQuery, mongoOpReply:
		default:
			return NoMatch
		}
	}
	if len(body) >= 8 && binary.LittleEndian.Uint32(body[4:]) > mongoMaxMessage {
		return NoMatch
	}
	if len(body) < 9 {
		return NeedMore
	}
	if body[8] > 3 { // noop, snappy, zlib, zstd
		return NoMatch
	}
	if d != nil {
		d.Command = "OP_COMPRESSED"
	}
	return Match
}

// mongoFirstKey checks the start of a BSON document at b (limit bytes of which belong to
// the message) and returns its first key and the part of the document that is there.
func mongoFirstKey(b []byte, limit int) ([]byte, []byte, Verdict) {
	if limit < 5 {
		return nil, nil, NoMatch // no room for a document
	}
	if len(b) >= 4 {
		size := int(binary.LittleEndian.Uint32(b))
		if size < 5 || size > limit {
			return nil, nil, NoMatch
		}
		if len(b) > size {
			b = b[:size]
		}
		limit = size
	}
	if len(b) < 5 {
		return nil, nil, NeedMore
	}
	if b[4] == 0 || !mongoKnownType(b[4]) {
		// An empty document names no command.
		return nil, nil, NoMatch
	}
	key, _, v := mongoCString(b[5:], limit-5)
	if v != Match || len(key) == 0 {
		if v == Match {
			v = NoMatch
		}
		return nil, nil, v
	}
	return key, b, Match
}

// mongoStringField returns the value of the string element named name among the
// elements of doc that are there, or nil.
func mongoStringField(doc []byte, name string) []byte {
	for i := 4; i < len(doc) && doc[i] != 0; {
		typ := doc[i]
		key, n, v := mongoCString(doc[i+1:], len(doc)-i-1)
		if v != Match {
			return nil
		}
		at := i + 1 + n
		if typ == 0x02 && string(key) == name {
			if at+4 > len(doc) {
				return nil
			}
			l := int(binary.LittleEndian.Uint32(doc[at:]))
			if l < 1 || at+4+l > len(doc) || doc[at+4+l-1] != 0 {
				return nil
			}
			return doc[at+4 : at+4+l-1]
		}
		size := mongoValueSize(typ, doc[at:])
		if size < 0 {
			return nil
		}
		i = at + size
	}
	return nil
}

// mongoValueSize returns how many bytes a BSON value of type typ at b takes, or -1 when
// it cannot tell from b.
func mongoValueSize(typ byte, b []byte) int {
	var n int
	switch typ {
	case 0x06, 0x0a, 0x7f, 0xff: // undefined, null, max key, min key
		return 0
	case 0x08: // bool
		n = 1
	case 0x10: // int32
		n = 4
	case 0x01, 0x09, 0x11, 0x12: // double, datetime, timestamp, int64
		n = 8
	case 0x07: // ObjectId
		n = 12
	case 0x13: // decimal128
		n = 16
	case 0x02, 0x0d, 0x0e: // string, JavaScript, symbol: length, bytes
		if len(b) < 4 {
			return -1
		}
		n = 4 + int(binary.LittleEndian.Uint32(b))
	case 0x03, 0x04, 0x0f: // document, array, code with scope: total length
		if len(b) < 4 {
			return -1
		}
		n = int(binary.LittleEndian.Uint32(b))
	case 0x05: // binary: length, subtype, bytes
		if len(b) < 4 {
			return -1
		}
		n = 5 + int(binary.LittleEndian.Uint32(b))
	default:
		// regex and DBPointer do not appear in the commands this looks for
		return -1
	}
	if n < 0 || n > len(b) {
		return -1
	}
	return n
}

func mongoKnownType(t byte) bool {
	return t >= 0x01 && t <= 0x13 || t == 0x7f || t == 0xff
}

// mongoCString reads a NUL-terminated printable name from b, of which limit bytes
// belong to the message; it returns the name and the index after its NUL.
func mongoCString(b []byte, limit int) ([]byte, int, Verdict) {
	for k := 0; k < len(b) && k < limit; k++ {
		if b[k] == 0 {
			return b[:k], k + 1, Match
		}
		if b[k] < ' ' || b[k] == 0x7f || k >= mongoMaxName {
			return nil, 0, NoMatch
		}
	}
	if len(b) >= limit {
		return nil, 0, NoMatch
	}
	return nil, 0, NeedMore
}
