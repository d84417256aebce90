package api

import (
	"fmt"
	"net/http"
	"regexp"

	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/internal/scan/report"
)

// Vulnerabilities is what the API needs of the controller's vulnerability service.
type Vulnerabilities interface {
	List(q controller.VulnQuery) []controller.VulnTarget
	Rescan() int
}

// SetVulnerabilities serves the vulnerability endpoints. Call it before Handler.
func (s *Server) SetVulnerabilities(v Vulnerabilities) { s.vulns = v }

func (s *Server) vulnRoutes(mux *http.ServeMux) {
	if s.vulns == nil {
		return
	}
	mux.Handle("/api/v1/vulnerabilities", s.auth(methods{http.MethodGet: s.listVulnerabilities}))
	mux.Handle("/api/v1/vulnerabilities/scan", s.auth(methods{http.MethodPost: s.rescanVulnerabilities}))
}

// imagePattern bounds an image filter: an ID, an ID prefix or a reference
// (registry/name:tag@digest).
var imagePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.:/@-]{0,254}$`)

// RescanAnswer is the body of POST /api/v1/vulnerabilities/scan.
type RescanAnswer struct {
	Queued int `json:"queued"`
}

func (s *Server) listVulnerabilities(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "workload", "image", "host", "severity") {
		return
	}
	query := r.URL.Query()
	var q controller.VulnQuery
	if ref := query.Get("workload"); ref != "" {
		wl, ok := s.workload(w, ref)
		if !ok {
			return
		}
		q.Workload = wl.ID
	}
	if img := query.Get("image"); img != "" {
		if !imagePattern.MatchString(img) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid image %q: give an image ID, an ID prefix or a reference", img))
			return
		}
		q.Image = img
	}
	switch h := query.Get("host"); h {
	case "", "true", "false":
		q.Host = h
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("host=%q: want true or false", h))
		return
	}
	if sev := query.Get("severity"); sev != "" {
		l, err := report.ParseSeverity(sev)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		q.MinSeverity = l
	}
	writeJSON(w, http.StatusOK, s.vulns.List(q))
}

func (s *Server) rescanVulnerabilities(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	if r.ContentLength > 0 {
		writeError(w, http.StatusBadRequest, "this endpoint takes no request body")
		return
	}
	// The scans run in the background, one at a time; GET shows their progress.
	writeJSON(w, http.StatusAccepted, RescanAnswer{Queued: s.vulns.Rescan()})
}
