package version

import "strings"

// SemVerVersion is a Semantic Versioning 2.0.0 version, read leniently enough for the
// versions real ecosystems produce: a leading "v" or "=" (Go modules, npm), missing
// minor or patch numbers ("1.21" is 1.21.0, as Go's toolchain versions are), more than
// three numbers (NuGet's fourth), and Go's toolchain pre-releases ("1.21rc2" is
// 1.21.0-rc.2, as the Go vulnerability database writes it). Build metadata, including
// Go's "+incompatible", does not take part in the order.
type SemVerVersion struct {
	raw     string
	nums    []string // release numbers, leading zeros kept (compare numerically)
	pre     []string // pre-release identifiers
	foldPre bool     // NuGet: pre-release labels compare case-insensitively
}

// ParseSemVer parses v as a semantic version.
func ParseSemVer(v string) (SemVerVersion, error) { return parseSemVer(v, false) }

// ParseNuGet parses v as NuGet does: up to four numbers, case-insensitive pre-release.
func ParseNuGet(v string) (SemVerVersion, error) { return parseSemVer(v, true) }

func parseSemVer(v string, nuget bool) (SemVerVersion, error) {
	s := strings.TrimSpace(v)
	s = strings.TrimPrefix(s, "=")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "v"), "V")
	if i := strings.IndexByte(s, '+'); i >= 0 {
		if i == len(s)-1 {
			return SemVerVersion{}, invalid(v, "empty build metadata")
		}
		s = s[:i]
	}
	sv := SemVerVersion{raw: v, foldPre: nuget}
	rel := s
	if i := strings.IndexByte(s, '-'); i >= 0 {
		rel = s[:i]
		pre := s[i+1:]
		if pre == "" {
			return SemVerVersion{}, invalid(v, "empty pre-release")
		}
		sv.pre = strings.Split(pre, ".")
		for _, id := range sv.pre {
			if id == "" {
				return SemVerVersion{}, invalid(v, "empty pre-release identifier")
			}
			for k := 0; k < len(id); k++ {
				if c := id[k]; !isAlnum(c) && c != '-' {
					return SemVerVersion{}, invalid(v, "invalid character in pre-release")
				}
			}
		}
	}
	// Go toolchain pre-releases: "1.21rc2", "1.9beta1".
	if k := strings.IndexFunc(rel, func(r rune) bool { return r >= 'a' && r <= 'z' }); k > 0 && sv.pre == nil {
		tag := rel[k:]
		rel = rel[:k]
		n := len(tag)
		for n > 0 && isDigit(tag[n-1]) {
			n--
		}
		if n == 0 || n == len(tag) || !allAlpha(tag[:n]) {
			return SemVerVersion{}, invalid(v, "invalid pre-release")
		}
		sv.pre = []string{tag[:n], tag[n:]}
	}
	if rel == "" {
		return SemVerVersion{}, invalid(v, "empty")
	}
	sv.nums = strings.Split(rel, ".")
	maxNums := 3
	if nuget {
		maxNums = 4
	}
	if len(sv.nums) > maxNums {
		return SemVerVersion{}, invalid(v, "too many numbers")
	}
	for _, n := range sv.nums {
		if !allDigits(n) {
			return SemVerVersion{}, invalid(v, "release part is not a number")
		}
	}
	return sv, nil
}

func allAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlpha(s[i]) {
			return false
		}
	}
	return s != ""
}

func (s SemVerVersion) String() string { return s.raw }

// Compare orders by the release numbers (absent ones are 0), then a version without
// pre-release after one with, then the pre-release identifiers: numeric ones
// numerically and before alphanumeric ones, which compare in ASCII order; a shorter
// list of equal identifiers first.
func (s SemVerVersion) Compare(o Version) int {
	t, ok := o.(SemVerVersion)
	if !ok {
		return mismatched(s, o)
	}
	for i := 0; i < max(len(s.nums), len(t.nums)); i++ {
		a, b := "0", "0"
		if i < len(s.nums) {
			a = s.nums[i]
		}
		if i < len(t.nums) {
			b = t.nums[i]
		}
		if c := cmpDigits(a, b); c != 0 {
			return c
		}
	}
	switch {
	case len(s.pre) == 0 && len(t.pre) == 0:
		return 0
	case len(s.pre) == 0:
		return 1
	case len(t.pre) == 0:
		return -1
	}
	for i := 0; i < min(len(s.pre), len(t.pre)); i++ {
		a, b := s.pre[i], t.pre[i]
		an, bn := allDigits(a), allDigits(b)
		var c int
		switch {
		case an && bn:
			c = cmpDigits(a, b)
		case an:
			c = -1
		case bn:
			c = 1
		case s.foldPre:
			c = strings.Compare(strings.ToLower(a), strings.ToLower(b))
		default:
			c = strings.Compare(a, b)
		}
		if c != 0 {
			return c
		}
	}
	return sign(len(s.pre) - len(t.pre))
}
