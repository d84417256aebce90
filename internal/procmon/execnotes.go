package procmon

import (
	"path"
	"sync"
	"time"
)

// Exec notes: what the file guard's FAN_OPEN_EXEC notifications add to the process
// connector.
//
// The connector says that a PID exec'd, not what. The monitor reads /proc at once, and a
// program that exits within about a millisecond is gone by then. In a watched container
// the file guard also sees each exec as the kernel opens the file for execution
// (FAN_OPEN_EXEC, a notification: the exec is never held): the PID that calls execve, the
// file (an open descriptor, whose path can be read after the process has gone) and so
// the container. The correlator pairs those notes with the connector's exec events of
// the same PID, which arrive on another socket, read by another thread, in either order:
//
//   - Only connector execs make observations: a note never counts as an exec by itself,
//     so nothing is counted twice. A note that no exec claims (the execve failed after
//     the open, a process outside the monitor's view) expires after noteTTL.
//   - The kernel opens, in one execve, the program (for a script: the script, then its
//     interpreter; binfmt_script nests up to 4 deep) and then the program's ELF
//     interpreter (ld.so). The file guard drops the loader's note when it follows a
//     program of the same PID and marks a script's interpreter as such
//     (ExecNote.Interpreter); the correlator attaches it to the script's note. One note
//     per execve remains, in kernel order per PID (one fanotify queue).
//   - Execs and notes of one PID pair in order: the k-th exec with the k-th note. An
//     exec whose /proc read succeeded takes its note when it is there, or else skips the
//     next one to come (within noteTTL). An exec whose read failed takes its note, or
//     waits for it (waitTTL); one that is not claimed by then stays unread.
//   - Memory is bounded: at most maxNotesPerPID notes and waiting execs per PID, and
//     maxNotePIDs PIDs; past that new notes are dropped and counted.

// ExecNote is an exec seen by the file guard (fanotify FAN_OPEN_EXEC) in a watched
// container.
type ExecNote struct {
	// PID is the process calling execve, in the host's PID namespace.
	PID int32
	// Path is the file opened for execution as the container sees it, resolved (busybox's
	// /bin/true is /bin/busybox). For a script, the script.
	Path string
	// Interpreter is set on the note of a script's interpreter (the #! line's program,
	// opened by the kernel after the script): it belongs to the PID's previous note.
	Interpreter bool
	// Script is set on the note of a file starting with "#!"; Shebang is the
	// interpreter its first line names (unresolved), used when the interpreter's own note
	// does not come.
	Script  bool
	Shebang string
	// Container is the container whose filesystem holds the file.
	Container string
	// SetUID is the owner of the file when it has the set-user-ID bit (the effective
	// user the exec gives, a nosuid mount aside), else -1.
	SetUID int
	// Ino is the file's inode number (for the drift rule when the process has gone).
	Ino uint64
	// Time is when the note was read.
	Time time.Time

	// interp is the resolved interpreter of a script, from its Interpreter note.
	interp string
}

// Exe is the executable the process runs after this exec: the script's interpreter for
// a script (resolved when its note came, else the #! line's), else the file itself.
func (n *ExecNote) Exe() string {
	switch {
	case !n.Script:
		return n.Path
	case n.interp != "":
		return n.interp
	case n.Shebang != "":
		return n.Shebang
	}
	return n.Path
}

// Name is the command name the kernel gives the process: the base name of the file
// execve was given. The note only has the resolved path, so this is a guess that is wrong
// for a program run through a symbolic link to another name (busybox's applets,
// python3 → python3.11).
func (n *ExecNote) Name() string {
	b := path.Base(n.Path)
	return b[:min(len(b), 15)]
}

// Bounds and delays of the correlator.
const (
	maxNotesPerPID = 8
	maxNotePIDs    = 65536
	// noteTTL is how long a note waits for its exec, and an exec that was read skips the
	// next note of its PID.
	noteTTL = 2 * time.Second
	// waitTTL is how long an exec whose process had gone waits for its note.
	waitTTL = time.Second
)

// waitingExec is a connector exec whose process had gone before /proc was read and
// whose note has not come yet. base is what the tree knew of the process then (its
// parent's copy from the fork), and stat what could be read before it went.
type waitingExec struct {
	pid   int32
	base  ProcessInfo
	known bool // base is from the tree
	read  bool // base is a /proc read of the process after its exec, all but its executable
	stat  *ProcessInfo
	since time.Time
}

