package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/api"
	"github.com/vigil-sec/vigil/internal/workload"
)

// testToken is the token the test servers accept.
const testToken = "vgl_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

const testVersion = "v0.0.0-test"

// fakeWorkloads is a registry with fixed contents. Like workload.Registry it hands out
// fresh, non-nil slices, so the server may change what it gets. It is safe for concurrent
// use as long as nobody changes its fields.
type fakeWorkloads struct {
	workloads []workload.Workload
	groups    []workload.Group
	status    workload.Status
	getErr    error // when set, Get fails with it
}

func (f *fakeWorkloads) List() []workload.Workload {
	out := make([]workload.Workload, len(f.workloads))
	for i, w := range f.workloads {
		out[i] = w.Clone()
	}
	return out
}

// Get resolves ref the way the registry does: a leading slash is ignored, then an exact ID
// or name, then an ID prefix of at least four characters.
func (f *fakeWorkloads) Get(ref string) (workload.Workload, error) {
	if f.getErr != nil {
		return workload.Workload{}, f.getErr
	}
	ref = strings.TrimPrefix(ref, "/")
	var found []workload.Workload
	for _, w := range f.workloads {
		if w.ID == ref || w.Name == ref {
			return w.Clone(), nil
		}
		if len(ref) >= 4 && strings.HasPrefix(w.ID, ref) {
			found = append(found, w)
		}
	}
	switch len(found) {
	case 0:
		return workload.Workload{}, workload.ErrNotFound
	case 1:
		return found[0].Clone(), nil
	default:
		return workload.Workload{}, fmt.Errorf("%w: %q matches %d workloads", workload.ErrAmbiguous, ref, len(found))
	}
}

func (f *fakeWorkloads) Groups() []workload.Group {
	out := make([]workload.Group, len(f.groups))
	for i, g := range f.groups {
		out[i] = workload.Group{Name: g.Name, Members: slices.Clone(g.Members)}
	}
	return out
}

func (f *fakeWorkloads) Status() workload.Status { return f.status }

const (
	web1ID = "aaaa1111c0ffee0000000000000000000000000000000000000000000000beef"
	web2ID = "aaaa2222c0ffee0000000000000000000000000000000000000000000000beef"
	dbID   = "bbbb3333c0ffee0000000000000000000000000000000000000000000000beef"
)

var testSince = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// newFake returns a registry with the host, two replicas of a web service and a database,
// connected to its runtime when connected is true.
func newFake(connected bool) *fakeWorkloads {
	container := func(id, name, group, ip string) workload.Workload {
		addr := netip.MustParseAddr(ip)
		return workload.Workload{
			ID:          id,
			Name:        name,
			Kind:        workload.KindContainer,
			Runtime:     "docker",
			Image:       "example/" + name + ":1.0",
			ImageID:     "sha256:" + strings.Repeat("1", 64),
			Group:       group,
			Labels:      map[string]string{"com.docker.compose.service": name},
			State:       "running",
			PID:         4242,
			NetworkMode: "bridge",
			NetNS:       workload.NetNS{Path: "/proc/4242/ns/net", Inode: 4026532000},
			Networks: []workload.Network{{
				Name: "bridge", ID: "n1", IPv4: addr, IPv4Prefix: 16,
				Gateway: netip.MustParseAddr("172.17.0.1"), MAC: "02:42:ac:11:00:02",
				Aliases: []string{name},
			}},
			Interfaces: []workload.Interface{{
				Name: "veth0", Ifindex: 7, IPs: []netip.Addr{}, MAC: "02:42:ac:11:00:02",
				PeerName: "eth0", PeerIfindex: 6, Network: "bridge",
			}},
			IPs: []netip.Addr{addr},
			Ports: []workload.PublishedPort{{
				Protocol: "tcp", ContainerPort: 80, HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8080,
			}},
			User:    "nobody",
			Created: testSince,
			Started: testSince.Add(time.Second),
		}
	}
	host := workload.Workload{
		ID: workload.HostID, Name: "testhost", Kind: workload.KindHost, Group: workload.HostGroup,
		Labels: map[string]string{}, NetworkMode: "host", Networks: []workload.Network{},
		Interfaces: []workload.Interface{}, IPs: []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		Ports: []workload.PublishedPort{},
	}
	return &fakeWorkloads{
		workloads: []workload.Workload{
			host,
			container(dbID, "db", "vigil.db", "172.17.0.4"),
			container(web1ID, "web-1", "vigil.web", "172.17.0.2"),
			container(web2ID, "web-2", "vigil.web", "172.17.0.3"),
		},
		groups: []workload.Group{
			{Name: "host", Members: []workload.Member{{ID: workload.HostID, Name: "testhost"}}},
			{Name: "vigil.db", Members: []workload.Member{{ID: dbID, Name: "db"}}},
			{Name: "vigil.web", Members: []workload.Member{{ID: web1ID, Name: "web-1"}, {ID: web2ID, Name: "web-2"}}},
		},
		status: workload.Status{Runtime: "docker", Connected: connected, Since: testSince, Syncs: 1},
	}
}

