//go:build integration

package procmon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-sec/vigil/test/testenv"
)

// guardRecorder keeps what a FileGuard reports, for polling with a deadline.
type guardRecorder struct {
	mu     sync.Mutex
	events []FileEvent
	done   chan struct{}
}

func newTestGuard(t *testing.T) (*FileGuard, *guardRecorder) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g, err := NewFileGuard(log)
	if err != nil {
		t.Fatalf("NewFileGuard: %v", err)
	}
	if err := g.Supported(); err != nil {
		t.Fatalf("this kernel cannot hold execs: %v", err)
	}
	rec := &guardRecorder{done: make(chan struct{})}
	go func() {
		defer close(rec.done)
		for ev := range g.Events() {
			rec.mu.Lock()
			rec.events = append(rec.events, ev)
			rec.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		closed := make(chan error, 1)
		go func() { closed <- g.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("Close: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Close did not return in 10 s")
		}
		<-rec.done
	})
	return g, rec
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// wait polls for an event matching pred until the deadline.
func (r *guardRecorder) wait(t *testing.T, what string, pred func(FileEvent) bool) FileEvent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		for _, ev := range r.events {
			if pred(ev) {
				r.mu.Unlock()
				return ev
			}
		}
		n := len(r.events)
		r.mu.Unlock()
		if time.Now().After(deadline) {
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("no %s event within 5 s; %d events: %+v", what, n, r.events)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *guardRecorder) all() []FileEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]FileEvent(nil), r.events...)
}

func containerPID(t *testing.T, d *testenv.Docker, id string) int {
	t.Helper()
	pid := d.Inspect(t, id).State.Pid
	if pid <= 0 {
		t.Fatalf("container %s has no PID", id)
	}
	return pid
}

// inContainer reports whether pid's cgroup names the container.
func inContainer(pid int, id string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	return err == nil && strings.Contains(string(b), id)
}

// Protect: an exec the decision denies fails in the container before it runs and is
// reported; others run.
func TestFileGuardDeniesExec(t *testing.T) {
	d := testenv.NewDocker(t)
	c := d.Run(t, testenv.ContainerSpec{})
	// busybox's applets are links to one binary; a copy gives cat a path of its own.
	d.Exec(t, c.ID, "sh", "-c", "rm /bin/cat && cp /bin/busybox /bin/cat")
	g, rec := newTestGuard(t)

	var mu sync.Mutex
	var asked []ExecAttempt
	var inside atomic.Int32
	decide := func(a ExecAttempt) bool {
		if inContainer(a.PID, c.ID) {
			inside.Add(1)
		}
		mu.Lock()
		asked = append(asked, a)
		mu.Unlock()
		return a.Path != "/bin/cat"
	}
	if err := g.WatchContainer(context.Background(), c.ID, containerPID(t, d, c.ID), decide); err != nil {
		t.Fatalf("WatchContainer: %v", err)
	}

	out, code, err := d.ExecResult(c.ID, "cat", "/etc/hostname")
	if err != nil {
		t.Fatalf("exec cat: %v", err)
	}
	if code == 0 || !strings.Contains(strings.ToLower(out), "operation not permitted") {
		t.Fatalf("denied cat ran: exit code %d, output %q", code, out)
	}
	ev := rec.wait(t, "exec.denied", func(ev FileEvent) bool { return ev.Kind == FileEventExecDenied })
	if ev.Path != "/bin/cat" || ev.ContainerID != c.ID || ev.PID <= 0 || ev.Count != 1 {
		t.Errorf("denied exec event = %+v, want /bin/cat in %s with its PID", ev, c.ID)
	}
	t.Logf("denied: %+v", ev)

	if out := d.Exec(t, c.ID, "ls", "/etc/hostname"); !strings.Contains(out, "/etc/hostname") {
		t.Errorf("allowed ls printed %q", out)
	}
	if out := d.Exec(t, c.ID, "sh", "-c", "echo ran"); strings.TrimSpace(out) != "ran" {
		t.Errorf("allowed sh printed %q", out)
	}
	mu.Lock()
	var sawBusybox bool
	for _, a := range asked {
		if a.ContainerID != c.ID {
			t.Errorf("decision asked for container %q, want %s", a.ContainerID, c.ID)
		}
		if a.Path == "/bin/busybox" {
			sawBusybox = true
		}
	}
	n := len(asked)
	mu.Unlock()
	if !sawBusybox || n < 3 {
		t.Errorf("decision asked %d times (%v), want cat, ls and sh (as /bin/busybox)", n, asked)
	}
	if int(inside.Load()) != n {
		t.Errorf("%d of %d decisions were about a process of the container", inside.Load(), n)
	}
	st := g.Stats()
	if st.ExecDenied != 1 || st.ExecChecks < uint64(n) || st.DecideTimeouts != 0 {
		t.Errorf("stats %+v: want 1 denial, %d checks, no timeouts", st, n)
	}

	// After Unwatch nothing is held any more.
	if err := g.Unwatch(c.ID); err != nil {
		t.Fatalf("Unwatch: %v", err)
	}
	if out := d.Exec(t, c.ID, "cat", "/etc/hostname"); strings.TrimSpace(out) == "" {
		t.Errorf("cat after Unwatch printed nothing")
	}
	if st := g.Stats(); st.ExecDenied != 1 || st.Containers != 0 {
		t.Errorf("stats after Unwatch %+v", st)
	}
}

