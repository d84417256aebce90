package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Section 1 Host configuration.
var hostChecks = []Check{
	{
		ID: "1.1.1", Title: "Docker's data directory is on a filesystem of its own",
		Level: 1, Scored: false,
		Remediation: "Give the data root (/var/lib/docker, or the configured data-root) its own partition or " +
			"logical volume, so that images, containers and logs filling it cannot fill the host's root " +
			"filesystem: stop Docker, move the data onto the new volume, mount it there (in /etc/fstab) and restart.",
		Run: checkDataPartition,
	},
	{
		ID: "1.1.2", Title: "Only trusted users may use the daemon's socket (docker group)",
		Level: 1, Scored: false,
		Remediation: "Membership of the docker group is root on the host. Remove every user who does not need " +
			"to run Docker (gpasswd -d <user> docker) and review the list whenever accounts change.",
		Run: checkDockerGroup,
	},
	auditCheck("1.1.3", 1, true, "the dockerd binary", "/usr/bin/dockerd", func(env *Env) []string {
		var extra []string
		if len(env.Daemon.Cmdline) > 0 && path.IsAbs(env.Daemon.Cmdline[0]) {
			extra = append(extra, env.Daemon.Cmdline[0])
		}
		return hostBinaries(env, "dockerd", extra...)
	}),
	auditCheck("1.1.4", 1, false, "/run/containerd", "/run/containerd", fixedPath("/run/containerd")),
	auditCheck("1.1.5", 1, false, "Docker's data root", "/var/lib/docker", func(env *Env) []string {
		return existing(env, dockerDataRoot(env))
	}),
	auditCheck("1.1.6", 1, true, "the Docker configuration directory", "/etc/docker", func(env *Env) []string {
		return existing(env, dockerConfigDir(env))
	}),
	auditCheck("1.1.7", 2, true, "the docker.service unit", "/lib/systemd/system/docker.service", func(env *Env) []string {
		return unitFiles(env, "docker.service")
	}),
	auditCheck("1.1.8", 2, true, "the containerd socket", "/run/containerd/containerd.sock", containerdSockets),
	auditCheck("1.1.9", 2, true, "the Docker socket", "/run/docker.sock", func(env *Env) []string {
		return existing(env, dockerSockets(env)...)
	}),
	auditCheck("1.1.10", 2, true, "/etc/default/docker", "/etc/default/docker", fixedPath("/etc/default/docker")),
	auditCheck("1.1.11", 2, true, "daemon.json", "/etc/docker/daemon.json", func(env *Env) []string {
		if env.Daemon.ConfigFile == "" {
			return nil
		}
		return existing(env, env.Daemon.ConfigFile)
	}),
	auditCheck("1.1.12", 2, true, "/etc/containerd/config.toml", "/etc/containerd/config.toml", fixedPath("/etc/containerd/config.toml")),
	auditCheck("1.1.13", 2, true, "/etc/sysconfig/docker", "/etc/sysconfig/docker", fixedPath("/etc/sysconfig/docker")),
	auditCheck("1.1.14", 2, true, "the containerd binary", "/usr/bin/containerd", binary("containerd")),
	auditCheck("1.1.15", 2, true, "the containerd-shim binary", "/usr/bin/containerd-shim", binary("containerd-shim")),
	auditCheck("1.1.16", 2, false, "the containerd-shim-runc-v1 binary", "/usr/bin/containerd-shim-runc-v1", binary("containerd-shim-runc-v1")),
	auditCheck("1.1.17", 2, true, "the containerd-shim-runc-v2 binary", "/usr/bin/containerd-shim-runc-v2", binary("containerd-shim-runc-v2")),
	auditCheck("1.1.18", 2, true, "the runc binary", "/usr/bin/runc", binary("runc")),
	{
		ID: "1.2.1", Title: "The container host is hardened",
		Level: 1, Scored: false,
		Remediation: "Harden the host against a recognised Linux hardening guide (for instance the CIS " +
			"benchmark for its distribution): minimal packages, a mandatory access control system " +
			"(AppArmor or SELinux) enforcing, regular patching, restricted logins.",
		Run: checkHostHardening,
	},
	{
		ID: "1.2.2", Title: "Docker is kept up to date",
		Level: 1, Scored: false,
		Remediation: "Follow Docker's releases and security advisories and upgrade the engine, containerd and " +
			"runc in line with the organisation's patching policy.",
		Run: checkDockerVersion,
	},
}

