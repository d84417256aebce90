package procmon

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ProcessInfo is what the process tree knows of one process. IDs are in the host's PID
// and user namespaces.
type ProcessInfo struct {
	PID  int `json:"pid"`
	PPID int `json:"ppid"`
	// Comm is the name the process was executed under (an applet's name for busybox;
	// argv[0]'s base name for a program run as /proc/self/exe).
	Comm string `json:"comm"`
	// Exe is the executable as /proc/PID/exe names it: for a process in a container,
	// its path inside the container. A file deleted since ends in " (deleted)".
	Exe     string    `json:"exe"`
	Cmdline []string  `json:"cmdline"`
	UID     int       `json:"uid"`  // real
	EUID    int       `json:"euid"` // effective
	GID     int       `json:"gid"`
	EGID    int       `json:"egid"`
	Start   time.Time `json:"start"`
	// StartTicks is the start time in clock ticks after boot (field 22 of
	// /proc/PID/stat): with the PID, it names the process uniquely.
	StartTicks uint64 `json:"start_ticks"`
	// Container is the ID of the container the process runs in (from its cgroup), empty
	// on the host.
	Container string `json:"container,omitempty"`
	// Inferred lists the fields that were not read from /proc because the process had
	// exited first, and were taken from the file guard's exec notification instead:
	// "exe" (the file the kernel opened for execution), "cmdline" (left empty), "name"
	// (the executable's base name: wrong for a program run through a link to another
	// name, such as busybox's applets), "uid" (the parent's, from the fork; the file's
	// owner for a set-user-ID file; -1 when unknown). Empty for a process read whole.
	Inferred []string `json:"inferred,omitempty"`

	// exeIno is the inode number of the executable when it was read: the process may
	// be gone when the drift rule looks.
	exeIno uint64
}

// Ancestor is a process in the chain of parents of another.
type Ancestor struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	Exe  string `json:"exe"`
	UID  int    `json:"uid"`
	EUID int    `json:"euid"`
	// Container is the ID of its container, empty on the host.
	Container string `json:"container,omitempty"`
}

// ancestorOf is the short form of p.
func ancestorOf(p *ProcessInfo) Ancestor {
	return Ancestor{PID: p.PID, Comm: p.Comm, Exe: p.Exe, UID: p.UID, EUID: p.EUID, Container: p.Container}
}

