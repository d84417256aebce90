package controller

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-sec/vigil/internal/policy"
	"github.com/vigil-sec/vigil/internal/procmon"
	"github.com/vigil-sec/vigil/internal/workload"
)

// Event types of process security. Each event's detail carries the process, its
// ancestry (nearest parent first), the container, the workload and its group.
const (
	// EventProcess is a process outside its group's profile: reported in Monitor
	// (verdict "violate"), stopped in Protect (verdict "deny": the exec refused, or the
	// process killed at once).
	EventProcess = "process"
	// EventEscalation is a process that became root under a non-root parent.
	EventEscalation = "escalation"
	// EventSuspicious is a scanner, netcat variant, tunnel or sniffer in a container.
	EventSuspicious = "process.suspicious"
	// EventReverseShell is a shell with its standard input or output on a network
	// socket.
	EventReverseShell = "process.reverse-shell"
	// EventShellFromService is a shell started by a program that is not a shell, an
	// init or a launcher, in a container.
	EventShellFromService = "process.shell-from-service"
	// EventDrift is a container running an executable that is not from its image.
	EventDrift = "process.drift"
)

// eventOfRule maps the detector's rules to event types.
var eventOfRule = map[string]string{
	procmon.RuleEscalation:       EventEscalation,
	procmon.RuleSuspiciousTool:   EventSuspicious,
	procmon.RuleReverseShell:     EventReverseShell,
	procmon.RuleShellFromService: EventShellFromService,
	procmon.RuleDrift:            EventDrift,
}

// ProfileStore persists process profiles; the store package's DB is one.
type ProfileStore interface {
	LoadProfiles() (map[string][]procmon.ProfileEntry, error)
	PutProfileEntries(group string, entries []procmon.ProfileEntry) error
}

// ExecGuard refuses execs before they run (the file guard: fanotify FAN_OPEN_EXEC_PERM
// on a container's root filesystem).
// A container watched without a decision function only reports its sensitive files.
type ExecGuard interface {
	WatchContainer(ctx context.Context, containerID string, initPID int, decide func(procmon.ExecAttempt) bool) error
	Unwatch(containerID string) error
}

// maxProfile bounds one group's profile; past it nothing more is learned (and counted).
const maxProfile = 4096

// maxEarly bounds the observations held for containers the registry does not know yet.
const maxEarly = 256

// processWorkload is what the engine needs of a container.
type processWorkload struct {
	ID, Name, Group string
	PID             int
	Created         time.Time
}

// ProcessStats counts what the process engine did.
type ProcessStats struct {
	Observations uint64 `json:"observations"`
	Learned      uint64 `json:"learned"`
	Violations   uint64 `json:"violations"`
	Killed       uint64 `json:"killed"`
	KillFailed   uint64 `json:"kill_failed"`
	Refused      uint64 `json:"refused"` // execs the file guard refused on our answer
	Findings     uint64 `json:"findings"`
	ProfileFull  uint64 `json:"profile_full"`
	Guarded      int    `json:"guarded_containers"`
	GuardError   string `json:"guard_error,omitempty"`
	// Monitor is the process monitor's counters: events, and those lost.
	Monitor procmon.MonitorStats `json:"monitor"`
}

// ProcessEngine applies process profiles and turns the detector's findings into
// events. Each group learns, in Discover mode, the (executable, name, user) of the
// processes its containers execute; in Monitor a process outside the profile is an
// event; in Protect it is stopped: refused by the exec guard before it runs when one
// watches the container, else killed as soon as its exec is seen. The mode is the
// group's network policy mode: one switch per group. Host processes have no profile
// (stopping the host's programs is not Vigil's to do); the detections apply to them.
//
// It is safe for concurrent use.
type ProcessEngine struct {
	events   *Events
	store    ProfileStore
	modeOf   func(workloadID, group string) policy.Mode
	procRoot string
	log      *slog.Logger

	mu         sync.RWMutex
	workloads  map[string]processWorkload // container ID → workload
	profiles   map[string]*procmon.Profile
	pending    map[string][]procmon.ProfileEntry // learned, not yet persisted
	aggMu      sync.Mutex                        // not mu: adding an event writes to disk, and Decide must not wait for that
	agg        map[string]uint64                 // aggregation key → event ID; guarded by aggMu
	early      map[string][]procmon.Observation  // container → observations before the registry knew it
	monitor    *procmon.Monitor
	guard      ExecGuard
	execChecks bool
	guarded    map[string]bool // watched container → with the decision function (protected)
	guardErr   string
	refusals   chan procmon.ExecAttempt

	observations, learned, violations, killed, killFailed, refused, findings, full atomic.Uint64
}

