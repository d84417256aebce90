package dpi

import "encoding/binary"

// NewTLS returns the parser of TLS (SSL 3.0 to TLS 1.3) from its first handshake
// message.
//
// From the client, the ClientHello gives TLSVersion (the highest version offered, in the
// supported_versions extension or else the legacy field), SNI and ALPN. From the server,
// the ServerHello gives the version negotiated, which replaces the client's. The
// handshake message may span several records and segments: the parser answers NeedMore
// until it is whole, or reads what there is once MaxInspect bytes have been seen. Every
// length is checked against the one that holds it, so that random bytes that begin like
// a record are not taken for TLS.
//
// The parser holds no state and is safe for concurrent use.
func NewTLS() Parser { return tlsParser{} }

type tlsParser struct{}

func (tlsParser) App() App { return TLS }

// From RFC 8446 and RFC 6066.
const (
	tlsRecordHandshake    = 22
	tlsRecordHeaderLen    = 5
	tlsMaxRecord          = 1<<14 + 2048 // TLSCiphertext may exceed 2^14 by 2048
	tlsClientHello        = 1
	tlsServerHello        = 2
	tlsHandshakeHeaderLen = 4
	// A ServerHello has at least version, random, empty session id, cipher suite and
	// compression method; a ClientHello one cipher suite and one method more.
	tlsMinHello = 2 + 32 + 1 + 2 + 1
	// tlsMaxHello bounds a hello: its extensions have a 16-bit length.
	tlsMaxHello = 1 << 17

	tlsExtServerName        = 0
	tlsExtALPN              = 16
	tlsExtSupportedVersions = 43

	tlsMaxSNI      = 255
	tlsMaxALPN     = 16 // protocols kept
	tlsMaxALPNName = 64
)

func (tlsParser) Inspect(t Transport, dir Direction, data []byte, d *Detail) Verdict {
	if t != TCP {
		return NoMatch
	}
	typ, msg, v := tlsHandshake(data)
	if v != Match {
		return v
	}
	var h tlsHello
	whole := len(msg) >= tlsHandshakeHeaderLen && len(msg)-tlsHandshakeHeaderLen ==
		int(msg[1])<<16|int(msg[2])<<8|int(msg[3])
	if !h.parse(typ, msg[tlsHandshakeHeaderLen:], !whole) {
		return NoMatch
	}
	s := tlsVersionName(h.version)
	if typ == tlsServerHello {
		if s != "" {
			d.TLSVersion = s
		}
		return Match
	}
	if d.TLSVersion == "" {
		d.TLSVersion = s // what the server chose, when seen first, is kept
	}
	if len(h.sni) > 0 {
		d.SNI = printableLower(h.sni, tlsMaxSNI)
	}
	if len(h.alpn) > 0 {
		d.ALPN = tlsALPN(h.alpn)
	}
	return Match
}

// tlsHandshake finds the first handshake message in the records at the start of data.
// It answers Match with the whole message, header included, or with as much as there is
// when data holds MaxInspect bytes; NeedMore while the message is incomplete; NoMatch
// when the bytes are not TLS records carrying a ClientHello or ServerHello.
func tlsHandshake(data []byte) (typ byte, msg []byte, v Verdict) {
	var hdr [tlsHandshakeHeaderLen]byte
	nhdr, have, need := 0, 0, -1 // need: length of the message with its header, once known
	var first []byte             // the fragment in the first record
	rest := data
	records := 0
	for len(rest) > 0 && (need < 0 || have < need) {
		for i := range min(len(rest), 3) {
			if i == 0 && rest[0] != tlsRecordHandshake || i == 1 && rest[1] != 3 || i == 2 && rest[2] > 4 {
				return 0, nil, NoMatch
			}
		}
		if len(rest) < tlsRecordHeaderLen {
			break
		}
		n := int(binary.BigEndian.Uint16(rest[3:5]))
		if n == 0 || n > tlsMaxRecord {
			return 0, nil, NoMatch
		}
		frag := rest[tlsRecordHeaderLen:min(len(rest), tlsRecordHeaderLen+n)]
		rest = rest[tlsRecordHeaderLen+len(frag):]
		if records == 0 {
			first = frag
		}
		records++
		for _, c := range frag {
			if nhdr == len(hdr) {
				break
			}
			hdr[nhdr] = c
			nhdr++
			if nhdr == 1 && c != tlsClientHello && c != tlsServerHello {
				return 0, nil, NoMatch
			}
			if nhdr == len(hdr) {
				n := int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
				if n < tlsMinHello || n > tlsMaxHello {
					return 0, nil, NoMatch
				}
				need = tlsHandshakeHeaderLen + n
			}
		}
		have += len(frag)
	}
	if need < 0 || have < need {
		if len(data) < MaxInspect || nhdr < len(hdr) {
			return 0, nil, NeedMore
		}
		need = have // read what there is
	}
	if len(first) >= need {
		return hdr[0], first[:need], Match
	}
	// The message spans records: join the fragments.
	msg = make([]byte, 0, need)
	for rest := data; len(msg) < need; {
		n := int(binary.BigEndian.Uint16(rest[3:5]))
		frag := rest[tlsRecordHeaderLen:min(len(rest), tlsRecordHeaderLen+n)]
		msg = append(msg, frag[:min(len(frag), need-len(msg))]...)
		rest = rest[tlsRecordHeaderLen+len(frag):]
	}
	return hdr[0], msg, Match
}

// tlsHello is what a Detail keeps of a ClientHello or ServerHello.
type tlsHello struct {
	version uint16
	sni     []byte
	alpn    []byte // the ALPN extension's protocol list
}

