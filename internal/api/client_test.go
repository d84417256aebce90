package api_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-sec/vigil/internal/api"
	"github.com/vigil-sec/vigil/internal/workload"
)

// None of these may be contacted: NewClient must refuse them by looking at the address
// alone.
func TestNewClientRejects(t *testing.T) {
	tests := []struct {
		name    string
		base    string
		wantMsg string // a substring of the error when set
	}{
		{name: "private address", base: "http://10.1.2.3:8470", wantMsg: "https"},
		{name: "private address without port", base: "http://10.1.2.3", wantMsg: "https"},
		{name: "upper-case scheme", base: "HTTP://10.1.2.3:8470", wantMsg: "https"},
		{name: "host name", base: "http://example.invalid:8470", wantMsg: "https"},
		{name: "localhost look-alike", base: "http://localhost.example.invalid:8470", wantMsg: "https"},
		{name: "loopback-looking name", base: "http://127.0.0.1.example.invalid:8470", wantMsg: "https"},
		{name: "loopback as user info", base: "http://127.0.0.1:8470@10.1.2.3:8470", wantMsg: "https"},
		{name: "unspecified IPv4", base: "http://0.0.0.0:8470", wantMsg: "https"},
		{name: "unspecified IPv6", base: "http://[::]:8470", wantMsg: "https"},
		{name: "public IPv6", base: "http://[2001:db8::1]:8470", wantMsg: "https"},
		{name: "ftp", base: "ftp://127.0.0.1:8470"},
		{name: "unix", base: "unix:///run/vigil.sock"},
		{name: "ws", base: "ws://127.0.0.1:8470"},
		{name: "no scheme", base: "127.0.0.1:8470"},
		{name: "no scheme with name", base: "localhost:8470"},
		{name: "path only", base: "/api/v1"},
		{name: "empty", base: ""},
		{name: "empty host", base: "http://"},
		{name: "empty host with path", base: "http:///api"},
		{name: "empty https host", base: "https://"},
		{name: "port only", base: "http://:8470"},
		{name: "bad escape", base: "http://127.0.0.1:8470/%zz"},
		{name: "control character", base: "http://127.0.0.1:8470/\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := api.NewClient(tt.base, testToken)
			if err == nil {
				t.Fatalf("NewClient(%q) = %v, want an error", tt.base, c)
			}
			if c != nil {
				t.Errorf("NewClient(%q) returned a client along with its error", tt.base)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error %q quotes the token", err)
			}
		})
	}
}

// These are only constructed; no request goes out.
func TestNewClientAccepts(t *testing.T) {
	for _, base := range []string{
		api.DefaultServer,
		"http://127.0.0.1",
		"http://127.0.0.1:8470/",
		"http://127.1.2.3:8470",
		"http://localhost",
		"http://localhost:8470",
		"http://[::1]",
		"http://[::1]:8470",
		"https://example.invalid",
		"https://example.invalid:8470/vigil/",
		"https://10.1.2.3:8470",
	} {
		t.Run(base, func(t *testing.T) {
			c, err := api.NewClient(base, testToken)
			if err != nil {
				t.Fatalf("NewClient(%q): %v", base, err)
			}
			if c == nil {
				t.Fatalf("NewClient(%q) returned neither a client nor an error", base)
			}
		})
	}
}

// newTestServer runs the real API over fake on a loopback port.
func newTestServer(t *testing.T, fake *fakeWorkloads) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(newHandler(fake))
	t.Cleanup(srv.Close)
	return srv
}

func newTestClient(t *testing.T, base, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(base, token)
	if err != nil {
		t.Fatalf("NewClient(%q): %v", base, err)
	}
	return c
}

func TestClientWorkloads(t *testing.T) {
	fake := newFake(true)
	c := newTestClient(t, newTestServer(t, fake).URL, testToken)
	got, err := c.Workloads(t.Context())
	if err != nil {
		t.Fatalf("Workloads: %v", err)
	}
	if !reflect.DeepEqual(got, fake.workloads) {
		t.Errorf("Workloads =\n%+v\nwant\n%+v", got, fake.workloads)
	}
}