// NewProcessEngine loads the profiles from st (nil: nothing persisted). modeOf gives a
// workload's mode (PolicyEngine.WorkloadMode).
func NewProcessEngine(st ProfileStore, events *Events, modeOf func(workloadID, group string) policy.Mode, procRoot string, log *slog.Logger) (*ProcessEngine, error) {
	e := &ProcessEngine{events: events, store: st, modeOf: modeOf, procRoot: procRoot, log: log,
		workloads: map[string]processWorkload{}, profiles: map[string]*procmon.Profile{}, pending: map[string][]procmon.ProfileEntry{},
		agg: map[string]uint64{}, early: map[string][]procmon.Observation{}, guarded: map[string]bool{},
		refusals: make(chan procmon.ExecAttempt, 1024)}
	if st != nil {
		all, err := st.LoadProfiles()
		if err != nil {
			return nil, err
		}
		for g, entries := range all {
			e.profiles[g] = procmon.NewProfile(entries)
		}
	}
	return e, nil
}

// SetMonitor gives the engine the process tree (for the API, and to learn the processes
// of a container that were running before the registry knew it).
func (e *ProcessEngine) SetMonitor(m *procmon.Monitor) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.monitor = m
}

// execNoter is a guard that reports each exec in the containers it watches (the file
// guard's FAN_OPEN_EXEC notifications).
type execNoter interface {
	SetExecNotes(func(procmon.ExecNote))
}

// SetGuard has every container watched by g, and, when execChecks, the execs of
// protected containers decided before they run. When g reports execs and the monitor is
// set (SetMonitor first), its notes go to the monitor, which judges with them the
// programs that exit before it can read them.
func (e *ProcessEngine) SetGuard(g ExecGuard, execChecks bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.guard, e.execChecks = g, execChecks
	if n, ok := g.(execNoter); ok && e.monitor != nil {
		n.SetExecNotes(e.monitor.NoteExec)
	}
}

// SetWorkloads tells the engine the current workloads (the registry's List).
func (e *ProcessEngine) SetWorkloads(list []workload.Workload) {
	next := map[string]processWorkload{}
	for _, w := range list {
		if w.Kind != workload.KindContainer {
			continue
		}
		next[w.ID] = processWorkload{ID: w.ID, Name: w.Name, Group: w.Group, PID: w.PID, Created: w.Created}
	}
	e.mu.Lock()
	var replay []procmon.Observation
	var fresh []processWorkload
	for id, w := range next {
		if _, ok := e.workloads[id]; !ok {
			fresh = append(fresh, w)
			replay = append(replay, e.early[id]...)
			delete(e.early, id)
		}
	}
	e.workloads = next
	mon := e.monitor
	e.mu.Unlock()
	for i := range replay {
		e.Observe(&replay[i])
	}
	// What a new container ran before it was registered is learned from the tree.
	if mon != nil {
		for _, w := range fresh {
			if e.modeOf(w.ID, w.Group) != policy.ModeDiscover {
				continue
			}
			for _, p := range mon.Processes(w.ID) {
				e.learn(w.Group, &p)
			}
		}
	}
}

// Created says when a container was created (for the drift rule).
func (e *ProcessEngine) Created(id string) time.Time {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.workloads[id].Created
}

// runtimeProcess reports processes of the container runtime that pass through a
// container's cgroup on their way to exec the container's program.
func runtimeProcess(p *procmon.ProcessInfo) bool {
	return p.Exe == "" || strings.HasPrefix(p.Comm, "runc") || strings.HasPrefix(p.Exe, "/memfd:runc_cloned")
}

