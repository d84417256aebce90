package version

import "testing"

// fuzzScheme checks that parsing never panics and that a parsed version compares
// antisymmetrically and consistently with itself.
func fuzzScheme(f *testing.F, s Scheme, seeds ...string) {
	for i := range seeds {
		f.Add(seeds[i], seeds[(i+1)%len(seeds)])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, errA := s.Parse(a)
		vb, errB := s.Parse(b)
		if errA != nil || errB != nil {
			return
		}
		if c := va.Compare(va); c != 0 {
			t.Fatalf("%s: %q vs itself = %d", s, a, c)
		}
		ab, ba := va.Compare(vb), vb.Compare(va)
		if ab != -ba || ab < -1 || ab > 1 {
			t.Fatalf("%s: compare(%q, %q) = %d but compare(%q, %q) = %d", s, a, b, ab, b, a, ba)
		}
	})
}

func FuzzDebian(f *testing.F) {
	fuzzScheme(f, Debian, "1.0~rc1-1", "1:2.3+dfsg-4+deb12u1", "0", "1.0-0", "2.36-9+deb12u4")
}
func FuzzRPM(f *testing.F) {
	fuzzScheme(f, RPM, "1.0^git1~pre", "1:3.0.7-24.el9", "5.5p10", "+_", "1.0~rc1")
}
func FuzzAlpine(f *testing.F) {
	fuzzScheme(f, Alpine, "1.0.4-r3", "0.1.0_alpha_pre2", "1.02", "1.0~abc-r1", "2.3.0b-r1")
}
func FuzzSemVer(f *testing.F) {
	fuzzScheme(f, SemVer, "v1.2.3-rc.1+build", "1.21rc2", "0.0.0-0", "v2.0.0+incompatible", "1.0.0-alpha.beta")
}
func FuzzPEP440(f *testing.F) {
	fuzzScheme(f, PEP440, "1!1.0a1.post2.dev3+abc.5", "1.0-1", "1.0.dev0", "1.0rc1", "2.0")
}
func FuzzMaven(f *testing.F) {
	fuzzScheme(f, Maven, "1-alpha2snapshot", "2.0.0.a", "1-0.alpha", "6.1H.5-beta", "1.0-SNAPSHOT")
}
func FuzzRubyGems(f *testing.F) {
	fuzzScheme(f, RubyGems, "1.0.a.10", "1.1-1", "0", "1.8.2.a", "2")
}
func FuzzGeneric(f *testing.F) {
	fuzzScheme(f, Generic, "1.0-beta", "v2.0", "10", "1.0.10", "x")
}
