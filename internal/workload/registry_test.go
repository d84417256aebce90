package workload

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// fakeRuntime is a Runtime whose containers and event stream the test controls. Each
// Watch starts a new session; ending a session (fail) makes the registry reconnect.
type fakeRuntime struct {
	mu         sync.Mutex
	containers map[string]Workload
	events     chan RuntimeEvent
	errc       chan error
	watchErr   error // when set, Watch fails with it
	watches    int
	watched    chan struct{} // receives after each successful Watch
}

func newFakeRuntime(ws ...Workload) *fakeRuntime {
	f := &fakeRuntime{containers: map[string]Workload{}, watched: make(chan struct{}, 16)}
	for _, w := range ws {
		f.containers[w.ID] = w
	}
	return f
}

func (f *fakeRuntime) Name() string { return "fake" }

func (f *fakeRuntime) Watch(ctx context.Context) (<-chan RuntimeEvent, <-chan error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watches++
	if f.watchErr != nil {
		return nil, nil, f.watchErr
	}
	f.events = make(chan RuntimeEvent)
	f.errc = make(chan error, 1)
	f.watched <- struct{}{}
	return f.events, f.errc, nil
}

func (f *fakeRuntime) List(ctx context.Context) ([]Workload, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Workload, 0, len(f.containers))
	for _, w := range f.containers {
		out = append(out, w.Clone())
	}
	return out, nil
}

func (f *fakeRuntime) Inspect(ctx context.Context, id string) (Workload, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.containers[id]
	if !ok {
		return Workload{}, ErrGone
	}
	return w.Clone(), nil
}

func (f *fakeRuntime) set(w Workload) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[w.ID] = w
}

func (f *fakeRuntime) del(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, id)
}

func (f *fakeRuntime) send(ev RuntimeEvent) {
	f.mu.Lock()
	ch := f.events
	f.mu.Unlock()
	ch <- ev
}

func (f *fakeRuntime) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errc <- err
}

// fakeNet resolves namespaces from the PID: containers with equal PIDs share one.
type fakeNet struct {
	mu     sync.Mutex
	gone   map[string]bool
	ifaces map[int]int // pid -> number of interfaces; 1 when absent
}

func (n *fakeNet) ResolveNet(w *Workload) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.gone[w.ID] {
		return ErrNoProcess
	}
	w.NetNS = NetNS{Path: "/proc/x/ns/net", Inode: uint64(1000 + w.PID)}
	w.Interfaces = []Interface{}
	for i := range max(n.ifaces[w.PID], 1) {
		w.Interfaces = append(w.Interfaces, Interface{Name: "veth-" + w.ID, Ifindex: 100*w.PID + i})
	}
	w.collectIPs()
	return nil
}

func (n *fakeNet) Host() (Workload, error) {
	w := Workload{ID: HostID, Name: "testhost", Kind: KindHost, Group: HostGroup, State: "running", PID: 1}
	w.normalize()
	return w, nil
}

