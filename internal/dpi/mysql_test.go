package dpi_test

import (
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/dpi"
)

// mysqlPacket frames payload as a MySQL packet: 3-byte length, sequence id.
func mysqlPacket(seq byte, payload string) string {
	n := len(payload)
	return string([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}) + payload
}

// mysql8Handshake is the initial handshake of a MySQL 8 server, as the protocol
// documentation lays it out.
func mysql8Handshake(version string) string {
	return mysqlPacket(0, "\x0a"+version+"\x00"+"\x08\x00\x00\x00"+"abcdefgh"+"\x00"+"\xff\xff"+"\xff"+"\x02\x00"+"\xff\xdf"+"\x15"+
		strings.Repeat("\x00", 10)+"ijklmnopqrst\x00"+"caching_sha2_password\x00")
}

// mysql8Response is a HandshakeResponse41 of a MySQL 8 client with the given
// capabilities (little-endian), user and, when caps ask for it, database.
func mysql8Response(caps string, user, db string) string {
	p := caps + "\x00\x00\x00\x01" + "\xff" + strings.Repeat("\x00", 23) + user + "\x00" + "\x14" + strings.Repeat("\x5a", 20)
	if db != "" {
		p += db + "\x00"
	}
	return mysqlPacket(1, p+"caching_sha2_password\x00")
}

func TestMySQL(t *testing.T) {
	c, s := dpi.FromClient, dpi.FromServer
	const (
		capsDB   = "\x0d\xa2\x08\x00" // LONG_PASSWORD, LONG_FLAG, CONNECT_WITH_DB, PROTOCOL_41, TRANSACTIONS, SECURE_CONNECTION, PLUGIN_AUTH
		capsNoDB = "\x05\xa2\x08\x00"
	)
	appRunCases(t, dpi.NewMySQL(), []appCase{
		{name: "mysql 8 handshake", dir: s, data: mysql8Handshake("8.0.36"), want: dpi.Match, detail: dpi.Detail{Version: "8.0.36"}},
		{name: "mariadb handshake", dir: s, data: mysql8Handshake("5.5.5-10.6.12-MariaDB-1:10.6.12+maria~deb11"), want: dpi.Match, detail: dpi.Detail{Version: "10.6.12-MariaDB-1:10.6.12+maria~deb11"}},
		{name: "version not a version", dir: s, data: mysql8Handshake("abc"), want: dpi.NoMatch},
		{name: "version empty", dir: s, data: mysql8Handshake(""), want: dpi.NoMatch},
		{name: "version with control byte", dir: s, data: mysql8Handshake("8.0\x01"), want: dpi.NoMatch},
		{name: "handshake sequence 1", dir: s, data: "\x4a\x00\x00\x01\x0a8.0.36\x00", want: dpi.NoMatch},
		{name: "handshake oversized", dir: s, data: "\xff\xff\xff\x00\x0a8.0.36\x00", want: dpi.NoMatch},
		{name: "handshake protocol 9", dir: s, data: mysqlPacket(0, "\x098.0.36\x00abcd"), want: dpi.NoMatch},
		{name: "too many connections", dir: s, data: mysqlPacket(0, "\xff\x10\x04Too many connections"), want: dpi.Match},
		{name: "host not allowed", dir: s, data: mysqlPacket(0, "\xff\x6a\x04Host '172.17.0.1' is not allowed to connect to this MariaDB server"), want: dpi.Match},
		{name: "error code out of range", dir: s, data: mysqlPacket(0, "\xff\x01\x00Too many connections"), want: dpi.NoMatch},
		{name: "error with control bytes", dir: s, data: mysqlPacket(0, "\xff\x10\x04Too\x00many"), want: dpi.NoMatch},
		{name: "server says SSH", dir: s, data: "SSH-2.0-OpenSSH_9.2\r\n", want: dpi.NoMatch},

		{name: "response with database", dir: c, data: mysql8Response(capsDB, "app", "orders"), want: dpi.Match, detail: dpi.Detail{User: "app", Database: "orders"}},
		{name: "response without database", dir: c, data: mysql8Response(capsNoDB, "app", ""), want: dpi.Match, detail: dpi.Detail{User: "app"}},
		{name: "response empty user", dir: c, data: mysql8Response(capsNoDB, "", ""), want: dpi.Match},
		{name: "response user too long", dir: c, data: mysql8Response(capsNoDB, strings.Repeat("u", 500), ""), want: dpi.NoMatch},
		{name: "response filler not zero", dir: c, data: mysqlPacket(1, capsDB+"\x00\x00\x00\x01\xff"+strings.Repeat("\x00", 22)+"\x01"+"app\x00"), want: dpi.NoMatch},
		{name: "response charset zero", dir: c, data: mysqlPacket(1, capsDB+"\x00\x00\x00\x01\x00"+strings.Repeat("\x00", 23)+"app\x00"), want: dpi.NoMatch},
		{name: "response without protocol 41", dir: c, data: mysqlPacket(1, "\x0d\x00\x00\x00\x00\x00\x00\x01\xff"+strings.Repeat("\x00", 23)+"app\x00"), want: dpi.NoMatch},
		{name: "response sequence 0", dir: c, data: mysqlPacket(0, capsDB+"\x00\x00\x00\x01\xff"+strings.Repeat("\x00", 23)+"app\x00"), want: dpi.NoMatch},
		{name: "response auth past packet", dir: c, data: mysqlPacket(1, capsDB+"\x00\x00\x00\x01\xff"+strings.Repeat("\x00", 23)+"app\x00\xf0abc"), want: dpi.NoMatch},
		{name: "response oversized", dir: c, data: "\xff\xff\xff\x01" + capsDB, want: dpi.NoMatch},
		{name: "response longer than inspected", dir: c, data: mysqlPacket(1, "\x09\xa2\x28\x00"+"\x00\x00\x00\x01\xff"+strings.Repeat("\x00", 23)+"app\x00"+"\xfc\x68\x10"+strings.Repeat("\x5a", 4200)+"orders\x00")[:dpi.MaxInspect], want: dpi.Match, detail: dpi.Detail{User: "app"}},
		{name: "ssl request", dir: c, data: mysqlPacket(1, "\x0d\xaa\x08\x00\x00\x00\x00\x01\xff"+strings.Repeat("\x00", 23)), want: dpi.Match},
		{name: "short request without ssl", dir: c, data: mysqlPacket(1, capsDB+"\x00\x00\x00\x01\xff"+strings.Repeat("\x00", 23)), want: dpi.NoMatch},
		{name: "over UDP", dir: s, data: mysql8Handshake("8.0.36"), want: dpi.NoMatch, udp: true},
	})
}
