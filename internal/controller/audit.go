package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-sec/vigil/internal/audit"
)

// ErrAuditRunning is returned when an audit is asked for while one runs.
var ErrAuditRunning = errors.New("an audit is already running")

// Auditor runs the compliance audit at start, every interval and on demand, keeps the
// latest report, and raises an event for every check whose result changed since the
// previous run. It is safe for concurrent use.
type Auditor struct {
	run      func(ctx context.Context) (audit.Report, error)
	events   *Events
	interval time.Duration
	log      *slog.Logger

	running sync.Mutex
	mu      sync.Mutex
	latest  *audit.Report
	lastErr error
}

// NewAuditor audits with run; interval 0 means only at start and on demand.
func NewAuditor(run func(ctx context.Context) (audit.Report, error), events *Events, interval time.Duration, log *slog.Logger) *Auditor {
	return &Auditor{run: run, events: events, interval: interval, log: log}
}

// Run audits now and then every interval until ctx ends.
func (a *Auditor) Run(ctx context.Context) error {
	if _, err := a.Audit(ctx); err != nil && ctx.Err() == nil {
		a.log.Warn("audit failed", "err", err)
	}
	if a.interval <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(a.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := a.Audit(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrAuditRunning) {
				a.log.Warn("audit failed", "err", err)
			}
		}
	}
}

// Audit runs the audit now, unless one is running.
func (a *Auditor) Audit(ctx context.Context) (audit.Report, error) {
	if !a.running.TryLock() {
		return audit.Report{}, ErrAuditRunning
	}
	defer a.running.Unlock()
	rep, err := a.run(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastErr = err
	if err != nil {
		return rep, err
	}
	if a.latest != nil {
		for _, ev := range changes(a.latest, &rep) {
			a.events.Add(ev)
		}
	}
	a.latest = &rep
	a.log.Info("audit done", "pass", rep.Summary.Pass, "warn", rep.Summary.Warn, "score", rep.Summary.Score)
	return rep, nil
}

// Latest returns the last report, or false when no audit has finished yet (with the
// last error, if it failed).
func (a *Auditor) Latest() (audit.Report, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.latest == nil {
		return audit.Report{}, false, a.lastErr
	}
	return *a.latest, true, a.lastErr
}

// changes compares two reports check by check.
func changes(prev, cur *audit.Report) []Event {
	before := map[string]audit.Result{}
	for _, r := range prev.Results {
		before[r.ID] = r
	}
	var out []Event
	for _, r := range cur.Results {
		old, ok := before[r.ID]
		if !ok || (old.Status == r.Status && sameTargets(old.Targets, r.Targets)) {
			continue
		}
		sev := "info"
		if r.Status == audit.Warn {
			sev = "warning"
		}
		out = append(out, Event{
			Time:     cur.StartedAt,
			Type:     "audit.changed",
			Severity: sev,
			Summary:  fmt.Sprintf("CIS %s %s: %s -> %s", r.ID, r.Title, old.Status, r.Status),
			Detail: map[string]any{"check": r.ID, "from": old.Status, "to": r.Status,
				"targets": r.Targets, "previous_targets": old.Targets, "reason": r.Reason},
		})
	}
	return out
}

func sameTargets(a, b []audit.Target) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[audit.Target]int{}
	for _, t := range a {
		seen[t]++
	}
	for _, t := range b {
		if seen[t] == 0 {
			return false
		}
		seen[t]--
	}
	return true
}
