package procmon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// Observation is something a process did that the monitor reports: it executed a
// program, changed its user IDs, or (Recheck) was looked at again after an exec.
type Observation struct {
	Kind    EventKind   `json:"kind"` // EventExec or EventUID
	Recheck bool        `json:"recheck,omitempty"`
	Time    time.Time   `json:"time"`
	Process ProcessInfo `json:"process"`
	// Ancestry is the chain of parents, the parent first, as far as the tree knows it.
	Ancestry []Ancestor `json:"ancestry"`
	// PrevUID and PrevEUID are the user IDs before an EventUID.
	PrevUID  int `json:"prev_uid"`
	PrevEUID int `json:"prev_euid"`
	// Findings are what the detector found wrong with it.
	Findings []Finding `json:"findings,omitempty"`
}

// MonitorConfig configures a Monitor.
type MonitorConfig struct {
	ProcRoot string // the host's /proc
	// Workers read /proc for the events; events of one process always go to the same
	// worker, so they are handled in order. Default 2.
	Workers int
	// Queue is each worker's backlog of events; past it events are dropped and counted
	// (Stats.Dropped) rather than let the kernel's buffer overflow. Default 65536.
	Queue int
	// Detector judges each observation; nil: no findings.
	Detector *Detector
	// Observe is called, from a worker, with each exec and user ID change. It must not
	// keep o after it returns. It should return quickly: it holds up that worker's
	// events.
	Observe func(o *Observation)
	// Rechecks are the delays after the exec of a shell at which it is looked at again
	// (a shell redirects its descriptors after it starts: bash's /dev/tcp). Default
	// 100 ms and 1 s.
	Rechecks []time.Duration
	// NoExitRecords turns off the taskstats exit records (exitrecords.go).
	NoExitRecords bool
}

// MonitorStats counts what the monitor has seen since it started.
type MonitorStats struct {
	Processes int    `json:"processes"` // in the tree now
	Events    uint64 `json:"events"`    // connector messages received
	Forks     uint64 `json:"forks"`
	Execs     uint64 `json:"execs"`
	UIDs      uint64 `json:"uid_changes"`
	Exits     uint64 `json:"exits"`
	// Lost counts events the kernel numbered but never delivered (gaps in each CPU's
	// sequence, after a receive buffer overrun); Overruns the overruns (ENOBUFS).
	Lost     uint64 `json:"lost"`
	Overruns uint64 `json:"overruns"`
	// Dropped counts events received but dropped because a worker's queue was full.
	Dropped uint64 `json:"dropped"`
	// Unread counts execs of processes that had exited before /proc could be read and
	// for which no exec notification came either: they are in no observation.
	Unread uint64 `json:"unread"`
	// Recovered counts execs of processes that had exited before /proc could be read,
	// judged with the identity from the file guard's exec notification (containers only;
	// ProcessInfo.Inferred says what was not read).
	Recovered uint64 `json:"recovered"`
	// ExecNotes counts the exec notifications and how they were paired.
	ExecNotes CorrelatorStats `json:"exec_notes"`
	// ExitRecords counts the taskstats exit records and the execs they completed.
	ExitRecords ExitRecordStats `json:"exit_records"`
	// BufferBytes is the socket receive buffer the kernel granted.
	BufferBytes int `json:"buffer_bytes"`
}

// Monitor follows every process on the host: a scan of /proc at start, then the kernel's
// process events connector. It keeps the process tree and reports execs and user ID
// changes. It is safe for concurrent use; Run is called once.
type Monitor struct {
	cfg MonitorConfig
	log *slog.Logger

	mu    sync.RWMutex
	procs map[int]*ProcessInfo

	conn    atomic.Pointer[connector]
	running atomic.Bool
	forks   atomic.Uint64
	execs   atomic.Uint64
	uids    atomic.Uint64
	exits   atomic.Uint64
	dropped atomic.Uint64
	unread  atomic.Uint64
	// Exec notifications of the file guard (NoteExec), paired with the connector's execs.
	corr      *execCorrelator
	notesOn   atomic.Bool
	recovered atomic.Uint64
	queues    atomic.Pointer[[]chan queued]
	// Taskstats exit records (exitrecords.go); exitsOn once the socket is registered.
	exitRecs *exitStore
	exitsOn  atomic.Bool
	ts       atomic.Pointer[taskstatsConn]
	exitKick chan struct{}
}

