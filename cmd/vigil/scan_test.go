package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// procStat returns the fields of /proc/PID/stat after the command name.
func procStat(t *testing.T, pid int) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
}

// TestStartIdleLowersOnlyTheChild: the scan child runs at nice 19, SCHED_IDLE and idle
// I/O class from its start; the server's own threads keep their priority.
func TestStartIdleLowersOnlyTheChild(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := startIdle(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	st := procStat(t, cmd.Process.Pid)
	// proc(5): field 19 nice, field 41 policy; the slice starts at field 3.
	if nice, policy := st[19-3], st[41-3]; nice != "19" || policy != strconv.Itoa(unix.SCHED_IDLE) {
		t.Errorf("child nice %s policy %s, want 19 and %d (SCHED_IDLE)", nice, policy, unix.SCHED_IDLE)
	}
	prio, _, e := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, uintptr(cmd.Process.Pid), 0)
	if e != 0 || prio>>ioprioClassShift != ioprioClassIdle {
		t.Errorf("child I/O priority %#x (%v), want class idle", prio, e)
	}
	// The thread that started it retires when its goroutine ends; until then it is
	// the only one at idle priority.
	deadline := time.Now().Add(5 * time.Second)
	for {
		idle := idleThreads(t)
		if len(idle) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vigil's threads %v are still at idle priority", idle)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// idleThreads lists this process's threads at nice 19 or SCHED_IDLE.
func idleThreads(t *testing.T) []string {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var idle []string
	for _, task := range tasks {
		data, err := os.ReadFile("/proc/self/task/" + task.Name() + "/stat")
		if err != nil {
			continue // retired meanwhile
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if f[19-3] == "19" || f[41-3] == strconv.Itoa(unix.SCHED_IDLE) {
			idle = append(idle, task.Name())
		}
	}
	return idle
}

func TestProgressLine(t *testing.T) {
	for _, tt := range []struct {
		done, total int64
		bytes       bool
		want        string
	}{
		{0, 100 << 20, true, "scanning [          ]   0% 0.0 MiB / 100.0 MiB"},
		{50 << 20, 100 << 20, true, "scanning [=====     ]  50% 50.0 MiB / 100.0 MiB"},
		{200 << 20, 100 << 20, true, "scanning [==========] 100% 100.0 MiB / 100.0 MiB"},
		{1234, 0, false, "scanning: 1234 files"},
		{3 << 20, 0, true, "scanning: 3.0 MiB read"},
	} {
		if got := progressLine(tt.done, tt.total, 10, tt.bytes); got != tt.want {
			t.Errorf("progressLine(%d, %d) = %q, want %q", tt.done, tt.total, got, tt.want)
		}
	}
	// Not a terminal: nothing is drawn.
	var buf bytes.Buffer
	b := newProgressBar(&buf, true)
	b.update(1, 2)
	b.done()
	if buf.Len() != 0 {
		t.Errorf("drew %q on a non-terminal", buf.String())
	}
}

func TestScanFlagsRejected(t *testing.T) {
	for _, args := range [][]string{
		{"scan", "dir", ".", "-o", "xml"},
		{"scan", "dir", ".", "--fail-on", "severe"},
		{"scan", "dir", ".", "--fail-on", "unknown"},
		{"scan", "dir", ".", "--severity", "urgent"},
		{"scan", "dir", ".", "-o", "sarif", "--report-files"},
		{"scan", "image"},
		{"scan", "host", "/", "/x"},
	} {
		var out, errb bytes.Buffer
		root := newRootCommand(&out, &errb)
		root.SetArgs(append(args, "--db", t.TempDir()))
		if err := root.Execute(); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.sarif")
	if err := writeFileAtomic(path, func(w io.Writer) error { _, err := io.WriteString(w, "{}"); return err }); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "{}" {
		t.Fatalf("read back %q, %v", data, err)
	}
	// A failed write leaves the old file and no temporary behind.
	if err := writeFileAtomic(path, func(w io.Writer) error { return io.ErrShortWrite }); err == nil {
		t.Fatal("failed write reported success")
	}
	entries, _ := os.ReadDir(dir)
	if data, _ := os.ReadFile(path); string(data) != "{}" || len(entries) != 1 {
		t.Errorf("after a failed write: %q, %d entries", data, len(entries))
	}
}
