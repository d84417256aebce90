package procmon

import (
	"slices"
	"sync"
	"time"
)

// Exit records in the monitor: when a process is judged, and with what.
//
// An exec whose process had gone before /proc was read is known from its exec
// notification (containers) or not at all (the host): its name (busybox's applets all
// open /bin/busybox) and its user IDs (the parent's, from the fork) are guesses. Its
// taskstats exit record has the real name and the real uid/gid. The kernel queues the
// record in do_exit, before the task is reaped and /proc/PID goes, so when the monitor
// finds the process gone the record is already on the taskstats socket, or arrives as
// soon as its reader runs.
//
// Judging: such an exec is judged once, when its record is in — it waits for it at most
// exitWait (50 ms), in a bounded table (maxExitWaiters; past that it is judged at once
// as it is, counted in Full), never holding up a worker: the record's reader hands the
// completed process back to the PID's worker. One event per exec, with the real name,
// so that the profile decides on (executable, name, user) as for a process read whole.
// Without a record by then (the taskstats socket overran, a kernel without taskstats)
// the exec is judged as it was (TimedOut).
//
// What the record gives: Comm (the name at exit: the last exec's — when the record's
// executable inode differs from the note's, the process exec'd again and only the IDs
// are taken), UID and GID (real: taskstats has no effective IDs; the effective ones are
// the parent's when the real ones are too, a set-user-ID file's owner, else the real ones,
// and "euid" stays in Inferred), PPID and start time. Records are matched to the process
// by PID and start time (seconds), and kept at most exitRecordTTL in a ring of
// maxExitRecords: PIDs are reused (pid_max may be 32768).

// Bounds and delays of exit records.
const (
	maxExitRecords = 16384
	exitRecordTTL  = 5 * time.Second
	maxExitWaiters = 4096
	exitWait       = 50 * time.Millisecond
	// exitDrain is how often the reader empties the socket and ends overdue waits while
	// execs wait; exitIdleDrain when none does (the 32 MiB receive buffer holds some
	// 20,000 records: seconds of a storm).
	exitDrain     = 10 * time.Millisecond
	exitIdleDrain = 100 * time.Millisecond
)

// ExitRecordStats counts the taskstats exit records and their use.
type ExitRecordStats struct {
	Enabled  bool   `json:"enabled"`
	Records  uint64 `json:"records"`  // process exit records stored (threads' skipped)
	Messages uint64 `json:"messages"` // messages received
	Bad      uint64 `json:"bad"`      // messages that did not decode
	Overruns uint64 `json:"overruns"` // ENOBUFS: the receive buffer overflowed, records lost
	// Named counts execs judged with their record's name and IDs; Waited those of them
	// that waited for it; TimedOut those judged without, no record within exitWait.
	Named    uint64 `json:"named"`
	Waited   uint64 `json:"waited"`
	TimedOut uint64 `json:"timed_out"`
	// Host counts host execs gone before their read, observed from their exit record.
	Host uint64 `json:"host"`
	// Rejected counts records not taken: start time off, or the executable differs
	// (the process exec'd again: only its IDs are taken).
	Rejected uint64 `json:"rejected"`
	Full     uint64 `json:"full"` // could not wait: too many waiting
	// BufferBytes is the receive buffer the kernel granted.
	BufferBytes int `json:"buffer_bytes"`
}

// exitCtx is what judging a gone exec needs besides the process.
type exitCtx struct {
	noteIno uint64    // the executable's inode from the exec notification, 0 if none
	setUID  int       // the owner of a set-user-ID executable, else -1
	execAt  time.Time // when the connector's exec was read
	// required: without a record the exec is not judged (counted unread): a host
	// process of which nothing else is known.
	required bool
}

type exitWaiter struct {
	p     ProcessInfo
	x     exitCtx
	since time.Time
}

// exitStore holds recent exit records by PID and the execs waiting for theirs. It is
// safe for concurrent use.
type exitStore struct {
	mu      sync.Mutex
	ring    []ExitRecord
	next    int
	idx     map[int32]int
	waiters map[int32]exitWaiter
	st      ExitRecordStats
}

func newExitStore() *exitStore {
	return &exitStore{ring: make([]ExitRecord, maxExitRecords), idx: map[int32]int{}, waiters: map[int32]exitWaiter{}}
}

