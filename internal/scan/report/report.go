package report

import (
	"cmp"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/vigil-sec/vigil/internal/scan"
)

// Format is an output format.
type Format string

// The output formats.
const (
	Table     Format = "table"
	JSON      Format = "json"
	SARIF     Format = "sarif"
	CycloneDX Format = "cyclonedx"
	SPDX      Format = "spdx"
)

// Formats lists the output formats, in the order help texts name them.
var Formats = []Format{Table, JSON, SARIF, CycloneDX, SPDX}

// ParseFormat checks an -o value.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == strings.ToLower(s) {
			return f, nil
		}
	}
	return "", fmt.Errorf("output format %q: want table, json, sarif, cyclonedx or spdx", s)
}

// Tool names the program that wrote a document (SARIF driver, CycloneDX tool, SPDX
// creator).
type Tool struct {
	Name    string
	Version string
}

// Write writes r in format f.
func Write(w io.Writer, f Format, r *scan.Report, tool Tool) error {
	switch f {
	case Table:
		return WriteTable(w, r)
	case JSON:
		return WriteJSON(w, r)
	case SARIF:
		return WriteSARIF(w, r, tool)
	case CycloneDX:
		return WriteCycloneDX(w, r, tool)
	case SPDX:
		return WriteSPDX(w, r, tool)
	}
	return fmt.Errorf("output format %q: want table, json, sarif, cyclonedx or spdx", f)
}

// severities in rising order; the index is the rank.
var severities = []string{scan.SeverityUnknown, scan.SeverityLow, scan.SeverityMedium, scan.SeverityHigh, scan.SeverityCritical}

// Rank orders severities: unknown 0, low 1, medium 2, high 3, critical 4. Anything else
// ranks as unknown.
func Rank(severity string) int {
	if i := slices.Index(severities, severity); i >= 0 {
		return i
	}
	return 0
}

// ParseSeverity checks a severity name given by a user (case-insensitive).
func ParseSeverity(s string) (string, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	if slices.Contains(severities, l) {
		return l, nil
	}
	return "", fmt.Errorf("severity %q: want unknown, low, medium, high or critical", s)
}

// ParseThreshold checks a --fail-on value: low, medium, high or critical (unknown is no
// threshold: every finding would reach it, which "low" already says).
func ParseThreshold(s string) (string, error) {
	l, err := ParseSeverity(s)
	if err != nil || l == scan.SeverityUnknown {
		return "", fmt.Errorf("--fail-on %q: want low, medium, high or critical", s)
	}
	return l, nil
}

// Filter says which findings a report keeps.
type Filter struct {
	// IgnoreUnfixed drops findings that no released version fixes.
	IgnoreUnfixed bool
	// Severities, when not empty, keeps only findings of these severities.
	Severities []string
	// MinSeverity, when set, drops findings below it.
	MinSeverity string
}

// Keep reports whether f passes the filter.
func (flt Filter) Keep(f *scan.Finding) bool {
	if flt.IgnoreUnfixed && f.FixedVersion == "" {
		return false
	}
	if len(flt.Severities) > 0 && !slices.Contains(flt.Severities, f.Severity) {
		return false
	}
	if flt.MinSeverity != "" && Rank(f.Severity) < Rank(flt.MinSeverity) {
		return false
	}
	return true
}

// Apply drops the findings the filter does not keep, in place, and sorts the rest.
func (flt Filter) Apply(r *scan.Report) {
	r.Findings = slices.DeleteFunc(r.Findings, func(f scan.Finding) bool { return !flt.Keep(&f) })
	Sort(r.Findings)
}

// Sort orders findings the way every output shows them: those in use by a running
// process first (the ones to patch first), then by severity and score, highest first,
// then by package and ID so that the order is stable.
func Sort(fs []scan.Finding) {
	slices.SortStableFunc(fs, func(a, b scan.Finding) int {
		if a.InUse != b.InUse {
			if a.InUse {
				return -1
			}
			return 1
		}
		return cmp.Or(
			cmp.Compare(Rank(b.Severity), Rank(a.Severity)),
			cmp.Compare(b.Score, a.Score),
			cmp.Compare(a.Package.Name, b.Package.Name),
			cmp.Compare(a.Package.Location, b.Package.Location),
			cmp.Compare(a.ID, b.ID),
		)
	})
}

// Reaching counts the findings at or above threshold (a --fail-on value).
func Reaching(fs []scan.Finding, threshold string) int {
	n := 0
	for i := range fs {
		if Rank(fs[i].Severity) >= Rank(threshold) {
			n++
		}
	}
	return n
}

// Summary counts a report's findings.
type Summary struct {
	Packages int `json:"packages"`
	Findings int `json:"findings"`
	// Vulnerabilities counts distinct advisory IDs.
	Vulnerabilities int            `json:"vulnerabilities"`
	BySeverity      map[string]int `json:"by_severity"`
	Fixable         int            `json:"fixable"`
	InUse           int            `json:"in_use"`
}

// Summarize counts r's findings.
func Summarize(r *scan.Report) Summary {
	s := Summary{Packages: len(r.Packages), Findings: len(r.Findings), BySeverity: map[string]int{}}
	for _, sev := range severities {
		s.BySeverity[sev] = 0
	}
	ids := map[string]bool{}
	for i := range r.Findings {
		f := &r.Findings[i]
		ids[f.ID] = true
		s.BySeverity[severities[Rank(f.Severity)]]++
		if f.FixedVersion != "" {
			s.Fixable++
		}
		if f.InUse {
			s.InUse++
		}
	}
	s.Vulnerabilities = len(ids)
	return s
}

// jsonReport is the JSON output: the report with its summary.
type jsonReport struct {
	*scan.Report
	Summary Summary `json:"summary"`
}

// WriteJSON writes the report as indented JSON, with a "summary" object beside the
// report's own fields.
func WriteJSON(w io.Writer, r *scan.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	rep := *r
	if rep.Findings == nil {
		rep.Findings = []scan.Finding{}
	}
	if rep.Packages == nil {
		rep.Packages = []scan.Package{}
	}
	return enc.Encode(jsonReport{Report: &rep, Summary: Summarize(&rep)})
}

// pkgKey identifies a package occurrence: the same name and version found in two files
// or introduced by two layers are two occurrences.
type pkgKey struct {
	ecosystem, name, version, location, layer string
}

func keyOf(p *scan.Package) pkgKey {
	return pkgKey{p.Ecosystem, p.Name, p.Version, p.Location, p.Layer}
}

// occurrences lists the report's packages, then any package a finding names that the
// inventory does not list (a report built from findings alone), each once.
func occurrences(r *scan.Report) []scan.Package {
	seen := map[pkgKey]bool{}
	var out []scan.Package
	add := func(p scan.Package) {
		k := keyOf(&p)
		if !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	for _, p := range r.Packages {
		add(p)
	}
	for _, f := range r.Findings {
		add(f.Package)
	}
	return out
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux (getrandom)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ShortLayer shortens a layer diff ID for a table: the first 12 hex digits.
func ShortLayer(diffID string) string {
	_, hex, ok := strings.Cut(diffID, ":")
	if !ok {
		hex = diffID
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}

// advisoryURL is where a person reads an advisory: osv.dev serves every OSV ID.
func advisoryURL(id string) string {
	return "https://osv.dev/vulnerability/" + id
}
