package version

import (
	"testing"
)

// checkOrder asserts that every version in list sorts strictly before every later one,
// in both directions, and equal to itself.
func checkOrder(t *testing.T, s Scheme, list []string) {
	t.Helper()
	parsed := make([]Version, len(list))
	for i, v := range list {
		p, err := s.Parse(v)
		if err != nil {
			t.Fatalf("%s: parse %q: %v", s, v, err)
		}
		parsed[i] = p
	}
	for i := range parsed {
		if c := parsed[i].Compare(parsed[i]); c != 0 {
			t.Errorf("%s: %q vs itself = %d", s, list[i], c)
		}
		for j := i + 1; j < len(parsed); j++ {
			if c := parsed[i].Compare(parsed[j]); c >= 0 {
				t.Errorf("%s: want %q < %q, got %d", s, list[i], list[j], c)
			}
			if c := parsed[j].Compare(parsed[i]); c <= 0 {
				t.Errorf("%s: want %q > %q, got %d", s, list[j], list[i], c)
			}
		}
	}
}

type pair struct {
	a, b string
	want int
}

func checkPairs(t *testing.T, s Scheme, pairs []pair) {
	t.Helper()
	for _, p := range pairs {
		got, err := s.Compare(p.a, p.b)
		if err != nil {
			t.Errorf("%s: compare %q %q: %v", s, p.a, p.b, err)
			continue
		}
		if got != p.want {
			t.Errorf("%s: compare(%q, %q) = %d, want %d", s, p.a, p.b, got, p.want)
		}
		if rev, _ := s.Compare(p.b, p.a); rev != -p.want {
			t.Errorf("%s: compare(%q, %q) = %d, want %d", s, p.b, p.a, rev, -p.want)
		}
	}
}

func checkInvalid(t *testing.T, s Scheme, bad []string) {
	t.Helper()
	for _, v := range bad {
		if _, err := s.Parse(v); err == nil {
			t.Errorf("%s: Parse(%q) accepted an invalid version", s, v)
		}
	}
}

func TestDebian(t *testing.T) {
	// Debian Policy 5.6.12: "~~" < "~~a" < "~" < "" < "a"; the rest from dpkg's own
	// tests (lib/dpkg/t/t-version.c) and real bookworm versions, each pair checked
	// against `dpkg --compare-versions`.
	checkOrder(t, Debian, []string{
		"0", "0.1", "0.9", "1.0~~", "1.0~~a", "1.0~", "1.0~rc1", "1.0", "1.0-0.1", "1.0-1",
		"1.0-1+b1", "1.0-1+deb12u1", "1.0-1.1", "1.0-2", "1.0-10", "1.0a", "1.0a-1",
		"1.0+dfsg", "1.0+dfsg-1", "1.0.1", "1.2", "1.10", "1.10.1~pre", "1.10.1",
		"2.36-9", "2.36-9+deb12u1", "2.36-9+deb12u4", "2.36-10", "1:0", "1:0.5", "1:1.0~rc1",
		"1:1.0", "2:0.1",
	})
	checkPairs(t, Debian, []pair{
		{"1.0", "1.0-0", 0},    // absent revision is "0"
		{"0:1.0", "1.0", 0},    // absent epoch is 0
		{"00:1.0", "0:1.0", 0}, // epoch is a number
		{"1.001", "1.1", 0},    // digit runs compare as numbers
		{"1.0-1", "1.0-01", 0},
		{"a", "b", -1}, // dpkg warns about the missing digit, and compares
		{"1.0.", "1.0", 1},
		{"1.0+", "1.0.", -1}, // '+' < '.' in ASCII, both after letters
		{"1.0~", "1.0", -1},
		{"3.0.11-1~deb12u2", "3.0.11-1", -1},
		{"3.0.11-1~deb12u2", "3.0.13-1~deb12u1", -1},
		{"1:2.38.1-5+deb12u3", "2.39", 1},
		{"7.88.1-10+deb12u5", "7.88.1-10+deb12u12", -1},
	})
	checkInvalid(t, Debian, []string{"", " ", "1.0 1", "a:1.0", "1:", "1.0-", "1:-1", "1.0\x00", "-1", "1.0_1", "1.0-1_2"})
}

