package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
)

// Errors returned by lookups.
var (
	ErrNotFound  = errors.New("workload not found")
	ErrAmbiguous = errors.New("workload reference is ambiguous")
	// ErrGone is returned by a Runtime when the container asked for is not running.
	ErrGone = errors.New("container is not running")
	// ErrLagged ends a subscription whose reader fell behind.
	ErrLagged = errors.New("subscriber fell behind")
)

// EventKind says what a runtime event means for the registry.
type EventKind int

const (
	// EventChanged: the container appeared or changed; inspect it again.
	EventChanged EventKind = iota + 1
	// EventRemoved: the container stopped or was removed.
	EventRemoved
	// EventHostChanged: the host's networks changed (a network was created or removed).
	EventHostChanged
)

// RuntimeEvent is a change reported by a container runtime.
type RuntimeEvent struct {
	Kind EventKind
	ID   string
}

// Runtime is a container runtime (Docker today, containerd later) as the registry sees it.
type Runtime interface {
	// Name is the runtime's short name, e.g. "docker".
	Name() string
	// Watch subscribes to the runtime's events and returns once the subscription is in
	// place, so that a List after it misses nothing. Events arrive on the first channel;
	// the second receives the error that ends the stream. Both end when ctx does.
	Watch(ctx context.Context) (<-chan RuntimeEvent, <-chan error, error)
	// List returns every running container, fully described.
	List(ctx context.Context) ([]Workload, error)
	// Inspect describes one container; it returns ErrGone when it is not running.
	Inspect(ctx context.Context, id string) (Workload, error)
}

// ChangeKind says how the registry changed.
type ChangeKind string

const (
	Added   ChangeKind = "added"
	Updated ChangeKind = "updated"
	Removed ChangeKind = "removed"
)

// Change is one change of the registry, as delivered to subscribers.
type Change struct {
	Kind     ChangeKind `json:"kind"`
	Workload Workload   `json:"workload"`
}

// Status tells how the registry's connection to its runtime stands.
type Status struct {
	Runtime   string    `json:"runtime"`
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
	// Syncs counts full resynchronisations with the runtime (one per connection).
	Syncs int `json:"syncs"`
}

// Group is a learned group and the workloads in it.
type Group struct {
	Name    string   `json:"name"`
	Members []Member `json:"members"`
}

// Member is a workload as listed in a group.
type Member struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Backoff bounds the delay between reconnection attempts.
type Backoff struct {
	Min, Max time.Duration
}

// hostRefresh is how often the host workload is described again when nothing prompts it:
// addresses can change without any runtime event.
const hostRefresh = 15 * time.Second

// Registry knows every workload on the host. It is safe for concurrent use.
type Registry struct {
	rt      Runtime
	net     NetResolver
	log     *slog.Logger
	backoff Backoff

	mu     sync.RWMutex
	byID   map[string]Workload
	subs   map[*Subscription]struct{}
	status Status
}

// NewRegistry returns a registry fed by rt, with network facts from net. Run starts it.
func NewRegistry(rt Runtime, net NetResolver, log *slog.Logger) *Registry {
	return &Registry{
		rt:      rt,
		net:     net,
		log:     log,
		backoff: Backoff{Min: 200 * time.Millisecond, Max: 15 * time.Second},
		byID:    map[string]Workload{},
		subs:    map[*Subscription]struct{}{},
		status:  Status{Runtime: rt.Name(), Since: time.Now()},
	}
}

// SetBackoff changes the reconnection delays; call it before Run.
func (r *Registry) SetBackoff(b Backoff) { r.backoff = b }

// Run keeps the registry in step with the runtime until ctx ends. When the runtime goes
// away it keeps the last known workloads, reconnects with exponential backoff and then
// resynchronises from a full listing. It returns nil when ctx ends.
func (r *Registry) Run(ctx context.Context) error {
	delay := r.backoff.Min
	for {
		connected, err := r.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			delay = r.backoff.Min
		}
		r.setStatus(false, err)
		wait := delay/2 + rand.N(delay/2+1)
		r.log.Warn("container runtime unavailable; reconnecting", "runtime", r.rt.Name(), "err", err, "retry_in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		delay = min(2*delay, r.backoff.Max)
	}
}

