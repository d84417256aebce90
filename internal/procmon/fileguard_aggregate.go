package procmon

import (
	"sync"
	"time"
)

// fileAggregator turns bursts of file events into few: the first event of a kind and
// class (or, for denied execs, of a path) in a container is sent at once; those that
// follow within the window are counted and sent as one event when the window ends. A
// package install writing a thousand files in /usr/lib is then two events per second,
// not a thousand, and the first still arrives at once.
//
// It is safe for concurrent use by multiple goroutines.
type fileAggregator struct {
	window time.Duration
	out    chan FileEvent

	mu      sync.Mutex
	closed  bool
	entries map[aggKey]*aggEntry
	dropped uint64 // events not sent because out was full
	sent    uint64
}

type aggKey struct {
	container, kind, class string
}

// aggEntry is one open window.
type aggEntry struct {
	start time.Time
	extra int      // events after the first
	pid   int      // of the first extra event
	paths []string // distinct paths of the extra events, at most aggSamplePaths
}

const aggSamplePaths = 8

func newFileAggregator(window time.Duration, size int) *fileAggregator {
	return &fileAggregator{window: window, out: make(chan FileEvent, size), entries: map[aggKey]*aggEntry{}}
}

// observe records one event and reports whether it opens a window, in which case the
// caller builds the full event and sends it. It allocates only for a new window and for
// a path kept as a sample.
func (a *fileAggregator) observe(k aggKey, path []byte, pid int, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.entries[k]
	if e != nil && now.Sub(e.start) >= a.window {
		a.flushLocked(k, e, now)
		e = nil
	}
	if e == nil {
		a.entries[k] = &aggEntry{start: now}
		return true
	}
	if e.extra == 0 {
		e.pid = pid
	}
	e.extra++
	if len(e.paths) < aggSamplePaths {
		for _, p := range e.paths {
			if p == bytesView(path) {
				return false
			}
		}
		e.paths = append(e.paths, string(path))
	}
	return false
}

// send queues an event for the reader of out, or counts it dropped when out is full:
// the fanotify readers must never wait for a slow consumer.
func (a *fileAggregator) send(ev FileEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sendLocked(ev)
}

func (a *fileAggregator) sendLocked(ev FileEvent) {
	if a.closed {
		return
	}
	select {
	case a.out <- ev:
		a.sent++
	default:
		a.dropped++
	}
}

// flush ends the windows that are over, sending one event for each that counted more
// than its first event.
func (a *fileAggregator) flush(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, e := range a.entries {
		if now.Sub(e.start) >= a.window {
			a.flushLocked(k, e, now)
		}
	}
}

func (a *fileAggregator) flushLocked(k aggKey, e *aggEntry, now time.Time) {
	delete(a.entries, k)
	if e.extra == 0 {
		return
	}
	ev := FileEvent{
		Time:        now,
		Kind:        k.kind,
		ContainerID: k.container,
		PID:         e.pid,
		Count:       e.extra,
		Paths:       e.paths,
		Aggregated:  true,
	}
	if len(e.paths) > 0 {
		ev.Path = e.paths[0]
	}
	if k.kind == FileEventExecDenied {
		ev.Class = ""
	} else {
		ev.Class = k.class
	}
	// The process may be gone; its name is best effort.
	ev.Comm, ev.Exe = processNames(e.pid)
	a.sendLocked(ev)
}

// close stops sending and closes out. Events observed later are dropped silently.
func (a *fileAggregator) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.closed = true
		close(a.out)
	}
}

func (a *fileAggregator) counts() (sent, dropped uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sent, a.dropped
}
