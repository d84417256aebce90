// File guard (FileGuard): fanotify on containers' filesystems.
//
// FileGuard does two jobs in each container it watches. In Protect mode it holds every
// exec until a decision function says whether the program may run (FAN_OPEN_EXEC_PERM:
// the kernel blocks execve until we answer; a denial fails execve with EPERM before the
// program runs). And in every mode it reports changes to sensitive files: the account
// databases, sudoers, ssh keys, package databases and the binary and library
// directories.
//
// How it marks a container: each mount of the container's mount namespace, read from
// /proc/<init>/mountinfo and opened through /proc/<init>/root with RESOLVE_IN_ROOT (so
// no symbolic link in the container can redirect the mark to a host path), except
// pseudo filesystems. The root overlay gets a filesystem mark (FAN_MARK_FILESYSTEM: one
// overlay superblock per container, so it scopes to the container and also covers a
// bind mount of the root made inside it and dockerd's writes through the host's
// "merged" directory); every other mount gets a mount mark, since its filesystem (a
// host volume, tmpfs) may be shared. Four groups:
//   - exec permission (FAN_CLASS_CONTENT, unlimited queue): only for containers given a
//     decision function;
//   - writes (FAN_CLOSE_WRITE on the root and the mounts that may hold a sensitive file;
//     the event carries a descriptor, whose link gives the path, and the writer's PID);
//   - directory entries (FAN_REPORT_DFID_NAME, inode marks on the sensitive directories
//     and their ancestors): creations, deletions, renames and mode changes, which a write
//     mark cannot see. These need file handles from overlayfs, which it encodes (without
//     decoding) since Linux 6.6; on an older kernel these marks fail, are counted in
//     FileGuardStats.DirMarkErrors, and only writes and execs are reported. fanotify,
//     not inotify, serves them on this kernel.
//   - exec notifications (FAN_OPEN_EXEC, FAN_CLASS_NOTIF: never holds an exec), on every
//     mount, in every watched container, when SetExecNotes gave a receiver: each exec's
//     PID and file, whose path is read from the event's descriptor even after the
//     process has exited. The process monitor completes with them the execs of programs
//     gone before it could read /proc (see fileguard_exec.go and execnotes.go).
//
// What the kernel must have: CONFIG_FANOTIFY and CONFIG_FANOTIFY_ACCESS_PERMISSIONS (exec
// permission events, FAN_OPEN_EXEC_PERM since 5.0), FAN_MARK_FILESYSTEM (4.20),
// FAN_REPORT_DFID_NAME (5.9), STATX_MNT_ID (5.8), openat2 (5.6); CAP_SYS_ADMIN in the
// host's user namespace, and the host's /proc. Supported says whether exec permission
// events work.
//
// Traps:
//   - Every permission event must be answered, or the process calling execve hangs, in
//     an uninterruptible wait, until Vigil exits (the kernel then allows what is
//     pending). FileGuard answers allow when anything fails, when the container or the
//     process is not known, when all decision workers are busy, and when the decision
//     takes longer than 200 ms (the late answer is then ignored); every such case is
//     counted. A guard that hung every exec would be worse than none.
//   - Only processes inside the container's PID namespace are judged. Anything else
//     (Vigil itself, a host process that entered the container's mount namespace,
//     nsenter) is allowed and counted as foreign. docker exec's process is judged: runc
//     moves it into the container's namespaces before it calls execve.
//   - The decision function is called for the files the kernel opens for execution: the
//     program, and for a script its interpreter after the script itself (#!/bin/sh: the
//     script's path, then /bin/sh). A dynamic program's ELF interpreter (ld-linux), opened
//     right after the program was allowed, is allowed without asking; run as a program
//     itself (ld.so /tmp/x) it is asked about. Paths are resolved: busybox's /bin/cat
//     arrives as /bin/busybox, and the new program's name and arguments are not known
//     yet (the process still runs its old program).
//   - Each event carries an open descriptor of the file; FileGuard closes each one, after
//     the answer (the answer names the event by its descriptor number).
//   - Paths: the kernel prints an event file's path from the root of the mount namespace
//     it was reached in, so the container's own accesses come with container paths and
//     the host's (dockerd copying a file in) with the host path of the overlay's merged
//     directory, which is removed.
//   - What is not covered: a program run from memory (memfd_create then execveat), which
//     is on no mount of the container; mounts made inside the container after
//     WatchContainer (call it again to mark them); changes deep below /usr/lib (writes
//     are seen, renames only in the marked directories). Write and directory events can
//     be lost when their queue overflows; FileGuardStats.Overflows counts that.

package procmon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Kinds of FileEvent.
const (
	FileEventWrite      = "write"       // a sensitive file was written and closed
	FileEventCreate     = "create"      // created (or a directory made) in a sensitive directory
	FileEventDelete     = "delete"      // removed from a sensitive directory
	FileEventRename     = "rename"      // renamed into or out of a sensitive directory
	FileEventChmod      = "chmod"       // mode, owner or times changed
	FileEventExecDenied = "exec.denied" // an exec refused by the decision function
)

// FileEvent is a change to a sensitive file in a container, or an exec the guard denied.
type FileEvent struct {
	Time        time.Time `json:"time"`
	Kind        string    `json:"kind"`
	Class       string    `json:"class,omitempty"` // FileClass*; empty for denied execs
	ContainerID string    `json:"container_id"`
	// Path is inside the container. For a denied exec it is the program refused.
	Path string `json:"path"`
	// PID, Comm and Exe name the process that wrote the file or called execve (for a
	// denied exec, still its old program: execve did not happen). Comm and Exe are empty
	// when the process had already exited.
	PID  int    `json:"pid"`
	Comm string `json:"comm,omitempty"`
	Exe  string `json:"exe,omitempty"`
	// Count is how many events this one stands for: 1 for the first of a burst; for an
	// Aggregated event, those of the burst after the first, with up to 8 distinct Paths.
	Count      int      `json:"count"`
	Aggregated bool     `json:"aggregated,omitempty"`
	Paths      []string `json:"paths,omitempty"`
	// Deleted is set when the file had been unlinked when the event was read.
	Deleted bool `json:"deleted,omitempty"`
}