func container(id, name, image string, pid int) Workload {
	return Workload{ID: id, Name: name, Kind: KindContainer, Image: image, Group: GroupName(nil, image), State: "running", PID: pid}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startRegistry runs a registry until the test ends and waits for its first sync.
func startRegistry(t *testing.T, rt *fakeRuntime, net NetResolver) (*Registry, *Subscription) {
	t.Helper()
	r := NewRegistry(rt, net, quietLogger())
	r.SetBackoff(Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
	})
	waitFor(t, "first sync", func() bool { return r.Status().Syncs >= 1 })
	sub := r.Subscribe(256)
	t.Cleanup(sub.Close)
	drain(sub) // the snapshot
	return r, sub
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func drain(s *Subscription) []Change {
	var out []Change
	for {
		select {
		case c := <-s.C:
			out = append(out, c)
		default:
			return out
		}
	}
}

// next returns the next change, failing the test when none comes.
func next(t *testing.T, s *Subscription) Change {
	t.Helper()
	select {
	case c, ok := <-s.C:
		if !ok {
			t.Fatalf("subscription closed: %v", s.Err())
		}
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no change arrived")
		return Change{}
	}
}

func TestRegistryInitialSync(t *testing.T) {
	rt := newFakeRuntime(container("aaaa1111", "web", "nginx:1.25", 10), container("bbbb2222", "db", "postgres", 11))
	r, _ := startRegistry(t, rt, &fakeNet{})
	list := r.List()
	if len(list) != 3 {
		t.Fatalf("List = %d workloads, want 3 (host, db, web)", len(list))
	}
	if list[0].ID != HostID || list[1].Name != "db" || list[2].Name != "web" {
		t.Errorf("order = %s, %s, %s; want host first, then by name", list[0].Name, list[1].Name, list[2].Name)
	}
	if list[2].NetNS.Inode != 1010 || len(list[2].Interfaces) != 1 {
		t.Errorf("web not resolved: %+v", list[2])
	}
	st := r.Status()
	if !st.Connected || st.Syncs != 1 || st.Runtime != "fake" {
		t.Errorf("status = %+v", st)
	}
	groups := r.Groups()
	if len(groups) != 3 || groups[0].Name != HostGroup || groups[1].Name != "vigil.nginx" || groups[2].Name != "vigil.postgres" {
		t.Errorf("groups = %+v", groups)
	}
}

func TestRegistryEvents(t *testing.T) {
	rt := newFakeRuntime()
	r, sub := startRegistry(t, rt, &fakeNet{})

	rt.set(container("cccc3333", "api", "acme/api", 20))
	rt.send(RuntimeEvent{Kind: EventChanged, ID: "cccc3333"})
	if c := next(t, sub); c.Kind != Added || c.Workload.Name != "api" || c.Workload.Group != "vigil.acme-api" {
		t.Fatalf("change = %+v, want api added", c)
	}

	renamed := container("cccc3333", "api-2", "acme/api", 20)
	rt.set(renamed)
	rt.send(RuntimeEvent{Kind: EventChanged, ID: "cccc3333"})
	if c := next(t, sub); c.Kind != Updated || c.Workload.Name != "api-2" {
		t.Fatalf("change = %+v, want api renamed", c)
	}

	// An event that changes nothing publishes nothing: the next change seen is the removal.
	rt.send(RuntimeEvent{Kind: EventChanged, ID: "cccc3333"})
	rt.send(RuntimeEvent{Kind: EventRemoved, ID: "cccc3333"})
	if c := next(t, sub); c.Kind != Removed || c.Workload.ID != "cccc3333" {
		t.Fatalf("change = %+v, want removal", c)
	}
	if _, err := r.Get("cccc3333"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after removal: %v, want ErrNotFound", err)
	}

	// A start event for a container that has already died again: Inspect says gone.
	rt.send(RuntimeEvent{Kind: EventChanged, ID: "dead0000"})
	// Removing the host is refused; a removal of an unknown ID is a no-op.
	rt.send(RuntimeEvent{Kind: EventRemoved, ID: HostID})
	rt.set(container("eeee5555", "later", "busybox", 30))
	rt.send(RuntimeEvent{Kind: EventChanged, ID: "eeee5555"})
	if c := next(t, sub); c.Kind != Added || c.Workload.ID != "eeee5555" {
		t.Fatalf("change = %+v, want eeee5555 added", c)
	}
	if _, err := r.Get(HostID); err != nil {
		t.Errorf("host was removed: %v", err)
	}
}

func TestRegistryDropsWorkloadWhoseProcessIsGone(t *testing.T) {
	rt := newFakeRuntime()
	net := &fakeNet{gone: map[string]bool{"ffff6666": true}}
	r, sub := startRegistry(t, rt, net)
	rt.set(container("ffff6666", "flash", "busybox", 40))
	rt.send(RuntimeEvent{Kind: EventChanged, ID: "ffff6666"})
	rt.set(container("gggg7777", "steady", "busybox", 41))
	rt.send(RuntimeEvent{Kind: EventChanged, ID: "gggg7777"})
	if c := next(t, sub); c.Workload.ID != "gggg7777" {
		t.Fatalf("change = %+v; the container whose process vanished must not be added", c)
	}
	if _, err := r.Get("ffff6666"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get: %v, want ErrNotFound", err)
	}
}

func TestRegistrySharedNamespaceFollowsOwner(t *testing.T) {
	owner := container("owner0001", "app", "app", 50)
	side := container("side00002", "sidecar", "proxy", 50)
	side.SharesNetNSWith = owner.ID
	rt := newFakeRuntime(owner, side)
	net := &fakeNet{ifaces: map[int]int{}}
	r, sub := startRegistry(t, rt, net)

	// The owner is connected to a second network: its namespace, which the sidecar
	// shares, gains an interface; both must show it.
	net.mu.Lock()
	net.ifaces[50] = 2
	net.mu.Unlock()
	rt.send(RuntimeEvent{Kind: EventChanged, ID: owner.ID})
	got := map[string]ChangeKind{}
	for range 2 {
		c := next(t, sub)
		got[c.Workload.ID] = c.Kind
	}
	if got[owner.ID] != Updated || got[side.ID] != Updated {
		t.Errorf("changes = %v, want owner and sidecar updated", got)
	}
	s, err := r.Get(side.ID)
	if err != nil || len(s.Interfaces) != 2 || s.NetNS.Inode != 1050 {
		t.Errorf("sidecar = %+v, %v", s, err)
	}
}

func TestRegistryReconnectResyncs(t *testing.T) {
	rt := newFakeRuntime(container("aaaa1111", "keep", "busybox", 10), container("bbbb2222", "lost", "busybox", 11))
	r, sub := startRegistry(t, rt, &fakeNet{})
	<-rt.watched // the first session

	// While the runtime is away: one container goes, one arrives, and reconnecting fails
	// a few times.
	rt.mu.Lock()
	rt.watchErr = errors.New("connection refused")
	rt.mu.Unlock()
	rt.fail(errors.New("daemon went away"))
	waitFor(t, "disconnected status", func() bool { return !r.Status().Connected })
	waitFor(t, "reconnection attempts", func() bool { rt.mu.Lock(); defer rt.mu.Unlock(); return rt.watches >= 4 })
	if st := r.Status(); st.LastError == "" {
		t.Errorf("status after failures = %+v, want the last error", st)
	}
	if len(r.List()) != 3 {
		t.Errorf("last known workloads were dropped while disconnected")
	}
	rt.del("bbbb2222")
	rt.set(container("cccc3333", "new", "busybox", 12))
	rt.mu.Lock()
	rt.watchErr = nil
	rt.mu.Unlock()

	seen := map[string]ChangeKind{}
	for len(seen) < 2 {
		c := next(t, sub)
		seen[c.Workload.ID] = c.Kind
	}
	if seen["bbbb2222"] != Removed || seen["cccc3333"] != Added {
		t.Errorf("changes after resync = %v", seen)
	}
	waitFor(t, "connected status", func() bool { return r.Status().Connected })
	if st := r.Status(); st.Syncs != 2 {
		t.Errorf("syncs = %d, want 2", st.Syncs)
	}
}

func TestRegistryGet(t *testing.T) {
	rt := newFakeRuntime(
		container("abcd1234aaaa", "alpha", "busybox", 10),
		container("abcd5678bbbb", "beta", "busybox", 11),
	)
	r, _ := startRegistry(t, rt, &fakeNet{})
	tests := []struct {
		ref    string
		wantID string
		err    error
	}{
		{"abcd1234aaaa", "abcd1234aaaa", nil},
		{"alpha", "abcd1234aaaa", nil},
		{"/beta", "abcd5678bbbb", nil},
		{"abcd5", "abcd5678bbbb", nil},
		{"abcd", "", ErrAmbiguous},
		{"abc", "", ErrNotFound}, // shorter than the minimum prefix
		{"zzzz", "", ErrNotFound},
		{"", "", ErrNotFound},
		{HostID, HostID, nil},
	}
	for _, tt := range tests {
		w, err := r.Get(tt.ref)
		if !errors.Is(err, tt.err) || w.ID != tt.wantID {
			t.Errorf("Get(%q) = %q, %v; want %q, %v", tt.ref, w.ID, err, tt.wantID, tt.err)
		}
	}
}

func TestSubscriptionLagged(t *testing.T) {
	rt := newFakeRuntime()
	r, _ := startRegistry(t, rt, &fakeNet{})
	slow := r.Subscribe(1)
	for i := range 5 {
		id := "lag0000" + string(rune('a'+i))
		rt.set(container(id, id, "busybox", 100+i))
		rt.send(RuntimeEvent{Kind: EventChanged, ID: id})
	}
	waitFor(t, "all five containers", func() bool { return len(r.List()) == 6 })
	var n int
	for range slow.C {
		n++
	}
	if !errors.Is(slow.Err(), ErrLagged) {
		t.Fatalf("Err = %v after %d changes, want ErrLagged", slow.Err(), n)
	}
	// Subscribing again gives a full snapshot.
	again := r.Subscribe(1)
	defer again.Close()
	if got := len(drain(again)); got != 6 {
		t.Errorf("new snapshot has %d changes, want 6", got)
	}
}

func TestWorkloadCloneIsDeep(t *testing.T) {
	w := container("id", "n", "busybox", 1)
	w.Labels = map[string]string{"a": "1"}
	w.Networks = []Network{{Name: "x", Aliases: []string{"a"}}}
	w.Interfaces = []Interface{{Name: "veth"}}
	c := w.Clone()
	c.Labels["a"] = "2"
	c.Networks[0].Aliases[0] = "b"
	c.Interfaces[0].Name = "other"
	if w.Labels["a"] != "1" || w.Networks[0].Aliases[0] != "a" || w.Interfaces[0].Name != "veth" {
		t.Fatalf("Clone shares memory with the original: %+v", w)
	}
}