// Internal kinds: look at a shell again; an exec whose process had gone, judged from
// its exec notification.
const (
	eventRecheck EventKind = 100
	eventNoted   EventKind = 101
	// eventExitRec: a gone exec that waited for its exit record, completed (or not).
	eventExitRec EventKind = 102
)

// NewMonitor returns a monitor; Run starts it.
func NewMonitor(cfg MonitorConfig, log *slog.Logger) *Monitor {
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 65536
	}
	if cfg.Rechecks == nil {
		cfg.Rechecks = []time.Duration{100 * time.Millisecond, time.Second}
	}
	return &Monitor{cfg: cfg, log: log, procs: map[int]*ProcessInfo{}, corr: newExecCorrelator(), exitRecs: newExitStore(),
		exitKick: make(chan struct{}, 1)}
}

// Supported opens and closes a connector socket: nil when process events can be had.
func Supported() error {
	c, err := openConnector()
	if err != nil {
		return err
	}
	c.close()
	return nil
}

// Run subscribes to process events, scans /proc, and follows the events until ctx
// ends. It fails at once when the connector cannot be opened (not root, a kernel
// without CONFIG_PROC_EVENTS, a network namespace other than the host's).
func (m *Monitor) Run(ctx context.Context) error {
	c, err := openConnector()
	if err != nil {
		return err
	}
	m.conn.Store(c)
	var ts *taskstatsConn
	if !m.cfg.NoExitRecords {
		if ts, err = openTaskstats(""); err != nil {
			m.log.Warn("process monitor: no taskstats exit records; short-lived processes keep guessed names and user IDs", "err", err)
			ts = nil
		} else {
			m.ts.Store(ts)
			m.exitsOn.Store(true)
		}
	}
	m.running.Store(true)
	// Subscribed first, then scanned: a process born during the scan is in one or both.
	m.scan()
	m.log.Info("process monitor started", "processes", m.Stats().Processes, "receive_buffer", c.bufferSize())

	queues := make([]chan queued, m.cfg.Workers)
	for i := range queues {
		queues[i] = make(chan queued, m.cfg.Queue)
	}
	m.queues.Store(&queues)
	grp, ctx := errgroup.WithContext(ctx)
	for _, q := range queues {
		grp.Go(func() error { m.work(ctx, q); return nil })
	}
	grp.Go(func() error { m.expireNotes(ctx); return nil })
	if ts != nil {
		grp.Go(func() error { m.readExits(ctx, ts); return nil })
	}
	grp.Go(func() error {
		defer c.close()
		// The reader reads /proc for each exec before the program can exit, so it must
		// run as soon as the kernel wakes it: its own thread, at a higher priority
		// (nice -15; the thread is destroyed when it ends, priority and all).
		runtime.LockOSThread()
		if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), -15); err != nil {
			m.log.Debug("process events: raise the reader's priority", "err", err)
		}
		r := newProcReader(m.cfg.ProcRoot)
		var ev ProcEvent
		for ctx.Err() == nil {
			err := c.read(&ev)
			switch {
			case err == nil:
			case errors.Is(err, errIdle):
				continue
			case errors.Is(err, errOverrun):
				m.log.Warn("process events lost: the connector's receive buffer overflowed")
				continue
			default:
				return err
			}
			if (ev.Kind == EventFork || ev.Kind == EventExit) && ev.PID != ev.TGID {
				continue // a thread
			}
			q := queued{ev: ev}
			if ev.Kind == EventExec {
				// Read here, not in the worker: a short-lived program (cat, a probe)
				// is often gone by the time a worker would get to it.
				q.p = &ProcessInfo{}
				if err := r.read(int(ev.TGID), q.p); err != nil {
					if !errors.Is(err, errGone) {
						m.log.Debug("process events: read an exec", "pid", ev.TGID, "err", err)
					}
					// What stat said before the process went (its name, after the
					// exec) is kept for an exec notification to complete.
					if q.p.StartTicks != 0 && q.p.Comm != "" {
						q.stat = &ProcessInfo{Comm: q.p.Comm, PPID: q.p.PPID, StartTicks: q.p.StartTicks, Start: q.p.Start}
					}
					q.p = nil
				}
			}
			m.enqueue(queues, q)
		}
		return nil
	})
	err = grp.Wait()
	m.running.Store(false)
	return err
}

// queued is an event for a worker, with the process already read for an exec (nil
// when it had gone; stat is then what its stat file said, when it could be read). An
// eventNoted carries the exec that waited and its note.
type queued struct {
	ev   ProcEvent
	p    *ProcessInfo
	stat *ProcessInfo
	wait *waitingExec
	note *ExecNote
}

