package dpi_test

import (
	"encoding/binary"
	"testing"

	"github.com/vigil-sec/vigil/internal/dpi"
)

// amqpMethodFrame is a method frame on channel: class, method, arguments, frame end.
func amqpMethodFrame(channel uint16, class, method uint16, args string) string {
	payload := binary.BigEndian.AppendUint16(nil, class)
	payload = binary.BigEndian.AppendUint16(payload, method)
	payload = append(payload, args...)
	f := binary.BigEndian.AppendUint16([]byte{1}, channel)
	f = binary.BigEndian.AppendUint32(f, uint32(len(payload)))
	return string(f) + string(payload) + "\xce"
}

// amqpTable is a field table of long-string fields, with its size.
func amqpTable(kv ...string) string {
	var b []byte
	for i := 0; i+1 < len(kv); i += 2 {
		b = append(append(append(b, byte(len(kv[i]))), kv[i]...), 'S')
		b = binary.BigEndian.AppendUint32(b, uint32(len(kv[i+1])))
		b = append(b, kv[i+1]...)
	}
	return string(binary.BigEndian.AppendUint32(nil, uint32(len(b)))) + string(b)
}

func amqpLongString(s string) string {
	return string(binary.BigEndian.AppendUint32(nil, uint32(len(s)))) + s
}

func TestAMQP(t *testing.T) {
	c, s := dpi.FromClient, dpi.FromServer
	start := func(major, minor byte, props string) string {
		return amqpMethodFrame(0, 10, 10, string([]byte{major, minor})+props+amqpLongString("PLAIN AMQPLAIN")+amqpLongString("en_US"))
	}
	startOk := amqpMethodFrame(0, 10, 11, amqpTable("product", "pika")+"\x05PLAIN"+amqpLongString("\x00orders-svc\x00s3cret")+"\x05en_US")
	tuneOk := amqpMethodFrame(0, 10, 31, "\x07\xff\x00\x02\x00\x00\x00\x3c")
	open := amqpMethodFrame(0, 10, 40, "\x06orders\x00\x00")
	noEnd := start(0, 9, amqpTable())
	noEnd = noEnd[:len(noEnd)-1] + "\x00"
	appRunCases(t, dpi.NewAMQP(), []appCase{
		{name: "0-9-1 header", dir: c, data: "AMQP\x00\x00\x09\x01", want: dpi.NeedMore}, // the server speaks
		{name: "0-9 header", dir: c, data: "AMQP\x01\x01\x00\x09", want: dpi.NeedMore},
		{name: "1.0 header", dir: c, data: "AMQP\x00\x01\x00\x00", want: dpi.Match},
		{name: "1.0 tls header", dir: c, data: "AMQP\x02\x01\x00\x00", want: dpi.Match},
		{name: "1.0 sasl header", dir: c, data: "AMQP\x03\x01\x00\x00", want: dpi.Match},
		{name: "header then start-ok", dir: c, data: "AMQP\x00\x00\x09\x01" + startOk, want: dpi.NeedMore},
		{name: "header then frame cut", dir: c, data: "AMQP\x00\x00\x09\x01" + startOk[:20], want: dpi.NeedMore},
		{name: "header then junk", dir: c, data: "AMQP\x00\x00\x09\x01GET / HTTP/1.1\r\n", want: dpi.Match},
		{name: "header then oversized frame", dir: c, data: "AMQP\x00\x00\x09\x01\x01\x00\x00\x7f\xff\xff\xff", want: dpi.Match},
		{name: "unknown version", dir: c, data: "AMQP\x00\x00\x09\x02", want: dpi.NoMatch},
		{name: "header cut", dir: c, data: "AMQ", want: dpi.NeedMore},
		{name: "not amqp", dir: c, data: "AMQX", want: dpi.NoMatch},
		{name: "header then login", dir: c, data: "AMQP\x00\x00\x09\x01" + startOk + tuneOk + open, want: dpi.Match, detail: dpi.Detail{User: "orders-svc", Database: "orders"}},
		{name: "login with broken frame", dir: c, data: "AMQP\x00\x00\x09\x01" + startOk[:len(startOk)-1] + "X", want: dpi.Match},
		{name: "over UDP", dir: c, data: "AMQP\x00\x00\x09\x01", want: dpi.NoMatch, udp: true},

		{name: "start", dir: s, data: start(0, 9, amqpTable("product", "LavinMQ", "version", "1.2.3")), want: dpi.Match, detail: dpi.Detail{Version: "LavinMQ 1.2.3"}},
		{name: "start without product", dir: s, data: start(0, 9, amqpTable("version", "3.12.0")), want: dpi.Match, detail: dpi.Detail{Version: "3.12.0"}},
		{name: "start 0-8", dir: s, data: start(8, 0, amqpTable("product", "x")), want: dpi.NoMatch},
		{name: "start unreadable table", dir: s, data: start(0, 9, "\x00\x00\x00\x05\x03abc?"), want: dpi.Match},
		{name: "start on channel 1", dir: s, data: amqpMethodFrame(1, 10, 10, "\x00\x09"+amqpTable()), want: dpi.NoMatch},
		{name: "start without frame end", dir: s, data: noEnd, want: dpi.NoMatch},
		{name: "frame oversized", dir: s, data: "\x01\x00\x00\x7f\xff\xff\xff\x00\x0a\x00\x0a", want: dpi.NoMatch},
		{name: "other method", dir: s, data: amqpMethodFrame(0, 10, 30, "\x07\xff\x00\x02\x00\x00\x00\x3c"), want: dpi.NoMatch},
		{name: "version refused", dir: s, data: "AMQP\x00\x00\x09\x01", want: dpi.Match},
	})
}
