package report

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vigil-sec/vigil/internal/sarif"
	"github.com/vigil-sec/vigil/internal/scan"
)

const (
	baseLayer = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
	appLayer  = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
)

// sampleReport is an image with a Debian base layer and a Go binary on top; the
// advisories are real records of the fixture data (Debian 12 and the Go database).
func sampleReport() *scan.Report {
	libssl := scan.Package{Name: "libssl3", Version: "3.0.19-1~deb12u2", Ecosystem: "Debian:12",
		PURL: "pkg:deb/debian/libssl3@3.0.19-1~deb12u2?arch=amd64&distro=debian-12", SourceName: "openssl", SourceVersion: "3.0.19-1~deb12u2",
		Location: "/var/lib/dpkg/status", Layer: baseLayer, Files: []string{"/usr/lib/x86_64-linux-gnu/libssl.so.3"}}
	pam := scan.Package{Name: "libpam-modules", Version: "1.5.2-6+deb12u1", Ecosystem: "Debian:12",
		PURL: "pkg:deb/debian/libpam-modules@1.5.2-6+deb12u1?arch=amd64&distro=debian-12", SourceName: "pam", SourceVersion: "1.5.2-6+deb12u1",
		Location: "/var/lib/dpkg/status", Layer: baseLayer}
	stdlibApp := scan.Package{Name: "stdlib", Version: "1.21.0", Ecosystem: "Go", PURL: "pkg:golang/stdlib@1.21.0",
		Location: "/app", Layer: appLayer, Files: []string{"/app"}}
	stdlibTool := stdlibApp
	stdlibTool.Location, stdlibTool.Files = "/usr/local/bin/tool", []string{"/usr/local/bin/tool"}
	xtext := scan.Package{Name: "golang.org/x/text", Version: "v0.3.7", Ecosystem: "Go", PURL: "pkg:golang/golang.org/x/text@v0.3.7",
		Location: "/app", Layer: appLayer}
	return &scan.Report{
		Inventory: scan.Inventory{
			Target:   scan.Target{Kind: "image", Name: "example/app:1", ID: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
			OS:       &scan.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
			Layers:   []scan.Layer{{DiffID: baseLayer, CreatedBy: "COPY rootfs /"}, {DiffID: appLayer, CreatedBy: "COPY app /app"}},
			Packages: []scan.Package{libssl, pam, stdlibApp, stdlibTool, xtext},
			Warnings: []string{"/usr/lib/big.jar: over the size bound (512 MiB)"},
		},
		Findings: []scan.Finding{
			{ID: "CVE-2025-6020", Summary: "pam: CVE-2025-6020 fixed in 1.5.2-6+deb12u2", Severity: scan.SeverityHigh, Score: 7.8,
				CVSSVector: "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", Package: pam, FixedVersion: "1.5.2-6+deb12u2"},
			{ID: "GO-2023-2041", Aliases: []string{"CVE-2023-39318"}, Summary: "Improper handling of HTML-like comments in script contexts in html/template",
				Severity: scan.SeverityUnknown, Package: stdlibTool, FixedVersion: "1.21.1", References: []string{"https://go.dev/issue/62196"}},
			{ID: "CVE-2026-45445", Summary: "openssl: CVE-2026-45445 fixed in 3.0.20-1~deb12u2", Severity: scan.SeverityCritical, Score: 9.8,
				CVSSVector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", Package: libssl, FixedVersion: "3.0.20-1~deb12u2"},
			{ID: "GO-2023-2041", Aliases: []string{"CVE-2023-39318"}, Summary: "Improper handling of HTML-like comments in script contexts in html/template",
				Severity: scan.SeverityUnknown, Package: stdlibApp, FixedVersion: "1.21.1", InUse: true, References: []string{"https://go.dev/issue/62196"}},
			{ID: "GO-2026-5970", Summary: "Denial of service in golang.org/x/text/unicode/norm", Severity: scan.SeverityMedium,
				Package: xtext},
		},
		ScannedAt: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC),
		DBAge:     50 * time.Hour,
	}
}

var tool = Tool{Name: "vigil", Version: "v0.9.0-test"}

func TestSortInUseFirstThenSeverity(t *testing.T) {
	r := sampleReport()
	Sort(r.Findings)
	var got []string
	for _, f := range r.Findings {
		got = append(got, f.ID+"@"+f.Package.Location)
	}
	want := []string{
		"GO-2023-2041@/app",                   // in use, though of unknown severity
		"CVE-2026-45445@/var/lib/dpkg/status", // critical
		"CVE-2025-6020@/var/lib/dpkg/status",  // high
		"GO-2026-5970@/app",                   // medium
		"GO-2023-2041@/usr/local/bin/tool",    // unknown
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("order:\n got %v\nwant %v", got, want)
	}
}

func TestFilter(t *testing.T) {
	for _, tt := range []struct {
		name string
		flt  Filter
		want int
	}{
		{"none", Filter{}, 5},
		{"ignore unfixed", Filter{IgnoreUnfixed: true}, 4},
		{"high and up", Filter{MinSeverity: scan.SeverityHigh}, 2},
		{"only medium and unknown", Filter{Severities: []string{scan.SeverityMedium, scan.SeverityUnknown}}, 3},
		{"unfixed medium", Filter{IgnoreUnfixed: true, Severities: []string{scan.SeverityMedium}}, 0},
	} {
		r := sampleReport()
		tt.flt.Apply(r)
		if len(r.Findings) != tt.want {
			t.Errorf("%s: %d findings, want %d", tt.name, len(r.Findings), tt.want)
		}
	}
}

func TestReaching(t *testing.T) {
	fs := sampleReport().Findings
	for th, want := range map[string]int{"low": 3, "medium": 3, "high": 2, "critical": 1} {
		if got := Reaching(fs, th); got != want {
			t.Errorf("Reaching(%s) = %d, want %d", th, got, want)
		}
	}
	if _, err := ParseThreshold("unknown"); err == nil {
		t.Error("--fail-on unknown accepted")
	}
	if _, err := ParseThreshold("severe"); err == nil {
		t.Error("--fail-on severe accepted")
	}
	if l, err := ParseThreshold("HIGH"); err != nil || l != "high" {
		t.Errorf("ParseThreshold(HIGH) = %q, %v", l, err)
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize(sampleReport())
	if s.Packages != 5 || s.Findings != 5 || s.Vulnerabilities != 4 || s.Fixable != 4 || s.InUse != 1 ||
		s.BySeverity["critical"] != 1 || s.BySeverity["high"] != 1 || s.BySeverity["medium"] != 1 || s.BySeverity["unknown"] != 2 || s.BySeverity["low"] != 0 {
		t.Errorf("summary = %+v", s)
	}
}

func TestTable(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTable(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "image example/app:1 (sha256:0123456789ab): Debian GNU/Linux 12 (bookworm)") {
		t.Errorf("first line = %q", lines[0])
	}
	var rows []string
	for _, l := range lines {
		if strings.Contains(l, "GO-") || strings.Contains(l, "CVE-") {
			rows = append(rows, l)
		}
	}
	if len(rows) != 5 {
		t.Fatalf("%d finding rows, want 5:\n%s", len(rows), out)
	}
	for i, want := range []string{"UNKNOWN", "CRITICAL 9.8", "HIGH 7.8", "MEDIUM", "UNKNOWN"} {
		if !strings.HasPrefix(rows[i], want) {
			t.Errorf("row %d = %q, want it to start with %q", i, rows[i], want)
		}
	}
	for _, want := range []string{
		"libssl3 (openssl)", "3.0.19-1~deb12u2", "3.0.20-1~deb12u2", ShortLayer(baseLayer), ShortLayer(appLayer),
		"(none)", "yes", "Vulnerability database: 2 days old",
		"5 packages, 5 findings of 4 vulnerabilities: 1 critical, 1 high, 1 medium, 0 low, 2 unknown; 4 fixable, 1 in use",
		"1 warnings",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if ShortLayer(baseLayer) != "5f70bf18a086" {
		t.Errorf("ShortLayer = %q", ShortLayer(baseLayer))
	}
}

func TestJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	var back struct {
		scan.Report
		Summary Summary `json:"summary"`
	}
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Target.Name != "example/app:1" || len(back.Findings) != 5 || back.Summary.InUse != 1 || back.DBAge != 50*time.Hour {
		t.Errorf("round trip: %+v", back)
	}
	// An empty report still has arrays, not nulls, for consumers that iterate.
	buf.Reset()
	if err := WriteJSON(&buf, &scan.Report{Inventory: scan.Inventory{Target: scan.Target{Kind: "dir", Name: "/x"}}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"findings": []`) || !strings.Contains(buf.String(), `"packages": []`) {
		t.Errorf("empty report:\n%s", buf.String())
	}
}

// compileSchema loads a JSON schema and the files it refers to from testdata/schema.
func compileSchema(t *testing.T, main string, others ...string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	for _, name := range append([]string{main}, others...) {
		f, err := os.Open(filepath.Join("testdata/schema", name))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Register under the file name (the CycloneDX schema's $refs are relative to it)
		// and under its $id.
		if err := c.AddResource(name, doc); err != nil {
			t.Fatal(err)
		}
		if m, ok := doc.(map[string]any); ok {
			if id, ok := m["$id"].(string); ok && id != "" {
				if err := c.AddResource(id, doc); err != nil {
					t.Fatal(err)
				}
				if name == main {
					for _, o := range others {
						od, err := loadJSON(filepath.Join("testdata/schema", o))
						if err != nil {
							t.Fatal(err)
						}
						// $refs resolve against the $id's directory.
						if err := c.AddResource(id[:strings.LastIndex(id, "/")+1]+o, od); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		}
	}
	sch, err := c.Compile(main)
	if err != nil {
		t.Fatalf("compile %s: %v", main, err)
	}
	return sch
}

func loadJSON(path string) (any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return jsonschema.UnmarshalJSON(f)
}

func validate(t *testing.T, sch *jsonschema.Schema, out []byte) {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(doc); err != nil {
		t.Fatalf("output does not validate: %v\n%s", err, out)
	}
}

func TestSARIFValidates(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSARIF(&buf, sampleReport(), tool); err != nil {
		t.Fatal(err)
	}
	validate(t, compileSchema(t, "sarif-2.1.0-rtm.5.json"), buf.Bytes())
	var log sarif.Log
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	run := log.Runs[0]
	if len(run.Tool.Driver.Rules) != 4 || len(run.Results) != 5 {
		t.Fatalf("%d rules, %d results; want 4 rules (one per vulnerability) and 5 results", len(run.Tool.Driver.Rules), len(run.Results))
	}
	for _, res := range run.Results {
		if run.Tool.Driver.Rules[res.RuleIndex].ID != res.RuleID {
			t.Errorf("result %s points at rule %d (%s)", res.RuleID, res.RuleIndex, run.Tool.Driver.Rules[res.RuleIndex].ID)
		}
	}
	first := run.Results[0] // in use first
	if first.RuleID != "GO-2023-2041" || first.Locations[0].PhysicalLocation.ArtifactLocation.URI != "app" ||
		first.Locations[0].PhysicalLocation.ArtifactLocation.URIBaseID != sarifBase || first.Properties["in_use"] != true {
		t.Errorf("first result = %+v", first)
	}
	crit := run.Results[1]
	if crit.Level != "error" || crit.Locations[0].PhysicalLocation.ArtifactLocation.URI != "var/lib/dpkg/status" ||
		crit.Locations[0].LogicalLocations[0].FullyQualifiedName != "pkg:deb/debian/libssl3@3.0.19-1~deb12u2?arch=amd64&distro=debian-12" {
		t.Errorf("critical result = %+v", crit)
	}
	sev := map[string]any{}
	for _, r := range run.Tool.Driver.Rules {
		sev[r.ID] = r.Properties["security-severity"]
	}
	if sev["CVE-2026-45445"] != "9.8" || sev["CVE-2025-6020"] != "7.8" || sev["GO-2026-5970"] != "4.0" || sev["GO-2023-2041"] != nil {
		t.Errorf("security-severity per rule = %v", sev)
	}
	if n := run.Invocations[0].ToolExecutionNotifications; len(n) != 1 {
		t.Errorf("notifications = %+v", n)
	}
}

func TestCycloneDXValidates(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteCycloneDX(&buf, sampleReport(), tool); err != nil {
		t.Fatal(err)
	}
	validate(t, compileSchema(t, "bom-1.6.SNAPSHOT.schema.json", "spdx.SNAPSHOT.schema.json", "jsf-0.82.SNAPSHOT.schema.json"), buf.Bytes())
	var bom cdxBOM
	if err := json.Unmarshal(buf.Bytes(), &bom); err != nil {
		t.Fatal(err)
	}
	// The OS and five package occurrences; the two stdlib occurrences keep apart.
	if len(bom.Components) != 6 {
		t.Fatalf("%d components, want 6", len(bom.Components))
	}
	refs := map[string]cdxComp{}
	for _, c := range bom.Components {
		if _, dup := refs[c.BOMRef]; dup {
			t.Errorf("bom-ref %q twice", c.BOMRef)
		}
		refs[c.BOMRef] = c
	}
	if refs["pkg:golang/stdlib@1.21.0"].PURL != "pkg:golang/stdlib@1.21.0" || refs["pkg:golang/stdlib@1.21.0#2"].Name != "stdlib" {
		t.Errorf("stdlib components: %+v", refs)
	}
	if len(bom.Vulnerabilities) != 4 {
		t.Fatalf("%d vulnerabilities, want 4", len(bom.Vulnerabilities))
	}
	for _, v := range bom.Vulnerabilities {
		for _, a := range v.Affects {
			if _, ok := refs[a.Ref]; !ok {
				t.Errorf("%s affects %q, which is no component", v.ID, a.Ref)
			}
		}
		switch v.ID {
		case "GO-2023-2041":
			if len(v.Affects) != 2 || v.References[0].ID != "CVE-2023-39318" || !hasProp(v.Properties, "vigil:in_use") {
				t.Errorf("GO-2023-2041 = %+v", v)
			}
		case "CVE-2026-45445":
			r := v.Ratings[0]
			if r.Score != 9.8 || r.Severity != "critical" || r.Method != "CVSSv31" || v.Source.URL != "https://osv.dev/vulnerability/CVE-2026-45445" ||
				v.Recommendation != "Upgrade libssl3 to 3.0.20-1~deb12u2 or later." {
				t.Errorf("CVE-2026-45445 = %+v", v)
			}
		}
	}
	if !regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(bom.SerialNumber) {
		t.Errorf("serial number %q", bom.SerialNumber)
	}
}

// TestSPDX checks the document against what SPDX 2.3 requires of it (clause numbers of
// the specification): no SPDX 2.3 JSON schema ships in a registry this project uses.
func TestSPDX(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSPDX(&buf, sampleReport(), tool); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"spdxVersion", "dataLicense", "SPDXID", "name", "documentNamespace", "creationInfo", "packages", "relationships"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("document lacks %s", k)
		}
	}
	if doc["spdxVersion"] != "SPDX-2.3" || doc["dataLicense"] != "CC0-1.0" || doc["SPDXID"] != "SPDXRef-DOCUMENT" {
		t.Errorf("header = %v %v %v", doc["spdxVersion"], doc["dataLicense"], doc["SPDXID"])
	}
	ns := doc["documentNamespace"].(string) // 6.5: a unique absolute URI without '#'
	if u, err := urlParse(ns); err != nil || !u.IsAbs() || strings.Contains(ns, "#") {
		t.Errorf("documentNamespace %q", ns)
	}
	ci := doc["creationInfo"].(map[string]any) // 6.8, 6.9
	if _, err := time.Parse("2006-01-02T15:04:05Z", ci["created"].(string)); err != nil {
		t.Errorf("created: %v", err)
	}
	if c := ci["creators"].([]any); len(c) != 1 || c[0] != "Tool: vigil-v0.9.0-test" {
		t.Errorf("creators = %v", c)
	}
	idPattern := regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`) // 3.2 / 7.2
	ids := map[string]bool{"SPDXRef-DOCUMENT": true}
	purls := map[string]bool{}
	for _, p := range doc["packages"].([]any) {
		pkg := p.(map[string]any)
		id := pkg["SPDXID"].(string)
		if !idPattern.MatchString(id) || ids[id] {
			t.Errorf("package id %q invalid or repeated", id)
		}
		ids[id] = true
		for _, k := range []string{"name", "downloadLocation"} { // 7.1, 7.7: mandatory
			if pkg[k] == "" || pkg[k] == nil {
				t.Errorf("package %s lacks %s", id, k)
			}
		}
		for _, ref := range asList(pkg["externalRefs"]) {
			r := ref.(map[string]any)
			if r["referenceCategory"] != "PACKAGE-MANAGER" || r["referenceType"] != "purl" {
				t.Errorf("external ref %v", r)
			}
			purls[r["referenceLocator"].(string)] = true
		}
	}
	if len(ids) != 1+1+1+5 { // document, target, OS, five packages
		t.Errorf("%d ids, want 8", len(ids))
	}
	if !purls["pkg:golang/golang.org/x/text@v0.3.7"] || !purls["pkg:deb/debian/libssl3@3.0.19-1~deb12u2?arch=amd64&distro=debian-12"] {
		t.Errorf("purls = %v", purls)
	}
	describes, contains := 0, 0
	for _, r := range doc["relationships"].([]any) {
		rel := r.(map[string]any)
		if !ids[rel["spdxElementId"].(string)] || !ids[rel["relatedSpdxElement"].(string)] {
			t.Errorf("relationship to an unknown element: %v", rel)
		}
		switch rel["relationshipType"] {
		case "DESCRIBES":
			describes++
		case "CONTAINS":
			contains++
		}
	}
	if describes != 1 || contains != 6 {
		t.Errorf("%d DESCRIBES, %d CONTAINS; want 1 and 6", describes, contains)
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func TestParseFormat(t *testing.T) {
	for _, f := range Formats {
		if got, err := ParseFormat(strings.ToUpper(string(f))); err != nil || got != f {
			t.Errorf("ParseFormat(%s) = %q, %v", f, got, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("xml accepted")
	}
}

// TestEveryFormatOnEmptyReport: a clean image is a valid document in every format.
func TestEveryFormatOnEmptyReport(t *testing.T) {
	r := &scan.Report{Inventory: scan.Inventory{Target: scan.Target{Kind: "dir", Name: "/srv/app"}}}
	sarif := compileSchema(t, "sarif-2.1.0-rtm.5.json")
	cdx := compileSchema(t, "bom-1.6.SNAPSHOT.schema.json", "spdx.SNAPSHOT.schema.json", "jsf-0.82.SNAPSHOT.schema.json")
	for _, f := range Formats {
		var buf bytes.Buffer
		if err := Write(&buf, f, r, tool); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		switch f {
		case SARIF:
			validate(t, sarif, buf.Bytes())
		case CycloneDX:
			validate(t, cdx, buf.Bytes())
		case Table:
			if !strings.Contains(buf.String(), "No vulnerabilities found.") {
				t.Errorf("table:\n%s", buf.String())
			}
		default:
			if !json.Valid(buf.Bytes()) {
				t.Errorf("%s: invalid JSON", f)
			}
		}
	}
}

func urlParse(s string) (*url.URL, error) { return url.Parse(s) }

// TestSchemasReject proves the validation can fail: a rating with a severity CycloneDX
// does not know, and a SARIF result with a level SARIF does not know.
func TestSchemasReject(t *testing.T) {
	for _, tt := range []struct {
		schema   []string
		write    func(*bytes.Buffer) error
		from, to string
	}{
		{[]string{"bom-1.6.SNAPSHOT.schema.json", "spdx.SNAPSHOT.schema.json", "jsf-0.82.SNAPSHOT.schema.json"},
			func(b *bytes.Buffer) error { return WriteCycloneDX(b, sampleReport(), tool) }, `"severity": "critical"`, `"severity": "dire"`},
		{[]string{"sarif-2.1.0-rtm.5.json"},
			func(b *bytes.Buffer) error { return WriteSARIF(b, sampleReport(), tool) }, `"level": "error"`, `"level": "fatal"`},
	} {
		var buf bytes.Buffer
		if err := tt.write(&buf); err != nil {
			t.Fatal(err)
		}
		broken := strings.Replace(buf.String(), tt.from, tt.to, 1)
		if broken == buf.String() {
			t.Fatalf("%s not in the output", tt.from)
		}
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(broken))
		if err != nil {
			t.Fatal(err)
		}
		if err := compileSchema(t, tt.schema[0], tt.schema[1:]...).Validate(doc); err == nil {
			t.Errorf("%s accepted %s", tt.schema[0], tt.to)
		}
	}
}
