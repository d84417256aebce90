package web

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// The console is either built (index.html pointing at bundles that are there) or not
// (ErrNotBuilt, and the page that says so); never half.
func TestConsole(t *testing.T) {
	if !strings.Contains(string(Unbuilt()), "make build") {
		t.Errorf("the unbuilt page does not say how to build: %q", Unbuilt())
	}
	fsys, err := Console()
	if errors.Is(err, ErrNotBuilt) {
		t.Log("console not built (dist/app missing at compile time): only the placeholder is embedded")
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	index, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(index), "__SCRIPT__") || strings.Contains(string(index), "__STYLE__") {
		t.Fatalf("index.html still holds placeholders:\n%s", index)
	}
	for _, part := range strings.Split(string(index), `"/assets/`)[1:] {
		name, _, _ := strings.Cut(part, `"`)
		if _, err := fs.Stat(fsys, "assets/"+name); err != nil {
			t.Errorf("index.html names assets/%s, which is not embedded: %v", name, err)
		}
	}
	if strings.Contains(string(index), "<script>") || strings.Contains(string(index), "style=") {
		t.Errorf("index.html has inline script or style, which the CSP forbids:\n%s", index)
	}
}