// FileGuardStats counts what the guard did since it started.
type FileGuardStats struct {
	Containers int `json:"containers"`
	// ExecChecks is the number of exec permission events answered.
	ExecChecks uint64 `json:"exec_checks"`
	// ExecDenied is how many the decision function denied.
	ExecDenied uint64 `json:"exec_denied"`
	// ExecForeign were allowed without asking: Vigil itself or a process outside the
	// container's PID namespace.
	ExecForeign uint64 `json:"exec_foreign"`
	// ExecUnknown were allowed without asking: no watched container owns the file's
	// mount (a mark outliving Unwatch for a moment).
	ExecUnknown uint64 `json:"exec_unknown"`
	// ExecInterpreter were allowed without asking: the ELF interpreter (ld.so) of a
	// program allowed a moment before in the same execve.
	ExecInterpreter uint64 `json:"exec_interpreter"`
	// DecideTimeouts were allowed because the decision took longer than the deadline;
	// DecideBusy because every decision worker was busy; DecidePanics because the
	// decision function panicked.
	DecideTimeouts uint64 `json:"decide_timeouts"`
	DecideBusy     uint64 `json:"decide_busy"`
	DecidePanics   uint64 `json:"decide_panics"`
	// ResponseErrors are answers the kernel refused (it then keeps the process waiting
	// only until the group closes).
	ResponseErrors uint64 `json:"response_errors"`
	// FileEvents is the number of changes to sensitive files seen, before aggregation.
	FileEvents uint64 `json:"file_events"`
	// EventsSent and EventsDropped count FileEvents given to Events and those dropped
	// because its reader was too slow.
	EventsSent    uint64 `json:"events_sent"`
	EventsDropped uint64 `json:"events_dropped"`
	// Overflows counts FAN_Q_OVERFLOW: the kernel's queue of write or directory events
	// was full and events were lost.
	Overflows uint64 `json:"overflows"`
	// ReadErrors are events that could not be attributed (descriptor without a path,
	// unparseable record); DirMarkErrors directory marks refused by the kernel.
	ReadErrors    uint64 `json:"read_errors"`
	DirMarkErrors uint64 `json:"dir_mark_errors"`
	// ExecNotes counts exec notifications passed to the SetExecNotes receiver (one per
	// execve, a script's interpreter counted apart); ExecNoteLoaders those of an ELF
	// interpreter opened for the program before it, not passed on; ExecNoteForeign
	// execs of a container's files by processes outside its PID namespace, not passed
	// on; ExecNoteOverflows the times the notification queue overflowed (notes lost).
	ExecNotes         uint64 `json:"exec_notes"`
	ExecNoteLoaders   uint64 `json:"exec_note_loaders"`
	ExecNoteForeign   uint64 `json:"exec_note_foreign"`
	ExecNoteOverflows uint64 `json:"exec_note_overflows"`
}

// ErrFileGuardClosed is returned by calls on a closed FileGuard.
var ErrFileGuardClosed = errors.New("file guard closed")

// ErrExecPermUnsupported is returned (wrapped) by Supported and by WatchContainer with a
// decision function when the kernel cannot hold execs for a decision.
var ErrExecPermUnsupported = errors.New("fanotify exec permission events unsupported")

const (
	fileGuardDecideTimeout = 200 * time.Millisecond
	fileGuardWorkers       = 4
	fileGuardQueue         = 256
	fileGuardWindow        = time.Second
	fileGuardEventsBuffer  = 1024
	fileGuardInternMax     = 4096
	// What each group is marked for.
	permMask  = unix.FAN_OPEN_EXEC_PERM
	writeMask = unix.FAN_CLOSE_WRITE
	dirMask   = unix.FAN_CREATE | unix.FAN_DELETE | unix.FAN_MOVED_FROM | unix.FAN_MOVED_TO |
		unix.FAN_ATTRIB | unix.FAN_EVENT_ON_CHILD | unix.FAN_ONDIR
)

// FileGuard watches containers' filesystems with fanotify. It is safe for concurrent use
// by multiple goroutines.
type FileGuard struct {
	log     *slog.Logger
	selfPID int32
	timeout time.Duration

	perm, write, dir *fanGroup // perm and dir are nil when the kernel lacks them
	execn            *fanGroup // exec notifications; nil when the kernel lacks them
	permErr          error
	execSink         atomic.Pointer[func(ExecNote)]

	mu      sync.RWMutex
	watches map[string]*guardWatch
	byDev   map[uint64]*guardWatch // device of a container's root overlay
	byMnt   map[uint64]*guardWatch // mount ID of each marked mount
	byDir   map[string][]dirRef    // fsid+handle of each marked directory

	jobs  chan execJob
	slots [fileGuardWorkers]decideSlot
	// allowed remembers, per PID (hashed), the last exec allowed after a decision:
	// PID in the high 32 bits, the time in milliseconds (mod 2^32) in the low ones. The
	// ELF interpreter the kernel opens next for the same execve is then not asked about.
	allowed [1024]atomic.Uint64
	agg     *fileAggregator
	stop    chan struct{}
	closed  atomic.Bool
	readers sync.WaitGroup // readers, watchdog, flusher
	workers sync.WaitGroup

	execChecks, execDenied, execForeign, execUnknown, execInterp   atomic.Uint64
	decideTimeouts, decideBusy, decidePanics, responseErrors       atomic.Uint64
	fileEvents, overflows, readErrors, dirMarkErrors, lateAnswer   atomic.Uint64
	execNotes, execNoteLoaders, execNoteForeign, execNoteOverflows atomic.Uint64
}

