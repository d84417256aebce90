package procmon

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tsStats builds a struct taskstats of the given version and size.
func tsStats(version uint16, size int, comm string, pid, tgid, ppid, uid, gid uint32, btime uint64, exeIno uint64) []byte {
	ne := binary.NativeEndian
	s := make([]byte, size)
	ne.PutUint16(s[tsOffVersion:], version)
	ne.PutUint32(s[tsOffExitcode:], 7)
	copy(s[tsOffComm:tsOffComm+tsCommLen], comm)
	ne.PutUint32(s[tsOffUID:], uid)
	ne.PutUint32(s[tsOffGID:], gid)
	ne.PutUint32(s[tsOffPID:], pid)
	ne.PutUint32(s[tsOffPPID:], ppid)
	ne.PutUint32(s[tsOffBtime:], uint32(btime))
	ne.PutUint64(s[tsOffEtime:], 1500)
	if size >= tsOffBtime64+8 {
		ne.PutUint64(s[tsOffBtime64:], btime)
	}
	if size >= tsOffExeIno+8 {
		ne.PutUint32(s[tsOffTGID:], tgid)
		ne.PutUint64(s[tsOffExeIno:], exeIno)
	}
	return s
}

func tsAttr(typ uint16, val []byte) []byte {
	ne := binary.NativeEndian
	b := make([]byte, unix.SizeofNlAttr+len(val), (unix.SizeofNlAttr+len(val)+3)&^3)
	ne.PutUint16(b, uint16(len(b)))
	ne.PutUint16(b[2:], typ)
	copy(b[unix.SizeofNlAttr:], val)
	return b[:cap(b)]
}

func tsU32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// tsMsg builds a TASKSTATS_CMD_NEW message of family fam with the given attributes.
func tsMsg(fam uint16, attrs ...[]byte) []byte {
	ne := binary.NativeEndian
	b := make([]byte, unix.NLMSG_HDRLEN+genlHdrLen)
	b[unix.NLMSG_HDRLEN] = taskstatsCmdNew
	for _, a := range attrs {
		b = append(b, a...)
	}
	ne.PutUint32(b, uint32(len(b)))
	ne.PutUint16(b[4:], fam)
	return b
}

const testFam = 27