func (m *Monitor) enqueue(queues []chan queued, it queued) {
	q := queues[int(uint32(it.ev.TGID))%len(queues)]
	select {
	case q <- it:
	default:
		m.dropped.Add(1)
	}
}

// scan puts every process of /proc in the tree.
func (m *Monitor) scan() {
	r := newProcReader(m.cfg.ProcRoot)
	ents, err := os.ReadDir(m.cfg.ProcRoot)
	if err != nil {
		m.log.Warn("scan processes", "err", err)
		return
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		p := &ProcessInfo{}
		if err := r.read(pid, p); err != nil {
			continue
		}
		m.mu.Lock()
		if _, ok := m.procs[pid]; !ok { // an event got there first
			m.procs[pid] = p
		}
		m.mu.Unlock()
	}
}

func (m *Monitor) work(ctx context.Context, q chan queued) {
	r := newProcReader(m.cfg.ProcRoot)
	var o Observation
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-q:
			switch it.ev.Kind {
			case eventNoted:
				m.handleNoted(r, it.wait, it.note, &o)
				continue
			case eventExitRec:
				m.finishGone(r, *it.p, &o)
				continue
			}
			m.handle(r, it.ev, it.p, it.stat, &o)
		}
	}
}

// handle applies one event to the tree; read is the process of an exec when the reader
// got it, else it is read here.
func (m *Monitor) handle(r *procReader, ev ProcEvent, read, stat *ProcessInfo, o *Observation) {
	pid := int(ev.TGID)
	switch ev.Kind {
	case EventFork:
		m.forks.Add(1)
		m.mu.RLock()
		parent := m.procs[int(ev.ParentTGID)]
		var child ProcessInfo
		if parent != nil {
			child = *parent
		}
		m.mu.RUnlock()
		child.PID, child.PPID = pid, int(ev.ParentTGID)
		child.StartTicks = r.startTicks(pid)
		if !r.boot.IsZero() && child.StartTicks != 0 {
			child.Start = r.boot.Add(time.Duration(child.StartTicks) * time.Second / clockTicks).UTC()
		}
		if parent == nil || child.StartTicks == 0 {
			if err := r.read(pid, &child); err != nil {
				return
			}
		}
		m.mu.Lock()
		m.procs[pid] = &child
		m.mu.Unlock()
	case EventExit:
		m.exits.Add(1)
		m.mu.Lock()
		delete(m.procs, pid)
		m.mu.Unlock()
	case EventExec:
		m.execs.Add(1)
		p := read
		now := time.Now()
		if p != nil && p.Exe == "" && m.notesOn.Load() {
			// Read while exiting: all but the executable (its link went with the
			// process's memory), which its note names.
			w := waitingExec{pid: ev.TGID, base: *p, known: true, read: true}
			if n, ok := m.corr.execGone(w, now); ok {
				m.handleNoted(r, &w, &n, o)
			}
			return
		}
		if p == nil {
			if !m.notesOn.Load() {
				m.goneUnnoted(r, ev.TGID, stat, now, o)
				return
			}
			// Gone: judged from its exec notification, now or when it comes.
			w := waitingExec{pid: ev.TGID, stat: stat, since: now}
			m.mu.RLock()
			if cur := m.procs[pid]; cur != nil {
				w.base, w.known = *cur, true
			}
			m.mu.RUnlock()
			if n, ok := m.corr.execGone(w, now); ok {
				m.handleNoted(r, &w, &n, o)
			}
			return
		}
		m.mu.Lock()
		m.procs[pid] = p
		m.mu.Unlock()
		if m.notesOn.Load() {
			n, ok, later := m.corr.execRead(ev.TGID, p.Exe, now)
			switch {
			case ok && later:
				// /proc already shows a later program: this exec is judged as the
				// note saw it.
				m.log.Debug("process events: exec judged from its notification; /proc shows a later program",
					"pid", pid, "note", n.Path, "proc_exe", p.Exe, "proc_comm", p.Comm)
				m.observe(r, o, EventExec, fromNote(*p, true, nil, &n), 0, 0, false)
				return
			case ok:
				// Read while exiting: all but the executable, which the note names.
				p.Exe, p.exeIno = n.Exe(), n.Ino
				p.Inferred = []string{"exe"}
			}
		}
		m.observe(r, o, EventExec, *p, 0, 0, false)
		if isShellProcess(p) {
			m.scheduleRechecks(pid, p.StartTicks)
		}
	case eventRecheck:
		p := &ProcessInfo{}
		if err := r.read(pid, p); err != nil || p.StartTicks != uint64(ev.Real)|uint64(ev.Effective)<<32 {
			return
		}
		m.observe(r, o, EventExec, *p, 0, 0, true)
	case EventUID:
		m.uids.Add(1)
		m.mu.Lock()
		cur := m.procs[pid]
		var p ProcessInfo
		if cur != nil {
			p = *cur
		}
		m.mu.Unlock()
		if cur == nil {
			if err := r.read(pid, &p); err != nil {
				m.unread.Add(1)
				return
			}
		}
		prevUID, prevEUID := p.UID, p.EUID
		p.UID, p.EUID = int(ev.Real), int(ev.Effective)
		if prevUID == p.UID && prevEUID == p.EUID && cur != nil {
			return // another thread of a process that changed already (Go's setuid)
		}
		m.mu.Lock()
		if cur := m.procs[pid]; cur != nil {
			cur.UID, cur.EUID = p.UID, p.EUID
		} else {
			m.procs[pid] = &p
		}
		m.mu.Unlock()
		m.observe(r, o, EventUID, p, prevUID, prevEUID, false)
	case EventGID:
		m.mu.Lock()
		if cur := m.procs[pid]; cur != nil {
			cur.GID, cur.EGID = int(ev.Real), int(ev.Effective)
		}
		m.mu.Unlock()
	}
}

