package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/api"
	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/internal/scan"
)

// imageScanner answers every scan with one finding naming the target; the real scanner
// is a child process (cmd/vigil), run by the integration test.
type imageScanner struct{}

func (imageScanner) Scan(_ context.Context, kind, ref string) (*scan.Report, error) {
	return &scan.Report{
		Inventory: scan.Inventory{Target: scan.Target{Kind: kind, Name: ref}, Packages: []scan.Package{{Name: "openssl"}}},
		Findings: []scan.Finding{{ID: "CVE-2026-45445", Severity: scan.SeverityHigh,
			Package: scan.Package{Name: "openssl", Version: "3.0.19-1~deb12u2", Location: "/var/lib/dpkg/status"}, FixedVersion: "3.0.20-1~deb12u2"}},
		ScannedAt: time.Now(),
	}, nil
}

func newVulnHandler(t *testing.T) http.Handler {
	t.Helper()
	reg := newFake(true)
	v := controller.NewVulnerabilities(imageScanner{}, reg.List, nil, controller.VulnConfig{Poll: 5 * time.Millisecond}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { v.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for {
		all := v.List(controller.VulnQuery{})
		ok := len(all) == 4
		for _, vt := range all {
			ok = ok && vt.State == controller.ScanDone
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scans not done: %+v", all)
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv, err := api.NewServer(reg, testToken, testVersion, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv.SetVulnerabilities(v)
	return srv.Handler()
}

func TestVulnerabilities(t *testing.T) {
	h := newVulnHandler(t)
	for _, tt := range []struct {
		query string
		want  []string // kind/name of each entry
	}{
		{"", []string{"host/testhost", "container/db", "container/web-1", "container/web-2"}},
		{"?workload=web-1", []string{"container/web-1"}},
		{"?workload=bbbb", []string{"container/db"}},
		{"?host=true", []string{"host/testhost"}},
		{"?host=false&severity=critical", []string{"container/db", "container/web-1", "container/web-2"}},
		{"?image=example/db:1.0", []string{"container/db"}},
		{"?image=sha256:1111", []string{"container/db", "container/web-1", "container/web-2"}},
	} {
		var got []controller.VulnTarget
		decodeOK(t, serve(t, h, http.MethodGet, "/api/v1/vulnerabilities"+tt.query, bearer), &got)
		var names []string
		for _, vt := range got {
			names = append(names, vt.Kind+"/"+vt.WorkloadName)
		}
		if strings.Join(names, " ") != strings.Join(tt.want, " ") {
			t.Errorf("GET %s = %v, want %v", tt.query, names, tt.want)
		}
		for _, vt := range got {
			n := 1
			if strings.Contains(tt.query, "severity=critical") {
				n = 0
			}
			if len(vt.Findings) != n || vt.State != controller.ScanDone {
				t.Errorf("GET %s: %s has %d findings (state %s), want %d", tt.query, vt.WorkloadName, len(vt.Findings), vt.State, n)
			}
		}
	}
}

func TestVulnerabilitiesRejects(t *testing.T) {
	h := newVulnHandler(t)
	for _, tt := range []struct {
		method, target string
		code           int
	}{
		{http.MethodGet, "/api/v1/vulnerabilities?bogus=1", http.StatusBadRequest},
		{http.MethodGet, "/api/v1/vulnerabilities?workload=a&workload=b", http.StatusBadRequest},
		{http.MethodGet, "/api/v1/vulnerabilities?workload=%2Fetc%2Fpasswd%00", http.StatusBadRequest},
		{http.MethodGet, "/api/v1/vulnerabilities?workload=nosuch", http.StatusNotFound},
		{http.MethodGet, "/api/v1/vulnerabilities?workload=aaaa", http.StatusConflict}, // web-1 and web-2
		{http.MethodGet, "/api/v1/vulnerabilities?host=yes", http.StatusBadRequest},
		{http.MethodGet, "/api/v1/vulnerabilities?severity=urgent", http.StatusBadRequest},
		{http.MethodGet, "/api/v1/vulnerabilities?image=" + strings.Repeat("a", 300), http.StatusBadRequest},
		{http.MethodGet, "/api/v1/vulnerabilities?image=..%2F..", http.StatusBadRequest},
		{http.MethodPost, "/api/v1/vulnerabilities", http.StatusMethodNotAllowed},
		{http.MethodGet, "/api/v1/vulnerabilities/scan", http.StatusMethodNotAllowed},
		{http.MethodPost, "/api/v1/vulnerabilities/scan?now=1", http.StatusBadRequest},
	} {
		errorMessage(t, serve(t, h, tt.method, tt.target, bearer), tt.code)
	}
	if rec := serve(t, h, http.MethodGet, "/api/v1/vulnerabilities", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("without a token: %d", rec.Code)
	}
}

func TestVulnerabilitiesRescan(t *testing.T) {
	h := newVulnHandler(t)
	rec := serve(t, h, http.MethodPost, "/api/v1/vulnerabilities/scan", bearer)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("POST scan: %d %s", rec.Code, rec.Body)
	}
	checkJSON(t, rec)
	if !strings.Contains(rec.Body.String(), `"queued": 2`) { // the host and the one image
		t.Errorf("answer %s, want 2 queued", rec.Body)
	}
}

// Without SetVulnerabilities the endpoints do not exist.
func TestVulnerabilitiesNotServed(t *testing.T) {
	h := newHandler(newFake(true))
	errorMessage(t, serve(t, h, http.MethodGet, "/api/v1/vulnerabilities", bearer), http.StatusNotFound)
}