func TestRPM(t *testing.T) {
	// rpm's tests/rpmvercmp.at, each also checked with rpm.vercmp.
	checkPairs(t, RPM, []pair{
		{"1.0", "1.0", 0}, {"1.0", "2.0", -1}, {"2.0.1", "2.0.1", 0}, {"2.0", "2.0.1", -1},
		{"2.0.1a", "2.0.1a", 0}, {"2.0.1a", "2.0.1", 1}, {"5.5p1", "5.5p2", -1},
		{"5.5p10", "5.5p10", 0}, {"5.5p1", "5.5p10", -1}, {"10xyz", "10.1xyz", -1},
		{"xyz10", "xyz10", 0}, {"xyz10", "xyz10.1", -1}, {"xyz.4", "xyz.4", 0},
		{"xyz.4", "8", -1}, {"xyz.4", "2", -1}, {"5.5p2", "5.6p1", -1}, {"5.6p1", "6.5p1", -1},
		{"6.0.rc1", "6.0", 1}, {"10b2", "10a1", 1}, {"10a2", "10b2", -1}, {"1.0aa", "1.0aa", 0},
		{"1.0a", "1.0aa", -1}, {"10.0001", "10.0001", 0}, {"10.0001", "10.1", 0},
		{"10.0001", "10.0039", -1}, {"4.999.9", "5.0", -1}, {"20101121", "20101122", -1},
		{"2_0", "2_0", 0}, {"2.0", "2_0", 0}, {"a", "a", 0}, {"a+", "a+", 0}, {"a+", "a_", 0},
		{"+a", "+a", 0}, {"+a", "_a", 0}, {"+_", "+_", 0}, {"_+", "+_", 0}, {"_+", "_", 0},
		{"+", "_", 0}, {"1.0~rc1", "1.0~rc1", 0}, {"1.0~rc1", "1.0", -1},
		{"1.0~rc1", "1.0~rc2", -1}, {"1.0~rc1~git123", "1.0~rc1~git123", 0},
		{"1.0~rc1~git123", "1.0~rc1", -1}, {"1.0^", "1.0^", 0}, {"1.0^", "1.0", 1},
		{"1.0^git1", "1.0^git1", 0}, {"1.0^git1", "1.0", 1}, {"1.0^git1", "1.0^git2", -1},
		{"1.0^git1", "1.01", -1}, {"1.0^20160101", "1.0^20160101", 0},
		{"1.0^20160101", "1.0.1", -1}, {"1.0^20160101^git1", "1.0^20160101^git1", 0},
		{"1.0^20160102", "1.0^20160101^git1", 1}, {"1.0~rc1^git1", "1.0~rc1^git1", 0},
		{"1.0~rc1^git1", "1.0~rc1", 1}, {"1.0^git1~pre", "1.0^git1~pre", 0},
		{"1.0^git1", "1.0^git1~pre", 1},
		// EVR: epoch first, then version, then release.
		{"1:1.0-1", "2.0-1", 1}, {"0:1.0-1", "1.0-1", 0}, {"1.0-1.el9", "1.0-1.el9_2", -1},
		{"3.0.7-24.el9", "3.0.7-25.el9_3", -1}, {"2.34-100.el9_4.2", "2.34-83.el9.7", 1},
	})
	checkInvalid(t, RPM, []string{"", "x:1.0", ":-1"})
}

