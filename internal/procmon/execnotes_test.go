package procmon

import (
	"slices"
	"testing"
	"time"
)

func note(pid int32, path string, at time.Time) ExecNote {
	return ExecNote{PID: pid, Path: path, Container: "c1", SetUID: -1, Time: at, Ino: 42}
}

func goneExec(pid int32) waitingExec {
	return waitingExec{pid: pid, base: ProcessInfo{PID: int(pid), PPID: 7, Comm: "sh", Exe: "/bin/busybox", UID: 1000, EUID: 1000, StartTicks: 99}, known: true}
}

// An exec whose process had gone pairs with its note in either order, once.
func TestCorrelatorGoneEitherOrder(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := newExecCorrelator()
	// Note first.
	if _, _, ok := c.note(note(10, "/usr/bin/nmap", t0), t0); ok {
		t.Fatal("a note with no exec waiting completed something")
	}
	n, ok := c.execGone(goneExec(10), t0)
	if !ok || n.Path != "/usr/bin/nmap" {
		t.Fatalf("exec after its note: %+v %v", n, ok)
	}
	// Exec first.
	if _, ok := c.execGone(goneExec(11), t0); ok {
		t.Fatal("exec with no note completed")
	}
	w, n, ok := c.note(note(11, "/bin/busybox", t0.Add(time.Millisecond)), t0.Add(time.Millisecond))
	if !ok || w.pid != 11 || n.Path != "/bin/busybox" {
		t.Fatalf("note after its exec: %+v %+v %v", w, n, ok)
	}
	if st := c.stats(); st.Recovered != 2 || st.Notes != 2 || st.Matched != 0 {
		t.Errorf("stats %+v", st)
	}
	if c.pending() != 0 {
		t.Errorf("%d PIDs still held", c.pending())
	}
	// Nothing left to pair: a second exec of 11 waits and expires unread.
	c.execGone(goneExec(11), t0.Add(2*time.Millisecond))
	var unread, judged int
	c.expire(t0.Add(2*time.Millisecond+waitTTL+time.Millisecond), func(w waitingExec, n ExecNote, ok bool) {
		if ok {
			judged++
		} else {
			unread++
		}
	})
	if unread != 1 || judged != 0 || c.pending() != 0 {
		t.Errorf("expiry: unread %d judged %d pending %d", unread, judged, c.pending())
	}
}

// An exec read from /proc takes its note whichever comes first, so that the note is not
// given to a later exec of the PID.
func TestCorrelatorReadExecClaimsNote(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := newExecCorrelator()
	// Read exec first, note after: the note is skipped.
	if _, ok, _ := c.execRead(20, "/bin/busybox", t0); ok {
		t.Fatal("correction without a note")
	}
	c.note(note(20, "/bin/busybox", t0), t0)
	// The next exec of 20 goes before /proc is read: it must not take the first note.
	if n, ok := c.execGone(goneExec(20), t0); ok {
		t.Fatalf("gone exec took the note of the exec read before it: %+v", n)
	}
	w, n, ok := c.note(note(20, "/usr/bin/nc", t0), t0)
	if !ok || w.pid != 20 || n.Path != "/usr/bin/nc" {
		t.Fatalf("second exec's note: %+v %v", n, ok)
	}
	// Note first, read exec after, same program: no correction, nothing held.
	c.note(note(21, "/bin/busybox", t0), t0)
	if _, ok, _ := c.execRead(21, "/bin/busybox", t0); ok {
		t.Error("corrected an exec whose read shows its own program")
	}
	if c.pending() != 0 {
		t.Errorf("%d PIDs still held", c.pending())
	}
	if st := c.stats(); st.Matched != 2 || st.Recovered != 1 || st.Corrected != 0 {
		t.Errorf("stats %+v", st)
	}
}

