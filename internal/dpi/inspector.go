package dpi

import "unicode/utf8"

// MaxPackets is how many payload packets of each direction are inspected, at most. A flow
// that no parser settled within them is Unknown.
const MaxPackets = 8

// maxParsers is how many parsers one Inspector can hold: the candidates are a bit set.
const maxParsers = 64

// Inspector identifies the application of one flow from the first bytes of each
// direction. Make one per flow with NewInspector (the zero value is not usable) and Feed
// it every packet of the flow; once Done, Feed costs a comparison and allocates nothing.
//
// An Inspector is not safe for concurrent use: a flow's packets are fed by one goroutine.
type Inspector struct {
	parsers []Parser
	onDNS   func(*DNSMessage)

	cand    uint64 // bit i set: parsers[i] may still match
	matched Parser // nil until a parser matched
	app     App
	done    bool
	// dnsStream is set once the flow is DNS and onDNS wants every message of it.
	dnsStream bool

	dir [2]stream
	// detail is allocated when a parser matches, apart from the Inspector, so that a
	// caller may keep it and drop the Inspector.
	detail  *Detail
	scratch Detail     // what a parser that has not matched yet writes into
	dnsMsg  DNSMessage // reused for every message handed to onDNS
}

// stream is one direction of a flow.
type stream struct {
	started bool
	// closed: nothing more of this direction is looked at (a gap in the sequence, the
	// matched parser answered for it, or it ran out of bytes or packets).
	closed  bool
	next    uint32 // TCP: sequence number of the next byte expected
	packets uint8
	// buf holds the bytes seen so far while they may still have to be shown again; it is
	// nil until a parser asks for more than the first segment, and nil again when done.
	buf []byte
	dns dnsFramer // DNS over TCP, once the flow is DNS and onDNS is set
}

// NewInspector returns an Inspector for one new flow. parsers are tried in order and the
// first to match wins; nil means Parsers(). The slice is not copied: it must not change
// while an Inspector uses it, and one slice serves any number of Inspectors. More than
// 64 parsers is a programming error: NewInspector panics.
//
// onDNS, if not nil, is called with every DNS message of the flow once it is DNS,
// including the first, for as long as the flow is fed (Done then stays false, except on
// TCP after a gap in both directions). The message and its Answers are reused after the
// call returns: keep copies, not the pointer. The strings may be kept.
func NewInspector(parsers []Parser, onDNS func(*DNSMessage)) *Inspector {
	if parsers == nil {
		parsers = defaultParsers
	}
	if len(parsers) > maxParsers {
		panic("dpi: NewInspector given more than 64 parsers")
	}
	in := &Inspector{parsers: parsers, onDNS: onDNS}
	in.Reset()
	return in
}

// Reset makes in ready for a new flow, with the same parsers and onDNS. It lets a flow
// table reuse Inspectors.
func (in *Inspector) Reset() {
	*in = Inspector{parsers: in.parsers, onDNS: in.onDNS, app: Unknown}
	// With 64 parsers the shift gives 0 and the subtraction wraps to all ones.
	in.cand = 1<<len(in.parsers) - 1
}

// App is the application identified so far: Unknown until a parser matched, and for good
// if none did. Once not Unknown it changes no more, except that an HTTP/2 flow becomes
// GRPC when its request headers say so.
func (in *Inspector) App() App { return in.app }

// Detail is what the parsers learned about the flow: nil until a parser matched, then
// the same pointer for good, completed by the other direction until Done. It does not
// hold the Inspector's memory: keep it and drop the Inspector once Done.
func (in *Inspector) Detail() *Detail { return in.detail }

// Done reports whether Feed has nothing more to do for this flow.
func (in *Inspector) Done() bool { return in.done }

