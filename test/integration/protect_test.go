//go:build integration

package integration

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"regexp"
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
			// Refused on its way into db: seen by capture and logged by db's table,
			// counted once.
			seen := fmt.Sprint(ev.Detail["seen_by"])
			if ev.Detail["verdict"] == "deny" && cl["workload"] == intruder.ID && ev.Detail["to"] == "vigil.db" &&
				strings.Contains(seen, "capture") && strings.Contains(seen, "kernel") {
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

// TestProtectConnections covers what the table alone cannot do: cutting a connection
// that was open before its rule was withdrawn, reporting refusals capture never sees
// (a protected workload's own outgoing attempts), and resetting a connection the table let
// through whose application is not the one its rule allows.
func TestProtectConnections(t *testing.T) {
	d := testenv.NewDocker(t)
	d.EnsureImage(t)
	net := d.Network(t, "")
	v := startVigil(t)
	ctx := context.Background()

	db := d.Run(t, testenv.ContainerSpec{NetworkMode: net, Labels: map[string]string{"vigil.group": "db"},
		Cmd: []string{"sh", "-c", "nc -ll -p 9000 -e cat & nc -ll -p 6379 -e cat & exec sleep 3600"}})
	web := d.Run(t, testenv.ContainerSpec{NetworkMode: net, Labels: map[string]string{"vigil.group": "web"}})
	dbIP, webIP := d.IP(t, db.ID), d.IP(t, web.ID)
	waitCaptured(t, v, db, web)

	// A long-lived connection, learned in Discover mode.
	ended := make(chan time.Time, 1)
	go func() {
		d.ExecResult(web.ID, "sh", "-c", "(while true; do echo ping; sleep 0.2; done) | nc "+dbIP+" 9000")
		ended <- time.Now()
	}()
	var ruleID string
	eventually(t, 10*time.Second, "web's long-lived connection to be learned", func() (bool, string) {
		p, err := v.Client.Policy(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, r := range p.Rules {
			if r.From == "vigil.web" && r.To == "vigil.db" && len(r.Ports) == 1 && r.Ports[0].First == 9000 {
				ruleID = r.ID
				return true, ""
			}
		}
		return false, fmt.Sprintf("rules %+v", p.Rules)
	})
	runCLI(t, v, "rule", "add", "--from", "vigil.web", "--to", "vigil.db", "--ports", "tcp/6379", "--apps", "redis")
	runCLI(t, v, "mode", "vigil.db", "protect")
	dbPID := d.Inspect(t, db.ID).State.Pid
	eventually(t, 2*time.Second, "db's table", func() (bool, string) {
		return vigilTables(t, dbPID) == 1, "no table yet"
	})

	// db's own attempt to reach web, which no rule allows, is refused inside db's
	// namespace: only the table's log knows of it.
	if out, code, _ := d.ExecResult(db.ID, "nc", "-w", "2", webIP, "80"); code == 0 {
		t.Errorf("db reached web:80 under protect: %s", out)
	}
	eventually(t, 5*time.Second, "a deny event for db's outgoing attempt, from the kernel", func() (bool, string) {
		evs, err := v.Client.Events(ctx, url.Values{"type": {"violation"}})
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range evs {
			seen, _ := ev.Detail["seen_by"].([]any)
			if ev.Detail["verdict"] == "deny" && ev.Detail["from"] == "vigil.db" && ev.Detail["to"] == "vigil.web" &&
				fmt.Sprint(ev.Detail["port"]) == "80" && fmt.Sprint(seen) == "[kernel]" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", evs)
	})

	// HTTP on the port the rule gives to redis: the table lets it in, DPI names it, and
	// Vigil resets it.
	// The client's input stays open for 6 s; busybox's time says when nc itself ended.
	out, _, _ := d.ExecResult(web.ID, "sh", "-c", "(printf 'GET / HTTP/1.1\\r\\nHost: db\\r\\n\\r\\n'; exec sleep 6 2>/dev/null) | time nc "+dbIP+" 6379")
	m := regexp.MustCompile(`real\s+(\d+)m\s*([\d.]+)s`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no time in %q", out)
	}
	mins, _ := strconv.Atoi(m[1])
	secs, _ := strconv.ParseFloat(m[2], 64)
	took := time.Duration(mins)*time.Minute + time.Duration(secs*float64(time.Second))
	if took > 3*time.Second {
		t.Errorf("the HTTP connection on the redis port lasted %v; want it reset", took)
	}
	t.Logf("HTTP on the redis port reset after %v", took)
	eventually(t, 5*time.Second, "a deny event saying the HTTP connection was reset", func() (bool, string) {
		evs, err := v.Client.Events(ctx, url.Values{"type": {"violation"}})
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range evs {
			if ev.Detail["verdict"] == "deny" && ev.Detail["app"] == "http" && fmt.Sprint(ev.Detail["port"]) == "6379" && ev.Detail["reset"] == true {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", evs)
	})

	// The long-lived connection is allowed: it survived the switch. Withdrawing its rule
	// cuts it.
	select {
	case at := <-ended:
		t.Fatalf("the allowed long-lived connection ended at %v, before its rule was withdrawn", at)
	default:
	}
	runCLI(t, v, "rule", "delete", ruleID)
	withdrawn := time.Now()
	select {
	case at := <-ended:
		t.Logf("long-lived connection cut %v after its rule was deleted", at.Sub(withdrawn))
		if at.Sub(withdrawn) > 2*time.Second {
			t.Errorf("cut after %v, want within 2 s", at.Sub(withdrawn))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the connection of a withdrawn peer was not cut within 10 s")
	}
}