// guardWatch is one watched container.
type guardWatch struct {
	id       string
	initPID  int
	pidNS    uint64
	hostRoot string
	decide   func(ExecAttempt) bool
	mounts   []markedMount
	dirs     []markedDir
}

type markedMount struct {
	entry mountEntry
	id    uint64
	dev   uint64
	flags uint // FAN_MARK_MOUNT or FAN_MARK_FILESYSTEM
	perm  bool
	write bool
	exec  bool // marked for exec notifications
}

type markedDir struct {
	path string // inside the container
	key  string // fsid and file handle
}

type dirRef struct {
	w    *guardWatch
	path string
}

// execJob is a permission event waiting for a decision.
type execJob struct {
	fd  int32
	pid int32
	w   *guardWatch
	att ExecAttempt
}

// decideSlot is what one worker is deciding, so that the watchdog can answer for it when
// the decision is late. seq is odd while a decision is pending; whoever moves it from
// odd to even (the worker when decide returns, the watchdog at the deadline) answers the
// kernel and closes the descriptor, and the other does nothing.
type decideSlot struct {
	seq   atomic.Uint64
	fd    atomic.Int32
	start atomic.Int64
}

// NewFileGuard opens the fanotify groups. It fails when fanotify is not available at all
// (not root, CONFIG_FANOTIFY off). Without exec permission events (Supported) it still
// reports sensitive file changes.
func NewFileGuard(log *slog.Logger) (*FileGuard, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &FileGuard{
		log:     log,
		selfPID: int32(os.Getpid()),
		timeout: fileGuardDecideTimeout,
		watches: map[string]*guardWatch{},
		byDev:   map[uint64]*guardWatch{},
		byMnt:   map[uint64]*guardWatch{},
		byDir:   map[string][]dirRef{},
		jobs:    make(chan execJob, fileGuardQueue),
		agg:     newFileAggregator(fileGuardWindow, fileGuardEventsBuffer),
		stop:    make(chan struct{}),
	}
	var err error
	if g.write, err = openFanGroup("write", unix.FAN_CLASS_NOTIF); err != nil {
		return nil, err
	}
	// The exec group's queue is unlimited: a permission event that finds the queue full
	// is dropped and the exec allowed by the kernel without asking. Its length is bounded
	// anyway, by the number of processes held in execve.
	if g.perm, err = openFanGroup("exec", unix.FAN_CLASS_CONTENT|unix.FAN_UNLIMITED_QUEUE); err == nil {
		g.permErr = probeExecPerm(g.perm)
		if g.permErr != nil {
			g.perm.close()
			g.perm = nil
		}
	} else {
		g.permErr = fmt.Errorf("%w: %w (is CONFIG_FANOTIFY_ACCESS_PERMISSIONS set?)", ErrExecPermUnsupported, err)
	}
	if g.execn, err = openFanGroup("execnote", unix.FAN_CLASS_NOTIF); err != nil {
		log.Warn("file guard: no exec notifications; programs that exit before /proc is read are not judged", "err", err)
		g.execn = nil
	}
	if g.dir, err = openFanGroup("dir", unix.FAN_CLASS_NOTIF|unix.FAN_REPORT_DFID_NAME); err != nil {
		log.Warn("file guard: no directory events (FAN_REPORT_DFID_NAME needs Linux 5.9); creations and renames in sensitive directories are not reported", "err", err)
		g.dir = nil
	}

	g.readers.Add(2)
	go g.readWrites()
	go g.flushLoop()
	if g.dir != nil {
		g.readers.Add(1)
		go g.readDirs()
	}
	if g.execn != nil {
		g.readers.Add(1)
		go g.readExecNotes()
	}
	if g.perm != nil {
		g.readers.Add(2)
		go g.readPerms()
		go g.watchdog()
		g.workers.Add(fileGuardWorkers)
		for i := range fileGuardWorkers {
			go g.decideWorker(&g.slots[i])
		}
	}
	return g, nil
}

// probeExecPerm checks, without marking anything, that the kernel knows exec permission
// events and filesystem and mount marks: removing a mark that does not exist fails with
// ENOENT when the flags and mask are valid and EINVAL when they are not.
func probeExecPerm(grp *fanGroup) error {
	fd, err := grp.sysfd()
	if err != nil {
		return err
	}
	for _, flags := range []uint{unix.FAN_MARK_FILESYSTEM, unix.FAN_MARK_MOUNT} {
		err := unix.FanotifyMark(fd, unix.FAN_MARK_REMOVE|flags, permMask, unix.AT_FDCWD, "/")
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%w: fanotify_mark(FAN_OPEN_EXEC_PERM, flags %#x): %w", ErrExecPermUnsupported, flags, err)
		}
	}
	return nil
}

// Supported returns nil when execs can be held for a decision: the kernel has
// FAN_OPEN_EXEC_PERM and filesystem and mount marks. Otherwise the error says what is
// missing and wraps ErrExecPermUnsupported; the caller must then stop disallowed
// programs some other way (kill them as they start).
func (g *FileGuard) Supported() error { return g.permErr }

// Events returns the channel of sensitive file changes and denied execs. It is closed by
// Close. Events that find it full are dropped and counted (FileGuardStats.EventsDropped).
func (g *FileGuard) Events() <-chan FileEvent { return g.agg.out }