func TestClientWorkloadsEmpty(t *testing.T) {
	fake := newFake(true)
	fake.workloads = []workload.Workload{}
	c := newTestClient(t, newTestServer(t, fake).URL, testToken)
	got, err := c.Workloads(t.Context())
	if err != nil {
		t.Fatalf("Workloads: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("Workloads = %+v, want none", got)
	}
}

func TestClientWorkload(t *testing.T) {
	fake := newFake(true)
	byID := map[string]workload.Workload{}
	for _, w := range fake.workloads {
		byID[w.ID] = w
	}
	tests := []struct {
		name     string
		ref      string
		wantID   string
		wantCode int // of the *StatusError, when not 0
	}{
		{name: "by name", ref: "web-1", wantID: web1ID},
		{name: "by ID", ref: web2ID, wantID: web2ID},
		{name: "by ID prefix", ref: "bbbb33", wantID: dbID},
		{name: "host", ref: "host", wantID: workload.HostID},
		{name: "not found", ref: "nope", wantCode: http.StatusNotFound},
		{name: "ambiguous", ref: "aaaa", wantCode: http.StatusConflict},
		{name: "space", ref: "web 1", wantCode: http.StatusBadRequest},
		{name: "slash inside", ref: "web/1", wantCode: http.StatusBadRequest},
		{name: "too long", ref: strings.Repeat("a", 300), wantCode: http.StatusBadRequest},
		{name: "query in ref", ref: "web-1?x=1", wantCode: http.StatusBadRequest},
	}
	c := newTestClient(t, newTestServer(t, fake).URL, testToken)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Workload(t.Context(), tt.ref)
			if tt.wantCode != 0 {
				var se *api.StatusError
				if !errors.As(err, &se) {
					t.Fatalf("Workload(%q) = %+v, %v; want a *StatusError", tt.ref, got, err)
				}
				if se.Code != tt.wantCode || se.Message == "" {
					t.Errorf("Workload(%q) error = %+v, want code %d and a message", tt.ref, se, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Workload(%q): %v", tt.ref, err)
			}
			if !reflect.DeepEqual(got, byID[tt.wantID]) {
				t.Errorf("Workload(%q) =\n%+v\nwant\n%+v", tt.ref, got, byID[tt.wantID])
			}
		})
	}
}

func TestClientGroups(t *testing.T) {
	fake := newFake(true)
	c := newTestClient(t, newTestServer(t, fake).URL, testToken)
	got, err := c.Groups(t.Context())
	if err != nil {
		t.Fatalf("Groups: %v", err)
	}
	if !reflect.DeepEqual(got, fake.groups) {
		t.Errorf("Groups = %+v, want %+v", got, fake.groups)
	}
}

func TestClientUnauthorized(t *testing.T) {
	srv := newTestServer(t, newFake(true))
	calls := []struct {
		name string
		call func(context.Context, *api.Client) error
	}{
		{name: "Workloads", call: func(ctx context.Context, c *api.Client) error { _, err := c.Workloads(ctx); return err }},
		{name: "Workload", call: func(ctx context.Context, c *api.Client) error { _, err := c.Workload(ctx, "web-1"); return err }},
		{name: "Groups", call: func(ctx context.Context, c *api.Client) error { _, err := c.Groups(ctx); return err }},
	}
	tokens := []struct {
		name  string
		token string
	}{
		{name: "wrong token", token: validToken},
		{name: "empty token", token: ""},
		{name: "token with a space", token: "vgl_ x"},
	}
	for _, tok := range tokens {
		for _, call := range calls {
			t.Run(tok.name+"/"+call.name, func(t *testing.T) {
				err := call.call(t.Context(), newTestClient(t, srv.URL, tok.token))
				var se *api.StatusError
				if !errors.As(err, &se) {
					t.Fatalf("error %v is not a *StatusError", err)
				}
				if se.Code != http.StatusUnauthorized {
					t.Errorf("code = %d, want 401", se.Code)
				}
				if se.Message != "invalid bearer token" {
					t.Errorf("message = %q, want the server's %q", se.Message, "invalid bearer token")
				}
				if msg := se.Error(); !strings.Contains(msg, "401") || !strings.Contains(msg, "invalid bearer token") {
					t.Errorf("Error() = %q, want the code and the server's message", msg)
				}
			})
		}
	}
}