// session runs one connection to the runtime. connected reports whether it got as far as
// a full listing.
func (r *Registry) session(ctx context.Context) (connected bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, errc, err := r.rt.Watch(ctx)
	if err != nil {
		return false, fmt.Errorf("watch %s events: %w", r.rt.Name(), err)
	}
	list, err := r.rt.List(ctx)
	if err != nil {
		return false, fmt.Errorf("list %s containers: %w", r.rt.Name(), err)
	}
	r.resync(list)
	r.setStatus(true, nil)

	tick := time.NewTicker(hostRefresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-errc:
			if err == nil {
				err = errors.New("event stream ended")
			}
			return true, err
		case ev, ok := <-events:
			if !ok {
				return true, errors.New("event stream closed")
			}
			r.apply(ctx, ev)
		case <-tick.C:
			r.refreshHost()
		}
	}
}

func (r *Registry) apply(ctx context.Context, ev RuntimeEvent) {
	switch ev.Kind {
	case EventRemoved:
		r.remove(ev.ID)
	case EventHostChanged:
		r.refreshHost()
	case EventChanged:
		w, err := r.rt.Inspect(ctx, ev.ID)
		switch {
		case errors.Is(err, ErrGone):
			r.remove(ev.ID)
			return
		case err != nil:
			r.log.Warn("inspect container", "id", ev.ID, "err", err)
			return
		}
		if !r.resolve(&w) {
			return
		}
		r.upsert(w)
		// Containers that joined this one's namespace see its interfaces change with it.
		for _, dep := range r.sharing(w.ID) {
			if r.resolve(&dep) {
				r.upsert(dep)
			}
		}
	}
}

// resolve completes w's network description. It reports false when the workload's
// process has gone, in which case w is dropped.
func (r *Registry) resolve(w *Workload) bool {
	err := r.net.ResolveNet(w)
	if errors.Is(err, ErrNoProcess) {
		r.remove(w.ID)
		return false
	}
	if err != nil {
		r.log.Warn("resolve workload network", "id", w.ID, "name", w.Name, "err", err)
	}
	w.normalize()
	return true
}

func (r *Registry) sharing(id string) []Workload {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Workload
	for _, w := range r.byID {
		if w.SharesNetNSWith == id {
			out = append(out, w.Clone())
		}
	}
	return out
}

func (r *Registry) resync(list []Workload) {
	next := make(map[string]Workload, len(list)+1)
	for _, w := range list {
		if r.resolve(&w) {
			next[w.ID] = w
		}
	}
	h, hostErr := r.net.Host()
	if hostErr == nil {
		next[h.ID] = h
	} else {
		r.log.Warn("describe host", "err", hostErr)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.byID[HostID]; ok && hostErr != nil {
		next[HostID] = old // keep what was known of the host rather than lose it
	}
	for id, old := range r.byID {
		if _, ok := next[id]; !ok {
			delete(r.byID, id)
			r.publishLocked(Change{Kind: Removed, Workload: old})
		}
	}
	for _, w := range next {
		r.upsertLocked(w)
	}
	r.status.Syncs++
	r.log.Info("synchronised with container runtime", "runtime", r.rt.Name(), "workloads", len(r.byID))
}

func (r *Registry) refreshHost() {
	h, err := r.net.Host()
	if err != nil {
		r.log.Warn("describe host", "err", err)
		return
	}
	r.upsert(h)
}

func (r *Registry) upsert(w Workload) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.upsertLocked(w)
}

func (r *Registry) upsertLocked(w Workload) {
	old, ok := r.byID[w.ID]
	if ok && reflect.DeepEqual(old, w) {
		return
	}
	r.byID[w.ID] = w
	kind := Added
	if ok {
		kind = Updated
	}
	r.log.Debug("workload "+string(kind), "id", shortID(w.ID), "name", w.Name, "group", w.Group)
	r.publishLocked(Change{Kind: kind, Workload: w.Clone()})
}