// add stores a record. It returns the exec waiting for it, completed, if there is one.
func (s *exitStore) add(r *ExitRecord) (ProcessInfo, bool) {
	if r.Group || r.PID <= 0 || (r.TGID != 0 && r.TGID != r.PID) || r.commLen == 0 {
		return ProcessInfo{}, false // a thread, or the per-process sum without name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Records++
	if w, ok := s.waiters[r.PID]; ok && matchExit(&w.p, &w.x, r) {
		delete(s.waiters, r.PID)
		s.st.Waited++
		if w.x.required {
			s.st.Host++
		}
		s.apply(&w.p, r, &w.x)
		return w.p, true
	}
	i := s.next
	s.next = (s.next + 1) % len(s.ring)
	if old := s.ring[i].PID; old != 0 && s.idx[old] == i {
		delete(s.idx, old)
	}
	s.ring[i] = *r
	s.idx[r.PID] = i
	return ProcessInfo{}, false
}

// take completes p with its record when it is in. Otherwise, when wait is set, p waits
// for it (waiting true: the record's arrival or expire hands it back); else ok is false.
func (s *exitStore) take(p *ProcessInfo, x exitCtx, now time.Time, wait bool) (ok, waiting bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pid := int32(p.PID)
	if i, in := s.idx[pid]; in {
		r := &s.ring[i]
		if now.Sub(r.Received) <= exitRecordTTL && matchExit(p, &x, r) {
			delete(s.idx, pid)
			s.apply(p, r, &x)
			*r = ExitRecord{}
			return true, false
		}
	}
	if !wait {
		return false, false
	}
	if _, busy := s.waiters[pid]; busy || len(s.waiters) >= maxExitWaiters {
		s.st.Full++
		return false, false
	}
	s.waiters[pid] = exitWaiter{p: *p, x: x, since: now}
	return false, true
}

// expire returns the waiters whose time is up, to be judged without a record.
func (s *exitStore) expire(now time.Time, done func(p ProcessInfo, x exitCtx)) {
	var out []exitWaiter
	s.mu.Lock()
	for pid, w := range s.waiters {
		if now.Sub(w.since) >= exitWait {
			delete(s.waiters, pid)
			s.st.TimedOut++
			out = append(out, w)
		}
	}
	s.mu.Unlock()
	for _, w := range out {
		done(w.p, w.x)
	}
}

// waiting is the number of execs waiting for their record.
func (s *exitStore) waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiters)
}

func (s *exitStore) countHost() {
	s.mu.Lock()
	s.st.Host++
	s.mu.Unlock()
}

func (s *exitStore) stats() ExitRecordStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// matchExit reports whether r can be the exit of the process p exec'd at x.execAt:
// same start second (within 2 s: the kernel and /proc compute wall-clock start times
// from different clocks) when p's start is known; else received after the exec (less
// a second for the two readers' scheduling).
func matchExit(p *ProcessInfo, x *exitCtx, r *ExitRecord) bool {
	if int32(p.PID) != r.PID {
		return false
	}
	if p.StartTicks != 0 && !p.Start.IsZero() {
		d := p.Start.Unix() - r.BTime
		return d >= -2 && d <= 2
	}
	return x.execAt.IsZero() || !r.Received.Before(x.execAt.Add(-time.Second))
}

// apply puts what r says into p. Called with s.mu held.
func (s *exitStore) apply(p *ProcessInfo, r *ExitRecord, x *exitCtx) {
	s.st.Named++
	if slices.Contains(p.Inferred, "name") {
		if x.noteIno != 0 && r.ExeIno != 0 && x.noteIno != r.ExeIno {
			// The record is of a later program of the process: its name is not this
			// exec's.
			s.st.Rejected++
		} else {
			p.Comm = r.Comm()
			p.Inferred = slices.DeleteFunc(slices.Clone(p.Inferred), func(f string) bool { return f == "name" })
		}
	}
	prevUID, prevGID := p.UID, p.GID
	p.UID, p.GID = int(r.UID), int(r.GID)
	if x.setUID >= 0 {
		p.EUID = x.setUID
	} else if prevUID != p.UID || p.EUID < 0 {
		p.EUID = p.UID
	}
	if prevGID != p.GID || p.EGID < 0 {
		p.EGID = p.GID
	}
	if i := slices.Index(p.Inferred, "uid"); i >= 0 {
		p.Inferred = slices.Clone(p.Inferred)
		p.Inferred[i] = "euid"
	}
	if p.PPID == 0 && r.PPID > 0 {
		p.PPID = int(r.PPID)
	}
	if p.Start.IsZero() && r.BTime > 0 {
		p.Start = time.Unix(r.BTime, 0).UTC()
	}
}

// needsExit reports whether p has guessed fields an exit record can give.
func needsExit(p *ProcessInfo) bool {
	return slices.Contains(p.Inferred, "name") || slices.Contains(p.Inferred, "uid")
}
