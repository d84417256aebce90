package report

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/internal/scan"
)

// CycloneDX 1.6 JSON (https://cyclonedx.org/docs/1.6/json/): the subset Vigil writes.
type cdxBOM struct {
	Schema          string      `json:"$schema"`
	BOMFormat       string      `json:"bomFormat"`
	SpecVersion     string      `json:"specVersion"`
	SerialNumber    string      `json:"serialNumber"`
	Version         int         `json:"version"`
	Metadata        cdxMetadata `json:"metadata"`
	Components      []cdxComp   `json:"components"`
	Dependencies    []cdxDep    `json:"dependencies,omitempty"`
	Vulnerabilities []cdxVuln   `json:"vulnerabilities"`
}

type cdxMetadata struct {
	Timestamp string   `json:"timestamp,omitempty"`
	Tools     cdxTools `json:"tools"`
	Component *cdxComp `json:"component,omitempty"`
}

type cdxTools struct {
	Components []cdxComp `json:"components"`
}

type cdxComp struct {
	BOMRef     string    `json:"bom-ref,omitempty"`
	Type       string    `json:"type"`
	Name       string    `json:"name"`
	Version    string    `json:"version,omitempty"`
	PURL       string    `json:"purl,omitempty"`
	Properties []cdxProp `json:"properties,omitempty"`
}

type cdxProp struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type cdxDep struct {
	Ref       string   `json:"ref"`
	DependsOn []string `json:"dependsOn"`
}

type cdxVuln struct {
	BOMRef         string       `json:"bom-ref"`
	ID             string       `json:"id"`
	Source         cdxSource    `json:"source"`
	References     []cdxRef     `json:"references,omitempty"`
	Ratings        []cdxRating  `json:"ratings,omitempty"`
	Description    string       `json:"description,omitempty"`
	Recommendation string       `json:"recommendation,omitempty"`
	Advisories     []cdxAdvice  `json:"advisories,omitempty"`
	Affects        []cdxAffects `json:"affects"`
	Properties     []cdxProp    `json:"properties,omitempty"`
}

type cdxSource struct {
	Name string `json:"name"`
	URL  string `json:"url,omitempty"`
}

type cdxRef struct {
	ID     string    `json:"id"`
	Source cdxSource `json:"source"`
}

type cdxRating struct {
	Source   *cdxSource `json:"source,omitempty"`
	Score    float64    `json:"score,omitempty"`
	Severity string     `json:"severity"`
	Method   string     `json:"method,omitempty"`
	Vector   string     `json:"vector,omitempty"`
}

type cdxAdvice struct {
	URL string `json:"url"`
}

type cdxAffects struct {
	Ref      string       `json:"ref"`
	Versions []cdxVersion `json:"versions"`
}

type cdxVersion struct {
	Version string `json:"version"`
	Status  string `json:"status"`
}