// noteState is what the correlator holds for one PID.
type noteState struct {
	notes   []ExecNote    // not yet claimed, oldest first
	waiting []waitingExec // execs waiting for a note, oldest first
	skip    int           // notes to come that belong to execs already read
	skipAt  time.Time     // when skip was last raised
	last    time.Time     // last change, for expiry
}

// CorrelatorStats counts the correlator's work.
type CorrelatorStats struct {
	Notes        uint64 `json:"notes"`         // program notes received
	Matched      uint64 `json:"matched"`       // claimed by an exec that had been read
	Recovered    uint64 `json:"recovered"`     // gave the identity of an exec whose process had gone
	Corrected    uint64 `json:"corrected"`     // replaced a /proc read that showed a later program
	Completed    uint64 `json:"completed"`     // named the executable of a read that could not (the process was exiting)
	Unmatched    uint64 `json:"unmatched"`     // expired unclaimed
	NotesDropped uint64 `json:"notes_dropped"` // refused: too many pending
}

// execCorrelator pairs notes with connector execs. It is safe for concurrent use.
type execCorrelator struct {
	mu  sync.Mutex
	pid map[int32]*noteState
	st  CorrelatorStats
}

func newExecCorrelator() *execCorrelator {
	return &execCorrelator{pid: map[int32]*noteState{}}
}

func (c *execCorrelator) state(pid int32, now time.Time, create bool) *noteState {
	s := c.pid[pid]
	if s == nil && create {
		if len(c.pid) >= maxNotePIDs {
			return nil
		}
		s = &noteState{}
		c.pid[pid] = s
	}
	if s != nil {
		s.last = now
	}
	return s
}

func (c *execCorrelator) release(pid int32, s *noteState) {
	if len(s.notes) == 0 && len(s.waiting) == 0 && s.skip == 0 {
		delete(c.pid, pid)
	}
}

// note takes a note from the file guard. It returns the exec the note completes, when an
// exec of its PID was waiting for it.
func (c *execCorrelator) note(n ExecNote, now time.Time) (waitingExec, ExecNote, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n.Interpreter {
		// The interpreter of the PID's last script, if still unclaimed or waiting.
		s := c.pid[n.PID]
		if s == nil || len(s.notes) == 0 {
			return waitingExec{}, ExecNote{}, false
		}
		last := &s.notes[len(s.notes)-1]
		if !last.Script || last.interp != "" {
			return waitingExec{}, ExecNote{}, false
		}
		last.interp = n.Path
		// A script's note completes a waiting exec only with its interpreter.
		if len(s.waiting) > 0 && len(s.notes) == 1 {
			w := s.waiting[0]
			s.waiting = s.waiting[1:]
			got := s.notes[0]
			s.notes = s.notes[1:]
			c.st.Recovered++
			c.release(n.PID, s)
			return w, got, true
		}
		return waitingExec{}, ExecNote{}, false
	}
	c.st.Notes++
	s := c.state(n.PID, now, true)
	if s == nil {
		c.st.NotesDropped++
		return waitingExec{}, ExecNote{}, false
	}
	if s.skip > 0 {
		if now.Sub(s.skipAt) <= noteTTL {
			s.skip--
			c.st.Matched++
			c.release(n.PID, s)
			return waitingExec{}, ExecNote{}, false
		}
		s.skip = 0
	}
	if len(s.waiting) > 0 && len(s.notes) == 0 && !n.Script {
		w := s.waiting[0]
		s.waiting = s.waiting[1:]
		c.st.Recovered++
		c.release(n.PID, s)
		return w, n, true
	}
	if len(s.notes) >= maxNotesPerPID {
		c.st.NotesDropped++
		return waitingExec{}, ExecNote{}, false
	}
	s.notes = append(s.notes, n)
	return waitingExec{}, ExecNote{}, false
}

