package inventory

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/vigil-sec/vigil/internal/scan"
)

// maxManifest bounds the language manifests and lock files read (package.json,
// METADATA, lock files); real ones are far smaller.
const maxManifest = 64 << 20

func readSmall(f *file) ([]byte, error) {
	if f.size > maxManifest {
		return nil, fmt.Errorf("%d bytes, over the %d bound for a manifest", f.size, maxManifest)
	}
	return f.bytes()
}

func langRecord(eco, typ, ns, name, version string) record {
	return record{Package: scan.Package{
		Name: name, Version: version, Ecosystem: eco,
		PURL: purl(typ, ns, name, version, nil),
	}}
}

// ---- npm ----

type npmPackageExtractor struct{}

func (npmPackageExtractor) name() string { return "npm-package" }

// match takes node_modules/<name>/package.json and node_modules/@scope/<name>/package.json.
func (npmPackageExtractor) match(p string, _ fs.FileMode, _ int64) access {
	if path.Base(p) != "package.json" {
		return skip
	}
	d := path.Dir(path.Dir(p))
	if path.Base(d) == "node_modules" {
		return content
	}
	if strings.HasPrefix(path.Base(d), "@") && path.Base(path.Dir(d)) == "node_modules" {
		return content
	}
	return skip
}

func (npmPackageExtractor) extract(_ context.Context, _ *session, f *file) ([]record, error) {
	b, err := readSmall(f)
	if err != nil {
		return nil, err
	}
	var pj struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &pj); err != nil {
		return nil, fmt.Errorf("package.json: %w", err)
	}
	if pj.Name == "" || pj.Version == "" {
		return nil, nil
	}
	return []record{npmRecord(pj.Name, pj.Version)}, nil
}

func npmRecord(name, version string) record {
	ns, n := "", name
	if strings.HasPrefix(name, "@") {
		ns, n, _ = strings.Cut(name, "/")
	}
	r := langRecord("npm", packageurl.TypeNPM, ns, n, version)
	r.Name = name
	return r
}

type npmLockExtractor struct{}

func (npmLockExtractor) name() string { return "npm-lock" }

func (npmLockExtractor) match(p string, _ fs.FileMode, _ int64) access {
	// node_modules/.package-lock.json repeats what the packages' package.json say.
	if path.Base(p) == "package-lock.json" && !strings.Contains(p, "/node_modules/") {
		return content
	}
	return skip
}

func (npmLockExtractor) extract(_ context.Context, _ *session, f *file) ([]record, error) {
	b, err := readSmall(f)
	if err != nil {
		return nil, err
	}
	return parseNpmLock(b)
}

type npmLockDep struct {
	Version      string                `json:"version"`
	Dependencies map[string]npmLockDep `json:"dependencies"`
}

