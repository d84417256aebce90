package dpi_test

import (
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/dpi"
)

func TestRedis(t *testing.T) {
	c, s := dpi.FromClient, dpi.FromServer
	appRunCases(t, dpi.NewRedis(), []appCase{
		{name: "array lower case", dir: c, data: "*1\r\n$4\r\nping\r\n", want: dpi.Match, detail: dpi.Detail{Command: "PING"}},
		{name: "array with arguments", dir: c, data: "*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n", want: dpi.Match, detail: dpi.Detail{Command: "SET"}},
		{name: "module command", dir: c, data: "*2\r\n$8\r\nJSON.GET\r\n$3\r\nkey\r\n", want: dpi.Match, detail: dpi.Detail{Command: "JSON.GET"}},
		{name: "inline", dir: c, data: "PING\r\n", want: dpi.Match, detail: dpi.Detail{Command: "PING"}},
		{name: "inline LF only", dir: c, data: "ping\n", want: dpi.Match, detail: dpi.Detail{Command: "PING"}},
		{name: "inline with argument", dir: c, data: "INFO server\r\n", want: dpi.Match, detail: dpi.Detail{Command: "INFO"}},
		{name: "inline prefix", dir: c, data: "PIN", want: dpi.NeedMore},
		{name: "inline without end", dir: c, data: "PING", want: dpi.NeedMore},
		{name: "inline unknown", dir: c, data: "PINGX\r\n", want: dpi.NoMatch},
		{name: "inline shared with memcached", dir: c, data: "GET foo\r\n", want: dpi.NoMatch},
		{name: "inline memcached", dir: c, data: "get foo\r\n", want: dpi.NoMatch},
		{name: "inline quit", dir: c, data: "QUIT\r\n", want: dpi.NoMatch},
		{name: "inline english", dir: c, data: "hello world\r\n", want: dpi.NoMatch},
		{name: "inline control byte", dir: c, data: "PING \x01\r\n", want: dpi.NoMatch},
		{name: "inline too long", dir: c, data: "PING " + strings.Repeat("a", 2000), want: dpi.NoMatch},
		{name: "array start", dir: c, data: "*", want: dpi.NeedMore},
		{name: "array count cut", dir: c, data: "*1\r", want: dpi.NeedMore},
		{name: "array count not a number", dir: c, data: "*1x", want: dpi.NoMatch},
		{name: "empty array", dir: c, data: "*0\r\n", want: dpi.NoMatch},
		{name: "null array", dir: c, data: "*-1\r\n", want: dpi.NoMatch},
		{name: "array count oversized", dir: c, data: "*99999999999\r\n", want: dpi.NoMatch},
		{name: "array count too many digits", dir: c, data: "*1234567890123456789012", want: dpi.NoMatch},
		{name: "name length oversized", dir: c, data: "*1\r\n$100\r\n", want: dpi.NoMatch},
		{name: "name not a bulk string", dir: c, data: "*1\r\n:4\r\n", want: dpi.NoMatch},
		{name: "name with NUL", dir: c, data: "*1\r\n$4\r\nPI\x00G\r\n", want: dpi.NoMatch},
		{name: "name starting with digit", dir: c, data: "*1\r\n$4\r\n1ING\r\n", want: dpi.NoMatch},
		{name: "name longer than said", dir: c, data: "*1\r\n$4\r\nPINGX", want: dpi.NoMatch},
		{name: "over UDP", dir: c, data: "*1\r\n$4\r\nPING\r\n", want: dpi.NoMatch, udp: true},

		{name: "simple string", dir: s, data: "+OK\r\n", want: dpi.NeedMore},
		{name: "simple string cut", dir: s, data: "+OK", want: dpi.NeedMore},
		{name: "simple string bad end", dir: s, data: "+OK\r\x00", want: dpi.NoMatch},
		{name: "noauth", dir: s, data: "-NOAUTH Authentication required.\r\n", want: dpi.Match},
		{name: "protected mode", dir: s, data: "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user.\r\n", want: dpi.Match},
		{name: "generic error", dir: s, data: "-ERR unknown command 'FOO'\r\n", want: dpi.NeedMore},
		{name: "bulk string", dir: s, data: "$5\r\nhello\r\n", want: dpi.NeedMore},
		{name: "null bulk string", dir: s, data: "$-1\r\n", want: dpi.NeedMore},
		{name: "integer", dir: s, data: ":12\r\n", want: dpi.NeedMore},
		{name: "bulk length oversized", dir: s, data: "$600000000\r\n", want: dpi.NoMatch},
		{name: "bulk length too many digits", dir: s, data: "$99999999999999999999\r\n", want: dpi.NoMatch},
		{name: "not RESP", dir: s, data: "HTTP/1.1 200 OK\r\n", want: dpi.NoMatch},
		{name: "RESP2 hello", dir: s, data: "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n6.2.6\r\n$5\r\nproto\r\n:2\r\n", want: dpi.Match, detail: dpi.Detail{Version: "6.2.6"}},
		{name: "valkey hello", dir: s, data: "%7\r\n$6\r\nserver\r\n$6\r\nvalkey\r\n$7\r\nversion\r\n$5\r\n8.0.1\r\n", want: dpi.Match, detail: dpi.Detail{Version: "valkey 8.0.1"}},
		{name: "other map", dir: s, data: "%1\r\n$3\r\nfoo\r\n$3\r\nbar\r\n", want: dpi.NeedMore},
		{name: "hello with bad value", dir: s, data: "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$50\r\n7.0", want: dpi.NeedMore},
		{name: "array of garbage", dir: s, data: "*2\r\n$3\r\nfoo\r\nxyz", want: dpi.NoMatch},
	})
}
