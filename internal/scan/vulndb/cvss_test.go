package vulndb

import (
	"testing"

	"github.com/vigil-sec/vigil/internal/scan"
)

func TestCVSS3Score(t *testing.T) {
	// Scores as NVD and the FIRST calculator give them.
	for _, c := range []struct {
		vector string
		score  float64
		sev    string
	}{
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, scan.SeverityCritical},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, scan.SeverityCritical},
		{"CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.1, scan.SeverityHigh},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, scan.SeverityHigh},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, scan.SeverityMedium},
		{"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8, scan.SeverityHigh},
		{"CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4, scan.SeverityMedium},
		{"CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", 3.1, scan.SeverityLow},
		{"CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", 7.2, scan.SeverityHigh},
		{"CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 6.5, scan.SeverityMedium},
		{"CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6, scan.SeverityLow},
		{"CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:C/C:H/I:H/A:H", 7.2, scan.SeverityHigh},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5, scan.SeverityHigh}, // CVE-2014-0160
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0, scan.SeverityLow},
		// Temporal and environmental metrics do not change the base score.
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C/MAV:L", 9.8, scan.SeverityCritical},
	} {
		got, err := CVSS3Score(c.vector)
		if err != nil {
			t.Errorf("%s: %v", c.vector, err)
			continue
		}
		if got != c.score || severityV3(got) != c.sev {
			t.Errorf("%s = %v (%s), want %v (%s)", c.vector, got, severityV3(got), c.score, c.sev)
		}
	}
	for _, bad := range []string{
		"", "CVSS:3.1", "CVSS:2.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",          // A missing
		"CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",      // bad value
		"CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", // twice
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/ZZ:Q",
	} {
		if s, err := CVSS3Score(bad); err == nil {
			t.Errorf("%q scored %v, want an error", bad, s)
		}
	}
}

func TestCVSS2Score(t *testing.T) {
	for _, c := range []struct {
		vector string
		score  float64
	}{
		{"AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5},
		{"AV:N/AC:M/Au:N/C:N/I:P/A:N", 4.3},
		{"AV:L/AC:L/Au:N/C:C/I:C/A:C", 7.2},
		{"AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0},
		{"AV:N/AC:L/Au:S/C:P/I:N/A:N", 4.0},
		{"(AV:N/AC:M/Au:N/C:P/I:P/A:P)", 6.8},
		{"AV:N/AC:L/Au:N/C:N/I:N/A:N", 0},
	} {
		got, err := CVSS2Score(c.vector)
		if err != nil || got != c.score {
			t.Errorf("%s = %v, %v; want %v", c.vector, got, err, c.score)
		}
	}
	if _, err := CVSS2Score("AV:N/AC:L"); err == nil {
		t.Error("an incomplete v2 vector was scored")
	}
}

func FuzzCVSS3(f *testing.F) {
	f.Add("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
	f.Add("CVSS:3.0/AV:P/AC:H/PR:H/UI:R/S:C/C:L/I:N/A:N/E:X")
	f.Fuzz(func(t *testing.T, v string) {
		s, err := CVSS3Score(v)
		if err == nil && (s < 0 || s > 10) {
			t.Fatalf("%q scored %v", v, s)
		}
	})
}
