package dpi

import "encoding/binary"

// NewMemcached returns the parser of the Memcached protocols: the text protocol (with
// its meta commands) and the binary protocol, over TCP, and over UDP behind the 8-byte
// frame header.
//
// The client speaks first. A text command line must be complete and well-formed for its
// command ("get <key>...", "set <key> <flags> <exptime> <bytes> [noreply]", "mg <key>
// <flags>*", "version", ...); a multi-get line matches as soon as its first key is read.
// Command words are lower case, as Memcached requires, so HTTP's "GET /" is no
// Memcached. A binary request must have a sane 24-byte header for its opcode. Command
// is the text command word, or the text name of the binary opcode ("get", "stats",
// "sasl_auth", ...). From the server, "VERSION x" or a binary Version response gives
// Version; replies that only Memcached sends ("VALUE", "STAT", "STORED", ...) match, and
// short generic ones ("END", "OK", "ERROR") are NeedMore.
//
// The parser holds no state and is safe for concurrent use.
func NewMemcached() Parser { return memcachedParser{} }

type memcachedParser struct{}

func (memcachedParser) App() App { return Memcached }

const (
	memcachedMaxLine   = 2048 // the server refuses longer lines but multi-gets
	memcachedMaxKey    = 250  // KEY_MAX_LENGTH
	memcachedMaxNumber = 20   // digits of a 64-bit number
	memcachedUDPHeader = 8    // request id, sequence number, datagram count, reserved
	memcachedMaxBody   = 1 << 26
	memcachedReqMagic  = 0x80
	memcachedResMagic  = 0x81
	memcachedBinHeader = 24
	memcachedOpVersion = 0x0b
	memcachedMaxVer    = 64
)

// memcachedTextCommand describes the arguments of a text command, one letter each:
// k a key, n an unsigned number, s a signed one (expiration times), r the word "noreply",
// a any token; a final * repeats the letter before it.
type memcachedTextCommand struct {
	name    string
	args    string
	minArgs int
}

var memcachedTextCommands = [...]memcachedTextCommand{
	{"get", "k*", 1},
	{"gets", "k*", 1},
	{"gat", "sk*", 2},
	{"gats", "sk*", 2},
	{"set", "knsnr", 4},
	{"add", "knsnr", 4},
	{"replace", "knsnr", 4},
	{"append", "knsnr", 4},
	{"prepend", "knsnr", 4},
	{"cas", "knsnnr", 5},
	{"delete", "kaa", 1}, // "delete <key> [0] [noreply]"
	{"incr", "knr", 2},
	{"decr", "knr", 2},
	{"touch", "ksr", 2},
	{"stats", "aaa", 0},
	{"version", "", 0},
	{"quit", "", 0},
	{"flush_all", "aa", 0},
	{"verbosity", "nr", 1},
	{"shutdown", "a", 0},
	{"mg", "ka*", 1},
	{"ms", "kna*", 2},
	{"md", "ka*", 1},
	{"ma", "ka*", 1},
	{"mn", "", 0},
	{"me", "k", 1},
}

// memcachedReply is the first word of a server line: distinct words match, generic ones
// are NeedMore. args says the word is followed by a space and arguments.
type memcachedReply struct {
	word     string
	distinct bool
	args     bool
}

// memcachedReplies are the first words of the lines a text server sends.
var memcachedReplies = [...]memcachedReply{
	{"VERSION", true, true},
	{"VALUE", true, true},
	{"STAT", true, true},
	{"STORED", true, false},
	{"NOT_STORED", true, false},
	{"EXISTS", true, false},
	{"NOT_FOUND", true, false},
	{"DELETED", true, false},
	{"TOUCHED", true, false},
	{"END", false, false},
	{"OK", false, false},
	{"ERROR", false, false},
	{"CLIENT_ERROR", false, true},
	{"SERVER_ERROR", false, true},
	{"HD", false, true},
	{"VA", false, true},
	{"EN", false, false},
	{"NF", false, true},
	{"NS", false, true},
	{"EX", false, true},
	{"MN", false, false},
	{"ME", false, true},
}

// memcachedBinaryOp describes a binary opcode: its text name and the shape of its request.
type memcachedBinaryOp struct {
	name    string
	extras  [2]int8 // allowed extras lengths (the second is -1 when only one is)
	key     int8    // 0: none, 1: required, 2: optional
	noValue bool
}

