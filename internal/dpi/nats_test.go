package dpi_test

import (
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/dpi"
)

func TestNATS(t *testing.T) {
	c, s := dpi.FromClient, dpi.FromServer
	longInfo := "INFO {\"server_id\":\"x\",\"version\":\"2.10.7\",\"connect_urls\":[\"" + strings.Repeat("10.0.0.1:4222\",\"", 300)
	appRunCases(t, dpi.NewNATS(), []appCase{
		{name: "info", dir: s, data: `INFO {"server_id":"x","version":"2.10.7","go":"go1.21.5","max_payload":1048576}` + "\r\n", want: dpi.Match, detail: dpi.Detail{Version: "2.10.7"}},
		{name: "info lower case", dir: s, data: "info {\"version\":\"2.1.0\"}\r\n", want: dpi.Match, detail: dpi.Detail{Version: "2.1.0"}},
		{name: "info tab and spaces", dir: s, data: "INFO\t {\"version\" : \"2.1.0\"} \r\n", want: dpi.Match, detail: dpi.Detail{Version: "2.1.0"}},
		{name: "info nested version", dir: s, data: `INFO {"cluster":{"version":"x"},"tags":["version"],"version":"2.2.0"}` + "\r\n", want: dpi.Match, detail: dpi.Detail{Version: "2.2.0"}},
		{name: "info escaped quote", dir: s, data: `INFO {"name":"a\"b","version":"2.3.0"}` + "\r\n", want: dpi.Match, detail: dpi.Detail{Version: "2.3.0"}},
		{name: "info without version", dir: s, data: "INFO {}\r\n", want: dpi.Match},
		{name: "info longer than inspected", dir: s, data: longInfo[:dpi.MaxInspect], want: dpi.Match, detail: dpi.Detail{Version: "2.10.7"}},
		{name: "info cut", dir: s, data: "INFO {\"version\":\"2.1", want: dpi.NeedMore},
		{name: "info word cut", dir: s, data: "INF", want: dpi.NeedMore},
		{name: "info then blank", dir: s, data: "INFO ", want: dpi.NeedMore},
		{name: "info without blank", dir: s, data: "INFO{}\r\n", want: dpi.NoMatch},
		{name: "info array", dir: s, data: "INFO [1]\r\n", want: dpi.NoMatch},
		{name: "info LF only", dir: s, data: "INFO {}\n", want: dpi.NoMatch},
		{name: "info not an object", dir: s, data: "INFO {\"a\":1\r\n", want: dpi.NoMatch},
		{name: "info control byte", dir: s, data: "INFO {\x01}\r\n", want: dpi.NoMatch},
		{name: "connect from server", dir: s, data: "CONNECT {}\r\n", want: dpi.NoMatch},

		{name: "connect", dir: c, data: `CONNECT {"verbose":false,"user":"orders","pass":"s3cret","lang":"python3","version":"2.6.0","protocol":1}` + "\r\n", want: dpi.Match, detail: dpi.Detail{Command: "CONNECT", User: "orders", ClientVersion: "python3 2.6.0"}},
		{name: "connect tab", dir: c, data: "CONNECT\t{}\r\n", want: dpi.Match, detail: dpi.Detail{Command: "CONNECT"}},
		{name: "connect cut", dir: c, data: "CONNECT {", want: dpi.NeedMore},
		{name: "connect glued", dir: c, data: "CONNECTX {}\r\n", want: dpi.NoMatch},
		{name: "pub first", dir: c, data: "PUB foo 5\r\nhello\r\n", want: dpi.NoMatch},
		{name: "info from client", dir: c, data: "INFO {}\r\n", want: dpi.NoMatch},
		{name: "over UDP", dir: c, data: "CONNECT {}\r\n", want: dpi.NoMatch, udp: true},
	})
}
