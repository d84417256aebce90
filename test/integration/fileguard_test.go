//go:build integration

package integration

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/test/testenv"
)

// The file guard inside the real vigil: a write to /etc/passwd in a container is a file
// event naming the file and the writer, in any mode.
func TestFileGuardPasswdWrite(t *testing.T) {
	d := testenv.NewDocker(t)
	v := startVigil(t)
	c := d.Run(t, testenv.ContainerSpec{})
	waitKnown(t, v, c)
	// Vigil watches the container's files once it knows it; each write below is made
	// until one is reported, so the test does not guess how long that takes.
	var ev controller.Event
	eventually(t, 10*time.Second, "a file event for /etc/passwd", func() (bool, string) {
		d.Exec(t, c.ID, "sh", "-c", "echo 'intruder:x:0:0::/:/bin/sh' >> /etc/passwd; sleep 0.2; exit 0")
		evs := processEvents(t, v, controller.EventFile, c.ID)
		for _, e := range evs {
			if e.Detail["file"] == "/etc/passwd" {
				ev = e
				return true, ""
			}
		}
		return false, strings.Join(summaries(evs), "; ")
	})
	if ev.Detail["kind"] != "write" || ev.Detail["class"] != "accounts" || ev.Severity != "critical" {
		t.Errorf("passwd event: %+v", ev)
	}
	if comm, _ := processDetail(ev); comm != "sh" {
		t.Errorf("passwd event names writer %q, want sh: %+v", comm, ev)
	}
}

// Protect with the file guard: a program outside the profile is refused before it runs
// (it leaves no trace), the exec fails in the container, and the event says "refused".
func TestFileGuardProtectRefusesExec(t *testing.T) {
	d := testenv.NewDocker(t)
	v := startVigil(t)
	name := testenv.RandomName("guard")
	group := "vigil." + name
	c := d.Run(t, testenv.ContainerSpec{Labels: map[string]string{"vigil.group": name}})
	waitKnown(t, v, c)
	// A program of its own (a copy of busybox named touch) that the container never ran
	// while its profile was learned.
	d.Exec(t, c.ID, "sh", "-c", "mkdir -p /opt && cp /bin/busybox /opt/touch && cat /etc/hostname && ls /")
	eventually(t, 10*time.Second, "the profile to hold sh", func() (bool, string) {
		p, err := v.Client.Profile(t.Context(), group)
		if err != nil {
			return false, err.Error()
		}
		for _, e := range p.Entries {
			if e.Name == "sh" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", p.Entries)
	})
	setMode(t, v, group, "protect")
	// The guard holds the container's execs once the mode is applied; until then a run
	// of the program is killed rather than refused. Wait for the refusal.
	var ev controller.Event
	var marker string // the file the refused attempt would have made
	attempt := 0
	eventually(t, 10*time.Second, "the exec of /opt/touch refused", func() (bool, string) {
		attempt++
		marker = fmt.Sprintf("/tmp/ran%d", attempt)
		out, code, err := d.ExecResult(c.ID, "/opt/touch", marker)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range processEvents(t, v, controller.EventProcess, c.ID) {
			if e.Detail["action"] == "refused" && e.Detail["exe"] == "/opt/touch" && code != 0 {
				ev = e
				if code == 0 || !strings.Contains(strings.ToLower(out), "operation not permitted") {
					t.Fatalf("refused exec: exit code %d, output %q", code, out)
				}
				return true, ""
			}
		}
		// Killed rather than refused: it may have run; the next attempt uses another file.
		return false, fmt.Sprintf("exit code %d, output %q", code, out)
	})
	if ev.Detail["verdict"] != "deny" {
		t.Errorf("refusal event: %+v", ev)
	}
	// It never ran: the file it would have made is not there (looked at from the host:
	// in Protect, ls may be stopped too).
	ran := fmt.Sprintf("/proc/%d/root%s", d.Inspect(t, c.ID).State.Pid, marker)
	if _, err := os.Stat(ran); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused program ran: stat %s: %v", ran, err)
	}
	// The profiled programs still run.
	if out := d.Exec(t, c.ID, "cat", "/etc/hostname"); strings.TrimSpace(out) == "" {
		t.Error("cat of the profile did not run in protect mode")
	}
}
