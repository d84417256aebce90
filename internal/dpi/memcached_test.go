package dpi_test

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/dpi"
)

// memcachedBinary is a binary protocol header and body: magic, opcode, key length,
// extras length, data type, vbucket or status, total body, opaque, CAS.
func memcachedBinary(magic, op byte, extras, key, value string, status uint16) string {
	h := []byte{magic, op}
	h = binary.BigEndian.AppendUint16(h, uint16(len(key)))
	h = append(h, byte(len(extras)), 0)
	h = binary.BigEndian.AppendUint16(h, status)
	h = binary.BigEndian.AppendUint32(h, uint32(len(extras)+len(key)+len(value)))
	h = append(h, "\x00\x00\x00\x2a"+"\x00\x00\x00\x00\x00\x00\x00\x00"...)
	return string(h) + extras + key + value
}

func TestMemcached(t *testing.T) {
	c, s := dpi.FromClient, dpi.FromServer
	udp := "\x00\x01\x00\x00\x00\x01\x00\x00" // request 1, datagram 0 of 1
	appRunCases(t, dpi.NewMemcached(), []appCase{
		{name: "get", dir: c, data: "get foo\r\n", want: dpi.Match, detail: dpi.Detail{Command: "get"}},
		{name: "gets several", dir: c, data: "gets a b c\r\n", want: dpi.Match, detail: dpi.Detail{Command: "gets"}},
		{name: "get LF only", dir: c, data: "get foo\n", want: dpi.Match, detail: dpi.Detail{Command: "get"}},
		{name: "get first key read", dir: c, data: "get foo ", want: dpi.Match, detail: dpi.Detail{Command: "get"}},
		{name: "get long multi-get", dir: c, data: "get " + strings.Repeat("key ", 1000), want: dpi.Match, detail: dpi.Detail{Command: "get"}},
		{name: "get first key read, then junk", dir: c, data: "get 0 \x00", want: dpi.Match, detail: dpi.Detail{Command: "get"}}, // found by FuzzMemcached
		{name: "get key cut", dir: c, data: "get foo", want: dpi.NeedMore},
		{name: "get without key", dir: c, data: "get\r\n", want: dpi.NoMatch},
		{name: "get key oversized", dir: c, data: "get " + strings.Repeat("k", 251) + "\r\n", want: dpi.NoMatch},
		{name: "get with tab", dir: c, data: "get\tfoo\r\n", want: dpi.NoMatch},
		{name: "command prefix", dir: c, data: "ge", want: dpi.NeedMore},
		{name: "unknown command", dir: c, data: "getx foo\r\n", want: dpi.NoMatch},
		{name: "upper case", dir: c, data: "GET / HTTP/1.1\r\n", want: dpi.NoMatch},
		{name: "set", dir: c, data: "set k 0 0 5\r\nhello\r\n", want: dpi.Match, detail: dpi.Detail{Command: "set"}},
		{name: "set noreply", dir: c, data: "set k 0 0 5 noreply\r\n", want: dpi.Match, detail: dpi.Detail{Command: "set"}},
		{name: "set bad number", dir: c, data: "set k 0 0 five\r\n", want: dpi.NoMatch},
		{name: "set too few", dir: c, data: "set k 0 0\r\n", want: dpi.NoMatch},
		{name: "set bad noreply", dir: c, data: "set k 0 0 5 6\r\n", want: dpi.NoMatch},
		{name: "set too many", dir: c, data: "set k 0 0 5 noreply x\r\n", want: dpi.NoMatch},
		{name: "set line oversized", dir: c, data: "set " + strings.Repeat("k", 3000), want: dpi.NoMatch},
		{name: "cas", dir: c, data: "cas k 0 0 5 99\r\n", want: dpi.Match, detail: dpi.Detail{Command: "cas"}},
		{name: "delete", dir: c, data: "delete k\r\n", want: dpi.Match, detail: dpi.Detail{Command: "delete"}},
		{name: "incr", dir: c, data: "incr k 5\r\n", want: dpi.Match, detail: dpi.Detail{Command: "incr"}},
		{name: "touch negative", dir: c, data: "touch k -1\r\n", want: dpi.Match, detail: dpi.Detail{Command: "touch"}},
		{name: "stats", dir: c, data: "stats\r\n", want: dpi.Match, detail: dpi.Detail{Command: "stats"}},
		{name: "stats slabs", dir: c, data: "stats slabs\r\n", want: dpi.Match, detail: dpi.Detail{Command: "stats"}},
		{name: "version", dir: c, data: "version\r\n", want: dpi.Match, detail: dpi.Detail{Command: "version"}},
		{name: "version with argument", dir: c, data: "version x\r\n", want: dpi.NoMatch},
		{name: "version CR", dir: c, data: "version\r", want: dpi.NeedMore},
		{name: "version CR junk", dir: c, data: "version\rx", want: dpi.NoMatch},
		{name: "flush_all", dir: c, data: "flush_all\r\n", want: dpi.Match, detail: dpi.Detail{Command: "flush_all"}},
		{name: "verbosity", dir: c, data: "verbosity 1\r\n", want: dpi.Match, detail: dpi.Detail{Command: "verbosity"}},
		{name: "quit", dir: c, data: "quit\r\n", want: dpi.Match, detail: dpi.Detail{Command: "quit"}},
		{name: "meta get", dir: c, data: "mg foo v t\r\n", want: dpi.Match, detail: dpi.Detail{Command: "mg"}},
		{name: "meta set", dir: c, data: "ms foo 5 T30\r\nhello\r\n", want: dpi.Match, detail: dpi.Detail{Command: "ms"}},
		{name: "meta set bad length", dir: c, data: "ms foo five\r\n", want: dpi.NoMatch},
		{name: "meta delete", dir: c, data: "md foo q\r\n", want: dpi.Match, detail: dpi.Detail{Command: "md"}},
		{name: "meta noop", dir: c, data: "mn\r\n", want: dpi.Match, detail: dpi.Detail{Command: "mn"}},
		{name: "empty line", dir: c, data: "\r\n", want: dpi.NoMatch},

		{name: "binary get", dir: c, data: memcachedBinary(0x80, 0x00, "", "foo", "", 0), want: dpi.Match, detail: dpi.Detail{Command: "get"}},
		{name: "binary set", dir: c, data: memcachedBinary(0x80, 0x01, "\x00\x00\x00\x00\x00\x00\x0e\x10", "foo", "bar", 0), want: dpi.Match, detail: dpi.Detail{Command: "set"}},
		{name: "binary noop", dir: c, data: memcachedBinary(0x80, 0x0a, "", "", "", 0), want: dpi.Match, detail: dpi.Detail{Command: "noop"}},
		{name: "binary sasl auth", dir: c, data: memcachedBinary(0x80, 0x21, "", "PLAIN", "\x00u\x00p", 0), want: dpi.Match, detail: dpi.Detail{Command: "sasl_auth"}},
		{name: "binary get with extras", dir: c, data: memcachedBinary(0x80, 0x00, "\x00\x00\x00\x00", "foo", "", 0), want: dpi.NoMatch},
		{name: "binary get without key", dir: c, data: memcachedBinary(0x80, 0x00, "", "", "", 0), want: dpi.NoMatch},
		{name: "binary get with value", dir: c, data: memcachedBinary(0x80, 0x00, "", "foo", "x", 0), want: dpi.NoMatch},
		{name: "binary key oversized", dir: c, data: "\x80\x00\x01\x2c\x00\x00\x00\x00\x00\x00\x01\x2c", want: dpi.NoMatch},
		{name: "binary body oversized", dir: c, data: "\x80\x01\x00\x03\x08\x00\x00\x00\xff\xff\xff\xff", want: dpi.NoMatch},
		{name: "binary data type", dir: c, data: "\x80\x00\x00\x03\x00\x01", want: dpi.NoMatch},
		{name: "binary unknown opcode", dir: c, data: "\x80\x50", want: dpi.NoMatch},
		{name: "binary header cut", dir: c, data: memcachedBinary(0x80, 0x00, "", "foo", "", 0)[:12], want: dpi.NeedMore},
		{name: "binary response from client", dir: c, data: memcachedBinary(0x81, 0x00, "", "", "", 0), want: dpi.NoMatch},

		{name: "udp stats", dir: c, data: udp + "stats\r\n", want: dpi.Match, detail: dpi.Detail{Command: "stats"}, udp: true},
		{name: "udp binary get", dir: c, data: udp + memcachedBinary(0x80, 0x00, "", "foo", "", 0), want: dpi.Match, detail: dpi.Detail{Command: "get"}, udp: true},
		{name: "udp line cut", dir: c, data: udp + "get foo", want: dpi.NoMatch, udp: true},
		{name: "udp second datagram", dir: c, data: "\x00\x01\x00\x01\x00\x02\x00\x00stats\r\n", want: dpi.NoMatch, udp: true},
		{name: "udp reserved", dir: c, data: "\x00\x01\x00\x00\x00\x01\x00\x01stats\r\n", want: dpi.NoMatch, udp: true},
		{name: "udp header only", dir: c, data: udp, want: dpi.NoMatch, udp: true},
		{name: "udp version reply", dir: s, data: udp + "VERSION 1.6.18\r\n", want: dpi.Match, detail: dpi.Detail{Version: "1.6.18"}, udp: true},

		{name: "version reply", dir: s, data: "VERSION 1.6.21\r\n", want: dpi.Match, detail: dpi.Detail{Version: "1.6.21"}},
		{name: "version reply cut", dir: s, data: "VERS", want: dpi.NeedMore},
		{name: "version reply empty", dir: s, data: "VERSION\r\n", want: dpi.NoMatch},
		{name: "stored", dir: s, data: "STORED\r\n", want: dpi.Match},
		{name: "value", dir: s, data: "VALUE k 0 5\r\nhello\r\nEND\r\n", want: dpi.Match},
		{name: "value with cas", dir: s, data: "VALUE k 0 5 42\r\nhello\r\nEND\r\n", want: dpi.Match},
		{name: "value too short", dir: s, data: "VALUE k 0\r\n", want: dpi.NoMatch},
		{name: "stat", dir: s, data: "STAT pid 1\r\n", want: dpi.Match},
		{name: "end", dir: s, data: "END\r\n", want: dpi.NeedMore},
		{name: "error", dir: s, data: "ERROR\r\n", want: dpi.NeedMore},
		{name: "client error", dir: s, data: "CLIENT_ERROR bad command line format\r\n", want: dpi.NeedMore},
		{name: "incr result", dir: s, data: "6\r\n", want: dpi.NeedMore},
		{name: "meta hit", dir: s, data: "HD\r\n", want: dpi.NeedMore},
		{name: "meta value", dir: s, data: "VA 5 t\r\n", want: dpi.NeedMore},
		{name: "unknown word", dir: s, data: "OKAY\r\n", want: dpi.NoMatch},
		{name: "word glued to args", dir: s, data: "STORED1\r\n", want: dpi.NoMatch},
		{name: "resp", dir: s, data: "+OK\r\n", want: dpi.NoMatch},
		{name: "binary version", dir: s, data: memcachedBinary(0x81, 0x0b, "", "", "1.6.18", 0), want: dpi.Match, detail: dpi.Detail{Version: "1.6.18"}},
		{name: "binary not found", dir: s, data: memcachedBinary(0x81, 0x00, "", "", "Not found", 1), want: dpi.Match},
		{name: "binary unknown status", dir: s, data: memcachedBinary(0x81, 0x00, "", "", "", 0x40), want: dpi.NoMatch},
		{name: "binary version oversized", dir: s, data: memcachedBinary(0x81, 0x0b, "", "", strings.Repeat("1", 100), 0), want: dpi.NoMatch},
	})
}
