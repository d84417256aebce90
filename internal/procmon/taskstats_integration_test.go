//go:build integration

package procmon

import (
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"
)

// The kernel's exit record of a child: its name, IDs, parent and start time.
func TestTaskstatsExitRecord(t *testing.T) {
	ts, err := openTaskstats("")
	if err != nil {
		t.Fatalf("taskstats (root and CONFIG_TASKSTATS needed): %v", err)
	}
	t.Cleanup(ts.close)
	start := time.Now()
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := int32(cmd.Process.Pid)
	deadline := time.Now().Add(5 * time.Second)
	var recs [2]ExitRecord
	for time.Now().Before(deadline) {
		n, err := ts.read(&recs, true)
		if errors.Is(err, errIdle) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs[:n] {
			if r.Group || r.PID != pid {
				continue
			}
			if r.Comm() != "true" || r.UID != uint32(os.Getuid()) || r.GID != uint32(os.Getgid()) || r.PPID != int32(os.Getpid()) {
				t.Errorf("record %+v comm %q", r, r.Comm())
			}
			if d := r.BTime - start.Unix(); d < -2 || d > 2 {
				t.Errorf("start %d, the child started at %d", r.BTime, start.Unix())
			}
			if r.Version >= tsVersionTGID && (r.TGID != pid || r.ExeIno == 0) {
				t.Errorf("version %d: tgid %d exe inode %d", r.Version, r.TGID, r.ExeIno)
			}
			t.Logf("exit record version %d of pid %d: %q uid %d, %d messages", r.Version, r.PID, r.Comm(), r.UID, ts.msgs.Load())
			return
		}
	}
	t.Fatalf("no exit record of pid %d within 5 s (%d messages, %d bad)", pid, ts.msgs.Load(), ts.bad.Load())
}