func TestParseTaskstats(t *testing.T) {
	bt := uint64(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Unix())
	// A single-threaded process of a current kernel (version 13+, larger struct).
	one := tsMsg(testFam, tsAttr(tsTypeAggrPID|unix.NLA_F_NESTED, append(tsAttr(tsTypePID, tsU32(4242)),
		tsAttr(tsTypeStats, tsStats(16, 480, "true", 4242, 4242, 100, 1000, 1001, bt, 777))...)))
	var out [2]ExitRecord
	n, err := parseTaskstats(one, testFam, &out)
	if err != nil || n != 1 {
		t.Fatalf("n %d err %v", n, err)
	}
	r := out[0]
	if r.Comm() != "true" || r.PID != 4242 || r.TGID != 4242 || r.PPID != 100 || r.UID != 1000 || r.GID != 1001 ||
		r.BTime != int64(bt) || r.ExeIno != 777 || r.ExitCode != 7 || r.Elapsed != 1500*time.Microsecond || r.Group || r.Version != 16 {
		t.Errorf("record %+v comm %q", r, r.Comm())
	}

	// A thread group's last thread: the thread's record, then the process's sum.
	two := tsMsg(testFam,
		tsAttr(tsTypeAggrPID, append(tsAttr(tsTypePID, tsU32(501)), tsAttr(tsTypeStats, tsStats(13, 416, "worker", 501, 500, 1, 0, 0, bt, 9))...)),
		tsAttr(tsTypeAggrTGID, append(tsAttr(tsTypeTGID, tsU32(500)), tsAttr(tsTypeStats, tsStats(13, 416, "", 0, 0, 0, 0, 0, 0, 0))...)))
	n, err = parseTaskstats(two, testFam, &out)
	if err != nil || n != 2 {
		t.Fatalf("n %d err %v", n, err)
	}
	if out[0].PID != 501 || out[0].TGID != 500 || out[0].Group || !out[1].Group || out[1].TGID != 500 {
		t.Errorf("records %+v %+v", out[0], out[1])
	}

	// An old kernel (version 8: no btime64, no tgid) gives the basic fields.
	old := tsMsg(testFam, tsAttr(tsTypeAggrPID, append(tsAttr(tsTypePID, tsU32(77)), tsAttr(tsTypeStats, tsStats(8, 328, "sh", 77, 0, 1, 5, 6, bt, 0))...)))
	if n, err = parseTaskstats(old, testFam, &out); err != nil || n != 1 || out[0].Comm() != "sh" || out[0].TGID != 0 || out[0].BTime != int64(bt) {
		t.Errorf("old: n %d err %v %+v", n, err, out[0])
	}
	// A full 32-byte comm is kept whole, without a terminator.
	long := "abcdefghijklmnopqrstuvwxyz012345"
	full := tsMsg(testFam, tsAttr(tsTypeAggrPID, append(tsAttr(tsTypePID, tsU32(9)), tsAttr(tsTypeStats, tsStats(13, 416, long, 9, 9, 1, 0, 0, bt, 0))...)))
	if n, err = parseTaskstats(full, testFam, &out); err != nil || n != 1 || out[0].Comm() != long {
		t.Errorf("full comm: %v %q", err, out[0].Comm())
	}

	bad := map[string][]byte{
		"short":        one[:10],
		"other family": tsMsg(testFam + 1),
		"length past":  func() []byte { b := slices.Clone(one); binary.NativeEndian.PutUint32(b, uint32(len(b)+4)); return b }(),
		"cut stats":    tsMsg(testFam, tsAttr(tsTypeAggrPID, append(tsAttr(tsTypePID, tsU32(1)), tsAttr(tsTypeStats, make([]byte, 100))...))),
		"no stats":     tsMsg(testFam, tsAttr(tsTypeAggrPID, tsAttr(tsTypePID, tsU32(1)))),
		"version 0":    tsMsg(testFam, tsAttr(tsTypeAggrPID, tsAttr(tsTypeStats, make([]byte, 416)))),
		"attr past":    append(tsMsg(testFam), 200, 0, 4, 0),
		"three records": tsMsg(testFam, tsAttr(tsTypeAggrPID, tsAttr(tsTypeStats, tsStats(13, 416, "a", 1, 1, 0, 0, 0, 0, 0))),
			tsAttr(tsTypeAggrPID, tsAttr(tsTypeStats, tsStats(13, 416, "b", 1, 1, 0, 0, 0, 0, 0))),
			tsAttr(tsTypeAggrPID, tsAttr(tsTypeStats, tsStats(13, 416, "c", 1, 1, 0, 0, 0, 0, 0)))),
	}
	for name, b := range bad {
		if name == "attr past" {
			binary.NativeEndian.PutUint32(b, uint32(len(b)))
		}
		if _, err := parseTaskstats(b, testFam, &out); !errors.Is(err, errTaskstats) {
			t.Errorf("%s: err %v, want a taskstats message error", name, err)
		}
	}
}

func FuzzParseTaskstats(f *testing.F) {
	f.Add(tsMsg(testFam, tsAttr(tsTypeAggrPID, append(tsAttr(tsTypePID, tsU32(4242)), tsAttr(tsTypeStats, tsStats(13, 416, "true", 4242, 4242, 1, 0, 0, 1, 2))...))))
	f.Add(tsMsg(testFam, tsAttr(tsTypeAggrTGID, append(tsAttr(tsTypeTGID, tsU32(1)), tsAttr(tsTypeStats, tsStats(9, 330, "", 0, 0, 0, 0, 0, 0, 0))...))))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var out [2]ExitRecord
		n, err := parseTaskstats(b, testFam, &out)
		if n < 0 || n > 2 {
			t.Fatalf("n %d", n)
		}
		if err != nil && !errors.Is(err, errTaskstats) {
			t.Fatalf("error %v does not name the taskstats message", err)
		}
		for i := range n {
			if int(out[i].commLen) > tsCommLen {
				t.Fatalf("comm length %d", out[i].commLen)
			}
		}
	})
}

