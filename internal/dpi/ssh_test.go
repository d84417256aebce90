package dpi

import (
	"strings"
	"testing"
)

func TestSSHParser(t *testing.T) {
	server := string(captured(t, "ssh/openssh.server"))
	checkParser(t, NewSSH(), []parserCase{
		{name: "openssh server", dir: FromServer, in: server, v: Match, want: Detail{Version: "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"}},
		{name: "openssh as client", in: server, v: Match, want: Detail{ClientVersion: "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"}},
		{name: "1.99", dir: FromServer, in: "SSH-1.99-Cisco-1.25\r\n", v: Match, want: Detail{Version: "SSH-1.99-Cisco-1.25"}},
		{name: "LF only", in: "SSH-2.0-Go\n", v: Match, want: Detail{ClientVersion: "SSH-2.0-Go"}},
		{name: "with KEXINIT", in: "SSH-2.0-paramiko_3.1.0\r\n\x00\x00\x01\x2c\x06\x14", v: Match, want: Detail{ClientVersion: "SSH-2.0-paramiko_3.1.0"}},
		{name: "S", in: "S", v: NeedMore},
		{name: "SSH-1.9", in: "SSH-1.9", v: NeedMore},
		{name: "no software yet", in: "SSH-2.0-", v: NeedMore},
		{name: "no line end yet", in: "SSH-2.0-OpenSSH_9.2", v: NeedMore},
		{name: "CR last", in: "SSH-2.0-OpenSSH_9.2\r", v: NeedMore},
		{name: "empty software", in: "SSH-2.0-\r\n", v: NoMatch},
		{name: "space for software", in: "SSH-2.0- comment\r\n", v: NoMatch},
		{name: "SSH 1.5", in: "SSH-1.5-old\r\n", v: NoMatch},
		{name: "CR inside", in: "SSH-2.0-a\rb\r\n", v: NoMatch},
		{name: "control byte", in: "SSH-2.0-a\x00\r\n", v: NoMatch},
		{name: "too long", in: "SSH-2.0-" + strings.Repeat("x", 300), v: NoMatch},
		{name: "line too long", in: "SSH-2.0-" + strings.Repeat("x", 250) + "\r\n", v: NoMatch},
		{name: "lower case", in: "ssh-2.0-x\r\n", v: NoMatch},
		{name: "HTTP", in: "GET / HTTP/1.1\r\n", v: NoMatch},
		{name: "UDP", t: UDP, in: "SSH-2.0-x\r\n", v: NoMatch},
	})
}

func TestSSHPrefixes(t *testing.T) {
	checkPrefixes(t, NewSSH(), FromServer, "ssh/openssh.server")
	checkPrefixes(t, NewSSH(), FromClient, "ssh/openssh.client")
}

func FuzzSSH(f *testing.F) {
	fuzzParser(f, NewSSH(), "ssh/openssh.client", "ssh/openssh.server")
}