// A decision that never comes is replaced by allow at the deadline.
func TestFileGuardDecisionDeadline(t *testing.T) {
	d := testenv.NewDocker(t)
	c := d.Run(t, testenv.ContainerSpec{})
	g, _ := newTestGuard(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	decide := func(a ExecAttempt) bool { <-release; return false }
	if err := g.WatchContainer(context.Background(), c.ID, containerPID(t, d, c.ID), decide); err != nil {
		t.Fatalf("WatchContainer: %v", err)
	}
	start := time.Now()
	if out := d.Exec(t, c.ID, "echo", "late"); strings.TrimSpace(out) != "late" {
		t.Errorf("exec printed %q", out)
	}
	took := time.Since(start)
	st := g.Stats()
	if st.DecideTimeouts == 0 || st.ExecDenied != 0 {
		t.Errorf("stats %+v: want a timeout and no denial", st)
	}
	if took < fileGuardDecideTimeout {
		t.Errorf("exec took %v, less than the deadline: was it held?", took)
	}
	t.Logf("exec with a stuck decision took %v", took)
}

// Changes to sensitive files are reported with the path inside the container and the
// writer; other writes are not.
func TestFileGuardSensitiveFiles(t *testing.T) {
	d := testenv.NewDocker(t)
	c := d.Run(t, testenv.ContainerSpec{})
	d.Exec(t, c.ID, "mkdir", "-p", "/usr/local/bin")
	g, rec := newTestGuard(t)
	if err := g.WatchContainer(context.Background(), c.ID, containerPID(t, d, c.ID), nil); err != nil {
		t.Fatalf("WatchContainer: %v", err)
	}

	// The shell writes (its redirection) and stays alive while the event is read
	// (sleep is not its last command, so it forks it rather than exec it in place).
	d.Exec(t, c.ID, "sh", "-c", "echo 'evil:x:0:0::/:/bin/sh' >> /etc/passwd; sleep 2; exit 0")
	ev := rec.wait(t, "write /etc/passwd", func(ev FileEvent) bool {
		return ev.Kind == FileEventWrite && ev.Path == "/etc/passwd"
	})
	if ev.ContainerID != c.ID || ev.Class != FileClassAccounts || ev.PID <= 0 || ev.Comm != "sh" || ev.Exe != "/bin/busybox" {
		t.Errorf("passwd write event = %+v, want class accounts, the container and the writer (sh, /bin/busybox)", ev)
	}

	d.Exec(t, c.ID, "cp", "/bin/busybox", "/usr/local/bin/tool")
	rec.wait(t, "write /usr/local/bin/tool", func(ev FileEvent) bool {
		return ev.Kind == FileEventWrite && ev.Path == "/usr/local/bin/tool" && ev.Class == FileClassBinary && ev.ContainerID == c.ID
	})
	rec.wait(t, "create /usr/local/bin/tool", func(ev FileEvent) bool {
		return ev.Kind == FileEventCreate && ev.Path == "/usr/local/bin/tool" && ev.Class == FileClassBinary
	})

	// Replaced by a rename, as useradd and sed -i do: no write to /etc/shadow itself.
	d.Exec(t, c.ID, "sh", "-c", "echo 'root:*:1::::::' > /tmp/s && mv /tmp/s /etc/shadow")
	rec.wait(t, "rename /etc/shadow", func(ev FileEvent) bool {
		return ev.Kind == FileEventRename && ev.Path == "/etc/shadow" && ev.Class == FileClassAccounts
	})

	// A directory made after the watch started, then a key written in it.
	d.Exec(t, c.ID, "sh", "-c", "mkdir -p /root/.ssh && echo ssh-ed25519 AAAA > /root/.ssh/authorized_keys")
	rec.wait(t, "write authorized_keys", func(ev FileEvent) bool {
		return ev.Kind == FileEventWrite && ev.Path == "/root/.ssh/authorized_keys" && ev.Class == FileClassSSH
	})

	// dockerd copying a file in writes through the host's view of the container's root:
	// the path must still be the container's.
	tmp := t.TempDir()
	if err := os.WriteFile(filepath.Join(tmp, "dropped"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("docker", "cp", filepath.Join(tmp, "dropped"), c.ID+":/usr/bin/dropped").CombinedOutput(); err != nil {
		t.Fatalf("docker cp: %v: %s", err, out)
	}
	rec.wait(t, "docker cp into /usr/bin", func(ev FileEvent) bool {
		return ev.Path == "/usr/bin/dropped" && ev.Class == FileClassBinary && ev.ContainerID == c.ID
	})

	d.Exec(t, c.ID, "sh", "-c", "echo data > /tmp/file && mkdir -p /srv && echo x > /srv/y")
	for _, ev := range rec.all() {
		if strings.HasPrefix(ev.Path, "/tmp") || strings.HasPrefix(ev.Path, "/srv") {
			t.Errorf("non-sensitive change reported: %+v", ev)
		}
	}
	st := g.Stats()
	if st.FileEvents == 0 || st.Overflows != 0 || st.EventsDropped != 0 {
		t.Errorf("stats %+v", st)
	}
	t.Logf("stats: %+v", st)
}

// A burst of writes is one event at once and one aggregate with the count.
func TestFileGuardAggregatesBursts(t *testing.T) {
	d := testenv.NewDocker(t)
	c := d.Run(t, testenv.ContainerSpec{})
	g, rec := newTestGuard(t)
	if err := g.WatchContainer(context.Background(), c.ID, containerPID(t, d, c.ID), nil); err != nil {
		t.Fatalf("WatchContainer: %v", err)
	}
	const n = 300
	d.Exec(t, c.ID, "sh", "-c", fmt.Sprintf("mkdir -p /usr/lib/pkg && i=0; while [ $i -lt %d ]; do echo $i > /usr/lib/pkg/f$i; i=$((i+1)); done", n))
	agg := rec.wait(t, "aggregated writes", func(ev FileEvent) bool {
		return ev.Kind == FileEventWrite && ev.Aggregated && ev.Class == FileClassBinary
	})
	var writes, total int
	for _, ev := range rec.all() {
		if ev.Kind == FileEventWrite && ev.Class == FileClassBinary {
			writes++
			total += ev.Count
		}
	}
	if total != n || writes > 4 {
		t.Errorf("%d write events standing for %d writes, want a few standing for %d", writes, total, n)
	}
	if len(agg.Paths) == 0 || len(agg.Paths) > aggSamplePaths {
		t.Errorf("aggregate paths %v", agg.Paths)
	}
}

// execLoop runs n execs of /bin/true in the container and returns the wall time.
func execLoop(t *testing.T, d *testenv.Docker, id string, n int) time.Duration {
	t.Helper()
	start := time.Now()
	d.Exec(t, id, "sh", "-c", fmt.Sprintf("i=0; while [ $i -lt %d ]; do /bin/true; i=$((i+1)); done", n))
	return time.Since(start)
}

// 500 execs with a decision that allows all: none fails or hangs, and the cost per exec
// is measured against the same loop unguarded.
func TestFileGuardExecStorm(t *testing.T) {
	const n, rounds = 500, 3
	d := testenv.NewDocker(t)
	c := d.Run(t, testenv.ContainerSpec{})
	best := func() time.Duration {
		b := time.Duration(1 << 62)
		for range rounds {
			b = min(b, execLoop(t, d, c.ID, n))
		}
		return b
	}
	base := best()
	g, _ := newTestGuard(t)
	var calls atomic.Int64
	decide := func(a ExecAttempt) bool { calls.Add(1); return true }
	if err := g.WatchContainer(context.Background(), c.ID, containerPID(t, d, c.ID), decide); err != nil {
		t.Fatalf("WatchContainer: %v", err)
	}
	guarded := best()
	if got := calls.Load(); got < rounds*n {
		t.Errorf("decision asked %d times for %d execs", got, rounds*n)
	}
	st := g.Stats()
	if st.DecideTimeouts != 0 || st.DecideBusy != 0 || st.ResponseErrors != 0 {
		t.Errorf("stats %+v", st)
	}
	added := (guarded - base) / n
	t.Logf("%d execs: %v unguarded, %v guarded: %v (%.0f ns) added per exec; stats %+v",
		n, base, guarded, added, float64(guarded-base)/n, st)
}

// Closing the guard while a container execs in a loop with a slow decision neither hangs
// Close nor the container.
func TestFileGuardCloseWhileExecing(t *testing.T) {
	d := testenv.NewDocker(t)
	c := d.Run(t, testenv.ContainerSpec{})
	g, err := NewFileGuard(nil)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	decide := func(a ExecAttempt) bool { calls.Add(1); time.Sleep(5 * time.Millisecond); return true }
	if err := g.WatchContainer(context.Background(), c.ID, containerPID(t, d, c.ID), decide); err != nil {
		t.Fatalf("WatchContainer: %v", err)
	}
	loop := make(chan error, 1)
	go func() {
		_, code, err := d.ExecResult(c.ID, "sh", "-c", "i=0; while [ $i -lt 400 ]; do /bin/true; i=$((i+1)); done")
		if err == nil && code != 0 {
			err = fmt.Errorf("exit code %d", code)
		}
		loop <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d decisions in 10 s", calls.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	if err := g.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v", took)
	}
	select {
	case err := <-loop:
		if err != nil {
			t.Errorf("exec loop: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("exec loop still running 30 s after Close")
	}
	if _, ok := <-g.Events(); ok {
		t.Errorf("Events not closed")
	}
}

// BenchmarkFileGuardExec measures what the guard adds to one exec: the same program run
// in a loop inside a container, unguarded and guarded with a decision that allows all.
// ns/exec is the figure; the difference between the two is the guard's cost.
func BenchmarkFileGuardExec(b *testing.B) {
	d := testenv.NewDocker(b)
	c := d.Run(b, testenv.ContainerSpec{})
	pid := d.Inspect(b, c.ID).State.Pid
	run := func(b *testing.B) {
		n := b.N
		start := time.Now()
		d.Exec(b, c.ID, "sh", "-c", fmt.Sprintf("i=0; while [ $i -lt %d ]; do /bin/true; i=$((i+1)); done", n))
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(n), "ns/exec")
	}
	b.Run("unguarded", run)
	b.Run("guarded", func(b *testing.B) {
		g, err := NewFileGuard(nil)
		if err != nil {
			b.Fatal(err)
		}
		defer g.Close()
		if err := g.WatchContainer(context.Background(), c.ID, pid, func(ExecAttempt) bool { return true }); err != nil {
			b.Fatal(err)
		}
		run(b)
	})
}

// BenchmarkFileGuardExecHost measures the guard's cost per exec precisely, without a
// container's noise: a copy of /bin/true carries an exec permission mark (an inode mark,
// so nothing else on the host is held), and the benchmark forks and execs it b.N times,
// unguarded and guarded with a decision that allows all. The guard's whole path runs:
// the kernel's event, its container found by mount, the PID namespace compared, the path
// read, a worker asking the decision, the answer. allocs/op counts the whole process,
// so the difference between the two is what the guard allocates per exec; cpu-ns/exec
// likewise gives the guard's CPU time per exec.
func BenchmarkFileGuardExecHost(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "true")
	data, err := os.ReadFile("/bin/true")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B) {
		b.ReportAllocs()
		attr := &syscall.ProcAttr{Files: []uintptr{0, 1, 2}}
		cpu0 := processCPU(b)
		defer func() {
			b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/exec")
		}()
		for b.Loop() {
			pid, err := syscall.ForkExec(bin, []string{"true"}, attr)
			if err != nil {
				b.Fatal(err)
			}
			var ws syscall.WaitStatus
			if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
				b.Fatalf("wait: %v, status %v", err, ws)
			}
		}
	}
	b.Run("unguarded", run)
	b.Run("guarded", func(b *testing.B) {
		g, err := NewFileGuard(nil)
		if err != nil {
			b.Fatal(err)
		}
		defer g.Close()
		var calls atomic.Int64
		watchFileForBench(b, g, bin, func(a ExecAttempt) bool { calls.Add(1); return a.Path == bin })
		run(b)
		if calls.Load() < int64(b.N) {
			b.Fatalf("decision asked %d times for %d execs", calls.Load(), b.N)
		}
		if st := g.Stats(); st.DecideTimeouts != 0 || st.DecideBusy != 0 || st.ExecForeign != 0 {
			b.Fatalf("stats %+v", st)
		}
	})
}

