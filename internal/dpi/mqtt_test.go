package dpi_test

import (
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/dpi"
)

// mqttConnect is a CONNECT packet: protocol name and level, flags, keep-alive 60,
// properties (MQTT 5, with their length byte) and the client id; rest follows it.
func mqttConnect(name string, level, flags byte, props, clientID, rest string) string {
	body := "\x00" + string(rune(len(name))) + name + string([]byte{level, flags, 0, 60}) + props +
		string([]byte{byte(len(clientID) >> 8), byte(len(clientID))}) + clientID + rest
	n := len(body)
	var remain []byte
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			remain = append(remain, b|0x80)
			continue
		}
		remain = append(remain, b)
		break
	}
	return "\x10" + string(remain) + body
}

func TestMQTT(t *testing.T) {
	c, s := dpi.FromClient, dpi.FromServer
	appRunCases(t, dpi.NewMQTT(), []appCase{
		{name: "3.1.1", dir: c, data: mqttConnect("MQTT", 4, 0x02, "", "sensor-1", ""), want: dpi.Match, detail: dpi.Detail{User: "sensor-1"}},
		{name: "3.1.1 with login", dir: c, data: mqttConnect("MQTT", 4, 0xc2, "", "sensor-1", "\x00\x04user\x00\x04pass"), want: dpi.Match, detail: dpi.Detail{User: "sensor-1"}},
		{name: "3.1", dir: c, data: mqttConnect("MQIsdp", 3, 0x02, "", "sensor-1", ""), want: dpi.Match, detail: dpi.Detail{User: "sensor-1"}},
		{name: "5 with properties", dir: c, data: mqttConnect("MQTT", 5, 0x02, "\x05\x11\x00\x00\x0e\x10", "sensor-1", ""), want: dpi.Match, detail: dpi.Detail{User: "sensor-1"}},
		{name: "5 password without user", dir: c, data: mqttConnect("MQTT", 5, 0x42, "\x00", "s", "\x00\x02pw"), want: dpi.Match, detail: dpi.Detail{User: "s"}},
		{name: "bridge", dir: c, data: mqttConnect("MQTT", 0x84, 0x02, "", "bridge-a", ""), want: dpi.Match, detail: dpi.Detail{User: "bridge-a"}},
		{name: "empty client id", dir: c, data: mqttConnect("MQTT", 4, 0x02, "", "", ""), want: dpi.Match},
		{name: "long remaining length", dir: c, data: mqttConnect("MQTT", 4, 0x06, "", "s", "\x00\x01t\x00\xc8"+strings.Repeat("p", 200)), want: dpi.Match, detail: dpi.Detail{User: "s"}},
		{name: "5 properties longer than inspected", dir: c, data: mqttConnect("MQTT", 5, 0x02, "\x88\x27"+strings.Repeat("\x26", 5000), "s", "")[:dpi.MaxInspect], want: dpi.Match},
		{name: "level 6", dir: c, data: mqttConnect("MQTT", 6, 0x02, "", "s", ""), want: dpi.NoMatch},
		{name: "MQTT level 3", dir: c, data: mqttConnect("MQTT", 3, 0x02, "", "s", ""), want: dpi.NoMatch},
		{name: "MQIsdp level 4", dir: c, data: mqttConnect("MQIsdp", 4, 0x02, "", "s", ""), want: dpi.NoMatch},
		{name: "other name", dir: c, data: mqttConnect("MQXX", 4, 0x02, "", "s", ""), want: dpi.NoMatch},
		{name: "reserved flag", dir: c, data: mqttConnect("MQTT", 4, 0x03, "", "s", ""), want: dpi.NoMatch},
		{name: "will qos 3", dir: c, data: mqttConnect("MQTT", 4, 0x1e, "", "s", ""), want: dpi.NoMatch},
		{name: "will qos without will", dir: c, data: mqttConnect("MQTT", 4, 0x0a, "", "s", ""), want: dpi.NoMatch},
		{name: "3.1.1 password without user", dir: c, data: mqttConnect("MQTT", 4, 0x42, "", "s", ""), want: dpi.NoMatch},
		{name: "client id control byte", dir: c, data: mqttConnect("MQTT", 4, 0x02, "", "s\x00", ""), want: dpi.NoMatch},
		{name: "client id not UTF-8", dir: c, data: mqttConnect("MQTT", 4, 0x02, "", "s\xff", ""), want: dpi.NoMatch},
		{name: "client id past packet", dir: c, data: "\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x09sensor", want: dpi.NoMatch},
		{name: "properties past packet", dir: c, data: "\x10\x0d\x00\x04MQTT\x05\x02\x00\x3c\x7f\x00\x00", want: dpi.NoMatch},
		{name: "remaining length five bytes", dir: c, data: "\x10\xff\xff\xff\xff\x7f", want: dpi.NoMatch},
		{name: "remaining length not shortest", dir: c, data: "\x10\x8c\x00\x00\x04MQTT", want: dpi.NoMatch},
		{name: "remaining length too small", dir: c, data: "\x10\x05\x00\x04MQTT", want: dpi.NoMatch},
		{name: "connect with flags", dir: c, data: "\x12\x0c\x00\x04MQTT", want: dpi.NoMatch},
		{name: "publish first", dir: c, data: "\x30\x0c\x00\x04test", want: dpi.NoMatch},
		{name: "over UDP", dir: c, data: mqttConnect("MQTT", 4, 0x02, "", "s", ""), want: dpi.NoMatch, udp: true},

		{name: "connack", dir: s, data: "\x20\x02\x00\x00", want: dpi.NeedMore},
		{name: "connack refused", dir: s, data: "\x20\x02\x00\x05", want: dpi.NeedMore},
		{name: "connack 5 with properties", dir: s, data: "\x20\x03\x00\x00\x00", want: dpi.NeedMore},
		{name: "connack bad code", dir: s, data: "\x20\x02\x00\x06", want: dpi.NoMatch},
		{name: "connack bad flags", dir: s, data: "\x20\x02\x02\x00", want: dpi.NoMatch},
		{name: "connack too long", dir: s, data: "\x20\xff\x7f", want: dpi.NoMatch},
		{name: "publish from server", dir: s, data: "\x30\x0c\x00\x04test", want: dpi.NoMatch},
	})
}