func (m *Monitor) scheduleRechecks(pid int, start uint64) {
	for _, d := range m.cfg.Rechecks {
		time.AfterFunc(d, func() {
			if !m.running.Load() {
				return
			}
			// Real and Effective carry the start time, to tell a reused PID apart.
			ev := ProcEvent{Kind: eventRecheck, PID: int32(pid), TGID: int32(pid), Real: uint32(start), Effective: uint32(start >> 32)}
			m.requeue(ev)
		})
	}
}

// requeue is set by Run's queues; rechecks go through the process's worker.
func (m *Monitor) requeue(ev ProcEvent) {
	// Rechecks are rare (shells only), so they are handled here rather than queued: a
	// private reader keeps them off the workers' buffers.
	r := newProcReader(m.cfg.ProcRoot)
	var o Observation
	m.handle(r, ev, nil, nil, &o)
}

// NoteExec takes an exec notification of the file guard (FileGuard.SetExecNotes): the
// identity of a container's exec whose process may be gone before /proc is read. It is
// safe for concurrent use and returns quickly.
func (m *Monitor) NoteExec(n ExecNote) {
	m.notesOn.Store(true)
	if n.Time.IsZero() {
		n.Time = time.Now()
	}
	w, note, ok := m.corr.note(n, n.Time)
	if !ok {
		return
	}
	m.sendNoted(w, &note)
}

// sendNoted hands an exec completed by its note to the worker of its PID, in order with
// the PID's other events.
func (m *Monitor) sendNoted(w waitingExec, n *ExecNote) {
	qs := m.queues.Load()
	if qs == nil {
		var o Observation
		m.handleNoted(newProcReader(m.cfg.ProcRoot), &w, n, &o)
		return
	}
	m.enqueue(*qs, queued{ev: ProcEvent{Kind: eventNoted, PID: w.pid, TGID: w.pid}, wait: &w, note: n})
}

// handleNoted judges an exec whose process had gone, as its note saw it (n nil: a
// process read while exiting whose note did not come, as read).
func (m *Monitor) handleNoted(r *procReader, w *waitingExec, n *ExecNote, o *Observation) {
	var p ProcessInfo
	if n != nil {
		m.recovered.Add(1)
	}
	switch {
	case n == nil:
		p = w.base
	case w.read:
		p = w.base
		p.Exe, p.exeIno, p.Inferred = n.Exe(), n.Ino, []string{"exe"}
	default:
		p = fromNote(w.base, w.known, w.stat, n)
		x := exitCtx{noteIno: n.Ino, setUID: n.SetUID, execAt: w.since}
		if n.Script {
			x.noteIno = 0 // the script's inode; the process runs its interpreter
		}
		m.judgeGone(r, p, x, o)
		return
	}
	m.finishGone(r, p, o)
}

