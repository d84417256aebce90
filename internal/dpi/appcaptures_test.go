package dpi_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vigil-sec/vigil/internal/dpi"
)

// The tests in this file run every application parser (Redis to NATS) over the captures
// in testdata/<app>/ (NAME.client.bin and NAME.server.bin: the first bytes each side
// sent; testdata/README-protocols.md says how they were made), over each other's
// captures and over the openings of protocols they must not claim.

// appParsers are the parsers under test, by the testdata directory of their captures.
var appParsers = []struct {
	dir    string
	parser dpi.Parser
}{
	{"redis", dpi.NewRedis()},
	{"mysql", dpi.NewMySQL()},
	{"postgresql", dpi.NewPostgreSQL()},
	{"mongodb", dpi.NewMongoDB()},
	{"memcached", dpi.NewMemcached()},
	{"kafka", dpi.NewKafka()},
	{"amqp", dpi.NewAMQP()},
	{"mqtt", dpi.NewMQTT()},
	{"nats", dpi.NewNATS()},
}

// appCapture is one side of one captured connection.
type appCapture struct {
	app  dpi.App // whose capture it is
	name string  // "redis/ping.client"
	dir  dpi.Direction
	data []byte
}

// appCaptures loads every capture of testdata; it fails the test when there are none.
func appCaptures(t testing.TB) []appCapture {
	t.Helper()
	var out []appCapture
	for _, p := range appParsers {
		files, err := filepath.Glob(filepath.Join("testdata", p.dir, "*.bin"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no captures in testdata/%s", p.dir)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(filepath.Base(f), ".bin")
			c := appCapture{app: p.parser.App(), name: p.dir + "/" + base, data: data}
			switch {
			case strings.HasSuffix(base, ".client"):
				c.dir = dpi.FromClient
			case strings.HasSuffix(base, ".server"):
				c.dir = dpi.FromServer
			default:
				t.Fatalf("%s: name must end in .client.bin or .server.bin", f)
			}
			out = append(out, c)
		}
	}
	return out
}

// appWant is what a parser must make of one of its own captures.
type appWant struct {
	verdict dpi.Verdict
	detail  dpi.Detail
}

// appCaptureWants lists every capture; TestAppCapturesListed keeps it complete.
var appCaptureWants = map[string]appWant{
	"redis/ping.client":   {dpi.Match, dpi.Detail{Command: "PING"}},
	"redis/ping.server":   {dpi.NeedMore, dpi.Detail{}}, // "+PONG": the client decides
	"redis/set.client":    {dpi.Match, dpi.Detail{Command: "SET"}},
	"redis/set.server":    {dpi.NeedMore, dpi.Detail{}},
	"redis/hello3.client": {dpi.Match, dpi.Detail{Command: "HELLO"}},
	"redis/hello3.server": {dpi.Match, dpi.Detail{Version: "7.0.15"}},
	"redis/noauth.client": {dpi.Match, dpi.Detail{Command: "GET"}},
	"redis/noauth.server": {dpi.Match, dpi.Detail{}}, // -NOAUTH: only Redis says it

	"mysql/mariadb.client":     {dpi.Match, dpi.Detail{User: "vigil", Database: "shop"}},
	"mysql/mariadb.server":     {dpi.Match, dpi.Detail{Version: "10.11.19-MariaDB-0+deb12u1"}},
	"mysql/mariadb-ssl.client": {dpi.Match, dpi.Detail{}}, // SSLRequest, then TLS
	"mysql/mariadb-ssl.server": {dpi.Match, dpi.Detail{Version: "10.11.19-MariaDB-0+deb12u1"}},

	"postgresql/startup.client":            {dpi.Match, dpi.Detail{Command: "StartupMessage", User: "postgres", Database: "postgres"}},
	"postgresql/startup.server":            {dpi.Match, dpi.Detail{Version: "15.18 (Debian 15.18-0+deb12u1)"}},
	"postgresql/sslrequest-refused.client": {dpi.Match, dpi.Detail{Command: "StartupMessage", User: "postgres", Database: "postgres"}},
	"postgresql/sslrequest-refused.server": {dpi.Match, dpi.Detail{Version: "15.18 (Debian 15.18-0+deb12u1)"}},

	"mongodb/opquery-hello.client": {dpi.Match, dpi.Detail{Command: "isMaster", Database: "admin"}},
	"mongodb/opquery-hello.server": {dpi.Match, dpi.Detail{}},
	"mongodb/opmsg-hello.client":   {dpi.Match, dpi.Detail{Command: "hello", Database: "admin"}},
	"mongodb/opmsg-hello.server":   {dpi.Match, dpi.Detail{}},

	"memcached/text-set.client":     {dpi.Match, dpi.Detail{Command: "set"}},
	"memcached/text-set.server":     {dpi.Match, dpi.Detail{}}, // STORED
	"memcached/text-get.client":     {dpi.Match, dpi.Detail{Command: "get"}},
	"memcached/text-get.server":     {dpi.Match, dpi.Detail{}}, // VALUE
	"memcached/text-version.client": {dpi.Match, dpi.Detail{Command: "version"}},
	"memcached/text-version.server": {dpi.Match, dpi.Detail{Version: "1.6.18"}},
	"memcached/binary-stat.client":  {dpi.Match, dpi.Detail{Command: "version"}}, // memcstat asks the version first
	"memcached/binary-stat.server":  {dpi.Match, dpi.Detail{Version: "1.6.18"}},
	"memcached/binary-get.client":   {dpi.Match, dpi.Detail{Command: "getk"}},
	"memcached/binary-get.server":   {dpi.Match, dpi.Detail{}},

	"kafka/franz-go.client": {dpi.Match, dpi.Detail{Command: "ApiVersions", User: "vigil-capture"}},
	"kafka/franz-go.server": {dpi.Match, dpi.Detail{}}, // ApiVersions response
	"kafka/sarama.client":   {dpi.Match, dpi.Detail{Command: "ApiVersions", User: "vigil-sarama"}},
	"kafka/sarama.server":   {dpi.Match, dpi.Detail{}},

	"amqp/rabbitmq-c.client": {dpi.Match, dpi.Detail{User: "guest", Database: "/"}},
	"amqp/rabbitmq-c.server": {dpi.Match, dpi.Detail{Version: "RabbitMQ 3.10.8"}},

	"mqtt/v31.client":  {dpi.Match, dpi.Detail{User: "vigil-mqttv31"}},
	"mqtt/v31.server":  {dpi.NeedMore, dpi.Detail{}}, // CONNACK
	"mqtt/v311.client": {dpi.Match, dpi.Detail{User: "vigil-mqttv311"}},
	"mqtt/v311.server": {dpi.NeedMore, dpi.Detail{}},
	"mqtt/v5.client":   {dpi.Match, dpi.Detail{User: "vigil-mqttv5"}},
	"mqtt/v5.server":   {dpi.NeedMore, dpi.Detail{}},

	"nats/nats-go.client": {dpi.Match, dpi.Detail{Command: "CONNECT", ClientVersion: "go 1.55.0"}},
	"nats/nats-go.server": {dpi.Match, dpi.Detail{Version: "2.9.10"}},
}

func appParser(t testing.TB, app dpi.App) dpi.Parser {
	t.Helper()
	for _, p := range appParsers {
		if p.parser.App() == app {
			return p.parser
		}
	}
	t.Fatalf("no parser for %s", app)
	return nil
}

func TestAppCapturesListed(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range appCaptures(t) {
		seen[c.name] = true
		if _, ok := appCaptureWants[c.name]; !ok {
			t.Errorf("capture %s has no entry in appCaptureWants", c.name)
		}
	}
	for name := range appCaptureWants {
		if !seen[name] {
			t.Errorf("appCaptureWants lists %s, which is not in testdata", name)
		}
	}
}

// TestAppCaptures checks each parser on its own captures, and on every prefix of them:
// a prefix of a valid opening is never NoMatch, the verdicts never go back from Match,
// and a prefix that matches records nothing but what the whole capture records.
func TestAppCaptures(t *testing.T) {
	for _, c := range appCaptures(t) {
		t.Run(c.name, func(t *testing.T) {
			want := appCaptureWants[c.name]
			p := appParser(t, c.app)
			var d dpi.Detail
			if v := p.Inspect(dpi.TCP, c.dir, c.data, &d); v != want.verdict || !reflect.DeepEqual(d, want.detail) {
				t.Fatalf("got %v %+v, want %v %+v", v, d, want.verdict, want.detail)
			}
			matched := false
			for k := 0; k < len(c.data); k++ {
				var d dpi.Detail
				v := p.Inspect(dpi.TCP, c.dir, c.data[:k], &d)
				switch {
				case v == dpi.NoMatch:
					t.Fatalf("prefix of %d bytes: NoMatch", k)
				case matched && v != dpi.Match:
					t.Fatalf("prefix of %d bytes: %v after a Match on a shorter one", k, v)
				case v == dpi.Match:
					matched = true
					appCheckSubDetail(t, k, d, want.detail)
				case !reflect.DeepEqual(d, dpi.Detail{}):
					t.Fatalf("prefix of %d bytes: %v but wrote %+v", k, v, d)
				}
			}
		})
	}
}

// appCheckSubDetail fails unless every field got is empty or equal to want's.
func appCheckSubDetail(t *testing.T, k int, got, want dpi.Detail) {
	t.Helper()
	fields := [][2]string{
		{got.Version, want.Version}, {got.ClientVersion, want.ClientVersion},
		{got.Command, want.Command}, {got.User, want.User}, {got.Database, want.Database},
	}
	for _, f := range fields {
		if f[0] != "" && f[0] != f[1] {
			t.Fatalf("prefix of %d bytes recorded %q where the whole capture has %q", k, f[0], f[1])
		}
	}
	if got.Method != "" || got.Host != "" || got.Path != "" || got.UserAgent != "" || got.Status != 0 ||
		got.ContentType != "" || got.TLSVersion != "" || got.SNI != "" || got.ALPN != nil || got.DNS != nil {
		t.Fatalf("prefix of %d bytes set a field no application parser sets: %+v", k, got)
	}
}

// appForeign are openings of protocols that none of these parsers may claim, written out
// by hand from the protocols' specifications and real traffic.
var appForeign = []struct {
	name string
	dir  dpi.Direction
	data []byte
}{
	{"http request", dpi.FromClient, []byte("GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n")},
	{"http post", dpi.FromClient, []byte("POST /api/v1/items HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nContent-Length: 2\r\n\r\n{}")},
	{"http response", dpi.FromServer, []byte("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Length: 0\r\n\r\n")},
	{"http2 preface", dpi.FromClient, []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64\x00\x04\x02\x00\x00\x00\x00\x02\x00\x00\x00\x00")},
	{"http2 settings", dpi.FromServer, []byte("\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x80\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x0f\x00\x01")},
	{"ssh client", dpi.FromClient, []byte("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n\x00\x00\x05\xdc\x06\x14")},
	{"ssh server", dpi.FromServer, []byte("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")},
	{"tls client hello", dpi.FromClient, appTLSClientHello},
	{"tls server hello", dpi.FromServer, []byte("\x16\x03\x03\x00\x5a\x02\x00\x00\x56\x03\x03" + strings.Repeat("\x42", 32) + "\x20" + strings.Repeat("\x17", 32) + "\x13\x01\x00\x00\x2e\x00\x2b\x00\x02\x03\x04\x00\x33\x00\x24\x00\x1d\x00\x20" + strings.Repeat("\x09", 32))},
	{"tls alert", dpi.FromServer, []byte("\x15\x03\x03\x00\x02\x02\x28")},
	{"dns over tcp query", dpi.FromClient, []byte("\x00\x1d\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01")},
	{"dns over tcp answer", dpi.FromServer, []byte("\x00\x2d\xbe\xef\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\x5d\xb8\xd7\x0e")},
	{"smtp banner", dpi.FromServer, []byte("220 mail.example.com ESMTP Postfix (Debian/GNU)\r\n")},
	{"smtp ehlo", dpi.FromClient, []byte("EHLO client.example.com\r\n")},
	{"pop3 banner", dpi.FromServer, []byte("+OK Dovecot (Debian) ready.\r\n")},
	{"pop3 user", dpi.FromClient, []byte("USER alice\r\n")},
	{"ftp banner", dpi.FromServer, []byte("220 (vsFTPd 3.0.3)\r\n")},
	{"imap banner", dpi.FromServer, []byte("* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.\r\n")},
	{"rdp", dpi.FromClient, []byte("\x03\x00\x00\x13\x0e\xe0\x00\x00\x00\x00\x00\x01\x00\x08\x00\x0b\x00\x00\x00")},
	{"zeros", dpi.FromClient, make([]byte, 64)},
	{"ones", dpi.FromClient, bytes.Repeat([]byte{0xff}, 64)},
	{"text", dpi.FromClient, []byte("hello world, this is not a protocol\r\n")},
}

// appTLSClientHello is the start of a TLS 1.3 ClientHello as curl sends it, cut after
// the server name extension (SNI "example.com").
var appTLSClientHello = []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + strings.Repeat("\x5a", 32) +
	"\x20" + strings.Repeat("\xa5", 32) + "\x00\x3e\x13\x02\x13\x03\x13\x01\xc0\x2c\xc0\x30\x00\x9f\xcc\xa9\xcc\xa8\xcc\xaa\xc0\x2b\xc0\x2f\x00\x9e\xc0\x24\xc0\x28\x00\x6b\xc0\x23\xc0\x27\x00\x67\xc0\x0a\xc0\x14\x00\x39\xc0\x09\xc0\x13\x00\x33\x00\x9d\x00\x9c\x00\x3d\x00\x3c\x00\x35\x00\x2f\x00\xff" +
	"\x01\x00\x01\x75\x00\x00\x00\x10\x00\x0e\x00\x00\x0bexample.com")

// appCrossShort is how short an input may be for another parser to wait on it rather
// than refuse it: the 4-byte MQTT CONNACK is a valid start of a MongoDB or MySQL
// header, and only more bytes (which never come) would tell.
const appCrossShort = 16

// appCrossWaits lists the other inputs on which a parser may wait, and why.
var appCrossWaits = map[string]dpi.App{
	// "+OK ..." is a RESP simple string; the client's first line settles it.
	"pop3 banner": dpi.Redis,
}

// TestAppCrossMatch offers every capture and every foreign opening to every parser: a
// capture is claimed by its own parser only, and nothing foreign is claimed at all.
func TestAppCrossMatch(t *testing.T) {
	type input struct {
		name  string
		owner dpi.App
		dir   dpi.Direction
		data  []byte
	}
	var inputs []input
	for _, c := range appCaptures(t) {
		inputs = append(inputs, input{c.name, c.app, c.dir, c.data})
		if c.name == "mysql/mariadb-ssl.client" {
			// After its 36-byte SSLRequest, the client sent a real TLS ClientHello.
			inputs = append(inputs, input{"tls client hello (mariadb client)", dpi.TLS, dpi.FromClient, c.data[36:]})
		}
	}
	for _, f := range appForeign {
		inputs = append(inputs, input{f.name, dpi.Unknown, f.dir, f.data})
		inputs = append(inputs, input{f.name + ", other direction", dpi.Unknown, f.dir.Other(), f.data})
	}
	for _, in := range inputs {
		for _, p := range appParsers {
			if p.parser.App() == in.owner {
				continue
			}
			var d dpi.Detail
			v := p.parser.Inspect(dpi.TCP, in.dir, in.data, &d)
			if v == dpi.NeedMore && (len(in.data) < appCrossShort || appCrossWaits[in.name] == p.parser.App()) {
				continue
			}
			if v != dpi.NoMatch {
				t.Errorf("%s parser on %s: %v %+v, want NoMatch", p.parser.App(), in.name, v, d)
			}
		}
	}
}

// TestAppRandom offers random payloads of every length to every parser, in both
// directions and over both transports: none may match.
func TestAppRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 2048)
	for i := 0; i < 20000; i++ {
		data := buf[:rng.IntN(len(buf))]
		for k := range data {
			data[k] = byte(rng.Uint32())
		}
		for _, p := range appParsers {
			for _, tr := range []dpi.Transport{dpi.TCP, dpi.UDP} {
				for _, dir := range []dpi.Direction{dpi.FromClient, dpi.FromServer} {
					var d dpi.Detail
					if v := p.parser.Inspect(tr, dir, data, &d); v == dpi.Match {
						t.Fatalf("%s matched random bytes (%v, %v): %x", p.parser.App(), tr, dir, data)
					}
				}
			}
		}
	}
}

