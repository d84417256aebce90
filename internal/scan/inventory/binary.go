package inventory

import (
	"bytes"
	"compress/zlib"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/vigil-sec/vigil/internal/scan"
)

// isExecutable is the filter for binaries: only files someone may run are opened.
func isExecutable(mode fs.FileMode, size int64) bool {
	return mode&0o111 != 0 && size >= 64
}

// ---- Go ----

type goBinaryExtractor struct{}

func (goBinaryExtractor) name() string { return "go-binary" }

func (goBinaryExtractor) match(_ string, mode fs.FileMode, size int64) access {
	if isExecutable(mode, size) {
		return binary
	}
	return skip
}

func (goBinaryExtractor) extract(_ context.Context, _ *session, f *file) ([]record, error) {
	bi, err := buildinfo.Read(f.readerAt())
	if err != nil {
		// Most ELF files are not Go programs; that is not worth a warning.
		if strings.Contains(err.Error(), "not a Go executable") {
			return nil, nil
		}
		return nil, fmt.Errorf("go build info: %w", err)
	}
	return goPackages(bi, f.path), nil
}

func goPackages(bi *buildinfo.BuildInfo, p string) []record {
	var out []record
	add := func(mod, ver string) {
		if mod == "" || ver == "" || ver == "(devel)" {
			return
		}
		ns, name := path.Split(mod)
		out = append(out, record{Package: scan.Package{
			Name: mod,
			// OSV's Go ranges have no "v"; the purl keeps the module version as is.
			Version:   strings.TrimPrefix(ver, "v"),
			Ecosystem: "Go",
			PURL:      purl(packageurl.TypeGolang, strings.TrimSuffix(ns, "/"), name, ver, nil),
			Files:     []string{p},
		}})
	}
	if gv, _, _ := strings.Cut(strings.TrimPrefix(bi.GoVersion, "go"), " "); gv != "" {
		out = append(out, record{Package: scan.Package{
			Name: "stdlib", Version: gv, Ecosystem: "Go",
			PURL:  purl(packageurl.TypeGolang, "", "stdlib", "v"+gv, nil),
			Files: []string{p},
		}})
	}
	add(bi.Main.Path, bi.Main.Version)
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		add(d.Path, d.Version)
	}
	return out
}

// ---- Rust (cargo-auditable) ----

type rustBinaryExtractor struct{}

func (rustBinaryExtractor) name() string { return "rust-binary" }

func (rustBinaryExtractor) match(_ string, mode fs.FileMode, size int64) access {
	if isExecutable(mode, size) {
		return binary
	}
	return skip
}

// maxAuditJSON bounds the inflated .dep-v0 section (cargo-auditable caps it far lower).
const maxAuditJSON = 8 << 20

func (rustBinaryExtractor) extract(_ context.Context, _ *session, f *file) ([]record, error) {
	ef, err := elf.NewFile(f.readerAt())
	if err != nil {
		return nil, nil // the Go extractor reports unreadable ELF files
	}
	defer ef.Close()
	sec := ef.Section(".dep-v0")
	if sec == nil {
		return nil, nil
	}
	if sec.Size > maxAuditJSON || sec.Type == elf.SHT_NOBITS {
		return nil, fmt.Errorf("cargo-auditable section: %d bytes", sec.Size)
	}
	return parseRustAudit(sec.Open(), f.path)
}

// parseRustAudit reads cargo-auditable's .dep-v0 section: zlib-compressed JSON
// (rust-secure-code/cargo-auditable auditable-serde).
func parseRustAudit(r io.Reader, p string) ([]record, error) {
	zr, err := zlib.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("cargo-auditable section: %w", err)
	}
	defer zr.Close()
	b, err := io.ReadAll(io.LimitReader(zr, maxAuditJSON+1))
	if err != nil {
		return nil, fmt.Errorf("cargo-auditable section: %w", err)
	}
	if len(b) > maxAuditJSON {
		return nil, fmt.Errorf("cargo-auditable section: inflates past %d bytes", maxAuditJSON)
	}
	var doc struct {
		Packages []struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			Source  string `json:"source"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("cargo-auditable section: %w", err)
	}
	var out []record
	for _, pk := range doc.Packages {
		// Local and git crates are not on crates.io, where advisories are.
		if pk.Source != "crates.io" && pk.Source != "registry" || pk.Name == "" || pk.Version == "" {
			continue
		}
		out = append(out, cargoRecord(pk.Name, pk.Version, []string{p}))
	}
	return out, nil
}

func cargoRecord(name, version string, files []string) record {
	return record{Package: scan.Package{
		Name: name, Version: version, Ecosystem: "crates.io",
		PURL:  purl(packageurl.TypeCargo, "", name, version, nil),
		Files: files,
	}}
}

// ---- Cargo.lock ----

type cargoLockExtractor struct{}

func (cargoLockExtractor) name() string { return "cargo-lock" }

func (cargoLockExtractor) match(p string, _ fs.FileMode, _ int64) access {
	if path.Base(p) == "Cargo.lock" {
		return content
	}
	return skip
}

func (cargoLockExtractor) extract(_ context.Context, _ *session, f *file) ([]record, error) {
	b, err := f.bytes()
	if err != nil {
		return nil, err
	}
	return parseCargoLock(b)
}

// parseCargoLock reads the [[package]] tables of a Cargo.lock (TOML written by cargo,
// one `key = "value"` a line), keeping the crates that come from a registry.
func parseCargoLock(b []byte) ([]record, error) {
	var out []record
	var name, version, source string
	inPkg, sawPkg := false, false
	flush := func() {
		if inPkg && name != "" && version != "" && strings.HasPrefix(source, "registry+") {
			out = append(out, cargoRecord(name, version, nil))
		}
		name, version, source = "", "", ""
	}
	for line := range bytes.Lines(b) {
		l := strings.TrimSpace(string(line))
		if strings.HasPrefix(l, "[") {
			flush()
			inPkg = l == "[[package]]"
			sawPkg = sawPkg || inPkg
			continue
		}
		if !inPkg {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			continue
		}
		v = v[1 : len(v)-1]
		switch strings.TrimSpace(k) {
		case "name":
			name = v
		case "version":
			version = v
		case "source":
			source = v
		}
	}
	flush()
	if !sawPkg {
		return nil, errors.New("no [[package]] table: not a Cargo.lock")
	}
	return out, nil
}
