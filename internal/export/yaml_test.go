package export

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run go test -update and review the diff):\n%s", path, firstDiff(string(want), string(got)))
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\nwant %q\ngot  %q", i+1, wl, gl)
		}
	}
	return "(same lines)"
}

// sortedPolicy is p as UnmarshalYAML(MarshalYAML(p)) returns it: groups and rules in
// the order MarshalYAML writes them.
func sortedPolicy(p policy.Policy) policy.Policy {
	p.Groups = slices.Clone(p.Groups)
	slices.SortStableFunc(p.Groups, func(a, b policy.Group) int { return strings.Compare(a.Name, b.Name) })
	p.Rules = sortedRules(p.Rules)
	return p
}

func TestYAMLRoundTrip(t *testing.T) {
	p := richPolicy()
	out, err := MarshalYAML(p)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "policy.yaml", out)

	back, err := UnmarshalYAML(out)
	if err != nil {
		t.Fatalf("read back what MarshalYAML wrote:\n%v", err)
	}
	if want := sortedPolicy(p); !reflect.DeepEqual(back, want) {
		t.Errorf("round trip changed the policy:\n got %+v\nwant %+v", back, want)
	}
	again, err := MarshalYAML(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, out) {
		t.Errorf("Marshal(Unmarshal(Marshal(p))) != Marshal(p):\n%s", firstDiff(string(out), string(again)))
	}
	if _, err := back.Compile(); err != nil {
		t.Errorf("the policy read back does not compile: %v", err)
	}
}

func TestYAMLOrderIsStable(t *testing.T) {
	p := richPolicy()
	want, err := MarshalYAML(p)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(p.Groups)
	slices.Reverse(p.Rules)
	got, err := MarshalYAML(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the order of the input shows in the output:\n%s", firstDiff(string(want), string(got)))
	}
}

func TestMarshalYAMLEmptyAndCanonical(t *testing.T) {
	out, err := MarshalYAML(policy.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := UnmarshalYAML(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(p, policy.Policy{}) {
		t.Errorf("empty policy read back as %+v", p)
	}
	if strings.Contains(string(out), "status:") || strings.Contains(string(out), "rules:") {
		t.Errorf("an empty policy writes no rules nor status:\n%s", out)
	}

	// Endpoints in any form ParseEndpoint reads are written canonically.
	q := policy.Policy{Rules: []policy.Rule{{ID: "r", From: " EXTERNAL:Api.Example.COM. ", To: "Host",
		Ports: ports("tcp/443"), Action: policy.ActionAllow, Origin: policy.OriginUser}}}
	out, err = MarshalYAML(q)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "from: external:api.example.com\n") || !strings.Contains(string(out), "to: host\n") {
		t.Errorf("endpoints not canonical:\n%s", out)
	}
}

func TestMarshalYAMLRefusesInvalid(t *testing.T) {
	p := richPolicy()
	p.Rules[0].Ports = nil
	if _, err := MarshalYAML(p); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("MarshalYAML of an invalid policy: %v, want policy.ErrInvalid", err)
	}
}

func TestUnmarshalYAMLReportsEveryProblem(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "invalid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := UnmarshalYAML(data)
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("got %v (%T), want a *FileError", err, err)
	}
	if !reflect.DeepEqual(p, policy.Policy{}) {
		t.Errorf("a partial policy came back with the errors: %+v", p)
	}
	if !errors.Is(err, policy.ErrInvalid) {
		t.Error("errors.Is(err, policy.ErrInvalid) is false")
	}
	fe.File = "invalid.yaml"
	golden(t, "invalid.errors", []byte(err.Error()+"\n"))
	for _, pr := range fe.Problems {
		if pr.Line == 0 || pr.Column == 0 {
			t.Errorf("problem without a position: %v", pr)
		}
	}
	if len(fe.Problems) < 20 {
		t.Errorf("%d problems; the file has more than 20", len(fe.Problems))
	}
}

const valid = `apiVersion: vigil.dev/v1alpha1
kind: Policy
spec:
  defaultMode: discover
`

