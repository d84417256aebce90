package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-sec/vigil/internal/scan"
)

// WriteTable prints the report for a person: what was scanned, one line per finding in
// the order of Sort (in use first, then by severity), and the summary counts.
func WriteTable(w io.Writer, r *scan.Report) error {
	fs := append([]scan.Finding(nil), r.Findings...)
	Sort(fs)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\n", describeTarget(r))
	if r.DBAge > 0 {
		fmt.Fprintf(tw, "Vulnerability database: %s old\n", roundAge(r.DBAge))
	}
	fmt.Fprintln(tw)
	if len(fs) == 0 {
		fmt.Fprintln(tw, "No vulnerabilities found.")
	} else {
		layers := len(r.Layers) > 0
		hdr := "SEVERITY\tID\tPACKAGE\tINSTALLED\tFIXED\tIN USE\t"
		if layers {
			hdr += "LAYER\t"
		}
		fmt.Fprintln(tw, hdr+"LOCATION")
		for i := range fs {
			f := &fs[i]
			sev := strings.ToUpper(f.Severity)
			if f.Score > 0 {
				sev += fmt.Sprintf(" %.1f", f.Score)
			}
			name := f.Package.Name
			if f.Package.SourceName != "" && f.Package.SourceName != f.Package.Name {
				name += " (" + f.Package.SourceName + ")"
			}
			use := "-"
			if f.InUse {
				use = "yes"
			}
			line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t", sev, f.ID, name, f.Package.Version, orNone(f.FixedVersion), use)
			if layers {
				line += orDash(ShortLayer(f.Package.Layer)) + "\t"
			}
			fmt.Fprintln(tw, line+f.Package.Location)
		}
	}
	s := Summarize(r)
	fmt.Fprintf(tw, "\n%d packages, %d findings of %d vulnerabilities: %d critical, %d high, %d medium, %d low, %d unknown; %d fixable, %d in use\n",
		s.Packages, s.Findings, s.Vulnerabilities,
		s.BySeverity[scan.SeverityCritical], s.BySeverity[scan.SeverityHigh], s.BySeverity[scan.SeverityMedium],
		s.BySeverity[scan.SeverityLow], s.BySeverity[scan.SeverityUnknown], s.Fixable, s.InUse)
	if n := len(r.Warnings); n > 0 {
		fmt.Fprintf(tw, "%d warnings (files that could not be read fully); see -o json\n", n)
	}
	return tw.Flush()
}

func describeTarget(r *scan.Report) string {
	t := r.Target
	s := t.Kind + " " + t.Name
	if t.ID != "" && t.ID != t.Name {
		id := t.ID
		if len(id) > 19 {
			id = id[:19]
		}
		s += " (" + id + ")"
	}
	if r.OS != nil {
		os := r.OS.PrettyName
		if os == "" {
			os = strings.TrimSpace(r.OS.ID + " " + r.OS.VersionID)
		}
		s += ": " + os
	}
	return s
}

func roundAge(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d >= time.Hour:
		return fmt.Sprintf("%d hours", int(d/time.Hour))
	}
	return d.Round(time.Minute).String()
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