func newHandler(w api.Workloads) http.Handler {
	srv, err := api.NewServer(w, testToken, testVersion, slog.New(slog.DiscardHandler))
	if err != nil {
		panic(err)
	}
	return srv.Handler()
}

const bearer = "Bearer " + testToken

// serve sends one request to h; auth, when not empty, is the Authorization header.
func serve(t testing.TB, h http.Handler, method, target, auth string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// checkJSON fails unless rec is a JSON response with the headers every answer carries.
func checkJSON(t testing.TB, rec *httptest.ResponseRecorder) {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Errorf("body is not JSON: %q", rec.Body)
	}
}

// errorMessage checks that rec is a JSON error answer with status code and returns its
// message.
func errorMessage(t testing.TB, rec *httptest.ResponseRecorder, code int) string {
	t.Helper()
	if rec.Code != code {
		t.Errorf("status = %d, want %d (body %q)", rec.Code, code, rec.Body)
	}
	checkJSON(t, rec)
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q is not a JSON object: %v", rec.Body, err)
	}
	msg, ok := body["error"].(string)
	if !ok || msg == "" {
		t.Errorf(`error body %q has no non-empty "error" string`, rec.Body)
	}
	if len(body) != 1 {
		t.Errorf(`error body %q has fields besides "error"`, rec.Body)
	}
	return msg
}

// decodeOK checks that rec is a 200 JSON answer and decodes it into v.
func decodeOK(t testing.TB, rec *httptest.ResponseRecorder, v any) {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200 (body %q)", rec.Code, rec.Body)
	}
	checkJSON(t, rec)
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("decode %q: %v", rec.Body, err)
	}
}

func TestHealth(t *testing.T) {
	tests := []struct {
		name       string
		connected  bool
		method     string
		auth       string
		wantCode   int
		wantStatus string
	}{
		{name: "connected", connected: true, method: http.MethodGet, wantCode: http.StatusOK, wantStatus: "ok"},
		{name: "disconnected", connected: false, method: http.MethodGet, wantCode: http.StatusServiceUnavailable, wantStatus: "degraded"},
		{name: "with token", connected: true, method: http.MethodGet, auth: bearer, wantCode: http.StatusOK, wantStatus: "ok"},
		{name: "with wrong token", connected: true, method: http.MethodGet, auth: "Bearer " + validToken, wantCode: http.StatusOK, wantStatus: "ok"},
		{name: "with other scheme", connected: true, method: http.MethodGet, auth: "Basic dXNlcjpwYXNz", wantCode: http.StatusOK, wantStatus: "ok"},
		{name: "HEAD", connected: true, method: http.MethodHead, wantCode: http.StatusOK, wantStatus: "ok"},
		{name: "HEAD disconnected", connected: false, method: http.MethodHead, wantCode: http.StatusServiceUnavailable, wantStatus: "degraded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(tt.connected)
			rec := serve(t, newHandler(fake), tt.method, "/api/v1/health", tt.auth)
			if rec.Code != tt.wantCode {
				t.Fatalf("status = %d, want %d (body %q)", rec.Code, tt.wantCode, rec.Body)
			}
			checkJSON(t, rec)
			if got := rec.Header().Get("WWW-Authenticate"); got != "" {
				t.Errorf("health asks for credentials: WWW-Authenticate %q", got)
			}
			var h api.Health
			if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil {
				t.Fatalf("decode %q: %v", rec.Body, err)
			}
			if h.Status != tt.wantStatus {
				t.Errorf("status field = %q, want %q", h.Status, tt.wantStatus)
			}
			if h.Version != testVersion {
				t.Errorf("version = %q, want %q", h.Version, testVersion)
			}
			if h.Uptime == "" {
				t.Error("uptime is empty")
			}
			if h.Workloads != len(fake.workloads) {
				t.Errorf("workloads = %d, want %d", h.Workloads, len(fake.workloads))
			}
			if h.Runtime.Runtime != "docker" || h.Runtime.Connected != tt.connected || !h.Runtime.Since.Equal(testSince) {
				t.Errorf("runtime = %+v, want the registry's status %+v", h.Runtime, fake.status)
			}
		})
	}
}