func TestClientHealth(t *testing.T) {
	tests := []struct {
		name       string
		connected  bool
		token      string
		wantStatus string
	}{
		{name: "connected", connected: true, token: testToken, wantStatus: "ok"},
		{name: "degraded", connected: false, token: testToken, wantStatus: "degraded"},
		{name: "wrong token", connected: true, token: validToken, wantStatus: "ok"},
		{name: "no token, degraded", connected: false, token: "", wantStatus: "degraded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(tt.connected)
			c := newTestClient(t, newTestServer(t, fake).URL, tt.token)
			h, err := c.Health(t.Context())
			if err != nil {
				t.Fatalf("Health: %v", err)
			}
			if h.Status != tt.wantStatus {
				t.Errorf("status = %q, want %q", h.Status, tt.wantStatus)
			}
			if h.Version != testVersion || h.Workloads != len(fake.workloads) || h.Runtime.Connected != tt.connected {
				t.Errorf("Health = %+v, want version %q, %d workloads, connected %v", h, testVersion, len(fake.workloads), tt.connected)
			}
		})
	}
}

// recordedRequest is what a stub server saw of one request.
type recordedRequest struct {
	path, rawQuery, auth, accept, method string
}

// newStubServer answers every request with code and body and records what it received.
func newStubServer(t *testing.T, code int, contentType, body string) (*httptest.Server, func() []recordedRequest) {
	t.Helper()
	var (
		mu   sync.Mutex
		seen []recordedRequest
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, recordedRequest{
			path: r.URL.EscapedPath(), rawQuery: r.URL.RawQuery, method: r.Method,
			auth: r.Header.Get("Authorization"), accept: r.Header.Get("Accept"),
		})
		mu.Unlock()
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []recordedRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]recordedRequest(nil), seen...)
	}
}

func TestClientRequests(t *testing.T) {
	tests := []struct {
		name     string
		suffix   string // appended to the server's URL to make the client's base
		call     func(context.Context, *api.Client) error
		wantPath string
	}{
		{
			name:     "workloads",
			call:     func(ctx context.Context, c *api.Client) error { _, err := c.Workloads(ctx); return err },
			wantPath: "/api/v1/workloads",
		},
		{
			name:     "workloads, base with slash",
			suffix:   "/",
			call:     func(ctx context.Context, c *api.Client) error { _, err := c.Workloads(ctx); return err },
			wantPath: "/api/v1/workloads",
		},
		{
			name:     "workloads, base with path",
			suffix:   "/vigil",
			call:     func(ctx context.Context, c *api.Client) error { _, err := c.Workloads(ctx); return err },
			wantPath: "/vigil/api/v1/workloads",
		},
		{
			name:     "workloads, base with path and slash",
			suffix:   "/vigil/",
			call:     func(ctx context.Context, c *api.Client) error { _, err := c.Workloads(ctx); return err },
			wantPath: "/vigil/api/v1/workloads",
		},
		{
			name:     "workload",
			call:     func(ctx context.Context, c *api.Client) error { _, err := c.Workload(ctx, "web-1"); return err },
			wantPath: "/api/v1/workloads/web-1",
		},
		{
			name:     "workload by ID",
			call:     func(ctx context.Context, c *api.Client) error { _, err := c.Workload(ctx, web1ID); return err },
			wantPath: "/api/v1/workloads/" + web1ID,
		},
		{
			name:     "groups",
			call:     func(ctx context.Context, c *api.Client) error { _, err := c.Groups(ctx); return err },
			wantPath: "/api/v1/groups",
		},
		{
			name:     "health",
			call:     func(ctx context.Context, c *api.Client) error { _, err := c.Health(ctx); return err },
			wantPath: "/api/v1/health",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// null decodes into every result type; only the request matters here.
			srv, seen := newStubServer(t, http.StatusOK, "application/json", "null")
			c := newTestClient(t, srv.URL+tt.suffix, testToken)
			if err := tt.call(t.Context(), c); err != nil {
				t.Fatalf("call: %v", err)
			}
			reqs := seen()
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests, want 1: %+v", len(reqs), reqs)
			}
			want := recordedRequest{path: tt.wantPath, method: http.MethodGet, auth: bearer, accept: "application/json"}
			if reqs[0] != want {
				t.Errorf("request = %+v, want %+v", reqs[0], want)
			}
		})
	}
}

