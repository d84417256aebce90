package dpi_test

import (
	"encoding/binary"
	"testing"

	"github.com/vigil-sec/vigil/internal/dpi"
)

// bsonDoc builds a BSON document of string elements, name and value in turn.
func bsonDoc(kv ...string) string {
	var body []byte
	for i := 0; i+1 < len(kv); i += 2 {
		body = append(body, 0x02)
		body = append(append(body, kv[i]...), 0)
		body = binary.LittleEndian.AppendUint32(body, uint32(len(kv[i+1])+1))
		body = append(append(body, kv[i+1]...), 0)
	}
	body = append(body, 0)
	return string(binary.LittleEndian.AppendUint32(nil, uint32(4+len(body)))) + string(body)
}

// mongoMessage frames body with a wire protocol header.
func mongoMessage(requestID, responseTo, op uint32, body string) string {
	h := binary.LittleEndian.AppendUint32(nil, uint32(16+len(body)))
	h = binary.LittleEndian.AppendUint32(h, requestID)
	h = binary.LittleEndian.AppendUint32(h, responseTo)
	h = binary.LittleEndian.AppendUint32(h, op)
	return string(h) + body
}

func TestMongoDB(t *testing.T) {
	c, s := dpi.FromClient, dpi.FromServer
	find := "\x00\x00\x00\x00\x00" + bsonDoc("find", "orders", "$db", "shop")
	appRunCases(t, dpi.NewMongoDB(), []appCase{
		{name: "op_msg find", dir: c, data: mongoMessage(7, 0, 2013, find), want: dpi.Match, detail: dpi.Detail{Command: "find", Database: "shop"}},
		{name: "op_msg with checksum flag", dir: c, data: mongoMessage(7, 0, 2013, "\x01\x00\x00\x00\x00"+bsonDoc("ping", "x", "$db", "admin")+"\x00\x00\x00\x00"), want: dpi.Match, detail: dpi.Detail{Command: "ping", Database: "admin"}},
		{name: "op_msg reserved flag", dir: c, data: mongoMessage(7, 0, 2013, "\x04\x00\x00\x00\x00"+bsonDoc("find", "x")), want: dpi.NoMatch},
		{name: "op_msg answering", dir: c, data: mongoMessage(7, 3, 2013, find), want: dpi.NoMatch},
		{name: "op_msg section kind 2", dir: c, data: mongoMessage(7, 0, 2013, "\x00\x00\x00\x00\x02"+bsonDoc("find", "x")), want: dpi.NoMatch},
		{name: "op_msg document sequence", dir: c, data: mongoMessage(7, 0, 2013, "\x00\x00\x00\x00\x01\x0e\x00\x00\x00documents\x00"), want: dpi.Match, detail: dpi.Detail{Command: "OP_MSG"}},
		{name: "op_msg document past message", dir: c, data: mongoMessage(7, 0, 2013, "\x00\x00\x00\x00\x00\xff\x00\x00\x00\x02find\x00"), want: dpi.NoMatch},
		{name: "op_msg empty document", dir: c, data: mongoMessage(7, 0, 2013, "\x00\x00\x00\x00\x00\x05\x00\x00\x00\x00"), want: dpi.NoMatch},
		{name: "op_msg unknown element type", dir: c, data: mongoMessage(7, 0, 2013, "\x00\x00\x00\x00\x00\x0c\x00\x00\x00\x42find\x00\x00\x00"), want: dpi.NoMatch},
		{name: "op_query on a collection", dir: c, data: mongoMessage(1, 0, 2004, "\x00\x00\x00\x00shop.orders\x00\x00\x00\x00\x00\x01\x00\x00\x00"+bsonDoc("status", "new")), want: dpi.Match, detail: dpi.Detail{Command: "OP_QUERY", Database: "shop"}},
		{name: "op_query without a dot", dir: c, data: mongoMessage(1, 0, 2004, "\x00\x00\x00\x00admin\x00\x00\x00\x00\x00\x01\x00\x00\x00"+bsonDoc("isMaster", "1")), want: dpi.NoMatch},
		{name: "op_compressed", dir: c, data: mongoMessage(9, 0, 2012, "\xdd\x07\x00\x00\x40\x00\x00\x00\x02compressed"), want: dpi.Match, detail: dpi.Detail{Command: "OP_COMPRESSED"}},
		{name: "op_compressed unknown compressor", dir: c, data: mongoMessage(9, 0, 2012, "\xdd\x07\x00\x00\x40\x00\x00\x00\x09compressed"), want: dpi.NoMatch},
		{name: "removed opcode", dir: c, data: mongoMessage(7, 0, 2010, find), want: dpi.NoMatch},
		{name: "length oversized", dir: c, data: "\xff\xff\xff\x7f\x07\x00\x00\x00\x00\x00\x00\x00\xdd\x07\x00\x00", want: dpi.NoMatch},
		{name: "length too small", dir: c, data: "\x0a\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\xdd\x07\x00\x00", want: dpi.NoMatch},
		{name: "over UDP", dir: c, data: mongoMessage(7, 0, 2013, find), want: dpi.NoMatch, udp: true},

		{name: "op_msg reply", dir: s, data: mongoMessage(40, 7, 2013, "\x00\x00\x00\x00\x00"+bsonDoc("ok", "1")), want: dpi.Match},
		{name: "reply answering nothing", dir: s, data: mongoMessage(40, 0, 2013, "\x00\x00\x00\x00\x00"+bsonDoc("ok", "1")), want: dpi.NoMatch},
		{name: "op_reply", dir: s, data: mongoMessage(40, 1, 1, "\x08\x00\x00\x00"+"\x00\x00\x00\x00\x00\x00\x00\x00"+"\x00\x00\x00\x00"+"\x01\x00\x00\x00"+bsonDoc("ismaster", "1")), want: dpi.Match},
		{name: "op_reply bad flags", dir: s, data: mongoMessage(40, 1, 1, "\x00\x01\x00\x00"+"\x00\x00\x00\x00\x00\x00\x00\x00"+"\x00\x00\x00\x00"+"\x01\x00\x00\x00"+bsonDoc("ismaster", "1")), want: dpi.NoMatch},
	})
}