func TestHealthRejects(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		target   string
		wantCode int
	}{
		{name: "POST", method: http.MethodPost, target: "/api/v1/health", wantCode: http.StatusMethodNotAllowed},
		{name: "DELETE", method: http.MethodDelete, target: "/api/v1/health", wantCode: http.StatusMethodNotAllowed},
		{name: "unknown parameter", method: http.MethodGet, target: "/api/v1/health?verbose=1", wantCode: http.StatusBadRequest},
		{name: "malformed query", method: http.MethodGet, target: "/api/v1/health?%zz", wantCode: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, newHandler(newFake(true)), tt.method, tt.target, "")
			errorMessage(t, rec, tt.wantCode)
		})
	}
}

// authenticatedTargets are paths that need the token, whether or not they exist.
var authenticatedTargets = []string{
	"/api/v1/workloads",
	"/api/v1/workloads?group=vigil.web",
	"/api/v1/workloads/web-1",
	"/api/v1/workloads/nope",
	"/api/v1/groups",
	"/api/v1/groups/vigil.web",
	"/api/v1/groups/nope",
	"/api",
	"/api/v1",
	"/api/v1/",
	"/api/v1/health/",
	"/api/v2/health",
	"/api/v1/policies",
	"/api/v1/workloads/web-1/flows",
	"/favicon.ico",
}

func TestAuthRejects(t *testing.T) {
	auths := []struct {
		name string
		auth string
	}{
		{name: "no header", auth: ""},
		{name: "wrong token", auth: "Bearer " + validToken},
		{name: "truncated token", auth: "Bearer " + testToken[:len(testToken)-1]},
		{name: "extended token", auth: bearer + "0"},
		{name: "token prefix only", auth: "Bearer vgl_"},
		{name: "upper-case token", auth: "Bearer " + strings.ToUpper(testToken)},
		{name: "Basic scheme", auth: "Basic " + testToken},
		{name: "Token scheme", auth: "Token " + testToken},
		{name: "scheme glued to token", auth: "Bearer" + testToken},
		{name: "no scheme", auth: testToken},
		{name: "Bearer alone", auth: "Bearer"},
		{name: "Bearer and blank", auth: "Bearer "},
		{name: "tab separator", auth: "Bearer\t" + testToken},
		{name: "two tokens", auth: bearer + " " + testToken},
		{name: "blank", auth: " "},
	}
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete}
	h := newHandler(newFake(true))
	for _, a := range auths {
		for _, target := range authenticatedTargets {
			for _, method := range methods {
				t.Run(fmt.Sprintf("%s/%s %s", a.name, method, target), func(t *testing.T) {
					rec := serve(t, h, method, target, a.auth)
					errorMessage(t, rec, http.StatusUnauthorized)
					if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
						t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
					}
					if strings.Contains(rec.Body.String(), testToken) {
						t.Errorf("401 body %q quotes the token", rec.Body)
					}
				})
			}
		}
	}
}

