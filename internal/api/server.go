package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/internal/workload"
)

// Workloads is what the API needs of the workload registry.
type Workloads interface {
	List() []workload.Workload
	Get(ref string) (workload.Workload, error)
	Groups() []workload.Group
	Status() workload.Status
}

// Server serves the REST API. It is safe for concurrent use.
type Server struct {
	workloads Workloads
	flows     Flows
	dataPath  func() any
	auditor   Auditor
	events    EventLog
	policy    Policy
	processes Processes
	vulns     Vulnerabilities
	token     string
	version   string
	log       *slog.Logger
	started   time.Time
	console   *consoleAuth // the web console's login codes and sessions
}

// NewServer returns a server over w that accepts token, which must be a well-formed Vigil
// token (an empty one would let an empty credential in).
func NewServer(w Workloads, token, version string, log *slog.Logger) (*Server, error) {
	if err := checkToken(token); err != nil {
		return nil, fmt.Errorf("api server: %w", err)
	}
	return &Server{workloads: w, token: token, version: version, log: log, started: time.Now(), console: newConsoleAuth()}, nil
}

// Health is the body of GET /api/v1/health.
type Health struct {
	Status    string          `json:"status"` // "ok" or "degraded"
	Version   string          `json:"version"`
	Uptime    string          `json:"uptime"`
	Runtime   workload.Status `json:"runtime"`
	Workloads int             `json:"workloads"`
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
}

// Handler returns the API's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/v1/health", methods{http.MethodGet: s.health})
	mux.Handle("/api/v1/workloads", s.auth(methods{http.MethodGet: s.listWorkloads}))
	mux.Handle("/api/v1/workloads/{ref}", s.auth(methods{http.MethodGet: s.getWorkload}))
	mux.Handle("/api/v1/groups", s.auth(methods{http.MethodGet: s.listGroups}))
	mux.Handle("/api/v1/groups/{name}", s.auth(methods{http.MethodGet: s.getGroup}))
	if s.flows != nil {
		mux.Handle("/api/v1/flows", s.auth(methods{http.MethodGet: s.listFlows}))
		mux.Handle("/api/v1/flows/stream", s.auth(methods{http.MethodGet: s.streamFlows}))
		mux.Handle("/api/v1/graph", s.auth(methods{http.MethodGet: s.graph}))
		mux.Handle("/api/v1/capture", s.auth(methods{http.MethodGet: s.capture}))
	}
	if s.policy != nil {
		mux.Handle("/api/v1/policy", s.auth(methods{http.MethodGet: s.getPolicy, http.MethodPut: s.putPolicy}))
		mux.Handle("/api/v1/policy/default-mode", s.auth(methods{http.MethodPut: s.setDefaultMode}))
		mux.Handle("/api/v1/policy/groups/{name}", s.auth(methods{http.MethodPut: s.putGroup}))
		mux.Handle("/api/v1/policy/simulate", s.auth(methods{http.MethodPost: s.simulate}))
		mux.Handle("/api/v1/groups/{name}/mode", s.auth(methods{http.MethodPut: s.setGroupMode}))
		mux.Handle("/api/v1/rules", s.auth(methods{http.MethodGet: s.listRules, http.MethodPost: s.addRule}))
		mux.Handle("/api/v1/rules/{id}", s.auth(methods{http.MethodDelete: s.deleteRule}))
		mux.Handle("/api/v1/rules/{id}/promote", s.auth(methods{http.MethodPost: s.promoteRule}))
	}
	if s.auditor != nil {
		mux.Handle("/api/v1/audit", s.auth(methods{http.MethodGet: s.getAudit}))
		mux.Handle("/api/v1/audit/run", s.auth(methods{http.MethodPost: s.runAudit}))
		mux.Handle("/api/v1/events", s.auth(methods{http.MethodGet: s.listEvents}))
		mux.Handle("/api/v1/events/stream", s.auth(methods{http.MethodGet: s.streamEvents}))
	}
	s.processRoutes(mux)
	s.vulnRoutes(mux)
	s.consoleRoutes(mux)
	// Anything else is unknown, but only an authenticated caller learns which paths exist.
	notFound := s.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s", r.URL.Path))
	}))
	// The web console's page and assets are served to anyone: they hold no data.
	mux.Handle("/", s.consolePages(notFound))
	return s.logRequests(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// ServeMux would redirect a path that is not in canonical form (//x, /a/../b) with
		// an HTML body before any check; such paths name no endpoint.
		if p := r.URL.EscapedPath(); p == "" || path.Clean(p) != p && path.Clean(p)+"/" != p {
			notFound.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
}

// methods routes by HTTP method and answers 405 with an Allow header for the others.
type methods map[string]http.HandlerFunc

func (m methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := m[r.Method]; ok {
		h(w, r)
		return
	}
	if r.Method == http.MethodHead {
		if h, ok := m[http.MethodGet]; ok {
			h(w, r)
			return
		}
	}
	allow := make([]string, 0, len(m)+1)
	for k := range m {
		allow = append(allow, k)
		if k == http.MethodGet {
			allow = append(allow, http.MethodHead)
		}
	}
	slices.Sort(allow)
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path))
}

