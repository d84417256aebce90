package api

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/internal/policy"
	"github.com/vigil-sec/vigil/internal/workload"
	"github.com/vigil-sec/vigil/web"
)

const consoleTestToken = "vgl_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

type consoleWorkloads struct{}

func (consoleWorkloads) List() []workload.Workload {
	return []workload.Workload{{ID: "host", Name: "host", Kind: workload.KindHost}}
}
func (consoleWorkloads) Get(string) (workload.Workload, error) {
	return workload.Workload{}, workload.ErrNotFound
}
func (consoleWorkloads) Groups() []workload.Group { return nil }
func (consoleWorkloads) Status() workload.Status  { return workload.Status{Connected: true} }

// fakeClock is a settable clock for the console's expiries.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newConsoleServer(t *testing.T) (*Server, http.Handler, *fakeClock) {
	t.Helper()
	s, err := NewServer(consoleWorkloads{}, consoleTestToken, "test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	events := controller.NewEvents(10)
	engine, err := controller.NewPolicyEngine(policy.Policy{}, nil, events, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.SetPolicy(engine)
	clock := &fakeClock{t: time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)}
	s.console.now = clock.now
	return s, s.Handler(), clock
}

type req struct {
	method, target, body string
	bearer               bool
	cookie               string
	headers              map[string]string
}

func do(t *testing.T, h http.Handler, r req) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.target, body)
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.bearer {
		hr.Header.Set("Authorization", "Bearer "+consoleTestToken)
	}
	if r.cookie != "" {
		hr.AddCookie(&http.Cookie{Name: sessionCookie, Value: r.cookie})
	}
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, hr)
	return rec
}

var consoleHdr = map[string]string{consoleHeader: "1"}

func loginCode(t *testing.T, h http.Handler) LoginCode {
	t.Helper()
	rec := do(t, h, req{method: http.MethodPost, target: "/api/v1/console/login-codes", bearer: true})
	if rec.Code != http.StatusCreated {
		t.Fatalf("login code: %d %s", rec.Code, rec.Body)
	}
	var lc LoginCode
	if err := json.Unmarshal(rec.Body.Bytes(), &lc); err != nil {
		t.Fatal(err)
	}
	if len(lc.Code) != 64 || lc.Path != "/#/login/"+lc.Code {
		t.Fatalf("login code = %+v", lc)
	}
	return lc
}

// signIn exchanges a body for a session and returns the cookie's value.
func signIn(t *testing.T, h http.Handler, body string) string {
	t.Helper()
	rec := do(t, h, req{method: http.MethodPost, target: "/api/v1/console/session", body: body, headers: consoleHdr})
	if rec.Code != http.StatusOK {
		t.Fatalf("sign in with %s: %d %s", body, rec.Code, rec.Body)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("sign in set %d cookies", len(cookies))
	}
	c := cookies[0]
	if c.Name != sessionCookie || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure || c.MaxAge <= 0 {
		t.Errorf("session cookie = %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP, with a lifetime", c)
	}
	if strings.Contains(rec.Body.String(), c.Value) {
		t.Error("the session id is in the body, where scripts can read it")
	}
	return c.Value
}

func TestConsoleLoginCode(t *testing.T) {
	_, h, clock := newConsoleServer(t)
	lc := loginCode(t, h)
	sess := signIn(t, h, `{"code":"`+lc.Code+`"}`)

	if rec := do(t, h, req{method: http.MethodGet, target: "/api/v1/workloads", cookie: sess}); rec.Code != http.StatusOK {
		t.Errorf("GET with the session: %d %s", rec.Code, rec.Body)
	}
	// The code works once.
	rec := do(t, h, req{method: http.MethodPost, target: "/api/v1/console/session", body: `{"code":"` + lc.Code + `"}`, headers: consoleHdr})
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "used") {
		t.Errorf("second use of a code: %d %s", rec.Code, rec.Body)
	}
	// And only for a short while.
	late := loginCode(t, h)
	clock.add(loginCodeTTL)
	if rec := do(t, h, req{method: http.MethodPost, target: "/api/v1/console/session", body: `{"code":"` + late.Code + `"}`, headers: consoleHdr}); rec.Code != http.StatusUnauthorized {
		t.Errorf("expired code: %d %s", rec.Code, rec.Body)
	}
	// The session ends too.
	clock.add(sessionTTL)
	if rec := do(t, h, req{method: http.MethodGet, target: "/api/v1/workloads", cookie: sess}); rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "sign in again") {
		t.Errorf("expired session: %d %s", rec.Code, rec.Body)
	}
}