// A process that exec'd twice before its first exec was read: the read shows the second
// program, and the first exec is judged as its note saw it.
func TestCorrelatorCorrectsLaterRead(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := newExecCorrelator()
	c.note(note(30, "/tmp/dropper", t0), t0)
	c.note(note(30, "/bin/busybox", t0), t0)
	n, ok, _ := c.execRead(30, "/bin/busybox", t0)
	if !ok || n.Path != "/tmp/dropper" {
		t.Fatalf("first exec: %+v %v, want the dropper's note", n, ok)
	}
	if _, ok, _ := c.execRead(30, "/bin/busybox", t0); ok {
		t.Error("second exec corrected")
	}
	// " (deleted)" and the loader are no reason to correct.
	c.note(note(31, "/tmp/x", t0), t0)
	if _, ok, _ := c.execRead(31, "/tmp/x (deleted)", t0); ok {
		t.Error("corrected a deleted executable")
	}
	// A read that could not name the executable (the process was exiting) takes it
	// from the note.
	c.note(note(32, "/usr/local/bin/quick", t0), t0)
	if n, ok, later := c.execRead(32, "", t0); !ok || later || n.Path != "/usr/local/bin/quick" {
		t.Errorf("read without exe: %+v %v %v", n, ok, later)
	}
	if st := c.stats(); st.Corrected != 1 || st.Completed != 1 {
		t.Errorf("stats %+v", st)
	}
}

// Several execs of one PID, all gone, pair in order.
func TestCorrelatorOrder(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := newExecCorrelator()
	c.execGone(goneExec(40), t0)
	c.execGone(goneExec(40), t0)
	var got []string
	for _, p := range []string{"/bin/a", "/bin/b"} {
		if _, n, ok := c.note(note(40, p, t0), t0); ok {
			got = append(got, n.Path)
		}
	}
	if !slices.Equal(got, []string{"/bin/a", "/bin/b"}) {
		t.Errorf("paired %v", got)
	}
}

// A script: its note waits for its interpreter's, whose resolved path is the executable;
// the name is the script's.
func TestCorrelatorScript(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := newExecCorrelator()
	c.execGone(goneExec(50), t0)
	s := note(50, "/app/run.sh", t0)
	s.Script, s.Shebang = true, "/bin/sh"
	if _, _, ok := c.note(s, t0); ok {
		t.Fatal("a script's note completed the exec before its interpreter's")
	}
	i := note(50, "/bin/busybox", t0)
	i.Interpreter = true
	w, n, ok := c.note(i, t0)
	if !ok || w.pid != 50 {
		t.Fatalf("interpreter note: %v", ok)
	}
	p := fromNote(w.base, w.known, nil, &n)
	if p.Exe != "/bin/busybox" || p.Comm != "run.sh" {
		t.Errorf("script process: exe %q comm %q", p.Exe, p.Comm)
	}
	// Without the interpreter's note, the #! line names the executable at expiry.
	c.execGone(goneExec(51), t0)
	s.PID = 51
	c.note(s, t0)
	var exe string
	c.expire(t0.Add(waitTTL+time.Millisecond), func(w waitingExec, n ExecNote, ok bool) {
		if ok {
			exe = n.Exe()
		}
	})
	if exe != "/bin/sh" {
		t.Errorf("script without its interpreter's note: exe %q", exe)
	}
	// The interpreter of a script claimed by a read exec is not given to anything.
	c.note(note(52, "/app/run.sh", t0), t0)
	c.execRead(52, "/bin/busybox", t0)
	if _, _, ok := c.note(i, t0); ok || c.pending() != 0 {
		t.Errorf("a stray interpreter note was used (%v) or held (%d)", ok, c.pending())
	}
}