func TestAuthAccepts(t *testing.T) {
	auths := []struct {
		name string
		auth string
	}{
		{name: "canonical", auth: bearer},
		{name: "lower-case scheme", auth: "bearer " + testToken},
		{name: "upper-case scheme", auth: "BEARER " + testToken},
		{name: "mixed-case scheme", auth: "bEaReR " + testToken},
		{name: "two spaces", auth: "Bearer  " + testToken},
		{name: "trailing space", auth: bearer + " "},
	}
	h := newHandler(newFake(true))
	for _, a := range auths {
		t.Run(a.name, func(t *testing.T) {
			var list []workload.Workload
			decodeOK(t, serve(t, h, http.MethodGet, "/api/v1/workloads", a.auth), &list)
		})
	}
}

// An unknown path answers 404 to a caller with the token and 401 to anyone else, so that
// which paths exist is only told to those allowed to use them.
func TestUnknownPath(t *testing.T) {
	targets := []string{
		"/api",
		"/api/v1",
		"/api/v1/",
		"/api/v1/health/",
		"/api/v1/workloads/",
		"/api/v1/workloads/web-1/",
		"/api/v1/workloads/web-1/flows",
		"/api/v1/groups/",
		"/api/v1/groups/vigil.web/members",
		"/api/v2/workloads",
		"/API/V1/WORKLOADS",
		"/api/v1/nope?x=1",
	}
	h := newHandler(newFake(true))
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			msg := errorMessage(t, serve(t, h, http.MethodGet, target, bearer), http.StatusNotFound)
			if !strings.Contains(msg, "no such endpoint") {
				t.Errorf("404 message %q does not say there is no such endpoint", msg)
			}
			rec := serve(t, h, http.MethodGet, target, "")
			errorMessage(t, rec, http.StatusUnauthorized)
			if strings.Contains(rec.Body.String(), "endpoint") {
				t.Errorf("401 body %q talks about endpoints", rec.Body)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	targets := []struct {
		target string
		auth   string
	}{
		{target: "/api/v1/health"},
		{target: "/api/v1/health", auth: bearer},
		{target: "/api/v1/workloads", auth: bearer},
		{target: "/api/v1/workloads/web-1", auth: bearer},
		{target: "/api/v1/workloads/nope", auth: bearer},
		{target: "/api/v1/groups", auth: bearer},
		{target: "/api/v1/groups/vigil.web", auth: bearer},
	}
	methods := []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, "PROPFIND"}
	h := newHandler(newFake(true))
	for _, tt := range targets {
		for _, method := range methods {
			t.Run(method+" "+tt.target, func(t *testing.T) {
				rec := serve(t, h, method, tt.target, tt.auth)
				msg := errorMessage(t, rec, http.StatusMethodNotAllowed)
				if allow := rec.Header().Get("Allow"); allow != "GET, HEAD" {
					t.Errorf("Allow = %q, want GET, HEAD", allow)
				}
				if !strings.Contains(msg, method) {
					t.Errorf("405 message %q does not name the method %s", msg, method)
				}
			})
		}
	}
}

func workloadIDs(list []workload.Workload) []string {
	ids := make([]string, len(list))
	for i, w := range list {
		ids[i] = w.ID
	}
	return ids
}

func TestListWorkloads(t *testing.T) {
	empty := newFake(true)
	empty.workloads = []workload.Workload{}
	tests := []struct {
		name    string
		fake    *fakeWorkloads
		target  string
		wantIDs []string
	}{
		{name: "all", fake: newFake(true), target: "/api/v1/workloads", wantIDs: []string{workload.HostID, dbID, web1ID, web2ID}},
		{name: "group", fake: newFake(true), target: "/api/v1/workloads?group=vigil.web", wantIDs: []string{web1ID, web2ID}},
		{name: "host group", fake: newFake(true), target: "/api/v1/workloads?group=host", wantIDs: []string{workload.HostID}},
		{name: "escaped group", fake: newFake(true), target: "/api/v1/workloads?group=vigil%2Edb", wantIDs: []string{dbID}},
		{name: "empty group is no filter", fake: newFake(true), target: "/api/v1/workloads?group=", wantIDs: []string{workload.HostID, dbID, web1ID, web2ID}},
		{name: "group without members", fake: newFake(true), target: "/api/v1/workloads?group=vigil.nope", wantIDs: []string{}},
		{name: "no workloads", fake: empty, target: "/api/v1/workloads", wantIDs: []string{}},
		{name: "no workloads in group", fake: empty, target: "/api/v1/workloads?group=vigil.web", wantIDs: []string{}},
		{name: "disconnected", fake: newFake(false), target: "/api/v1/workloads", wantIDs: []string{workload.HostID, dbID, web1ID, web2ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, newHandler(tt.fake), http.MethodGet, tt.target, bearer)
			var list []workload.Workload
			decodeOK(t, rec, &list)
			if body := strings.TrimSpace(rec.Body.String()); !strings.HasPrefix(body, "[") {
				t.Errorf("body %q is not a JSON array", body)
			}
			if got := workloadIDs(list); !slices.Equal(got, tt.wantIDs) {
				t.Errorf("IDs = %q, want %q", got, tt.wantIDs)
			}
		})
	}
}

