package dpi

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strconv"

	"golang.org/x/net/dns/dnsmessage"
)

// NewDNS returns the parser of DNS messages (RFC 1035), over UDP (one message per
// datagram) or TCP (each message after a 2-byte length, RFC 7766).
//
// A message matches when its header is sane and it parses to the end: opcode QUERY,
// NOTIFY or UPDATE, the reserved Z bit clear, exactly one question of a known class, for
// a query no answers and no response code, and every section well formed (for a
// truncated response, as far as it goes). Random datagrams fail these checks. The first
// message gives Detail.DNS: ID, the question (lower case, without the final dot), and for
// a response its code and its A, AAAA and CNAME answers. The response to a query seen
// first, read when the other direction is shown, completes it.
//
// The parser holds no state and is safe for concurrent use.
func NewDNS() Parser { return dnsParser{} }

type dnsParser struct{}

func (dnsParser) App() App { return DNS }

const (
	dnsHeaderLen = 12
	// dnsMinRR is the smallest resource record: a root name, type, class, TTL and length.
	dnsMinRR = 11
	// dnsMaxAnswers bounds the answers kept of one message.
	dnsMaxAnswers = 32
	// dnsMaxQueryAdditionals allows an OPT and a TSIG or SIG(0) record in a query.
	dnsMaxQueryAdditionals = 2
)

// Header flags, from RFC 1035 section 4.1.1.
const (
	dnsFlagResponse  = 0x8000
	dnsFlagTruncated = 0x0200
	dnsFlagZ         = 0x0040
)

func (dnsParser) Inspect(t Transport, dir Direction, data []byte, d *Detail) Verdict {
	msg, partial := data, false
	switch t {
	case UDP:
	case TCP:
		if len(data) < 2 {
			return NeedMore
		}
		n := int(binary.BigEndian.Uint16(data))
		if n < dnsHeaderLen {
			return NoMatch
		}
		msg = data[2:]
		if len(msg) >= dnsHeaderLen && !dnsHeaderOK(msg) {
			return NoMatch
		}
		if len(msg) < n {
			switch {
			case dir == FromClient && n > MaxInspect-2:
				return NoMatch // a query is short
			case len(data) < MaxInspect:
				return NeedMore
			}
			// A response longer than what is inspected (a zone transfer): read its
			// beginning.
			partial = true
		} else {
			msg = msg[:n]
		}
	default:
		return NoMatch
	}
	m := new(DNSMessage)
	if !dnsParse(msg, partial, m) {
		return NoMatch
	}
	if d.DNS == nil {
		d.DNS = m
	} else {
		dnsMerge(d.DNS, m)
	}
	return Match
}

// dnsHeaderOK checks the header at the start of msg, which holds at least its 12 bytes.
func dnsHeaderOK(msg []byte) bool {
	flags := binary.BigEndian.Uint16(msg[2:])
	qd := binary.BigEndian.Uint16(msg[4:])
	an := binary.BigEndian.Uint16(msg[6:])
	ns := binary.BigEndian.Uint16(msg[8:])
	ar := binary.BigEndian.Uint16(msg[10:])
	opcode := dnsmessage.OpCode(flags >> 11 & 0xf)
	if opcode != 0 && opcode != 4 && opcode != 5 || flags&dnsFlagZ != 0 || qd != 1 {
		return false
	}
	if flags&dnsFlagResponse != 0 {
		return true
	}
	// A query: no response code, not truncated; a standard query has no records but
	// EDNS and signatures (NOTIFY may carry an SOA, UPDATE its prerequisites and
	// updates).
	if flags&0xf != 0 || flags&dnsFlagTruncated != 0 {
		return false
	}
	return opcode != 0 || an == 0 && ns == 0 && ar <= dnsMaxQueryAdditionals
}