// processCPU is the CPU time of this process (the guard's goroutines included, the
// children not): the guard's CPU cost per exec is the difference between the guarded
// and unguarded runs, a figure that a loaded machine disturbs far less than wall time.
func processCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// watchFileForBench holds the execs of one host file as WatchContainer holds a
// container's: a watch for the host's PID namespace, found by the file's mount.
func watchFileForBench(b *testing.B, g *FileGuard, path string, decide func(ExecAttempt) bool) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	_, mnt, err := fileIdentity(int32(fd))
	if err != nil {
		b.Fatal(err)
	}
	var sc procScratch
	ns, err := sc.pidNS(int32(os.Getpid()))
	if err != nil {
		b.Fatal(err)
	}
	w := &guardWatch{id: "host-bench", initPID: os.Getpid(), pidNS: ns, decide: decide}
	g.mu.Lock()
	g.watches[w.id] = w
	g.byMnt[mnt] = w
	g.mu.Unlock()
	if err := g.perm.mark(unix.FAN_MARK_ADD, permMask, fd); err != nil {
		b.Fatal(err)
	}
}

// A dynamic program's ELF interpreter is not asked about when the kernel opens it for
// the program; run as a program itself, it is.
func TestFileGuardELFInterpreter(t *testing.T) {
	d := testenv.NewDocker(t)
	c := d.Run(t, testenv.ContainerSpec{})
	// The host's dynamic /bin/true with its loader and libc, at the same paths.
	d.Exec(t, c.ID, "mkdir", "-p", "/lib64", "/lib/x86_64-linux-gnu")
	for src, dst := range map[string]string{
		"/bin/true":                       "/bin/truedyn",
		"/lib64/ld-linux-x86-64.so.2":     "/lib64/ld-linux-x86-64.so.2",
		"/lib/x86_64-linux-gnu/libc.so.6": "/lib/x86_64-linux-gnu/libc.so.6",
	} {
		if out, err := exec.Command("docker", "cp", "-L", src, c.ID+":"+dst).CombinedOutput(); err != nil {
			t.Fatalf("docker cp %s: %v: %s", src, err, out)
		}
	}
	d.Exec(t, c.ID, "/bin/truedyn") // it runs unguarded

	g, rec := newTestGuard(t)
	var mu sync.Mutex
	var asked []string
	decide := func(a ExecAttempt) bool {
		mu.Lock()
		asked = append(asked, a.Path)
		mu.Unlock()
		return !isELFInterpreter(a.Path)
	}
	if err := g.WatchContainer(context.Background(), c.ID, containerPID(t, d, c.ID), decide); err != nil {
		t.Fatalf("WatchContainer: %v", err)
	}
	d.Exec(t, c.ID, "/bin/truedyn")
	mu.Lock()
	if len(asked) != 1 || asked[0] != "/bin/truedyn" {
		t.Errorf("asked about %v, want /bin/truedyn only", asked)
	}
	mu.Unlock()
	if st := g.Stats(); st.ExecInterpreter != 1 || st.ExecDenied != 0 {
		t.Errorf("stats %+v: want one interpreter allowed without asking", st)
	}

	out, code, err := d.ExecResult(c.ID, "/lib64/ld-linux-x86-64.so.2", "/bin/truedyn")
	if err != nil {
		t.Fatal(err)
	}
	if code == 0 {
		t.Fatalf("the loader run as a program was not refused: %s", out)
	}
	rec.wait(t, "exec.denied of the loader", func(ev FileEvent) bool {
		return ev.Kind == FileEventExecDenied && ev.Path == "/lib64/ld-linux-x86-64.so.2"
	})
}