// parseNpmLock reads package-lock.json: v2 and v3 list every installed package under
// "packages" by its node_modules path; v1 nests them under "dependencies".
func parseNpmLock(b []byte) ([]record, error) {
	var lock struct {
		LockfileVersion int `json:"lockfileVersion"`
		Packages        map[string]struct {
			Version string `json:"version"`
			Name    string `json:"name"`
			Link    bool   `json:"link"`
		} `json:"packages"`
		Dependencies map[string]npmLockDep `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, fmt.Errorf("package-lock.json: %w", err)
	}
	var out []record
	if len(lock.Packages) > 0 {
		for key, p := range lock.Packages {
			i := strings.LastIndex(key, "node_modules/")
			if i < 0 || p.Link || p.Version == "" {
				continue // the root project, a workspace member or a link
			}
			name := key[i+len("node_modules/"):]
			if p.Name != "" {
				name = p.Name
			}
			out = append(out, npmRecord(name, p.Version))
		}
	} else {
		var walk func(map[string]npmLockDep, int)
		walk = func(deps map[string]npmLockDep, depth int) {
			if depth > 64 {
				return
			}
			for name, d := range deps {
				if d.Version != "" && !strings.Contains(d.Version, ":") {
					out = append(out, npmRecord(name, d.Version))
				}
				walk(d.Dependencies, depth+1)
			}
		}
		walk(lock.Dependencies, 0)
	}
	sortRecords(out)
	return out, nil
}

func sortRecords(rs []record) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Name != rs[j].Name {
			return rs[i].Name < rs[j].Name
		}
		return rs[i].Version < rs[j].Version
	})
}

// ---- Python ----

type pythonExtractor struct{}

func (pythonExtractor) name() string { return "python" }

func (pythonExtractor) match(p string, _ fs.FileMode, _ int64) access {
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	switch {
	case base == "METADATA" && strings.HasSuffix(dir, ".dist-info"):
		return content
	case base == "PKG-INFO" && strings.HasSuffix(dir, ".egg-info"):
		return content
	case strings.HasSuffix(base, ".egg-info"):
		// An egg-info may be a single file holding PKG-INFO (distutils installs).
		return content
	}
	return skip
}

func (pythonExtractor) extract(_ context.Context, _ *session, f *file) ([]record, error) {
	b, err := readSmall(f)
	if err != nil {
		return nil, err
	}
	name, version, err := parsePythonMetadata(b)
	if err != nil {
		return nil, err
	}
	r := langRecord("PyPI", packageurl.TypePyPi, "", pypiNormalize(name), version)
	r.Name = name
	return []record{r}, nil
}

// parsePythonMetadata reads Name and Version from the header of a core metadata file
// (RFC 822 style, packaging.python.org core-metadata).
func parsePythonMetadata(b []byte) (string, string, error) {
	var name, version string
	for line := range bytes.Lines(b) {
		l := strings.TrimRight(string(line), "\r\n")
		if l == "" {
			break // the body (description) follows
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(k) {
		case "name":
			name = strings.TrimSpace(v)
		case "version":
			version = strings.TrimSpace(v)
		}
	}
	if name == "" || version == "" {
		return "", "", errors.New("no Name or Version in the metadata")
	}
	return name, version, nil
}

var pypiSep = regexp.MustCompile(`[-_.]+`)

// pypiNormalize is PEP 503 name normalization.
func pypiNormalize(n string) string {
	return strings.ToLower(pypiSep.ReplaceAllString(n, "-"))
}

// ---- Java ----

type javaExtractor struct{}

func (javaExtractor) name() string { return "java" }

func (javaExtractor) match(p string, _ fs.FileMode, _ int64) access {
	switch strings.ToLower(path.Ext(p)) {
	case ".jar", ".war", ".ear", ".jpi", ".hpi":
		return random
	}
	return skip
}

// Bounds on nested archives: depth, size of one nested archive read in memory, and the
// size of a properties or manifest file.
const (
	maxJarDepth   = 3
	maxNestedJar  = 64 << 20
	maxJarMetaLen = 1 << 20
)

func (javaExtractor) extract(_ context.Context, s *session, f *file) ([]record, error) {
	zr, err := zip.NewReader(f.readerAt(), f.size)
	if err != nil {
		return nil, fmt.Errorf("java archive: %w", err)
	}
	out := readJar(s, zr, path.Base(f.path), f.path, 0)
	for i := range out {
		out[i].Files = []string{f.path}
	}
	return out, nil
}

func readJar(s *session, zr *zip.Reader, fileName, where string, depth int) []record {
	var out []record
	var manifest *zip.File
	for _, zf := range zr.File {
		n := zf.Name
		switch {
		case strings.HasPrefix(n, "META-INF/maven/") && strings.HasSuffix(n, "/pom.properties"):
			b, err := readZipEntry(zf, maxJarMetaLen)
			if err != nil {
				s.warnf("%s: %s: %v", where, n, err)
				continue
			}
			props := parseProperties(b)
			if g, a, v := props["groupId"], props["artifactId"], props["version"]; g != "" && a != "" && v != "" {
				out = append(out, mavenRecord(g, a, v))
			}
		case strings.EqualFold(n, "META-INF/MANIFEST.MF"):
			manifest = zf
		case isJarName(n) && depth < maxJarDepth:
			if zf.UncompressedSize64 > maxNestedJar {
				s.warnf("%s: %s: nested archive of %d bytes, over the %d bound: skipped", where, n, zf.UncompressedSize64, maxNestedJar)
				continue
			}
			b, err := readZipEntry(zf, maxNestedJar)
			if err != nil {
				s.warnf("%s: %s: %v", where, n, err)
				continue
			}
			inner, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				s.warnf("%s: %s: nested java archive: %v", where, n, err)
				continue
			}
			out = append(out, readJar(s, inner, path.Base(n), where+"!/"+n, depth+1)...)
		}
	}
	if len(out) == 0 && manifest != nil {
		if b, err := readZipEntry(manifest, maxJarMetaLen); err == nil {
			if r, ok := manifestRecord(parseManifest(b), fileName); ok {
				out = append(out, r)
			}
		}
	}
	return out
}

func isJarName(n string) bool {
	switch strings.ToLower(path.Ext(n)) {
	case ".jar", ".war", ".ear":
		return true
	}
	return false
}

// readZipEntry reads an entry, failing when it inflates past limit whatever its
// header claims (zip bombs lie about sizes).
func readZipEntry(zf *zip.File, limit int64) ([]byte, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("inflates past %d bytes", limit)
	}
	return b, nil
}

func mavenRecord(group, artifact, version string) record {
	r := langRecord("Maven", packageurl.TypeMaven, group, artifact, version)
	r.Name = group + ":" + artifact
	return r
}

func parseProperties(b []byte) map[string]string {
	m := map[string]string{}
	for line := range bytes.Lines(b) {
		l := strings.TrimSpace(string(line))
		if l == "" || l[0] == '#' || l[0] == '!' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			k, v, ok = strings.Cut(l, ":")
		}
		if ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// parseManifest reads the main section of a JAR manifest (72-byte lines continued by a
// leading space).
func parseManifest(b []byte) map[string]string {
	m := map[string]string{}
	last := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxJarMetaLen)
	for sc.Scan() {
		l := strings.TrimRight(sc.Text(), "\r")
		if l == "" {
			break
		}
		if l[0] == ' ' && last != "" {
			m[last] += l[1:]
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		last = strings.TrimSpace(k)
		m[last] = strings.TrimSpace(v)
	}
	return m
}

var jarFileVersion = regexp.MustCompile(`^(.+?)-(\d[\w.\-]*)\.[jwe]ar$`)

// manifestRecord guesses Maven coordinates from a manifest when the archive has no
// pom.properties; it gives up rather than invent a group.
func manifestRecord(m map[string]string, fileName string) (record, bool) {
	group := m["Implementation-Vendor-Id"]
	artifact, version := "", m["Implementation-Version"]
	if sn, _, _ := strings.Cut(m["Bundle-SymbolicName"], ";"); sn != "" {
		if i := strings.LastIndexByte(sn, '.'); i > 0 {
			if group == "" {
				group = sn[:i]
			}
			artifact = sn[i+1:]
		}
		if version == "" {
			version = m["Bundle-Version"]
		}
	}
	if fm := jarFileVersion.FindStringSubmatch(fileName); fm != nil {
		artifact = fm[1]
		if version == "" {
			version = fm[2]
		}
	}
	if group == "" || artifact == "" || version == "" {
		return record{}, false
	}
	return mavenRecord(group, artifact, version), true
}

// ---- Ruby ----

type gemspecExtractor struct{}

func (gemspecExtractor) name() string { return "gemspec" }

func (gemspecExtractor) match(p string, _ fs.FileMode, _ int64) access {
	if strings.HasSuffix(p, ".gemspec") && path.Base(path.Dir(p)) == "specifications" {
		return content
	}
	return skip
}

var (
	gemName    = regexp.MustCompile(`(?m)^\s*\w+\.name\s*=\s*["']([^"']+)["']`)
	gemVersion = regexp.MustCompile(`(?m)^\s*\w+\.version\s*=\s*(?:Gem::Version\.new\(\s*)?["']([^"']+)["']`)
)

func (gemspecExtractor) extract(_ context.Context, _ *session, f *file) ([]record, error) {
	b, err := readSmall(f)
	if err != nil {
		return nil, err
	}
	n, v := gemName.FindSubmatch(b), gemVersion.FindSubmatch(b)
	if n == nil || v == nil {
		return nil, errors.New("gemspec: no name or version")
	}
	return []record{langRecord("RubyGems", packageurl.TypeGem, "", string(n[1]), string(v[1]))}, nil
}

// ---- PHP ----

type composerExtractor struct{}

func (composerExtractor) name() string { return "composer" }

func (composerExtractor) match(p string, _ fs.FileMode, _ int64) access {
	if path.Base(p) == "composer.lock" {
		return content
	}
	return skip
}

func (composerExtractor) extract(_ context.Context, _ *session, f *file) ([]record, error) {
	b, err := readSmall(f)
	if err != nil {
		return nil, err
	}
	return parseComposerLock(b)
}

func parseComposerLock(b []byte) ([]record, error) {
	type pkg struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	var lock struct {
		Packages    []pkg `json:"packages"`
		PackagesDev []pkg `json:"packages-dev"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, fmt.Errorf("composer.lock: %w", err)
	}
	var out []record
	for _, p := range append(lock.Packages, lock.PackagesDev...) {
		if p.Name == "" || p.Version == "" {
			continue
		}
		v := strings.TrimPrefix(p.Version, "v")
		ns, n, _ := strings.Cut(p.Name, "/")
		if n == "" {
			ns, n = "", ns
		}
		r := langRecord("Packagist", packageurl.TypeComposer, ns, n, v)
		r.Name = p.Name
		out = append(out, r)
	}
	return out, nil
}

// ---- .NET ----

type dotnetExtractor struct{}

func (dotnetExtractor) name() string { return "dotnet-deps" }

func (dotnetExtractor) match(p string, _ fs.FileMode, _ int64) access {
	if strings.HasSuffix(p, ".deps.json") {
		return content
	}
	return skip
}

func (dotnetExtractor) extract(_ context.Context, _ *session, f *file) ([]record, error) {
	b, err := readSmall(f)
	if err != nil {
		return nil, err
	}
	return parseDepsJSON(b)
}

// parseDepsJSON reads the "libraries" of a .NET deps.json ("Name/Version" → type); only
// NuGet packages, not the application's own projects.
func parseDepsJSON(b []byte) ([]record, error) {
	var deps struct {
		Libraries map[string]struct {
			Type string `json:"type"`
		} `json:"libraries"`
	}
	if err := json.Unmarshal(b, &deps); err != nil {
		return nil, fmt.Errorf("deps.json: %w", err)
	}
	var out []record
	for key, lib := range deps.Libraries {
		if lib.Type != "package" {
			continue
		}
		n, v, ok := strings.Cut(key, "/")
		if !ok || n == "" || v == "" {
			continue
		}
		out = append(out, langRecord("NuGet", packageurl.TypeNuget, "", n, v))
	}
	sortRecords(out)
	return out, nil
}
