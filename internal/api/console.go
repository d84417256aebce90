package api

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/vigil-sec/vigil/internal/export"
	"github.com/vigil-sec/vigil/internal/policy"
	"github.com/vigil-sec/vigil/web"
)

// The web console's sign-in.
//
// The browser never holds the API token. `vigil console` (which can read the token)
// asks for a login code: 32 random bytes, good once, for loginCodeTTL. It opens
// /#/login/<code>; the code travels in the fragment, so it reaches neither the server's
// request logs nor a Referer. The page posts it to /api/v1/console/session and gets a
// session cookie: HttpOnly (scripts cannot read it), SameSite=Strict (no other site's
// page makes the browser send it), Secure when the request came over TLS. Someone with
// the token can also paste it into the login page, which exchanges it the same way.
//
// Requests authenticated by the cookie must, when they change something (any method but
// GET and HEAD), carry the header X-Vigil-Console: a page of another origin cannot add a
// custom header to a request without a CORS preflight, which Vigil never grants; an
// Origin header, when there is one, must name this server. Every request made with the
// cookie is refused when the browser says it comes from another site (Sec-Fetch-Site).
// Sessions live in memory: a restart of vigil up signs every browser out.

const (
	sessionCookie = "vigil_session"
	consoleHeader = "X-Vigil-Console"
	loginCodeTTL  = 2 * time.Minute
	sessionTTL    = 12 * time.Hour
	maxLoginCodes = 64  // outstanding codes; the oldest is dropped past it
	maxSessions   = 256 // live sessions; the oldest is dropped past it
)

// consoleAuth holds the login codes and sessions, by the SHA-256 of their value (a map
// lookup by the secret itself would leak its prefix through timing). It is safe for
// concurrent use.
type consoleAuth struct {
	mu       sync.Mutex
	codes    map[[32]byte]secretEntry
	sessions map[[32]byte]secretEntry
	seq      uint64
	now      func() time.Time
}

type secretEntry struct {
	expires time.Time
	seq     uint64 // order of creation: the first made is the first dropped
}

func newConsoleAuth() *consoleAuth {
	return &consoleAuth{codes: map[[32]byte]secretEntry{}, sessions: map[[32]byte]secretEntry{}, now: time.Now}
}

func randomSecret() (string, [32]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", [32]byte{}, fmt.Errorf("console: random secret: %w", err)
	}
	s := hex.EncodeToString(b)
	return s, sha256.Sum256([]byte(s)), nil
}

// add stores a new secret's hash in m with its expiry, dropping expired entries and,
// past limit, the oldest.
func (c *consoleAuth) add(m map[[32]byte]secretEntry, ttl time.Duration, limit int) (string, time.Time, error) {
	s, sum, err := randomSecret()
	if err != nil {
		return "", time.Time{}, err
	}
	now := c.now()
	exp := now.Add(ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range m {
		if !now.Before(e.expires) {
			delete(m, k)
		}
	}
	for len(m) >= limit {
		var oldest [32]byte
		first := true
		for k, e := range m {
			if first || e.seq < m[oldest].seq {
				oldest, first = k, false
			}
		}
		delete(m, oldest)
	}
	c.seq++
	m[sum] = secretEntry{expires: exp, seq: c.seq}
	return s, exp, nil
}

// check reports whether s is a live entry of m; take removes it as well.
func (c *consoleAuth) check(m map[[32]byte]secretEntry, s string, take bool) (time.Time, bool) {
	if s == "" || len(s) > 128 {
		return time.Time{}, false
	}
	sum := sha256.Sum256([]byte(s))
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := m[sum]
	if !ok {
		return time.Time{}, false
	}
	if take || !c.now().Before(e.expires) {
		delete(m, sum)
	}
	return e.expires, c.now().Before(e.expires)
}

// LoginCode is the answer of POST /api/v1/console/login-codes.
type LoginCode struct {
	Code      string    `json:"code"`
	Path      string    `json:"path"` // what to open on the server: /#/login/<code>
	ExpiresAt time.Time `json:"expires_at"`
}

// LoginRequest is the body of POST /api/v1/console/session: a login code or the token.
type LoginRequest struct {
	Code  string `json:"code,omitempty"`
	Token string `json:"token,omitempty"`
}

// Session is the answer of GET and POST /api/v1/console/session.
type Session struct {
	Via       string     `json:"via"` // "session" or "token"
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// consoleRoutes adds the console's API endpoints to mux.
func (s *Server) consoleRoutes(mux *http.ServeMux) {
	mux.Handle("/api/v1/console/login-codes", s.auth(methods{http.MethodPost: s.newLoginCode}))
	authed := s.auth(methods{http.MethodGet: s.getSession, http.MethodDelete: s.endSession})
	mux.Handle("/api/v1/console/session", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Signing in is the one call made without credentials; everything else about the
		// session needs them (and an unauthenticated caller learns nothing more).
		if r.Method == http.MethodPost {
			s.login(w, r)
			return
		}
		authed.ServeHTTP(w, r)
	}))
	if s.policy != nil {
		mux.Handle("/api/v1/policy/export", s.auth(methods{http.MethodGet: s.exportPolicy}))
	}
}

