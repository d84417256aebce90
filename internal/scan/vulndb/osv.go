package vulndb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-sec/vigil/internal/scan"
	"github.com/vigil-sec/vigil/internal/scan/vulndb/version"
)

// osvRecord is the part of an OSV record (schema 1.x) that Vigil reads.
type osvRecord struct {
	ID               string          `json:"id"`
	Modified         string          `json:"modified"`
	Withdrawn        string          `json:"withdrawn"`
	Aliases          []string        `json:"aliases"`
	Summary          string          `json:"summary"`
	Details          string          `json:"details"`
	Severity         []osvSeverity   `json:"severity"`
	Affected         []osvAffected   `json:"affected"`
	References       []osvReference  `json:"references"`
	DatabaseSpecific json.RawMessage `json:"database_specific"`
}

type osvSeverity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

type osvReference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

type osvAffected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
	} `json:"package"`
	Severity          []osvSeverity   `json:"severity"`
	Ranges            []osvRange      `json:"ranges"`
	Versions          []string        `json:"versions"`
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific"`
	DatabaseSpecific  json.RawMessage `json:"database_specific"`
}

type osvRange struct {
	Type   string     `json:"type"`
	Events []osvEvent `json:"events"`
}

type osvEvent struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// Bounds on what a record may hold; real records are far below them.
const (
	maxIDLen      = 256
	maxNameLen    = 1024
	maxSummaryLen = 512
	maxRefs       = 64
)

var errWithdrawn = errors.New("withdrawn")

// entry is what the index keeps of one record for one package: enough to decide whether
// a version is affected and to write the finding.
type entry struct {
	ID       string     `json:"id"`
	Aliases  []string   `json:"al,omitempty"`
	Summary  string     `json:"su,omitempty"`
	Severity string     `json:"se"`
	Score    float64    `json:"sc,omitempty"`
	Vector   string     `json:"ve,omitempty"`
	Refs     []string   `json:"re,omitempty"`
	Affected []affected `json:"af"`
}

type affected struct {
	Ecosystem string   `json:"e"`
	Ranges    []rng    `json:"r,omitempty"`
	Versions  []string `json:"v,omitempty"`
	// Severity of this package only, when the record says (schema 1.5 affected[].severity,
	// Debian's urgency); empty means the record's.
	Severity string  `json:"se,omitempty"`
	Score    float64 `json:"sc,omitempty"`
	Vector   string  `json:"ve,omitempty"`
}

type rng struct {
	Type   string  `json:"t"`
	Events []event `json:"e"`
}

// event kinds, in the order used when two events have the same version.
const (
	evIntroduced   = 'i'
	evFixed        = 'f'
	evLastAffected = 'l'
	evLimit        = 'x'
)

type event struct {
	Kind    byte   `json:"k"`
	Version string `json:"v"`
}

// pkgKey identifies the records of one package: ecosystem base and name.
type pkgKey struct{ base, name string }

// decodeRecord parses one OSV record and returns what the index keeps of it, one entry
// per package it affects. A withdrawn record returns errWithdrawn (and its id).
func decodeRecord(data []byte) (string, map[pkgKey]*entry, time.Time, error) {
	var r osvRecord
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return "", nil, time.Time{}, fmt.Errorf("not an OSV record: %w", err)
	}
	if r.ID == "" || len(r.ID) > maxIDLen || strings.ContainsAny(r.ID, "\x00/") {
		return "", nil, time.Time{}, fmt.Errorf("record id %q is missing or invalid", trunc(r.ID, 80))
	}
	modified, _ := time.Parse(time.RFC3339, r.Modified)
	if r.Withdrawn != "" {
		return r.ID, nil, modified, errWithdrawn
	}
	sev, score, vector := recordSeverity(&r)
	summary := r.Summary
	if summary == "" {
		summary, _, _ = strings.Cut(strings.TrimSpace(r.Details), "\n")
	}
	base := entry{
		ID:       r.ID,
		Aliases:  r.Aliases,
		Summary:  trunc(summary, maxSummaryLen),
		Severity: sev,
		Score:    score,
		Vector:   vector,
	}
	for _, ref := range r.References {
		if len(base.Refs) == maxRefs {
			break
		}
		if ref.URL != "" {
			base.Refs = append(base.Refs, ref.URL)
		}
	}
	out := map[pkgKey]*entry{}
	for i := range r.Affected {
		a := &r.Affected[i]
		eco, name := a.Package.Ecosystem, a.Package.Name
		if eco == "" || name == "" {
			continue // affects a repository (GIT ranges only), not a package
		}
		if len(name) > maxNameLen || strings.IndexByte(name, 0) >= 0 || strings.IndexByte(eco, 0) >= 0 {
			return r.ID, nil, modified, fmt.Errorf("record %s: invalid package name", r.ID)
		}
		k := pkgKey{version.Base(eco), normalizeName(eco, name)}
		af := affected{Ecosystem: eco, Versions: a.Versions}
		for _, rg := range a.Ranges {
			if rg.Type != "ECOSYSTEM" && rg.Type != "SEMVER" {
				continue // GIT ranges name commits, which an inventory does not have
			}
			out := rng{Type: rg.Type}
			for _, ev := range rg.Events {
				switch {
				case ev.Introduced != "":
					out.Events = append(out.Events, event{evIntroduced, ev.Introduced})
				case ev.Fixed != "":
					out.Events = append(out.Events, event{evFixed, ev.Fixed})
				case ev.LastAffected != "":
					out.Events = append(out.Events, event{evLastAffected, ev.LastAffected})
				case ev.Limit != "":
					out.Events = append(out.Events, event{evLimit, ev.Limit})
				}
			}
			if len(out.Events) > 0 {
				af.Ranges = append(af.Ranges, out)
			}
		}
		if len(af.Ranges) == 0 && len(af.Versions) == 0 {
			continue
		}
		af.Severity, af.Score, af.Vector = affectedSeverity(a)
		e := out[k]
		if e == nil {
			e = new(entry)
			*e = base
			out[k] = e
		}
		e.Affected = append(e.Affected, af)
	}
	return r.ID, out, modified, nil
}