// Stats returns the counters.
func (g *FileGuard) Stats() FileGuardStats {
	g.mu.RLock()
	n := len(g.watches)
	g.mu.RUnlock()
	sent, dropped := g.agg.counts()
	return FileGuardStats{
		Containers:        n,
		ExecChecks:        g.execChecks.Load(),
		ExecDenied:        g.execDenied.Load(),
		ExecForeign:       g.execForeign.Load(),
		ExecUnknown:       g.execUnknown.Load(),
		ExecInterpreter:   g.execInterp.Load(),
		DecideTimeouts:    g.decideTimeouts.Load(),
		DecideBusy:        g.decideBusy.Load(),
		DecidePanics:      g.decidePanics.Load(),
		ResponseErrors:    g.responseErrors.Load(),
		FileEvents:        g.fileEvents.Load(),
		EventsSent:        sent,
		EventsDropped:     dropped,
		Overflows:         g.overflows.Load(),
		ReadErrors:        g.readErrors.Load(),
		DirMarkErrors:     g.dirMarkErrors.Load(),
		ExecNotes:         g.execNotes.Load(),
		ExecNoteLoaders:   g.execNoteLoaders.Load(),
		ExecNoteForeign:   g.execNoteForeign.Load(),
		ExecNoteOverflows: g.execNoteOverflows.Load(),
	}
}

// WatchContainer marks the filesystems of the container whose first process is initPID
// (in the host's PID namespace). With decide, each exec in the container waits for
// decide's answer (false: the exec fails with EPERM and an exec.denied event is sent);
// decide must be fast and safe for concurrent use, and an answer later than 200 ms is
// replaced by allow. Without decide, execs are not held and only file events are
// reported. ctx bounds the setup; the watch lasts until Unwatch or Close. Watching a
// container again replaces its watch (and marks the mounts made since).
func (g *FileGuard) WatchContainer(ctx context.Context, containerID string, initPID int, decide func(ExecAttempt) bool) error {
	if g.closed.Load() {
		return ErrFileGuardClosed
	}
	if decide != nil && g.permErr != nil {
		return fmt.Errorf("watch container %s: %w", containerID, g.permErr)
	}
	if containerID == "" || initPID <= 0 {
		return fmt.Errorf("watch container %q: bad container ID or PID %d", containerID, initPID)
	}
	if err := g.Unwatch(containerID); err != nil {
		g.log.Debug("file guard: unwatch before watching again", "container", containerID, "err", err)
	}
	proc := "/proc/" + strconv.Itoa(initPID)
	rootFD, err := unix.Open(proc+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("watch container %s: open %s/root: %w", containerID, proc, err)
	}
	defer unix.Close(rootFD)
	var sc procScratch
	pidNS, err := sc.pidNS(int32(initPID))
	if err != nil {
		return fmt.Errorf("watch container %s: PID namespace of %d: %w", containerID, initPID, err)
	}
	data, err := os.ReadFile(proc + "/mountinfo")
	if err != nil {
		return fmt.Errorf("watch container %s: %w", containerID, err)
	}
	mounts, err := parseMountinfo(proc+"/mountinfo", data)
	if err != nil {
		return fmt.Errorf("watch container %s: %w", containerID, err)
	}
	w := &guardWatch{id: containerID, initPID: initPID, pidNS: pidNS, decide: decide}
	if hostData, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		if host, err := parseMountinfo("/proc/self/mountinfo", hostData); err == nil {
			for _, m := range mounts {
				if m.MountPoint == "/" {
					w.hostRoot = hostRootOf(host, m)
				}
			}
		}
	}

	g.mu.Lock()
	if g.closed.Load() {
		g.mu.Unlock()
		return ErrFileGuardClosed
	}
	g.watches[containerID] = w
	g.mu.Unlock()

	for _, m := range mounts {
		if err := ctx.Err(); err != nil {
			g.Unwatch(containerID)
			return fmt.Errorf("watch container %s: %w", containerID, err)
		}
		if pseudoFilesystems[m.FSType] {
			continue
		}
		if err := g.markMount(w, rootFD, m); err != nil {
			if m.MountPoint == "/" {
				g.Unwatch(containerID)
				return fmt.Errorf("watch container %s: %w", containerID, err)
			}
			g.log.Warn("file guard: mount not watched", "container", containerID, "mount", m.MountPoint, "err", err)
		}
	}
	if g.dir != nil {
		for _, p := range watchedDirPatterns {
			if err := ctx.Err(); err != nil {
				g.Unwatch(containerID)
				return fmt.Errorf("watch container %s: %w", containerID, err)
			}
			g.markDirPattern(w, rootFD, p)
		}
	}
	g.log.Debug("file guard: watching container", "container", containerID, "pid", initPID,
		"mounts", len(w.mounts), "dirs", len(w.dirs), "host_root", w.hostRoot, "exec_decisions", decide != nil)
	return nil
}

