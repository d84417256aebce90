package controller

import (
	"log/slog"
	"testing"

	"github.com/vigil-sec/vigil/internal/policy"
	"github.com/vigil-sec/vigil/internal/procmon"
	"github.com/vigil-sec/vigil/internal/workload"
)

const testCID = "4c9f160d909cc672ae551467f2c1117c70cad68b292a8b60b801bf6cbac1c0d6"

type memProfiles map[string][]procmon.ProfileEntry

func (m memProfiles) LoadProfiles() (map[string][]procmon.ProfileEntry, error) { return m, nil }
func (m memProfiles) PutProfileEntries(g string, e []procmon.ProfileEntry) error {
	m[g] = append(m[g], e...)
	return nil
}

func TestProcessEngineModes(t *testing.T) {
	mode := policy.ModeDiscover
	st := memProfiles{}
	events := NewEvents(100)
	e, err := NewProcessEngine(st, events, func(string, string) policy.Mode { return mode }, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e.SetWorkloads([]workload.Workload{{ID: testCID, Name: "web-1", Kind: workload.KindContainer, Group: "vigil.web", PID: 1}})
	exec := func(comm string, uid int) {
		e.Observe(&procmon.Observation{Kind: procmon.EventExec, Process: procmon.ProcessInfo{PID: 999999, Comm: comm, Exe: "/bin/busybox", EUID: uid, Container: testCID}})
	}
	exec("httpd", 0)
	exec("sh", 0)
	e.flush()
	if len(st["vigil.web"]) != 2 || len(events.List("", 0)) != 0 {
		t.Fatalf("discover: persisted %v, events %v", st, events.List("", 0))
	}
	mode = policy.ModeMonitor
	exec("httpd", 0)
	exec("nc", 0)
	exec("nc", 0)
	exec("httpd", 33) // another user
	evs := events.List(EventProcess, 0)
	if len(evs) != 2 {
		t.Fatalf("monitor: %d events, want nc and httpd as 33: %v", len(evs), evs)
	}
	for _, ev := range evs {
		p := ev.Detail["process"].(procmon.ProcessInfo)
		if p.Comm == "nc" && count(ev.Detail["count"]) != 2 {
			t.Errorf("nc counted %v times, want 2", ev.Detail["count"])
		}
		if ev.Detail["verdict"] != "violate" || ev.Detail["group"] != "vigil.web" {
			t.Errorf("monitor event %+v", ev)
		}
	}
	// Protect: the exec guard refuses an executable the profile does not hold; the
	// profile's executable passes whatever its name (the name is checked after the exec).
	mode = policy.ModeProtect
	if !e.Decide(procmon.ExecAttempt{PID: 1, Path: "/bin/busybox", ContainerID: testCID}) {
		t.Error("Decide refused a profiled executable")
	}
	if e.Decide(procmon.ExecAttempt{PID: 1, Path: "/tmp/x", ContainerID: testCID}) {
		t.Error("Decide allowed an executable outside the profile")
	}
	if !e.Decide(procmon.ExecAttempt{PID: 1, Path: "/tmp/x", ContainerID: "unknown"}) {
		t.Error("Decide refused in a container it does not know")
	}
	e.refusal(<-e.refusals)
	found := false
	for _, ev := range events.List(EventProcess, 0) {
		if ev.Detail["action"] == "refused" && ev.Detail["exe"] == "/tmp/x" {
			found = true
		}
	}
	if !found {
		t.Error("no event for the refused exec")
	}
	// Killing a process that is not there fails and says so.
	exec("wget", 0)
	for _, ev := range events.List(EventProcess, 0) {
		if p := ev.Detail["process"].(procmon.ProcessInfo); p.Comm == "wget" && ev.Detail["verdict"] != "deny" {
			t.Errorf("protect event %+v", ev)
		}
	}
	if v, ok := e.Profile("vigil.web"); !ok || len(v.Entries) != 2 {
		t.Errorf("profile %+v", v)
	}
}

func TestProcessEngineEarlyObservations(t *testing.T) {
	events := NewEvents(100)
	e, _ := NewProcessEngine(nil, events, func(string, string) policy.Mode { return policy.ModeDiscover }, t.TempDir(), slog.New(slog.DiscardHandler))
	// The container's first exec comes before the registry knows it.
	e.Observe(&procmon.Observation{Kind: procmon.EventExec, Process: procmon.ProcessInfo{PID: 5, Comm: "nginx", Exe: "/usr/sbin/nginx", Container: testCID}})
	if _, ok := e.Profile("vigil.web"); ok {
		t.Fatal("learned before the workload was known")
	}
	e.SetWorkloads([]workload.Workload{{ID: testCID, Name: "web-1", Kind: workload.KindContainer, Group: "vigil.web"}})
	if v, ok := e.Profile("vigil.web"); !ok || len(v.Entries) != 1 || v.Entries[0].Name != "nginx" {
		t.Fatalf("early exec not learned: %+v", v)
	}
}

// A process gone before it was read is judged with what is known of it: a guessed name
// (its file's) is not held against it; its executable and user are.
func TestAllowedByInferred(t *testing.T) {
	prof := procmon.NewProfile([]procmon.ProfileEntry{{Exe: "/bin/busybox", Name: "sleep", UID: 0}})
	full := procmon.ProcessInfo{Exe: "/bin/busybox", Comm: "true", EUID: 0}
	if allowedBy(prof, &full) {
		t.Error("an applet read whole was allowed by another applet's entry")
	}
	guessed := procmon.ProcessInfo{Exe: "/bin/busybox", Comm: "busybox", EUID: 0, Inferred: []string{"exe", "cmdline", "name", "uid"}}
	if !allowedBy(prof, &guessed) {
		t.Error("a busybox applet of unknown name was refused although busybox runs as root in the profile")
	}
	guessed.EUID = 1000
	if allowedBy(prof, &guessed) {
		t.Error("allowed for another user")
	}
	guessed.EUID, guessed.Exe = -1, "/usr/bin/nmap"
	if allowedBy(prof, &guessed) {
		t.Error("an executable outside the profile was allowed")
	}
	guessed.Exe = "/bin/busybox"
	if !allowedBy(prof, &guessed) {
		t.Error("unknown user: the executable under any user should do")
	}
}
