package vulndb

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/vigil-sec/vigil/internal/scan"
	"github.com/vigil-sec/vigil/internal/scan/vulndb/version"
)

// sourceEcosystems are the distros whose advisories name source packages.
var sourceEcosystems = map[string]bool{"Debian": true, "Ubuntu": true, "Alpine": true, "Wolfi": true, "Chainguard": true}

// maxMatchWarnings bounds the warnings of one Match.
const maxMatchWarnings = 200

// Match returns the findings for pkgs: one per package and affecting record. Each
// package is matched only against records of its own ecosystem (and distro release);
// versions are compared by that ecosystem's rules. Packages whose version cannot be
// read, and records whose ranges cannot be, are warnings, and matching goes on.
func (db *DB) Match(pkgs []scan.Package) ([]scan.Finding, []string, error) {
	m := matcher{cache: map[string][]entry{}, parsed: map[parseKey]parsed{}, warned: map[string]bool{}}
	err := guard(db.path, func() error {
		return db.bolt.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketPkgs)
			if b == nil {
				return fmt.Errorf("%w: %s has no package bucket", ErrDamaged, db.path)
			}
			m.cursor = b.Cursor()
			for i := range pkgs {
				if err := m.matchPackage(&pkgs[i]); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, nil, err
	}
	if m.dropped > 0 {
		m.warnings = append(m.warnings, fmt.Sprintf("%d more warnings not shown", m.dropped))
	}
	return m.findings, m.warnings, nil
}

type parseKey struct {
	scheme version.Scheme
	v      string
}

type parsed struct {
	v   version.Version
	err error
}

type matcher struct {
	cursor   *bolt.Cursor
	inflate  inflater
	cache    map[string][]entry // by key prefix: packages built from one source share it
	parsed   map[parseKey]parsed
	findings []scan.Finding
	warnings []string
	warned   map[string]bool
	dropped  int
}

func (m *matcher) warn(msg string) {
	if m.warned[msg] {
		return
	}
	m.warned[msg] = true
	if len(m.warnings) >= maxMatchWarnings {
		m.dropped++
		return
	}
	m.warnings = append(m.warnings, msg)
}

func (m *matcher) parse(s version.Scheme, v string) (version.Version, error) {
	k := parseKey{s, v}
	if p, ok := m.parsed[k]; ok {
		return p.v, p.err
	}
	pv, err := s.Parse(v)
	m.parsed[k] = parsed{pv, err}
	return pv, err
}

// load returns the entries stored for one package.
func (m *matcher) load(base, name string) ([]entry, error) {
	prefix := keyPrefix(base, name)
	if es, ok := m.cache[string(prefix)]; ok {
		return es, nil
	}
	var es []entry
	for k, v := m.cursor.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, v = m.cursor.Next() {
		var e entry
		if err := m.inflate.entry(v, &e); err != nil {
			_, _, id := splitKey(k)
			m.warn(fmt.Sprintf("vulnerability database: record %s of %s %s cannot be read: %v", id, base, name, err))
			continue
		}
		es = append(es, e)
	}
	m.cache[string(prefix)] = es
	return es, nil
}

func (m *matcher) matchPackage(p *scan.Package) error {
	if p.Ecosystem == "" || p.Name == "" {
		return nil
	}
	base := version.Base(p.Ecosystem)
	name, ver := p.Name, p.Version
	if sourceEcosystems[base] && p.SourceName != "" {
		name = p.SourceName
		if p.SourceVersion != "" {
			ver = p.SourceVersion
		}
	}
	entries, err := m.load(base, normalizeName(p.Ecosystem, name))
	if err != nil || len(entries) == 0 {
		return err
	}
	scheme, known := version.ForEcosystem(p.Ecosystem)
	for ei := range entries {
		e := &entries[ei]
		hit, fix, sevFrom := false, "", (*affected)(nil)
		unfixed := false
		var fixV version.Version
		for ai := range e.Affected {
			a := &e.Affected[ai]
			if !ecosystemMatches(a.Ecosystem, p.Ecosystem) {
				continue
			}
			ok, f, fv := m.affects(e.ID, a, scheme, known, p, ver)
			if !ok {
				continue
			}
			if !hit || sevFrom == nil || sevFrom.Severity == "" {
				sevFrom = a
			}
			hit = true
			switch {
			case f == "":
				unfixed = true
			case fixV == nil || fv.Compare(fixV) > 0:
				fix, fixV = f, fv
			}
		}
		if !hit {
			continue
		}
		if unfixed {
			fix = ""
		}
		f := scan.Finding{
			ID:           e.ID,
			Aliases:      e.Aliases,
			Summary:      e.Summary,
			Severity:     e.Severity,
			Score:        e.Score,
			CVSSVector:   e.Vector,
			Package:      *p,
			FixedVersion: fix,
			References:   e.Refs,
		}
		if sevFrom != nil && sevFrom.Severity != "" {
			f.Severity, f.Score, f.CVSSVector = sevFrom.Severity, sevFrom.Score, sevFrom.Vector
		}
		if f.Severity == "" {
			f.Severity = scan.SeverityUnknown
		}
		m.findings = append(m.findings, f)
	}
	return nil
}

// ecosystemMatches says whether a record's ecosystem covers a package's. They must be
// equal, except that a record of a more specific release ("Ubuntu:22.04:LTS", "Red
// Hat:enterprise_linux:9::appstream") covers a package of its release ("Ubuntu:22.04").
// A package without a release ("Debian") matches only records without one.
func ecosystemMatches(record, pkg string) bool {
	if record == pkg {
		return true
	}
	return strings.IndexByte(pkg, ':') > 0 && strings.HasPrefix(record, pkg+":")
}

// affects evaluates one affected entry for a package version: its explicit versions
// and its ECOSYSTEM and SEMVER ranges. fix is the fixed event that ends the range that
// matched ("" when none does), fixV its parsed form.
func (m *matcher) affects(id string, a *affected, scheme version.Scheme, known bool, p *scan.Package, ver string) (hit bool, fix string, fixV version.Version) {
	pv, perr := m.parse(scheme, ver)
	if slices.Contains(a.Versions, ver) {
		hit = true
	} else if perr == nil && known {
		for _, v := range a.Versions {
			if lv, err := m.parse(scheme, v); err == nil && lv.Compare(pv) == 0 {
				hit = true
				break
			}
		}
	}
	rangeHit := false
	for ri := range a.Ranges {
		r := &a.Ranges[ri]
		s, v, err := scheme, pv, perr
		switch {
		case r.Type == "SEMVER":
			s = version.SemVer
			v, err = m.parse(s, ver)
		case !known:
			m.warn(fmt.Sprintf("%s: ecosystem %s has no version rules here; only explicitly listed versions are matched", id, a.Ecosystem))
			continue
		}
		if err != nil {
			m.warn(fmt.Sprintf("%s %s (%s, %s): version cannot be compared: %v", p.Name, ver, p.Ecosystem, p.Location, err))
			return hit, "", nil
		}
		in, f, fv, err := m.inRange(s, v, r.Events)
		if err != nil {
			m.warn(fmt.Sprintf("%s: range for %s: %v", id, p.Name, err))
			continue
		}
		if !in {
			continue
		}
		// Several matching ranges: the fix must end all of them, so the highest, and
		// none when one of them has no fix.
		switch {
		case !rangeHit:
			fix, fixV = f, fv
		case fix == "":
		case f == "":
			fix, fixV = "", nil
		case fv.Compare(fixV) > 0:
			fix, fixV = f, fv
		}
		rangeHit, hit = true, true
	}
	return hit, fix, fixV
}

type parsedEvent struct {
	kind byte
	raw  string
	v    version.Version
	zero bool // introduced "0": before every version
	inf  bool // limit "*": after every version
}

// inRange evaluates one range as the OSV schema specifies: events sorted by version,
// the version is affected after an introduced event at or below it until a fixed event
// at or below it or a last_affected event below it; limit events, if any, cap the
// range. The events need not be sorted or paired in the record.
func (m *matcher) inRange(s version.Scheme, v version.Version, events []event) (bool, string, version.Version, error) {
	evs := make([]parsedEvent, 0, len(events))
	for _, e := range events {
		pe := parsedEvent{kind: e.Kind, raw: e.Version}
		switch {
		case e.Kind == evIntroduced && e.Version == "0":
			pe.zero = true
		case e.Kind == evLimit && e.Version == "*":
			pe.inf = true
		default:
			pv, err := m.parse(s, e.Version)
			if err != nil {
				return false, "", nil, err
			}
			pe.v = pv
		}
		evs = append(evs, pe)
	}
	sort.SliceStable(evs, func(i, j int) bool { return cmpEvents(&evs[i], &evs[j]) < 0 })
	affected := false
	hasLimit, underLimit := false, false
	for i := range evs {
		e := &evs[i]
		switch e.kind {
		case evIntroduced:
			if e.zero || v.Compare(e.v) >= 0 {
				affected = true
			}
		case evFixed:
			if v.Compare(e.v) >= 0 {
				affected = false
			}
		case evLastAffected:
			if v.Compare(e.v) > 0 {
				affected = false
			}
		case evLimit:
			hasLimit = true
			if e.inf || v.Compare(e.v) < 0 {
				underLimit = true
			}
		}
	}
	if !affected || hasLimit && !underLimit {
		return false, "", nil, nil
	}
	// The fix is the first event above the version, if it is a fixed one.
	for i := range evs {
		e := &evs[i]
		if e.zero || !e.inf && e.v.Compare(v) <= 0 {
			continue
		}
		if e.kind == evFixed {
			return true, e.raw, e.v, nil
		}
		if e.kind != evIntroduced {
			break
		}
	}
	return true, "", nil, nil
}

func cmpEvents(a, b *parsedEvent) int {
	switch {
	case a.zero && b.zero, a.inf && b.inf:
		return 0
	case a.zero || b.inf:
		return -1
	case b.zero || a.inf:
		return 1
	}
	return a.v.Compare(b.v)
}