// auditCheck builds a check that the files locate returns (those present on the host)
// are watched by an audit rule. example is the usual path, used in the remediation.
func auditCheck(id string, level int, scored bool, what, example string, locate func(*Env) []string) Check {
	return Check{
		ID: id, Title: "Changes to " + what + " are recorded by auditd",
		Level: level, Scored: scored,
		Remediation: fmt.Sprintf("Add a watch for %s, e.g. the line \"-w %s -p wa -k docker\" in "+
			"/etc/audit/rules.d/docker.rules, then load it (augenrules --load) and restart auditd.", what, example),
		Run: func(_ context.Context, env *Env) Result {
			paths := locate(env)
			if len(paths) == 0 {
				return note(fmt.Sprintf("%s is not present on this host: nothing to audit", what))
			}
			watches, files, err := readAuditWatches(env.Root)
			if err != nil {
				return skip("cannot read the audit rules: " + err.Error())
			}
			targets := func(ps []string) []Target {
				out := make([]Target, 0, len(ps))
				for _, p := range ps {
					out = append(out, Target{Kind: "file", Name: p})
				}
				return out
			}
			if len(files) == 0 {
				return warn("no audit rules are configured (no /etc/audit/audit.rules or /etc/audit/rules.d/*.rules): auditd is not installed or records nothing",
					targets(paths), labelEach("not audited: ", paths)...)
			}
			var missing, ev []string
			for _, p := range paths {
				if w, ok := watchFor(env.Root, watches, p); ok {
					ev = append(ev, fmt.Sprintf("%s: %q in %s", p, w.rule, w.file))
				} else {
					missing = append(missing, p)
					ev = append(ev, p+": no audit rule")
				}
			}
			if len(missing) > 0 {
				return warn("no audit rule watches "+strings.Join(missing, ", "), targets(missing), ev...)
			}
			return pass(ev...)
		},
	}
}

func fixedPath(p string) func(*Env) []string {
	return func(env *Env) []string { return existing(env, p) }
}

func binary(name string) func(*Env) []string {
	return func(env *Env) []string { return hostBinaries(env, name) }
}

// existing returns those of paths that exist on the host.
func existing(env *Env, paths ...string) []string {
	var out []string
	for _, p := range paths {
		if hostExists(env.Root, p) {
			out = append(out, p)
		}
	}
	return out
}

func labelEach(prefix string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = prefix + s
	}
	return out
}

// auditWatch is a file-system watch from an audit rules file.
type auditWatch struct {
	path    string
	subtree bool   // also covers what is below path: -w on a directory, -F dir=
	rule    string // the rule as written
	file    string // the rules file (a host path)
}

// readAuditWatches reads the watches from root/etc/audit/audit.rules and
// root/etc/audit/rules.d/*.rules (the rules augenrules compiles). files lists the rules
// files that exist; it is empty when the host has no audit rules at all.
func readAuditWatches(root string) (watches []auditWatch, files []string, err error) {
	dropIns, err := filepath.Glob(filepath.Join(root, "etc/audit/rules.d/*.rules"))
	if err != nil {
		return nil, nil, err
	}
	hostNames := []string{"/etc/audit/audit.rules"}
	for _, name := range dropIns {
		hostNames = append(hostNames, "/etc/audit/rules.d/"+filepath.Base(name))
	}
	sort.Strings(hostNames[1:])
	for _, hostName := range hostNames {
		data, err := os.ReadFile(filepath.Join(root, hostName))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", hostName, err)
		}
		files = append(files, hostName)
		for line := range strings.SplitSeq(string(data), "\n") {
			if w, ok := parseAuditWatch(line); ok {
				w.file = hostName
				watches = append(watches, w)
			}
		}
	}
	return watches, files, nil
}

// parseAuditWatch reads one audit rule. Watches are "-w PATH ..." and syscall rules
// with "-F path=PATH" or "-F dir=DIR" whose action is always; exclusions (never) and
// removals (-W) watch nothing.
func parseAuditWatch(line string) (auditWatch, bool) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return auditWatch{}, false
	}
	f := strings.Fields(line)
	var w auditWatch
	found, never := false, false
	for i := 0; i < len(f); i++ {
		next := func() string {
			if i+1 < len(f) {
				i++
				return f[i]
			}
			return ""
		}
		switch {
		case f[i] == "-w":
			w.path, w.subtree, found = next(), true, true
		case f[i] == "-a" || f[i] == "-A":
			never = strings.Contains(next(), "never")
		case f[i] == "-F":
			k, v, _ := strings.Cut(next(), "=")
			switch k {
			case "path":
				w.path, w.subtree, found = v, false, true
			case "dir":
				w.path, w.subtree, found = v, true, true
			}
		}
	}
	if !found || never || w.path == "" {
		return auditWatch{}, false
	}
	w.rule = line
	return w, true
}