// Bounds of what is read of a process: a command line longer than this is cut.
const (
	maxCmdline = 4096
	maxArgs    = 64
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every Linux
// architecture Vigil builds for (the kernel converts to it for user space).
const clockTicks = 100

// errGone is returned when the process exited before it could be read.
var errGone = errors.New("process has exited")

// procReader reads processes from a /proc. It is not safe for concurrent use: each
// worker has its own.
type procReader struct {
	root  string
	buf   []byte
	boot  time.Time
	paths strings.Builder
}

func newProcReader(root string) *procReader {
	r := &procReader{root: root, buf: make([]byte, 64<<10)}
	r.boot = bootTime(root)
	return r
}

// bootTime reads btime from /proc/stat; the zero time when it cannot.
func bootTime(root string) time.Time {
	b, err := os.ReadFile(root + "/stat")
	if err != nil {
		return time.Time{}
	}
	i := bytes.Index(b, []byte("\nbtime "))
	if i < 0 {
		return time.Time{}
	}
	line := b[i+len("\nbtime "):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	v, ok := parseUint(bytes.TrimSpace(line))
	if !ok || v > math.MaxInt64 {
		return time.Time{}
	}
	return time.Unix(int64(v), 0)
}

func (r *procReader) path(pid int, name string) string {
	r.paths.Reset()
	r.paths.WriteString(r.root)
	r.paths.WriteByte('/')
	r.paths.WriteString(strconv.Itoa(pid))
	r.paths.WriteByte('/')
	r.paths.WriteString(name)
	return r.paths.String()
}

// file reads a small /proc file of pid into r.buf.
func (r *procReader) file(pid int, name string) ([]byte, error) {
	f, err := os.Open(r.path(pid, name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Read(r.buf)
	if err != nil && n == 0 {
		return nil, err
	}
	return r.buf[:n], nil
}

// read fills p with what /proc says of pid now. It returns errGone when pid has exited
// (or was reused by a process started after start, when start is not zero).
func (r *procReader) read(pid int, p *ProcessInfo) error {
	b, err := r.file(pid, "stat")
	if err != nil {
		return gone(pid, err)
	}
	ppid, ok1 := parseStatPPID(b)
	start, ok2 := parseStatStartTime(b)
	if !ok1 || !ok2 {
		return fmt.Errorf("%s: unreadable stat", r.path(pid, "stat"))
	}
	comm, _ := statComm(b)
	p.PID, p.PPID, p.StartTicks = pid, int(ppid), start
	if comm != p.Comm {
		p.Comm = comm
	}
	if !r.boot.IsZero() {
		p.Start = r.boot.Add(time.Duration(start) * time.Second / clockTicks).UTC()
	}
	if b, err = r.file(pid, "status"); err != nil {
		return gone(pid, err)
	}
	var ok bool
	if p.UID, p.EUID, ok = parseStatusIDs(b, "Uid:"); !ok {
		return fmt.Errorf("%s: no Uid line", r.path(pid, "status"))
	}
	if p.GID, p.EGID, ok = parseStatusIDs(b, "Gid:"); !ok {
		return fmt.Errorf("%s: no Gid line", r.path(pid, "status"))
	}
	if exe, err := os.Readlink(r.path(pid, "exe")); err == nil {
		p.Exe = exe
	} else {
		p.Exe = ""
	}
	var st unix.Stat_t
	if err := unix.Stat(r.path(pid, "exe"), &st); err == nil {
		p.exeIno = st.Ino
	} else {
		p.exeIno = 0
	}
	if b, err = r.file(pid, "cmdline"); err == nil {
		p.Cmdline = parseCmdline(b)
	}
	// A multi-call binary that runs its applets through /proc/self/exe (busybox's shell
	// does) leaves every one named "exe": the applet is argv[0].
	if p.Comm == "exe" && len(p.Cmdline) > 0 && p.Cmdline[0] != "" {
		if name := path.Base(p.Cmdline[0]); name != "exe" {
			p.Comm = name[:min(len(name), 15)]
		}
	}
	if b, err = r.file(pid, "cgroup"); err == nil {
		p.Container = ContainerFromCgroup(b)
	}
	// The PID may have been reused between the reads: stat again.
	if b, err = r.file(pid, "stat"); err != nil {
		return gone(pid, err)
	}
	if s, _ := parseStatStartTime(b); s != start {
		return errGone
	}
	return nil
}

// startTicks reads the start time of pid; 0 when it is gone.
func (r *procReader) startTicks(pid int) uint64 {
	b, err := r.file(pid, "stat")
	if err != nil {
		return 0
	}
	s, _ := parseStatStartTime(b)
	return s
}

func gone(pid int, err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
		return errGone
	}
	return fmt.Errorf("read process %d: %w", pid, err)
}

// statComm returns field 2 of /proc/PID/stat without its parentheses.
func statComm(b []byte) (string, bool) {
	i := bytes.IndexByte(b, '(')
	j := bytes.LastIndexByte(b, ')')
	if i < 0 || j < i {
		return "", false
	}
	return string(b[i+1 : j]), true
}

// parseStatusIDs returns the real and effective IDs of the line with the given prefix
// ("Uid:" or "Gid:") of /proc/PID/status: "Uid:\treal\teffective\tsaved\tfs".
func parseStatusIDs(b []byte, prefix string) (real, eff int, ok bool) {
	var line []byte
	if bytes.HasPrefix(b, []byte(prefix)) {
		line = b[len(prefix):]
	} else if i := bytes.Index(b, []byte("\n"+prefix)); i >= 0 {
		line = b[i+1+len(prefix):]
	} else {
		return 0, 0, false
	}
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	f := bytes.Fields(line)
	if len(f) < 2 {
		return 0, 0, false
	}
	r, ok1 := parseUint(f[0])
	e, ok2 := parseUint(f[1])
	if !ok1 || !ok2 || r > math.MaxUint32 || e > math.MaxUint32 {
		return 0, 0, false
	}
	return int(r), int(e), true
}

// parseCmdline splits /proc/PID/cmdline (arguments each ended by NUL), bounded.
func parseCmdline(b []byte) []string {
	if len(b) > maxCmdline {
		b = b[:maxCmdline]
	}
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	var out []string
	for len(b) > 0 && len(out) < maxArgs {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			out = append(out, string(b))
			break
		}
		out = append(out, string(b[:i]))
		b = b[i+1:]
	}
	return out
}