// Observe judges one observation of the monitor. It is the monitor's Observe.
func (e *ProcessEngine) Observe(o *procmon.Observation) {
	e.observations.Add(1)
	p := &o.Process
	var w processWorkload
	if p.Container != "" {
		var ok bool
		e.mu.RLock()
		w, ok = e.workloads[p.Container]
		e.mu.RUnlock()
		if !ok {
			e.mu.Lock()
			// Not registered yet (it is starting): judged once it is.
			if q := e.early[p.Container]; len(q) < maxEarly && len(e.early) < 1024 {
				c := *o
				c.Ancestry = slices.Clone(o.Ancestry)
				c.Findings = slices.Clone(o.Findings)
				e.early[p.Container] = append(q, c)
			}
			e.mu.Unlock()
			return
		}
	}
	for i := range o.Findings {
		e.finding(o, &o.Findings[i], &w)
	}
	if p.Container == "" || o.Kind != procmon.EventExec || o.Recheck || runtimeProcess(p) {
		return
	}
	switch mode := e.modeOf(w.ID, w.Group); mode {
	case policy.ModeDiscover:
		e.learn(w.Group, p)
	case policy.ModeMonitor, policy.ModeProtect:
		e.mu.RLock()
		allowed := allowedBy(e.profiles[w.Group], p)
		e.mu.RUnlock()
		if allowed {
			return
		}
		e.violation(o, &w, mode)
	}
}

// inferred reports whether a field of p was not read from /proc (the process had gone;
// ProcessInfo.Inferred).
func inferred(p *procmon.ProcessInfo, field string) bool { return slices.Contains(p.Inferred, field) }

// allowedBy judges p against a profile with what is known of it: its executable, name
// and user; for a process gone before it could be read whose name is only guessed from
// its file (busybox's applets all look like "busybox"), its executable and user (any
// user when that is unknown too).
func allowedBy(prof *procmon.Profile, p *procmon.ProcessInfo) bool {
	if inferred(p, "name") || p.EUID < 0 {
		return prof.AllowsExeUID(p.Exe, p.EUID)
	}
	return prof.Allows(p.Exe, p.Comm, p.EUID)
}

func (e *ProcessEngine) learn(group string, p *procmon.ProcessInfo) {
	if runtimeProcess(p) || p.EUID < 0 {
		return
	}
	entry := procmon.ProfileEntry{Exe: procmon.CleanExe(p.Exe), Name: p.Comm, UID: p.EUID, FirstSeen: time.Now().UTC()}
	e.mu.Lock()
	defer e.mu.Unlock()
	prof := e.profiles[group]
	if prof == nil {
		prof = procmon.NewProfile(nil)
		e.profiles[group] = prof
	}
	// A guessed name is learned only for an executable the profile does not hold yet
	// for the user: a wrong name then costs at most one entry, and a known program is not
	// shadowed by its file's name.
	if allowedBy(prof, p) {
		return
	}
	if prof.Len() >= maxProfile {
		e.full.Add(1)
		return
	}
	prof.Add(entry)
	e.pending[group] = append(e.pending[group], entry)
	e.learned.Add(1)
}

