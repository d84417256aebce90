// Package version compares package versions by the rules of each ecosystem's own
// package manager: dpkg for Debian and Ubuntu, apk for Alpine, rpm for the RPM
// distributions, Semantic Versioning 2.0 for Go, npm, crates.io and the like, PEP 440 for
// PyPI, Maven's ComparableVersion for Maven, and Gem::Version for RubyGems.
//
// It needs nothing from the kernel and does no I/O.
//
// Traps:
//   - Versions of different schemes do not compare: Version.Compare assumes both sides
//     came from the same Scheme's Parse (Compare on the Scheme checks that for you).
//   - A version that a package manager itself would reject is an error here, never a
//     guess, so a range is not evaluated against a misread version. The few forms a
//     package manager only warns about (dpkg's upstream version not starting with a
//     digit) are accepted, as the manager does.
//   - Parse allocates; comparing two parsed versions does not. Callers that compare one
//     version against many (a package against every event of every range) parse it
//     once.
package version