// watchFor returns the watch that covers host path p, comparing paths both as written
// and with symbolic links followed (so /var/run and /run, or /bin and /usr/bin on a
// merged-/usr system, match).
func watchFor(root string, watches []auditWatch, p string) (auditWatch, bool) {
	pNames := pathAliases(root, p)
	for _, w := range watches {
		wNames := pathAliases(root, w.path)
		for _, a := range pNames {
			for _, b := range wNames {
				if a == b || (w.subtree && strings.HasPrefix(a, strings.TrimSuffix(b, "/")+"/")) {
					return w, true
				}
			}
		}
	}
	return auditWatch{}, false
}

func pathAliases(root, p string) []string {
	clean := path.Clean("/" + p)
	out := []string{clean}
	if real, err := resolveInRoot(root, clean); err == nil && real != clean {
		out = append(out, real)
	}
	for i, a := range out {
		if r, ok := strings.CutPrefix(a, "/var/run/"); ok {
			out[i] = "/run/" + r
		} else if a == "/var/run" {
			out[i] = "/run"
		}
	}
	return out
}

// mountEntry is one mounted filesystem.
type mountEntry struct {
	dev    string // major:minor; empty when read from /proc/mounts
	point  string
	fstype string
	source string
}

// readMounts reads the host's mount table from root/proc: init's mountinfo (the host's
// view even when Vigil runs in a mount namespace of its own), else its own, else
// /proc/mounts.
func readMounts(root string) ([]mountEntry, error) {
	var errs []error
	for _, p := range []string{"proc/1/mountinfo", "proc/self/mountinfo"} {
		data, err := os.ReadFile(filepath.Join(root, p))
		if err == nil {
			return parseMountinfo(string(data)), nil
		}
		errs = append(errs, err)
	}
	data, err := os.ReadFile(filepath.Join(root, "proc/mounts"))
	if err != nil {
		return nil, fmt.Errorf("read the mount table: %w", errors.Join(append(errs, err)...))
	}
	var out []mountEntry
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 {
			out = append(out, mountEntry{source: unescapeMount(f[0]), point: unescapeMount(f[1]), fstype: f[2]})
		}
	}
	return out, nil
}

// parseMountinfo parses /proc/<pid>/mountinfo (see proc(5)): ID parent major:minor root
// mount-point options [optional fields...] - fstype source super-options.
func parseMountinfo(data string) []mountEntry {
	var out []mountEntry
	for line := range strings.SplitSeq(data, "\n") {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		e := mountEntry{dev: f[2], point: unescapeMount(f[4])}
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				if i+1 < len(f) {
					e.fstype = f[i+1]
				}
				if i+2 < len(f) {
					e.source = unescapeMount(f[i+2])
				}
				break
			}
		}
		out = append(out, e)
	}
	return out
}

// unescapeMount undoes the octal escapes (\040 for a space) of mount table fields.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountOf returns the mount that holds host path p: the last mounted among those with
// the longest mount point that is p or an ancestor of p.
func mountOf(mounts []mountEntry, p string) (mountEntry, bool) {
	best, found := mountEntry{}, false
	for _, m := range mounts {
		if m.point == p || m.point == "/" || strings.HasPrefix(p, m.point+"/") {
			if !found || len(m.point) >= len(best.point) {
				best, found = m, true
			}
		}
	}
	return best, found
}

func (m mountEntry) String() string {
	return fmt.Sprintf("%s (%s %s)", m.point, m.fstype, m.source)
}

