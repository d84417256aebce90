package procmon

import (
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"
)

// exitTestMonitor is a monitor with exit records and exec notes on, over an empty
// /proc (every process has gone), that collects its observations.
func exitTestMonitor(t *testing.T) (*Monitor, *[]ProcessInfo) {
	var seen []ProcessInfo
	m := NewMonitor(MonitorConfig{ProcRoot: t.TempDir(), Observe: func(o *Observation) { seen = append(seen, o.Process) }},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	m.exitsOn.Store(true)
	return m, &seen
}

// A container's exec gone before its read, named by its note (/bin/busybox), is judged
// once, when its exit record names it; without a record, at the end of the wait.
func TestMonitorJudgesGoneExecWithExitRecord(t *testing.T) {
	m, seen := exitTestMonitor(t)
	m.notesOn.Store(true)
	r := newProcReader(m.cfg.ProcRoot)
	var o Observation
	m.mu.Lock()
	m.procs[300] = &ProcessInfo{PID: 300, PPID: 299, Comm: "sh", Exe: "/bin/busybox", Container: "c1", UID: 1000, EUID: 1000, GID: 1000, EGID: 1000}
	m.procs[301] = &ProcessInfo{PID: 301, PPID: 299, Comm: "sh", Exe: "/bin/busybox", Container: "c1", UID: 1000, EUID: 1000, GID: 1000, EGID: 1000}
	m.mu.Unlock()

	m.handle(r, ProcEvent{Kind: EventExec, PID: 300, TGID: 300}, nil, nil, &o)
	m.NoteExec(ExecNote{PID: 300, Path: "/bin/busybox", Container: "c1", SetUID: -1, Ino: 5})
	if len(*seen) != 0 {
		t.Fatalf("judged before its exit record: %+v", *seen)
	}
	m.gotExit(exitRec(300, "true", 1000, 1000, 0, 5, time.Now()))
	if len(*seen) != 1 {
		t.Fatalf("%d observations, want 1", len(*seen))
	}
	p := (*seen)[0]
	if p.Comm != "true" || p.Exe != "/bin/busybox" || p.UID != 1000 || p.EUID != 1000 || slices.Contains(p.Inferred, "name") {
		t.Errorf("judged as %+v", p)
	}

	// The record first, then the exec and its note: judged at once.
	m.gotExit(exitRec(301, "id", 0, 0, 0, 5, time.Now()))
	m.handle(r, ProcEvent{Kind: EventExec, PID: 301, TGID: 301}, nil, nil, &o)
	m.NoteExec(ExecNote{PID: 301, Path: "/bin/busybox", Container: "c1", SetUID: -1, Ino: 5})
	if len(*seen) != 2 || (*seen)[1].Comm != "id" || (*seen)[1].UID != 0 || (*seen)[1].EUID != 0 {
		t.Fatalf("observations %+v", *seen)
	}

	// No record: judged once, as guessed, when the wait ends.
	m.handle(r, ProcEvent{Kind: EventExec, PID: 302, TGID: 302}, nil, nil, &o)
	m.NoteExec(ExecNote{PID: 302, Path: "/bin/busybox", Container: "c1", SetUID: -1, Ino: 5})
	m.exitRecs.expire(time.Now().Add(exitWait), m.exitTimedOut)
	if len(*seen) != 3 || (*seen)[2].Comm != "busybox" || !slices.Contains((*seen)[2].Inferred, "name") {
		t.Fatalf("observations %+v", *seen)
	}
	// A record coming later judges nothing again.
	m.gotExit(exitRec(302, "true", 0, 0, 0, 5, time.Now()))
	if len(*seen) != 3 {
		t.Errorf("judged twice: %+v", *seen)
	}
	if st := m.Stats().ExitRecords; st.Named != 2 || st.Waited != 1 || st.TimedOut != 1 {
		t.Errorf("stats %+v", st)
	}
}

// A host exec gone before its read (no notes on the host) is observed from its exit
// record, and is unread without one.
func TestMonitorHostGoneExec(t *testing.T) {
	m, seen := exitTestMonitor(t)
	r := newProcReader(m.cfg.ProcRoot)
	var o Observation
	m.mu.Lock()
	m.procs[500] = &ProcessInfo{PID: 500, PPID: 499, Comm: "bash", Exe: "/usr/bin/bash", UID: 1000, EUID: 1000}
	m.procs[501] = &ProcessInfo{PID: 501, PPID: 499, Comm: "bash", Exe: "/usr/bin/bash", UID: 1000, EUID: 1000}
	m.mu.Unlock()
	m.handle(r, ProcEvent{Kind: EventExec, PID: 500, TGID: 500}, nil, nil, &o)
	m.gotExit(exitRec(500, "newgrp", 0, 1000, 0, 0, time.Now()))
	if len(*seen) != 1 {
		t.Fatalf("%d observations", len(*seen))
	}
	p := (*seen)[0]
	if p.Comm != "newgrp" || p.Exe != "" || p.UID != 0 || p.GID != 1000 || !slices.Contains(p.Inferred, "exe") {
		t.Errorf("observed %+v", p)
	}
	m.handle(r, ProcEvent{Kind: EventExec, PID: 501, TGID: 501}, nil, nil, &o)
	m.exitRecs.expire(time.Now().Add(exitWait), m.exitTimedOut)
	if len(*seen) != 1 || m.Stats().Unread != 1 || m.Stats().ExitRecords.Host != 1 {
		t.Errorf("observations %+v, stats %+v", *seen, m.Stats())
	}
}
