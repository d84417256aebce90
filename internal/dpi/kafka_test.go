package dpi_test

import (
	"encoding/binary"
	"testing"

	"github.com/vigil-sec/vigil/internal/dpi"
)

// kafkaRequest is a request with header v1: size, API key, version, correlation id,
// client id (idLen -1 for null), then body.
func kafkaRequest(key, version int16, corr int32, idLen int16, id, body string) string {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, uint16(idLen))
	b = append(append(b, id...), body...)
	return string(binary.BigEndian.AppendUint32(nil, uint32(len(b)))) + string(b)
}

// kafkaApiVersionsV0 is an ApiVersions v0 response with the given error code and
// (key, min, max) entries.
func kafkaApiVersionsV0(errCode int16, entries ...[3]int16) string {
	b := binary.BigEndian.AppendUint32(nil, 0) // correlation id
	b = binary.BigEndian.AppendUint16(b, uint16(errCode))
	b = binary.BigEndian.AppendUint32(b, uint32(len(entries)))
	for _, e := range entries {
		for _, v := range e {
			b = binary.BigEndian.AppendUint16(b, uint16(v))
		}
	}
	return string(binary.BigEndian.AppendUint32(nil, uint32(len(b)))) + string(b)
}

func TestKafka(t *testing.T) {
	c, s := dpi.FromClient, dpi.FromServer
	metadata := "\x00\x00\x00\x01\x00\x06orders"
	appRunCases(t, dpi.NewKafka(), []appCase{
		{name: "metadata", dir: c, data: kafkaRequest(3, 1, 7, 10, "consumer-1", metadata), want: dpi.Match, detail: dpi.Detail{Command: "Metadata", User: "consumer-1"}},
		{name: "produce", dir: c, data: kafkaRequest(0, 9, 0, 10, "producer-1", "\x00"), want: dpi.Match, detail: dpi.Detail{Command: "Produce", User: "producer-1"}},
		{name: "sasl handshake", dir: c, data: kafkaRequest(17, 1, 0, 7, "rdkafka", "\x00\x05PLAIN"), want: dpi.Match, detail: dpi.Detail{Command: "SaslHandshake", User: "rdkafka"}},
		{name: "null client id", dir: c, data: kafkaRequest(18, 0, 0, -1, "", ""), want: dpi.Match, detail: dpi.Detail{Command: "ApiVersions"}},
		{name: "empty client id", dir: c, data: kafkaRequest(18, 0, 0, 0, "", ""), want: dpi.NoMatch},
		{name: "unknown api key", dir: c, data: kafkaRequest(200, 0, 0, 3, "abc", ""), want: dpi.NoMatch},
		{name: "version too high", dir: c, data: kafkaRequest(3, 40, 0, 3, "abc", ""), want: dpi.NoMatch},
		{name: "negative correlation id", dir: c, data: kafkaRequest(3, 1, -5, 3, "abc", ""), want: dpi.NoMatch},
		{name: "client id length negative", dir: c, data: kafkaRequest(3, 1, 0, -7, "abc", ""), want: dpi.NoMatch},
		{name: "client id oversized", dir: c, data: kafkaRequest(3, 1, 0, 2000, "abc", ""), want: dpi.NoMatch},
		{name: "client id past request", dir: c, data: "\x00\x00\x00\x0c\x00\x03\x00\x01\x00\x00\x00\x00\x00\x09abc", want: dpi.NoMatch},
		{name: "client id control byte", dir: c, data: kafkaRequest(3, 1, 0, 3, "a\x01c", ""), want: dpi.NoMatch},
		{name: "size oversized", dir: c, data: "\x7f\xff\xff\xff\x00\x03\x00\x01", want: dpi.NoMatch},
		{name: "size too small", dir: c, data: "\x00\x00\x00\x04\x00\x03\x00\x01", want: dpi.NoMatch},
		{name: "over UDP", dir: c, data: kafkaRequest(3, 1, 7, 10, "consumer-1", metadata), want: dpi.NoMatch, udp: true},

		{name: "api versions v0", dir: s, data: kafkaApiVersionsV0(0, [3]int16{0, 0, 9}, [3]int16{1, 0, 13}, [3]int16{3, 0, 12}), want: dpi.Match},
		{name: "api versions unsupported", dir: s, data: kafkaApiVersionsV0(35, [3]int16{18, 0, 3}), want: dpi.Match},
		{name: "api versions error", dir: s, data: kafkaApiVersionsV0(1, [3]int16{18, 0, 3}), want: dpi.NoMatch},
		{name: "api versions descending", dir: s, data: kafkaApiVersionsV0(0, [3]int16{3, 0, 12}, [3]int16{1, 0, 13}), want: dpi.NoMatch},
		{name: "api versions min above max", dir: s, data: kafkaApiVersionsV0(0, [3]int16{3, 12, 1}), want: dpi.NoMatch},
		{name: "api versions none", dir: s, data: kafkaApiVersionsV0(0), want: dpi.NoMatch},
		{name: "response oversized", dir: s, data: "\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00", want: dpi.NoMatch},
	})
}
