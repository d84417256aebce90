package flow

// PortHint names the service usually found on a server port. It is a hint shown beside
// the identified application, never a substitute for it.
func PortHint(proto uint8, port uint16) string {
	if proto == ProtoTCP {
		if s, ok := tcpPorts[port]; ok {
			return s
		}
	}
	if proto == ProtoUDP {
		if s, ok := udpPorts[port]; ok {
			return s
		}
	}
	return ""
}

var tcpPorts = map[uint16]string{
	22: "ssh", 25: "smtp", 53: "dns", 80: "http", 110: "pop3", 143: "imap", 443: "https",
	445: "smb", 993: "imaps", 995: "pop3s", 1433: "mssql", 1883: "mqtt", 2379: "etcd",
	3306: "mysql", 4222: "nats", 5432: "postgresql", 5672: "amqp", 6379: "redis",
	8080: "http-alt", 8443: "https-alt", 8500: "consul", 9092: "kafka", 9200: "elasticsearch",
	11211: "memcached", 27017: "mongodb",
}

var udpPorts = map[uint16]string{
	53: "dns", 67: "dhcp", 68: "dhcp", 123: "ntp", 161: "snmp", 443: "quic", 514: "syslog",
	5353: "mdns", 4789: "vxlan", 8472: "vxlan",
}
