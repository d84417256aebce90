package procmon

import (
	"bytes"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Exec notifications: the file guard's fourth group. FAN_OPEN_EXEC is a notification:
// the kernel queues it as execve opens the file and goes on; nothing waits for Vigil.
// Each event carries the PID calling execve (its thread group ID) and a descriptor of the
// file, from which the path, the owner and mode, and the first bytes are read even after
// the process has exited. What it does not carry: the name execve was given (a link's
// name: busybox's applet), the arguments, the user IDs (FAN_REPORT_PIDFD would give a
// pidfd, but of a process that may be gone, so no more than the PID). See execnotes.go
// for how the monitor pairs notes with the connector's execs.

// execNoteMask is what the exec notification group is marked for.
const execNoteMask = unix.FAN_OPEN_EXEC

// noteRecent is how long after a program's note of the same PID a note is taken as part
// of the same execve (its ELF interpreter, or a script's interpreter). The opens of one
// execve are microseconds apart; a new execve of the same PID within this time that
// opens a loader directly (ld.so PROGRAM) is the one case taken wrongly for a loader.
const noteRecent = time.Second

// SetExecNotes sets the receiver of exec notifications, called from the guard's reader
// for each exec in a watched container (it must return quickly). Containers watched
// after the call are marked for them; call it before WatchContainer. Nil stops the
// notes (marks stay until the next watch).
func (g *FileGuard) SetExecNotes(f func(ExecNote)) {
	if f == nil {
		g.execSink.Store(nil)
		return
	}
	g.execSink.Store(&f)
}

// ExecNotesSupported says whether the kernel gives exec notifications (FAN_OPEN_EXEC,
// Linux 5.0).
func (g *FileGuard) ExecNotesSupported() bool { return g.execn != nil }

// lastNote is the last program note of a PID, to tell its loader and a script's
// interpreter from a new execve.
type lastNote struct {
	at          time.Time
	wantsInterp bool // a script whose interpreter's note has not come
}

// readExecNotes reads exec notifications and passes them on.
func (g *FileGuard) readExecNotes() {
	defer g.readers.Done()
	// Notifications queue up to 16,384 in the kernel (fs.fanotify.max_queued_events);
	// past that they are lost. Run ahead of the container's processes.
	runtime.LockOSThread()
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), -10)
	var sc procScratch
	intern := make(map[string]string)
	last := make(map[int32]lastNote)
	head := make([]byte, 256)
	g.readEvents(g.execn.f, 4096*unix.FAN_EVENT_METADATA_LEN, "exec notifications", "fast execs are no longer identified",
		func(ev fanEvent, now time.Time) {
			if ev.Mask&unix.FAN_Q_OVERFLOW != 0 {
				g.overflows.Add(1)
				g.execNoteOverflows.Add(1)
			}
			if ev.FD < 0 {
				return
			}
			g.handleExecNote(&sc, intern, last, head, ev, now)
			unix.Close(int(ev.FD))
		}, nil,
		func(now time.Time) {
			if len(last) > 4*maxNotesPerPID*1024 {
				for pid, l := range last {
					if now.Sub(l.at) > noteRecent {
						delete(last, pid)
					}
				}
			}
		})
}

func (g *FileGuard) handleExecNote(sc *procScratch, intern map[string]string, last map[int32]lastNote, head []byte, ev fanEvent, now time.Time) {
	sinkp := g.execSink.Load()
	if sinkp == nil || ev.PID == g.selfPID {
		return
	}
	var stx unix.Statx_t
	if err := statxFD(ev.FD, unix.STATX_MODE|unix.STATX_UID|unix.STATX_INO|unix.STATX_MNT_ID, &stx); err != nil {
		g.readErrors.Add(1)
		return
	}
	dev := unix.Mkdev(stx.Dev_major, stx.Dev_minor)
	g.mu.RLock()
	w := g.byDev[dev]
	if w == nil && stx.Mask&unix.STATX_MNT_ID != 0 {
		w = g.byMnt[stx.Mnt_id]
	}
	g.mu.RUnlock()
	if w == nil {
		return
	}
	// A process of another PID namespace (the host's, through the overlay's merged
	// directory) is not the container's. One already gone cannot be asked: the file's
	// container stands for it.
	if ns, err := sc.pidNS(ev.PID); err == nil && ns != w.pidNS {
		g.execNoteForeign.Add(1)
		return
	}
	link, err := sc.fdPath(ev.FD)
	if err != nil {
		g.readErrors.Add(1)
		return
	}
	p, _ := containerPath(link, w.hostRoot)
	path := internPath(intern, p)
	prev, seen := last[ev.PID]
	recent := seen && now.Sub(prev.at) < noteRecent
	note := ExecNote{PID: ev.PID, Path: path, Container: w.id, SetUID: -1, Ino: stx.Ino, Time: now}
	switch {
	case recent && prev.wantsInterp:
		// binfmt_script opens the #! line's interpreter next, in the same execve.
		note.Interpreter = true
		last[ev.PID] = lastNote{at: now}
	case recent && isELFInterpreter(path):
		// The program's ELF interpreter: the program is what runs.
		g.execNoteLoaders.Add(1)
		return
	default:
		if stx.Mode&unix.S_IFMT == unix.S_IFREG {
			if k, err := unix.Pread(int(ev.FD), head, 0); err == nil {
				note.Shebang, note.Script = parseShebang(head[:k])
			}
		}
		last[ev.PID] = lastNote{at: now, wantsInterp: note.Script}
	}
	if stx.Mode&unix.S_ISUID != 0 {
		note.SetUID = int(stx.Uid)
	}
	g.execNotes.Add(1)
	(*sinkp)(note)
}

// parseShebang returns the interpreter a script's first line names ("#!/bin/sh -e" →
// "/bin/sh"); script is false when b does not start with "#!".
func parseShebang(b []byte) (interp string, script bool) {
	if len(b) < 2 || b[0] != '#' || b[1] != '!' {
		return "", false
	}
	b = b[2:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return "", true
	}
	return string(f[0]), true
}

// statxFD is statx on an open descriptor, without allocating.
func statxFD(fd int32, mask int, stx *unix.Statx_t) error {
	_, _, errno := unix.Syscall6(unix.SYS_STATX, uintptr(fd), uintptr(unsafe.Pointer(&emptyPath[0])),
		uintptr(unix.AT_EMPTY_PATH), uintptr(mask), uintptr(unsafe.Pointer(stx)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}
