// Command dnsserver is a small authoritative DNS server for integration tests: it answers
// A queries for the names given as arguments ("name=ip") with TTL 300, and NXDOMAIN for
// anything else, on UDP port 53.
package main

import (
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

func main() {
	records := map[string]netip.Addr{}
	for _, arg := range os.Args[1:] {
		name, ip, ok := strings.Cut(arg, "=")
		addr, err := netip.ParseAddr(ip)
		if !ok || err != nil || !addr.Is4() {
			log.Fatalf("argument %q: want name=ipv4", arg)
		}
		records[strings.ToLower(strings.TrimSuffix(name, "."))+"."] = addr
	}
	conn, err := net.ListenPacket("udp", ":53")
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			log.Fatal(err)
		}
		resp, err := answer(buf[:n], records)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad query:", err)
			continue
		}
		if _, err := conn.WriteTo(resp, from); err != nil {
			fmt.Fprintln(os.Stderr, "reply:", err)
		}
	}
}

func answer(query []byte, records map[string]netip.Addr) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.EnableCompression()
	addr, ok := records[strings.ToLower(q.Name.String())]
	if !ok {
		b = dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RCode: dnsmessage.RCodeNameError})
	}
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if ok && q.Type == dnsmessage.TypeA {
		if err := b.StartAnswers(); err != nil {
			return nil, err
		}
		rh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 300}
		if err := b.AResource(rh, dnsmessage.AResource{A: addr.As4()}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}