// Notes nothing claims expire; memory is bounded per PID and overall.
func TestCorrelatorBounds(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := newExecCorrelator()
	for i := range maxNotesPerPID + 3 {
		c.note(note(60, "/bin/x", t0.Add(time.Duration(i))), t0)
	}
	if st := c.stats(); st.NotesDropped != 3 {
		t.Errorf("dropped %d notes, want 3", st.NotesDropped)
	}
	c.expire(t0.Add(noteTTL+time.Second), func(waitingExec, ExecNote, bool) { t.Error("nothing waited") })
	if st := c.stats(); st.Unmatched != maxNotesPerPID || c.pending() != 0 {
		t.Errorf("after expiry: %+v, %d pending", st, c.pending())
	}
	for pid := range int32(maxNotePIDs + 10) {
		c.note(note(pid+1, "/bin/x", t0), t0)
	}
	if c.pending() != maxNotePIDs {
		t.Errorf("%d PIDs held, bound %d", c.pending(), maxNotePIDs)
	}
	// A read exec's skip of a note that never comes lapses.
	c2 := newExecCorrelator()
	c2.execRead(70, "/bin/a", t0)
	c2.expire(t0.Add(noteTTL+time.Second), func(waitingExec, ExecNote, bool) {})
	if c2.pending() != 0 {
		t.Errorf("skip held after expiry")
	}
	later := t0.Add(noteTTL + 2*time.Second)
	c2.execGone(goneExec(70), later)
	if _, _, ok := c2.note(note(70, "/bin/b", later), later); !ok {
		t.Error("a note after a lapsed skip did not complete the waiting exec")
	}
}

// fromNote fills what is missing and says so.
func TestFromNote(t *testing.T) {
	n := note(80, "/usr/local/bin/helper", time.Unix(1000, 0))
	n.SetUID = 0
	w := goneExec(80)
	p := fromNote(w.base, true, nil, &n)
	if p.Exe != "/usr/local/bin/helper" || p.Comm != "helper" || p.UID != 1000 || p.EUID != 0 || p.PPID != 7 ||
		p.Container != "c1" || p.Cmdline != nil || p.exeIno != 42 {
		t.Errorf("process %+v", p)
	}
	if !slices.Equal(p.Inferred, []string{"exe", "cmdline", "name", "uid"}) {
		t.Errorf("inferred %v", p.Inferred)
	}
	// The name from stat, read before the process went.
	bb := note(80, "/bin/busybox", time.Unix(1000, 0))
	p = fromNote(w.base, true, &ProcessInfo{Comm: "true", PPID: 8, StartTicks: 5}, &bb)
	if p.Comm != "true" || p.PPID != 8 || slices.Contains(p.Inferred, "name") {
		t.Errorf("with stat: %+v", p)
	}
	// Not in the tree: user unknown.
	bb.PID = 81
	p = fromNote(ProcessInfo{}, false, nil, &bb)
	if p.UID != -1 || p.EUID != -1 || p.Comm != "busybox" {
		t.Errorf("unknown process: %+v", p)
	}
}

// The monitor turns a gone exec and its note into one observation, in either order, and
// an exec read from /proc with its note into one observation too.
func TestMonitorExecNotes(t *testing.T) {
	var got []Observation
	m := NewMonitor(MonitorConfig{ProcRoot: t.TempDir(), Observe: func(o *Observation) { got = append(got, *o) }}, nil)
	r := newProcReader(m.cfg.ProcRoot)
	var o Observation
	parent := ProcessInfo{PID: 100, PPID: 1, Comm: "sh", Exe: "/bin/busybox", UID: 1000, EUID: 1000, Container: "c1"}
	m.procs[100] = &parent
	fork := func(pid int) {
		c := parent
		c.PID, c.PPID, c.StartTicks = pid, 100, uint64(pid)
		m.procs[pid] = &c
	}
	now := time.Now()

	fork(101)
	m.NoteExec(note(101, "/usr/bin/nmap", now))
	m.handle(r, ProcEvent{Kind: EventExec, PID: 101, TGID: 101}, nil, nil, &o)
	fork(102)
	m.handle(r, ProcEvent{Kind: EventExec, PID: 102, TGID: 102}, nil, &ProcessInfo{Comm: "true", PPID: 100, StartTicks: 102}, &o)
	m.NoteExec(note(102, "/bin/busybox", now))
	fork(103)
	m.NoteExec(note(103, "/bin/busybox", now))
	m.handle(r, ProcEvent{Kind: EventExec, PID: 103, TGID: 103}, &ProcessInfo{PID: 103, PPID: 100, Comm: "cat", Exe: "/bin/busybox", UID: 1000, EUID: 1000, Container: "c1"}, nil, &o)

	if len(got) != 3 {
		t.Fatalf("%d observations, want 3: %+v", len(got), got)
	}
	if p := got[0].Process; p.Exe != "/usr/bin/nmap" || p.Comm != "nmap" || p.EUID != 1000 || p.PPID != 100 || len(got[0].Ancestry) == 0 || got[0].Ancestry[0].PID != 100 {
		t.Errorf("note first: %+v ancestry %+v", p, got[0].Ancestry)
	}
	if p := got[1].Process; p.Exe != "/bin/busybox" || p.Comm != "true" {
		t.Errorf("exec first: %+v", p)
	}
	if p := got[2].Process; p.Comm != "cat" || len(p.Inferred) != 0 {
		t.Errorf("read exec: %+v", p)
	}
	st := m.Stats()
	if st.Execs != 3 || st.Recovered != 2 || st.Unread != 0 || st.ExecNotes.Matched != 1 {
		t.Errorf("stats %+v", st)
	}
	if m.corr.pending() != 0 {
		t.Errorf("%d PIDs held", m.corr.pending())
	}
}