// violation reports (Monitor) or stops and reports (Protect) a process outside its
// group's profile.
func (e *ProcessEngine) violation(o *procmon.Observation, w *processWorkload, mode policy.Mode) {
	p := &o.Process
	verdict, action, sev := "violate", "reported", "warning"
	if mode == policy.ModeProtect {
		verdict, sev = "deny", "critical"
		if inferred(p, "exe") {
			// Judged from its exec notification: it had exited before it could be read.
			action = "exited before it could be stopped"
		} else if err := procmon.Kill(e.procRoot, p.PID, p.StartTicks); err != nil {
			e.killFailed.Add(1)
			action = "kill failed: " + err.Error()
		} else {
			e.killed.Add(1)
			action = "killed"
		}
	}
	e.violations.Add(1)
	key := EventProcess + "|" + w.Group + "|" + p.Exe + "|" + p.Comm + "|" + strconv.Itoa(p.EUID) + "|" + verdict
	summary := fmt.Sprintf("%s (%s): %s (%s, uid %d) is not in the group's process profile", w.Name, w.Group, p.Comm, p.Exe, p.EUID)
	if verdict == "deny" {
		summary += ": " + action
	}
	if inferred(p, "exe") {
		summary += " (seen by its exec notification: " + strings.Join(p.Inferred, ", ") + " not read from /proc)"
	}
	e.raise(key, Event{Type: EventProcess, Severity: sev, Summary: summary,
		Detail: e.detail(o, w, map[string]any{"verdict": verdict, "action": action, "mode": mode.String(),
			"reason": "not in the process profile of " + w.Group})})
}

// finding raises (or counts again) the event of one detector finding.
func (e *ProcessEngine) finding(o *procmon.Observation, f *procmon.Finding, w *processWorkload) {
	e.findings.Add(1)
	p := &o.Process
	typ := eventOfRule[f.Rule]
	if typ == "" {
		typ = "process." + f.Rule
	}
	where := "host"
	if p.Container != "" {
		where = w.Name + " (" + w.Group + ")"
	}
	// One incident per process for escalations and reverse shells; otherwise one event
	// per kind of process, counted.
	key := typ + "|" + p.Container + "|" + p.Exe + "|" + p.Comm
	switch f.Rule {
	case procmon.RuleEscalation, procmon.RuleReverseShell:
		// The process keeps its PID and start time across the execs that follow (the
		// helper that becomes root and execs a shell is one incident).
		key = typ + "|" + p.Container + "|" + strconv.Itoa(p.PID) + "|" + strconv.FormatUint(p.StartTicks, 10)
	case procmon.RuleShellFromService:
		if len(o.Ancestry) > 0 {
			key += "|" + o.Ancestry[0].Comm
		}
	}
	extra := map[string]any{"rule": f.Rule, "reason": f.Reason}
	for k, v := range f.Detail {
		extra[k] = v
	}
	if w.ID != "" {
		extra["mode"] = e.modeOf(w.ID, w.Group).String()
	}
	e.raise(key, Event{Type: typ, Severity: f.Severity, Summary: where + ": " + f.Reason, Detail: e.detail(o, w, extra)})
}

func (e *ProcessEngine) detail(o *procmon.Observation, w *processWorkload, extra map[string]any) map[string]any {
	d := map[string]any{
		"process":  o.Process,
		"ancestry": o.Ancestry,
		"count":    1,
	}
	if o.Process.Container != "" {
		d["container"] = o.Process.Container
		d["workload"] = w.Name
		d["group"] = w.Group
	} else {
		d["workload"] = workload.HostID
		d["group"] = workload.HostGroup
	}
	maps.Copy(d, extra)
	return d
}

// raise adds ev, or counts it again on the event of the same key.
func (e *ProcessEngine) raise(key string, ev Event) {
	now := time.Now().UTC()
	e.aggMu.Lock()
	defer e.aggMu.Unlock()
	if id, ok := e.agg[key]; ok && e.events.Update(id, func(old *Event) {
		old.Detail["count"] = count(old.Detail["count"]) + 1
		old.Detail["last_seen"] = now
		old.Detail["last_process"] = ev.Detail["process"]
		old.Time = now
	}) {
		return
	}
	ev.Time = now
	ev.Detail["first_seen"], ev.Detail["last_seen"] = now, now
	added := e.events.Add(ev)
	if len(e.agg) > 65536 {
		clear(e.agg)
	}
	e.agg[key] = added.ID
}

