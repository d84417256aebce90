package export

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-sec/vigil/internal/policy"
)

// FuzzUnmarshalYAML checks that any input is either refused with a *FileError of
// positioned problems, or read as a valid policy that survives a round trip, and that
// neither panics nor hangs.
func FuzzUnmarshalYAML(f *testing.F) {
	for _, name := range []string{"policy.yaml", "invalid.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		valid,
		valid + "  groups:\n    - {name: a, mode: monitor, criteria: [\"label:x=*\"]}\n",
		valid + "  rules:\n    - {id: r, from: a, to: external, ports: [tcp/1-65535, any, icmp], apps: [http], action: allow}\n",
		valid + "status:\n  rules:\n    - {id: r, hits: 1}\n",
		valid + "  groups: &a [*a]\n",
		valid + "---\n" + valid,
		"[[[[[[[[[[[[[[[[[[[[",
		"a: &a [*a, *a]\nb: *a\n",
		"apiVersion: !!binary AAAA\n",
		"{apiVersion: vigil.dev/v1alpha1, kind: Policy, spec: {defaultMode: protect, rules: [{id: 1, from: 2, to: 3, ports: [udp/53], action: deny}]}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := UnmarshalYAML(data)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) || len(fe.Problems) == 0 || len(fe.Problems) > maxProblems+1 {
				t.Fatalf("error %T %v: want a *FileError with 1 to %d problems", err, err, maxProblems+1)
			}
			if !errors.Is(err, policy.ErrInvalid) {
				t.Fatalf("%v does not wrap policy.ErrInvalid", err)
			}
			if !reflect.DeepEqual(p, policy.Policy{}) {
				t.Fatalf("a partial policy came back with errors: %+v", p)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("UnmarshalYAML accepted an invalid policy: %v", err)
		}
		out, err := MarshalYAML(p)
		if err != nil {
			t.Fatalf("MarshalYAML of what UnmarshalYAML read: %v", err)
		}
		back, err := UnmarshalYAML(out)
		if err != nil {
			t.Fatalf("cannot read back\n%s\n%v", out, err)
		}
		if !reflect.DeepEqual(back, sortedPolicy(p)) {
			t.Fatalf("round trip changed the policy:\n got %+v\nwant %+v", back, sortedPolicy(p))
		}
		again, err := MarshalYAML(back)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("Marshal is not stable: %v\n%s", err, firstDiff(string(out), string(again)))
		}
		for _, export := range []func(policy.Policy, string) ([]byte, error){NetworkPolicies, CiliumPolicies} {
			out, err := export(p, "fuzz")
			if err != nil {
				t.Fatalf("export of a valid policy: %v", err)
			}
			dec := yaml.NewDecoder(bytes.NewReader(out))
			for {
				var doc map[string]any
				if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatalf("export wrote YAML it cannot read: %v\n%s", err, out)
				}
			}
		}
	})
}