func TestUnmarshalYAMLProblems(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // the first problem, as printed
	}{
		{"empty", "", "the file is empty"},
		{"comment only", "# nothing\n", "the file is empty"},
		{"null document", "~\n", "1:1: want a mapping with apiVersion, kind, spec, status, not nothing"},
		{"list document", "- a\n", "1:1: want a mapping"},
		{"syntax", valid + "  groups: [\n", "YAML: "},
		{"tab indent", "apiVersion: x\n\tkind: y\n", "2: YAML: found a tab character that violates indentation"},
		{"wrong version", strings.Replace(valid, "v1alpha1", "v2", 1), `1:13: apiVersion: "vigil.dev/v2" is not a version this Vigil reads; want vigil.dev/v1alpha1`},
		{"wrong kind", strings.Replace(valid, "kind: Policy", "kind: NetworkPolicy", 1), `2:7: kind: "NetworkPolicy" is not a Vigil policy; want Policy`},
		{"missing spec", "apiVersion: vigil.dev/v1alpha1\nkind: Policy\n", `1:1: missing field "spec"`},
		{"missing default mode", "apiVersion: vigil.dev/v1alpha1\nkind: Policy\nspec:\n  groups: []\n", `4:3: spec: missing field "defaultMode"`},
		{"unknown field", valid + "metadata: {}\n", `5:1: metadata: unknown field "metadata"; want apiVersion, kind, spec, status`},
		{"duplicate key", valid + "kind: Policy\n", `5:1: kind: field "kind" is given twice (first at line 2)`},
		{"second document", valid + "---\n" + valid, "6:1: a policy file holds one YAML document"},
		{"alias", valid + "  groups:\n    - &g {name: a, mode: monitor}\n    - *g\n", "7:7: alias *g: aliases are not allowed"},
		{"merge key", valid + "  groups:\n    - &g {name: a, mode: monitor}\n    - <<: *g\n      name: b\n", "alias *g: aliases are not allowed"},
		{"binary tag", valid + "  groups:\n    - {name: !!binary aGk=, mode: monitor}\n", "tag !!binary is not allowed here"},
		{"custom tag", valid + "  groups: !mine [a]\n", "5:11: spec.groups: tag !mine is not allowed here"},
		{"null mode", valid + "  groups:\n    - {name: a, mode: ~}\n", "6:23: spec.groups[0].mode: missing value"},
		{"mode list", valid + "  groups:\n    - {name: a, mode: [monitor]}\n", `spec.groups[0].mode: want a single value, not a list`},
		{"groups mapping", valid + "  groups: {a: b}\n", "5:11: spec.groups: want a list, not a mapping"},
		{"ports string", valid + "  rules:\n    - {id: r, from: a, to: b, ports: tcp/80, action: allow}\n", `spec.rules[0].ports: want a list, not "tcp/80"`},
		{"bad port", valid + "  rules:\n    - {id: r, from: a, to: b, ports: [tcp/70000], action: allow}\n",
			`6:39: spec.rules[0].ports[0]: invalid ports "tcp/70000": port 70000 is out of range 1-65535`},
		{"learned deny", valid + "  rules:\n    - {id: r, from: a, to: b, ports: [any], action: deny, origin: learned}\n", `6:7: spec.rules[0]: invalid rule "r": a learned rule can only allow`},
		{"learned group with criteria", valid + "  groups:\n    - {name: a, mode: monitor, origin: learned, criteria: [\"name:x\"]}\n", "a learned group has no criteria"},
		{"status for unknown rule", valid + "status:\n  rules:\n    - id: r9\n", `7:11: status.rules[0].id: no rule "r9" in spec.rules`},
		{"status twice", valid + "  rules:\n    - {id: r, from: a, to: b, ports: [any], action: allow}\nstatus:\n  rules:\n    - id: r\n    - id: r\n", `rule "r" has a status already (at line 9)`},
		{"control characters", "apiVersion: \x01\n", "YAML: control characters are not allowed"},
		{"not UTF-8", "apiVersion: \xff\xfe\n", "YAML: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := UnmarshalYAML([]byte(tc.in))
			var fe *FileError
			if !errors.As(err, &fe) || len(fe.Problems) == 0 {
				t.Fatalf("got %v, %+v; want a *FileError", err, p)
			}
			if !errors.Is(err, policy.ErrInvalid) {
				t.Errorf("%v does not wrap policy.ErrInvalid", err)
			}
			if got := fe.Problems[0].Error(); !strings.Contains(got, tc.want) {
				t.Errorf("got\n%v\nwant the first problem to contain\n%s", err, tc.want)
			}
		})
	}
}