func TestListWorkloadsBadQuery(t *testing.T) {
	tests := []struct {
		name  string
		query string
	}{
		{name: "upper-case group", query: "group=Vigil.Web"},
		{name: "group with underscore", query: "group=vigil_web"},
		{name: "group with space", query: "group=vigil%20web"},
		{name: "group with slash", query: "group=vigil%2Fweb"},
		{name: "group with leading hyphen", query: "group=-web"},
		{name: "group with trailing dot", query: "group=vigil."},
		{name: "group of 253 characters", query: "group=" + strings.Repeat("a", 253)},
		{name: "group with NUL", query: "group=vigil.web%00"},
		{name: "group with newline", query: "group=vigil.web%0A"},
		{name: "unknown parameter", query: "name=web-1"},
		{name: "misspelt parameter", query: "groups=vigil.web"},
		{name: "upper-case parameter", query: "Group=vigil.web"},
		{name: "empty parameter name", query: "=vigil.web"},
		{name: "unknown parameter beside a known one", query: "group=vigil.web&limit=1"},
		{name: "repeated parameter", query: "group=vigil.web&group=vigil.db"},
		{name: "repeated identical parameter", query: "group=vigil.web&group=vigil.web"},
		{name: "malformed escape", query: "%zz"},
		{name: "malformed escape in value", query: "group=%zz"},
		{name: "truncated escape", query: "group=vigil.web%2"},
		{name: "semicolon", query: "group=vigil.web;x=1"},
	}
	h := newHandler(newFake(true))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errorMessage(t, serve(t, h, http.MethodGet, "/api/v1/workloads?"+tt.query, bearer), http.StatusBadRequest)
		})
	}
}

// The longest group name the API accepts is 252 characters.
func TestListWorkloadsLongestGroup(t *testing.T) {
	var list []workload.Workload
	rec := serve(t, newHandler(newFake(true)), http.MethodGet, "/api/v1/workloads?group="+strings.Repeat("a", 252), bearer)
	decodeOK(t, rec, &list)
	if len(list) != 0 {
		t.Errorf("got %d workloads, want none", len(list))
	}
}

