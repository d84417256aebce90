package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/internal/flow"
	"github.com/vigil-sec/vigil/internal/policy"
)

// Policy is what the API needs of the controller's policy engine.
type Policy interface {
	Policy() policy.Policy
	SetMode(group string, m policy.Mode) error
	SetDefaultMode(m policy.Mode) error
	AddRule(r policy.Rule) (policy.Rule, error)
	DeleteRule(id string) error
	Promote(id string) (policy.Rule, error)
	Simulate(records []flow.Record, mode policy.Mode, groups []string) ([]controller.SimResult, error)
	Apply(p policy.Policy) error
	PutGroup(g policy.Group) error
}

// SetPolicy serves the policy endpoints. Call it before Handler.
func (s *Server) SetPolicy(p Policy) { s.policy = p }

// maxBody bounds a request body.
const maxBody = 1 << 20

// readJSON decodes one JSON object from the request body, strictly: unknown fields, a
// second value or a body over maxBody are errors.
func readJSON(r *http.Request, into any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("Content-Type %q: want application/json", ct)
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty request body: want a JSON object")
		}
		return fmt.Errorf("request body: %w", err)
	}
	if dec.More() {
		return errors.New("request body: more than one JSON value")
	}
	return nil
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	p := s.policy.Policy()
	writeJSON(w, http.StatusOK, controller.PolicyView{DefaultMode: p.DefaultMode, Groups: nonNil(p.Groups), Rules: nonNil(p.Rules)})
}

// putPolicy replaces the whole policy with the one in the body (controller.PolicyView
// JSON, as GET answers it): validated, then applied at once.
func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	var v controller.PolicyView
	if err := readJSON(r, &v); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p := policy.Policy{DefaultMode: v.DefaultMode, Groups: v.Groups, Rules: v.Rules}
	if err := s.policy.Apply(p); err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	s.getPolicy(w, r)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *Server) listRules(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, nonNil(s.policy.Policy().Rules))
}

// RuleRequest is the body of POST /api/v1/rules.
type RuleRequest struct {
	From   string   `json:"from"`
	To     string   `json:"to"`
	Ports  string   `json:"ports"` // "tcp/5432", "tcp/8000-8100, udp/53", "any"
	Apps   []string `json:"apps,omitempty"`
	Action string   `json:"action,omitempty"` // allow (default) or deny
}

func (s *Server) addRule(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	var req RuleRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rule, err := ruleFrom(req)
	if err == nil {
		rule, err = s.policy.AddRule(rule)
	}
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, rule)
}

func ruleFrom(req RuleRequest) (policy.Rule, error) {
	from, err := policy.CanonicalEndpoint(req.From)
	if err != nil {
		return policy.Rule{}, fmt.Errorf("from: %w", err)
	}
	to, err := policy.CanonicalEndpoint(req.To)
	if err != nil {
		return policy.Rule{}, fmt.Errorf("to: %w", err)
	}
	ports, err := policy.ParsePorts(req.Ports)
	if err != nil {
		return policy.Rule{}, fmt.Errorf("ports: %w", err)
	}
	action := policy.ActionAllow
	if req.Action != "" {
		if action, err = policy.ParseAction(req.Action); err != nil || (action != policy.ActionAllow && action != policy.ActionDeny) {
			return policy.Rule{}, fmt.Errorf("action %q: want allow or deny", req.Action)
		}
	}
	return policy.Rule{From: from, To: to, Ports: ports, Apps: req.Apps, Action: action}, nil
}

// statusOf maps the policy's errors to HTTP statuses.
func statusOf(err error) int {
	switch {
	case errors.Is(err, policy.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, controller.ErrNoRule):
		return http.StatusNotFound
	case errors.Is(err, controller.ErrLearned):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

var ruleIDPattern = regexp.MustCompile(`^[a-z]-[0-9a-f]{8,64}$`)

// ruleID reads the rule id of the path, answering 400 when it is not one.
func ruleID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !ruleIDPattern.MatchString(id) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid rule id %q", id))
		return "", false
	}
	return id, true
}

func (s *Server) deleteRule(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	id, ok := ruleID(w, r)
	if !ok {
		return
	}
	if err := s.policy.DeleteRule(id); err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) promoteRule(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	id, ok := ruleID(w, r)
	if !ok {
		return
	}
	rule, err := s.policy.Promote(id)
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rule)
}

// ModeRequest is the body of the mode endpoints.
type ModeRequest struct {
	Mode string `json:"mode"`
}

func readMode(r *http.Request) (policy.Mode, error) {
	var req ModeRequest
	if err := readJSON(r, &req); err != nil {
		return 0, err
	}
	return policy.ParseMode(req.Mode)
}

func (s *Server) setGroupMode(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	name := r.PathValue("name")
	m, err := readMode(r)
	if err == nil {
		err = s.policy.SetMode(name, m)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"group": name, "mode": m.String()})
}

func (s *Server) setDefaultMode(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	m, err := readMode(r)
	if err == nil {
		err = s.policy.SetDefaultMode(m)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"default_mode": m.String()})
}

// SimulateRequest is the body of POST /api/v1/policy/simulate.
type SimulateRequest struct {
	Mode   string   `json:"mode"`             // protect (default) or monitor
	Groups []string `json:"groups,omitempty"` // the groups to switch; all when empty
	Since  string   `json:"since,omitempty"`  // how far back to replay: a duration, default 24h
}

// simulationLimit bounds how many recorded flows one simulation replays.
const simulationLimit = 100000

func (s *Server) simulate(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	var req SimulateRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	mode := policy.ModeProtect
	if req.Mode != "" {
		m, err := policy.ParseMode(req.Mode)
		if err != nil || m == policy.ModeDiscover {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("mode %q: want protect or monitor", req.Mode))
			return
		}
		mode = m
	}
	since := 24 * time.Hour
	if req.Since != "" {
		d, err := time.ParseDuration(req.Since)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since %q: want a duration such as 24h", req.Since))
			return
		}
		since = d
	}
	for _, g := range req.Groups {
		if _, err := policy.CanonicalEndpoint(g); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if s.flows == nil {
		writeError(w, http.StatusServiceUnavailable, "no flow history to replay")
		return
	}
	records := s.flows.List(controller.Filter{Since: time.Now().Add(-since)}, simulationLimit)
	res, err := s.policy.Simulate(records, mode, req.Groups)
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"mode": mode.String(), "flows_replayed": len(records), "not_allowed": nonNil(res)})
}

// GroupRequest is the body of PUT /api/v1/policy/groups/{name}.
type GroupRequest struct {
	Criteria []string `json:"criteria"` // label:K=V, image:GLOB, name:GLOB, service:GLOB, address:CIDR, dns:GLOB
	Mode     string   `json:"mode,omitempty"`
}

func (s *Server) putGroup(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	var req GroupRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	g := policy.Group{Name: r.PathValue("name"), Origin: policy.GroupCustom}
	for _, c := range req.Criteria {
		crit, err := policy.ParseCriterion(c)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		g.Criteria = append(g.Criteria, crit)
	}
	if req.Mode != "" {
		m, err := policy.ParseMode(req.Mode)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		g.Mode = m
	}
	if err := s.policy.PutGroup(g); err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, g)
}
