//go:build integration

package integration

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/internal/flow"
	"github.com/vigil-sec/vigil/test/testenv"
)

// request sends one HTTP request with nc from a container. The answer is 1 MiB and read
// through a pipe whose reader waits a second, so nc and its socket live long enough to
// be attributed (a client that exits within milliseconds may not be: see the README).
func request(t *testing.T, d *testenv.Docker, from testenv.Container, host string) {
	t.Helper()
	out, code, err := d.ExecResult(from.ID, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc "+host+" 8080 | (sleep 1; head -c 12)")
	if err != nil || code != 0 || !strings.Contains(out, "HTTP/1.") {
		t.Fatalf("request from %s to %s: code %d err %v: %s", from.Name, host, code, err, out)
	}
}

// webAndDB starts the usual pair on net: db (group vigil.db) serving a 1 MiB page with
// httpd on 8080, and web (group vigil.web), both captured by v, httpd listening.
func webAndDB(t *testing.T, d *testenv.Docker, v *vigilProc, net string) (db, web testenv.Container, dbIP string) {
	t.Helper()
	db = d.Run(t, testenv.ContainerSpec{NetworkMode: net, Labels: map[string]string{"vigil.group": "db"},
		Cmd: []string{"sh", "-c", "mkdir -p /www && dd if=/dev/zero of=/www/index.html bs=1024 count=1024 2>/dev/null && exec httpd -f -p 8080 -h /www"}})
	web = d.Run(t, testenv.ContainerSpec{NetworkMode: net, Labels: map[string]string{"vigil.group": "web"}})
	waitCaptured(t, v, db, web)
	dbIP = d.IP(t, db.ID)
	eventually(t, 10*time.Second, "httpd to listen", func() (bool, string) {
		out, code, err := d.ExecResult(db.ID, "sh", "-c", "netstat -ltn | grep -q ':8080 '")
		return err == nil && code == 0, out
	})
	return db, web, dbIP
}

func TestLearnThenMonitor(t *testing.T) {
	d := testenv.NewDocker(t)
	d.EnsureImage(t)
	net := d.Network(t, "")
	v := startVigil(t)

	db, web, dbIP := webAndDB(t, d, v, net)

	// Discover: web -> db is learned as one rule between the groups.
	request(t, d, web, dbIP)
	eventually(t, flowDeadline, "the learned rule web -> db", func() (bool, string) {
		p, err := v.Client.Policy(context.Background())
		if err != nil {
			return false, err.Error()
		}
		for _, r := range p.Rules {
			if r.From == "vigil.web" && r.To == "vigil.db" && r.Origin.String() == "learned" && strings.Contains(fmt.Sprint(r.Ports), "tcp/8080") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", p.Rules)
	})
	out := runCLI(t, v, "rules")
	if !strings.Contains(out, "vigil.web") || !strings.Contains(out, "learned") {
		t.Errorf("vigil rules:\n%s", out)
	}

	// Monitor on db: web still allowed, a new client group is a violation.
	runCLI(t, v, "mode", "vigil.db", "monitor")
	client := d.Run(t, testenv.ContainerSpec{NetworkMode: net, Labels: map[string]string{"vigil.group": "intruder"}})
	waitCaptured(t, v, db, web, client)
	streamed := make(chan controller.Event, 16)
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		_ = v.Client.StreamEvents(sctx, url.Values{"type": {"violation"}}, func(ev controller.Event) error {
			streamed <- ev
			return nil
		})
	}()
	for range 3 {
		request(t, d, client, dbIP)
	}
	request(t, d, web, dbIP)

	var ev controller.Event
	eventually(t, flowDeadline, "one violation event counting the three attempts", func() (bool, string) {
		evs, err := v.Client.Events(context.Background(), url.Values{"type": {"violation"}})
		if err != nil {
			return false, err.Error()
		}
		if len(evs) != 1 {
			return false, fmt.Sprintf("%d violation events: %+v", len(evs), evs)
		}
		ev = evs[0]
		return fmt.Sprint(ev.Detail["count"]) == "3", fmt.Sprintf("%+v", ev.Detail)
	})
	select {
	case sev := <-streamed:
		if sev.Detail["from"] != "vigil.intruder" {
			t.Errorf("streamed event = %+v", sev)
		}
	case <-time.After(flowDeadline):
		t.Error("no violation came on the event stream")
	}
	dt := ev.Detail
	if dt["from"] != "vigil.intruder" || dt["to"] != "vigil.db" || fmt.Sprint(dt["port"]) != "8080" || dt["app"] != "http" || dt["verdict"] != "violate" {
		t.Errorf("violation = %+v", dt)
	}
	cl, _ := dt["client"].(map[string]any)
	proc, _ := cl["process"].(map[string]any)
	if cl["workload"] != client.ID || proc["comm"] != "nc" {
		list, _ := v.Client.Flows(context.Background(), url.Values{"workload": {client.ID}})
		var seen []string
		for _, r := range list {
			seen = append(seen, fmt.Sprintf("%d %s%s->%s %s", r.ID, r.Client.Name, procText(r.Client.Process), r.Server.Name, r.Verdict))
		}
		st, _ := v.Client.Capture(context.Background())
		t.Errorf("violation client = %+v; want the intruder container and its nc process; flows: %v; capture: %s", cl, seen, st)
	}

	// Flows carry their verdicts: the web's last request is allowed by the learned rule.
	waitFlow(t, v, url.Values{"workload": {web.ID}}, "web's allowed flow after the switch", func(r flow.Record) bool {
		return r.Verdict == "allow" && r.RuleID != "" && r.Server.Workload == db.ID
	})
	waitFlow(t, v, url.Values{"workload": {client.ID}}, "the intruder's flow marked violate", func(r flow.Record) bool {
		return r.Verdict == "violate" && r.RuleID == ""
	})

	// What would break in Protect: the intruder's requests, not the web's.
	sim := runCLI(t, v, "policy", "simulate", "--group", "vigil.db", "-o", "json")
	if !strings.Contains(sim, `"from": "vigil.intruder"`) || strings.Contains(sim, `"from": "vigil.web"`) || !strings.Contains(sim, `"verdict": "deny"`) {
		t.Errorf("vigil policy simulate:\n%s", sim)
	}

	// A crash loses nothing: after kill -9 and a restart on the same data dir, the
	// learned rule, the mode and the violation (with its count) are there.
	// (Hit counters are flushed every 30 s, so the status section may lag after a crash.)
	spec := func(doc string) string { s, _, _ := strings.Cut(doc, "\nstatus:"); return s }
	before := runCLI(t, v, "policy", "export")
	v.kill(t)
	v = startVigilIn(t, v.DataDir)
	if after := runCLI(t, v, "policy", "export"); spec(after) != spec(before) {
		t.Errorf("policy after kill -9 and restart differs:\n--- before\n%s\n--- after\n%s", before, after)
	}
	evs, err := v.Client.Events(context.Background(), url.Values{"type": {"violation"}})
	if err != nil || len(evs) != 1 || fmt.Sprint(evs[0].Detail["count"]) != "3" {
		t.Errorf("violations after restart: %v %+v", err, evs)
	}
	// Repeats go on counting on the reloaded event.
	waitCaptured(t, v, db, web, client)
	request(t, d, client, dbIP)
	eventually(t, flowDeadline, "the reloaded violation to count the new attempt", func() (bool, string) {
		evs, err := v.Client.Events(context.Background(), url.Values{"type": {"violation"}})
		if err != nil || len(evs) == 0 {
			return false, fmt.Sprint(err)
		}
		return len(evs) == 1 && fmt.Sprint(evs[0].Detail["count"]) == "4", fmt.Sprintf("%+v", evs)
	})

	// Policy as code: export, then apply onto a server with an empty data dir, gives the
	// same policy; a broken file is refused with its line and nothing changes.
	exported := runCLI(t, v, "policy", "export")
	if !strings.Contains(exported, "apiVersion: vigil.dev/v1alpha1") || !strings.Contains(exported, "vigil.db") {
		t.Fatalf("export:\n%s", exported)
	}
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(exported), 0o600); err != nil {
		t.Fatal(err)
	}
	v2 := startVigil(t)
	if out := runCLI(t, v2, "policy", "apply", "-f", file); !strings.Contains(out, "applied: the process profiles of") {
		t.Errorf("apply did not apply the process profiles: %s", out)
	}
	// The policy document round-trips exactly. The process profiles that follow it are
	// learned afresh by each server from what runs on this host, so they are compared
	// only in form.
	policyDoc := func(s string) string { doc, _, _ := strings.Cut(s, "\n---\n"); return doc }
	again := runCLI(t, v2, "policy", "export")
	if policyDoc(again) != policyDoc(exported) {
		t.Errorf("export after apply differs:\n--- first\n%s\n--- second\n%s", policyDoc(exported), policyDoc(again))
	}
	if !strings.Contains(again, "kind: ProcessProfiles") {
		t.Errorf("export lacks the process profiles:\n%s", again)
	}
	broken := strings.Replace(exported, "ports: [tcp/8080", "ports: [tcp/80800", 1)
	if broken == exported {
		t.Fatalf("no ports line to break in:\n%s", exported)
	}
	if err := os.WriteFile(file, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = execVigil("policy", "apply", "-f", file, "--server", v2.URL, "--token-file", v2.TokenFile)
	if err == nil || !strings.Contains(out, file+":") || !strings.Contains(out, "80800") {
		t.Errorf("applying a broken file: err %v, output:\n%s", err, out)
	}
	if again := runCLI(t, v2, "policy", "export"); policyDoc(again) != policyDoc(exported) {
		t.Errorf("a refused apply changed the policy")
	}
}
