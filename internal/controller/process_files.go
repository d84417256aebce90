package controller

import (
	"context"
	"fmt"

	"github.com/vigil-sec/vigil/internal/procmon"
)

// EventFile is a write to a sensitive file in a container (accounts, sudoers, ssh keys,
// package databases, binary directories), reported by the file guard.
const EventFile = "file"

// RunFileEvents turns the file guard's events into "file" events until ctx ends or ch
// closes. The guard's own exec.denied events are skipped: Decide reports the refusals,
// with the group and the reason.
func (e *ProcessEngine) RunFileEvents(ctx context.Context, ch <-chan procmon.FileEvent) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case fe, ok := <-ch:
			if !ok {
				return nil
			}
			if fe.Kind == procmon.FileEventExecDenied {
				continue
			}
			e.fileEvent(fe)
		}
	}
}

func (e *ProcessEngine) fileEvent(fe procmon.FileEvent) {
	e.mu.RLock()
	w := e.workloads[fe.ContainerID]
	mon := e.monitor
	e.mu.RUnlock()
	if w.Name == "" {
		w.Name, w.ID = shortID(fe.ContainerID), fe.ContainerID
	}
	sev := "warning"
	switch fe.Class {
	case procmon.FileClassAccounts, procmon.FileClassSudoers, procmon.FileClassSSH:
		sev = "critical"
	}
	o := procmon.Observation{Time: fe.Time}
	o.Process = procmon.ProcessInfo{PID: fe.PID, Comm: fe.Comm, Exe: fe.Exe, Container: fe.ContainerID}
	if mon != nil {
		if p, ok := mon.Get(fe.PID); ok && p.Container == fe.ContainerID {
			o.Process = p
		}
		o.Ancestry = mon.Ancestry(o.Process.PPID, 16)
	}
	what := fe.Path
	if fe.Aggregated {
		what = fmt.Sprintf("%s and %d more", fe.Path, fe.Count-1)
	}
	key := EventFile + "|" + fe.ContainerID + "|" + fe.Kind + "|" + fe.Path + "|" + fe.Comm
	e.raise(key, Event{Type: EventFile, Severity: sev,
		Summary: fmt.Sprintf("%s (%s): %s %s (%s) by %s (pid %d)", w.Name, w.Group, fe.Kind, what, fe.Class, fe.Comm, fe.PID),
		Detail: e.detail(&o, &w, map[string]any{"file": fe.Path, "kind": fe.Kind, "class": fe.Class, "paths": fe.Paths,
			"deleted": fe.Deleted, "burst": fe.Count})})
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