// openInRoot opens path inside the container's root as if the container's root were /,
// so that its symbolic links cannot lead out of it.
func openInRoot(rootFD int, path string, flags uint64) (int, error) {
	return unix.Openat2(rootFD, path, &unix.OpenHow{
		Flags:   flags | unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
}

// markMount marks one mount of the container for the exec and write groups.
func (g *FileGuard) markMount(w *guardWatch, rootFD int, m mountEntry) error {
	fd, err := openInRoot(rootFD, m.MountPoint, 0)
	if err != nil {
		return fmt.Errorf("open mount %s: %w", m.MountPoint, err)
	}
	defer unix.Close(fd)
	dev, mntID, err := fileIdentity(int32(fd))
	if err != nil {
		return fmt.Errorf("statx mount %s: %w", m.MountPoint, err)
	}
	if mntID != m.ID {
		// The path leads elsewhere now (a directory replaced by a link, an over-mount):
		// marking what it leads to would watch the wrong thing.
		return fmt.Errorf("mount %s: path leads to mount %d, mountinfo says %d", m.MountPoint, mntID, m.ID)
	}
	mm := markedMount{entry: m, id: mntID, dev: dev, flags: unix.FAN_MARK_MOUNT,
		perm: w.decide != nil, write: mayHoldSensitive(m.MountPoint),
		exec: g.execn != nil && g.execSink.Load() != nil}
	if m.MountPoint == "/" && m.FSType == "overlay" {
		mm.flags = unix.FAN_MARK_FILESYSTEM
	}
	if !mm.perm && !mm.write && !mm.exec {
		return nil
	}
	// Known before marked: an event must find its container.
	g.mu.Lock()
	g.byMnt[mntID] = w
	if mm.flags == unix.FAN_MARK_FILESYSTEM {
		g.byDev[dev] = w
	}
	w.mounts = append(w.mounts, mm)
	g.mu.Unlock()
	if mm.perm {
		if err := g.perm.mark(unix.FAN_MARK_ADD|mm.flags, permMask, fd); err != nil {
			return fmt.Errorf("mark mount %s for execs: %w", m.MountPoint, err)
		}
	}
	if mm.write {
		if err := g.write.mark(unix.FAN_MARK_ADD|mm.flags, writeMask, fd); err != nil {
			return fmt.Errorf("mark mount %s for writes: %w", m.MountPoint, err)
		}
	}
	if mm.exec {
		if err := g.execn.mark(unix.FAN_MARK_ADD|mm.flags, execNoteMask, fd); err != nil {
			// Not fatal for the watch: the monitor then misses only the fastest execs.
			g.log.Warn("file guard: mount not marked for exec notifications", "container", w.id, "mount", m.MountPoint, "err", err)
		}
	}
	return nil
}

// markDirPattern marks the existing directories matching a pattern of
// watchedDirPatterns ("*" segments expanded by listing the directory).
func (g *FileGuard) markDirPattern(w *guardWatch, rootFD int, pattern string) {
	dirs := []string{"/"}
	if pattern != "/" {
		for _, seg := range splitPath(pattern) {
			var next []string
			for _, d := range dirs {
				if seg != "*" {
					next = append(next, joinPath(d, seg))
					continue
				}
				names, err := listDirInRoot(rootFD, d)
				if err != nil {
					continue
				}
				for _, n := range names {
					next = append(next, joinPath(d, n))
				}
			}
			dirs = next
		}
	}
	for _, d := range dirs {
		if err := g.markDir(w, rootFD, d); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
			g.dirMarkErrors.Add(1)
			g.log.Debug("file guard: directory not watched", "container", w.id, "dir", d, "err", err)
		}
	}
}

func splitPath(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// listDirInRoot lists the subdirectories of dir inside the container.
func listDirInRoot(rootFD int, dir string) ([]string, error) {
	fd, err := unix.Openat2(rootFD, dir, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), dir)
	defer f.Close()
	ents, err := f.ReadDir(256)
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	if err != nil && len(out) == 0 {
		return nil, err
	}
	return out, nil
}

// markDir puts a directory mark on dir inside the container. The directory is named by
// the path the kernel gives for it, so /bin is recorded as /usr/bin where /bin is a link.
func (g *FileGuard) markDir(w *guardWatch, rootFD int, dir string) error {
	fd, err := openInRoot(rootFD, dir, unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var sc procScratch
	link, err := sc.fdPath(int32(fd))
	if err != nil {
		return err
	}
	p, _ := containerPath(link, w.hostRoot)
	path := string(p)
	key, err := dirKey(fd)
	if err != nil {
		return err
	}
	g.mu.Lock()
	for _, d := range w.dirs {
		if d.key == key {
			g.mu.Unlock()
			return nil
		}
	}
	w.dirs = append(w.dirs, markedDir{path: path, key: key})
	g.byDir[key] = append(g.byDir[key], dirRef{w: w, path: path})
	g.mu.Unlock()
	if err := g.dir.mark(unix.FAN_MARK_ADD|unix.FAN_MARK_ONLYDIR, dirMask, fd); err != nil {
		return fmt.Errorf("mark directory %s: %w", dir, err)
	}
	return nil
}

// dirKey is the identity fanotify reports a directory by: its filesystem ID and its
// file handle (type then bytes). AT_HANDLE_FID asks for a handle that need not be
// decodable, which is all overlayfs offers without nfs_export.
func dirKey(fd int) (string, error) {
	const atHandleFID = 0x200
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return "", err
	}
	h, _, err := unix.NameToHandleAt(fd, "", unix.AT_EMPTY_PATH|atHandleFID)
	if err != nil {
		return "", fmt.Errorf("name_to_handle_at: %w", err)
	}
	b := make([]byte, 0, 8+4+len(h.Bytes()))
	b = binary.NativeEndian.AppendUint32(b, uint32(sfs.Fsid.Val[0]))
	b = binary.NativeEndian.AppendUint32(b, uint32(sfs.Fsid.Val[1]))
	b = binary.NativeEndian.AppendUint32(b, uint32(h.Type()))
	b = append(b, h.Bytes()...)
	return string(b), nil
}

// Unwatch stops watching a container: its events are no longer reported nor its execs
// held, and its marks are removed (those of a container that has exited went with its
// mounts). Unwatching a container not watched does nothing.
func (g *FileGuard) Unwatch(containerID string) error {
	g.mu.Lock()
	w := g.watches[containerID]
	if w == nil {
		g.mu.Unlock()
		return nil
	}
	delete(g.watches, containerID)
	for _, m := range w.mounts {
		if g.byMnt[m.id] == w {
			delete(g.byMnt, m.id)
		}
		if m.flags == unix.FAN_MARK_FILESYSTEM && g.byDev[m.dev] == w {
			delete(g.byDev, m.dev)
		}
	}
	var lastRefs []markedDir
	for _, d := range w.dirs {
		refs := g.byDir[d.key]
		for i, r := range refs {
			if r.w == w {
				refs = append(refs[:i:i], refs[i+1:]...)
				break
			}
		}
		if len(refs) == 0 {
			delete(g.byDir, d.key)
			lastRefs = append(lastRefs, d)
		} else {
			g.byDir[d.key] = refs
		}
	}
	g.mu.Unlock()

	// The marks of a container that is still running must go, or its execs keep
	// waiting for answers (allow, but still a round trip) and its writes keep coming.
	proc := "/proc/" + strconv.Itoa(w.initPID)
	var sc procScratch
	if ns, err := sc.pidNS(int32(w.initPID)); err != nil || ns != w.pidNS {
		return nil
	}
	rootFD, err := unix.Open(proc+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil // exited meanwhile
	}
	defer unix.Close(rootFD)
	var errs []error
	for _, m := range w.mounts {
		fd, err := openInRoot(rootFD, m.entry.MountPoint, 0)
		if err != nil {
			continue
		}
		if _, id, err := fileIdentity(int32(fd)); err == nil && id == m.id {
			if m.perm && g.perm != nil {
				errs = append(errs, ignoreENOENT(g.perm.mark(unix.FAN_MARK_REMOVE|m.flags, permMask, fd)))
			}
			if m.write {
				errs = append(errs, ignoreENOENT(g.write.mark(unix.FAN_MARK_REMOVE|m.flags, writeMask, fd)))
			}
			if m.exec && g.execn != nil {
				errs = append(errs, ignoreENOENT(g.execn.mark(unix.FAN_MARK_REMOVE|m.flags, execNoteMask, fd)))
			}
		}
		unix.Close(fd)
	}
	for _, d := range lastRefs {
		fd, err := openInRoot(rootFD, d.path, unix.O_DIRECTORY)
		if err != nil {
			continue
		}
		if key, err := dirKey(fd); err == nil && key == d.key {
			errs = append(errs, ignoreENOENT(g.dir.mark(unix.FAN_MARK_REMOVE, dirMask, fd)))
		}
		unix.Close(fd)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("unwatch container %s: %w", containerID, err)
	}
	return nil
}

func ignoreENOENT(err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}

// Close stops the guard. Closing the exec group makes the kernel allow every exec still
// waiting, so Close never leaves a process hanging; it waits for a decision still
// running for at most twice the deadline.
func (g *FileGuard) Close() error {
	// Under mu: a WatchContainer that registers after this sees closed. One marking now
	// fails on the closed group.
	g.mu.Lock()
	already := g.closed.Swap(true)
	g.mu.Unlock()
	if already {
		return nil
	}
	close(g.stop)
	var errs []error
	if g.perm != nil {
		errs = append(errs, g.perm.close())
	}
	errs = append(errs, g.write.close())
	if g.execn != nil {
		errs = append(errs, g.execn.close())
	}
	if g.dir != nil {
		errs = append(errs, g.dir.close())
	}
	g.readers.Wait()
	done := make(chan struct{})
	go func() { g.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * g.timeout):
		g.log.Warn("file guard: a decision function has not returned; closing without it")
	}
	// Descriptors of events no worker took.
	for {
		select {
		case j := <-g.jobs:
			unix.Close(int(j.fd))
			continue
		default:
		}
		break
	}
	g.agg.close()
	return errors.Join(errs...)
}