// TestAppNeedMoreEnds extends every prefix that a parser waits on with junk up to
// MaxInspect: the parser must then decide. Only the replies of client-first protocols
// may leave it waiting, for the client's side settles those.
func TestAppNeedMoreEnds(t *testing.T) {
	waitsOnClient := map[dpi.App]bool{dpi.Redis: true, dpi.Memcached: true, dpi.Kafka: true, dpi.MQTT: true, dpi.PostgreSQL: true}
	fills := [][]byte{bytes.Repeat([]byte{0}, dpi.MaxInspect), bytes.Repeat([]byte("A"), dpi.MaxInspect), appRandomPayload(dpi.MaxInspect)}
	for _, c := range appCaptures(t) {
		if c.dir == dpi.FromServer && waitsOnClient[c.app] {
			continue
		}
		p := appParser(t, c.app)
		for k := 0; k < len(c.data); k++ {
			var d dpi.Detail
			if p.Inspect(dpi.TCP, c.dir, c.data[:k], &d) != dpi.NeedMore {
				continue
			}
			for _, fill := range fills {
				data := append(append([]byte(nil), c.data[:k]...), fill...)[:dpi.MaxInspect]
				if v := p.Inspect(dpi.TCP, c.dir, data, &d); v == dpi.NeedMore {
					t.Fatalf("%s: %d bytes then %x...: still NeedMore at MaxInspect", c.name, k, fill[:4])
				}
			}
		}
	}
}