func TestGetWorkload(t *testing.T) {
	tests := []struct {
		name     string
		ref      string // path-escaped into the URL
		query    string
		getErr   error
		wantCode int
		wantID   string
		wantMsg  string // a substring of the error
	}{
		{name: "by name", ref: "web-1", wantCode: http.StatusOK, wantID: web1ID},
		{name: "by ID", ref: dbID, wantCode: http.StatusOK, wantID: dbID},
		{name: "by ID prefix", ref: "bbbb", wantCode: http.StatusOK, wantID: dbID},
		{name: "by Docker name", ref: "/web-2", wantCode: http.StatusOK, wantID: web2ID},
		{name: "host", ref: "host", wantCode: http.StatusOK, wantID: workload.HostID},
		{name: "ref of 255 characters", ref: strings.Repeat("a", 255), wantCode: http.StatusNotFound},
		{name: "not found", ref: "nope", wantCode: http.StatusNotFound, wantMsg: "nope"},
		{name: "short prefix", ref: "bbb", wantCode: http.StatusNotFound},
		{name: "ambiguous", ref: "aaaa", wantCode: http.StatusConflict, wantMsg: "ambiguous"},
		{name: "registry failure", ref: "web-1", getErr: errors.New("registry on fire"), wantCode: http.StatusInternalServerError, wantMsg: "registry on fire"},
		{name: "space", ref: "web 1", wantCode: http.StatusBadRequest, wantMsg: "invalid workload reference"},
		{name: "ref of 256 characters", ref: strings.Repeat("a", 256), wantCode: http.StatusBadRequest},
		{name: "ref of 300 characters", ref: strings.Repeat("a", 300), wantCode: http.StatusBadRequest},
		{name: "slash inside", ref: "web/1", wantCode: http.StatusBadRequest},
		{name: "two leading slashes", ref: "//web-1", wantCode: http.StatusBadRequest},
		{name: "leading hyphen", ref: "-web", wantCode: http.StatusBadRequest},
		{name: "leading dot", ref: ".web", wantCode: http.StatusBadRequest},
		{name: "NUL", ref: "web\x001", wantCode: http.StatusBadRequest},
		{name: "newline", ref: "web-1\n", wantCode: http.StatusBadRequest},
		{name: "non-ASCII", ref: "wéb", wantCode: http.StatusBadRequest},
		{name: "percent", ref: "web%1", wantCode: http.StatusBadRequest},
		{name: "quote", ref: `web"1`, wantCode: http.StatusBadRequest},
		{name: "unknown parameter", ref: "web-1", query: "verbose=1", wantCode: http.StatusBadRequest},
		{name: "malformed query", ref: "web-1", query: "%zz", wantCode: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(true)
			fake.getErr = tt.getErr
			target := "/api/v1/workloads/" + url.PathEscape(tt.ref)
			if tt.query != "" {
				target += "?" + tt.query
			}
			rec := serve(t, newHandler(fake), http.MethodGet, target, bearer)
			if tt.wantCode != http.StatusOK {
				msg := errorMessage(t, rec, tt.wantCode)
				if !strings.Contains(msg, tt.wantMsg) {
					t.Errorf("message %q does not mention %q", msg, tt.wantMsg)
				}
				return
			}
			var got workload.Workload
			decodeOK(t, rec, &got)
			if got.ID != tt.wantID {
				t.Errorf("ID = %q, want %q", got.ID, tt.wantID)
			}
		})
	}
}

func TestListGroups(t *testing.T) {
	empty := newFake(true)
	empty.workloads, empty.groups = []workload.Workload{}, []workload.Group{}
	tests := []struct {
		name string
		fake *fakeWorkloads
	}{
		{name: "some", fake: newFake(true)},
		{name: "none", fake: empty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, newHandler(tt.fake), http.MethodGet, "/api/v1/groups", bearer)
			var got []workload.Group
			decodeOK(t, rec, &got)
			if body := strings.TrimSpace(rec.Body.String()); !strings.HasPrefix(body, "[") {
				t.Errorf("body %q is not a JSON array", body)
			}
			if !groupsEqual(got, tt.fake.groups) {
				t.Errorf("groups = %+v, want %+v", got, tt.fake.groups)
			}
		})
	}
}

func groupsEqual(a, b []workload.Group) bool {
	return slices.EqualFunc(a, b, func(x, y workload.Group) bool {
		return x.Name == y.Name && slices.Equal(x.Members, y.Members)
	})
}

func TestListGroupsBadQuery(t *testing.T) {
	for _, query := range []string{"group=vigil.web", "name=x", "%zz", "a=1&a=2"} {
		t.Run(query, func(t *testing.T) {
			rec := serve(t, newHandler(newFake(true)), http.MethodGet, "/api/v1/groups?"+query, bearer)
			errorMessage(t, rec, http.StatusBadRequest)
		})
	}
}