// readPerms reads exec permission events. It answers at once what needs no decision and
// queues the rest for the workers; it never blocks on anything but the read.
func (g *FileGuard) readPerms() {
	defer g.readers.Done()
	var sc procScratch
	intern := make(map[string]string)
	g.readEvents(g.perm.f, 4096*unix.FAN_EVENT_METADATA_LEN, "exec events", "execs are no longer held",
		func(ev fanEvent, _ time.Time) { g.handlePerm(&sc, intern, ev) },
		func(ev fanEvent) { g.answer(ev.FD, true) }, nil)
}

// readEvents reads a group's events until the group is closed (or reading fails),
// passing each decoded event to each, with the time of the read, and calling after (when
// set) after each read. An event whose length is known but whose information records
// are malformed goes to bad (which must release its descriptor; nil closes it). what
// names the events in logs; lost says what stops working when reading fails.
func (g *FileGuard) readEvents(f *os.File, bufSize int, what, lost string, each func(fanEvent, time.Time), bad func(fanEvent), after func(time.Time)) {
	buf := make([]byte, bufSize)
	for {
		n, err := f.Read(buf)
		if err != nil {
			if !g.closed.Load() {
				g.log.Error("file guard: read "+what+"; "+lost, "err", err)
			}
			return
		}
		now := time.Now()
		for off := 0; off < n; {
			ev, size, err := nextFanEvent(buf[off:n])
			if size == 0 {
				// The stream cannot be resynchronised: the events left in this read are
				// lost (permission events among them are allowed when the group closes).
				g.readErrors.Add(1)
				g.log.Error("file guard: "+what, "err", err)
				break
			}
			off += size
			if err != nil {
				g.readErrors.Add(1)
				switch {
				case bad != nil:
					bad(ev)
				case ev.FD >= 0:
					unix.Close(int(ev.FD))
				}
				continue
			}
			each(ev, now)
		}
		if after != nil {
			after(now)
		}
	}
}