func TestAlpine(t *testing.T) {
	// Orderings from apk-tools' test/version.data.
	checkPairs(t, Alpine, []pair{
		{"2.34", "0.1.0_alpha", 1}, {"0.1.0_alpha", "0.1.0_alpha", 0},
		{"0.1.0_alpha", "0.1.3_alpha", -1}, {"0.1.0_alpha2", "0.1.0_alpha", 1},
		{"0.1.0_alpha", "2.2.39-r1", -1}, {"1.0.4-r3", "1.0.4-r4", -1}, {"1.1", "1.1_alpha1", 1},
		{"1.2.1", "1.2", 1}, {"1.3_alpha", "1.3_alpha2", -1}, {"0.8_beta1", "0.8_beta2", -1},
		{"2.3.0b-r1", "2.3.0b-r2", -1}, {"0.12.3", "0.12", 1}, {"1.2.12.1", "1.2.13", -1},
		{"3.1_p16", "3.1_p17", -1}, {"1.06-r6", "006", -1}, {"1.2.2-r1", "1.2.2", 1},
		{"20050718-r1", "20050718-r2", -1}, {"2.01.01_alpha10", "0.94", 1}, {"1.0", "0.99.3.20040818", 1},
		{"2.8.9-r1", "2.8.9", 1}, {"7.15.1-r1", "1.02", 1}, {"1.02", "1.03-r1", -1},
		{"4.2.52_p2-r1", "4.2.52_p4-r2", -1}, {"2.5.1-r8", "2.5.1a-r1", -1}, {"3.9_pre20060124", "0.01", 1},
		{"0.10.0", "0.10.1_rc1", -1}, {"0.9.8c-r1", "0.9.8d", -1}, {"4.5_p1-r1", "4.5_p1", 1},
		{"1.7", "1.7b", -1}, {"1.8.5", "1.8.5_p2", -1}, {"2.9.11_pre20051101-r2", "2.9.11_pre20051101-r3", -1},
		{"2.9.11_pre20051101", "2.9.11_pre20061021-r1", -1}, {"0.9.28.1", "087-r1", -1},
		{"1.23-r1", "1.23", 1}, {"1.2.5_rc2", "0.1", 1}, {"2.12r-r4", "2.12r-r5", -1},
		{"7.0.17", "7.0.174", -1}, {"0.3.4_pre20061029", "0.4.0", -1}, {"0.20070118", "0.20070207_rc1", -1},
		{"0.20070207_rc1", "1.0", -1}, {"1.3-r0", "1.3.1-r0", -1}, {"1.3_pre1-r1", "1.3.2", -1},
		{"1.0_p10-r0", "1.0_p9-r0", 1}, {"0.1.0_alpha_pre2", "0.1.0_alpha", -1},
		{"1.0.0_pre20191002222144-r0", "1.0.0_pre20210530193627-r0", -1},
		// Leading zeros after a dot compare as strings.
		{"1.02", "1.1", -1}, {"1.0", "1.00", -1}, {"1.01", "1.002", 1},
		// Commit hashes sit between suffixes and the revision.
		{"1.0~abc123", "1.0", 1}, {"1.0~abc123", "1.0-r9", 1}, {"1.0~abc123-r1", "1.0~abc124-r0", -1},
		// Real Alpine 3.19 versions.
		{"3.1.4-r5", "3.1.4-r6", -1}, {"1.36.1-r15", "1.36.1-r20", -1}, {"8.5.0-r0", "8.11.1-r0", -1},
	})
	checkInvalid(t, Alpine, []string{"", "a1", "1.0bc", "1.0_foo", "1.0-1", "1.0-r", "1.0_", "1..2", "1.0a.1", "1.0-r1-r2", "1.0~", "1.0~xyz"})
}

func TestSemVer(t *testing.T) {
	// semver.org, item 11.
	checkOrder(t, SemVer, []string{
		"0.0.0-0", "0.0.0", "0.0.1", "0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
		"1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0",
		"1.10.0", "2.0.0", "10.0.0",
	})
	checkPairs(t, SemVer, []pair{
		{"v1.2.3", "1.2.3", 0},              // Go module versions
		{"v2.0.0+incompatible", "2.0.0", 0}, // build metadata is ignored
		{"1.0.0+build.1", "1.0.0+build.2", 0},
		{"=1.2.3", "1.2.3", 0},        // npm
		{"1.21", "1.21.0", 0},         // Go toolchain
		{"1.21rc2", "1.21.0-rc.2", 0}, // Go toolchain pre-release, as vulndb writes it
		{"1.21rc2", "1.21.0", -1},
		{"1.22.0-0", "1.21.9", 1}, // the introduced event of Go stdlib ranges
		{"1.22.0-0", "1.22.0-rc.1", -1},
		{"v0.0.0-20210101000000-abcdef123456", "v0.0.0-20220101000000-abcdef123456", -1},
		{"v0.0.0-20210101000000-abcdef123456", "0.0.1", -1},
		{"99999999999999999999.0.0", "99999999999999999998.0.0", 1},
	})
	checkInvalid(t, SemVer, []string{"", "v", "1.2.3.4", "1.x", "1.0.0-", "1.0.0-a..b", "1.0.0+", "(devel)", "1.0.0-a$"})
	checkPairs(t, NuGet, []pair{{"1.0.0.1", "1.0.0", 1}, {"1.0.0-Beta", "1.0.0-beta", 0}, {"1.0", "1.0.0.0", 0}})
}

