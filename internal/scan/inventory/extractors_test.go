package inventory

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/scan"
)

func run(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func scanDir(t testing.TB, root string) *scan.Inventory {
	t.Helper()
	inv, err := ScanRoot(context.Background(), "dir", root, Options{})
	must(t, err)
	return inv
}

func pkgSet(inv *scan.Inventory, eco string) map[string]string {
	m := map[string]string{}
	for _, p := range inv.Packages {
		if p.Ecosystem == eco {
			m[p.Name] = p.Version
		}
	}
	return m
}

func sameSet(t testing.TB, what string, got, want map[string]string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: the reference lists nothing", what)
	}
	for n, v := range want {
		if got[n] != v {
			t.Errorf("%s: %s = %q, want %q", what, n, got[n], v)
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("%s: %s reported, not in the reference", what, n)
		}
	}
}

func TestOSReleaseReal(t *testing.T) {
	o, err := parseOSRelease(bytes.NewReader(readFile(t, "/etc/os-release")))
	must(t, err)
	want := strings.TrimSpace(run(t, "", "sh", "-c", `. /etc/os-release; printf '%s|%s|%s' "$ID" "$VERSION_ID" "$PRETTY_NAME"`))
	if got := o.ID + "|" + o.VersionID + "|" + o.PrettyName; got != want {
		t.Errorf("os-release = %q, the shell reads %q", got, want)
	}
}

// The real dpkg database of this machine, against dpkg-query's reading of it.
func TestDpkgStatusReal(t *testing.T) {
	recs, err := parseDpkgStatus(bytes.NewReader(readFile(t, "/var/lib/dpkg/status")), dpkgDir)
	must(t, err)
	got := map[string]record{}
	for _, r := range recs {
		got[r.Name+":"+r.arch] = r
	}
	out := run(t, "", "dpkg-query", "-W", "-f", `${db:Status-Abbrev}|${Package}:${Architecture}|${Version}|${source:Package}|${source:Version}\n`)
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 5 || !strings.HasPrefix(f[0], "ii") {
			continue
		}
		n++
		r, ok := got[f[1]]
		if !ok {
			t.Errorf("%s missing", f[1])
			continue
		}
		if r.Version != f[2] || r.SourceName != f[3] || r.SourceVersion != f[4] {
			t.Errorf("%s = %s %s %s, dpkg-query says %s %s %s", f[1], r.Version, r.SourceName, r.SourceVersion, f[2], f[3], f[4])
		}
	}
	if n == 0 || n != len(recs) {
		t.Errorf("%d packages parsed, dpkg-query lists %d installed", len(recs), n)
	}
}

// A root with the real status, os-release and .list files: ecosystems, purls and the
// file lists match what dpkg says.
func TestScanDirDpkg(t *testing.T) {
	root := t.TempDir()
	files := []entry{
		reg("etc/os-release", readFile(t, "/etc/os-release")),
		reg("var/lib/dpkg/status", readFile(t, "/var/lib/dpkg/status")),
	}
	lists, err := filepath.Glob("/var/lib/dpkg/info/*.list")
	must(t, err)
	for _, l := range lists {
		files = append(files, reg("var/lib/dpkg/info/"+filepath.Base(l), readFile(t, l)))
	}
	// Merged /usr for /lib only: the files dpkg lists under /lib get their /usr name too.
	files = append(files, symlink("lib", "usr/lib"))
	writeTree(t, root, files)
	inv := scanDir(t, root)
	major, _, _ := strings.Cut(inv.OS.VersionID, ".")
	eco := "Debian:" + major
	pkgs := map[string]scan.Package{}
	for _, p := range inv.Packages {
		if p.Ecosystem != eco {
			t.Fatalf("package %+v: ecosystem %s", p, eco)
		}
		pkgs[p.Name] = p
	}
	for _, name := range []string{"dpkg", "bash", "libc6"} {
		p := pkgs[name]
		want := map[string]bool{}
		for _, f := range strings.Split(strings.TrimSpace(run(t, "", "dpkg", "-L", name)), "\n") {
			if f != "/." {
				want[f] = true
				if strings.HasPrefix(f, "/lib/") {
					want["/usr"+f] = true
				}
			}
		}
		if len(p.Files) != len(want) {
			t.Errorf("%s: %d files, dpkg -L lists %d", name, len(p.Files), len(want))
		}
		for _, f := range p.Files {
			if !want[f] {
				t.Errorf("%s: file %s not listed by dpkg -L", name, f)
			}
		}
		if !strings.Contains(p.PURL, "distro=debian-"+inv.OS.VersionID) || p.Location != "/var/lib/dpkg/status" {
			t.Errorf("%s: %+v", name, p)
		}
	}
}