func TestConsoleLoginRefusals(t *testing.T) {
	_, h, _ := newConsoleServer(t)
	lc := loginCode(t, h)
	cases := []struct {
		name    string
		body    string
		headers map[string]string
		target  string
	}{
		{name: "no console header", body: `{"code":"` + lc.Code + `"}`},
		{name: "other origin", body: `{"code":"` + lc.Code + `"}`, headers: map[string]string{consoleHeader: "1", "Origin": "http://evil.example"}},
		{name: "cross-site fetch", body: `{"code":"` + lc.Code + `"}`, headers: map[string]string{consoleHeader: "1", "Sec-Fetch-Site": "cross-site"}},
		{name: "unknown code", body: `{"code":"` + strings.Repeat("0", 64) + `"}`, headers: consoleHdr},
		{name: "wrong token", body: `{"token":"vgl_` + strings.Repeat("1", 64) + `"}`, headers: consoleHdr},
		{name: "code and token", body: `{"code":"` + lc.Code + `","token":"` + consoleTestToken + `"}`, headers: consoleHdr},
		{name: "empty", body: `{}`, headers: consoleHdr},
		{name: "not JSON", body: `code=1`, headers: consoleHdr},
		{name: "unknown field", body: `{"password":"x"}`, headers: consoleHdr},
		{name: "huge code", body: `{"code":"` + strings.Repeat("a", 5000) + `"}`, headers: consoleHdr},
		{name: "query", body: `{"code":"` + lc.Code + `"}`, headers: consoleHdr, target: "/api/v1/console/session?x=1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target := c.target
			if target == "" {
				target = "/api/v1/console/session"
			}
			rec := do(t, h, req{method: http.MethodPost, target: target, body: c.body, headers: c.headers})
			if rec.Code != http.StatusUnauthorized || len(rec.Result().Cookies()) != 0 {
				t.Errorf("%d %s, cookies %v: want 401 and no cookie", rec.Code, rec.Body, rec.Result().Cookies())
			}
			if strings.Contains(rec.Body.String(), consoleTestToken) {
				t.Error("the answer quotes the token")
			}
		})
	}
	// None of the refusals used up the code.
	signIn(t, h, `{"code":"`+lc.Code+`"}`)
}

func TestConsoleSessionRules(t *testing.T) {
	_, h, _ := newConsoleServer(t)
	sess := signIn(t, h, `{"token":"`+consoleTestToken+`"}`)

	mode := `{"mode":"monitor"}`
	cases := []struct {
		name    string
		r       req
		want    int
		wantMsg string
	}{
		{name: "read", r: req{method: http.MethodGet, target: "/api/v1/policy", cookie: sess}, want: http.StatusOK},
		{name: "change with the header", r: req{method: http.MethodPut, target: "/api/v1/groups/vigil.web/mode", body: mode, cookie: sess, headers: consoleHdr}, want: http.StatusOK},
		{name: "change without the header", r: req{method: http.MethodPut, target: "/api/v1/groups/vigil.web/mode", body: mode, cookie: sess}, want: http.StatusForbidden, wantMsg: consoleHeader},
		{name: "change from another origin", r: req{method: http.MethodPut, target: "/api/v1/groups/vigil.web/mode", body: mode, cookie: sess, headers: map[string]string{consoleHeader: "1", "Origin": "http://127.0.0.1.evil.example"}}, want: http.StatusForbidden, wantMsg: "origin"},
		{name: "change from this origin", r: req{method: http.MethodPut, target: "/api/v1/groups/vigil.web/mode", body: mode, cookie: sess, headers: map[string]string{consoleHeader: "1", "Origin": "http://example.com"}}, want: http.StatusOK},
		{name: "cross-site read", r: req{method: http.MethodGet, target: "/api/v1/policy", cookie: sess, headers: map[string]string{"Sec-Fetch-Site": "cross-site"}}, want: http.StatusForbidden},
		{name: "same-site read", r: req{method: http.MethodGet, target: "/api/v1/policy", cookie: sess, headers: map[string]string{"Sec-Fetch-Site": "same-site"}}, want: http.StatusForbidden},
		{name: "unknown session", r: req{method: http.MethodGet, target: "/api/v1/policy", cookie: strings.Repeat("a", 64)}, want: http.StatusUnauthorized},
		{name: "session cannot mint codes", r: req{method: http.MethodPost, target: "/api/v1/console/login-codes", cookie: sess, headers: consoleHdr}, want: http.StatusForbidden},
		{name: "whoami", r: req{method: http.MethodGet, target: "/api/v1/console/session", cookie: sess}, want: http.StatusOK, wantMsg: `"via": "session"`},
		{name: "whoami by token", r: req{method: http.MethodGet, target: "/api/v1/console/session", bearer: true}, want: http.StatusOK, wantMsg: `"via": "token"`},
		{name: "whoami without", r: req{method: http.MethodGet, target: "/api/v1/console/session"}, want: http.StatusUnauthorized},
		{name: "codes need credentials", r: req{method: http.MethodPost, target: "/api/v1/console/login-codes"}, want: http.StatusUnauthorized},
		{name: "stream with the cookie", r: req{method: http.MethodGet, target: "/api/v1/console/session", cookie: sess, headers: map[string]string{"Accept": "text/event-stream"}}, want: http.StatusOK},
		{name: "a bearer token needs no console header", r: req{method: http.MethodPut, target: "/api/v1/groups/vigil.db/mode", body: mode, bearer: true}, want: http.StatusOK},
		{name: "a wrong bearer token is not saved by a cookie", r: req{method: http.MethodGet, target: "/api/v1/policy", cookie: sess, headers: map[string]string{"Authorization": "Bearer vgl_" + strings.Repeat("2", 64)}}, want: http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := do(t, h, c.r)
			if rec.Code != c.want || !strings.Contains(rec.Body.String(), c.wantMsg) {
				t.Errorf("%d %s: want %d with %q", rec.Code, rec.Body, c.want, c.wantMsg)
			}
		})
	}

	// Signing out ends the session and clears the cookie.
	rec := do(t, h, req{method: http.MethodDelete, target: "/api/v1/console/session", cookie: sess, headers: consoleHdr})
	if rec.Code != http.StatusNoContent {
		t.Fatalf("sign out: %d %s", rec.Code, rec.Body)
	}
	if c := rec.Result().Cookies(); len(c) != 1 || c[0].MaxAge >= 0 {
		t.Errorf("sign out cookies = %+v, want the cookie cleared", c)
	}
	if rec := do(t, h, req{method: http.MethodGet, target: "/api/v1/policy", cookie: sess}); rec.Code != http.StatusUnauthorized {
		t.Errorf("after sign out: %d", rec.Code)
	}
}