func TestParseShebang(t *testing.T) {
	for _, c := range []struct {
		in     string
		interp string
		script bool
	}{
		{"#!/bin/sh\necho", "/bin/sh", true},
		{"#! /usr/bin/env python3 -u\n", "/usr/bin/env", true},
		{"#!", "", true},
		{"\x7fELF\x02", "", false},
		{"#", "", false},
		{"", "", false},
	} {
		interp, script := parseShebang([]byte(c.in))
		if interp != c.interp || script != c.script {
			t.Errorf("parseShebang(%q) = %q, %v; want %q, %v", c.in, interp, script, c.interp, c.script)
		}
	}
}

func FuzzParseShebang(f *testing.F) {
	f.Add([]byte("#!/bin/sh -e\n"))
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		interp, script := parseShebang(b)
		if interp != "" && !script {
			t.Fatalf("interpreter %q of a non-script", interp)
		}
	})
}

func BenchmarkCorrelator(b *testing.B) {
	c := newExecCorrelator()
	now := time.Now()
	b.ReportAllocs()
	for i := range b.N {
		pid := int32(i%30000 + 1)
		c.note(ExecNote{PID: pid, Path: "/bin/busybox", SetUID: -1, Time: now}, now)
		if i%2 == 0 {
			c.execRead(pid, "/bin/busybox", now)
		} else {
			c.execGone(waitingExec{pid: pid}, now)
		}
	}
}

// A process read while exiting (no executable link) is judged with its note's
// executable, whichever comes first, keeping what was read.
func TestMonitorExitingRead(t *testing.T) {
	var got []Observation
	m := NewMonitor(MonitorConfig{ProcRoot: t.TempDir(), Observe: func(o *Observation) { got = append(got, *o) }}, nil)
	r := newProcReader(m.cfg.ProcRoot)
	var o Observation
	read := ProcessInfo{PID: 200, PPID: 1, Comm: "quick", Cmdline: []string{"quick", "-x"}, UID: 5, EUID: 5, Container: "c1"}
	m.NoteExec(note(300, "/bin/other", time.Now())) // notes on
	c := read
	m.handle(r, ProcEvent{Kind: EventExec, PID: 200, TGID: 200}, &c, nil, &o)
	if len(got) != 0 {
		t.Fatalf("judged before its note: %+v", got)
	}
	m.NoteExec(note(200, "/usr/local/bin/quick", time.Now()))
	if len(got) != 1 {
		t.Fatalf("%d observations", len(got))
	}
	p := got[0].Process
	if p.Exe != "/usr/local/bin/quick" || p.Comm != "quick" || p.EUID != 5 || len(p.Cmdline) != 2 || !slices.Equal(p.Inferred, []string{"exe"}) {
		t.Errorf("process %+v", p)
	}
}