// Distroless images keep one control file per package in status.d, with a .md5sums.
func TestDpkgStatusD(t *testing.T) {
	root := t.TempDir()
	var entries []entry
	want := map[string]string{}
	for _, name := range []string{"base-files", "libc6"} {
		ctl := run(t, "", "dpkg-query", "-s", name)
		entries = append(entries, reg("var/lib/dpkg/status.d/"+name, []byte(ctl)))
		md5, err := filepath.Glob("/var/lib/dpkg/info/" + name + ".md5sums")
		must(t, err)
		arch, err := filepath.Glob("/var/lib/dpkg/info/" + name + ":*.md5sums")
		must(t, err)
		md5 = append(md5, arch...)
		if len(md5) != 1 {
			t.Fatalf("md5sums of %s: %v", name, md5)
		}
		entries = append(entries, reg("var/lib/dpkg/status.d/"+name+".md5sums", readFile(t, md5[0])))
		want[name] = strings.TrimSpace(run(t, "", "dpkg-query", "-W", "-f", "${Version}", name))
	}
	writeTree(t, root, entries)
	inv := scanDir(t, root)
	sameSet(t, "status.d", pkgSet(inv, "Debian"), want)
	for _, p := range inv.Packages {
		if len(p.Files) == 0 || !strings.HasPrefix(p.Files[0], "/") {
			t.Errorf("%s: files %v", p.Name, p.Files)
		}
	}
}

func TestApkInstalled(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, []entry{
		reg("lib/apk/db/installed", readFile(t, "testdata/apk/installed")),
		reg("etc/os-release", []byte("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.14.2\nPRETTY_NAME=\"Alpine Linux v3.14\"\n")),
	})
	inv := scanDir(t, root)
	// The reference: the P:/V: lines of the file, read with grep.
	want := map[string]string{}
	lines := strings.Split(run(t, "", "grep", "-E", "^[PV]:", "testdata/apk/installed"), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		want[strings.TrimPrefix(lines[i], "P:")] = strings.TrimPrefix(lines[i+1], "V:")
	}
	sameSet(t, "apk", pkgSet(inv, "Alpine:v3.14"), want)
	for _, p := range inv.Packages {
		if p.Name == "libssl1.1" {
			if p.SourceName != "openssl" || strings.Join(p.Files, ",") != "/lib/libssl.so.1.1,/usr/lib/libssl.so.1.1" ||
				p.PURL != "pkg:apk/alpine/libssl1.1@1.1.1k-r0?arch=armv7&distro=alpine-3.14.2" {
				t.Errorf("libssl1.1 = %+v", p)
			}
		}
	}
}

