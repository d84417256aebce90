package inventory

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// entry is one member of a tar composed by a test.
type entry struct {
	name string
	typ  byte // 0 = regular file
	body []byte
	mode int64
	link string
}

func reg(name string, body []byte) entry { return entry{name: name, body: body} }
func exe(name string, body []byte) entry { return entry{name: name, body: body, mode: 0o755} }
func dirEntry(name string) entry         { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) entry  { return entry{name: name, typ: tar.TypeSymlink, link: target} }
func hardlink(name, target string) entry { return entry{name: name, typ: tar.TypeLink, link: target} }
func whiteout(dir, name string) entry    { return reg(strings.TrimSuffix(dir, "/")+"/.wh."+name, nil) }
func opaque(dir string) entry            { return reg(strings.TrimSuffix(dir, "/")+"/.wh..wh..opq", nil) }
func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	return b
}
func must(t testing.TB, err error, ctx ...any) {
	t.Helper()
	if err != nil {
		t.Fatal(append(ctx, err)...)
	}
}

func tarOf(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		must(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write(e.body)
			must(t, err)
		}
	}
	must(t, tw.Close())
	return buf.Bytes()
}

func gzipOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	must(t, err)
	must(t, zw.Close())
	return buf.Bytes()
}

func zstdOf(t testing.TB, b []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil)
	must(t, err)
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// testImage is an image composed by a test: uncompressed layer tars, and the created_by
// of each layer (an empty_layer history entry is added before each to test the pairing).
type testImage struct {
	layers    [][]byte
	createdBy []string
	gzip      bool // compress the layers in the archive or layout
	zstd      bool // compress them with zstd instead
	cmd       []string
}

func (im testImage) config(t testing.TB) []byte {
	type hist struct {
		CreatedBy  string `json:"created_by,omitempty"`
		EmptyLayer bool   `json:"empty_layer,omitempty"`
	}
	cfg := struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		RootFS       struct {
			Type    string   `json:"type"`
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
		History []hist `json:"history"`
		Config  struct {
			Cmd []string `json:"Cmd,omitempty"`
		} `json:"config"`
	}{Architecture: "amd64", OS: "linux"}
	cfg.Config.Cmd = im.cmd
	cfg.RootFS.Type = "layers"
	for i, l := range im.layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest(l))
		cfg.History = append(cfg.History, hist{CreatedBy: "ENV step " + string(rune('A'+i)), EmptyLayer: true})
		cb := ""
		if i < len(im.createdBy) {
			cb = im.createdBy[i]
		}
		cfg.History = append(cfg.History, hist{CreatedBy: cb})
	}
	b, err := json.Marshal(cfg)
	must(t, err)
	return b
}

func (im testImage) layerBlob(t testing.TB, i int) []byte {
	if im.zstd {
		return zstdOf(t, im.layers[i])
	}
	if im.gzip {
		return gzipOf(t, im.layers[i])
	}
	return im.layers[i]
}

// dockerSave writes the image as legacy `docker save` writes it: <id>/layer.tar,
// <config>.json and manifest.json (last, as docker does).
func (im testImage) dockerSave(t testing.TB, p, tag string) {
	t.Helper()
	cfg := im.config(t)
	cfgName := strings.TrimPrefix(digest(cfg), "sha256:") + ".json"
	var entries []entry
	var layerNames []string
	for i := range im.layers {
		id := strings.TrimPrefix(digest([]byte{byte(i)}), "sha256:")
		entries = append(entries, dirEntry(id), reg(id+"/VERSION", []byte("1.0")), reg(id+"/layer.tar", im.layerBlob(t, i)))
		layerNames = append(layerNames, id+"/layer.tar")
	}
	man, err := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{tag}, "Layers": layerNames}})
	must(t, err)
	entries = append(entries, reg(cfgName, cfg), reg("manifest.json", man))
	must(t, os.WriteFile(p, tarOf(t, entries), 0o644))
}

// ociEntries gives the files of an OCI image layout of the image.
func (im testImage) ociEntries(t testing.TB) []entry {
	t.Helper()
	cfg := im.config(t)
	blob := func(b []byte) entry { return reg("blobs/sha256/"+strings.TrimPrefix(digest(b), "sha256:"), b) }
	entries := []entry{reg("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)), blob(cfg)}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int               `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	man := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{SchemaVersion: 2, MediaType: "application/vnd.oci.image.manifest.v1+json",
		Config: desc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: digest(cfg), Size: len(cfg)}}
	for i := range im.layers {
		b := im.layerBlob(t, i)
		mt := "application/vnd.oci.image.layer.v1.tar"
		switch {
		case im.zstd:
			mt += "+zstd"
		case im.gzip:
			mt += "+gzip"
		}
		man.Layers = append(man.Layers, desc{MediaType: mt, Digest: digest(b), Size: len(b)})
		entries = append(entries, blob(b))
	}
	mb, err := json.Marshal(man)
	must(t, err)
	entries = append(entries, blob(mb))
	idx, err := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []desc{{
		MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: digest(mb), Size: len(mb),
		Annotations: map[string]string{"org.opencontainers.image.ref.name": "test"},
	}}})
	must(t, err)
	return append(entries, reg("index.json", idx))
}

func writeTree(t testing.TB, dir string, entries []entry) {
	t.Helper()
	for _, e := range entries {
		p := filepath.Join(dir, e.name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		switch e.typ {
		case tar.TypeDir:
			must(t, os.MkdirAll(p, 0o755))
		case tar.TypeSymlink:
			must(t, os.Symlink(e.link, p))
		default:
			mode := os.FileMode(e.mode)
			if mode == 0 {
				mode = 0o644
			}
			must(t, os.WriteFile(p, e.body, mode))
		}
	}
}

var (
	goBinOnce sync.Once
	goBinPath string
	goBinErr  error
)

// realGoBinary builds (once) a small static Go program with the toolchain running the
// tests, so the tests read a real binary whose build info they can check with `go
// version -m`.
func realGoBinary(t testing.TB) string {
	t.Helper()
	goBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vigil-inventory-gobin-")
		if err != nil {
			goBinErr = err
			return
		}
		src := "package main\n\nimport (\n\t\"os\"\n\t\"os/signal\"\n\t\"syscall\"\n)\n\nfunc main() {\n\tc := make(chan os.Signal, 1)\n\tsignal.Notify(c, syscall.SIGTERM, os.Interrupt)\n\t<-c\n}\n"
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
			goBinErr = err
			return
		}
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/sleeper\n\ngo 1.22\n"), 0o644); err != nil {
			goBinErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", "sleeper", ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			goBinErr = &exec.Error{Name: "go build: " + string(out), Err: err}
			return
		}
		goBinPath = filepath.Join(dir, "sleeper")
	})
	if goBinErr != nil {
		t.Fatalf("build a Go binary: %v", goBinErr)
	}
	return goBinPath
}

// goVersionM runs `go version -m` on a binary and returns its Go version (without
// "go") and the module dependencies path → version, as the go tool reads them.
func goVersionM(t testing.TB, bin string) (string, map[string]string) {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", bin).Output()
	must(t, err, "go version -m")
	deps := map[string]string{}
	var gover string
	for i, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if i == 0 && len(f) >= 2 {
			gover = strings.TrimPrefix(f[1], "go")
			continue
		}
		if len(f) >= 3 && f[0] == "dep" {
			deps[f[1]] = f[2]
		}
	}
	return gover, deps
}