func TestClientBadResponses(t *testing.T) {
	tests := []struct {
		name        string
		code        int
		contentType string
		body        string
		wantCode    int    // of the *StatusError, when not 0
		wantMsg     string // a substring of the error
	}{
		{name: "plain-text error", code: http.StatusBadGateway, contentType: "text/plain", body: "upstream down\n", wantCode: http.StatusBadGateway, wantMsg: "upstream down"},
		{name: "JSON error", code: http.StatusForbidden, contentType: "application/json", body: `{"error": "go away"}`, wantCode: http.StatusForbidden, wantMsg: "go away"},
		{name: "JSON without error", code: http.StatusTeapot, contentType: "application/json", body: `{"detail": "short and stout"}`, wantCode: http.StatusTeapot, wantMsg: "short and stout"},
		{name: "empty error body", code: http.StatusInternalServerError, contentType: "text/plain", body: "", wantCode: http.StatusInternalServerError},
		{name: "degraded is still an error for data", code: http.StatusServiceUnavailable, contentType: "application/json", body: `[]`, wantCode: http.StatusServiceUnavailable},
		{name: "invalid JSON", code: http.StatusOK, contentType: "application/json", body: `[{"id":`, wantMsg: "decode response"},
		{name: "wrong JSON shape", code: http.StatusOK, contentType: "application/json", body: `{"id": "x"}`, wantMsg: "decode response"},
		{name: "HTML", code: http.StatusOK, contentType: "text/html", body: "<html></html>", wantMsg: "decode response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newStubServer(t, tt.code, tt.contentType, tt.body)
			got, err := newTestClient(t, srv.URL, testToken).Workloads(t.Context())
			if err == nil {
				t.Fatalf("Workloads = %+v, want an error", got)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
			var se *api.StatusError
			isStatus := errors.As(err, &se)
			switch {
			case tt.wantCode == 0 && isStatus:
				t.Errorf("error %v is a *StatusError, want a decoding error", err)
			case tt.wantCode != 0 && !isStatus:
				t.Errorf("error %v is not a *StatusError", err)
			case tt.wantCode != 0 && se.Code != tt.wantCode:
				t.Errorf("code = %d, want %d", se.Code, tt.wantCode)
			}
		})
	}
}

// A closed loopback port is the usual case of a server that is not running.
func TestClientConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, "http://"+addr, testToken)
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{name: "Health", call: func(ctx context.Context) error { _, err := c.Health(ctx); return err }},
		{name: "Workloads", call: func(ctx context.Context) error { _, err := c.Workloads(ctx); return err }},
		{name: "Workload", call: func(ctx context.Context) error { _, err := c.Workload(ctx, "web-1"); return err }},
		{name: "Groups", call: func(ctx context.Context) error { _, err := c.Groups(ctx); return err }},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(t.Context())
			if err == nil {
				t.Fatal("want an error from a closed port")
			}
			if !strings.Contains(err.Error(), "vigil up") {
				t.Errorf("error %q does not suggest running 'vigil up'", err)
			}
			if !strings.Contains(err.Error(), addr) {
				t.Errorf("error %q does not name the address %s", err, addr)
			}
			var se *api.StatusError
			if errors.As(err, &se) {
				t.Errorf("error %v is a *StatusError", err)
			}
		})
	}
}

func TestClientCanceled(t *testing.T) {
	c := newTestClient(t, newTestServer(t, newFake(true)).URL, testToken)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Workloads(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Workloads with a canceled context: %v, want context.Canceled", err)
	}
}
