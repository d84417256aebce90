package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/vigil-sec/vigil/internal/audit"
	"github.com/vigil-sec/vigil/internal/controller"
)

// Auditor is what the API needs of the controller's compliance auditor.
type Auditor interface {
	Audit(ctx context.Context) (audit.Report, error)
	Latest() (audit.Report, bool, error)
}

// EventLog is what the API needs of the controller's events.
type EventLog interface {
	List(typ string, limit int) []controller.Event
	Subscribe(typ string, buffer int) *controller.EventSub
}

// SetAudit serves the audit and event endpoints. Call it before Handler.
func (s *Server) SetAudit(a Auditor, events EventLog) {
	s.auditor = a
	s.events = events
}

// auditTimeout bounds an audit run on demand.
const auditTimeout = 2 * time.Minute

func (s *Server) getAudit(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	rep, ok, err := s.auditor.Latest()
	if !ok {
		msg := "no audit has finished yet"
		if err != nil {
			msg += ": the last one failed: " + err.Error()
		}
		writeError(w, http.StatusNotFound, msg)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) runAudit(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	if r.ContentLength > 0 {
		writeError(w, http.StatusBadRequest, "this endpoint takes no request body")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), auditTimeout)
	defer cancel()
	rep, err := s.auditor.Audit(ctx)
	switch {
	case errors.Is(err, controller.ErrAuditRunning):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("audit failed: %v", err))
	default:
		writeJSON(w, http.StatusOK, rep)
	}
}

var eventTypePattern = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,63}$`)

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "type", "limit") {
		return
	}
	q := r.URL.Query()
	typ := q.Get("type")
	if typ != "" && !eventTypePattern.MatchString(typ) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid event type %q", typ))
		return
	}
	limit, err := queryLimit(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.events.List(typ, limit))
}

// streamEvents sends events (and the updates of aggregated ones) as server-sent events
// named "event".
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, "type") {
		return
	}
	typ := r.URL.Query().Get("type")
	if typ != "" && !eventTypePattern.MatchString(typ) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid event type %q", typ))
		return
	}
	sub := s.events.Subscribe(typ, 4096)
	defer sub.Close()
	streamSSE(w, r, "events", "event", sub.C, sub.Err)
}
