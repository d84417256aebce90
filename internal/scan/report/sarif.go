package report

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vigil-sec/vigil/internal/sarif"
	"github.com/vigil-sec/vigil/internal/scan"
)

// sarifBase is the uriBaseId of every location: the root of the scanned target.
const sarifBase = "TARGETROOT"

// WriteSARIF writes the report as a SARIF 2.1.0 log: one rule per vulnerability (its
// security-severity the highest score among its findings, as GitHub code scanning reads
// it), one result per finding, located at the file the package was found in, relative
// to the target's root.
func WriteSARIF(w io.Writer, r *scan.Report, tool Tool) error {
	fs := append([]scan.Finding(nil), r.Findings...)
	Sort(fs)
	run := sarif.Run{
		Tool: sarif.Tool{Driver: sarif.Driver{Name: tool.Name, Version: tool.Version,
			InformationURI: "https://github.com/vigil-sec/vigil", Rules: []sarif.Rule{}}},
		Invocations:        []sarif.Invocation{{ExecutionSuccessful: true, EndTimeUTC: sarifTime(r)}},
		OriginalURIBaseIDs: map[string]sarif.ArtifactLocation{sarifBase: targetRoot(r)},
		Results:            []sarif.Result{},
		Properties:         map[string]any{"target": r.Target},
	}
	for _, warn := range r.Warnings {
		run.Invocations[0].ToolExecutionNotifications = append(run.Invocations[0].ToolExecutionNotifications,
			sarif.Notification{Level: "warning", Message: sarif.Text{Text: warn}})
	}
	ruleIndex := map[string]int{}
	for i := range fs {
		f := &fs[i]
		idx, ok := ruleIndex[f.ID]
		if !ok {
			idx = len(run.Tool.Driver.Rules)
			ruleIndex[f.ID] = idx
			run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, newRule(f))
		}
		rule := &run.Tool.Driver.Rules[idx]
		if raiseRule(rule, f) {
			rule.DefaultConfiguration.Level = sarifLevel(f.Severity)
		}
		run.Results = append(run.Results, sarif.Result{
			RuleID:    f.ID,
			RuleIndex: idx,
			Kind:      "fail",
			Level:     sarifLevel(f.Severity),
			Message:   sarif.Text{Text: resultText(f)},
			Locations: []sarif.Location{packageLocation(&f.Package)},
			PartialFingerprints: map[string]string{
				"vigilFinding/v1": f.ID + "|" + f.Package.Ecosystem + "|" + f.Package.Name + "|" + f.Package.Location,
			},
			Properties: resultProperties(f),
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarif.Log{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarif.Run{run}})
}

func sarifTime(r *scan.Report) string {
	if r.ScannedAt.IsZero() {
		return ""
	}
	return r.ScannedAt.UTC().Format("2006-01-02T15:04:05.000Z")
}

// targetRoot describes the root locations are relative to: a file URI for a host or a
// directory, a description only for an image or a container, which have no path here.
func targetRoot(r *scan.Report) sarif.ArtifactLocation {
	desc := &sarif.Text{Text: "the root of the scanned " + r.Target.Kind + " " + r.Target.Name}
	switch r.Target.Kind {
	case "host", "dir":
		if root, err := filepath.Abs(r.Target.Name); err == nil && r.Target.Name != "" {
			return sarif.ArtifactLocation{URI: (&url.URL{Scheme: "file", Path: strings.TrimSuffix(root, "/") + "/"}).String(), Description: desc}
		}
	}
	return sarif.ArtifactLocation{Description: desc}
}

func newRule(f *scan.Finding) sarif.Rule {
	short := f.Summary
	if short == "" {
		short = f.ID
	}
	full := short
	if len(f.Aliases) > 0 {
		full += " (" + strings.Join(f.Aliases, ", ") + ")"
	}
	var md strings.Builder
	fmt.Fprintf(&md, "**%s** %s\n\n", f.ID, short)
	for _, ref := range f.References {
		fmt.Fprintf(&md, "- <%s>\n", ref)
	}
	return sarif.Rule{
		ID:                   f.ID,
		ShortDescription:     sarif.Text{Text: short},
		FullDescription:      &sarif.Text{Text: full},
		HelpURI:              advisoryURL(f.ID),
		Help:                 &sarif.Message{Text: full + "\n" + advisoryURL(f.ID), Markdown: md.String()},
		DefaultConfiguration: &sarif.Configuration{Level: sarifLevel(f.Severity)},
		Properties: map[string]any{
			"tags":      []string{"vulnerability", "security", f.Severity},
			"precision": "very-high",
		},
	}
}

// raiseRule makes the rule's severity the highest of its findings' and says whether it
// changed.
func raiseRule(rule *sarif.Rule, f *scan.Finding) bool {
	score := securitySeverity(f)
	if score == "" {
		return false
	}
	if old, ok := rule.Properties["security-severity"].(string); ok {
		o, _ := strconv.ParseFloat(old, 64)
		n, _ := strconv.ParseFloat(score, 64)
		if n <= o {
			return false
		}
	}
	rule.Properties["security-severity"] = score
	return true
}

// securitySeverity is the score GitHub code scanning sorts by: the CVSS score, else the
// lower bound of the severity's band (critical 9.0, high 7.0, medium 4.0, low 0.1), so
// that the dashboard shows the same class.
func securitySeverity(f *scan.Finding) string {
	if f.Score > 0 {
		return strconv.FormatFloat(f.Score, 'f', 1, 64)
	}
	switch f.Severity {
	case scan.SeverityCritical:
		return "9.0"
	case scan.SeverityHigh:
		return "7.0"
	case scan.SeverityMedium:
		return "4.0"
	case scan.SeverityLow:
		return "0.1"
	}
	return ""
}

func sarifLevel(severity string) string {
	switch severity {
	case scan.SeverityCritical, scan.SeverityHigh:
		return "error"
	case scan.SeverityMedium:
		return "warning"
	}
	return "note"
}

func resultText(f *scan.Finding) string {
	p := &f.Package
	s := fmt.Sprintf("%s %s (%s) is affected by %s", p.Name, p.Version, p.Ecosystem, f.ID)
	if f.Severity != "" && f.Severity != scan.SeverityUnknown {
		s += ", severity " + f.Severity
	}
	if f.FixedVersion != "" {
		s += "; fixed in " + f.FixedVersion
	} else {
		s += "; no fixed version yet"
	}
	if f.InUse {
		s += "; in use by a running process"
	}
	if f.Summary != "" {
		s += ". " + f.Summary
	}
	return s
}

func packageLocation(p *scan.Package) sarif.Location {
	loc := sarif.Location{LogicalLocations: []sarif.LogicalLocation{{Name: p.Name + "@" + p.Version, FullyQualifiedName: p.PURL, Kind: "package"}}}
	if rel := strings.TrimLeft(p.Location, "/"); rel != "" {
		loc.PhysicalLocation = &sarif.PhysicalLocation{ArtifactLocation: sarif.ArtifactLocation{URI: (&url.URL{Path: rel}).String(), URIBaseID: sarifBase}}
	}
	return loc
}

func resultProperties(f *scan.Finding) map[string]any {
	p := map[string]any{
		"purl":      f.Package.PURL,
		"installed": f.Package.Version,
		"ecosystem": f.Package.Ecosystem,
		"in_use":    f.InUse,
		"severity":  f.Severity,
	}
	if f.FixedVersion != "" {
		p["fixed"] = f.FixedVersion
	}
	if f.Package.Layer != "" {
		p["layer"] = f.Package.Layer
	}
	if f.Package.SourceName != "" {
		p["source_package"] = f.Package.SourceName
	}
	if f.CVSSVector != "" {
		p["cvss_vector"] = f.CVSSVector
	}
	return p
}
