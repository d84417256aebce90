package dpi

// appMaxText bounds every string the database, cache and messaging parsers record in a
// Detail (user names, database names, versions, commands): the bytes come from the
// network, and a peer must not make Vigil store or log an unbounded value. Each goes
// through printable, which also escapes what is not printable UTF-8.
const appMaxText = 256

// printableJoin is printable(a), then sep, then printable(b) ("RabbitMQ 3.10.8"), within
// appMaxText bytes and in one allocation. sep is printable ASCII.
func printableJoin(a []byte, sep byte, b []byte) string {
	var buf [appMaxText]byte
	out := appendPrintable(buf[:0], a, appMaxText)
	if len(out) < appMaxText {
		out = append(out, sep)
		out = appendPrintable(out, b, appMaxText-len(out))
	}
	return string(out)
}

// The helpers below read the plain-text protocols (Redis, Memcached, NATS). Their names
// say "ascii" to keep them apart from what the other parsers of the package define.

// asciiDigit reports whether c is a decimal digit.
func asciiDigit(c byte) bool { return c >= '0' && c <= '9' }

// asciiLetter reports whether c is a letter.
func asciiLetter(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }

// asciiGraphic reports whether c is printable and not a space.
func asciiGraphic(c byte) bool { return c > ' ' && c < 0x7f }

// asciiHasPrefixFold reports whether b begins with w, ignoring case; w is upper case.
func asciiHasPrefixFold(b []byte, w string) bool {
	if len(b) < len(w) {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := b[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	return true
}

// asciiIsPrefixFold reports whether b is a prefix of w, ignoring case; w is upper case.
func asciiIsPrefixFold(b []byte, w string) bool {
	return len(b) <= len(w) && asciiHasPrefixFold(b, w[:len(b)])
}
