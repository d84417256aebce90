package dpi

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// Builders of TLS messages for the cases no capture covers.

func tlsVec8(body []byte) []byte { return append([]byte{byte(len(body))}, body...) }
func tlsVec16(body []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(body))), body...)
}

func tlsExt(typ uint16, body []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, typ), tlsVec16(body)...)
}

func tlsSNIExt(name string) []byte {
	return tlsExt(tlsExtServerName, tlsVec16(append([]byte{0}, tlsVec16([]byte(name))...)))
}

func tlsALPNExt(protos ...string) []byte {
	var list []byte
	for _, p := range protos {
		list = append(list, tlsVec8([]byte(p))...)
	}
	return tlsExt(tlsExtALPN, tlsVec16(list))
}

func tlsVersionsExt(vs ...uint16) []byte {
	var list []byte
	for _, v := range vs {
		list = binary.BigEndian.AppendUint16(list, v)
	}
	return tlsExt(tlsExtSupportedVersions, tlsVec8(list))
}

// tlsRecord wraps a handshake message of type typ and body in one record.
func tlsRecord(typ byte, body []byte) []byte {
	msg := append([]byte{typ, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
	return append([]byte{tlsRecordHandshake, 3, 1, byte(len(msg) >> 8), byte(len(msg))}, msg...)
}

func tlsClientHelloRecord(legacy uint16, exts ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, legacy)
	b = append(b, make([]byte, 32)...)             // random
	b = append(b, 0)                               // session id
	b = append(b, tlsVec16([]byte{0x13, 0x01})...) // cipher suites
	b = append(b, 1, 0)                            // compression methods
	if exts != nil {
		b = append(b, tlsVec16(bytes.Join(exts, nil))...)
	}
	return tlsRecord(tlsClientHello, b)
}

func tlsServerHelloRecord(legacy uint16, compression byte, exts ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, legacy)
	b = append(b, make([]byte, 32)...)
	b = append(b, 0, 0x13, 0x01, compression)
	if exts != nil {
		b = append(b, tlsVec16(bytes.Join(exts, nil))...)
	}
	return tlsRecord(tlsServerHello, b)
}