// Decide answers the exec guard for a container: false refuses the exec. It only looks
// the executable up in the group's profile, since the exec waits for the answer.
func (e *ProcessEngine) Decide(a procmon.ExecAttempt) bool {
	e.mu.RLock()
	w, ok := e.workloads[a.ContainerID]
	var allowed bool
	if ok {
		allowed = e.profiles[w.Group].AllowsExe(a.Path)
	}
	e.mu.RUnlock()
	if !ok || allowed || e.modeOf(w.ID, w.Group) != policy.ModeProtect {
		return true
	}
	e.refused.Add(1)
	select {
	case e.refusals <- a:
	default: // reported as a count only; the exec is refused all the same
	}
	return false
}

// refusal reports an exec the guard refused.
func (e *ProcessEngine) refusal(a procmon.ExecAttempt) {
	e.mu.RLock()
	w := e.workloads[a.ContainerID]
	mon := e.monitor
	e.mu.RUnlock()
	o := procmon.Observation{Kind: procmon.EventExec, Time: time.Now().UTC()}
	o.Process = procmon.ProcessInfo{PID: a.PID, Exe: a.Path, Comm: procmonBase(a.Path), Container: a.ContainerID}
	if mon != nil {
		// The caller still runs its old program: it is the parent-to-be of what was refused.
		o.Ancestry = mon.Ancestry(a.PID, 16)
	}
	key := EventProcess + "|" + w.Group + "|" + a.Path + "|refused"
	e.raise(key, Event{Type: EventProcess, Severity: "critical",
		Summary: fmt.Sprintf("%s (%s): exec of %s refused: not in the group's process profile", w.Name, w.Group, a.Path),
		Detail: e.detail(&o, &w, map[string]any{"verdict": "deny", "action": "refused", "mode": policy.ModeProtect.String(),
			"reason": "not in the process profile of " + w.Group, "exe": a.Path})})
}

func procmonBase(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// Run persists what was learned every second, reports refused execs, and keeps the exec
// guard on exactly the protected containers, until ctx ends.
func (e *ProcessEngine) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			e.flush()
			e.unwatchAll()
			return nil
		case a := <-e.refusals:
			e.refusal(a)
		case <-t.C:
			e.flush()
			e.reconcileGuard(ctx)
		}
	}
}

// Reconcile applies mode and workload changes to the exec guard now rather than at the
// next tick.
func (e *ProcessEngine) Reconcile(ctx context.Context) { e.reconcileGuard(ctx) }

func (e *ProcessEngine) reconcileGuard(ctx context.Context) {
	e.mu.RLock()
	g := e.guard
	want := map[string]bool{} // container → protected
	pids := map[string]processWorkload{}
	for id, w := range e.workloads {
		if w.PID > 0 {
			want[id] = e.execChecks && e.modeOf(w.ID, w.Group) == policy.ModeProtect
			pids[id] = w
		}
	}
	have := maps.Clone(e.guarded)
	e.mu.RUnlock()
	if g == nil {
		return
	}
	var errs []string
	for id, protect := range want {
		if cur, ok := have[id]; ok && cur == protect {
			continue
		}
		var decide func(procmon.ExecAttempt) bool
		if protect {
			decide = e.Decide
		}
		if err := g.WatchContainer(ctx, id, pids[id].PID, decide); err != nil {
			if protect {
				errs = append(errs, err.Error())
				e.log.Warn("exec guard: watch container; its unknown processes will be killed instead", "container", pids[id].Name, "err", err)
			} else {
				e.log.Debug("file guard: watch container", "container", pids[id].Name, "err", err)
			}
			continue
		}
		e.mu.Lock()
		e.guarded[id] = protect
		e.mu.Unlock()
	}
	for id := range have {
		if _, ok := want[id]; !ok {
			_ = g.Unwatch(id) // the container is gone; its marks went with its mounts
			e.mu.Lock()
			delete(e.guarded, id)
			e.mu.Unlock()
		}
	}
	e.mu.Lock()
	if len(errs) > 0 {
		e.guardErr = errs[0]
	} else {
		e.guardErr = ""
	}
	e.mu.Unlock()
}

func (e *ProcessEngine) unwatchAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.guard == nil {
		return
	}
	for id := range e.guarded {
		_ = e.guard.Unwatch(id)
	}
	clear(e.guarded)
}