func TestRpmBDB(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, []entry{
		reg("var/lib/rpm/Packages", readFile(t, "testdata/rpm/Packages")),
		reg("etc/os-release", []byte("NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nVERSION_ID=\"8.8\"\n")),
	})
	inv := scanDir(t, root)
	if len(inv.Warnings) != 0 || len(inv.Packages) != 1 {
		t.Fatalf("packages %+v warnings %q", inv.Packages, inv.Warnings)
	}
	p := inv.Packages[0]
	if p.Name != "libuuid" || p.Version != "2.32.1-42.el8_8" || p.SourceName != "util-linux" || p.SourceVersion != "2.32.1-42.el8_8" ||
		p.Ecosystem != "Red Hat" || !strings.HasPrefix(p.PURL, "pkg:rpm/redhat/libuuid@2.32.1-42.el8_8?arch=x86_64") || len(p.Files) == 0 {
		t.Errorf("rpm package = %+v", p)
	}

	// The sqlite backend is not built in: a warning naming the file, never a crash.
	root = t.TempDir()
	writeTree(t, root, []entry{reg("usr/lib/sysimage/rpm/rpmdb.sqlite", append([]byte("SQLite format 3\x00"), make([]byte, 4080)...))})
	inv = scanDir(t, root)
	if len(inv.Warnings) != 1 || !strings.Contains(inv.Warnings[0], "/usr/lib/sysimage/rpm/rpmdb.sqlite") {
		t.Errorf("warnings = %q", inv.Warnings)
	}
}

// A real Go binary with module dependencies, against `go version -m`.
func TestGoBinaryReal(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, []entry{exe("usr/bin/staticcheck", readFile(t, "/root/go/bin/staticcheck")), exe("app", readFile(t, realGoBinary(t)))})
	inv := scanDir(t, root)
	gover, deps := goVersionM(t, "/root/go/bin/staticcheck")
	got := map[string]string{}
	for _, p := range inv.Packages {
		if p.Location == "/usr/bin/staticcheck" {
			got[p.Name] = p.Version
			if len(p.Files) != 1 || p.Files[0] != p.Location {
				t.Errorf("%s: files %v", p.Name, p.Files)
			}
		}
	}
	want := map[string]string{"stdlib": gover}
	for m, v := range deps {
		want[m] = strings.TrimPrefix(v, "v")
	}
	// The main module has a version when installed with go install.
	out := run(t, "", "go", "version", "-m", "/root/go/bin/staticcheck")
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "mod" && f[2] != "(devel)" {
			want[f[1]] = strings.TrimPrefix(f[2], "v")
		}
	}
	sameSet(t, "staticcheck", got, want)
	appGo, _ := goVersionM(t, realGoBinary(t))
	if pkgs := pkgsAt(inv, "/app"); len(pkgs) != 1 || pkgs[0].Name != "stdlib" || pkgs[0].Version != appGo || pkgs[0].PURL != "pkg:golang/stdlib@v"+appGo {
		t.Errorf("app: %+v", pkgs)
	}
}

func pkgsAt(inv *scan.Inventory, loc string) []scan.Package {
	var out []scan.Package
	for _, p := range inv.Packages {
		if p.Location == loc {
			out = append(out, p)
		}
	}
	return out
}

// A real Rust binary (rustc) with a cargo-auditable section added by objcopy, as
// cargo-auditable's linker step does.
func TestRustAuditable(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "main.rs"), []byte("fn main() { println!(\"hi\"); }\n"), 0o644))
	run(t, dir, "rustc", "-o", "plain", "main.rs")
	audit := `{"packages":[{"name":"demo","version":"0.1.0","source":"local","dependencies":[1,2],"root":true},` +
		`{"name":"cfg-if","version":"1.0.0","source":"crates.io"},{"name":"smallvec","version":"1.13.2","source":"crates.io"},` +
		`{"name":"mygit","version":"0.3.0","source":"git"}]}`
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write([]byte(audit))
	zw.Close()
	must(t, os.WriteFile(filepath.Join(dir, "dep.bin"), z.Bytes(), 0o644))
	run(t, dir, "objcopy", "--add-section", ".dep-v0=dep.bin", "plain", "audited")
	root := t.TempDir()
	writeTree(t, root, []entry{exe("bin/audited", readFile(t, filepath.Join(dir, "audited"))), exe("bin/plain", readFile(t, filepath.Join(dir, "plain")))})
	inv := scanDir(t, root)
	sameSet(t, "rust", pkgSet(inv, "crates.io"), map[string]string{"cfg-if": "1.0.0", "smallvec": "1.13.2"})
	if len(pkgsAt(inv, "/bin/plain")) != 0 || len(inv.Warnings) != 0 {
		t.Errorf("plain binary: %+v, warnings %q", pkgsAt(inv, "/bin/plain"), inv.Warnings)
	}
}

