package procmon

import (
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Rules of the detector: the Rule of a Finding.
const (
	// RuleEscalation: a process's real or effective user ID became 0 while its parent
	// ran as another user, other than through su or sudo by a user allowed to.
	RuleEscalation = "escalation"
	// RuleSuspiciousTool: a network scanner, netcat variant, tunnel or sniffer ran in a
	// container.
	RuleSuspiciousTool = "suspicious-tool"
	// RuleReverseShell: a shell's standard input, output or error is a TCP or UDP socket.
	RuleReverseShell = "reverse-shell"
	// RuleShellFromService: a program that is not a shell, an init or a launcher
	// started a shell in a container (a web server running sh).
	RuleShellFromService = "shell-from-service"
	// RuleDrift: a container ran an executable that is not from its image: written to
	// the container's writable layer after it was created, run from memory, or deleted.
	RuleDrift = "drift"
)

// Finding is one thing the detector found wrong with an observation.
type Finding struct {
	Rule     string         `json:"rule"`
	Severity string         `json:"severity"` // warning or critical
	Reason   string         `json:"reason"`
	Detail   map[string]any `json:"detail,omitempty"`
}

// Sets of names, matched against a process's comm and its executable's base name.
var (
	shells = set("sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "pdksh", "csh", "tcsh", "fish", "rbash", "yash")
	// suspiciousTools are tools an attacker brings into a container: scanners,
	// netcat and its variants, tunnels and proxies, sniffers.
	suspiciousTools = set("nmap", "masscan", "zmap", "rustscan", "nc", "ncat", "netcat", "nc.openbsd", "nc.traditional",
		"pwncat", "socat", "chisel", "ngrok", "iodine", "iodined", "dnscat", "dnscat2", "proxychains", "proxychains4",
		"frpc", "frps", "gost", "ligolo", "ligolo-ng", "tcpdump", "tshark", "dumpcap", "hping3", "sshuttle", "cloudflared")
	// suTools change user on purpose, after checking who asks.
	suTools = set("su", "sudo", "doas", "pkexec", "run0", "runuser")
	// setuidHelpers are setuid-root programs of the base system that do one narrow job
	// for an unprivileged caller and are run by desktop and container tooling all day.
	setuidHelpers = set("dbus-daemon-launch-helper", "polkit-agent-helper-1", "fusermount", "fusermount3",
		"newuidmap", "newgidmap", "ssh-keysign", "unix_chkpwd", "chrome-sandbox", "Xorg.wrap")
	// launchers start a shell as their job: an init in a container, a privilege or
	// session tool, a wrapper that runs its arguments.
	launchers = set("tini", "docker-init", "dumb-init", "catatonit", "s6-svscan", "s6-supervise", "runsv", "runsvdir",
		"su", "sudo", "doas", "login", "sshd", "script", "tmux", "tmux: server", "screen", "env", "nohup", "timeout",
		"nice", "ionice", "setsid", "chroot", "runuser", "setpriv", "gosu", "su-exec", "flock", "stdbuf", "taskset",
		"xargs", "watch", "time", "strace", "chpst", "runc", "runc:[2:INIT]", "containerd-shim", "containerd-shim-runc-v2")
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// exeBase is the base name of an executable path, without " (deleted)".
func exeBase(exe string) string {
	return path.Base(strings.TrimSuffix(exe, " (deleted)"))
}

// in reports whether the comm or executable's base name is in names.
func in(names map[string]bool, comm, exe string) bool {
	return names[comm] || (exe != "" && names[exeBase(exe)])
}

func isShell(comm, exe string) bool { return in(shells, comm, exe) }

// isShellProcess also counts a script run through a shell: the kernel names the process
// after the script and puts the interpreter of its #! line in argv[0].
func isShellProcess(p *ProcessInfo) bool {
	return isShell(p.Comm, p.Exe) || (len(p.Cmdline) > 0 && shells[path.Base(p.Cmdline[0])])
}

// DetectorConfig configures a Detector.
type DetectorConfig struct {
	ProcRoot string
	// ContainerCreated says when a container was created: files of its writable layer
	// from before then are not drift. Nil or a zero time: any file there is.
	ContainerCreated func(id string) time.Time
}

// Detector judges observations. It is safe for concurrent use.
type Detector struct {
	cfg DetectorConfig

	mu    sync.Mutex
	upper map[string]string    // container → upperdir of its root ("" when not an overlay)
	users map[string]userEntry // container ("" for the host) → its users
}

type userEntry struct {
	db   *userDB
	read time.Time
}

// usersTTL is how long a root's /etc/passwd and /etc/group are trusted.
const usersTTL = 10 * time.Second

// NewDetector returns a detector reading cfg.ProcRoot.
func NewDetector(cfg DetectorConfig) *Detector {
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	return &Detector{cfg: cfg, upper: map[string]string{}, users: map[string]userEntry{}}
}

// Forget drops what is cached for a container that has gone.
func (d *Detector) Forget(container string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.upper, container)
	delete(d.users, container)
}

// Check runs the rules that apply to o. A recheck only looks at a shell's descriptors.
func (d *Detector) Check(o *Observation) []Finding {
	var out []Finding
	p := &o.Process
	add := func(f *Finding) {
		if f != nil {
			out = append(out, *f)
		}
	}
	if o.Recheck {
		add(d.reverseShell(p))
		return out
	}
	add(d.escalation(o))
	if o.Kind != EventExec {
		return out
	}
	add(d.reverseShell(p))
	if p.Container != "" {
		add(suspiciousTool(p))
		add(shellFromService(o))
		add(d.drift(p))
	}
	return out
}

// escalation is RuleEscalation.
func (d *Detector) escalation(o *Observation) *Finding {
	p := &o.Process
	var became []string
	switch o.Kind {
	case EventExec:
		if p.UID == 0 {
			became = append(became, "real")
		}
		if p.EUID == 0 {
			became = append(became, "effective")
		}
	case EventUID:
		if p.UID == 0 && o.PrevUID != 0 {
			became = append(became, "real")
		}
		if p.EUID == 0 && o.PrevEUID != 0 {
			became = append(became, "effective")
		}
	}
	if len(became) == 0 || len(o.Ancestry) == 0 {
		return nil // not root, or no parent known to compare with
	}
	parent := o.Ancestry[0]
	if parent.EUID == 0 || parent.UID == 0 {
		return nil // the parent ran as root: nothing was gained
	}
	if in(setuidHelpers, p.Comm, p.Exe) {
		return nil
	}
	detail := map[string]any{"became": became, "parent_uid": parent.UID, "parent_euid": parent.EUID}
	if in(suTools, p.Comm, p.Exe) {
		db := d.userDB(p)
		if db != nil && db.permitted(parent.UID) {
			return nil
		}
		detail["via"] = exeBase(p.Exe)
		return &Finding{Rule: RuleEscalation, Severity: "critical", Detail: detail,
			Reason: fmt.Sprintf("%s became root through %s, but user %d is not in a sudo, wheel or admin group", p.Comm, p.Comm, parent.UID)}
	}
	return &Finding{Rule: RuleEscalation, Severity: "critical", Detail: detail,
		Reason: fmt.Sprintf("%s (pid %d) became root (%s uid 0) under parent %s running as uid %d",
			p.Comm, p.PID, strings.Join(became, " and "), parent.Comm, parent.EUID)}
}

// userDB reads the users of p's root (its container's, or the host's), cached.
func (d *Detector) userDB(p *ProcessInfo) *userDB {
	d.mu.Lock()
	e, ok := d.users[p.Container]
	d.mu.Unlock()
	if ok && time.Since(e.read) < usersTTL {
		return e.db
	}
	root := d.cfg.ProcRoot + "/" + strconv.Itoa(p.PID) + "/root"
	passwd, err1 := readInRoot(root, "etc/passwd", 1<<20)
	group, err2 := readInRoot(root, "etc/group", 1<<20)
	if err1 != nil && err2 != nil {
		return nil
	}
	db := parseUserDB(passwd, group)
	d.mu.Lock()
	if len(d.users) > 4096 {
		clear(d.users)
	}
	d.users[p.Container] = userEntry{db: db, read: time.Now()}
	d.mu.Unlock()
	return db
}

// readInRoot reads at most limit bytes of name under root, resolving every symbolic
// link inside root (openat2 RESOLVE_IN_ROOT): a container's /etc/group that is a link to
// "/etc/shadow" leads to its own file, not the host's.
func readInRoot(root, name string, limit int64) ([]byte, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	defer unix.Close(rfd)
	fd, err := unix.Openat2(rfd, name, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return nil, fmt.Errorf("open %s/%s: %w", root, name, err)
	}
	f := os.NewFile(uintptr(fd), root+"/"+name)
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s/%s is not a regular file", root, name)
	}
	return io.ReadAll(io.LimitReader(f, limit))
}

// suspiciousTool is RuleSuspiciousTool.
func suspiciousTool(p *ProcessInfo) *Finding {
	tool := ""
	switch {
	case suspiciousTools[p.Comm]:
		tool = p.Comm
	case p.Exe != "" && suspiciousTools[exeBase(p.Exe)]:
		tool = exeBase(p.Exe)
	default:
		return nil
	}
	return &Finding{Rule: RuleSuspiciousTool, Severity: "warning", Detail: map[string]any{"tool": tool},
		Reason: fmt.Sprintf("%s ran in a container (%s)", tool, strings.Join(p.Cmdline, " "))}
}

// shellFromService is RuleShellFromService.
func shellFromService(o *Observation) *Finding {
	p := &o.Process
	if !isShellProcess(p) || len(o.Ancestry) == 0 {
		return nil
	}
	parent := o.Ancestry[0]
	// A parent outside the container is the runtime (docker exec, the container's
	// command): the shell was asked for.
	if parent.Container != p.Container || isShell(parent.Comm, parent.Exe) || in(launchers, parent.Comm, parent.Exe) {
		return nil
	}
	return &Finding{Rule: RuleShellFromService, Severity: "critical", Detail: map[string]any{"service": parent.Comm, "service_pid": parent.PID},
		Reason: fmt.Sprintf("%s (pid %d) started a shell (%s)", parent.Comm, parent.PID, p.Comm)}
}

// reverseShell is RuleReverseShell: a shell whose descriptor 0, 1 or 2 is a socket
// found in the TCP or UDP tables of its own network namespace.
func (d *Detector) reverseShell(p *ProcessInfo) *Finding {
	if !isShellProcess(p) {
		return nil
	}
	base := d.cfg.ProcRoot + "/" + strconv.Itoa(p.PID)
	fds := map[uint64][]int{}
	var link [256]byte
	for fd := 0; fd <= 2; fd++ {
		n, err := unix.Readlink(base+"/fd/"+strconv.Itoa(fd), link[:])
		if err != nil {
			continue
		}
		if ino, ok := parseSocketLink(link[:n]); ok {
			fds[uint64(ino)] = append(fds[uint64(ino)], fd)
		}
	}
	if len(fds) == 0 {
		return nil
	}
	want := make(map[uint64]bool, len(fds))
	for ino := range fds {
		want[ino] = true
	}
	found := map[uint64]inetSocket{}
	protoOf := map[uint64]string{}
	for _, t := range []struct {
		name string
		v6   bool
	}{{"tcp", false}, {"tcp6", true}, {"udp", false}, {"udp6", true}} {
		b, err := os.ReadFile(base + "/net/" + t.name)
		if err != nil {
			continue
		}
		before := len(found)
		if err := parseNetSockets(b, t.v6, want, found); err != nil {
			continue
		}
		if len(found) > before {
			for ino := range found {
				if protoOf[ino] == "" {
					protoOf[ino] = strings.TrimSuffix(t.name, "6")
				}
			}
		}
		if len(found) == len(want) {
			break
		}
	}
	if len(found) == 0 {
		return nil // unix sockets: a shell under a terminal multiplexer or socket activation
	}
	var stdio []int
	var remote, proto string
	for ino, s := range found {
		stdio = append(stdio, fds[ino]...)
		if remote == "" || s.Remote.Port() != 0 {
			remote, proto = s.Remote.String(), protoOf[ino]
		}
	}
	return &Finding{Rule: RuleReverseShell, Severity: "critical", Detail: map[string]any{"fds": stdio, "remote": remote, "proto": proto},
		Reason: fmt.Sprintf("shell %s (pid %d) has its standard input/output on a %s socket to %s", p.Comm, p.PID, proto, remote)}
}

// drift is RuleDrift.
func (d *Detector) drift(p *ProcessInfo) *Finding {
	exe := p.Exe
	switch {
	case exe == "":
		return nil
	case strings.HasPrefix(exe, "/memfd:"):
		if strings.HasPrefix(exe, "/memfd:runc_cloned") {
			return nil // runc runs itself from a sealed copy in memory (CVE-2019-5736 fix)
		}
		return &Finding{Rule: RuleDrift, Severity: "critical", Detail: map[string]any{"how": "memory"},
			Reason: fmt.Sprintf("%s runs from memory (%s), not from a file of the image", p.Comm, exe)}
	case strings.HasSuffix(exe, " (deleted)"):
		return &Finding{Rule: RuleDrift, Severity: "warning", Detail: map[string]any{"how": "deleted"},
			Reason: fmt.Sprintf("%s runs an executable deleted since it started (%s)", p.Comm, exe)}
	}
	upper := d.upperDir(p)
	if upper == "" {
		return nil
	}
	rfd, err := unix.Open(upper, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(rfd)
	fd, err := unix.Openat2(rfd, strings.TrimPrefix(exe, "/"), &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS})
	if err != nil {
		return nil // not in the writable layer: from the image
	}
	defer unix.Close(fd)
	var st, run unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil // a whiteout (character device) or a directory
	}
	// The file that runs must be that one, not a file bind-mounted over it (docker
	// --init's /sbin/docker-init leaves an empty mount point in the writable layer).
	// Docker's layers share one filesystem, so overlayfs reports the real inode numbers.
	ino := p.exeIno
	if ino == 0 {
		if err := unix.Stat(d.cfg.ProcRoot+"/"+strconv.Itoa(p.PID)+"/exe", &run); err != nil {
			return nil
		}
		ino = run.Ino
	}
	if ino != st.Ino {
		return nil
	}
	written := time.Unix(st.Ctim.Sec, st.Ctim.Nsec).UTC()
	if d.cfg.ContainerCreated != nil {
		if created := d.cfg.ContainerCreated(p.Container); !created.IsZero() && written.Before(created.Add(-time.Second)) {
			return nil
		}
	}
	return &Finding{Rule: RuleDrift, Severity: "critical", Detail: map[string]any{"how": "written", "written": written, "upperdir": upper},
		Reason: fmt.Sprintf("%s is not from the image: it was written in the container at %s", exe, written.Format(time.RFC3339))}
}

// upperDir returns the writable layer of p's container, from the root mount in p's
// mount namespace.
func (d *Detector) upperDir(p *ProcessInfo) string {
	d.mu.Lock()
	u, ok := d.upper[p.Container]
	d.mu.Unlock()
	if ok {
		return u
	}
	b, err := os.ReadFile(d.cfg.ProcRoot + "/" + strconv.Itoa(p.PID) + "/mountinfo")
	if err != nil {
		return "" // gone; not cached, the next process of the container will tell
	}
	u = rootUpperDir(b)
	d.mu.Lock()
	if len(d.upper) > 4096 {
		clear(d.upper)
	}
	d.upper[p.Container] = u
	d.mu.Unlock()
	return u
}
