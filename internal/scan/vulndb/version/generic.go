package version

import "strings"

// GenericVersion orders versions of ecosystems without a scheme here (Packagist and
// others): runs of digits compare as numbers, runs of other characters byte-wise, a
// digit run after a non-digit one, a version that goes on with a word before one that
// stops (1.0-beta < 1.0); separators ('.', '-', '_', '+') only split runs.
type GenericVersion struct {
	raw   string
	parts []string
}

// ParseGeneric splits v into runs.
func ParseGeneric(v string) (GenericVersion, error) {
	s := strings.TrimPrefix(strings.TrimSpace(v), "v")
	if s == "" {
		return GenericVersion{}, invalid(v, "empty")
	}
	g := GenericVersion{raw: v}
	for i := 0; i < len(s); {
		c := s[i]
		if c == '.' || c == '-' || c == '_' || c == '+' {
			i++
			continue
		}
		j := i
		d := isDigit(c)
		for j < len(s) && isDigit(s[j]) == d && s[j] != '.' && s[j] != '-' && s[j] != '_' && s[j] != '+' {
			j++
		}
		g.parts = append(g.parts, s[i:j])
		i = j
	}
	if len(g.parts) == 0 {
		return GenericVersion{}, invalid(v, "no version parts")
	}
	return g, nil
}

func (g GenericVersion) String() string { return g.raw }

// Compare compares run by run.
func (g GenericVersion) Compare(o Version) int {
	h, ok := o.(GenericVersion)
	if !ok {
		return mismatched(g, o)
	}
	for i := 0; i < min(len(g.parts), len(h.parts)); i++ {
		a, b := g.parts[i], h.parts[i]
		if c := cmpSegment(a, b); c != 0 {
			return c
		}
	}
	// The longer one is newer, unless what it goes on with is a word: 1.0-beta < 1.0.
	switch {
	case len(g.parts) > len(h.parts):
		return genericTail(g.parts[len(h.parts)])
	case len(g.parts) < len(h.parts):
		return -genericTail(h.parts[len(g.parts)])
	}
	return 0
}

func genericTail(p string) int {
	if isDigit(p[0]) {
		return 1
	}
	return -1
}

// cmpSegment orders two version segments that are each all digits or all letters:
// numbers by value, numbers after words, words by their bytes.
func cmpSegment(a, b string) int {
	an, bn := isDigit(a[0]), isDigit(b[0])
	switch {
	case an && bn:
		return cmpDigits(a, b)
	case an:
		return 1
	case bn:
		return -1
	}
	return strings.Compare(a, b)
}