func (g *FileGuard) handlePerm(sc *procScratch, intern map[string]string, ev fanEvent) {
	if ev.Mask&unix.FAN_Q_OVERFLOW != 0 {
		g.overflows.Add(1)
	}
	if ev.FD < 0 {
		return
	}
	g.execChecks.Add(1)
	if ev.PID == g.selfPID {
		g.answer(ev.FD, true)
		return
	}
	w := g.watchOf(ev.FD)
	if w == nil || w.decide == nil {
		g.execUnknown.Add(1)
		g.answer(ev.FD, true)
		return
	}
	if ns, err := sc.pidNS(ev.PID); err != nil || ns != w.pidNS {
		g.execForeign.Add(1)
		g.answer(ev.FD, true)
		return
	}
	link, err := sc.fdPath(ev.FD)
	if err != nil {
		g.readErrors.Add(1)
		g.answer(ev.FD, true)
		return
	}
	p, _ := containerPath(link, w.hostRoot)
	path := internPath(intern, p)
	if isELFInterpreter(path) && g.allowedJustNow(ev.PID) {
		g.execInterp.Add(1)
		g.answer(ev.FD, true)
		return
	}
	j := execJob{fd: ev.FD, pid: ev.PID, w: w, att: ExecAttempt{PID: int(ev.PID), Path: path, ContainerID: w.id}}
	select {
	case g.jobs <- j:
	default:
		g.decideBusy.Add(1)
		g.answer(ev.FD, true)
	}
}

// allowedJustNow reports whether an exec of pid was allowed in the last second: the
// program whose ELF interpreter the kernel is now opening (the kernel opens it only
// after the program's own permission event was answered).
func (g *FileGuard) allowedJustNow(pid int32) bool {
	v := g.allowed[uint32(pid)%uint32(len(g.allowed))].Load()
	return uint32(v>>32) == uint32(pid) && uint32(time.Now().UnixMilli())-uint32(v) < 1000
}

// isELFInterpreter reports whether path names a dynamic loader (ld-linux-x86-64.so.2,
// ld-musl-x86_64.so.1, ld64.so.2, ld.so.1).
func isELFInterpreter(path string) bool {
	base := path[strings.LastIndexByte(path, '/')+1:]
	return (strings.HasPrefix(base, "ld-") || strings.HasPrefix(base, "ld64") || strings.HasPrefix(base, "ld.so")) &&
		strings.Contains(base, ".so")
}

// watchOf finds the container an event's file belongs to: by the device of a root
// overlay, else by the mount.
func (g *FileGuard) watchOf(fd int32) *guardWatch {
	dev, mnt, err := fileIdentity(fd)
	if err != nil {
		g.readErrors.Add(1)
		return nil
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	if w := g.byDev[dev]; w != nil {
		return w
	}
	return g.byMnt[mnt]
}

// answer responds to a permission event and closes its descriptor.
func (g *FileGuard) answer(fd int32, allow bool) {
	if err := g.perm.respond(fd, allow); err != nil && !g.closed.Load() {
		g.responseErrors.Add(1)
		g.log.Error("file guard: answer exec event", "err", err)
	}
	unix.Close(int(fd))
}

func (g *FileGuard) decideWorker(slot *decideSlot) {
	defer g.workers.Done()
	for {
		select {
		case <-g.stop:
			return
		case j := <-g.jobs:
			g.decideOne(slot, j)
		}
	}
}

func (g *FileGuard) decideOne(slot *decideSlot, j execJob) {
	slot.fd.Store(j.fd)
	slot.start.Store(time.Now().UnixNano())
	seq := slot.seq.Add(1) // odd: pending
	allow := g.callDecide(j)
	var ev FileEvent
	if !allow {
		// Read while the process is held in execve, so that it is still there.
		ev = FileEvent{Time: time.Now(), Kind: FileEventExecDenied, ContainerID: j.w.id,
			Path: j.att.Path, PID: int(j.pid), Count: 1}
		ev.Comm, ev.Exe = processNames(int(j.pid))
	}
	if !slot.seq.CompareAndSwap(seq, seq+1) {
		g.lateAnswer.Add(1) // the watchdog allowed it
		return
	}
	if allow {
		g.allowed[uint32(j.pid)%uint32(len(g.allowed))].Store(uint64(uint32(j.pid))<<32 | uint64(uint32(time.Now().UnixMilli())))
	}
	g.answer(j.fd, allow)
	if !allow {
		g.execDenied.Add(1)
		if g.agg.observe(aggKey{container: j.w.id, kind: FileEventExecDenied, class: j.att.Path}, nil, int(j.pid), ev.Time) {
			g.agg.send(ev)
		}
	}
}

// callDecide runs the decision function; a panic in it allows the exec.
func (g *FileGuard) callDecide(j execJob) (allow bool) {
	defer func() {
		if r := recover(); r != nil {
			g.decidePanics.Add(1)
			g.log.Error("file guard: decision function panicked; exec allowed", "panic", r, "stack", string(debug.Stack()))
			allow = true
		}
	}()
	return j.w.decide(j.att)
}

// watchdog answers allow for decisions that passed the deadline.
func (g *FileGuard) watchdog() {
	defer g.readers.Done()
	t := time.NewTicker(g.timeout / 4)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case now := <-t.C:
			for i := range g.slots {
				s := &g.slots[i]
				seq := s.seq.Load()
				if seq%2 == 0 {
					continue
				}
				fd, start := s.fd.Load(), s.start.Load()
				if now.UnixNano()-start < int64(g.timeout) {
					continue
				}
				if s.seq.CompareAndSwap(seq, seq+1) {
					g.decideTimeouts.Add(1)
					g.answer(fd, true)
				}
			}
		}
	}
}

func (g *FileGuard) flushLoop() {
	defer g.readers.Done()
	t := time.NewTicker(fileGuardWindow / 4)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case now := <-t.C:
			g.agg.flush(now)
		}
	}
}

// readWrites reads close-after-write events and reports those of sensitive files.
func (g *FileGuard) readWrites() {
	defer g.readers.Done()
	var sc procScratch
	g.readEvents(g.write.f, 4096*unix.FAN_EVENT_METADATA_LEN, "write events", "writes are no longer reported",
		func(ev fanEvent, _ time.Time) { g.handleWrite(&sc, ev) }, nil, nil)
}