// normalizeName folds the names an ecosystem treats as equal: PyPI compares names
// case-insensitively with runs of '-', '_' and '.' equal (PEP 503).
func normalizeName(ecosystem, name string) string {
	if version.Base(ecosystem) != "PyPI" {
		return name
	}
	var b strings.Builder
	sep := false
	for _, c := range strings.ToLower(name) {
		if c == '-' || c == '_' || c == '.' {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		b.WriteRune(c)
	}
	return b.String()
}

// recordSeverity picks the record's severity: a CVSS v3 vector's score, else a v2
// vector's, else a word from database_specific (GHSA) or from an affected package; a
// CVSS v4 vector is kept for the report but not scored.
func recordSeverity(r *osvRecord) (string, float64, string) {
	if sev, score, vector := vectorSeverity(r.Severity); sev != "" {
		return sev, score, vector
	}
	_, _, v4 := vectorSeverity4(r.Severity)
	if w := wordSeverity(r.DatabaseSpecific); w != "" {
		return w, 0, v4
	}
	for i := range r.Affected {
		if sev, score, vector := affectedSeverity(&r.Affected[i]); sev != "" {
			return sev, score, vector
		}
	}
	return scan.SeverityUnknown, 0, v4
}

// affectedSeverity is the severity an affected entry gives its package, "" if none.
func affectedSeverity(a *osvAffected) (string, float64, string) {
	if sev, score, vector := vectorSeverity(a.Severity); sev != "" {
		return sev, score, vector
	}
	if w := wordSeverity(a.EcosystemSpecific); w != "" {
		return w, 0, ""
	}
	if w := wordSeverity(a.DatabaseSpecific); w != "" {
		return w, 0, ""
	}
	return "", 0, ""
}

func vectorSeverity(sevs []osvSeverity) (string, float64, string) {
	for _, want := range []string{"CVSS_V3", "CVSS_V2"} {
		for _, s := range sevs {
			if s.Type != want {
				continue
			}
			if want == "CVSS_V3" {
				if score, err := CVSS3Score(s.Score); err == nil {
					return severityV3(score), score, s.Score
				}
			} else if score, err := CVSS2Score(s.Score); err == nil {
				return severityV2(score), score, s.Score
			}
		}
	}
	return "", 0, ""
}

func vectorSeverity4(sevs []osvSeverity) (string, float64, string) {
	for _, s := range sevs {
		if s.Type == "CVSS_V4" {
			return "", 0, s.Score
		}
	}
	return "", 0, ""
}

// wordSeverity reads a severity word from a database_specific or ecosystem_specific
// object: "severity" (GHSA, Go, Ubuntu), "urgency" (Debian), "priority" (Ubuntu).
func wordSeverity(raw json.RawMessage) string {
	if len(raw) == 0 || raw[0] != '{' {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	for _, k := range []string{"severity", "urgency", "priority"} {
		var s string
		if v, ok := m[k]; ok && json.Unmarshal(v, &s) == nil {
			if sev := severityLabel(s); sev != "" {
				return sev
			}
		}
	}
	return ""
}

// trunc cuts s to at most n bytes, not inside a UTF-8 sequence.
func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