func TestConsoleBounds(t *testing.T) {
	s, h, _ := newConsoleServer(t)
	first := loginCode(t, h)
	for range maxLoginCodes {
		loginCode(t, h)
	}
	s.console.mu.Lock()
	n := len(s.console.codes)
	s.console.mu.Unlock()
	if n != maxLoginCodes {
		t.Errorf("%d codes kept, want %d", n, maxLoginCodes)
	}
	if rec := do(t, h, req{method: http.MethodPost, target: "/api/v1/console/session", body: `{"code":"` + first.Code + `"}`, headers: consoleHdr}); rec.Code != http.StatusUnauthorized {
		t.Errorf("the oldest code outlived the bound: %d", rec.Code)
	}
	for range maxSessions + 5 {
		signIn(t, h, `{"token":"`+consoleTestToken+`"}`)
	}
	s.console.mu.Lock()
	n = len(s.console.sessions)
	s.console.mu.Unlock()
	if n != maxSessions {
		t.Errorf("%d sessions kept, want %d", n, maxSessions)
	}
}

func TestConsolePages(t *testing.T) {
	_, h, _ := newConsoleServer(t)
	_, buildErr := web.Console()
	built := buildErr == nil
	if buildErr != nil && !errors.Is(buildErr, web.ErrNotBuilt) {
		t.Fatal(buildErr)
	}
	for _, target := range []string{"/", "/index.html"} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			rec := do(t, h, req{method: method, target: target})
			wantCode := http.StatusOK
			if !built {
				wantCode = http.StatusServiceUnavailable
			}
			if rec.Code != wantCode || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
				t.Errorf("%s %s: %d %q", method, target, rec.Code, rec.Header().Get("Content-Type"))
			}
			csp := rec.Header().Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("%s %s: CSP %q lacks %q", method, target, csp, want)
				}
			}
			if strings.Contains(csp, "unsafe") {
				t.Errorf("CSP %q allows something unsafe", csp)
			}
			if rec.Header().Get("X-Frame-Options") != "DENY" || rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("%s %s headers: %v", method, target, rec.Header())
			}
			if method == http.MethodHead && rec.Body.Len() != 0 {
				t.Errorf("HEAD %s has a body", target)
			}
		}
	}
	if built {
		index := do(t, h, req{method: http.MethodGet, target: "/"}).Body.String()
		_, rest, ok := strings.Cut(index, `src="/assets/`)
		if !ok {
			t.Fatalf("index.html names no script:\n%s", index)
		}
		name, _, _ := strings.Cut(rest, `"`)
		rec := do(t, h, req{method: http.MethodGet, target: "/assets/" + name})
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" || !strings.Contains(rec.Header().Get("Cache-Control"), "immutable") {
			t.Errorf("script: %d %v", rec.Code, rec.Header())
		}
	} else {
		if body := do(t, h, req{method: http.MethodGet, target: "/"}).Body.String(); !strings.Contains(body, "make build") {
			t.Errorf("the unbuilt page does not say how to build: %s", body)
		}
	}
	// Anything else is the API's: JSON, and 401 without credentials.
	for _, r := range []req{
		{method: http.MethodPost, target: "/"},
		{method: http.MethodDelete, target: "/index.html"},
		{method: http.MethodGet, target: "/assets/nope.js"},
		{method: http.MethodGet, target: "/assets/"},
		{method: http.MethodGet, target: "/assets/a/b.js"},
		{method: http.MethodGet, target: "/assets/..%2findex.html"},
		{method: http.MethodGet, target: "/login"},
		{method: http.MethodGet, target: "/favicon.ico"},
	} {
		rec := do(t, h, r)
		if rec.Code != http.StatusUnauthorized || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s without credentials: %d %q", r.method, r.target, rec.Code, rec.Header().Get("Content-Type"))
		}
		r.bearer = true
		if rec := do(t, h, r); rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s with the token: %d %s", r.method, r.target, rec.Code, rec.Body)
		}
	}
}