// execRead claims the note of an exec whose /proc read succeeded, exe being what /proc
// named. It returns the note, with later true, when the read shows a later program than
// this exec's (the process exec'd again before it was read): the note is then the better
// identity. When exe is empty (the process was exiting: its exe link had gone with its
// memory) it returns the note, with later false, to name the executable.
func (c *execCorrelator) execRead(pid int32, exe string, now time.Time) (n ExecNote, ok, later bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.pid[pid]
	if s == nil || len(s.notes) == 0 {
		if s == nil {
			if s = c.state(pid, now, true); s == nil {
				return ExecNote{}, false, false
			}
		}
		s.last = now
		if s.skip < maxNotesPerPID {
			s.skip++
		}
		s.skipAt = now
		return ExecNote{}, false, false
	}
	n = s.notes[0]
	s.notes = s.notes[1:]
	c.st.Matched++
	c.release(pid, s)
	if exe == "" {
		c.st.Completed++
		return n, true, false
	}
	if n.Script || CleanExe(exe) == n.Path || isELFInterpreter(n.Path) {
		return ExecNote{}, false, false
	}
	// /proc shows another program than the one this exec opened: the process has
	// exec'd again since (sh -c 'exec prog'), and the read is of the later program.
	c.st.Corrected++
	return n, true, true
}

// execGone takes an exec whose process had gone before /proc was read. It returns the
// note when it has come; otherwise the exec waits for it (until expire) and ok is false.
func (c *execCorrelator) execGone(w waitingExec, now time.Time) (ExecNote, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.state(w.pid, now, true)
	if s == nil {
		return ExecNote{}, false
	}
	if len(s.notes) > 0 && len(s.waiting) == 0 {
		n := s.notes[0]
		// A script's note waits for its interpreter's a moment, unless another note
		// has come since (then the interpreter's never will).
		if !n.Script || n.interp != "" || len(s.notes) > 1 {
			s.notes = s.notes[1:]
			c.st.Recovered++
			c.release(w.pid, s)
			return n, true
		}
	}
	if len(s.waiting) >= maxNotesPerPID {
		return ExecNote{}, false
	}
	w.since = now
	s.waiting = append(s.waiting, w)
	return ExecNote{}, false
}

// expire drops what has waited too long. It returns the waiting execs whose time is up,
// each with the script note it may still have (its interpreter's note never came:
// ok), to be judged or counted unread.
func (c *execCorrelator) expire(now time.Time, done func(w waitingExec, n ExecNote, ok bool)) {
	type result struct {
		w  waitingExec
		n  ExecNote
		ok bool
	}
	var out []result
	c.mu.Lock()
	for pid, s := range c.pid {
		for len(s.waiting) > 0 && now.Sub(s.waiting[0].since) > waitTTL {
			r := result{w: s.waiting[0]}
			s.waiting = s.waiting[1:]
			if len(s.notes) > 0 {
				r.n, r.ok = s.notes[0], true
				s.notes = s.notes[1:]
				c.st.Recovered++
			}
			out = append(out, r)
		}
		for len(s.notes) > 0 && now.Sub(s.notes[0].Time) > noteTTL {
			s.notes = s.notes[1:]
			c.st.Unmatched++
		}
		if s.skip > 0 && now.Sub(s.skipAt) > noteTTL {
			s.skip = 0
		}
		c.release(pid, s)
	}
	c.mu.Unlock()
	for _, r := range out {
		done(r.w, r.n, r.ok)
	}
}

// stats returns the counters.
func (c *execCorrelator) stats() CorrelatorStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// pending is the number of PIDs with something held.
func (c *execCorrelator) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pid)
}

// fromNote builds the process of an exec from its note: what the tree knew of the
// process (base: its parent's copy from the fork, when known), what /proc's stat gave
// before the process went (stat, may be nil), and the note. Fields that could not be
// read are listed in Inferred.
func fromNote(base ProcessInfo, known bool, stat *ProcessInfo, n *ExecNote) ProcessInfo {
	p := base
	p.PID = int(n.PID)
	p.Exe = n.Exe()
	p.exeIno = n.Ino
	if n.Script && n.interp == "" {
		p.exeIno = 0 // the script's inode, not the interpreter's
	}
	p.Cmdline = nil
	p.Container = n.Container
	p.Inferred = []string{"exe", "cmdline"}
	if stat != nil && stat.Comm != "" {
		p.Comm, p.PPID, p.StartTicks, p.Start = stat.Comm, stat.PPID, stat.StartTicks, stat.Start
	} else {
		p.Comm = n.Name()
		p.Inferred = append(p.Inferred, "name")
	}
	if !known {
		p.UID, p.EUID, p.GID, p.EGID = -1, -1, -1, -1
	}
	if n.SetUID >= 0 {
		p.EUID = n.SetUID
	}
	p.Inferred = append(p.Inferred, "uid")
	return p
}
