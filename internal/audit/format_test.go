package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vigil-sec/vigil/internal/sarif"
)

func sampleReport() *Report {
	rep := &Report{Benchmark: Benchmark, Host: "node1", DockerVersion: "20.10.24", StartedAt: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	for _, r := range []Result{
		{ID: "2.2", Section: "2", Title: "Restrict traffic between containers on the default bridge", Level: 1, Scored: true, Status: Warn,
			Reason: "icc is enabled", Evidence: []string{"icc=true (default)"}, Targets: []Target{{Kind: "daemon", Name: "dockerd"}}, Remediation: "Set \"icc\": false in daemon.json."},
		{ID: "3.17", Section: "3", Title: "daemon.json is owned by root and not writable by others", Level: 1, Scored: true, Status: Warn,
			Targets: []Target{{Kind: "file", Name: "/etc/docker/daemon.json"}}, Evidence: []string{"/etc/docker/daemon.json 0666 root:root"}},
		{ID: "5.5", Section: "5", Title: "Do not run privileged containers", Level: 1, Scored: true, Status: Warn,
			Targets: []Target{{Kind: "container", ID: "abc", Name: "bad <one> & \"co\""}}, Evidence: []string{"bad: Privileged=true"}},
		{ID: "5.6", Section: "5", Title: "Do not mount sensitive host directories", Level: 1, Scored: true, Status: Pass},
		{ID: "1.1.2", Section: "1", Title: "Harden the container host", Level: 1, Status: Info, Reason: "review by hand"},
		{ID: "3.1", Section: "3", Title: "docker.service is owned by root", Level: 1, Scored: true, Status: Note, Reason: "not present"},
		{ID: "1.1.1", Section: "1", Title: "Separate partition for containers", Level: 2, Scored: true, Status: Skip, Reason: "cannot read mounts"},
	} {
		rep.Results = append(rep.Results, r)
		rep.Summary.add(&r)
	}
	rep.Summary.finish()
	return rep
}

func TestSummaryScore(t *testing.T) {
	s := sampleReport().Summary
	if s.Pass != 1 || s.Warn != 3 || s.Info != 1 || s.Note != 1 || s.Skip != 1 || s.Total != 7 || s.Score != 25 {
		t.Errorf("summary = %+v, want score 25 (1 of 4 scored checks passed)", s)
	}
}

func TestSARIFValidates(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSARIF(&buf, sampleReport(), "v1.2.3"); err != nil {
		t.Fatal(err)
	}
	schemaFile, err := os.Open("testdata/sarif/sarif-2.1.0-rtm.5.json")
	if err != nil {
		t.Fatal(err)
	}
	defer schemaFile.Close()
	schemaDoc, err := jsonschema.UnmarshalJSON(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("sarif.json", schemaDoc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("sarif.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(doc); err != nil {
		t.Fatalf("SARIF output does not validate: %v\n%s", err, buf.String())
	}
	var log sarif.Log
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	res := log.Runs[0].Results
	if len(res) != 7 || res[0].Kind != "fail" || res[0].Level != "warning" || res[3].Kind != "pass" || res[6].Kind != "open" {
		t.Errorf("results = %+v", res)
	}
	if res[1].Locations[0].PhysicalLocation == nil || res[1].Locations[0].PhysicalLocation.ArtifactLocation.URI != "file:///etc/docker/daemon.json" {
		t.Errorf("file target location = %+v", res[1].Locations)
	}
	if got := res[2].Locations[0].LogicalLocations[0].FullyQualifiedName; got != `container/bad <one> & "co"` {
		t.Errorf("container location = %q", got)
	}
}

func TestJUnitWellFormed(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("JUnit output is not well-formed XML: %v\n%s", err, buf.String())
	}
	if doc.Tests != 7 || doc.Failures != 3 || doc.Skipped != 1 || len(doc.Suites) != 4 {
		t.Errorf("tests %d failures %d skipped %d suites %d", doc.Tests, doc.Failures, doc.Skipped, len(doc.Suites))
	}
	// Every element must close: decode the whole stream token by token.
	d := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	for {
		if _, err := d.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("token stream: %v", err)
			}
			break
		}
	}
	if !strings.Contains(buf.String(), "&lt;one&gt; &amp; &#34;co&#34;") {
		t.Errorf("container name not escaped:\n%s", buf.String())
	}
}

func TestTable(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTable(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"[5] Container runtime", "WARN  5.5", "* container bad <one>", "score 25.0%"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestRunOneRecoversAndFills(t *testing.T) {
	c := Check{ID: "9.9", Title: "panics", Level: 2, Scored: true, Remediation: "fix it",
		Run: func(context.Context, *Env) Result { panic("bug") }}
	r := runOne(context.Background(), &Env{}, &c)
	if r.Status != Skip || r.ID != "9.9" || r.Section != "9" || r.Level != 2 || !r.Scored || r.Remediation != "fix it" {
		t.Errorf("result of a panicking check = %+v", r)
	}
	ok := Check{ID: "9.10", Run: func(context.Context, *Env) Result { return pass("fine") }}
	if r := runOne(context.Background(), &Env{}, &ok); r.Status != Pass || r.Remediation != "" {
		t.Errorf("passing check = %+v (remediation only for non-PASS)", r)
	}
}

func TestFilter(t *testing.T) {
	c := Check{ID: "5.4"}
	for _, tt := range []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Sections: []string{"5"}}, true},
		{Filter{Sections: []string{"4"}}, false},
		{Filter{IDs: []string{"5.4"}}, true},
		{Filter{IDs: []string{"5.41"}}, false},
		{Filter{Sections: []string{"1"}, IDs: []string{"5.4"}}, true},
	} {
		if got := tt.f.match(&c); got != tt.want {
			t.Errorf("%+v matches 5.4: %v, want %v", tt.f, got, tt.want)
		}
	}
}
