package report

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestFullRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	want := sampleReport()
	if err := WriteFull(&buf, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFull(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Packages) != len(want.Packages) || len(got.Findings) != len(want.Findings) {
		t.Fatalf("round trip lost packages or findings: %+v", got)
	}
	for i := range want.Packages {
		if !slices.Equal(got.Packages[i].Files, want.Packages[i].Files) {
			t.Errorf("package %d files = %v, want %v", i, got.Packages[i].Files, want.Packages[i].Files)
		}
	}
	for i := range want.Findings {
		if !slices.Equal(got.Findings[i].Package.Files, want.Findings[i].Package.Files) || got.Findings[i].InUse != want.Findings[i].InUse {
			t.Errorf("finding %d = %+v, want %+v", i, got.Findings[i], want.Findings[i])
		}
	}
	if got.Target != want.Target || got.DBAge != want.DBAge || !got.ScannedAt.Equal(want.ScannedAt) || len(got.Layers) != 2 {
		t.Errorf("header = %+v", got.Inventory)
	}
}

func TestReadFullRejectsMismatch(t *testing.T) {
	for _, in := range []string{
		`{"target":{"kind":"dir","name":"/"},"packages":[{"name":"a"}],"findings":[],"package_files":[[],[]],"finding_files":[]}`,
		`{"findings":[{"id":"X"}],"finding_files":[]}`,
		`{"packages": 3}`,
		``,
	} {
		if _, err := ReadFull(strings.NewReader(in)); err == nil {
			t.Errorf("ReadFull(%q) accepted", in)
		}
	}
}

func FuzzReadFull(f *testing.F) {
	var buf bytes.Buffer
	if err := WriteFull(&buf, sampleReport()); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"packages":[{"name":"a"}],"package_files":[["/x"]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadFull(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever it accepts, every writer can write.
		for _, fm := range Formats {
			var out bytes.Buffer
			if err := Write(&out, fm, r, tool); err != nil {
				t.Fatalf("%s: %v", fm, err)
			}
		}
	})
}