// finishGone puts an exec judged without a whole /proc read in the tree (while the
// process is there) and observes it.
func (m *Monitor) finishGone(r *procReader, p ProcessInfo, o *Observation) {
	m.mu.Lock()
	if cur := m.procs[p.PID]; cur != nil && (p.StartTicks == 0 || cur.StartTicks == p.StartTicks) {
		c := p
		m.procs[p.PID] = &c
	}
	m.mu.Unlock()
	m.observe(r, o, EventExec, p, 0, 0, false)
}

// expireNotes ends the wait of gone execs whose notification has not come (they are
// unread, or judged from a script's note without its interpreter's) and drops old notes.
func (m *Monitor) expireNotes(ctx context.Context) {
	t := time.NewTicker(waitTTL / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			m.corr.expire(now, func(w waitingExec, n ExecNote, ok bool) {
				switch {
				case ok:
					m.sendNoted(w, &n)
				case w.read:
					m.sendNoted(w, nil) // judged as read, without its executable
				default:
					m.sendUnread(w)
				}
			})
		}
	}
}

func (m *Monitor) observe(r *procReader, o *Observation, kind EventKind, p ProcessInfo, prevUID, prevEUID int, recheck bool) {
	*o = Observation{Kind: kind, Recheck: recheck, Time: time.Now().UTC(), Process: p, PrevUID: prevUID, PrevEUID: prevEUID}
	o.Ancestry = m.Ancestry(p.PPID, 16)
	if m.cfg.Detector != nil {
		o.Findings = m.cfg.Detector.Check(o)
	}
	if m.cfg.Observe != nil && (!recheck || len(o.Findings) > 0) {
		m.cfg.Observe(o)
	}
}

// Ancestry returns pid and its parents, at most n, nearest first.
func (m *Monitor) Ancestry(pid, n int) []Ancestor {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Ancestor
	for pid > 0 && len(out) < n {
		p := m.procs[pid]
		if p == nil {
			break
		}
		out = append(out, ancestorOf(p))
		if p.PPID == pid {
			break
		}
		pid = p.PPID
	}
	return out
}

// Get returns the process pid as the tree knows it.
func (m *Monitor) Get(pid int) (ProcessInfo, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p, ok := m.procs[pid]
	if !ok {
		return ProcessInfo{}, false
	}
	c := *p
	c.Cmdline = slices.Clone(p.Cmdline)
	return c, true
}

// Processes returns a copy of the tree, by PID; only the processes of container when
// it is not empty (HostOnly: only the host's).
func (m *Monitor) Processes(container string) []ProcessInfo {
	m.mu.RLock()
	out := make([]ProcessInfo, 0, len(m.procs))
	for _, p := range m.procs {
		switch {
		case container == HostOnly && p.Container != "":
			continue
		case container != "" && container != HostOnly && p.Container != container:
			continue
		}
		c := *p
		c.Cmdline = slices.Clone(p.Cmdline)
		out = append(out, c)
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b ProcessInfo) int { return a.PID - b.PID })
	return out
}

// HostOnly asks Processes for the host's processes.
const HostOnly = "-host-"

// Stats returns the counters.
func (m *Monitor) Stats() MonitorStats {
	m.mu.RLock()
	n := len(m.procs)
	m.mu.RUnlock()
	s := MonitorStats{Processes: n, Forks: m.forks.Load(), Execs: m.execs.Load(), UIDs: m.uids.Load(), Exits: m.exits.Load(),
		Dropped: m.dropped.Load(), Unread: m.unread.Load(), Recovered: m.recovered.Load(), ExecNotes: m.corr.stats()}
	if c := m.conn.Load(); c != nil {
		s.Events, s.Lost, s.Overruns = c.msgs.Load(), c.lost.Load(), c.overrun.Load()
		s.BufferBytes = c.bufferSize()
	}
	s.ExitRecords = m.exitRecs.stats()
	if ts := m.ts.Load(); ts != nil {
		s.ExitRecords.Enabled = m.exitsOn.Load()
		s.ExitRecords.Messages, s.ExitRecords.Bad, s.ExitRecords.Overruns = ts.msgs.Load(), ts.bad.Load(), ts.overrun.Load()
		s.ExitRecords.BufferBytes = ts.rcvbuf
	}
	return s
}

// String describes the stats in one line, for logs.
func (s MonitorStats) String() string {
	return fmt.Sprintf("%d processes, %d execs, %d lost, %d dropped, %d unread, %d recovered from exec notifications", s.Processes, s.Execs, s.Lost, s.Dropped, s.Unread, s.Recovered)
}