// memcachedBinaryOps is indexed by opcode, from the memcached binary protocol
// specification (protocol_binary.h).
var memcachedBinaryOps = [...]memcachedBinaryOp{
	0x00: {"get", [2]int8{0, -1}, 1, true},
	0x01: {"set", [2]int8{8, -1}, 1, false},
	0x02: {"add", [2]int8{8, -1}, 1, false},
	0x03: {"replace", [2]int8{8, -1}, 1, false},
	0x04: {"delete", [2]int8{0, -1}, 1, true},
	0x05: {"incr", [2]int8{20, -1}, 1, true},
	0x06: {"decr", [2]int8{20, -1}, 1, true},
	0x07: {"quit", [2]int8{0, -1}, 0, true},
	0x08: {"flush_all", [2]int8{0, 4}, 0, true},
	0x09: {"getq", [2]int8{0, -1}, 1, true},
	0x0a: {"noop", [2]int8{0, -1}, 0, true},
	0x0b: {"version", [2]int8{0, -1}, 0, true},
	0x0c: {"getk", [2]int8{0, -1}, 1, true},
	0x0d: {"getkq", [2]int8{0, -1}, 1, true},
	0x0e: {"append", [2]int8{0, -1}, 1, false},
	0x0f: {"prepend", [2]int8{0, -1}, 1, false},
	0x10: {"stats", [2]int8{0, -1}, 2, true},
	0x11: {"setq", [2]int8{8, -1}, 1, false},
	0x12: {"addq", [2]int8{8, -1}, 1, false},
	0x13: {"replaceq", [2]int8{8, -1}, 1, false},
	0x14: {"deleteq", [2]int8{0, -1}, 1, true},
	0x15: {"incrq", [2]int8{20, -1}, 1, true},
	0x16: {"decrq", [2]int8{20, -1}, 1, true},
	0x17: {"quitq", [2]int8{0, -1}, 0, true},
	0x18: {"flush_allq", [2]int8{0, 4}, 0, true},
	0x19: {"appendq", [2]int8{0, -1}, 1, false},
	0x1a: {"prependq", [2]int8{0, -1}, 1, false},
	0x1b: {"verbosity", [2]int8{4, -1}, 0, true},
	0x1c: {"touch", [2]int8{4, -1}, 1, true},
	0x1d: {"gat", [2]int8{4, -1}, 1, true},
	0x1e: {"gatq", [2]int8{4, -1}, 1, true},
	0x1f: {"hello", [2]int8{0, -1}, 2, false}, // Couchbase's feature negotiation
	0x20: {"sasl_list_mechs", [2]int8{0, -1}, 0, true},
	0x21: {"sasl_auth", [2]int8{0, -1}, 1, false},
	0x22: {"sasl_step", [2]int8{0, -1}, 1, false},
	0x23: {"gatk", [2]int8{4, -1}, 1, true},
	0x24: {"gatkq", [2]int8{4, -1}, 1, true},
}

func (p memcachedParser) Inspect(t Transport, dir Direction, data []byte, d *Detail) Verdict {
	switch t {
	case TCP:
	case UDP:
		return p.inspectDatagram(dir, data, d)
	default:
		return NoMatch
	}
	if len(data) == 0 {
		return NeedMore
	}
	if dir == FromServer {
		if data[0] == memcachedResMagic {
			return p.inspectBinary(dir, data, d)
		}
		return p.inspectReply(data, d)
	}
	if data[0] == memcachedReqMagic {
		return p.inspectBinary(dir, data, d)
	}
	return p.inspectCommand(data, d)
}

// inspectDatagram reads the UDP frame header, then the message of the first datagram of
// a request or response. A datagram is whole: what a TCP stream would have to wait for
// is no Memcached here.
func (p memcachedParser) inspectDatagram(dir Direction, data []byte, d *Detail) Verdict {
	if len(data) <= memcachedUDPHeader {
		return NoMatch
	}
	seq := binary.BigEndian.Uint16(data[2:])
	count := binary.BigEndian.Uint16(data[4:])
	if seq != 0 || count == 0 || binary.BigEndian.Uint16(data[6:]) != 0 {
		return NoMatch
	}
	if dir == FromClient && count != 1 {
		return NoMatch // a request fits in one datagram
	}
	v := p.Inspect(TCP, dir, data[memcachedUDPHeader:], d)
	if v == NeedMore && dir == FromClient {
		return NoMatch
	}
	return v
}