// sessionOf authenticates a request by its session cookie. It answers ok for a live
// session that passes the cross-site checks; otherwise code and msg say how to refuse
// it, or code is 0 when the request carries no session cookie at all.
func (s *Server) sessionOf(r *http.Request) (ok bool, code int, msg string) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return false, 0, ""
	}
	if _, live := s.console.check(s.console.sessions, ck.Value, false); !live {
		return false, http.StatusUnauthorized, "console session expired or unknown: sign in again"
	}
	if msg := crossSite(r); msg != "" {
		return false, http.StatusForbidden, msg
	}
	return true, 0, ""
}

// crossSite says why a request made with the session cookie must be refused as coming
// from another site, or "" when it need not be.
func crossSite(r *http.Request) string {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return "cross-site request refused"
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return ""
	}
	if r.Header.Get(consoleHeader) == "" {
		return "request refused: changes made with a console session need the " + consoleHeader + " header"
	}
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host && o != "https://"+r.Host {
		return fmt.Sprintf("request from origin %q refused", o)
	}
	return ""
}

func (s *Server) newLoginCode(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	// Only the token mints codes: a session that could would never have to end.
	if r.Header.Get("Authorization") == "" {
		writeError(w, http.StatusForbidden, "login codes are given to the API token only, not to a console session")
		return
	}
	code, exp, err := s.console.add(s.console.codes, loginCodeTTL, maxLoginCodes)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, LoginCode{Code: code, Path: "/#/login/" + code, ExpiresAt: exp.UTC()})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	// Every refusal is a 401, as for any other call without valid credentials.
	refuse := func(msg string) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
		writeError(w, http.StatusUnauthorized, msg)
	}
	if r.URL.RawQuery != "" {
		refuse("sign-in takes no query parameters")
		return
	}
	if msg := crossSite(r); msg != "" {
		refuse(msg)
		return
	}
	var req LoginRequest
	if err := readJSON(r, &req); err != nil {
		refuse(err.Error())
		return
	}
	switch {
	case req.Code != "" && req.Token == "":
		if _, ok := s.console.check(s.console.codes, req.Code, true); !ok {
			refuse("login code expired, used or unknown: run vigil console again")
			return
		}
	case req.Token != "" && req.Code == "":
		if !tokenEqual(strings.TrimSpace(req.Token), s.token) {
			refuse("invalid token")
			return
		}
	default:
		refuse(`want {"code": ...} or {"token": ...}`)
		return
	}
	id, exp, err := s.console.add(s.console.sessions, sessionTTL, maxSessions)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    id,
		Path:     "/",
		Expires:  exp,
		MaxAge:   int(sessionTTL / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	exp = exp.UTC()
	writeJSON(w, http.StatusOK, Session{Via: "session", ExpiresAt: &exp})
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	if ck, err := r.Cookie(sessionCookie); err == nil && r.Header.Get("Authorization") == "" {
		if exp, ok := s.console.check(s.console.sessions, ck.Value, false); ok {
			exp = exp.UTC()
			writeJSON(w, http.StatusOK, Session{Via: "session", ExpiresAt: &exp})
			return
		}
	}
	writeJSON(w, http.StatusOK, Session{Via: "token"})
}