func TestUnmarshalYAMLDefaultsAndCanonicalForms(t *testing.T) {
	in := valid + `  groups:
    - name: web
      mode: MONITOR
      criteria: ["label:tier=web", "address:10.1.2.3/8"]
    - name: vigil.db
      mode: protect
  rules:
    - id: 42
      from: vigil.web
      to: External:API.example.com.
      ports: [TCP/443, " udp/53 "]
      action: allow
status:
  rules:
    - id: "42"
      hits: 7
      lastHit: 2025-03-14T10:26:53+01:00
`
	p, err := UnmarshalYAML([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := policy.Policy{
		Groups: []policy.Group{
			{Name: "web", Origin: policy.GroupCustom, Mode: policy.ModeMonitor, Criteria: []policy.Criterion{crit("label:tier=web"), crit("address:10.0.0.0/8")}},
			{Name: "vigil.db", Origin: policy.GroupLearned, Mode: policy.ModeProtect},
		},
		Rules: []policy.Rule{{ID: "42", From: "vigil.web", To: "external:api.example.com", Ports: ports("tcp/443,udp/53"),
			Action: policy.ActionAllow, Origin: policy.OriginImported, Hits: 7, LastHit: time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)}},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %+v\nwant %+v", p, want)
	}
}

func TestUnmarshalYAMLHostile(t *testing.T) {
	t.Run("too large", func(t *testing.T) {
		data := bytes.Repeat([]byte("#"), MaxYAMLSize+1)
		_, err := UnmarshalYAML(data)
		if !errors.Is(err, ErrTooLarge) || !errors.Is(err, policy.ErrInvalid) {
			t.Errorf("got %v, want ErrTooLarge", err)
		}
	})
	t.Run("billion laughs", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(valid + "  groups:\n    - name: a\n      mode: monitor\n      criteria: &l0 [\"name:lol\"]\n")
		for i := 1; i <= 9; i++ {
			fmt.Fprintf(&b, "    - {name: g%d, mode: monitor, criteria: &l%d [", i, i)
			for j := range 10 {
				if j > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "*l%d", i-1)
			}
			b.WriteString("]}\n")
		}
		start := time.Now()
		_, err := UnmarshalYAML([]byte(b.String()))
		if err == nil || !strings.Contains(err.Error(), "aliases are not allowed") {
			t.Fatalf("got %v, want aliases refused", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("refusing the aliases took %v", d)
		}
	})
	t.Run("deep flow nesting", func(t *testing.T) {
		data := valid + "  groups: " + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + "\n"
		_, err := UnmarshalYAML([]byte(data))
		if err == nil || !strings.Contains(err.Error(), "max depth") {
			t.Errorf("got %v, want a depth error", err)
		}
	})
	t.Run("deep block nesting", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(valid + "  groups:\n")
		for i := range 20_000 {
			b.WriteString(strings.Repeat(" ", 4+i))
			b.WriteString("- \n")
		}
		_, err := UnmarshalYAML([]byte(b.String()))
		if err == nil {
			t.Error("deeply nested lists accepted")
		}
	})
	t.Run("many problems", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(valid + "  rules:\n")
		for range 10_000 {
			b.WriteString("    - {id: r, from: a, to: b, ports: [tcp/0], action: allow}\n")
		}
		_, err := UnmarshalYAML([]byte(b.String()))
		var fe *FileError
		if !errors.As(err, &fe) {
			t.Fatalf("got %v", err)
		}
		if n := len(fe.Problems); n != maxProblems+1 {
			t.Errorf("%d problems listed, want %d and a count of the rest", n, maxProblems+1)
		}
		if last := fe.Problems[len(fe.Problems)-1].Error(); !strings.Contains(last, "more problems not shown") {
			t.Errorf("last problem %q", last)
		}
	})
}

func TestProblemFormat(t *testing.T) {
	err := &FileError{File: "policy.yaml", Problems: []Problem{
		{Line: 12, Column: 9, Path: "spec.rules[3].ports[0]", Err: errors.New("bad")},
		{Line: 3, Err: errors.New("YAML: oops")},
		{Err: errors.New("too big")},
	}}
	want := "policy.yaml:12:9: spec.rules[3].ports[0]: bad\npolicy.yaml:3: YAML: oops\npolicy.yaml: too big"
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
}