// inspectCommand reads a text command line.
func (memcachedParser) inspectCommand(data []byte, d *Detail) Verdict {
	// A multi-get may be longer than any other line: its first key settles it,
	// whatever follows.
	for _, get := range [...]string{"get ", "gets "} {
		if len(data) > len(get) && string(data[:len(get)]) == get {
			key := data[len(get):]
			for k, c := range key {
				if c == ' ' && k > 0 {
					d.Command = get[:len(get)-1]
					return Match
				}
				if c <= ' ' || c == 0x7f || k >= memcachedMaxKey {
					break
				}
			}
		}
	}
	line, complete, v := memcachedLine(data, memcachedMaxLine)
	if v == NoMatch {
		return NoMatch
	}
	// The command word.
	n := 0
	for n < len(line) && (line[n] >= 'a' && line[n] <= 'z' || line[n] == '_') {
		n++
	}
	if n == len(line) && !complete {
		for _, c := range memcachedTextCommands {
			if len(line) <= len(c.name) && string(c.name[:len(line)]) == string(line) {
				return NeedMore
			}
		}
		return NoMatch
	}
	if n < len(line) && line[n] != ' ' {
		return NoMatch
	}
	var cmd *memcachedTextCommand
	for k := range memcachedTextCommands {
		if memcachedTextCommands[k].name == string(line[:n]) {
			cmd = &memcachedTextCommands[k]
			break
		}
	}
	if cmd == nil {
		return NoMatch
	}
	// The arguments, each checked against the letter for its place.
	spec := cmd.args
	count := 0
	for i := n; i < len(line); {
		if line[i] == ' ' {
			i++
			continue
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			j++
		}
		tok, last := line[i:j], j == len(line) && !complete
		letter := byte(0)
		switch {
		case count < len(spec) && spec[count] != '*':
			letter = spec[count]
		case len(spec) > 0 && spec[len(spec)-1] == '*':
			letter = spec[len(spec)-2]
		default:
			return NoMatch // too many arguments
		}
		if !memcachedTokenOK(letter, tok, last) {
			return NoMatch
		}
		if !last {
			count++
		}
		i = j
	}
	if !complete {
		return NeedMore
	}
	if count < cmd.minArgs {
		return NoMatch
	}
	d.Command = cmd.name
	return Match
}