func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" {
			// The web console's browsers authenticate with a session cookie instead.
			if ok, code, msg := s.sessionOf(r); ok {
				next.ServeHTTP(w, r)
				return
			} else if code != 0 {
				writeError(w, code, msg)
				return
			}
		}
		scheme, tok, ok := strings.Cut(h, " ")
		if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") || !tokenEqual(strings.TrimSpace(tok), s.token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
			msg := "missing bearer token"
			if h != "" {
				msg = "invalid bearer token"
			}
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(rec, r)
		level := slog.LevelDebug
		if rec.status == http.StatusUnauthorized {
			level = slog.LevelWarn
		}
		s.log.Log(r.Context(), level, "api request", "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "remote", r.RemoteAddr, "duration", time.Since(start).Round(time.Microsecond))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (to flush a stream).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	st := s.workloads.Status()
	h := Health{
		Status:    "ok",
		Version:   s.version,
		Uptime:    time.Since(s.started).Round(time.Second).String(),
		Runtime:   st,
		Workloads: len(s.workloads.List()),
	}
	code := http.StatusOK
	if !st.Connected {
		h.Status = "degraded"
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, h)
}

// groupPattern is what a group name may look like: the prefix and a DNS label, or a
// special endpoint.
var groupPattern = regexp.MustCompile(`^([a-z0-9]([a-z0-9.-]{0,250}[a-z0-9])?)$`)

func (s *Server) listWorkloads(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "group") {
		return
	}
	group := r.URL.Query().Get("group")
	if group != "" && !groupPattern.MatchString(group) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid group name %q", group))
		return
	}
	list := []workload.Workload{}
	for _, wl := range s.workloads.List() {
		if group == "" || wl.Group == group {
			list = append(list, wl)
		}
	}
	writeJSON(w, http.StatusOK, list)
}

// refPattern bounds what a workload reference may be: a container ID, prefix or name.
var refPattern = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$`)

func (s *Server) getWorkload(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	if wl, ok := s.workload(w, r.PathValue("ref")); ok {
		writeJSON(w, http.StatusOK, wl)
	}
}

// workload resolves a workload reference given in a request, answering 400, 404 or 409
// (and false) when it names no single workload.
func (s *Server) workload(w http.ResponseWriter, ref string) (workload.Workload, bool) {
	if !refPattern.MatchString(ref) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid workload reference %q: give an ID, an ID prefix or a name", ref))
		return workload.Workload{}, false
	}
	wl, err := s.workloads.Get(ref)
	switch {
	case errors.Is(err, workload.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no workload %q", ref))
	case errors.Is(err, workload.ErrAmbiguous):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		return wl, true
	}
	return workload.Workload{}, false
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	groups := s.workloads.Groups()
	if groups == nil {
		groups = []workload.Group{}
	}
	writeJSON(w, http.StatusOK, groups)
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	name := r.PathValue("name")
	if !groupPattern.MatchString(name) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid group name %q", name))
		return
	}
	for _, g := range s.workloads.Groups() {
		if g.Name == name {
			writeJSON(w, http.StatusOK, g)
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no group %q", name))
}

// checkQuery rejects query parameters the endpoint does not take, so that a typo in a
// filter is an error rather than an unfiltered answer.
func checkQuery(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	q, err := parseQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return false
	}
	for k, v := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q", k))
			return false
		}
		if len(v) > 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("query parameter %q given %d times", k, len(v)))
			return false
		}
	}
	return true
}

func parseQuery(r *http.Request) (map[string][]string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("malformed query string: %w", err)
	}
	return q, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client hung up; nothing left to tell it
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorBody{Error: msg})
}