// WriteCycloneDX writes the report as a CycloneDX 1.6 JSON BOM: the target as the
// metadata component, each package occurrence as a component with its purl, and one
// vulnerability per advisory, with its rating, its source (OSV) and the components it
// affects.
func WriteCycloneDX(w io.Writer, r *scan.Report, tool Tool) error {
	ts := r.ScannedAt
	if ts.IsZero() {
		ts = time.Now()
	}
	target := cdxComp{BOMRef: "target", Type: cdxTargetType(r.Target.Kind), Name: r.Target.Name, Version: r.Target.ID,
		Properties: []cdxProp{{Name: "vigil:target:kind", Value: r.Target.Kind}}}
	if r.OS != nil {
		target.Properties = append(target.Properties, cdxProp{Name: "vigil:os", Value: strings.TrimSpace(r.OS.ID + " " + r.OS.VersionID)})
	}
	for i, l := range r.Layers {
		target.Properties = append(target.Properties, cdxProp{Name: "vigil:layer:" + strconv.Itoa(i), Value: l.DiffID})
	}
	bom := cdxBOM{
		Schema:       "http://cyclonedx.org/schema/bom-1.6.schema.json",
		BOMFormat:    "CycloneDX",
		SpecVersion:  "1.6",
		SerialNumber: "urn:uuid:" + newUUID(),
		Version:      1,
		Metadata: cdxMetadata{
			Timestamp: ts.UTC().Format(time.RFC3339),
			Tools:     cdxTools{Components: []cdxComp{{Type: "application", Name: tool.Name, Version: tool.Version}}},
			Component: &target,
		},
		Components:      []cdxComp{},
		Vulnerabilities: []cdxVuln{},
	}
	refs := map[pkgKey]string{}
	used := map[string]bool{"target": true}
	targetDeps := cdxDep{Ref: "target", DependsOn: []string{}}
	if r.OS != nil && r.OS.ID != "" {
		c := cdxComp{BOMRef: uniqueRef(used, "os:"+r.OS.ID+"@"+r.OS.VersionID), Type: "operating-system", Name: r.OS.ID, Version: r.OS.VersionID}
		if r.OS.PrettyName != "" {
			c.Properties = []cdxProp{{Name: "vigil:os:pretty_name", Value: r.OS.PrettyName}}
		}
		bom.Components = append(bom.Components, c)
		targetDeps.DependsOn = append(targetDeps.DependsOn, c.BOMRef)
	}
	for _, p := range occurrences(r) {
		base := p.PURL
		if base == "" {
			base = p.Ecosystem + ":" + p.Name + "@" + p.Version
		}
		ref := uniqueRef(used, base)
		refs[keyOf(&p)] = ref
		c := cdxComp{BOMRef: ref, Type: "library", Name: p.Name, Version: p.Version, PURL: p.PURL,
			Properties: []cdxProp{{Name: "vigil:ecosystem", Value: p.Ecosystem}, {Name: "vigil:location", Value: p.Location}}}
		if p.Layer != "" {
			c.Properties = append(c.Properties, cdxProp{Name: "vigil:layer", Value: p.Layer})
		}
		if p.SourceName != "" {
			c.Properties = append(c.Properties, cdxProp{Name: "vigil:source_package", Value: p.SourceName + " " + p.SourceVersion})
		}
		bom.Components = append(bom.Components, c)
		targetDeps.DependsOn = append(targetDeps.DependsOn, ref)
	}
	bom.Dependencies = []cdxDep{targetDeps}

	fs := append([]scan.Finding(nil), r.Findings...)
	Sort(fs)
	byID := map[string]int{}
	for i := range fs {
		f := &fs[i]
		idx, ok := byID[f.ID]
		if !ok {
			idx = len(bom.Vulnerabilities)
			byID[f.ID] = idx
			bom.Vulnerabilities = append(bom.Vulnerabilities, newCDXVuln(f))
		}
		v := &bom.Vulnerabilities[idx]
		v.Affects = append(v.Affects, cdxAffects{Ref: refs[keyOf(&f.Package)],
			Versions: []cdxVersion{{Version: f.Package.Version, Status: "affected"}}})
		if f.FixedVersion != "" {
			rec := "Upgrade " + f.Package.Name + " to " + f.FixedVersion + " or later"
			if !strings.Contains(v.Recommendation, rec) {
				v.Recommendation = joinSentences(v.Recommendation, rec)
			}
		}
		if f.InUse && !hasProp(v.Properties, "vigil:in_use") {
			v.Properties = append(v.Properties, cdxProp{Name: "vigil:in_use", Value: "true"})
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(bom)
}

func newCDXVuln(f *scan.Finding) cdxVuln {
	osv := cdxSource{Name: "OSV", URL: advisoryURL(f.ID)}
	v := cdxVuln{BOMRef: "vuln:" + f.ID, ID: f.ID, Source: osv, Description: f.Summary, Affects: []cdxAffects{}}
	for _, a := range f.Aliases {
		v.References = append(v.References, cdxRef{ID: a, Source: cdxSource{Name: "OSV", URL: advisoryURL(a)}})
	}
	sev := f.Severity
	if sev == "" {
		sev = scan.SeverityUnknown
	}
	rating := cdxRating{Source: &osv, Score: f.Score, Severity: sev, Vector: f.CVSSVector}
	if f.CVSSVector != "" {
		rating.Method = cvssMethod(f.CVSSVector)
	}
	v.Ratings = []cdxRating{rating}
	for _, ref := range f.References {
		v.Advisories = append(v.Advisories, cdxAdvice{URL: ref})
	}
	return v
}

// cvssMethod names the CVSS version of a vector as CycloneDX does.
func cvssMethod(vector string) string {
	switch {
	case strings.HasPrefix(vector, "CVSS:4."):
		return "CVSSv4"
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		return "CVSSv31"
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		return "CVSSv3"
	case strings.HasPrefix(vector, "AV:"):
		return "CVSSv2"
	}
	return "other"
}

func cdxTargetType(kind string) string {
	switch kind {
	case "image", "archive", "container":
		return "container"
	case "host":
		return "operating-system"
	}
	return "file"
}

// uniqueRef returns base, or base with a counter when it is taken: bom-refs must be
// unique in a BOM.
func uniqueRef(used map[string]bool, base string) string {
	ref := base
	for n := 2; used[ref]; n++ {
		ref = base + "#" + strconv.Itoa(n)
	}
	used[ref] = true
	return ref
}

func hasProp(ps []cdxProp, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

func joinSentences(a, b string) string {
	if a == "" {
		return b + "."
	}
	return a + " " + b + "."
}