func TestConsolePolicyExport(t *testing.T) {
	_, h, _ := newConsoleServer(t)
	if rec := do(t, h, req{method: http.MethodPut, target: "/api/v1/groups/vigil.db/mode", body: `{"mode":"protect"}`, bearer: true}); rec.Code != http.StatusOK {
		t.Fatalf("set mode: %d %s", rec.Code, rec.Body)
	}
	rec := do(t, h, req{method: http.MethodGet, target: "/api/v1/policy/export", bearer: true})
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/yaml") || !strings.Contains(rec.Header().Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %v", rec.Code, rec.Header())
	}
	if b := rec.Body.String(); !strings.Contains(b, "apiVersion: vigil.dev/v1alpha1") || !strings.Contains(b, "vigil.db") || !strings.Contains(b, "protect") {
		t.Errorf("export:\n%s", b)
	}
	if rec := do(t, h, req{method: http.MethodGet, target: "/api/v1/policy/export?format=networkpolicy&namespace=prod", bearer: true}); rec.Code != http.StatusOK {
		t.Errorf("networkpolicy export: %d %s", rec.Code, rec.Body)
	}
	for _, target := range []string{"/api/v1/policy/export?format=xml", "/api/v1/policy/export?x=1"} {
		if rec := do(t, h, req{method: http.MethodGet, target: target, bearer: true}); rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d", target, rec.Code)
		}
	}
	if rec := do(t, h, req{method: http.MethodGet, target: "/api/v1/policy/export"}); rec.Code != http.StatusUnauthorized {
		t.Errorf("export without credentials: %d", rec.Code)
	}
}

func TestConsoleAssetsCompressed(t *testing.T) {
	big := bytes.Repeat([]byte("function graph(){return cytoscape;}\n"), 2000)
	fsys := fstest.MapFS{
		"index.html":       {Data: []byte("<html></html>")},
		"assets/app.js":    {Data: big},
		"assets/tiny.css":  {Data: []byte("a{}")},
		"assets/noise.bin": {Data: randomBytes(t, 8192)},
	}
	gz := compressAssets(fsys, slog.New(slog.DiscardHandler))
	if len(gz) != 1 {
		t.Fatalf("compressed %d assets, want only the bundle (tiny and incompressible ones stay plain)", len(gz))
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz["assets/app.js"]))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(plain, big) {
		t.Fatalf("the compressed bundle does not inflate to the bundle: %v", err)
	}
	for header, want := range map[string]bool{
		"":                     false,
		"gzip":                 true,
		"br, gzip, deflate":    true,
		"GZIP":                 true,
		"gzip;q=0":             false,
		"gzip; q=0.0, deflate": false,
		"gzip;q=0.5":           true,
		"deflate":              false,
		"x-gzip":               false,
	} {
		r := httptest.NewRequest(http.MethodGet, "/assets/app.js", nil)
		if header != "" {
			r.Header.Set("Accept-Encoding", header)
		}
		if got := acceptsGzip(r); got != want {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", header, got, want)
		}
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
