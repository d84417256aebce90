//go:build integration

package integration

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/enforce"
	"github.com/vigil-sec/vigil/test/testenv"
)

// connect tries a TCP connection from a container and reports whether the server
// answered (HTTP) and how long the attempt took.
func connect(d *testenv.Docker, from testenv.Container, host string) (bool, time.Duration, string) {
	start := time.Now()
	out, code, err := d.ExecResult(from.ID, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 "+host+" 8080")
	return err == nil && code == 0 && strings.Contains(out, "HTTP/1."), time.Since(start), out
}

// vigilTables counts the tables named vigil in a process's network namespace.
func vigilTables(t *testing.T, pid int) int {
	t.Helper()
	out, err := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-n", "nft", "list", "tables").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list tables in pid %d's namespace: %v: %s", pid, err, out)
	}
	return strings.Count(string(out), "table inet "+enforce.TableName+"\n")
}

func TestProtect(t *testing.T) {
	d := testenv.NewDocker(t)
	d.EnsureImage(t)
	net := d.Network(t, "")
	v := startVigil(t)

	db := d.Run(t, testenv.ContainerSpec{NetworkMode: net, Labels: map[string]string{"vigil.group": "db"},
		Cmd: []string{"sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"}})
	web := d.Run(t, testenv.ContainerSpec{NetworkMode: net, Labels: map[string]string{"vigil.group": "web"}})
	dbIP := d.IP(t, db.ID)
	dbPID := d.Inspect(t, db.ID).State.Pid
	waitCaptured(t, v, db, web)
	eventually(t, 10*time.Second, "web's request to be learned", func() (bool, string) {
		if ok, _, out := connect(d, web, dbIP); !ok {
			return false, out
		}
		p, err := v.Client.Policy(context.Background())
		if err != nil {
			return false, err.Error()
		}
		for _, r := range p.Rules {
			if r.From == "vigil.web" && r.To == "vigil.db" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("rules %+v", p.Rules)
	})

	runCLI(t, v, "mode", "vigil.db", "protect")
	switched := time.Now()
	intruder := d.Run(t, testenv.ContainerSpec{NetworkMode: net, Labels: map[string]string{"vigil.group": "intruder"}})
	eventually(t, time.Second, "the intruder to be refused", func() (bool, string) {
		ok, took, out := connect(d, intruder, dbIP)
		return !ok && took < 2*time.Second && strings.Contains(out, "refused"), fmt.Sprintf("answered=%v after %v: %s", ok, took, out)
	})
	t.Logf("refused %v after the switch to protect", time.Since(switched))
	if ok, _, out := connect(d, web, dbIP); !ok {
		t.Fatalf("the allowed client was blocked: %s", out)
	}
	if n := vigilTables(t, dbPID); n != 1 {
		t.Errorf("%d vigil tables in db's namespace, want 1", n)
	}

	// A new replica of the allowed group gets in within a second of starting.
	replica := d.Create(t, testenv.ContainerSpec{NetworkMode: net, Labels: map[string]string{"vigil.group": "web"}})
	d.Start(t, replica.ID)
	started := time.Now()
	eventually(t, time.Second, "the new replica to get in", func() (bool, string) {
		ok, _, out := connect(d, replica, dbIP)
		return ok, out
	})
	t.Logf("replica admitted %v after it started", time.Since(started))

	// The blocked attempts are deny events naming the intruder.
	eventually(t, flowDeadline, "a deny event for the intruder", func() (bool, string) {
		evs, err := v.Client.Events(context.Background(), url.Values{"type": {"violation"}})
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range evs {
			cl, _ := ev.Detail["client"].(map[string]any)
			if ev.Detail["verdict"] == "deny" && cl["workload"] == intruder.ID && ev.Detail["to"] == "vigil.db" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", evs)
	})

	// Fail static: killed, Vigil leaves the kernel enforcing.
	v.kill(t)
	if ok, _, out := connect(d, intruder, dbIP); ok {
		t.Fatalf("the intruder got in once vigil was killed: %s", out)
	}
	// Restarted on the same data dir: exactly one table, still enforcing.
	v = startVigilIn(t, v.DataDir)
	eventually(t, 10*time.Second, "the restarted enforcer to reconcile", func() (bool, string) {
		ok, _, out := connect(d, replica, dbIP)
		return ok && vigilTables(t, dbPID) == 1, out
	})
	if ok, _, out := connect(d, intruder, dbIP); ok {
		t.Fatalf("the intruder got in after the restart: %s", out)
	}

	// vigil cleanup removes every table (after vigil up stops, or it would reinstall).
	v.stop(t)
	out := runOffline(t, "cleanup")
	if !strings.Contains(out, "tables removed") {
		t.Errorf("vigil cleanup: %s", out)
	}
	if n := vigilTables(t, dbPID); n != 0 {
		t.Errorf("%d vigil tables left after cleanup", n)
	}
	if ok, _, out := connect(d, intruder, dbIP); !ok {
		t.Errorf("the intruder is still blocked after cleanup: %s", out)
	}
}
