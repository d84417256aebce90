package controller

import (
	"context"
	"log/slog"
	"slices"
	"strings"
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

// TypeMatches tells whether an event of type typ is selected by want: all types when want
// is empty, else the type itself and its subtypes ("process" selects "process" and
// "process.drift").
func TypeMatches(want, typ string) bool {
	return want == "" || typ == want || strings.HasPrefix(typ, want+".")
}

// Events keeps the most recent events, bounded in count. It is safe for concurrent use.
type Events struct {
	mu      sync.Mutex
	max     int
	maxAge  time.Duration
	next    uint64
	events  []Event
	store   EventStore
	pending map[uint64]bool // updated in memory, not yet persisted
	log     *slog.Logger
	subs    map[*EventSub]struct{}
}

// EventSub delivers events as they are added or updated (an aggregated violation is
// delivered again with its new count).
type EventSub struct {
	C <-chan Event

	c      chan Event
	typ    string
	events *Events
	err    error // guarded by events.mu
}

// Subscribe delivers events of the given type (all when empty) from now on. A reader
// that falls buffer events behind is dropped (its channel closed, Err ErrLagged).
func (e *Events) Subscribe(typ string, buffer int) *EventSub {
	ch := make(chan Event, max(buffer, 1))
	s := &EventSub{C: ch, c: ch, typ: typ, events: e}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.subs == nil {
		e.subs = map[*EventSub]struct{}{}
	}
	e.subs[s] = struct{}{}
	return s
}

// Close ends the subscription.
func (s *EventSub) Close() {
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	if _, ok := s.events.subs[s]; ok {
		delete(s.events.subs, s)
		close(s.c)
	}
}

// Err tells why the channel closed: nil after Close, ErrLagged when the reader fell
// behind.
func (s *EventSub) Err() error {
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	return s.err
}

func (e *Events) publishLocked(ev Event) {
	for s := range e.subs {
		if !TypeMatches(s.typ, ev.Type) {
			continue
		}
		select {
		case s.c <- cloneEvent(ev):
		default:
			s.err = ErrLagged
			delete(e.subs, s)
			close(s.c)
		}
	}
}

// cloneEvent copies the top level of Detail, which Update changes in place.
func cloneEvent(ev Event) Event {
	if ev.Detail != nil {
		d := make(map[string]any, len(ev.Detail))
		for k, v := range ev.Detail {
			d[k] = v
		}
		ev.Detail = d
	}
	return ev
}

// EventStore persists events. Append assigns the ID.
type EventStore interface {
	AppendEvent(ev Event) (Event, error)
	UpdateEvent(ev Event) error
	RecentEvents(limit int) ([]Event, error) // newest first
}

// Persist has events written to st: new events at once, updates (a violation's count)
// by Flush, which RunFlush calls every second. It loads the most recent stored events
// first. Call it before events are added.
func (e *Events) Persist(st EventStore, log *slog.Logger) error {
	recent, err := st.RecentEvents(e.max)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.store, e.log, e.pending = st, log, map[uint64]bool{}
	for i := len(recent) - 1; i >= 0; i-- {
		e.events = append(e.events, recent[i])
		e.next = max(e.next, recent[i].ID)
	}
	return nil
}

// Flush writes the updates not yet persisted.
func (e *Events) Flush() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.store == nil {
		return
	}
	for id := range e.pending {
		i, ok := slices.BinarySearchFunc(e.events, id, func(ev Event, id uint64) int { return cmpU64(ev.ID, id) })
		if ok {
			if err := e.store.UpdateEvent(e.events[i]); err != nil {
				e.log.Warn("persist event", "id", id, "err", err)
			}
		}
		delete(e.pending, id)
	}
}

// RunFlush flushes every second until ctx ends, and once more then.
func (e *Events) RunFlush(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			e.Flush()
			return nil
		case <-t.C:
			e.Flush()
		}
	}
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
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	if e.store != nil {
		stored, err := e.store.AppendEvent(ev)
		if err != nil {
			e.log.Warn("persist event", "type", ev.Type, "err", err)
			e.next++
			ev.ID = e.next
		} else {
			ev.ID = stored.ID
			e.next = max(e.next, ev.ID)
		}
	} else {
		e.next++
		ev.ID = e.next
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
	e.publishLocked(ev)
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
	if e.pending != nil {
		e.pending[id] = true
	}
	e.publishLocked(e.events[i])
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
		if TypeMatches(typ, e.events[i].Type) {
			out = append(out, e.events[i])
		}
	}
	return out
}