func TestLockAndManifestFiles(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, []entry{
		reg("src/Cargo.lock", readFile(t, "testdata/lang/Cargo.lock")),
		reg("var/www/composer.lock", readFile(t, "testdata/lang/composer.lock")),
		reg("app/app.deps.json", readFile(t, "testdata/lang/app.deps.json")),
		reg("usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec", readFile(t, "testdata/lang/rake-13.0.6.gemspec")),
	})
	inv := scanDir(t, root)
	if len(inv.Warnings) != 0 {
		t.Errorf("warnings %q", inv.Warnings)
	}
	sameSet(t, "Cargo.lock", pkgSet(inv, "crates.io"), map[string]string{"cfg-if": "1.0.0", "smallvec": "1.13.2"})
	sameSet(t, "composer.lock", pkgSet(inv, "Packagist"), map[string]string{"guzzlehttp/guzzle": "7.8.1", "monolog/monolog": "2.9.2", "phpunit/phpunit": "9.6.13"})
	sameSet(t, "deps.json", pkgSet(inv, "NuGet"), map[string]string{"Newtonsoft.Json": "13.0.1", "System.Text.Encodings.Web": "4.7.1"})
	sameSet(t, "gemspec", pkgSet(inv, "RubyGems"), map[string]string{"rake": "13.0.6"})
	for _, p := range inv.Packages {
		if p.PURL == "" || !strings.HasPrefix(p.Location, "/") {
			t.Errorf("%+v", p)
		}
	}
}

// npm's own installed tree (node_modules of the npm package) against node's reading of
// it, and real lock files (v1 and v3) against node's reading of them.
func TestNpmReal(t *testing.T) {
	const npmRoot = "/usr/lib/node_modules/npm"
	script := `const fs=require("fs"),path=require("path");const out={};
function walk(d){let es;try{es=fs.readdirSync(d,{withFileTypes:true})}catch(e){return}
for(const e of es){if(!e.isDirectory())continue;const p=path.join(d,e.name);
if(e.name.startsWith("@")){walk2(p);continue}one(p)}}
function walk2(d){for(const e of fs.readdirSync(d,{withFileTypes:true})){if(e.isDirectory())one(path.join(d,e.name))}}
function one(p){try{const j=JSON.parse(fs.readFileSync(path.join(p,"package.json")));if(j.name&&j.version)out[path.join(p,"package.json").slice(process.argv[1].length)]=j.name+"@"+j.version}catch(e){}
walk(path.join(p,"node_modules"))}
walk(path.join(process.argv[1],"node_modules"));console.log(JSON.stringify(out))`
	var want map[string]string
	must(t, json.Unmarshal([]byte(run(t, "", "node", "-e", script, npmRoot)), &want))
	inv, err := ScanRoot(context.Background(), "dir", npmRoot, Options{})
	must(t, err)
	got := map[string]string{}
	for _, p := range inv.Packages {
		if p.Ecosystem == "npm" && strings.HasSuffix(p.Location, "/package.json") {
			got[p.Location] = p.Name + "@" + p.Version
		}
	}
	sameSet(t, "node_modules", got, want)

	lockScript := `const j=JSON.parse(require("fs").readFileSync(process.argv[1]));const out=[];
if(j.packages){for(const[k,v]of Object.entries(j.packages)){const i=k.lastIndexOf("node_modules/");if(i<0||v.link||!v.version)continue;out.push((v.name||k.slice(i+13))+"@"+v.version)}}
else{(function w(d){for(const[k,v]of Object.entries(d||{})){if(v.version&&!v.version.includes(":"))out.push(k+"@"+v.version);w(v.dependencies)}})(j.dependencies)}
out.sort();console.log(JSON.stringify(out))`
	for _, lock := range []string{
		"/usr/local/go/src/cmd/vendor/golang.org/x/telemetry/package-lock.json",                                                  // v3
		"/root/go/pkg/mod/github.com/google/pprof@v0.0.0-20221118152302-e6195bd50e26/third_party/d3flamegraph/package-lock.json", // v1
	} {
		var want []string
		must(t, json.Unmarshal([]byte(run(t, "", "node", "-e", lockScript, lock)), &want))
		recs, err := parseNpmLock(readFile(t, lock))
		must(t, err)
		var got []string
		for _, r := range recs {
			got = append(got, r.Name+"@"+r.Version)
		}
		sort.Strings(got)
		if len(want) == 0 || strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: %d packages, node reads %d", lock, len(got), len(want))
		}
	}
}

