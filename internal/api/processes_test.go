package api_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/api"
	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/internal/policy"
)

func newProcessHandler(t *testing.T) (http.Handler, *controller.ProcessEngine) {
	t.Helper()
	e, err := controller.NewProcessEngine(nil, controller.NewEvents(10), func(string, string) policy.Mode { return policy.ModeMonitor },
		"/proc", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.NewServer(newFake(true), testToken, testVersion, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv.SetProcesses(e)
	return srv.Handler(), e
}

func put(h http.Handler, target, auth, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPut, target, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestPutProfiles(t *testing.T) {
	h, e := newProcessHandler(t)
	good := `{"profiles":[{"group":"vigil.web","entries":[{"exe":"/usr/sbin/nginx","name":"nginx","uid":101}]}]}`
	if rec := put(h, "/api/v1/profiles", "", good); rec.Code != http.StatusUnauthorized {
		t.Errorf("without a token: %d", rec.Code)
	}
	rec := put(h, "/api/v1/profiles", bearer, good)
	checkJSON(t, rec)
	if rec.Code != http.StatusOK {
		b, _ := io.ReadAll(rec.Body)
		t.Fatalf("PUT: %d %s", rec.Code, b)
	}
	if p, ok := e.Profile("vigil.web"); !ok || len(p.Entries) != 1 || p.Entries[0].Exe != "/usr/sbin/nginx" {
		t.Fatalf("profile after PUT: %+v", p)
	}
	for name, body := range map[string]string{
		"not JSON":       `{"profiles":`,
		"unknown field":  `{"profiles":[],"extra":1}`,
		"twice":          `{"profiles":[{"group":"vigil.a","entries":[]},{"group":"vigil.a","entries":[]}]}`,
		"relative exe":   `{"profiles":[{"group":"vigil.web","entries":[{"exe":"nginx","name":"nginx","uid":0}]}]}`,
		"bad group name": `{"profiles":[{"group":"../etc","entries":[]}]}`,
	} {
		rec := put(h, "/api/v1/profiles", bearer, body)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, rec.Code)
		}
		checkJSON(t, rec)
	}
	if p, _ := e.Profile("vigil.web"); len(p.Entries) != 1 || p.Entries[0].Name != "nginx" {
		t.Errorf("refused requests changed the profile: %+v", p)
	}
}