// TestAppParsersOnRandomAllocateNothing is the assertion behind BenchmarkParsersOnRandom.
func TestAppParsersOnRandomAllocateNothing(t *testing.T) {
	payload := appRandomPayload(1400)
	var d dpi.Detail
	allocs := testing.AllocsPerRun(100, func() {
		for _, p := range appParsers {
			p.parser.Inspect(dpi.TCP, dpi.FromClient, payload, &d)
			p.parser.Inspect(dpi.TCP, dpi.FromServer, payload, &d)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per payload, want 0", allocs)
	}
}

func appRandomPayload(n int) []byte {
	rng := rand.New(rand.NewPCG(7, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// BenchmarkParsersOnRandom measures offering one 1400-byte random payload (a full TCP
// segment of something unknown) to every application parser, from the client.
func BenchmarkParsersOnRandom(b *testing.B) {
	payload := appRandomPayload(1400)
	var d dpi.Detail
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		for _, p := range appParsers {
			if p.parser.Inspect(dpi.TCP, dpi.FromClient, payload, &d) == dpi.Match {
				b.Fatal("random payload matched")
			}
		}
	}
}

// appFuzz is the body of every Fuzz target: it seeds the corpus with the captures (and
// the foreign openings), then checks on any input that the parser does not panic, that
// a Match records bounded printable UTF-8, that anything else records nothing, and that
// a verdict on a prefix is not contradicted by the whole.
func appFuzz(f *testing.F, p dpi.Parser) {
	for _, c := range appCaptures(f) {
		f.Add(c.data, c.dir == dpi.FromServer, false)
	}
	for _, fo := range appForeign {
		f.Add(fo.data, fo.dir == dpi.FromServer, false)
	}
	f.Fuzz(func(t *testing.T, data []byte, server, udp bool) {
		dir, tr := dpi.FromClient, dpi.TCP
		if server {
			dir = dpi.FromServer
		}
		if udp {
			tr = dpi.UDP
		}
		var d dpi.Detail
		v := p.Inspect(tr, dir, data, &d)
		if v == dpi.Match {
			for _, s := range []string{d.Version, d.ClientVersion, d.Command, d.User, d.Database} {
				if len(s) > 256 || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
					t.Fatalf("recorded %q", s)
				}
			}
		} else if !reflect.DeepEqual(d, dpi.Detail{}) {
			t.Fatalf("%v but recorded %+v", v, d)
		}
		if tr == dpi.UDP {
			return // a datagram has no prefixes
		}
		if !server && len(data) >= dpi.MaxInspect && v == dpi.NeedMore {
			t.Fatalf("NeedMore on %d bytes", len(data))
		}
		for _, k := range []int{1, 2, 4, 8, 16, 24, 32, len(data) / 2, len(data) - 1} {
			if k <= 0 || k >= len(data) {
				continue
			}
			var pd dpi.Detail
			pv := p.Inspect(tr, dir, data[:k], &pd)
			if pv == dpi.NoMatch && v != dpi.NoMatch || pv == dpi.Match && v != dpi.Match {
				t.Fatalf("%v on %d bytes, then %v on %d", pv, k, v, len(data))
			}
		}
	})
}

func FuzzRedis(f *testing.F)      { appFuzz(f, dpi.NewRedis()) }
func FuzzMySQL(f *testing.F)      { appFuzz(f, dpi.NewMySQL()) }
func FuzzPostgreSQL(f *testing.F) { appFuzz(f, dpi.NewPostgreSQL()) }
func FuzzMongoDB(f *testing.F)    { appFuzz(f, dpi.NewMongoDB()) }
func FuzzMemcached(f *testing.F)  { appFuzz(f, dpi.NewMemcached()) }
func FuzzKafka(f *testing.F)      { appFuzz(f, dpi.NewKafka()) }
func FuzzAMQP(f *testing.F)       { appFuzz(f, dpi.NewAMQP()) }
func FuzzMQTT(f *testing.F)       { appFuzz(f, dpi.NewMQTT()) }
func FuzzNATS(f *testing.F)       { appFuzz(f, dpi.NewNATS()) }

// appCase is one hand-made input for a parser.
type appCase struct {
	name   string
	dir    dpi.Direction
	data   string
	want   dpi.Verdict
	detail dpi.Detail
	udp    bool
}

// appRunCases checks each case, and for a TCP case that matches, every prefix of its
// input as TestAppCaptures does: a prefix of valid input never says NoMatch, and never
// records what the whole input does not.
func appRunCases(t *testing.T, p dpi.Parser, cases []appCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := dpi.TCP
			if c.udp {
				tr = dpi.UDP
			}
			var d dpi.Detail
			if v := p.Inspect(tr, c.dir, []byte(c.data), &d); v != c.want || !reflect.DeepEqual(d, c.detail) {
				t.Fatalf("got %v %+v, want %v %+v", v, d, c.want, c.detail)
			}
			if c.want != dpi.Match || c.udp {
				return
			}
			for k := 0; k < len(c.data); k++ {
				var d dpi.Detail
				switch v := p.Inspect(tr, c.dir, []byte(c.data[:k]), &d); v {
				case dpi.NoMatch:
					t.Fatalf("prefix of %d bytes: NoMatch", k)
				case dpi.Match:
					appCheckSubDetail(t, k, d, c.detail)
				}
			}
		})
	}
}