// The real site-packages of this machine's Python against pip's listing.
func TestPythonReal(t *testing.T) {
	site := strings.TrimSpace(run(t, "", "python3", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"))
	var list []struct{ Name, Version string }
	must(t, json.Unmarshal([]byte(run(t, "", "python3", "-m", "pip", "list", "--path", site, "--format=json", "--disable-pip-version-check")), &list))
	want := map[string]string{}
	for _, p := range list {
		want[pypiNormalize(p.Name)] = p.Version
	}
	inv, err := ScanRoot(context.Background(), "dir", site, Options{})
	must(t, err)
	got := map[string]string{}
	for _, p := range inv.Packages {
		if p.Ecosystem == "PyPI" {
			got[pypiNormalize(p.Name)] = p.Version
		}
	}
	sameSet(t, "site-packages", got, want)
}

// Real jars of this machine, against their pom.properties read by unzip, and nested in
// a war built by the jar tool.
func TestJavaReal(t *testing.T) {
	jars, err := filepath.Glob("/usr/share/java/*.jar")
	must(t, err)
	dir := t.TempDir()
	want := map[string]string{}
	var picked []string
	for _, j := range jars {
		if st, err := os.Lstat(j); err != nil || !st.Mode().IsRegular() {
			continue
		}
		out, err := exec.Command("unzip", "-p", j, "META-INF/maven/*/pom.properties").Output()
		if err != nil || len(out) == 0 {
			continue
		}
		props := parseProperties(out)
		if props["groupId"] == "" || strings.Count(string(out), "groupId=") != 1 {
			continue
		}
		want[props["groupId"]+":"+props["artifactId"]] = props["version"]
		picked = append(picked, j)
		if len(picked) == 3 {
			break
		}
	}
	if len(picked) == 0 {
		t.Fatal("no jar with pom.properties in /usr/share/java")
	}
	must(t, os.MkdirAll(filepath.Join(dir, "WEB-INF/lib"), 0o755))
	for _, j := range picked {
		must(t, os.WriteFile(filepath.Join(dir, "WEB-INF/lib", filepath.Base(j)), readFile(t, j), 0o644))
	}
	run(t, dir, "jar", "cf", "app.war", "WEB-INF")
	root := t.TempDir()
	writeTree(t, root, []entry{reg("srv/app.war", readFile(t, filepath.Join(dir, "app.war"))), reg("lib/"+filepath.Base(picked[0]), readFile(t, picked[0]))})
	inv := scanDir(t, root)
	sameSet(t, "war", mavenAt(inv, "/srv/app.war"), want)
	if got := mavenAt(inv, "/lib/"+filepath.Base(picked[0])); len(got) != 1 {
		t.Errorf("plain jar: %v", got)
	}
}

func mavenAt(inv *scan.Inventory, loc string) map[string]string {
	m := map[string]string{}
	for _, p := range inv.Packages {
		if p.Ecosystem == "Maven" && p.Location == loc {
			m[p.Name] = p.Version
		}
	}
	return m
}
