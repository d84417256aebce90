package dpi

import "bytes"

// NewSSH returns the parser of SSH from its identification line (RFC 4253 section 4.2),
// "SSH-2.0-softwareversion comments" or "SSH-1.99-..." (a server that also speaks SSH 1),
// which each side sends first; the server usually does not wait for the client. The
// server's line is kept as Version and the client's as ClientVersion, without the line
// end. Lines a server may send before its identification are not supported: the line
// must open the stream.
//
// The parser holds no state and is safe for concurrent use.
func NewSSH() Parser { return sshParser{} }

type sshParser struct{}

func (sshParser) App() App { return SSH }

// sshMaxLine is the longest identification line, CR LF included (RFC 4253).
const sshMaxLine = 255

func (sshParser) Inspect(t Transport, dir Direction, data []byte, d *Detail) Verdict {
	if t != TCP {
		return NoMatch
	}
	v2, v199 := literal(data, "SSH-2.0-"), literal(data, "SSH-1.99-")
	switch {
	case v2 == NoMatch && v199 == NoMatch:
		return NoMatch
	case v2 != Match && v199 != Match:
		return NeedMore
	}
	software := len("SSH-2.0-")
	if v199 == Match {
		software = len("SSH-1.99-")
	}
	line := data[:min(len(data), sshMaxLine)]
	end := bytes.IndexByte(line, '\n')
	if end < 0 {
		end = len(line)
	}
	for i, c := range line[:end] {
		// CR only before the LF, or last in the bytes seen (the LF may follow).
		if !(c >= 0x20 && c < 0x7f || c == '\r' && i == end-1) {
			return NoMatch
		}
	}
	if end == len(line) {
		if len(line) == sshMaxLine {
			return NoMatch
		}
		return NeedMore
	}
	id := bytes.TrimSuffix(line[:end], []byte{'\r'})
	if len(id) == software || id[software] == ' ' {
		return NoMatch // no software version
	}
	if dir == FromServer {
		d.Version = printable(id, sshMaxLine)
	} else {
		d.ClientVersion = printable(id, sshMaxLine)
	}
	return Match
}