// Feed shows the Inspector one packet's payload: t is the flow's transport (the same for
// every packet), dir who sent it, seq (TCP only) the sequence number of the payload's
// first byte (for a SYN that carries data, as TCP Fast Open does, the segment's plus one).
// It reports whether the flow is done: App and Detail are final and later calls return
// at once. Empty payloads are ignored. The payload is not kept after the call.
//
// TCP bytes are taken in order from the first segment with payload in each direction:
// bytes seen before are skipped, and a segment that starts past the next expected byte
// ends the inspection of that direction, since what follows a hole cannot be read.
func (in *Inspector) Feed(t Transport, dir Direction, seq uint32, payload []byte) (done bool) {
	if in.done || len(payload) == 0 || dir > FromServer {
		return in.done
	}
	s := &in.dir[dir]
	if s.closed {
		return false
	}
	if t == TCP {
		payload = s.accept(seq, payload)
		if s.closed {
			in.closed()
			return in.done
		}
		if len(payload) == 0 {
			return false
		}
	}
	switch {
	case in.dnsStream:
		in.feedDNS(t, dir, payload)
	case in.matched == nil:
		in.identify(t, dir, payload)
	default:
		in.complete(t, dir, payload)
	}
	return in.done
}

// accept returns the part of a TCP segment not seen before in this direction (empty for
// a retransmission), and closes the direction when the segment leaves a hole.
func (s *stream) accept(seq uint32, payload []byte) []byte {
	if !s.started {
		s.started = true
		s.next = seq + uint32(len(payload))
		return payload
	}
	if int32(seq-s.next) > 0 {
		s.close()
		return nil
	}
	// Serial arithmetic (RFC 1982): seq is at or before next, possibly across the wrap.
	old := s.next - seq
	if uint64(old) >= uint64(len(payload)) {
		return nil
	}
	payload = payload[old:]
	s.next += uint32(len(payload))
	return payload
}

func (s *stream) close() {
	s.closed = true
	s.buf = nil
	s.dns.msg = nil
}

// closed is called when a direction closed on a gap. Before a parser matched, the other
// direction may still settle the flow; after, the parser may still be waiting for it.
func (in *Inspector) closed() {
	if in.dir[0].closed && in.dir[1].closed {
		in.finish()
	}
}

// view returns the bytes of s to show the parsers after payload arrived, without copying
// when payload is the first segment, and whether the direction reached MaxInspect.
func (s *stream) view(payload []byte) ([]byte, bool) {
	if len(s.buf) == 0 {
		if len(payload) >= MaxInspect {
			return payload[:MaxInspect], true
		}
		return payload, false
	}
	room := MaxInspect - len(s.buf)
	if len(payload) > room {
		payload = payload[:room]
	}
	s.buf = append(s.buf, payload...)
	return s.buf, len(s.buf) == MaxInspect
}

// keep makes sure the bytes last shown are buffered for the next segment.
func (s *stream) keep(v []byte) {
	if len(s.buf) == 0 {
		s.buf = append(make([]byte, 0, bufSize(len(v))), v...)
	}
}

// bufSize is the capacity of a new buffer: room for a second segment of the same size,
// within MaxInspect.
func bufSize(n int) int { return min(max(2*n, 512), MaxInspect) }

// identify offers the bytes of dir to every candidate parser.
func (in *Inspector) identify(t Transport, dir Direction, payload []byte) {
	s := &in.dir[dir]
	s.packets++
	v, full := payload, false
	if t == TCP {
		v, full = s.view(payload)
	}
	for i, p := range in.parsers {
		bit := uint64(1) << i
		if in.cand&bit == 0 {
			continue
		}
		in.scratch = Detail{}
		switch p.Inspect(t, dir, v, &in.scratch) {
		case Match:
			in.settle(t, dir, p, v)
			return
		case NeedMore:
		default:
			in.cand &^= bit
		}
	}
	switch {
	case in.cand == 0, full, s.packets >= MaxPackets:
		in.finish()
	case t == TCP:
		s.keep(v)
	}
}

