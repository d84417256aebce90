package dpi

// NewNATS returns the parser of the NATS client protocol.
//
// The server speaks first: "INFO {json}\r\n", whose "version" gives Version. The client
// answers "CONNECT {json}\r\n": Command is "CONNECT", User its "user" (when it logs in
// with a name) and ClientVersion its "lang" and "version" ("go 1.55.0"). Operation
// names are taken in any case, as the server does. A line must be complete to match,
// unless it already fills MaxInspect (an INFO that lists a large cluster's URLs).
//
// The parser holds no state and is safe for concurrent use.
func NewNATS() Parser { return natsParser{} }

type natsParser struct{}

func (natsParser) App() App { return NATS }

func (natsParser) Inspect(t Transport, dir Direction, data []byte, d *Detail) Verdict {
	if t != TCP {
		return NoMatch
	}
	data = data[:min(len(data), MaxInspect)] // what is judged at MaxInspect stays judged
	op := "CONNECT"
	if dir == FromServer {
		op = "INFO"
	}
	if !asciiHasPrefixFold(data, op) {
		if asciiIsPrefixFold(data, op) {
			return NeedMore
		}
		return NoMatch
	}
	// One or more blanks, then the JSON object.
	i := len(op)
	for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
		i++
	}
	switch {
	case i == len(data):
		return NeedMore
	case i == len(op) || data[i] != '{':
		return NoMatch
	}
	obj := data[i:]
	complete := false
	for k, c := range obj {
		if c == '\n' {
			if k == 0 || obj[k-1] != '\r' {
				return NoMatch
			}
			obj, complete = obj[:k-1], true
			break
		}
		if c < ' ' && c != '\t' && !(c == '\r' && (k == len(obj)-1 || obj[k+1] == '\n')) || c == 0x7f {
			return NoMatch
		}
	}
	if !complete {
		if len(data) < MaxInspect {
			return NeedMore
		}
	} else {
		for len(obj) > 0 && (obj[len(obj)-1] == ' ' || obj[len(obj)-1] == '\t') {
			obj = obj[:len(obj)-1]
		}
		if obj[len(obj)-1] != '}' {
			return NoMatch
		}
	}
	if dir == FromServer {
		if version := natsJSONString(obj, "version"); len(version) > 0 {
			d.Version = printable(version, appMaxText)
		}
		return Match
	}
	d.Command = "CONNECT"
	if user := natsJSONString(obj, "user"); len(user) > 0 {
		d.User = printable(user, appMaxText)
	}
	lang, version := natsJSONString(obj, "lang"), natsJSONString(obj, "version")
	switch {
	case len(lang) > 0 && len(version) > 0:
		d.ClientVersion = printableJoin(lang, ' ', version)
	case len(version) > 0:
		d.ClientVersion = printable(version, appMaxText)
	}
	return Match
}

// natsJSONString returns the raw text (escapes left as they are) of the string value of
// key among the top-level members of the JSON object obj, or nil. obj may be cut short.
func natsJSONString(obj []byte, key string) []byte {
	depth := 0
	expectKey := false
	for i := 0; i < len(obj); i++ {
		switch c := obj[i]; c {
		case '{', '[':
			depth++
			expectKey = c == '{' && depth == 1
		case '}', ']':
			depth--
		case ',':
			expectKey = depth == 1
		case '"':
			s, end := natsJSONQuoted(obj, i)
			if end < 0 {
				return nil
			}
			i = end
			if depth != 1 || !expectKey {
				continue
			}
			expectKey = false
			j := natsSkipBlanks(obj, end+1)
			if j >= len(obj) || obj[j] != ':' {
				return nil
			}
			j = natsSkipBlanks(obj, j+1)
			if string(s) == key && j < len(obj) && obj[j] == '"' {
				value, end := natsJSONQuoted(obj, j)
				if end < 0 {
					return nil
				}
				return value
			}
			i = j - 1
		}
	}
	return nil
}

// natsJSONQuoted returns the text of the JSON string that starts at b[i] and the index
// of its closing quote, or -1 when it does not close within b.
func natsJSONQuoted(b []byte, i int) ([]byte, int) {
	for k := i + 1; k < len(b); k++ {
		switch b[k] {
		case '\\':
			k++
		case '"':
			return b[i+1 : k], k
		}
	}
	return nil, -1
}

func natsSkipBlanks(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}
