package version

// AlpineVersion is an apk version: digits{.digits}[letter]{_suffix[digits]}[~hash][-rN].
type AlpineVersion struct {
	raw    string
	tokens []apkToken
}

// apkKind is the kind of a token, in the order apk's grammar allows them: when two
// versions agree up to a point and then go on with tokens of different kinds, the one
// whose token comes later in this order is older (1.0.1 > 1.0a > 1.0_p1 > 1.0-r1 > 1.0),
// except that a pre-release suffix is older than anything.
type apkKind int8

const (
	apkInitial apkKind = iota
	apkDigit
	apkLetter
	apkSuffix
	apkSuffixNo
	apkHash
	apkRevision
	apkEnd
)

type apkToken struct {
	kind   apkKind
	text   string // the token's characters, without its separator
	suffix int    // rank for apkSuffix; below apkNone is a pre-release
}

// The suffixes in order; apkNone stands for "no suffix".
var apkSuffixes = []string{"alpha", "beta", "pre", "rc", "", "cvs", "svn", "git", "hg", "p"}

const apkNone = 4

// ParseAlpine parses v by apk-tools' grammar (src/version.c of apk-tools 2.14 and 3).
// A version that apk's own validation refuses is an error.
func ParseAlpine(v string) (AlpineVersion, error) {
	a := AlpineVersion{raw: v}
	s := v
	n := digits(s)
	if n == 0 {
		return AlpineVersion{}, invalid(v, "does not start with a digit")
	}
	a.tokens = append(a.tokens, apkToken{kind: apkInitial, text: s[:n]})
	s = s[n:]
	prev := apkInitial
	for s != "" {
		var t apkToken
		switch c := s[0]; {
		case c >= 'a' && c <= 'z':
			if prev > apkDigit {
				return AlpineVersion{}, invalid(v, "letter in the wrong place")
			}
			t = apkToken{kind: apkLetter, text: s[:1]}
			s = s[1:]
		case c == '.' || isDigit(c):
			if c == '.' {
				if prev > apkDigit {
					return AlpineVersion{}, invalid(v, "dot in the wrong place")
				}
				s = s[1:]
			}
			switch prev {
			case apkInitial, apkDigit:
				t.kind = apkDigit
			case apkSuffix:
				t.kind = apkSuffixNo
			default:
				return AlpineVersion{}, invalid(v, "number in the wrong place")
			}
			n := digits(s)
			if n == 0 {
				return AlpineVersion{}, invalid(v, "expected a number")
			}
			t.text = s[:n]
			s = s[n:]
		case c == '_':
			if prev > apkSuffixNo {
				return AlpineVersion{}, invalid(v, "suffix in the wrong place")
			}
			s = s[1:]
			n := 0
			for n < len(s) && s[n] >= 'a' && s[n] <= 'z' {
				n++
			}
			t = apkToken{kind: apkSuffix, text: s[:n], suffix: -1}
			for i, suf := range apkSuffixes {
				if suf != "" && suf == s[:n] {
					t.suffix = i
				}
			}
			if t.suffix < 0 {
				return AlpineVersion{}, invalid(v, "unknown suffix")
			}
			s = s[n:]
		case c == '~':
			if prev >= apkHash {
				return AlpineVersion{}, invalid(v, "commit hash in the wrong place")
			}
			s = s[1:]
			n := 0
			for n < len(s) && (isDigit(s[n]) || s[n] >= 'a' && s[n] <= 'f' || s[n] >= 'A' && s[n] <= 'F') {
				n++
			}
			if n == 0 {
				return AlpineVersion{}, invalid(v, "empty commit hash")
			}
			t = apkToken{kind: apkHash, text: s[:n]}
			s = s[n:]
		case c == '-':
			if prev >= apkRevision || len(s) < 2 || s[1] != 'r' {
				return AlpineVersion{}, invalid(v, "'-' not followed by a revision")
			}
			s = s[2:]
			n := digits(s)
			if n == 0 {
				return AlpineVersion{}, invalid(v, "empty revision")
			}
			t = apkToken{kind: apkRevision, text: s[:n]}
			s = s[n:]
		default:
			return AlpineVersion{}, invalid(v, "unexpected character")
		}
		a.tokens = append(a.tokens, t)
		prev = t.kind
	}
	return a, nil
}

func digits(s string) int {
	n := 0
	for n < len(s) && isDigit(s[n]) {
		n++
	}
	return n
}

func (a AlpineVersion) String() string { return a.raw }

// Compare walks both token lists while kinds and values agree, as apk does.
func (a AlpineVersion) Compare(o Version) int {
	b, ok := o.(AlpineVersion)
	if !ok {
		return mismatched(a, o)
	}
	for i := 0; ; i++ {
		x, y := apkAt(a.tokens, i), apkAt(b.tokens, i)
		if x.kind != y.kind {
			switch {
			case x.kind == apkSuffix && x.suffix < apkNone:
				return -1
			case y.kind == apkSuffix && y.suffix < apkNone:
				return 1
			}
			return sign(int(y.kind) - int(x.kind))
		}
		if x.kind == apkEnd {
			return 0
		}
		if c := x.cmp(y); c != 0 {
			return c
		}
	}
}

func apkAt(t []apkToken, i int) apkToken {
	if i < len(t) {
		return t[i]
	}
	return apkToken{kind: apkEnd}
}

func (x apkToken) cmp(y apkToken) int {
	switch x.kind {
	case apkDigit:
		if x.text[0] == '0' || y.text[0] == '0' {
			// A component after a dot with a leading zero compares as a string, as
			// in Gentoo: 1.02 < 1.1, 1.0 < 1.00.
			return blobSort(x.text, y.text)
		}
		return cmpDigits(x.text, y.text)
	case apkInitial, apkSuffixNo, apkRevision:
		return cmpDigits(x.text, y.text)
	case apkLetter:
		return sign(int(x.text[0]) - int(y.text[0]))
	case apkSuffix:
		return sign(x.suffix - y.suffix)
	}
	return blobSort(x.text, y.text)
}

// blobSort is apk's apk_blob_sort: bytes first, then length.
func blobSort(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return sign(int(a[i]) - int(b[i]))
		}
	}
	return sign(len(a) - len(b))
}
