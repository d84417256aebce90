package procmon

import (
	"context"
	"errors"
	"time"
)

// The monitor's side of the taskstats exit records (exitrecords.go).

// readExits reads exit records until ctx ends, storing each and handing an exec that
// waited for its record back to its worker. It does not wake for each record (every
// exit on the host sends one): it drains the socket when an exec starts waiting
// (exitKick; the kernel queued the record before the process could be found gone, so
// that drain finds it), every exitDrain while execs wait (and then ends the waits past
// exitWait), else every exitIdleDrain.
func (m *Monitor) readExits(ctx context.Context, ts *taskstatsConn) {
	defer ts.close()
	t := time.NewTimer(exitIdleDrain)
	defer t.Stop()
	var recs [2]ExitRecord
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.exitKick:
		}
		for ctx.Err() == nil {
			n, err := ts.read(&recs, false)
			if errors.Is(err, errIdle) {
				break
			}
			switch {
			case err == nil:
			case errors.Is(err, errOverrun):
				m.log.Warn("taskstats exit records lost: the receive buffer overflowed")
				continue
			default:
				m.log.Warn("taskstats exit records stopped", "err", err)
				m.exitsOn.Store(false)
				m.exitRecs.expire(time.Now().Add(exitWait), m.exitTimedOut)
				return
			}
			now := time.Now()
			for i := range n {
				recs[i].Received = now
				m.gotExit(&recs[i])
			}
		}
		m.exitRecs.expire(time.Now(), m.exitTimedOut)
		d := exitIdleDrain
		if m.exitRecs.waiting() > 0 {
			d = exitDrain
		}
		t.Reset(d)
	}
}

// exitTimedOut takes an exec whose exit record did not come within exitWait: judged as
// it is, or unread when the record was all that was known of it.
func (m *Monitor) exitTimedOut(p ProcessInfo, x exitCtx) {
	if x.required {
		m.unread.Add(1)
		return
	}
	m.sendGone(p)
}

// kickExits asks the exit records' reader to drain its socket now.
func (m *Monitor) kickExits() {
	select {
	case m.exitKick <- struct{}{}:
	default:
	}
}

// gotExit takes an exit record from the reader.
func (m *Monitor) gotExit(r *ExitRecord) {
	if p, ok := m.exitRecs.add(r); ok {
		m.sendGone(p)
	}
}

// sendGone hands a gone exec, complete, to the worker of its PID to be observed.
func (m *Monitor) sendGone(p ProcessInfo) {
	qs := m.queues.Load()
	if qs == nil {
		var o Observation
		m.finishGone(newProcReader(m.cfg.ProcRoot), p, &o)
		return
	}
	m.enqueue(*qs, queued{ev: ProcEvent{Kind: eventExitRec, PID: int32(p.PID), TGID: int32(p.PID)}, p: &p})
}

// judgeGone observes an exec built from its exec notification once its exit record has
// given its name and user IDs, or at once when the record cannot come.
func (m *Monitor) judgeGone(r *procReader, p ProcessInfo, x exitCtx, o *Observation) {
	if m.exitsOn.Load() && needsExit(&p) {
		if _, waiting := m.exitRecs.take(&p, x, time.Now(), true); waiting {
			m.kickExits()
			return
		}
	}
	m.finishGone(r, p, o)
}

// hostGone is what is known of a host exec whose process had gone before /proc was read
// and that no exec notification named: the tree's copy from the fork (its parent's
// identity: not the exec's program), its stat when read. ok is false for a process of a
// container (its executable is unknown: it cannot be judged against a profile) or one
// the tree did not know.
func hostGone(base ProcessInfo, known bool, stat *ProcessInfo) (ProcessInfo, bool) {
	if !known || base.Container != "" {
		return ProcessInfo{}, false
	}
	p := base
	p.Exe, p.exeIno, p.Cmdline = "", 0, nil
	p.Inferred = []string{"exe", "cmdline", "name", "uid"}
	if stat != nil && stat.Comm != "" {
		p.Comm, p.PPID, p.StartTicks, p.Start = stat.Comm, stat.PPID, stat.StartTicks, stat.Start
		p.Inferred = []string{"exe", "cmdline", "uid"}
	}
	return p, true
}

// goneUnnoted takes an exec whose process had gone when exec notifications are off: a
// host process is observed from its exit record (waiting for it), else it is unread.
func (m *Monitor) goneUnnoted(r *procReader, pid int32, stat *ProcessInfo, now time.Time, o *Observation) {
	m.mu.RLock()
	cur := m.procs[int(pid)]
	var base ProcessInfo
	if cur != nil {
		base = *cur
	}
	m.mu.RUnlock()
	p, ok := hostGone(base, cur != nil, stat)
	if !ok || !m.exitsOn.Load() {
		m.unread.Add(1)
		return
	}
	x := exitCtx{setUID: -1, execAt: now, required: true}
	got, waiting := m.exitRecs.take(&p, x, now, true)
	switch {
	case waiting:
		m.kickExits()
	case got:
		m.exitRecs.countHost()
		m.finishGone(r, p, o)
	default:
		m.unread.Add(1)
	}
}

// sendUnread takes an exec that waited for an exec notification in vain: a host
// process is observed from its exit record (in by now), else it is unread.
func (m *Monitor) sendUnread(w waitingExec) {
	p, ok := hostGone(w.base, w.known, w.stat)
	if ok && m.exitsOn.Load() {
		x := exitCtx{setUID: -1, execAt: w.since, required: true}
		if got, _ := m.exitRecs.take(&p, x, time.Now(), false); got {
			m.exitRecs.countHost()
			m.sendGone(p)
			return
		}
	}
	m.unread.Add(1)
}