func TestPEP440(t *testing.T) {
	// PEP 440's own ordering example, and packaging's local-version rules.
	checkOrder(t, PEP440, []string{
		"1.dev0", "1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12", "1.0b1.dev456",
		"1.0b2", "1.0b2.post345.dev456", "1.0b2.post345", "1.0rc1.dev456", "1.0rc1", "1.0",
		"1.0+abc.5", "1.0+abc.7", "1.0+5", "1.0.post456.dev34", "1.0.post456", "1.0.15",
		"1.1.dev1", "1!0.1",
	})
	checkPairs(t, PEP440, []pair{
		{"1.0-alpha.1", "1.0a1", 0}, {"1.0-1", "1.0.post1", 0}, {"1.0rev2", "1.0.post2", 0},
		{"1.0r", "1.0.post0", 0}, {"1.0c1", "1.0rc1", 0}, {"1.0-preview-2", "1.0rc2", 0},
		{"1.0-dev", "1.0.dev0", 0}, {"V1.0", "1.0", 0}, {"1.0.0", "1", 0}, {"01.02", "1.2", 0},
		{"1.0+Ubuntu-1", "1.0+ubuntu.1", 0}, {"0!1.0", "1.0", 0}, {"1!1.0", "2.0", 1},
		{"2.31.0", "2.32.0", -1}, {"1.26.18", "1.26.5", 1},
	})
	checkInvalid(t, PEP440, []string{"", "1.0-", "french toast", "1.0+", "1.0+abc..1", "1.0.x", "1.0a1a2"})
}

func TestMaven(t *testing.T) {
	// maven-artifact's ComparableVersionTest (3.x).
	checkOrder(t, Maven, []string{
		"1-alpha2snapshot", "1-alpha2", "1-alpha-123", "1-beta-2", "1-beta123", "1-m2", "1-m11",
		"1-rc", "1-cr2", "1-rc123", "1-SNAPSHOT", "1", "1-sp", "1-sp2", "1-sp123", "1-abc",
		"1-def", "1-pom-1", "1-1-snapshot", "1-1", "1-2", "1-123",
	})
	checkOrder(t, Maven, []string{
		"2.0", "2-1", "2.0.a", "2.0.0.a", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c",
		"2.1-1", "2.1.0.1", "2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11", "11.m2",
		"11.m11", "11", "11.a", "11b", "11c", "11m",
	})
	checkOrder(t, Maven, []string{"6.1.0rc3", "6.1.0", "6.1H.5-beta"}) // MNG-5568
	checkOrder(t, Maven, []string{"20190126.230843", "1234567890.12345", "123456789012345.1H.5-beta",
		"12345678901234567890.1H.5-beta"}) // MNG-6572
	checkOrder(t, Maven, []string{"1-0.alpha", "1-0.beta", "1"}) // MNG-6964
	checkPairs(t, Maven, []pair{
		{"1", "1.0", 0}, {"1", "1.0.0", 0}, {"1.0", "1.0.0", 0}, {"1", "1-0", 0}, {"1", "1.0-0", 0},
		{"1a", "1-a", 0}, {"1a", "1.0-a", 0}, {"1a", "1.0.0-a", 0}, {"1.0a", "1-a", 0},
		{"1x", "1-x", 0}, {"1cr", "1rc", 0}, {"1a1", "1-alpha-1", 0}, {"1b2", "1-beta-2", 0},
		{"1m3", "1-milestone-3", 0}, {"1X", "1x", 0}, {"1Cr", "1Rc", 0}, {"1m3", "1MILESTONE3", 0},
		{"1ga", "1", 0}, {"1final", "1", 0}, {"1release", "1", 0},
		{"0000000000000000001", "1", 0}, {"000000000000000000", "0", 0},
		{"1.0-alpha-1", "1.0", -1}, {"1.0-alpha-1", "1.0-beta-1", -1}, {"1.0-SNAPSHOT", "1.0", -1},
		{"1.0-alpha-1-SNAPSHOT", "1.0-alpha-1", -1}, {"1.0", "1.0-1", -1}, {"1.0.0", "1.0-1", -1},
		{"2.0-1", "2.0.1", -1}, {"2.0.1-klm", "2.0.1-lmn", -1}, {"2.0.1", "2.0.1-xyz", -1},
		{"2.0.1", "2.0.1-123", -1}, {"2.0.1-xyz", "2.0.1-123", -1}, {"0.7", "2", -1},
		{"2.12.6.1", "2.12.7", -1}, {"2.9.10.8", "2.10.0", -1}, {"5.3.18", "5.3.2", 1},
	})
	checkInvalid(t, Maven, []string{"", "  "})
}

