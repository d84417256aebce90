package version

import (
	"regexp"
	"strings"
)

// RubyGemsVersion is a Gem::Version: dot-separated segments of digits or letters, where
// any letter makes the version a pre-release ("1.0.a" < "1.0"); a '-' reads as ".pre.".
type RubyGemsVersion struct {
	raw  string
	segs []string // canonical segments (trailing zeros of each part dropped)
}

// gemRE is Gem::Version::ANCHORED_VERSION_PATTERN.
var gemRE = regexp.MustCompile(`^[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$`)

var gemSegRE = regexp.MustCompile(`[0-9]+|[a-zA-Z]+`)

// ParseRubyGems parses v as Gem::Version.new does; "" is "0".
func ParseRubyGems(v string) (RubyGemsVersion, error) {
	s := strings.TrimSpace(v)
	if s == "" {
		s = "0"
	}
	if !gemRE.MatchString(s) {
		return RubyGemsVersion{}, invalid(v, "not a RubyGems version")
	}
	s = strings.ReplaceAll(s, "-", ".pre.")
	segs := gemSegRE.FindAllString(s, -1)
	// canonical_segments: split at the first string segment; drop trailing zeros of
	// the numeric part and of the rest.
	k := len(segs)
	for i, g := range segs {
		if !isDigit(g[0]) {
			k = i
			break
		}
	}
	canon := append(trimZeros(segs[:k]), trimZeros(segs[k:])...)
	return RubyGemsVersion{raw: v, segs: canon}, nil
}

func trimZeros(s []string) []string {
	n := len(s)
	for n > 0 && isDigit(s[n-1][0]) && strings.TrimLeft(s[n-1], "0") == "" {
		n--
	}
	return append([]string(nil), s[:n]...)
}

func (r RubyGemsVersion) String() string { return r.raw }

// Compare is Gem::Version#<=>: segment by segment, a missing one is 0, a string segment
// sorts before a number, strings compare byte-wise.
func (r RubyGemsVersion) Compare(o Version) int {
	q, ok := o.(RubyGemsVersion)
	if !ok {
		return mismatched(r, o)
	}
	for i := 0; i < max(len(r.segs), len(q.segs)); i++ {
		a, b := "0", "0"
		if i < len(r.segs) {
			a = r.segs[i]
		}
		if i < len(q.segs) {
			b = q.segs[i]
		}
		if c := cmpSegment(a, b); c != 0 {
			return c
		}
	}
	return 0
}
