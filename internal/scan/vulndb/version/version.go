package version

import (
	"errors"
	"fmt"
	"strings"
)

// Scheme is a family of version syntax and ordering.
type Scheme int

// The schemes. Generic is the fallback for ecosystems without a scheme of their own: it
// orders runs of digits numerically and everything else byte-wise.
const (
	Generic Scheme = iota
	Debian
	Alpine
	RPM
	SemVer
	PEP440
	Maven
	RubyGems
	NuGet
)

var schemeNames = [...]string{"generic", "debian", "alpine", "rpm", "semver", "pep440", "maven", "rubygems", "nuget"}

func (s Scheme) String() string {
	if int(s) < len(schemeNames) {
		return schemeNames[s]
	}
	return fmt.Sprintf("scheme(%d)", int(s))
}

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("invalid version")

// maxLen bounds what is parsed: real versions are far shorter, and the bound keeps a
// hostile record from making comparisons expensive.
const maxLen = 256

// Version is a parsed version of one scheme.
type Version interface {
	// Compare returns -1, 0 or +1 as the version sorts before, with or after o, which
	// must come from the same Scheme (otherwise the original strings are compared).
	Compare(o Version) int
	// String returns the version as it was given.
	String() string
}

// ecosystems maps an OSV ecosystem's base name (the part before any ':') to its scheme.
var ecosystems = map[string]Scheme{
	"Debian":         Debian,
	"Ubuntu":         Debian,
	"Alpine":         Alpine,
	"Wolfi":          Alpine,
	"Chainguard":     Alpine,
	"Red Hat":        RPM,
	"Rocky Linux":    RPM,
	"AlmaLinux":      RPM,
	"openSUSE":       RPM,
	"SUSE":           RPM,
	"Mageia":         RPM,
	"openEuler":      RPM,
	"Azure Linux":    RPM,
	"Go":             SemVer,
	"npm":            SemVer,
	"crates.io":      SemVer,
	"Hex":            SemVer,
	"Pub":            SemVer,
	"SwiftURL":       SemVer,
	"Bitnami":        SemVer,
	"PyPI":           PEP440,
	"Maven":          Maven,
	"RubyGems":       RubyGems,
	"NuGet":          NuGet,
	"Packagist":      Generic,
	"Hackage":        Generic,
	"CRAN":           Generic,
	"GHC":            Generic,
	"Julia":          Generic,
	"Linux":          Generic,
	"OSS-Fuzz":       Generic,
	"GitHub Actions": Generic,
}

// Base returns the ecosystem without its release suffix: "Debian:12" → "Debian".
func Base(ecosystem string) string {
	if i := strings.IndexByte(ecosystem, ':'); i >= 0 {
		return ecosystem[:i]
	}
	return ecosystem
}

// ForEcosystem returns the scheme of an OSV ecosystem ("Debian:12", "Go", "PyPI"); ok is
// false for an ecosystem this package does not know, for which Generic is returned.
func ForEcosystem(ecosystem string) (s Scheme, ok bool) {
	s, ok = ecosystems[Base(ecosystem)]
	return s, ok
}

// Parse parses v by the scheme's rules.
func (s Scheme) Parse(v string) (Version, error) {
	if len(v) > maxLen {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(v), maxLen)
	}
	switch s {
	case Debian:
		return ParseDebian(v)
	case Alpine:
		return ParseAlpine(v)
	case RPM:
		return ParseRPM(v)
	case SemVer:
		return ParseSemVer(v)
	case NuGet:
		return ParseNuGet(v)
	case PEP440:
		return ParsePEP440(v)
	case Maven:
		return ParseMaven(v)
	case RubyGems:
		return ParseRubyGems(v)
	default:
		return ParseGeneric(v)
	}
}

// Compare parses and compares a and b.
func (s Scheme) Compare(a, b string) (int, error) {
	va, err := s.Parse(a)
	if err != nil {
		return 0, err
	}
	vb, err := s.Parse(b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb), nil
}

func invalid(v, why string) error {
	return fmt.Errorf("%w %q: %s", ErrInvalid, v, why)
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// cmpDigits compares two runs of ASCII digits as unbounded non-negative integers.
func cmpDigits(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return sign(len(a) - len(b))
	}
	return strings.Compare(a, b)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// mismatched orders versions of different schemes by their strings, so that a caller's
// mistake gives a stable order rather than a panic.
func mismatched(a, b Version) int { return strings.Compare(a.String(), b.String()) }