func TestTLSParser(t *testing.T) {
	curl := string(captured(t, "tls/curl-tls13.client"))
	joined := bytes.Join(tlsRecords(t, []byte(curl), 1, 2, 3, 200), nil)
	padded := tlsClientHelloRecord(0x0303, tlsSNIExt("big.example"), tlsExt(21, make([]byte, 5000)), tlsALPNExt("h2"))
	serverSNIAck := tlsServerHelloRecord(0x0303, 0, tlsExt(tlsExtServerName, nil))
	badRecords := bytes.Join(tlsRecords(t, []byte(curl), 100), nil)
	badRecords[5+100] = 23 // the second record is application data
	checkParser(t, NewTLS(), []parserCase{
		{name: "curl", in: curl, v: Match, want: Detail{TLSVersion: "TLS 1.3", SNI: "example.test", ALPN: []string{"h2", "http/1.1"}}},
		{name: "go", in: string(captured(t, "tls/go-tls13.client")), v: Match, want: Detail{TLSVersion: "TLS 1.3", SNI: "api.example.test", ALPN: []string{"h2", "http/1.1"}}},
		{name: "openssl server 1.2", dir: FromServer, in: string(captured(t, "tls/openssl-tls12.server")), v: Match, want: Detail{TLSVersion: "TLS 1.2"}},
		{name: "openssl server 1.3", dir: FromServer, in: string(captured(t, "tls/curl-tls13.server")), v: Match, want: Detail{TLSVersion: "TLS 1.3"}},
		{name: "hello in five records", in: string(joined), v: Match, want: Detail{TLSVersion: "TLS 1.3", SNI: "example.test", ALPN: []string{"h2", "http/1.1"}}},
		{name: "SSL 3.0", in: string(tlsClientHelloRecord(0x0300)), v: Match, want: Detail{TLSVersion: "SSL 3.0"}},
		{name: "TLS 1.0, SNI in capitals", in: string(tlsClientHelloRecord(0x0301, tlsSNIExt("Mixed.Case.EXAMPLE"))), v: Match, want: Detail{TLSVersion: "TLS 1.0", SNI: "mixed.case.example"}},
		{name: "GREASE", in: string(tlsClientHelloRecord(0x0303, tlsVersionsExt(0x1a1a, 0x0304, 0x0303), tlsALPNExt("h3", "spdy/3.1"))), v: Match, want: Detail{TLSVersion: "TLS 1.3", ALPN: []string{"h3", "spdy/3.1"}}},
		{name: "unknown version only", in: string(tlsClientHelloRecord(0x0303, tlsVersionsExt(0x7f17))), v: Match, want: Detail{}},
		{name: "only GREASE versions", in: string(tlsClientHelloRecord(0x0303, tlsVersionsExt(0x0a0a))), v: NoMatch},
		{name: "server acknowledges SNI", dir: FromServer, in: string(serverSNIAck), v: Match, want: Detail{TLSVersion: "TLS 1.2"}},
		{name: "server chooses 1.3", dir: FromServer, in: string(tlsServerHelloRecord(0x0303, 0, tlsExt(tlsExtSupportedVersions, []byte{3, 4}))), v: Match, want: Detail{TLSVersion: "TLS 1.3"}},
		{name: "hello longer than MaxInspect", in: string(padded[:MaxInspect]), v: Match, want: Detail{TLSVersion: "TLS 1.2", SNI: "big.example"}},
		{name: "hello longer than seen", in: string(padded[:MaxInspect-1]), v: NeedMore},

		{name: "one byte", in: "\x16", v: NeedMore},
		{name: "record header", in: "\x16\x03\x01\x02\x00", v: NeedMore},
		{name: "cut hello", in: curl[:100], v: NeedMore},
		{name: "application data", in: "\x17\x03\x03\x00\x10", v: NoMatch},
		{name: "major version 2", in: "\x16\x02", v: NoMatch},
		{name: "minor version 5", in: "\x16\x03\x05", v: NoMatch},
		{name: "empty record", in: "\x16\x03\x01\x00\x00", v: NoMatch},
		{name: "record too long", in: "\x16\x03\x01\x48\x01", v: NoMatch},
		{name: "certificate first", in: "\x16\x03\x03\x00\x30\x0b", v: NoMatch},
		{name: "hello too short", in: "\x16\x03\x01\x00\x08\x01\x00\x00\x04", v: NoMatch},
		{name: "other record inside the hello", in: string(badRecords), v: NoMatch},
		{name: "SSLv2 hello", in: "\x80\x2e\x01\x00\x02", v: NoMatch},
		{name: "extension past the end", in: string(tlsClientHelloRecord(0x0303, []byte{0, 0, 0, 9, 1})), v: NoMatch},
		{name: "bad server_name", in: string(tlsClientHelloRecord(0x0303, tlsExt(tlsExtServerName, []byte{0, 5, 0, 0, 9}))), v: NoMatch},
		{name: "empty ALPN name", in: string(tlsClientHelloRecord(0x0303, tlsALPNExt("h2", ""))), v: NoMatch},
		{name: "compressing server", dir: FromServer, in: string(tlsServerHelloRecord(0x0303, 1)), v: NoMatch},
		{name: "hello version 2.0", in: string(tlsClientHelloRecord(0x0200)), v: NoMatch},
		{name: "HTTP", in: "GET / HTTP/1.1\r\n\r\n", v: NoMatch},
		{name: "UDP", t: UDP, in: curl, v: NoMatch},
	})
}

func TestTLSPrefixes(t *testing.T) {
	checkPrefixes(t, NewTLS(), FromClient, "tls/curl-tls13.client", "tls/go-tls13.client", "tls/openssl-tls12.client")
	checkPrefixes(t, NewTLS(), FromServer, "tls/curl-tls13.server", "tls/openssl-tls12.server")
}

func FuzzTLS(f *testing.F) {
	fuzzParser(f, NewTLS(), "tls/curl-tls13.client", "tls/go-tls13.client", "tls/openssl-tls12.client", "tls/curl-tls13.server", "tls/openssl-tls12.server")
}