// dnsParse reads msg into m, reusing m's Answers and, where they spell the same name,
// its strings. partial says msg is only the beginning of the message: it is read as far
// as it goes, as is a truncated (TC) response.
func dnsParse(msg []byte, partial bool, m *DNSMessage) bool {
	if len(msg) < dnsHeaderLen || !dnsHeaderOK(msg) {
		return false
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	records := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:])) +
		int(binary.BigEndian.Uint16(msg[10:]))
	lenient := partial || flags&dnsFlagTruncated != 0
	if !lenient && len(msg) < dnsHeaderLen+5+records*dnsMinRR {
		return false
	}
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return false
	}
	q, err := p.Question()
	if err != nil || q.Type == 0 || !dnsClassOK(q.Class) {
		return false
	}
	prevQuery := m.Query
	*m = DNSMessage{ID: h.ID, Response: h.Response, Answers: m.Answers[:0]}
	m.Query = dnsName(&q.Name, prevQuery)
	m.QType = dnsTypeName(q.Type)
	if h.Response {
		m.RCode = dnsRCodeName(h.RCode)
	}
	if err := p.SkipAllQuestions(); err != nil {
		return false
	}
	for {
		rh, err := p.AnswerHeader()
		if err == dnsmessage.ErrSectionDone {
			break
		}
		if err == nil {
			if len(m.Answers) == dnsMaxAnswers || rh.Class != dnsmessage.ClassINET {
				err = p.SkipAnswer()
			} else {
				m.Answers, err = dnsAnswer(&p, &rh, m.Answers, m.Query)
			}
		}
		if err != nil {
			return lenient
		}
	}
	if err := p.SkipAllAuthorities(); err != nil {
		return lenient
	}
	if err := p.SkipAllAdditionals(); err != nil {
		return lenient
	}
	return true
}

// dnsAnswer reads the answer whose header p just read, keeps it if it is an A, AAAA or
// CNAME record, and returns answers. The names reuse the strings already held where they
// are equal: the question's, the record's previous occupant of the slot, the previous
// record's target.
func dnsAnswer(p *dnsmessage.Parser, rh *dnsmessage.ResourceHeader, answers []DNSAnswer, query string) ([]DNSAnswer, error) {
	var old DNSAnswer
	if len(answers) < cap(answers) {
		old = answers[:len(answers)+1][len(answers)]
	}
	prev := ""
	if len(answers) > 0 {
		prev = answers[len(answers)-1].Target
	}
	a := DNSAnswer{TTL: rh.TTL}
	switch rh.Type {
	case dnsmessage.TypeA:
		r, err := p.AResource()
		if err != nil {
			return answers, err
		}
		a.Type, a.Addr = "A", netip.AddrFrom4(r.A)
	case dnsmessage.TypeAAAA:
		r, err := p.AAAAResource()
		if err != nil {
			return answers, err
		}
		a.Type, a.Addr = "AAAA", netip.AddrFrom16(r.AAAA)
	case dnsmessage.TypeCNAME:
		r, err := p.CNAMEResource()
		if err != nil {
			return answers, err
		}
		a.Type, a.Target = "CNAME", dnsName(&r.CNAME, old.Target)
	default:
		return answers, p.SkipAnswer()
	}
	a.Name = dnsName(&rh.Name, query, prev, old.Name)
	return append(answers, a), nil
}

// dnsName returns n in lower case without its final dot ("." for the root); one of reuse
// when it spells the same name, so that a repeated name costs no allocation.
func dnsName(n *dnsmessage.Name, reuse ...string) string {
	raw := n.Data[:min(int(n.Length), len(n.Data))]
	if len(raw) > 1 && raw[len(raw)-1] == '.' {
		raw = raw[:len(raw)-1]
	}
	var buf [4 * len(n.Data)]byte
	s := lowerASCII(appendPrintable(buf[:0], raw, len(buf)))
	for _, r := range reuse {
		if string(s) == r {
			return r
		}
	}
	return string(s)
}

// dnsMerge completes the query q with its response r: same ID and question.
func dnsMerge(q, r *DNSMessage) {
	if q.Response || !r.Response || q.ID != r.ID || q.Query != r.Query || q.QType != r.QType {
		return
	}
	q.Response, q.RCode = true, r.RCode
	q.Answers = slices.Clone(r.Answers)
}