func (r *Registry) remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.byID[id]
	if !ok || id == HostID {
		return
	}
	delete(r.byID, id)
	r.log.Debug("workload removed", "id", shortID(id), "name", w.Name)
	r.publishLocked(Change{Kind: Removed, Workload: w})
}

func (r *Registry) setStatus(connected bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status.Connected != connected {
		r.status.Since = time.Now()
	}
	r.status.Connected = connected
	switch {
	case err != nil:
		r.status.LastError = err.Error()
	case connected:
		r.status.LastError = ""
	}
}

// Status reports the connection to the runtime.
func (r *Registry) Status() Status {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.status
}

// List returns every workload, the host first, then by name.
func (r *Registry) List() []Workload {
	r.mu.RLock()
	out := make([]Workload, 0, len(r.byID))
	for _, w := range r.byID {
		out = append(out, w.Clone())
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Workload) int {
		if (a.Kind == KindHost) != (b.Kind == KindHost) {
			if a.Kind == KindHost {
				return -1
			}
			return 1
		}
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// minPrefix is the shortest ID prefix accepted, as a guard against a one-letter
// reference matching by accident.
const minPrefix = 4

// Get finds a workload by ID, name, or a unique ID prefix of at least four characters.
func (r *Registry) Get(ref string) (Workload, error) {
	ref = strings.TrimPrefix(ref, "/")
	if ref == "" {
		return Workload{}, ErrNotFound
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if w, ok := r.byID[ref]; ok {
		return w.Clone(), nil
	}
	for _, w := range r.byID {
		if w.Name == ref {
			return w.Clone(), nil
		}
	}
	if len(ref) < minPrefix {
		return Workload{}, ErrNotFound
	}
	var found []Workload
	for id, w := range r.byID {
		if strings.HasPrefix(id, ref) {
			found = append(found, w)
		}
	}
	switch len(found) {
	case 0:
		return Workload{}, ErrNotFound
	case 1:
		return found[0].Clone(), nil
	default:
		return Workload{}, fmt.Errorf("%w: %q matches %d workloads", ErrAmbiguous, ref, len(found))
	}
}

// Groups returns every group that has at least one workload, by name, members by name.
func (r *Registry) Groups() []Group {
	byName := map[string][]Member{}
	for _, w := range r.List() {
		byName[w.Group] = append(byName[w.Group], Member{ID: w.ID, Name: w.Name})
	}
	out := make([]Group, 0, len(byName))
	for name, members := range byName {
		out = append(out, Group{Name: name, Members: members})
	}
	slices.SortFunc(out, func(a, b Group) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Subscription delivers registry changes. Its channel starts with an Added change for
// every workload present when it was made.
type Subscription struct {
	C <-chan Change

	c   chan Change
	r   *Registry
	err error // guarded by r.mu
}

// Subscribe starts delivering changes. buffer is how many changes may wait unread beyond
// the initial snapshot before the subscriber is dropped with ErrLagged.
func (r *Registry) Subscribe(buffer int) *Subscription {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := make(chan Change, len(r.byID)+max(buffer, 1))
	for _, w := range r.byID {
		c <- Change{Kind: Added, Workload: w.Clone()}
	}
	s := &Subscription{C: c, c: c, r: r}
	r.subs[s] = struct{}{}
	return s
}

// Close ends the subscription and closes its channel.
func (s *Subscription) Close() {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if _, ok := s.r.subs[s]; ok {
		delete(s.r.subs, s)
		close(s.c)
	}
}

// Err tells why the channel was closed: nil after Close, ErrLagged when the reader fell
// behind.
func (s *Subscription) Err() error {
	s.r.mu.RLock()
	defer s.r.mu.RUnlock()
	return s.err
}

func (r *Registry) publishLocked(ch Change) {
	for s := range r.subs {
		select {
		case s.c <- ch:
		default:
			s.err = ErrLagged
			delete(r.subs, s)
			close(s.c)
			r.log.Warn("dropped a registry subscriber that fell behind")
		}
	}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