// TestAppFlows feeds captured conversations to an Inspector in the pieces the peers sent
// them, for the protocols whose parser has to wait for the other side before it can read
// what it records: an AMQP client names its user and virtual host only after the
// server's Start and Tune, a PostgreSQL client names its user only after the server
// refused TLS, and MySQL and NATS servers speak first.
func TestAppFlows(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name+".bin"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// frameEnd returns the end of the AMQP frame at b[off:].
	frameEnd := func(b []byte, off int) int { return off + 7 + int(binary.BigEndian.Uint32(b[off+3:])) + 1 }
	// packetEnd returns the end of the MySQL packet at the start of b.
	packetEnd := func(b []byte) int { return 4 + (int(b[0]) | int(b[1])<<8 | int(b[2])<<16) }
	type piece struct {
		dir dpi.Direction
		b   []byte
	}
	ac, as := read("amqp/rabbitmq-c.client"), read("amqp/rabbitmq-c.server")
	startOk, start := frameEnd(ac, 8), frameEnd(as, 0)
	pc, ps := read("postgresql/sslrequest-refused.client"), read("postgresql/sslrequest-refused.server")
	mc, ms := read("mysql/mariadb.client"), read("mysql/mariadb.server")
	nc, ns := read("nats/nats-go.client"), read("nats/nats-go.server")
	info := bytes.IndexByte(ns, '\n') + 1
	flows := []struct {
		name   string
		pieces []piece
		app    dpi.App
		detail dpi.Detail
	}{
		{"amqp", []piece{{dpi.FromClient, ac[:8]}, {dpi.FromServer, as[:start]}, {dpi.FromClient, ac[8:startOk]}, {dpi.FromServer, as[start:]}, {dpi.FromClient, ac[startOk:]}},
			dpi.AMQP, dpi.Detail{Version: "RabbitMQ 3.10.8", User: "guest", Database: "/"}},
		{"postgresql", []piece{{dpi.FromClient, pc[:8]}, {dpi.FromServer, ps[:1]}, {dpi.FromClient, pc[8:]}, {dpi.FromServer, ps[1:]}},
			dpi.PostgreSQL, dpi.Detail{Version: "15.18 (Debian 15.18-0+deb12u1)", Command: "StartupMessage", User: "postgres", Database: "postgres"}},
		{"mysql", []piece{{dpi.FromServer, ms[:packetEnd(ms)]}, {dpi.FromClient, mc}, {dpi.FromServer, ms[packetEnd(ms):]}},
			dpi.MySQL, dpi.Detail{Version: "10.11.19-MariaDB-0+deb12u1", User: "vigil", Database: "shop"}},
		{"nats", []piece{{dpi.FromServer, ns[:info]}, {dpi.FromClient, nc}, {dpi.FromServer, ns[info:]}},
			dpi.NATS, dpi.Detail{Version: "2.9.10", Command: "CONNECT", ClientVersion: "go 1.55.0"}},
	}
	for _, f := range flows {
		in := dpi.NewInspector(nil, nil)
		var seq [2]uint32
		for _, p := range f.pieces {
			in.Feed(dpi.TCP, p.dir, seq[p.dir], p.b)
			seq[p.dir] += uint32(len(p.b))
		}
		if in.App() != f.app || !reflect.DeepEqual(*in.Detail(), f.detail) {
			t.Errorf("%s: %s %+v, want %s %+v", f.name, in.App(), *in.Detail(), f.app, f.detail)
		}
		if !in.Done() {
			t.Errorf("%s: not done", f.name)
		}
	}
}