// memcachedTokenOK checks one argument; a token still being received (last) need only
// be a valid beginning.
func memcachedTokenOK(letter byte, tok []byte, last bool) bool {
	if len(tok) > memcachedMaxKey {
		return false
	}
	switch letter {
	case 'n', 's':
		digits := tok
		if letter == 's' && len(digits) > 0 && digits[0] == '-' {
			digits = digits[1:]
		}
		if len(digits) > memcachedMaxNumber || len(digits) == 0 && !last {
			return false
		}
		for _, c := range digits {
			if !asciiDigit(c) {
				return false
			}
		}
		return true
	case 'r':
		const noreply = "noreply"
		if last {
			return len(tok) <= len(noreply) && string(tok) == noreply[:len(tok)]
		}
		return string(tok) == noreply
	}
	for _, c := range tok {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// memcachedLine returns the first line of data without its line end and whether that
// end was seen; NoMatch when the line has a control character or passes max bytes.
func memcachedLine(data []byte, max int) ([]byte, bool, Verdict) {
	for i, c := range data {
		switch {
		case c == '\n':
			line := data[:i]
			if len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
			return line, true, Match
		case c == '\r':
			if i+1 < len(data) && data[i+1] != '\n' {
				return nil, false, NoMatch
			}
		case c < ' ' || c == 0x7f:
			return nil, false, NoMatch
		}
		if i >= max {
			return nil, false, NoMatch
		}
	}
	line := data
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, false, NeedMore
}

// inspectReply reads the first line a text server sent.
func (memcachedParser) inspectReply(data []byte, d *Detail) Verdict {
	line, complete, v := memcachedLine(data, memcachedMaxLine)
	if v == NoMatch {
		return NoMatch
	}
	if len(line) > 0 && asciiDigit(line[0]) {
		// The value after incr or decr.
		for _, c := range line {
			if !asciiDigit(c) {
				return NoMatch
			}
		}
		if len(line) > memcachedMaxNumber {
			return NoMatch
		}
		return NeedMore
	}
	n := 0
	for n < len(line) && (line[n] >= 'A' && line[n] <= 'Z' || line[n] == '_') {
		n++
	}
	word, rest := line[:n], line[n:]
	var reply *memcachedReply
	for k := range memcachedReplies {
		if memcachedReplies[k].word == string(word) {
			reply = &memcachedReplies[k]
			break
		}
	}
	switch {
	case reply == nil && len(rest) == 0 && !complete:
		for _, r := range memcachedReplies {
			if len(word) <= len(r.word) && r.word[:len(word)] == string(word) {
				return NeedMore
			}
		}
		return NoMatch
	case reply == nil,
		len(rest) > 0 && (rest[0] != ' ' || !reply.args):
		return NoMatch
	case !complete || !reply.distinct:
		return NeedMore
	}
	switch reply.word {
	case "VERSION":
		if len(rest) < 2 {
			return NoMatch
		}
		version := rest[1:]
		for _, c := range version {
			if !asciiGraphic(c) && c != ' ' {
				return NoMatch
			}
		}
		d.Version = printable(version, appMaxText)
	case "VALUE":
		// "VALUE <key> <flags> <bytes> [<cas unique>]"
		if len(rest) < 2 || !memcachedValueLine(rest[1:]) {
			return NoMatch
		}
	case "STAT":
		if len(rest) < 2 || rest[1] == ' ' {
			return NoMatch
		}
	}
	return Match
}

// memcachedValueLine checks "<key> <flags> <bytes> [<cas unique>]".
func memcachedValueLine(b []byte) bool {
	count := 0
	for i := 0; i < len(b); {
		j := i
		for j < len(b) && b[j] != ' ' {
			j++
		}
		letter := byte('n')
		if count == 0 {
			letter = 'k'
		}
		if j == i || !memcachedTokenOK(letter, b[i:j], false) {
			return false
		}
		count++
		i = j + 1
	}
	return count == 3 || count == 4
}

// inspectBinary reads the 24-byte header of a binary request (magic 0x80) or response
// (magic 0x81).
func (memcachedParser) inspectBinary(dir Direction, data []byte, d *Detail) Verdict {
	var op *memcachedBinaryOp
	if len(data) >= 2 {
		if int(data[1]) >= len(memcachedBinaryOps) || memcachedBinaryOps[data[1]].name == "" {
			return NoMatch
		}
		op = &memcachedBinaryOps[data[1]]
	}
	if len(data) >= 4 && binary.BigEndian.Uint16(data[2:]) > memcachedMaxKey {
		return NoMatch
	}
	if len(data) >= 6 && data[5] != 0 { // data type: raw bytes
		return NoMatch
	}
	if len(data) >= 8 && dir == FromServer && !memcachedStatusOK(binary.BigEndian.Uint16(data[6:])) {
		return NoMatch
	}
	if len(data) < 12 {
		return NeedMore
	}
	keyLen := int(binary.BigEndian.Uint16(data[2:]))
	extras := int(data[4])
	total := int(binary.BigEndian.Uint32(data[8:]))
	if total > memcachedMaxBody || total < keyLen+extras {
		return NoMatch
	}
	if dir == FromClient {
		if extras != int(op.extras[0]) && extras != int(op.extras[1]) ||
			op.key == 0 && keyLen != 0 || op.key == 1 && keyLen == 0 ||
			op.noValue && total != keyLen+extras {
			return NoMatch
		}
	}
	if len(data) < memcachedBinHeader {
		return NeedMore
	}
	if dir == FromClient {
		d.Command = op.name
		return Match
	}
	if data[1] == memcachedOpVersion && binary.BigEndian.Uint16(data[6:]) == 0 {
		if total > memcachedMaxVer || extras != 0 || keyLen != 0 {
			return NoMatch
		}
		if len(data) < memcachedBinHeader+total {
			return NeedMore
		}
		version := data[memcachedBinHeader : memcachedBinHeader+total]
		for _, c := range version {
			if !asciiGraphic(c) {
				return NoMatch
			}
		}
		d.Version = printable(version, appMaxText)
	}
	return Match
}

// memcachedStatusOK reports whether s is a status a binary response may carry.
func memcachedStatusOK(s uint16) bool {
	return s <= 0x0d || s >= 0x20 && s <= 0x26 || s >= 0x81 && s <= 0x86
}