// parse reads the body of a hello of type typ. A truncated body (cut at MaxInspect) is
// read as far as it goes; a whole one must be consistent to the last byte.
func (h *tlsHello) parse(typ byte, b []byte, truncated bool) bool {
	r := tlsReader{b: b}
	legacy := r.u16()
	if r.bad || legacy>>8 != 3 || legacy&0xff > 4 {
		return false
	}
	h.version = legacy
	r.skip(32) // random
	sid := r.u8()
	if sid > 32 {
		return false
	}
	r.skip(int(sid))
	if typ == tlsClientHello {
		cs := r.u16()
		if cs < 2 || cs%2 != 0 {
			return r.bad && truncated
		}
		r.skip(int(cs))
		cm := r.u8()
		if cm < 1 {
			return r.bad && truncated
		}
		r.skip(int(cm))
	} else {
		r.skip(2) // cipher suite
		if r.u8() != 0 {
			return r.bad && truncated // compression must be null
		}
	}
	if r.bad {
		return truncated
	}
	if len(r.b) == 0 {
		return true // no extensions
	}
	n := int(r.u16())
	if r.bad || n > len(r.b) && !truncated || n < len(r.b) {
		return truncated && r.bad
	}
	exts := tlsReader{b: r.b[:min(n, len(r.b))]}
	var versions []byte
	for len(exts.b) > 0 {
		ext, data := exts.u16(), exts.vec16()
		if exts.bad {
			if !truncated {
				return false
			}
			break
		}
		switch ext {
		case tlsExtServerName:
			sni, ok := tlsServerName(data)
			if !ok {
				return false
			}
			h.sni = sni
		case tlsExtALPN:
			list := tlsReader{b: data}
			h.alpn = list.vec16()
			if list.bad || len(list.b) != 0 || !tlsALPNValid(h.alpn) {
				return false
			}
		case tlsExtSupportedVersions:
			versions = data
		}
	}
	if versions != nil {
		v, ok := tlsSupportedVersion(typ, versions)
		if !ok {
			return false
		}
		h.version = v
	}
	return true
}

// tlsServerName returns the host_name of a server_name extension (RFC 6066 section 3).
// A server's empty extension (acknowledging the name) gives no name and is valid.
func tlsServerName(b []byte) ([]byte, bool) {
	if len(b) == 0 {
		return nil, true
	}
	r := tlsReader{b: b}
	list := tlsReader{b: r.vec16()}
	if r.bad || len(r.b) != 0 {
		return nil, false
	}
	var name []byte
	for len(list.b) > 0 {
		typ := list.u8()
		v := list.vec16()
		if list.bad || len(v) == 0 {
			return nil, false
		}
		if typ == 0 && name == nil {
			name = v
		}
	}
	return name, true
}

// tlsALPNValid checks a protocol_name_list: non-empty names, each with its length.
func tlsALPNValid(b []byte) bool {
	r := tlsReader{b: b}
	for len(r.b) > 0 {
		if p := r.vec8(); r.bad || len(p) == 0 {
			return false
		}
	}
	return true
}

// tlsALPN turns a valid protocol_name_list into strings; the usual names allocate nothing.
func tlsALPN(b []byte) []string {
	r := tlsReader{b: b}
	out := make([]string, 0, min(tlsMaxALPN, len(b)/2))
	for len(r.b) > 0 && len(out) < tlsMaxALPN {
		p := r.vec8()
		switch string(p) {
		case "h2":
			out = append(out, "h2")
		case "http/1.1":
			out = append(out, "http/1.1")
		case "http/1.0":
			out = append(out, "http/1.0")
		case "h3":
			out = append(out, "h3")
		default:
			out = append(out, printable(p, tlsMaxALPNName))
		}
	}
	return out
}

// tlsSupportedVersion reads a supported_versions extension (RFC 8446 section 4.2.1): the
// client's list gives its highest version, the server's the one it chose. GREASE values
// (RFC 8701) are skipped.
func tlsSupportedVersion(typ byte, b []byte) (uint16, bool) {
	r := tlsReader{b: b}
	if typ == tlsServerHello {
		v := r.u16()
		return v, !r.bad && len(r.b) == 0
	}
	list := tlsReader{b: r.vec8()}
	if r.bad || len(r.b) != 0 || len(list.b) == 0 || len(list.b)%2 != 0 {
		return 0, false
	}
	var best uint16
	for len(list.b) > 0 {
		v := list.u16()
		if v&0x0f0f == 0x0a0a && v>>8 == v&0xff {
			continue
		}
		best = max(best, v)
	}
	return best, best != 0
}

// tlsVersionName names a protocol version, or returns "" for one it does not know.
func tlsVersionName(v uint16) string {
	switch v {
	case 0x0300:
		return "SSL 3.0"
	case 0x0301:
		return "TLS 1.0"
	case 0x0302:
		return "TLS 1.1"
	case 0x0303:
		return "TLS 1.2"
	case 0x0304:
		return "TLS 1.3"
	}
	return ""
}

// tlsReader reads big-endian fields; past the end it returns zero values and sets bad.
type tlsReader struct {
	b   []byte
	bad bool
}

func (r *tlsReader) take(n int) []byte {
	if r.bad || n > len(r.b) {
		r.bad = true
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *tlsReader) skip(n int) { r.take(n) }

func (r *tlsReader) u8() uint8 {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *tlsReader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *tlsReader) vec8() []byte { return r.take(int(r.u8())) }

func (r *tlsReader) vec16() []byte { return r.take(int(r.u16())) }