func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	if ck, err := r.Cookie(sessionCookie); err == nil {
		s.console.check(s.console.sessions, ck.Value, true)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// exportPolicy answers the policy as a file: Vigil's YAML (as `vigil policy export`
// writes it), Kubernetes NetworkPolicies or CiliumNetworkPolicies.
func (s *Server) exportPolicy(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "format", "namespace") {
		return
	}
	q := r.URL.Query()
	format, ns := cmpOr(q.Get("format"), "yaml"), cmpOr(q.Get("namespace"), "default")
	p := s.policy.Policy()
	p = policy.Policy{DefaultMode: p.DefaultMode, Groups: p.Groups, Rules: p.Rules}
	var (
		out []byte
		err error
	)
	switch format {
	case "yaml":
		out, err = export.MarshalYAML(p)
	case "networkpolicy":
		out, err = export.NetworkPolicies(p, ns)
	case "cilium":
		out, err = export.CiliumPolicies(p, ns)
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid format %q: want yaml, networkpolicy or cilium", format))
		return
	}
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="vigil-policy-%s.yaml"`, format))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(out) // the client hung up; nothing left to tell it
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// consoleCSP allows the console's own scripts, styles and connections, and nothing else:
// no inline script or style, no framing, no other origin.
const consoleCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func consoleHeaders(h http.Header) {
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// consolePages serves the console's page and assets to anyone (they hold no data: the data
// comes from the API, behind authentication); every other path goes to next.
func (s *Server) consolePages(next http.Handler) http.Handler {
	assets, err := web.Console()
	if err != nil && !errors.Is(err, web.ErrNotBuilt) {
		s.log.Warn("web console unavailable", "err", err)
	}
	gzipped := compressAssets(assets, s.log)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		isPage := p == "/" || p == "/index.html"
		isAsset := strings.HasPrefix(p, "/assets/") && path.Base(p) != "." && !strings.Contains(p[len("/assets/"):], "/")
		if !isPage && !isAsset || r.Method != http.MethodGet && r.Method != http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		consoleHeaders(w.Header())
		if assets == nil {
			if !isPage {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusServiceUnavailable)
			if r.Method == http.MethodGet {
				_, _ = w.Write(web.Unbuilt())
			}
			return
		}
		name := "index.html"
		if isAsset {
			name = p[1:]
		}
		data, err := fs.ReadFile(assets, name)
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		if isPage {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
		} else {
			w.Header().Set("Content-Type", assetType(name))
			// Asset names carry a hash of their content.
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
			w.Header().Set("Vary", "Accept-Encoding")
			if gz, ok := gzipped[name]; ok && acceptsGzip(r) {
				w.Header().Set("Content-Encoding", "gzip")
				data = gz
			}
		}
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(data)
		}
	})
}

// assetType is the Content-Type of a built asset, from a fixed table rather than the
// host's mime.types, so that what the browser is told does not depend on the host.
func assetType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".txt":
		return "text/plain; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	}
	return "application/octet-stream"
}

// compressAssets gzips, once at start, the console's assets that gain from it (the
// bundle shrinks to about a third), keyed by their name in fsys.
func compressAssets(fsys fs.FS, log *slog.Logger) map[string][]byte {
	out := map[string][]byte{}
	if fsys == nil {
		return out
	}
	entries, err := fs.ReadDir(fsys, "assets")
	if err != nil {
		return out
	}
	for _, e := range entries {
		name := "assets/" + e.Name()
		data, err := fs.ReadFile(fsys, name)
		if err != nil || len(data) < 1024 {
			continue
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if _, err := zw.Write(data); err != nil || zw.Close() != nil {
			log.Warn("web console: compress asset", "asset", name, "err", err)
			continue
		}
		if buf.Len() < len(data)*9/10 {
			out[name] = buf.Bytes()
		}
	}
	return out
}

// acceptsGzip tells whether the request's Accept-Encoding takes gzip (and does not refuse
// it with q=0).
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				continue
			}
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