// settle makes p the flow's parser after it matched v, the bytes of dir.
func (in *Inspector) settle(t Transport, dir Direction, p Parser, v []byte) {
	in.matched = p
	in.cand = 0
	in.app = p.App()
	d := new(Detail)
	*d, in.scratch = in.scratch, Detail{}
	in.detail = d
	in.refine()
	if p.App() == DNS && in.onDNS != nil {
		in.dnsStream = true
		in.startDNS(t, dir, v)
		return
	}
	in.dir[dir].closed = true
	in.dir[dir].buf = nil
	other := &in.dir[dir.Other()]
	switch {
	case other.closed:
		in.finish()
	case len(other.buf) > 0:
		// The other direction spoke first and was kept: the parser may now read it with
		// what it learned.
		in.answer(t, dir.Other(), other.buf, len(other.buf) == MaxInspect)
	}
}

// complete shows the matched parser the bytes of the direction it has not settled yet.
func (in *Inspector) complete(t Transport, dir Direction, payload []byte) {
	s := &in.dir[dir]
	s.packets++
	v, full := payload, false
	if t == TCP {
		v, full = s.view(payload)
	}
	in.answer(t, dir, v, full)
}

// answer shows v, the bytes of dir, to the matched parser and acts on its verdict.
func (in *Inspector) answer(t Transport, dir Direction, v []byte, full bool) {
	s := &in.dir[dir]
	verdict := in.matched.Inspect(t, dir, v, in.detail)
	in.refine()
	if verdict != NeedMore || full || s.packets >= MaxPackets {
		in.finish()
		return
	}
	if t == TCP {
		s.keep(v)
	}
}

// finish ends the inspection of the flow and frees what it held.
func (in *Inspector) finish() {
	in.done = true
	in.cand = 0
	in.dir[0].close()
	in.dir[1].close()
}

// appRefiner is implemented by parsers whose application depends on what they read
// (HTTP/2 carrying gRPC).
type appRefiner interface {
	refineApp(d *Detail) App
}

func (in *Inspector) refine() {
	if r, ok := in.matched.(appRefiner); ok {
		in.app = r.refineApp(in.detail)
	}
}

// appendPrintable appends b to dst as text fit for a Detail: valid UTF-8 is kept, control
// characters and bytes that are not UTF-8 are written as \xNN, and at most limit bytes
// are added, cut at a character boundary. Every string that a parser records passes
// through it: the bytes come from the network, and a peer must not be able to make Vigil
// store or log unbounded or unprintable text.
func appendPrintable(dst, b []byte, limit int) []byte {
	const hexDigits = "0123456789abcdef"
	end := len(dst) + limit
	for len(b) > 0 {
		if c := b[0]; c >= 0x20 && c < 0x7f {
			if len(dst) >= end {
				break
			}
			dst = append(dst, c)
			b = b[1:]
			continue
		}
		r, n := utf8.DecodeRune(b)
		if (r == utf8.RuneError && n <= 1) || r < 0x20 || (r >= 0x7f && r < 0xa0) {
			if len(dst)+4 > end {
				break
			}
			dst = append(dst, '\\', 'x', hexDigits[b[0]>>4], hexDigits[b[0]&0xf])
			b = b[1:]
			continue
		}
		if len(dst)+n > end {
			break
		}
		dst = append(dst, b[:n]...)
		b = b[n:]
	}
	return dst
}

// printable is appendPrintable into a new string.
func printable(b []byte, limit int) string {
	var buf [512]byte
	return string(appendPrintable(buf[:0], b, min(limit, len(buf))))
}

// printableLower is printable with the ASCII letters in lower case, for names.
func printableLower(b []byte, limit int) string {
	var buf [512]byte
	return string(lowerASCII(appendPrintable(buf[:0], b, min(limit, len(buf)))))
}

// lowerASCII lowercases the ASCII letters of b in place and returns it.
func lowerASCII(b []byte) []byte {
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}