func dnsClassOK(c dnsmessage.Class) bool {
	switch c {
	case dnsmessage.ClassINET, dnsmessage.ClassCHAOS, dnsmessage.ClassHESIOD, 254, dnsmessage.ClassANY:
		return true
	}
	return false
}

var dnsTypeNames = map[dnsmessage.Type]string{
	1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT",
	28: "AAAA", 33: "SRV", 35: "NAPTR", 41: "OPT", 43: "DS", 46: "RRSIG", 47: "NSEC",
	48: "DNSKEY", 50: "NSEC3", 52: "TLSA", 64: "SVCB", 65: "HTTPS", 99: "SPF",
	251: "IXFR", 252: "AXFR", 255: "ANY", 257: "CAA",
}

// dnsTypeName is the mnemonic of a record type, or "TYPEn" (RFC 3597).
func dnsTypeName(t dnsmessage.Type) string {
	if s, ok := dnsTypeNames[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

var dnsRCodeNames = [...]string{
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN",
	"YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE",
}

// dnsRCodeName is the mnemonic of a response code, or "RCODEn".
func dnsRCodeName(c dnsmessage.RCode) string {
	if int(c) < len(dnsRCodeNames) {
		return dnsRCodeNames[c]
	}
	return "RCODE" + strconv.Itoa(int(c))
}

// dnsFramer splits one direction of DNS over TCP into messages once the flow is DNS. It
// buffers at most one message of up to MaxInspect bytes; longer ones are passed over.
type dnsFramer struct {
	prefix  [2]byte
	nprefix uint8
	need    int    // bytes of the current message still to come
	skip    bool   // the current message is too long to be read
	msg     []byte // the current message so far, when it spans segments
}

// startDNS sends the DNS messages seen so far to onDNS, when the flow has just matched
// DNS with v, the bytes of dir.
func (in *Inspector) startDNS(t Transport, dir Direction, v []byte) {
	if t == UDP {
		in.emitDNS(v)
		return
	}
	in.streamDNS(dir, v)
	if o := &in.dir[dir.Other()]; len(o.buf) > 0 {
		in.streamDNS(dir.Other(), o.buf)
	}
	for i := range in.dir {
		s := &in.dir[i]
		// Bytes past MaxInspect were not kept: the framing is lost.
		if len(s.buf) == MaxInspect || Direction(i) == dir && len(v) == MaxInspect {
			s.close()
		}
		s.buf = nil
	}
	in.closed()
}

// feedDNS reads the new bytes of a DNS flow.
func (in *Inspector) feedDNS(t Transport, dir Direction, payload []byte) {
	if t == UDP {
		in.emitDNS(payload)
		return
	}
	in.streamDNS(dir, payload)
}

// streamDNS reads b, the next bytes of dir, in messages.
func (in *Inspector) streamDNS(dir Direction, b []byte) {
	f := &in.dir[dir].dns
	for len(b) > 0 {
		if f.need == 0 {
			f.prefix[f.nprefix] = b[0]
			f.nprefix++
			b = b[1:]
			if f.nprefix == 2 {
				f.nprefix = 0
				f.need = int(binary.BigEndian.Uint16(f.prefix[:]))
				f.skip = f.need > MaxInspect
				f.msg = f.msg[:0]
			}
			continue
		}
		n := min(f.need, len(b))
		chunk := b[:n]
		b = b[n:]
		f.need -= n
		switch {
		case f.skip:
		case f.need == 0 && len(f.msg) == 0:
			in.emitDNS(chunk)
		default:
			if f.msg == nil {
				f.msg = make([]byte, 0, f.need+n)
			}
			f.msg = append(f.msg, chunk...)
			if f.need == 0 {
				in.emitDNS(f.msg)
				f.msg = f.msg[:0]
			}
		}
	}
}

// emitDNS hands one DNS message to onDNS, and completes the flow's query with it.
func (in *Inspector) emitDNS(msg []byte) {
	m := &in.dnsMsg
	if !dnsParse(msg, false, m) {
		return
	}
	if in.detail.DNS != nil {
		dnsMerge(in.detail.DNS, m)
	}
	in.onDNS(m)
}