func BenchmarkParseTaskstats(b *testing.B) {
	msg := tsMsg(testFam, tsAttr(tsTypeAggrPID, append(tsAttr(tsTypePID, tsU32(4242)), tsAttr(tsTypeStats, tsStats(13, 416, "true", 4242, 4242, 1, 0, 0, 1, 2))...)))
	var out [2]ExitRecord
	b.ReportAllocs()
	for b.Loop() {
		if n, err := parseTaskstats(msg, testFam, &out); n != 1 || err != nil {
			b.Fatal(n, err)
		}
	}
}

func exitRec(pid int32, comm string, uid, gid uint32, btime int64, ino uint64, at time.Time) *ExitRecord {
	r := &ExitRecord{Version: 13, PID: pid, TGID: pid, PPID: 1, UID: uid, GID: gid, BTime: btime, ExeIno: ino, Received: at}
	r.commLen = uint8(copy(r.comm[:], comm))
	return r
}

// A gone busybox applet judged from its note: the record names it and gives its IDs.
func TestExitStoreCompletesGuess(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	note := ExecNote{PID: 300, Path: "/bin/busybox", Container: "c1", SetUID: -1, Ino: 55}
	base := ProcessInfo{PID: 300, PPID: 299, Comm: "sh", Exe: "/bin/busybox", UID: 0, EUID: 0, GID: 0, EGID: 0}
	guessed := fromNote(base, true, nil, &note)
	if guessed.Comm != "busybox" || !slices.Contains(guessed.Inferred, "name") {
		t.Fatalf("guess %+v", guessed)
	}
	x := exitCtx{noteIno: 55, setUID: -1, execAt: now}

	// Record first, then the exec: taken at once.
	s := newExitStore()
	if _, ok := s.add(exitRec(300, "true", 1000, 1000, now.Unix(), 55, now)); ok {
		t.Fatal("no waiter, yet completed")
	}
	p := guessed
	ok, waiting := s.take(&p, x, now.Add(time.Millisecond), true)
	if !ok || waiting || p.Comm != "true" || p.UID != 1000 || p.EUID != 1000 || p.GID != 1000 || p.EGID != 1000 {
		t.Fatalf("take: ok %v waiting %v %+v", ok, waiting, p)
	}
	if slices.Contains(p.Inferred, "name") || !slices.Contains(p.Inferred, "euid") || slices.Contains(p.Inferred, "uid") {
		t.Errorf("inferred %v", p.Inferred)
	}
	if slices.Contains(guessed.Inferred, "euid") {
		t.Error("the guess's Inferred was changed in place")
	}
	// Taken once: a second lookup finds nothing.
	q := guessed
	if ok, _ := s.take(&q, x, now, false); ok {
		t.Error("a record was taken twice")
	}

	// Exec first: it waits, and the record's arrival completes it.
	s = newExitStore()
	p = guessed
	if ok, waiting := s.take(&p, x, now, true); ok || !waiting {
		t.Fatalf("want waiting: ok %v waiting %v", ok, waiting)
	}
	if _, ok := s.add(exitRec(301, "other", 0, 0, now.Unix(), 55, now)); ok {
		t.Error("another PID's record completed the waiter")
	}
	done, ok := s.add(exitRec(300, "true", 0, 0, now.Unix(), 55, now.Add(2*time.Millisecond)))
	if !ok || done.Comm != "true" || done.EUID != 0 {
		t.Fatalf("completed: %v %+v", ok, done)
	}
	st := s.stats()
	if st.Waited != 1 || st.Named != 1 || st.TimedOut != 0 {
		t.Errorf("stats %+v", st)
	}

	// No record within exitWait: judged as guessed.
	s = newExitStore()
	p = guessed
	s.take(&p, x, now, true)
	var expired []ProcessInfo
	s.expire(now.Add(exitWait/2), func(p ProcessInfo, _ exitCtx) { expired = append(expired, p) })
	if len(expired) != 0 {
		t.Fatal("expired early")
	}
	s.expire(now.Add(exitWait), func(p ProcessInfo, _ exitCtx) { expired = append(expired, p) })
	if len(expired) != 1 || expired[0].Comm != "busybox" || s.stats().TimedOut != 1 {
		t.Errorf("expired %+v stats %+v", expired, s.stats())
	}
	// A record after the expiry is kept, not applied to anything.
	if _, ok := s.add(exitRec(300, "true", 0, 0, now.Unix(), 55, now)); ok {
		t.Error("a record completed an expired waiter")
	}
}

