package audit

import (
	"cmp"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/vigil-sec/vigil/internal/sarif"
)

// sectionTitles names the benchmark's sections.
var sectionTitles = map[string]string{
	"1": "Host configuration",
	"2": "Docker daemon configuration",
	"3": "Docker daemon configuration files",
	"4": "Container images and build files",
	"5": "Container runtime",
	"6": "Docker security operations",
}

// WriteTable prints the report for a person: one line per check, the reasons and the
// offending objects under each WARN, and the summary.
func WriteTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s on %s (Docker %s)\n\n", r.Benchmark, r.Host, r.DockerVersion)
	section := ""
	for _, res := range r.Results {
		if res.Section != section {
			section = res.Section
			fmt.Fprintf(tw, "[%s] %s\n", section, sectionTitles[section])
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", res.Status, res.ID, res.Title)
		if res.Status == Pass {
			continue
		}
		if res.Reason != "" {
			fmt.Fprintf(tw, "  \t\t  %s\n", res.Reason)
		}
		for _, t := range res.Targets {
			fmt.Fprintf(tw, "  \t\t  * %s %s\n", t.Kind, t.Name)
		}
		if res.Status == Warn || res.Status == Info {
			for _, e := range res.Evidence {
				fmt.Fprintf(tw, "  \t\t  - %s\n", e)
			}
		}
	}
	s := r.Summary
	score := fmt.Sprintf("score %.1f%% of scored checks pass", s.Score)
	if s.scoredChecked == 0 && s.Total > 0 {
		score = "no scored (Automated) check among these"
	}
	fmt.Fprintf(tw, "\n%d checks: %d PASS, %d WARN, %d INFO, %d NOTE, %d SKIP; %s\n",
		s.Total, s.Pass, s.Warn, s.Info, s.Note, s.Skip, score)
	return tw.Flush()
}

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteSARIF writes the report as a SARIF 2.1.0 log, for code-scanning dashboards: one
// rule per control, one result per check; WARN results are failures at level warning,
// the others pass, review, informational or open results at level none.
func WriteSARIF(w io.Writer, r *Report, toolVersion string) error {
	run := sarif.Run{
		Tool: sarif.Tool{Driver: sarif.Driver{Name: "vigil", Version: toolVersion,
			InformationURI: "https://www.cisecurity.org/benchmark/docker"}},
		Invocations: []sarif.Invocation{{ExecutionSuccessful: true, StartTimeUTC: r.StartedAt.UTC().Format("2006-01-02T15:04:05.000Z")}},
		Results:     []sarif.Result{},
	}
	for i, res := range r.Results {
		rule := sarif.Rule{
			ID:               "CIS-Docker-" + res.ID,
			Name:             ruleName(res.Title),
			ShortDescription: sarif.Text{Text: res.Title},
			Properties:       map[string]any{"level": res.Level, "scored": res.Scored, "section": res.Section, "benchmark": r.Benchmark},
		}
		if res.Remediation != "" {
			rule.Help = &sarif.Message{Text: res.Remediation}
		}
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, rule)
		out := sarif.Result{RuleID: rule.ID, RuleIndex: i, Level: "none", Message: sarif.Text{Text: resultMessage(&res)}}
		switch res.Status {
		case Warn:
			out.Kind, out.Level = "fail", "warning"
		case Pass:
			out.Kind = "pass"
		case Info:
			out.Kind = "review"
		case Note:
			out.Kind = "informational"
		default:
			out.Kind = "open"
		}
		for _, t := range res.Targets {
			out.Locations = append(out.Locations, targetLocation(t))
		}
		run.Results = append(run.Results, out)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarif.Log{Schema: sarif.Schema, Version: sarif.Version, Runs: []sarif.Run{run}})
}

func targetLocation(t Target) sarif.Location {
	if t.Kind == "file" && strings.HasPrefix(t.Name, "/") {
		return sarif.Location{PhysicalLocation: &sarif.PhysicalLocation{ArtifactLocation: sarif.ArtifactLocation{URI: "file://" + t.Name}}}
	}
	return sarif.Location{LogicalLocations: []sarif.LogicalLocation{{Name: t.Name, FullyQualifiedName: t.Kind + "/" + t.Name, Kind: "resource"}}}
}

// ruleName turns a title into the PascalCase identifier SARIF viewers show.
func ruleName(title string) string {
	var b strings.Builder
	for _, f := range strings.FieldsFunc(title, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		b.WriteString(strings.ToUpper(f[:1]) + f[1:])
	}
	return b.String()
}

func resultMessage(r *Result) string {
	msg := string(r.Status) + ": " + r.Title
	if r.Reason != "" {
		msg += ". " + r.Reason
	}
	if len(r.Evidence) > 0 {
		msg += " Found: " + strings.Join(r.Evidence, "; ")
	}
	return msg
}

// JUnit XML, as CI systems read it.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	ClassName string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// WriteJUnit writes the report as JUnit XML: a test suite per section, a test case per
// check; WARN is a failure, SKIP is skipped, INFO and NOTE pass with their remarks as
// output.
func WriteJUnit(w io.Writer, r *Report) error {
	bySection := map[string]*junitSuite{}
	var order []string
	doc := junitSuites{Name: r.Benchmark}
	for _, res := range r.Results {
		s := bySection[res.Section]
		if s == nil {
			s = &junitSuite{Name: "Section " + res.Section + ": " + sectionTitles[res.Section]}
			bySection[res.Section] = s
			order = append(order, res.Section)
		}
		c := junitCase{ClassName: "cis.docker.section" + res.Section, Name: res.ID + " " + res.Title, Time: "0"}
		switch res.Status {
		case Warn:
			var text strings.Builder
			for _, t := range res.Targets {
				fmt.Fprintf(&text, "%s %s\n", t.Kind, t.Name)
			}
			for _, e := range res.Evidence {
				fmt.Fprintf(&text, "found: %s\n", e)
			}
			if res.Remediation != "" {
				fmt.Fprintf(&text, "remediation: %s\n", res.Remediation)
			}
			c.Failure = &junitFailure{Message: cmp.Or(res.Reason, res.Title), Type: "WARN", Text: text.String()}
			s.Failures++
			doc.Failures++
		case Skip:
			c.Skipped = &junitSkipped{Message: res.Reason}
			s.Skipped++
			doc.Skipped++
		case Info, Note:
			c.SystemOut = string(res.Status) + ": " + res.Reason + strings.Join(prefixAll("\nfound: ", res.Evidence), "")
		}
		s.Cases = append(s.Cases, c)
		s.Tests++
		doc.Tests++
	}
	sort.Strings(order)
	for _, sec := range order {
		doc.Suites = append(doc.Suites, *bySection[sec])
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func prefixAll(p string, s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = p + v
	}
	return out
}
