package version

import (
	"regexp"
	"strings"
)

// PEP440Version is a Python package version as PEP 440 defines it, normalised the way
// pip (the packaging library) does: "1.0-alpha.1" is 1.0a1, "1.0-1" is 1.0.post1, "rev"
// and "r" are post, "c", "pre" and "preview" are rc.
type PEP440Version struct {
	raw     string
	epoch   string
	release []string
	preL    string // "a", "b", "rc" or "" for none
	preN    string
	post    string // "" for none, else the number
	hasPost bool
	dev     string
	hasDev  bool
	local   []string // lower-cased segments
}

// pep440RE is PEP 440's appendix regular expression (the permissive form pip uses).
var pep440RE = regexp.MustCompile(`^v?` +
	`(?:([0-9]+)!)?` +
	`([0-9]+(?:\.[0-9]+)*)` +
	`([-_.]?(alpha|a|beta|b|preview|pre|c|rc)[-_.]?([0-9]+)?)?` +
	`((?:-([0-9]+))|(?:[-_.]?(post|rev|r)[-_.]?([0-9]+)?))?` +
	`([-_.]?(dev)[-_.]?([0-9]+)?)?` +
	`(?:\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?$`)

// ParsePEP440 parses v.
func ParsePEP440(v string) (PEP440Version, error) {
	m := pep440RE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(v)))
	if m == nil {
		return PEP440Version{}, invalid(v, "not a PEP 440 version")
	}
	p := PEP440Version{raw: v, epoch: m[1], release: strings.Split(m[2], ".")}
	if m[3] != "" {
		switch m[4] {
		case "alpha", "a":
			p.preL = "a"
		case "beta", "b":
			p.preL = "b"
		default:
			p.preL = "rc"
		}
		p.preN = m[5]
	}
	if m[6] != "" {
		p.hasPost = true
		p.post = m[7]
		if p.post == "" {
			p.post = m[9]
		}
	}
	if m[10] != "" {
		p.hasDev = true
		p.dev = m[12]
	}
	if m[13] != "" {
		p.local = strings.FieldsFunc(m[13], func(r rune) bool { return r == '-' || r == '_' || r == '.' })
	}
	return p, nil
}

func (p PEP440Version) String() string { return p.raw }

// Compare orders as packaging's Version does: epoch; release with trailing zeros
// ignored; pre-release (a dev release of the final version before its pre-releases);
// post-release; dev-release (before the same version without it); local version
// (absent first, then segment by segment, alphanumeric segments before numeric ones).
func (p PEP440Version) Compare(o Version) int {
	q, ok := o.(PEP440Version)
	if !ok {
		return mismatched(p, o)
	}
	if c := cmpDigits(p.epoch, q.epoch); c != 0 {
		return c
	}
	for i := 0; i < max(len(p.release), len(q.release)); i++ {
		a, b := "0", "0"
		if i < len(p.release) {
			a = p.release[i]
		}
		if i < len(q.release) {
			b = q.release[i]
		}
		if c := cmpDigits(a, b); c != 0 {
			return c
		}
	}
	if c := cmpRank(p.preRank(), q.preRank()); c != 0 {
		return c
	}
	if p.preL != "" && q.preL != "" {
		if c := strings.Compare(p.preL, q.preL); c != 0 {
			return c
		}
		if c := cmpDigits(p.preN, q.preN); c != 0 {
			return c
		}
	}
	// Post: absent before any post-release.
	switch {
	case p.hasPost && !q.hasPost:
		return 1
	case !p.hasPost && q.hasPost:
		return -1
	case p.hasPost:
		if c := cmpDigits(p.post, q.post); c != 0 {
			return c
		}
	}
	// Dev: absent after any dev-release.
	switch {
	case p.hasDev && !q.hasDev:
		return -1
	case !p.hasDev && q.hasDev:
		return 1
	case p.hasDev:
		if c := cmpDigits(p.dev, q.dev); c != 0 {
			return c
		}
	}
	return cmpLocal(p.local, q.local)
}

// preRank places the pre-release: -1 for a dev release with no pre or post release
// (1.0.dev1 < 1.0a1), 0 for a pre-release, +1 for none.
func (p PEP440Version) preRank() int {
	switch {
	case p.preL == "" && !p.hasPost && p.hasDev:
		return -1
	case p.preL != "":
		return 0
	}
	return 1
}

func cmpRank(a, b int) int { return sign(a - b) }

func cmpLocal(a, b []string) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	for i := 0; i < min(len(a), len(b)); i++ {
		an, bn := allDigits(a[i]), allDigits(b[i])
		var c int
		switch {
		case an && bn:
			c = cmpDigits(a[i], b[i])
		case an:
			c = 1
		case bn:
			c = -1
		default:
			c = strings.Compare(a[i], b[i])
		}
		if c != 0 {
			return c
		}
	}
	return sign(len(a) - len(b))
}
