package dpi_test

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/dpi"
)

// pgStartup is a StartupMessage of the given protocol version with the parameters
// given as name, value, name, value...
func pgStartup(version uint32, params ...string) string {
	body := binary.BigEndian.AppendUint32(nil, version)
	for _, p := range params {
		body = append(append(body, p...), 0)
	}
	body = append(body, 0)
	return string(binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))) + string(body)
}

// pgMessage is a typed backend message.
func pgMessage(typ byte, body string) string {
	return string(append(binary.BigEndian.AppendUint32([]byte{typ}, uint32(4+len(body))), body...))
}

func TestPostgreSQL(t *testing.T) {
	c, s := dpi.FromClient, dpi.FromServer
	long := pgStartup(3<<16, "user", "app", "options", strings.Repeat("-c x=y ", 1200))
	appRunCases(t, dpi.NewPostgreSQL(), []appCase{
		{name: "startup 3.0", dir: c, data: pgStartup(3<<16, "user", "app", "database", "orders", "application_name", "billing"), want: dpi.Match, detail: dpi.Detail{Command: "StartupMessage", User: "app", Database: "orders"}},
		{name: "startup 3.2", dir: c, data: pgStartup(3<<16|2, "user", "app"), want: dpi.Match, detail: dpi.Detail{Command: "StartupMessage", User: "app"}},
		{name: "startup replication", dir: c, data: pgStartup(3<<16, "user", "replicator", "replication", "true"), want: dpi.Match, detail: dpi.Detail{Command: "StartupMessage", User: "replicator"}},
		{name: "startup protocol 2", dir: c, data: pgStartup(2<<16, "user", "app"), want: dpi.NoMatch},
		{name: "startup minor 99", dir: c, data: pgStartup(3<<16|99, "user", "app"), want: dpi.NoMatch},
		{name: "startup without final NUL", dir: c, data: "\x00\x00\x00\x12\x00\x03\x00\x00user\x00app\x00x", want: dpi.NoMatch},
		{name: "startup name with control byte", dir: c, data: pgStartup(3<<16, "us\ter", "app"), want: dpi.NoMatch},
		{name: "startup empty name", dir: c, data: "\x00\x00\x00\x0e\x00\x03\x00\x00\x00app\x00\x00", want: dpi.NoMatch},
		{name: "startup oversized", dir: c, data: "\x7f\xff\xff\xff\x00\x03\x00\x00user\x00", want: dpi.NoMatch},
		{name: "startup over the server's limit", dir: c, data: "\x00\x00\x4e\x20\x00\x03\x00\x00user\x00", want: dpi.NoMatch},
		{name: "startup longer than inspected", dir: c, data: long[:dpi.MaxInspect], want: dpi.Match, detail: dpi.Detail{Command: "StartupMessage", User: "app"}},
		{name: "ssl refused, startup longer than inspected", dir: c, data: ("\x00\x00\x00\x08\x04\xd2\x16\x2f" + long)[:dpi.MaxInspect], want: dpi.Match, detail: dpi.Detail{Command: "StartupMessage", User: "app"}},
		{name: "startup length too small", dir: c, data: "\x00\x00\x00\x04\x00\x03\x00\x00", want: dpi.NoMatch},
		{name: "ssl request", dir: c, data: "\x00\x00\x00\x08\x04\xd2\x16\x2f", want: dpi.NeedMore}, // the server answers
		{name: "ssl request refused, startup", dir: c, data: "\x00\x00\x00\x08\x04\xd2\x16\x2f" + pgStartup(3<<16, "user", "app", "database", "orders"), want: dpi.Match, detail: dpi.Detail{Command: "StartupMessage", User: "app", Database: "orders"}},
		{name: "ssl request then junk", dir: c, data: "\x00\x00\x00\x08\x04\xd2\x16\x2fhello", want: dpi.Match, detail: dpi.Detail{Command: "SSLRequest"}},
		{name: "ssl request then TLS", dir: c, data: "\x00\x00\x00\x08\x04\xd2\x16\x2f\x16\x03\x01\x02\x00", want: dpi.Match, detail: dpi.Detail{Command: "SSLRequest"}},
		{name: "ssl request bad length", dir: c, data: "\x00\x00\x00\x09\x04\xd2\x16\x2f\x00", want: dpi.NoMatch},
		{name: "gssenc request", dir: c, data: "\x00\x00\x00\x08\x04\xd2\x16\x30", want: dpi.NeedMore},
		{name: "gssenc request then token", dir: c, data: "\x00\x00\x00\x08\x04\xd2\x16\x30\x00\x00\x02\x9c\x60\x82\x02\x98", want: dpi.Match, detail: dpi.Detail{Command: "GSSENCRequest"}},
		{name: "gssenc refused, ssl accepted", dir: c, data: "\x00\x00\x00\x08\x04\xd2\x16\x30\x00\x00\x00\x08\x04\xd2\x16\x2f\x16\x03\x01", want: dpi.Match, detail: dpi.Detail{Command: "SSLRequest"}},
		{name: "cancel request", dir: c, data: "\x00\x00\x00\x10\x04\xd2\x16\x2e\x00\x00\x30\x39\x12\x34\x56\x78", want: dpi.Match, detail: dpi.Detail{Command: "CancelRequest"}},
		{name: "cancel request too short", dir: c, data: "\x00\x00\x00\x0f\x04\xd2\x16\x2e\x00\x00\x30\x39\x12\x34\x56", want: dpi.NoMatch},
		{name: "unknown request code", dir: c, data: "\x00\x00\x00\x08\x04\xd2\x16\x31", want: dpi.NoMatch},
		{name: "over UDP", dir: c, data: "\x00\x00\x00\x08\x04\xd2\x16\x2f", want: dpi.NoMatch, udp: true},

		{name: "no to ssl", dir: s, data: "N", want: dpi.NeedMore},
		{name: "yes to ssl", dir: s, data: "S", want: dpi.NeedMore},
		{name: "yes to ssl then TLS", dir: s, data: "S\x16\x03\x03\x00\x7a", want: dpi.NeedMore},
		{name: "yes to ssl then junk", dir: s, data: "Sx", want: dpi.NoMatch},
		{name: "auth ok", dir: s, data: pgMessage('R', "\x00\x00\x00\x00"), want: dpi.Match},
		{name: "auth md5", dir: s, data: pgMessage('R', "\x00\x00\x00\x05salt"), want: dpi.Match},
		{name: "auth md5 bad length", dir: s, data: pgMessage('R', "\x00\x00\x00\x05sal"), want: dpi.NoMatch},
		{name: "auth unknown", dir: s, data: pgMessage('R', "\x00\x00\x00\x63"), want: dpi.NoMatch},
		{name: "auth sasl", dir: s, data: "N" + pgMessage('R', "\x00\x00\x00\x0aSCRAM-SHA-256-PLUS\x00SCRAM-SHA-256\x00\x00"), want: dpi.Match},
		{name: "auth then version", dir: s, data: pgMessage('R', "\x00\x00\x00\x00") + pgMessage('S', "application_name\x00\x00") + pgMessage('S', "server_version\x0016.2\x00"), want: dpi.Match, detail: dpi.Detail{Version: "16.2"}},
		{name: "startup refused", dir: s, data: pgMessage('E', "SFATAL\x00VFATAL\x00C28000\x00Mno pg_hba.conf entry for host \"10.0.0.9\"\x00\x00"), want: dpi.Match},
		{name: "error without severity", dir: s, data: pgMessage('E', "C28000\x00Mx\x00\x00"), want: dpi.NoMatch},
		{name: "message oversized", dir: s, data: "R\x7f\xff\xff\xff\x00\x00\x00\x00", want: dpi.NoMatch},
		{name: "other message first", dir: s, data: pgMessage('Z', "I"), want: dpi.NoMatch},
	})
}
