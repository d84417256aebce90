package version

import "strings"

// DebianVersion is a dpkg version: [epoch:]upstream[-revision]. The same rules order
// Ubuntu's versions.
type DebianVersion struct {
	raw      string
	epoch    string // digits, "" for none (= 0)
	upstream string
	revision string
}

// ParseDebian parses v as dpkg's parseversion does (lib/dpkg/parsehelp.c).
func ParseDebian(v string) (DebianVersion, error) {
	s := strings.TrimSpace(v)
	if s == "" {
		return DebianVersion{}, invalid(v, "empty")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return DebianVersion{}, invalid(v, "embedded space or non-printable character")
		}
	}
	d := DebianVersion{raw: v}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		d.epoch = s[:i]
		if !allDigits(d.epoch) {
			return DebianVersion{}, invalid(v, "epoch is not a number")
		}
		if len(strings.TrimLeft(d.epoch, "0")) > 10 {
			return DebianVersion{}, invalid(v, "epoch is too big")
		}
		s = s[i+1:]
		if s == "" {
			return DebianVersion{}, invalid(v, "nothing after the colon")
		}
	}
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		d.revision = s[i+1:]
		s = s[:i]
		if d.revision == "" {
			return DebianVersion{}, invalid(v, "revision is empty")
		}
	}
	if s == "" {
		return DebianVersion{}, invalid(v, "upstream version is empty")
	}
	d.upstream = s
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isDigit(c) && !isAlpha(c) && !strings.ContainsRune(".-+~:", rune(c)) {
			return DebianVersion{}, invalid(v, "invalid character in upstream version")
		}
	}
	for i := 0; i < len(d.revision); i++ {
		if c := d.revision[i]; !isDigit(c) && !isAlpha(c) && !strings.ContainsRune(".+~", rune(c)) {
			return DebianVersion{}, invalid(v, "invalid character in revision")
		}
	}
	return d, nil
}

func (d DebianVersion) String() string { return d.raw }

// Compare orders by epoch, then upstream version, then revision, as dpkg does.
func (d DebianVersion) Compare(o Version) int {
	e, ok := o.(DebianVersion)
	if !ok {
		return mismatched(d, o)
	}
	if c := cmpDigits(d.epoch, e.epoch); c != 0 {
		return c
	}
	if c := verrevcmp(d.upstream, e.upstream); c != 0 {
		return c
	}
	return verrevcmp(d.revision, e.revision)
}

// debOrder is the weight of a non-digit character in dpkg's comparison: '~' before the
// end of the string, the end before letters, letters before everything else.
func debOrder(c byte, end bool) int {
	switch {
	case end:
		return 0
	case isDigit(c):
		return 0
	case isAlpha(c):
		return int(c)
	case c == '~':
		return -1
	default:
		return int(c) + 256
	}
}

// verrevcmp is dpkg's comparison of an upstream version or revision: alternating runs of
// non-digits (compared character by character with debOrder) and digits (compared as
// numbers).
func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for i < len(a) && !isDigit(a[i]) || j < len(b) && !isDigit(b[j]) {
			var ac, bc int
			if i < len(a) {
				ac = debOrder(a[i], false)
			}
			if j < len(b) {
				bc = debOrder(b[j], false)
			}
			if ac != bc {
				return sign(ac - bc)
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		first := 0
		for i < len(a) && isDigit(a[i]) && j < len(b) && isDigit(b[j]) {
			if first == 0 {
				first = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if first != 0 {
			return sign(first)
		}
	}
	return 0
}
