//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/audit"
)

// TestAuditInServer checks that vigil up audits at start and on demand, and that the
// report covers every section.
func TestAuditInServer(t *testing.T) {
	v := startVigil(t)
	tok := readToken(t, v)
	var rep audit.Report
	eventually(t, 60*time.Second, "the audit at start", func() (bool, string) {
		code, body := apiCall(t, v, tok, http.MethodGet, "/api/v1/audit")
		if code != http.StatusOK {
			return false, fmt.Sprintf("%d %s", code, body)
		}
		return json.Unmarshal(body, &rep) == nil, string(body)
	})
	sections := map[string]int{}
	for _, r := range rep.Results {
		sections[r.Section]++
	}
	for _, s := range []string{"1", "2", "3", "4", "5", "6"} {
		if sections[s] == 0 {
			t.Errorf("the report has no section %s results: %v", s, sections)
		}
	}
	if rep.Summary.Total != len(rep.Results) || rep.DockerVersion == "" {
		t.Errorf("summary %+v for %d results, docker %q", rep.Summary, len(rep.Results), rep.DockerVersion)
	}
	code, body := apiCall(t, v, tok, http.MethodPost, "/api/v1/audit/run")
	if code != http.StatusOK {
		t.Fatalf("POST /api/v1/audit/run: %d %s", code, body)
	}
	if code, _ := apiCall(t, v, "", http.MethodPost, "/api/v1/audit/run"); code != http.StatusUnauthorized {
		t.Errorf("audit run without token: %d", code)
	}
	if code, _ := apiCall(t, v, tok, http.MethodGet, "/api/v1/audit/run"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET on the run endpoint: %d", code)
	}
	if code, body := apiCall(t, v, tok, http.MethodGet, "/api/v1/events?type=audit.changed"); code != http.StatusOK {
		t.Errorf("events: %d %s", code, body)
	}
}
