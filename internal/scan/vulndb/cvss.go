package vulndb

import (
	"fmt"
	"math"
	"strings"

	"github.com/vigil-sec/vigil/internal/scan"
)

// cvss3 holds the CVSS v3.0/v3.1 base metric weights (CVSS v3.1 specification, section
// 7.4).
var cvss3 = map[string]map[string]float64{
	"AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
	"AC": {"L": 0.77, "H": 0.44},
	"PR": {"N": 0.85, "L": 0.62, "H": 0.27}, // L and H change when the scope changes
	"UI": {"N": 0.85, "R": 0.62},
	"S":  {"U": 0, "C": 0},
	"C":  {"H": 0.56, "L": 0.22, "N": 0},
	"I":  {"H": 0.56, "L": 0.22, "N": 0},
	"A":  {"H": 0.56, "L": 0.22, "N": 0},
}

// cvss3Optional lists the temporal and environmental metrics a v3 vector may carry; they
// do not change the base score but must be well-formed.
var cvss3Optional = map[string]string{
	"E": "XUPFH", "RL": "XOTWU", "RC": "XURC", "CR": "XLMH", "IR": "XLMH", "AR": "XLMH",
	"MAV": "XNALP", "MAC": "XLH", "MPR": "XNLH", "MUI": "XNR", "MS": "XUC", "MC": "XNLH",
	"MI": "XNLH", "MA": "XNLH",
}

// CVSS3Score computes the base score of a CVSS v3.0 or v3.1 vector exactly as the
// specification does, including each version's rounding.
func CVSS3Score(vector string) (float64, error) {
	parts := strings.Split(vector, "/")
	if len(parts) < 9 || (parts[0] != "CVSS:3.0" && parts[0] != "CVSS:3.1") {
		return 0, fmt.Errorf("not a CVSS v3 vector: %q", vector)
	}
	v31 := parts[0] == "CVSS:3.1"
	m := map[string]string{}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, ":")
		if !ok || v == "" {
			return 0, fmt.Errorf("CVSS vector %q: bad metric %q", vector, p)
		}
		if _, dup := m[k]; dup {
			return 0, fmt.Errorf("CVSS vector %q: metric %s given twice", vector, k)
		}
		if w, base := cvss3[k]; base {
			if _, ok := w[v]; !ok {
				return 0, fmt.Errorf("CVSS vector %q: bad value %s:%s", vector, k, v)
			}
		} else if allowed, ok := cvss3Optional[k]; !ok || len(v) != 1 || !strings.Contains(allowed, v) {
			return 0, fmt.Errorf("CVSS vector %q: bad metric %s:%s", vector, k, v)
		}
		m[k] = v
	}
	for k := range cvss3 {
		if _, ok := m[k]; !ok {
			return 0, fmt.Errorf("CVSS vector %q: base metric %s missing", vector, k)
		}
	}
	changed := m["S"] == "C"
	pr := cvss3["PR"][m["PR"]]
	if changed {
		switch m["PR"] {
		case "L":
			pr = 0.68
		case "H":
			pr = 0.5
		}
	}
	iss := 1 - (1-cvss3["C"][m["C"]])*(1-cvss3["I"][m["I"]])*(1-cvss3["A"][m["A"]])
	var impact float64
	if changed {
		impact = 7.52*(iss-0.029) - 3.25*math.Pow(iss-0.02, 15)
	} else {
		impact = 6.42 * iss
	}
	exploitability := 8.22 * cvss3["AV"][m["AV"]] * cvss3["AC"][m["AC"]] * pr * cvss3["UI"][m["UI"]]
	if impact <= 0 {
		return 0, nil
	}
	roundup := roundup30
	if v31 {
		roundup = roundup31
	}
	if changed {
		return roundup(math.Min(1.08*(impact+exploitability), 10)), nil
	}
	return roundup(math.Min(impact+exploitability, 10)), nil
}

// roundup31 is CVSS v3.1's Roundup (Appendix A): integer arithmetic so that 4.000001
// does not become 4.1 through floating-point error.
func roundup31(x float64) float64 {
	i := int64(math.Round(x * 100000))
	if i%10000 == 0 {
		return float64(i) / 100000
	}
	return float64(i/10000+1) / 10
}

// roundup30 is CVSS v3.0's round up: the smallest one-decimal number not below x.
func roundup30(x float64) float64 { return math.Ceil(x*10) / 10 }

var cvss2 = map[string]map[string]float64{
	"AV": {"L": 0.395, "A": 0.646, "N": 1.0},
	"AC": {"H": 0.35, "M": 0.61, "L": 0.71},
	"Au": {"M": 0.45, "S": 0.56, "N": 0.704},
	"C":  {"N": 0, "P": 0.275, "C": 0.660},
	"I":  {"N": 0, "P": 0.275, "C": 0.660},
	"A":  {"N": 0, "P": 0.275, "C": 0.660},
}

// CVSS2Score computes the base score of a CVSS v2 vector (CVSS v2 guide, section 3.2.1).
func CVSS2Score(vector string) (float64, error) {
	s := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(vector, "("), "CVSS:2.0/"), ")")
	m := map[string]string{}
	for _, p := range strings.Split(s, "/") {
		k, v, ok := strings.Cut(p, ":")
		if !ok {
			return 0, fmt.Errorf("CVSS v2 vector %q: bad metric %q", vector, p)
		}
		if w, base := cvss2[k]; base {
			if _, ok := w[v]; !ok {
				return 0, fmt.Errorf("CVSS v2 vector %q: bad value %s:%s", vector, k, v)
			}
			if _, dup := m[k]; dup {
				return 0, fmt.Errorf("CVSS v2 vector %q: metric %s given twice", vector, k)
			}
			m[k] = v
		}
	}
	if len(m) != len(cvss2) {
		return 0, fmt.Errorf("CVSS v2 vector %q: base metrics missing", vector)
	}
	impact := 10.41 * (1 - (1-cvss2["C"][m["C"]])*(1-cvss2["I"][m["I"]])*(1-cvss2["A"][m["A"]]))
	exploitability := 20 * cvss2["AV"][m["AV"]] * cvss2["AC"][m["AC"]] * cvss2["Au"][m["Au"]]
	f := 1.176
	if impact == 0 {
		f = 0
	}
	score := (0.6*impact + 0.4*exploitability - 1.5) * f
	return math.Round(score*10) / 10, nil
}

// severityV3 maps a v3 (or v4) base score to its qualitative rating. A score of 0.0
// ("None") is reported as low: the advisory exists, the scale has no lower level here.
func severityV3(score float64) string {
	switch {
	case score >= 9.0:
		return scan.SeverityCritical
	case score >= 7.0:
		return scan.SeverityHigh
	case score >= 4.0:
		return scan.SeverityMedium
	}
	return scan.SeverityLow
}

// severityV2 maps a v2 base score as NVD does: v2 has no critical.
func severityV2(score float64) string {
	switch {
	case score >= 7.0:
		return scan.SeverityHigh
	case score >= 4.0:
		return scan.SeverityMedium
	}
	return scan.SeverityLow
}

// severityLabel maps the words databases use (GHSA's MODERATE, Debian's urgency, Red
// Hat's Important, Ubuntu's priority) to a severity; "" when the word is not one.
func severityLabel(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical":
		return scan.SeverityCritical
	case "high", "important":
		return scan.SeverityHigh
	case "medium", "moderate":
		return scan.SeverityMedium
	case "low", "negligible", "unimportant", "minor":
		return scan.SeverityLow
	}
	return ""
}