func TestExitStoreMatching(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	note := ExecNote{PID: 400, Path: "/bin/busybox", SetUID: -1, Ino: 55}
	stat := &ProcessInfo{Comm: "true", PPID: 399, StartTicks: 1234, Start: now}
	withStart := fromNote(ProcessInfo{PID: 400, UID: 1000, EUID: 1000, GID: 1000, EGID: 1000}, true, stat, &note)
	x := exitCtx{noteIno: 55, setUID: -1, execAt: now}

	// A record of an earlier process with the same PID (start a minute before) is not
	// this one's.
	s := newExitStore()
	s.add(exitRec(400, "stale", 0, 0, now.Unix()-60, 55, now))
	p := withStart
	if ok, _ := s.take(&p, x, now, false); ok {
		t.Errorf("stale record taken: %+v", p)
	}
	// Start within the tolerance: taken; the user is real, the effective user is the
	// parent's while the real one did not change.
	s = newExitStore()
	s.add(exitRec(400, "true", 1000, 1000, now.Unix()+1, 55, now))
	p = withStart
	p.EUID = 0 // inherited from a set-user-ID parent
	if ok, _ := s.take(&p, x, now, false); !ok || p.UID != 1000 || p.EUID != 0 {
		t.Errorf("take %v %+v", ok, p)
	}
	// The real user changed: the effective one is taken to be the same.
	s = newExitStore()
	s.add(exitRec(400, "true", 0, 0, now.Unix(), 55, now))
	p = withStart
	if ok, _ := s.take(&p, x, now, false); !ok || p.UID != 0 || p.EUID != 0 {
		t.Errorf("take %v %+v", ok, p)
	}
	// A set-user-ID file: its owner is the effective user, whatever the real one.
	s = newExitStore()
	s.add(exitRec(400, "su", 1000, 1000, now.Unix(), 55, now))
	p = fromNote(ProcessInfo{PID: 400, UID: 1000, EUID: 1000}, true, nil, &ExecNote{PID: 400, Path: "/bin/su", SetUID: 0, Ino: 55})
	if ok, _ := s.take(&p, exitCtx{noteIno: 55, setUID: 0, execAt: now}, now, false); !ok || p.UID != 1000 || p.EUID != 0 || p.Comm != "su" {
		t.Errorf("setuid: %v %+v", ok, p)
	}
	// The record's executable is not the note's: the process exec'd again; its IDs are
	// taken, its name is not.
	s = newExitStore()
	s.add(exitRec(400, "later", 1000, 1000, now.Unix(), 99, now))
	p = fromNote(ProcessInfo{PID: 400}, false, nil, &note)
	if ok, _ := s.take(&p, x, now, false); !ok || p.Comm != "busybox" || !slices.Contains(p.Inferred, "name") || p.UID != 1000 || s.stats().Rejected != 1 {
		t.Errorf("later program: %v %+v %+v", ok, p, s.stats())
	}
	// Start unknown: a record read more than a second before the exec is refused.
	s = newExitStore()
	s.add(exitRec(400, "old", 0, 0, now.Unix(), 55, now.Add(-3*time.Second)))
	p = fromNote(ProcessInfo{PID: 400}, false, nil, &note)
	if ok, _ := s.take(&p, x, now, false); ok {
		t.Errorf("old record taken: %+v", p)
	}
	// Records older than the TTL are not taken.
	s = newExitStore()
	s.add(exitRec(400, "true", 0, 0, now.Unix(), 55, now))
	p = fromNote(ProcessInfo{PID: 400}, false, nil, &note)
	if ok, _ := s.take(&p, exitCtx{setUID: -1}, now.Add(exitRecordTTL+time.Second), false); ok {
		t.Error("expired record taken")
	}
	// Threads and the per-process sum are not stored.
	s = newExitStore()
	s.add(exitRec(401, "thread", 0, 0, 0, 0, now))
	r := exitRec(402, "t", 0, 0, 0, 0, now)
	r.TGID = 400
	s.add(r)
	g := exitRec(400, "", 0, 0, 0, 0, now)
	g.Group = true
	s.add(g)
	if st := s.stats(); st.Records != 1 {
		t.Errorf("stored %d records, want 1 (the thread and the sum skipped)", st.Records)
	}
}