func TestGetGroup(t *testing.T) {
	tests := []struct {
		name        string
		group       string // path-escaped into the URL
		query       string
		wantCode    int
		wantMembers []string
	}{
		{name: "learned group", group: "vigil.web", wantCode: http.StatusOK, wantMembers: []string{"web-1", "web-2"}},
		{name: "host", group: "host", wantCode: http.StatusOK, wantMembers: []string{"testhost"}},
		{name: "not found", group: "vigil.nope", wantCode: http.StatusNotFound},
		{name: "name of 252 characters", group: strings.Repeat("a", 252), wantCode: http.StatusNotFound},
		{name: "upper case", group: "Vigil.Web", wantCode: http.StatusBadRequest},
		{name: "space", group: "vigil web", wantCode: http.StatusBadRequest},
		{name: "slash", group: "vigil/web", wantCode: http.StatusBadRequest},
		{name: "underscore", group: "vigil_web", wantCode: http.StatusBadRequest},
		{name: "leading hyphen", group: "-web", wantCode: http.StatusBadRequest},
		{name: "trailing hyphen", group: "web-", wantCode: http.StatusBadRequest},
		{name: "name of 253 characters", group: strings.Repeat("a", 253), wantCode: http.StatusBadRequest},
		{name: "name of 300 characters", group: strings.Repeat("a", 300), wantCode: http.StatusBadRequest},
		{name: "NUL", group: "vigil.web\x00", wantCode: http.StatusBadRequest},
		{name: "unknown parameter", group: "vigil.web", query: "x=1", wantCode: http.StatusBadRequest},
		{name: "malformed query", group: "vigil.web", query: "%zz", wantCode: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := "/api/v1/groups/" + url.PathEscape(tt.group)
			if tt.query != "" {
				target += "?" + tt.query
			}
			rec := serve(t, newHandler(newFake(true)), http.MethodGet, target, bearer)
			if tt.wantCode != http.StatusOK {
				errorMessage(t, rec, tt.wantCode)
				return
			}
			var got workload.Group
			decodeOK(t, rec, &got)
			if got.Name != tt.group {
				t.Errorf("name = %q, want %q", got.Name, tt.group)
			}
			var names []string
			for _, m := range got.Members {
				names = append(names, m.Name)
			}
			if !slices.Equal(names, tt.wantMembers) {
				t.Errorf("members = %q, want %q", names, tt.wantMembers)
			}
		})
	}
}

// The server is used from many connections at once; the race detector watches this.
func TestServerConcurrent(t *testing.T) {
	h := newHandler(newFake(true))
	targets := []string{
		"/api/v1/health",
		"/api/v1/workloads",
		"/api/v1/workloads?group=vigil.web",
		"/api/v1/workloads/web-1",
		"/api/v1/groups",
		"/api/v1/groups/vigil.db",
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				target := targets[(i+j)%len(targets)]
				rec := serve(t, h, http.MethodGet, target, bearer)
				if rec.Code != http.StatusOK {
					t.Errorf("GET %s = %d, want 200 (body %q)", target, rec.Code, rec.Body)
				}
			}
		})
	}
	wg.Wait()
}