func (g *FileGuard) handleWrite(sc *procScratch, ev fanEvent) {
	if ev.Mask&unix.FAN_Q_OVERFLOW != 0 {
		g.overflows.Add(1)
	}
	if ev.FD < 0 {
		return
	}
	defer unix.Close(int(ev.FD))
	w := g.watchOf(ev.FD)
	if w == nil {
		return
	}
	link, err := sc.fdPath(ev.FD)
	if err != nil {
		g.readErrors.Add(1)
		return
	}
	p, deleted := containerPath(link, w.hostRoot)
	class := sensitiveClass(bytesView(p))
	if class == "" {
		return
	}
	g.report(w, FileEventWrite, class, p, deleted, ev.PID)
}

// report counts a sensitive change and sends it unless it is part of a burst.
func (g *FileGuard) report(w *guardWatch, kind, class string, path []byte, deleted bool, pid int32) {
	g.fileEvents.Add(1)
	now := time.Now()
	if !g.agg.observe(aggKey{container: w.id, kind: kind, class: class}, path, int(pid), now) {
		return
	}
	ev := FileEvent{Time: now, Kind: kind, Class: class, ContainerID: w.id, Path: string(path),
		PID: int(pid), Count: 1, Deleted: deleted}
	ev.Comm, ev.Exe = processNames(int(pid))
	g.agg.send(ev)
}

// readDirs reads directory entry events.
func (g *FileGuard) readDirs() {
	defer g.readers.Done()
	var key, path []byte
	g.readEvents(g.dir.f, 64<<10, "directory events", "creations and renames are no longer reported",
		func(ev fanEvent, _ time.Time) {
			if ev.FD >= 0 {
				unix.Close(int(ev.FD)) // not asked for; never expected
			}
			if ev.Mask&unix.FAN_Q_OVERFLOW != 0 {
				g.overflows.Add(1)
				return
			}
			if ev.Handle == nil {
				g.readErrors.Add(1)
				return
			}
			key = append(append(key[:0], ev.Fsid...), ev.Handle...)
			g.mu.RLock()
			refs := g.byDir[bytesView(key)]
			var ref dirRef
			if len(refs) > 0 {
				ref = refs[0]
			}
			if len(refs) > 1 {
				ref = g.pickRef(refs, ev.PID)
			}
			g.mu.RUnlock()
			if ref.w == nil {
				return
			}
			path = append(path[:0], ref.path...)
			if len(ev.Name) > 0 && !(len(ev.Name) == 1 && ev.Name[0] == '.') {
				if ref.path != "/" {
					path = append(path, '/')
				}
				path = append(path, ev.Name...)
			}
			g.handleDir(ref.w, ev, path)
		}, nil, nil)
}

// pickRef chooses, among containers sharing a watched directory (a host volume mounted
// in several), the one whose PID namespace the writer is in.
func (g *FileGuard) pickRef(refs []dirRef, pid int32) dirRef {
	var sc procScratch
	if ns, err := sc.pidNS(pid); err == nil {
		for _, r := range refs {
			if r.w.pidNS == ns {
				return r
			}
		}
	}
	return refs[0]
}

func (g *FileGuard) handleDir(w *guardWatch, ev fanEvent, path []byte) {
	var kind string
	switch {
	case ev.Mask&unix.FAN_CREATE != 0:
		kind = FileEventCreate
	case ev.Mask&(unix.FAN_MOVED_TO|unix.FAN_MOVED_FROM) != 0:
		kind = FileEventRename
	case ev.Mask&unix.FAN_DELETE != 0:
		kind = FileEventDelete
	case ev.Mask&unix.FAN_ATTRIB != 0:
		kind = FileEventChmod
	default:
		return
	}
	isDir := ev.Mask&unix.FAN_ONDIR != 0
	if isDir && ev.Mask&(unix.FAN_CREATE|unix.FAN_MOVED_TO) != 0 && isWatchedDir(bytesView(path)) {
		g.watchNewDir(w, string(path))
	}
	if class := sensitiveClass(bytesView(path)); class != "" {
		g.report(w, kind, class, path, false, ev.PID)
	}
}

// watchNewDir marks a directory made after the container was watched (/root/.ssh).
func (g *FileGuard) watchNewDir(w *guardWatch, dir string) {
	g.mu.RLock()
	current := g.watches[w.id] == w
	g.mu.RUnlock()
	if !current {
		return
	}
	rootFD, err := unix.Open("/proc/"+strconv.Itoa(w.initPID)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(rootFD)
	var sc procScratch
	if ns, err := sc.pidNS(int32(w.initPID)); err != nil || ns != w.pidNS {
		return
	}
	if err := g.markDir(w, rootFD, dir); err != nil {
		g.dirMarkErrors.Add(1)
		g.log.Debug("file guard: new directory not watched", "container", w.id, "dir", dir, "err", err)
	}
}

// processNames returns a process's command name and executable path, or empty strings
// when it has exited.
func processNames(pid int) (comm, exe string) {
	if pid <= 0 {
		return "", ""
	}
	proc := "/proc/" + strconv.Itoa(pid)
	if b, err := os.ReadFile(proc + "/comm"); err == nil {
		if len(b) > 0 && b[len(b)-1] == '\n' {
			b = b[:len(b)-1]
		}
		comm = string(b)
	}
	exe, _ = os.Readlink(proc + "/exe")
	return comm, exe
}

// internPath returns p as a string, the same string each time for the same path (a
// container runs the same few programs), so that a path costs an allocation once; the
// table is bounded by fileGuardInternMax and starts afresh when full.
func internPath(intern map[string]string, p []byte) string {
	if path, ok := intern[bytesView(p)]; ok {
		return path
	}
	if len(intern) >= fileGuardInternMax {
		clear(intern)
	}
	path := string(p)
	intern[path] = path
	return path
}