func TestRubyGems(t *testing.T) {
	// rubygems' test_gem_version.rb.
	checkOrder(t, RubyGems, []string{
		"0.9", "1.0.a", "1.0.a.2", "1.0.a.10", "1.0.b1", "1.0.pre", "1.0.rc1", "1.0", "1.0.1",
		"1.1.a", "1.1-1", "1.1.rc1", "1.1", "1.8.2.a", "1.8.2", "1.9.2.99", "1.9.3", "1.9.3.1", "2",
	})
	checkPairs(t, RubyGems, []pair{
		{"1.0", "1", 0}, {"1.0.0", "1", 0}, {"1.0.b", "1.0.0.b", 0}, {"1.2.b1", "1.2.b.1", 0},
		{"", "0", 0}, {" 1.0 ", "1.0", 0}, {"1.0.A", "1.0.a", -1}, {"1.2.a.10", "1.2.a.9", 1},
		{"6.1.7.7", "6.1.7.10", -1}, {"7.0.8", "7.0.8.1", -1},
	})
	checkInvalid(t, RubyGems, []string{"junk", "1.0\n2.0", "1..2", "1.0-", "v1.0", "1.0+1"})
}

func TestGeneric(t *testing.T) {
	checkOrder(t, Generic, []string{"1.0-alpha", "1.0-beta", "1.0", "1.0.1", "1.0.10", "1.2", "v2.0", "10"})
}

func TestForEcosystem(t *testing.T) {
	for eco, want := range map[string]Scheme{
		"Debian:12": Debian, "Ubuntu:22.04:LTS": Debian, "Alpine:v3.19": Alpine, "Go": SemVer,
		"npm": SemVer, "crates.io": SemVer, "PyPI": PEP440, "Maven": Maven, "RubyGems": RubyGems,
		"Red Hat:enterprise_linux:9::appstream": RPM, "NuGet": NuGet, "Packagist": Generic,
	} {
		if got, ok := ForEcosystem(eco); !ok || got != want {
			t.Errorf("ForEcosystem(%q) = %v, %v; want %v", eco, got, ok, want)
		}
	}
	if _, ok := ForEcosystem("Nonesuch"); ok {
		t.Error("ForEcosystem knows an ecosystem that does not exist")
	}
}

func TestTooLong(t *testing.T) {
	long := make([]byte, maxLen+1)
	for i := range long {
		long[i] = '1'
	}
	for s := Generic; s <= NuGet; s++ {
		if _, err := s.Parse(string(long)); err == nil {
			t.Errorf("%s: a %d-byte version was accepted", s, len(long))
		}
	}
}