func (e *ProcessEngine) flush() {
	e.mu.Lock()
	pending := e.pending
	e.pending = map[string][]procmon.ProfileEntry{}
	e.mu.Unlock()
	if e.store == nil {
		return
	}
	for g, entries := range pending {
		if err := e.store.PutProfileEntries(g, entries); err != nil {
			e.log.Warn("persist process profile", "group", g, "err", err)
		}
	}
}

// ProfileView is a group's process profile as the API shows it.
type ProfileView struct {
	Group   string                 `json:"group"`
	Mode    string                 `json:"mode"`
	Entries []procmon.ProfileEntry `json:"entries"`
}

// Profile returns group's profile; false when it has none.
func (e *ProcessEngine) Profile(group string) (ProfileView, bool) {
	e.mu.RLock()
	prof, ok := e.profiles[group]
	var entries []procmon.ProfileEntry
	if ok {
		entries = prof.Entries()
	}
	e.mu.RUnlock()
	if !ok {
		return ProfileView{}, false
	}
	return ProfileView{Group: group, Mode: e.modeOf("", group).String(), Entries: entries}, true
}

// Profiles returns every group's profile, by group name.
func (e *ProcessEngine) Profiles() []ProfileView {
	e.mu.RLock()
	groups := slices.Sorted(maps.Keys(e.profiles))
	e.mu.RUnlock()
	out := make([]ProfileView, 0, len(groups))
	for _, g := range groups {
		if v, ok := e.Profile(g); ok {
			out = append(out, v)
		}
	}
	return out
}

// ProcessView is a process of the tree as the API shows it.
type ProcessView struct {
	procmon.ProcessInfo
	Workload string `json:"workload"` // name; "host" for the host's processes
	Group    string `json:"group"`
}

// Processes returns the live process tree, of one workload (its ID; workload.HostID
// for the host's processes) or of all when id is empty.
func (e *ProcessEngine) Processes(id string) []ProcessView {
	e.mu.RLock()
	mon := e.monitor
	wls := maps.Clone(e.workloads)
	e.mu.RUnlock()
	if mon == nil {
		return []ProcessView{}
	}
	filter := id
	if id == workload.HostID {
		filter = procmon.HostOnly
	}
	procs := mon.Processes(filter)
	out := make([]ProcessView, 0, len(procs))
	for _, p := range procs {
		v := ProcessView{ProcessInfo: p, Workload: workload.HostID, Group: workload.HostGroup}
		if p.Container != "" {
			w, ok := wls[p.Container]
			if !ok {
				v.Workload, v.Group = p.Container[:12], ""
			} else {
				v.Workload, v.Group = w.Name, w.Group
			}
		}
		out = append(out, v)
	}
	return out
}

// Stats returns the counters.
func (e *ProcessEngine) Stats() ProcessStats {
	e.mu.RLock()
	guarded := 0
	for _, protect := range e.guarded {
		if protect {
			guarded++
		}
	}
	gerr := e.guardErr
	mon := e.monitor
	e.mu.RUnlock()
	var ms procmon.MonitorStats
	if mon != nil {
		ms = mon.Stats()
	}
	return ProcessStats{Monitor: ms, Observations: e.observations.Load(), Learned: e.learned.Load(), Violations: e.violations.Load(),
		Killed: e.killed.Load(), KillFailed: e.killFailed.Load(), Refused: e.refused.Load(), Findings: e.findings.Load(),
		ProfileFull: e.full.Load(), Guarded: guarded, GuardError: gerr}
}

// WorkloadMode is a workload's mode: its group's, made stricter by the custom groups it
// belongs to. workloadID may be empty (the group's own mode).
func (e *PolicyEngine) WorkloadMode(workloadID, group string) policy.Mode {
	ev := e.eval.Load()
	mode := ev.ModeOf(group)
	if workloadID != "" && e.subjects != nil {
		if s, ok := e.subjects(workloadID); ok {
			for _, g := range ev.GroupsOf(s, nil) {
				mode = policy.Stricter(mode, ev.ModeOf(g))
			}
		}
	}
	return mode
}