func checkDataPartition(_ context.Context, env *Env) Result {
	dataRoot := dockerDataRoot(env)
	real, err := resolveInRoot(env.Root, dataRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return note(dataRoot + " is not present: Docker keeps no data on this host yet")
	}
	if err != nil {
		return skip(fmt.Sprintf("cannot resolve %s: %v", dataRoot, err))
	}
	mounts, err := readMounts(env.Root)
	if err != nil {
		return skip(err.Error())
	}
	target := []Target{{Kind: "file", Name: dataRoot}}
	m, ok := mountOf(mounts, real)
	if !ok {
		return skip("no mount in the mount table holds " + dataRoot)
	}
	if m.point != real {
		return warn(dataRoot+" shares a filesystem with the rest of the host: filling it fills that filesystem", target,
			fmt.Sprintf("%s is on the filesystem mounted at %s", dataRoot, m))
	}
	parent, ok := mountOf(mounts, path.Dir(real))
	sameFS := ok && ((m.dev != "" && m.dev == parent.dev) || (m.dev == "" && m.source == parent.source && m.fstype == parent.fstype))
	if sameFS {
		return warn(dataRoot+" is mounted, but from the same filesystem as "+parent.point+": filling it still fills that filesystem", target,
			fmt.Sprintf("%s is mounted at %s, device %s, as is %s", dataRoot, m, m.dev, parent))
	}
	return pass(fmt.Sprintf("%s is a filesystem of its own: %s", dataRoot, m))
}

func checkDockerGroup(_ context.Context, env *Env) Result {
	name := settingString(env, "group")
	if name == "" {
		name = "docker"
	}
	acc, err := readHostAccounts(env.Root)
	if acc == nil || len(acc.groups) == 0 {
		return skip(fmt.Sprintf("cannot read the host's groups: %v", err))
	}
	g, ok := acc.groups[name]
	if !ok {
		if env.Rootless {
			return note("the daemon is rootless: its socket belongs to its user, and there is no " + name + " group")
		}
		return note("there is no " + name + " group: only root can use the daemon's socket")
	}
	members := map[string]bool{}
	for _, m := range g.members {
		if m = strings.TrimSpace(m); m != "" {
			members[m] = true
		}
	}
	for user, gid := range acc.gidByUser {
		if gid == g.gid {
			members[user] = true
		}
	}
	list := make([]string, 0, len(members))
	for m := range members {
		list = append(list, m)
	}
	sort.Strings(list)
	ev := fmt.Sprintf("group %s (gid %d): %s", name, g.gid, strings.Join(list, ", "))
	if len(list) == 0 {
		ev = fmt.Sprintf("group %s (gid %d) has no members", name, g.gid)
	}
	if env.Rootless {
		return note("the daemon is rootless: its socket belongs to its user, so the "+name+" group grants no access to it", ev)
	}
	if len(list) == 0 {
		return pass(ev)
	}
	return info(fmt.Sprintf("%d user(s) can control the daemon, which is root on the host: confirm each is trusted", len(list)), ev)
}

func checkHostHardening(_ context.Context, env *Env) Result {
	var ev []string
	osName := env.Info.OperatingSystem
	if osName == "" {
		osName = osRelease(env.Root)
	}
	if osName != "" {
		ev = append(ev, "operating system: "+osName)
	}
	if env.Info.KernelVersion != "" {
		ev = append(ev, "kernel: "+env.Info.KernelVersion)
	}
	var mac []string
	for _, n := range []string{"apparmor", "selinux"} {
		if securityOption(env, n) != nil {
			mac = append(mac, n)
		}
	}
	if daemonInfoErr(env) == nil {
		if len(mac) == 0 {
			mac = []string{"none reported by the daemon"}
		}
		ev = append(ev, "mandatory access control: "+strings.Join(mac, ", "))
	}
	return info("how well the host is hardened is for a person to judge against a Linux hardening guide", ev...)
}

// osRelease returns PRETTY_NAME from the host's os-release.
func osRelease(root string) string {
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		data, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				return strings.Trim(v, `"'`)
			}
		}
	}
	return ""
}

func checkDockerVersion(_ context.Context, env *Env) Result {
	version := env.ServerVersion
	if version == "" {
		version = env.Info.ServerVersion
	}
	if version == "" {
		if err := daemonInfoErr(env); err != nil {
			return skip("the daemon's version is unknown: " + err.Error())
		}
		return skip("the daemon did not report its version")
	}
	ev := []string{"Docker Engine " + version}
	if env.APIVersion != "" {
		ev[0] += " (API " + env.APIVersion + ")"
	}
	if id := env.Info.ContainerdCommit.ID; id != "" {
		ev = append(ev, "containerd "+id)
	}
	if id := env.Info.RuncCommit.ID; id != "" {
		ev = append(ev, "runc "+id)
	}
	return info("compare these versions with the latest releases and security advisories", ev...)
}
