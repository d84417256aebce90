package controller

import (
	"slices"
	"sync"
	"time"
)

// Event is something a person should know about: a compliance check that changed, and
// (as those parts land) policy violations, process and file alerts.
type Event struct {
	ID       uint64         `json:"id"`
	Time     time.Time      `json:"time"`
	Type     string         `json:"type"`     // e.g. "audit.changed"
	Severity string         `json:"severity"` // info, warning, critical
	Summary  string         `json:"summary"`
	Detail   map[string]any `json:"detail,omitempty"`
}

// Events keeps the most recent events, bounded in count. It is safe for concurrent use.
type Events struct {
	mu     sync.Mutex
	max    int
	maxAge time.Duration
	next   uint64
	events []Event
}

// NewEvents keeps at most max events.
func NewEvents(max int) *Events { return &Events{max: max} }

// SetMaxAge also drops events older than d (0: keep them whatever their age).
func (e *Events) SetMaxAge(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.maxAge = d
}

// Add records an event, stamping its ID (and its time, when unset).
func (e *Events) Add(ev Event) Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.next++
	ev.ID = e.next
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	e.events = append(e.events, ev)
	drop := max(len(e.events)-e.max, 0)
	if e.maxAge > 0 {
		cutoff := time.Now().Add(-e.maxAge)
		for drop < len(e.events)-1 && e.events[drop].Time.Before(cutoff) {
			drop++
		}
	}
	e.events = slices.Delete(e.events, 0, drop)
	return ev
}

// Update changes the event with the given ID in place, if it is still kept; it reports
// whether it was.
func (e *Events) Update(id uint64, fn func(*Event)) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	i, ok := slices.BinarySearchFunc(e.events, id, func(ev Event, id uint64) int { return cmpU64(ev.ID, id) })
	if !ok {
		return false
	}
	fn(&e.events[i])
	e.events[i].ID = id
	return true
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// List returns the events of the given type (all when empty), newest first, at most
// limit of them.
func (e *Events) List(typ string, limit int) []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []Event{}
	for i := len(e.events) - 1; i >= 0 && (limit <= 0 || len(out) < limit); i-- {
		if typ == "" || e.events[i].Type == typ {
			out = append(out, e.events[i])
		}
	}
	return out
}
