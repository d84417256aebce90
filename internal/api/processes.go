package api

import (
	"fmt"
	"net/http"

	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/internal/procmon"
	"github.com/vigil-sec/vigil/internal/workload"
)

// Processes is what the API needs of the controller's process engine.
type Processes interface {
	Processes(workloadID string) []controller.ProcessView
	Profile(group string) (controller.ProfileView, bool)
	Profiles() []controller.ProfileView
	Stats() controller.ProcessStats
	ReplaceProfiles(map[string][]procmon.ProfileEntry) error
}

// ProfilesRequest is the body of PUT /api/v1/profiles: the groups whose profiles are
// replaced, each with every entry it keeps.
type ProfilesRequest struct {
	Profiles []ProfileBody `json:"profiles"`
}

// ProfileBody is one group's profile in a ProfilesRequest.
type ProfileBody struct {
	Group   string                 `json:"group"`
	Entries []procmon.ProfileEntry `json:"entries"`
}

// SetProcesses serves the process tree and the process profiles. Call it before Handler.
func (s *Server) SetProcesses(p Processes) { s.processes = p }

// processRoutes adds the process endpoints to mux when SetProcesses was called.
func (s *Server) processRoutes(mux *http.ServeMux) {
	if s.processes == nil {
		return
	}
	mux.Handle("/api/v1/processes", s.auth(methods{http.MethodGet: s.listProcesses}))
	mux.Handle("/api/v1/processes/stats", s.auth(methods{http.MethodGet: s.processStats}))
	mux.Handle("/api/v1/profiles", s.auth(methods{http.MethodGet: s.listProfiles, http.MethodPut: s.putProfiles}))
	mux.Handle("/api/v1/profiles/{group}", s.auth(methods{http.MethodGet: s.getProfile}))
}

// listProcesses answers the live process tree, as a list ordered by PID whose ppid
// fields make the tree; ?workload=REF keeps one workload's ("host" for the host's).
func (s *Server) listProcesses(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "workload") {
		return
	}
	ref := r.URL.Query().Get("workload")
	id := ""
	if ref != "" {
		wl, ok := s.workload(w, ref)
		if !ok {
			return
		}
		id = wl.ID
		if wl.Kind == workload.KindHost {
			id = workload.HostID
		}
	}
	writeJSON(w, http.StatusOK, s.processes.Processes(id))
}

func (s *Server) listProfiles(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, s.processes.Profiles())
}

// putProfiles replaces the profiles of the groups the body names (vigil policy apply).
func (s *Server) putProfiles(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	var req ProfilesRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	profiles := make(map[string][]procmon.ProfileEntry, len(req.Profiles))
	for _, p := range req.Profiles {
		if _, dup := profiles[p.Group]; dup {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("group %q is listed twice", p.Group))
			return
		}
		profiles[p.Group] = nonNil(p.Entries)
	}
	if err := s.processes.ReplaceProfiles(profiles); err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.processes.Profiles())
}

func (s *Server) getProfile(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	group := r.PathValue("group")
	if !groupPattern.MatchString(group) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid group name %q", group))
		return
	}
	p, ok := s.processes.Profile(group)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("group %q has no process profile (it has run nothing in discover mode)", group))
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// processStats answers the process monitor's and engine's counters: events received,
// lost (kernel sequence gaps), dropped, unread; learned, violations, killed, refused.
func (s *Server) processStats(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, s.processes.Stats())
}