// The waiting table and the ring are bounded.
func TestExitStoreBounds(t *testing.T) {
	now := time.Now()
	s := newExitStore()
	x := exitCtx{setUID: -1, execAt: now}
	for i := range maxExitWaiters + 10 {
		p := ProcessInfo{PID: 10 + i, Inferred: []string{"name"}}
		s.take(&p, x, now, true)
	}
	if len(s.waiters) != maxExitWaiters || s.stats().Full != 10 {
		t.Errorf("waiters %d full %d", len(s.waiters), s.stats().Full)
	}
	s = newExitStore()
	for i := range 2 * maxExitRecords {
		s.add(exitRec(int32(i+1), "x", 0, 0, 0, 0, now))
	}
	if len(s.idx) != maxExitRecords {
		t.Errorf("%d records held, want %d", len(s.idx), maxExitRecords)
	}
	// The oldest went, the newest is there.
	p := ProcessInfo{PID: 2 * maxExitRecords, Inferred: []string{"name"}}
	if ok, _ := s.take(&p, x, now, false); !ok || p.Comm != "x" {
		t.Errorf("newest record: %v %+v", ok, p)
	}
	p = ProcessInfo{PID: 1, Inferred: []string{"name"}}
	if ok, _ := s.take(&p, x, now, false); ok {
		t.Error("the oldest record was kept past the ring")
	}
}

func TestHostGone(t *testing.T) {
	base := ProcessInfo{PID: 9, PPID: 8, Comm: "bash", Exe: "/usr/bin/bash", Cmdline: []string{"bash"}, UID: 1000, EUID: 1000}
	p, ok := hostGone(base, true, nil)
	if !ok || p.Exe != "" || p.Cmdline != nil || !needsExit(&p) {
		t.Fatalf("%v %+v", ok, p)
	}
	s := newExitStore()
	s.add(exitRec(9, "passwd", 1000, 1000, 0, 0, time.Now()))
	if ok, _ := s.take(&p, exitCtx{setUID: -1, required: true}, time.Now(), false); !ok || p.Comm != "passwd" || p.UID != 1000 {
		t.Errorf("%v %+v", ok, p)
	}
	if _, ok := hostGone(ProcessInfo{Container: "c"}, true, nil); ok {
		t.Error("a container's process without a note was judged")
	}
	if _, ok := hostGone(base, false, nil); ok {
		t.Error("an unknown process was judged")
	}
}