// cleanPath is what http.ServeMux makes of a path before routing it: a path that differs
// from it is answered with a redirect.
func cleanPath(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

func isTokenChar(r rune) bool {
	return r < 0x7f && r > 0x20 && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
}

func FuzzServerRequest(f *testing.F) {
	seeds := []struct{ method, path, query, auth string }{
		{"GET", "/api/v1/health", "", ""},
		{"HEAD", "/api/v1/health", "", ""},
		{"POST", "/api/v1/health", "", ""},
		{"GET", "/api/v1/health", "x=1", ""},
		{"GET", "/api/v1/workloads", "", ""},
		{"GET", "/api/v1/workloads", "", bearer},
		{"GET", "/api/v1/workloads", "", "bearer " + testToken},
		{"GET", "/api/v1/workloads", "", "Bearer " + validToken},
		{"GET", "/api/v1/workloads", "", "Basic " + testToken},
		{"GET", "/api/v1/workloads", "", "Bearer"},
		{"GET", "/api/v1/workloads", "", "Bearer "},
		{"GET", "/api/v1/workloads", "group=vigil.web", bearer},
		{"GET", "/api/v1/workloads", "group=Vigil", bearer},
		{"GET", "/api/v1/workloads", "group=a&group=b", bearer},
		{"GET", "/api/v1/workloads", "%zz", bearer},
		{"GET", "/api/v1/workloads", "a;b", bearer},
		{"GET", "/api/v1/workloads/web-1", "", bearer},
		{"GET", "/api/v1/workloads/aaaa", "", bearer},
		{"GET", "/api/v1/workloads/nope", "", bearer},
		{"GET", "/api/v1/workloads/%2Fweb-1", "", bearer},
		{"GET", "/api/v1/workloads/a%20b", "", bearer},
		{"GET", "/api/v1/workloads/" + strings.Repeat("a", 300), "", bearer},
		{"GET", "/api/v1/workloads/web-1", "", ""},
		{"DELETE", "/api/v1/workloads/web-1", "", bearer},
		{"DELETE", "/api/v1/workloads/web-1", "", ""},
		{"GET", "/api/v1/groups", "", bearer},
		{"GET", "/api/v1/groups/vigil.web", "", bearer},
		{"GET", "/api/v1/groups/nope", "", bearer},
		{"GET", "/api/v1/groups/NOPE", "", bearer},
		{"GET", "/api/v1/nope", "", bearer},
		{"GET", "/api/v1/nope", "", ""},
		{"GET", "//api/v1/workloads", "", ""},
		{"GET", "/api/v1/../v1/health", "", ""},
		{"GET", "/api/v1/workloads/..%2F..%2Fhealth", "", bearer},
		{"GET", "/api/v1/heal%74h", "", ""},
		{"CONNECT", "/api/v1/health", "", ""},
		{"OPTIONS", "/", "", ""},
		{"PROPFIND", "/api/v1/groups", "", bearer},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, s.auth)
	}
	h := newHandler(newFake(true))
	allowed := map[int]bool{
		http.StatusOK:                 true,
		http.StatusBadRequest:         true,
		http.StatusUnauthorized:       true,
		http.StatusNotFound:           true,
		http.StatusMethodNotAllowed:   true,
		http.StatusConflict:           true,
		http.StatusServiceUnavailable: true,
	}
	f.Fuzz(func(t *testing.T, method, rawPath, query, auth string) {
		// Only what net/http would hand the handler: a method token and an origin-form
		// request target.
		if method == "" || strings.IndexFunc(method, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
			t.Skip()
		}
		if !strings.HasPrefix(rawPath, "/") {
			t.Skip()
		}
		target := rawPath
		if query != "" {
			target += "?" + query
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			t.Skip()
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Method = method
		req.URL = u
		req.RequestURI = target
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Header().Get("Content-Security-Policy") != "" {
			return // the web console's page or an asset, served to anyone (console_test.go)
		}

		authorized := strings.Contains(auth, testToken)
		if rec.Code/100 == 3 {
			// http.ServeMux redirects a path that is not clean (//, . or ..) to its clean
			// form before any handler runs; that is the only redirect there is.
			if method == http.MethodConnect || cleanPath(u.Path) == u.Path {
				t.Fatalf("%s %q: unexpected redirect %d to %q", method, target, rec.Code, rec.Header().Get("Location"))
			}
			if rec.Header().Get("Location") == "" {
				t.Fatalf("%s %q: redirect %d without Location", method, target, rec.Code)
			}
			return
		}
		if !allowed[rec.Code] {
			t.Fatalf("%s %q: status %d not among the expected ones (body %q)", method, target, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %q: Content-Type %q, want application/json", method, target, ct)
		}
		body := rec.Body.Bytes()
		if !json.Valid(body) {
			t.Fatalf("%s %q: body is not JSON: %q", method, target, body)
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		switch x := v.(type) {
		case []any:
			if rec.Code != http.StatusOK {
				t.Fatalf("%s %q: status %d with an array body", method, target, rec.Code)
			}
		case map[string]any:
			if rec.Code/100 != 2 && rec.Code != http.StatusServiceUnavailable {
				msg, ok := x["error"].(string)
				if !ok || msg == "" || len(x) != 1 {
					t.Fatalf(`%s %q: status %d with body %q, want {"error": "..."}`, method, target, rec.Code, body)
				}
			}
		default:
			t.Fatalf("%s %q: body %q is neither an array nor an object", method, target, body)
		}

		// Without the token, everything but health is 401: no 2xx, and no 404 or 405 that
		// would tell which paths exist.
		isHealth := u.Path == "/api/v1/health"
		if !authorized && !isHealth {
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("%s %q without the token: status %d, want 401 (body %q)", method, target, rec.Code, body)
			}
			if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("%s %q: 401 without a Bearer challenge", method, target)
			}
		}
	})
}
