package version

import "strings"

// RPMVersion is an RPM EVR: [epoch:]version[-release].
type RPMVersion struct {
	raw     string
	epoch   string
	version string
	release string
}

// ParseRPM parses an EVR. rpm itself accepts almost any string; only an empty version
// or a non-numeric epoch is refused here.
func ParseRPM(v string) (RPMVersion, error) {
	s := strings.TrimSpace(v)
	if s == "" {
		return RPMVersion{}, invalid(v, "empty")
	}
	r := RPMVersion{raw: v}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		r.epoch = s[:i]
		if !allDigits(r.epoch) {
			return RPMVersion{}, invalid(v, "epoch is not a number")
		}
		s = s[i+1:]
	}
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		r.version, r.release = s[:i], s[i+1:]
	} else {
		r.version = s
	}
	if r.version == "" {
		return RPMVersion{}, invalid(v, "version is empty")
	}
	return r, nil
}

func (r RPMVersion) String() string { return r.raw }

// Compare orders by epoch (absent = 0), version, then release, each with rpmvercmp.
func (r RPMVersion) Compare(o Version) int {
	p, ok := o.(RPMVersion)
	if !ok {
		return mismatched(r, o)
	}
	if c := cmpDigits(r.epoch, p.epoch); c != 0 {
		return c
	}
	if c := rpmvercmp(r.version, p.version); c != 0 {
		return c
	}
	return rpmvercmp(r.release, p.release)
}

func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }

// rpmvercmp is rpm's comparison (rpmio/rpmvercmp.c, rpm ≥ 4.15): separators are
// ignored, runs of digits compare as numbers and beat runs of letters, '~' sorts before
// anything (even the end), '^' after the end but before anything else.
func rpmvercmp(a, b string) int {
	if a == b {
		return 0
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for i < len(a) && !isAlnum(a[i]) && a[i] != '~' && a[i] != '^' {
			i++
		}
		for j < len(b) && !isAlnum(b[j]) && b[j] != '~' && b[j] != '^' {
			j++
		}
		ta, tb := i < len(a) && a[i] == '~', j < len(b) && b[j] == '~'
		if ta || tb {
			if !ta {
				return 1
			}
			if !tb {
				return -1
			}
			i++
			j++
			continue
		}
		ca, cb := i < len(a) && a[i] == '^', j < len(b) && b[j] == '^'
		if ca || cb {
			if i >= len(a) {
				return -1
			}
			if j >= len(b) {
				return 1
			}
			if !ca {
				return 1
			}
			if !cb {
				return -1
			}
			i++
			j++
			continue
		}
		if i >= len(a) || j >= len(b) {
			break
		}
		si, sj := i, j
		num := isDigit(a[i])
		if num {
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
		} else {
			for i < len(a) && isAlpha(a[i]) {
				i++
			}
			for j < len(b) && isAlpha(b[j]) {
				j++
			}
		}
		if sj == j {
			// One side has digits where the other has letters: digits are newer.
			if num {
				return 1
			}
			return -1
		}
		var c int
		if num {
			c = cmpDigits(a[si:i], b[sj:j])
		} else {
			c = strings.Compare(a[si:i], b[sj:j])
		}
		if c != 0 {
			return c
		}
	}
	switch {
	case i >= len(a) && j >= len(b):
		return 0
	case i < len(a):
		return 1
	}
	return -1
}
