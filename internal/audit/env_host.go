package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// defaultDaemonJSON is where dockerd reads its configuration unless --config-file says
// otherwise (rootful daemons).
const defaultDaemonJSON = "/etc/docker/daemon.json"

// Where Settings values come from, as recorded in DaemonConfig.Sources.
const (
	fromDaemonJSON = "daemon.json"
	fromCmdline    = "cmdline"
	// fromEnvironment marks tlsverify turned on by DOCKER_TLS_VERIFY in dockerd's environment,
	// which dockerd honours as the flag's default.
	fromEnvironment = "environment"
)

// loadDaemonConfig reads the daemon's effective configuration: the dockerd command line
// (from the dockerd process found under procRoot) merged over daemon.json (from
// --config-file, else root/etc/docker/daemon.json, or the rootless user's path).
//
// A missing daemon.json is not an error. A daemon.json that does not parse is: the
// returned config then holds the command line's settings only, and the error says why
// the rest is unknown. Processes whose /proc entries cannot be read (EACCES on PID 1 in
// some sandboxes) are passed over.
func loadDaemonConfig(root, procRoot string, rootless bool) (DaemonConfig, error) {
	cfg := DaemonConfig{Settings: map[string]any{}, Sources: map[string]string{}}
	var errs []error

	proc, err := findDockerd(procRoot, rootless)
	if err != nil {
		errs = append(errs, err)
	}
	var flags map[string]any
	if proc != nil {
		cfg.Cmdline = proc.cmdline
		flags, cfg.ConfigFile = parseDockerdArgs(proc.cmdline)
	}
	if cfg.ConfigFile == "" {
		cfg.ConfigFile = defaultConfigFile(root, proc, rootless)
	}

	var fileSettings map[string]any
	fileFound := false
	if cfg.ConfigFile != "" {
		fileSettings, fileFound, err = readDaemonJSON(root, cfg.ConfigFile)
		if err != nil {
			errs = append(errs, err)
		}
	}
	cfg.Found = proc != nil || fileFound

	for k, v := range fileSettings {
		cfg.Settings[k], cfg.Sources[k] = v, fromDaemonJSON
	}
	for k, v := range flags {
		cfg.Settings[k], cfg.Sources[k] = v, fromCmdline
	}
	if proc != nil && proc.env["DOCKER_TLS_VERIFY"] != "" {
		if _, set := cfg.Settings["tlsverify"]; !set {
			cfg.Settings["tlsverify"], cfg.Sources["tlsverify"] = true, fromEnvironment
		}
	}

	if !cfg.Found && len(errs) == 0 {
		where := cfg.ConfigFile
		if where == "" {
			where = "the rootless user's daemon.json"
		}
		errs = append(errs, fmt.Errorf("no dockerd process under %s and no %s", procRoot, where))
	}
	return cfg, errors.Join(errs...)
}

// dockerdProcess is what the loader learns from a running dockerd.
type dockerdProcess struct {
	pid     int
	uid     int
	cmdline []string
	env     map[string]string // only the variables the loader uses
}

// findDockerd returns the dockerd process under procRoot, or nil when there is none.
// With several (a rootless and a rootful daemon, or dockerd inside a container) it
// prefers, among the lowest PIDs, one running as root for a rootful audit and one
// running as another user for a rootless audit.
func findDockerd(procRoot string, rootless bool) (*dockerdProcess, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "dockerd" {
			continue
		}
		pids = append(pids, pid)
	}
	if len(pids) == 0 {
		return nil, nil
	}
	sort.Ints(pids)

	var candidates []*dockerdProcess
	var firstErr error
	for _, pid := range pids {
		p, err := readDockerdProcess(procRoot, pid)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		candidates = append(candidates, p)
	}
	if len(candidates) == 0 {
		return nil, firstErr
	}
	for _, p := range candidates {
		if (p.uid != 0) == rootless {
			return p, nil
		}
	}
	return candidates[0], nil
}

func readDockerdProcess(procRoot string, pid int) (*dockerdProcess, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	raw, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		return nil, fmt.Errorf("read dockerd command line: %w", err)
	}
	p := &dockerdProcess{pid: pid, uid: -1, cmdline: splitNUL(raw), env: map[string]string{}}
	if len(p.cmdline) == 0 {
		return nil, fmt.Errorf("dockerd process %d has an empty command line", pid)
	}
	if status, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		p.uid = statusUID(status)
	}
	// The environment is only needed for the rootless paths and DOCKER_TLS_VERIFY; it
	// is often unreadable, which is fine.
	if environ, err := os.ReadFile(filepath.Join(dir, "environ")); err == nil {
		for _, kv := range splitNUL(environ) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			switch k {
			case "HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "DOCKER_TLS_VERIFY":
				p.env[k] = v
			}
		}
	}
	return p, nil
}

func splitNUL(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), "\x00")
}

// statusUID returns the real uid from a /proc/<pid>/status file, or -1.
func statusUID(status []byte) int {
	for line := range strings.SplitSeq(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, "Uid:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return -1
		}
		uid, err := strconv.Atoi(f[0])
		if err != nil {
			return -1
		}
		return uid
	}
	return -1
}

// defaultConfigFile is the daemon.json dockerd reads when no --config-file is given.
// For a rootless daemon that is $XDG_CONFIG_HOME/docker/daemon.json of its user; it is
// "" when the user is unknown.
func defaultConfigFile(root string, proc *dockerdProcess, rootless bool) string {
	if !rootless {
		return defaultDaemonJSON
	}
	if proc == nil {
		return ""
	}
	if x := proc.env["XDG_CONFIG_HOME"]; x != "" {
		return path.Join(x, "docker", "daemon.json")
	}
	home := proc.env["HOME"]
	if home == "" && proc.uid >= 0 {
		if acc, err := readHostAccounts(root); acc != nil && err == nil {
			home = acc.homeByUID[proc.uid]
		}
	}
	if home == "" {
		return ""
	}
	return path.Join(home, ".config", "docker", "daemon.json")
}

// readDaemonJSON reads the daemon.json at the host path p. found is false when there is
// no such file.
func readDaemonJSON(root, p string) (settings map[string]any, found bool, err error) {
	data, err := os.ReadFile(filepath.Join(root, p))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", p, err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return map[string]any{}, true, nil // dockerd accepts an empty file
	}
	if err := json.Unmarshal(data, &settings); err != nil {
		return nil, true, fmt.Errorf("parse %s: %w", p, err)
	}
	return settings, true, nil
}

// dockerd's flags, as far as parsing needs to know them.
var (
	// dockerdShortFlags maps one-letter flags to their long names.
	dockerdShortFlags = map[byte]string{
		'H': "host", 'D': "debug", 'l': "log-level", 'G': "group", 'g': "graph",
		'p': "pidfile", 'b': "bridge", 's': "storage-driver", 'e': "exec-driver",
	}
	// dockerdBoolFlags take no value unless written --flag=value.
	dockerdBoolFlags = map[string]bool{
		"debug": true, "tls": true, "tlsverify": true, "icc": true, "iptables": true,
		"ip6tables": true, "ip-forward": true, "ip-masq": true, "ipv6": true,
		"userland-proxy": true, "live-restore": true, "no-new-privileges": true,
		"experimental": true, "selinux-enabled": true, "raw-logs": true, "init": true,
		"rootless": true, "validate": true, "version": true, "help": true,
		"disable-legacy-registry": true, "ip-forward-no-drop": true,
		"allow-direct-routing": true, "cri-containerd": true,
	}
	// dockerdListFlags are repeatable; the value is their daemon.json key.
	dockerdListFlags = map[string]string{
		"host":                             "hosts",
		"insecure-registry":                "insecure-registries",
		"authorization-plugin":             "authorization-plugins",
		"storage-opt":                      "storage-opts",
		"exec-opt":                         "exec-opts",
		"label":                            "labels",
		"registry-mirror":                  "registry-mirrors",
		"dns":                              "dns",
		"dns-opt":                          "dns-opts",
		"dns-search":                       "dns-search",
		"allow-nondistributable-artifacts": "allow-nondistributable-artifacts",
		"node-generic-resource":            "node-generic-resources",
		"cdi-spec-dir":                     "cdi-spec-dirs",
		"add-runtime":                      "runtimes",
		"default-address-pool":             "default-address-pools",
	}
	// dockerdRenamedFlags are single-valued flags whose daemon.json key differs.
	dockerdRenamedFlags = map[string]string{"graph": "data-root"}
)

// parseDockerdArgs turns a dockerd command line (argv[0] included) into settings keyed
// like daemon.json, and returns the --config-file value. It accepts "--flag value",
// "--flag=value", "-H value", "-Hvalue" and "-H=value"; a boolean flag without "=" is
// true. Unknown flags are kept under their own name.
func parseDockerdArgs(argv []string) (settings map[string]any, configFile string) {
	settings = map[string]any{}
	if len(argv) > 0 {
		argv = argv[1:]
	}
	for i := 0; i < len(argv); i++ {
		arg := argv[i]
		if arg == "--" {
			break
		}
		var name, value string
		hasValue := false
		switch {
		case strings.HasPrefix(arg, "--"):
			name, value, hasValue = strings.Cut(arg[2:], "=")
		case strings.HasPrefix(arg, "-") && len(arg) >= 2:
			long, ok := dockerdShortFlags[arg[1]]
			if !ok {
				continue
			}
			name = long
			if rest := arg[2:]; rest != "" {
				value, hasValue = strings.TrimPrefix(rest, "="), true
			}
		default:
			continue // dockerd takes no positional arguments
		}
		if name == "" {
			continue
		}
		if dockerdBoolFlags[name] {
			var v any = true
			if hasValue {
				if b, err := strconv.ParseBool(value); err == nil {
					v = b
				} else {
					v = value
				}
			}
			settings[name] = v
			continue
		}
		if !hasValue {
			if i+1 >= len(argv) {
				continue
			}
			i++
			value = argv[i]
		}
		switch name {
		case "config-file":
			configFile = value
		case "log-opt":
			m, _ := settings["log-opts"].(map[string]any)
			if m == nil {
				m = map[string]any{}
			}
			k, v, _ := strings.Cut(value, "=")
			m[k] = v
			settings["log-opts"] = m
		case "default-ulimit":
			m, _ := settings["default-ulimits"].(map[string]any)
			if m == nil {
				m = map[string]any{}
			}
			k, v := parseUlimit(value)
			m[k] = v
			settings["default-ulimits"] = m
		default:
			if key, ok := dockerdListFlags[name]; ok {
				list, _ := settings[key].([]any)
				settings[key] = append(list, value)
				continue
			}
			if key, ok := dockerdRenamedFlags[name]; ok {
				name = key
			}
			settings[name] = value
		}
	}
	return settings, configFile
}

// parseUlimit turns "nofile=1024:2048" into the daemon.json form
// {"Name": "nofile", "Soft": 1024, "Hard": 2048}; what does not parse is kept as text.
func parseUlimit(s string) (string, any) {
	name, limits, ok := strings.Cut(s, "=")
	if !ok {
		return s, s
	}
	softS, hardS, hasHard := strings.Cut(limits, ":")
	if !hasHard {
		hardS = softS
	}
	soft, err1 := strconv.ParseFloat(softS, 64)
	hard, err2 := strconv.ParseFloat(hardS, 64)
	if err1 != nil || err2 != nil {
		return name, limits
	}
	return name, map[string]any{"Name": name, "Soft": soft, "Hard": hard}
}

// Host paths. Every path a check names is a path on the host ("/etc/docker"); reading it
// means joining it to Env.Root.

// resolveInRoot follows the symbolic links in the host path p the way the host would,
// keeping every step inside root (an absolute link target is taken relative to root),
// and returns the resulting host path. When a component does not exist it returns the
// path resolved so far joined with the rest, and an error satisfying
// errors.Is(err, fs.ErrNotExist).
func resolveInRoot(root, p string) (string, error) {
	rest := strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/")
	done := "/"
	hops := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			done = path.Dir(done)
			continue
		}
		next := path.Join(done, name)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			return path.Join(append([]string{next}, rest...)...), err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = next
			continue
		}
		if hops++; hops > 40 {
			return next, &fs.PathError{Op: "resolve", Path: p, Err: syscall.ELOOP}
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return next, err
		}
		if path.IsAbs(target) {
			done = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return done, nil
}

// hostFile is what the checks learn about one file on the host.
type hostFile struct {
	path     string // as the check names it
	real     string // after following symbolic links
	mode     uint32 // permission and set-id/sticky bits, as in chmod
	uid, gid int
	dir      bool
	socket   bool
	char     bool // a character device: /dev/null, as masked units point to
}

// statHostFile stats the host path p, following symbolic links inside root. The error
// satisfies errors.Is(err, fs.ErrNotExist) when there is no such file.
func statHostFile(root, p string) (hostFile, error) {
	real, err := resolveInRoot(root, p)
	if err != nil {
		return hostFile{path: p, real: real}, err
	}
	fi, err := os.Lstat(filepath.Join(root, real))
	if err != nil {
		return hostFile{path: p, real: real}, err
	}
	f := hostFile{path: p, real: real, mode: uint32(fi.Mode().Perm()), dir: fi.IsDir(),
		socket: fi.Mode()&fs.ModeSocket != 0, char: fi.Mode()&fs.ModeCharDevice != 0}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		f.mode = uint32(st.Mode) & 0o7777
		f.uid, f.gid = int(st.Uid), int(st.Gid)
	}
	return f, nil
}

// hostExists reports whether the host path p exists (after symbolic links).
func hostExists(root, p string) bool {
	_, err := statHostFile(root, p)
	return err == nil
}

// hostAccounts are the users and groups of the host, from its /etc/passwd and
// /etc/group.
type hostAccounts struct {
	userByUID  map[int]string
	homeByUID  map[int]string
	gidByUser  map[string]int // primary group
	groupByGID map[int]string
	groups     map[string]hostGroup
}

type hostGroup struct {
	name    string
	gid     int
	members []string
}

// readHostAccounts reads root/etc/passwd and root/etc/group. It returns what it could
// read together with the errors for what it could not.
func readHostAccounts(root string) (*hostAccounts, error) {
	acc := &hostAccounts{userByUID: map[int]string{}, homeByUID: map[int]string{},
		gidByUser: map[string]int{}, groupByGID: map[int]string{}, groups: map[string]hostGroup{}}
	var errs []error
	err := readColonFile(filepath.Join(root, "etc/passwd"), func(f []string) {
		if len(f) < 6 {
			return
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			return
		}
		if _, dup := acc.userByUID[uid]; !dup {
			acc.userByUID[uid], acc.homeByUID[uid] = f[0], f[5]
		}
		acc.gidByUser[f[0]] = gid
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("read /etc/passwd: %w", err))
	}
	err = readColonFile(filepath.Join(root, "etc/group"), func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			return
		}
		g := hostGroup{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		if _, dup := acc.groupByGID[gid]; !dup {
			acc.groupByGID[gid] = f[0]
		}
		if _, dup := acc.groups[f[0]]; !dup {
			acc.groups[f[0]] = g
		}
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("read /etc/group: %w", err))
	}
	return acc, errors.Join(errs...)
}

func readColonFile(name string, line func(fields []string)) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		t := strings.TrimSpace(sc.Text())
		if t == "" || t[0] == '#' || t[0] == '+' || t[0] == '-' {
			continue
		}
		line(strings.Split(t, ":"))
	}
	return sc.Err()
}

func (a *hostAccounts) userName(uid int) string {
	if a != nil {
		if n, ok := a.userByUID[uid]; ok {
			return n
		}
	}
	return strconv.Itoa(uid)
}

func (a *hostAccounts) groupName(gid int) string {
	if a != nil {
		if n, ok := a.groupByGID[gid]; ok {
			return n
		}
	}
	return strconv.Itoa(gid)
}

// describe renders f as "/etc/docker/daemon.json 0644 root:root", naming the link target
// when the path is a symbolic link.
func (f hostFile) describe(acc *hostAccounts) string {
	s := fmt.Sprintf("%s %04o %s:%s", f.path, f.mode, acc.userName(f.uid), acc.groupName(f.gid))
	if f.real != "" && f.real != path.Clean(f.path) {
		s += " (-> " + f.real + ")"
	}
	return s
}

// Where the daemon's files are. These take the effective configuration into account
// (data-root, hosts, containerd, config file) and, for a rootless daemon, its user.

// daemonInfoErr returns nil when Env.Info holds the daemon's answer, else why not.
func daemonInfoErr(env *Env) error {
	if env.Info.ServerVersion != "" || env.Info.ID != "" {
		return nil
	}
	if err := env.LoadErrors["docker"]; err != nil { // the key loadDocker uses for Info
		return err
	}
	return errors.New("the daemon's information was not loaded")
}

// rootlessUser is the account a rootless daemon runs as, and where its files are.
type rootlessUser struct {
	uid        int
	name       string
	home       string
	configDir  string // ~/.config/docker
	runtimeDir string // $XDG_RUNTIME_DIR
}

// rootlessLayout works out the rootless daemon's user from what the Env holds: the
// daemon.json path the loader chose (~/.config/docker/daemon.json), the data root the
// daemon reports (~/.local/share/docker), the socket it listens on
// ($XDG_RUNTIME_DIR/docker.sock) and the owner of the home directory.
func rootlessLayout(env *Env) (rootlessUser, error) {
	var u rootlessUser
	if env.Daemon.ConfigFile != "" {
		u.configDir = path.Dir(env.Daemon.ConfigFile)
		if h, ok := strings.CutSuffix(u.configDir, "/.config/docker"); ok {
			u.home = h
		}
	}
	if u.home == "" {
		if h, ok := strings.CutSuffix(env.Info.DockerRootDir, "/.local/share/docker"); ok {
			u.home = h
		}
	}
	if u.home == "" {
		return u, errors.New("the rootless daemon's user could not be determined (no daemon.json path or data root under a home directory)")
	}
	if u.configDir == "" {
		u.configDir = path.Join(u.home, ".config", "docker")
	}
	home, err := statHostFile(env.Root, u.home)
	if err != nil {
		return u, fmt.Errorf("rootless daemon's home: %w", err)
	}
	u.uid = home.uid
	acc, _ := readHostAccounts(env.Root)
	u.name = acc.userName(u.uid)
	u.runtimeDir = fmt.Sprintf("/run/user/%d", u.uid)
	for _, h := range settingList(env.Daemon.Settings["hosts"]) {
		if p, ok := strings.CutPrefix(h, "unix://"); ok && p != "" {
			u.runtimeDir = path.Dir(p)
			break
		}
	}
	return u, nil
}

// stringList reads a setting that is a list of strings (or one string).
func settingList(v any) []string {
	switch v := v.(type) {
	case string:
		if v == "" {
			return nil
		}
		return []string{v}
	case []string:
		return v
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			} else if e != nil {
				out = append(out, fmt.Sprint(e))
			}
		}
		return out
	}
	return nil
}

// settingString reads a string setting; "" when unset or not a string.
func settingString(env *Env, key string) string {
	s, _ := env.Daemon.Settings[key].(string)
	return s
}

// settingTrue reports whether a boolean setting is set to true (as a bool or a string).
func settingTrue(env *Env, key string) bool {
	b, ok := settingBool(env.Daemon.Settings[key])
	return ok && b
}

func settingBool(v any) (value, ok bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		b, err := strconv.ParseBool(v)
		return b, err == nil
	}
	return false, false
}

// dockerDataRoot is the daemon's data directory: what the daemon reports, else the
// data-root setting, else the default.
func dockerDataRoot(env *Env) string {
	if env.Info.DockerRootDir != "" {
		return env.Info.DockerRootDir
	}
	if d := settingString(env, "data-root"); d != "" {
		return d
	}
	if env.Rootless {
		if u, err := rootlessLayout(env); err == nil {
			return path.Join(u.home, ".local", "share", "docker")
		}
	}
	return "/var/lib/docker"
}

// dockerConfigDir is /etc/docker, or the rootless user's ~/.config/docker.
func dockerConfigDir(env *Env) string {
	if env.Rootless {
		if u, err := rootlessLayout(env); err == nil {
			return u.configDir
		}
	}
	// A --config-file elsewhere does not move certs.d: dockerd still uses /etc/docker.
	return "/etc/docker"
}

// systemdUnitDirs are where systemd looks for system units, highest priority first, or
// for a rootless daemon the user's unit directories.
func systemdUnitDirs(env *Env) []string {
	if env.Rootless {
		var dirs []string
		if u, err := rootlessLayout(env); err == nil {
			dirs = append(dirs, path.Join(u.home, ".config", "systemd", "user"))
		}
		return append(dirs, "/etc/systemd/user", "/usr/local/lib/systemd/user", "/usr/lib/systemd/user", "/lib/systemd/user")
	}
	return []string{"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"}
}

// unitFiles returns every copy of the named unit in the unit directories, once each
// (with a merged /usr, /lib/systemd/system and /usr/lib/systemd/system are the same),
// leaving out masked units (links to /dev/null).
func unitFiles(env *Env, unit string) []string {
	var out []string
	seen := map[string]bool{}
	for _, dir := range systemdUnitDirs(env) {
		p := path.Join(dir, unit)
		f, err := statHostFile(env.Root, p)
		if err != nil || f.char || seen[f.real] {
			continue
		}
		seen[f.real] = true
		out = append(out, p)
	}
	return out
}

// unitListenStreams returns the ListenStream paths of a socket unit file.
func unitListenStreams(root, unitPath string) []string {
	data, err := os.ReadFile(filepath.Join(root, unitPath))
	if err != nil {
		return nil
	}
	var out []string
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && strings.TrimSpace(k) == "ListenStream" {
			if v = strings.TrimSpace(v); strings.HasPrefix(v, "/") {
				out = append(out, v)
			}
		}
	}
	return out
}

// dockerSockets returns the unix sockets the daemon's API listens on: its unix:// hosts;
// for fd:// (systemd socket activation) the ListenStream of docker.socket; with no
// hosts, the default /var/run/docker.sock, or $XDG_RUNTIME_DIR/docker.sock for a
// rootless daemon. Paths naming the same file are listed once.
func dockerSockets(env *Env) []string {
	var cands []string
	hosts := settingList(env.Daemon.Settings["hosts"])
	fallback := len(hosts) == 0
	for _, h := range hosts {
		switch {
		case strings.HasPrefix(h, "unix://"):
			if p := strings.TrimPrefix(h, "unix://"); p != "" {
				cands = append(cands, p)
			}
		case strings.HasPrefix(h, "fd://"):
			units := unitFiles(env, "docker.socket")
			for _, unit := range units {
				cands = append(cands, unitListenStreams(env.Root, unit)...)
			}
			if len(units) == 0 {
				fallback = true
			}
		}
	}
	if fallback {
		if !env.Rootless {
			cands = append(cands, "/var/run/docker.sock")
		} else if u, err := rootlessLayout(env); err == nil {
			cands = append(cands, path.Join(u.runtimeDir, "docker.sock"))
		}
	}
	return dedupeHostPaths(env.Root, cands)
}

// containerdSockets returns the containerd sockets in use: the one dockerd is pointed at
// (--containerd, or what the daemon reports), the system one at
// /run/containerd/containerd.sock, and the one of a containerd that dockerd runs itself
// under its exec root. Only existing ones are returned, once each.
func containerdSockets(env *Env) []string {
	var cands []string
	if s := settingString(env, "containerd"); s != "" {
		cands = append(cands, s)
	}
	if env.Info.Containerd != nil && env.Info.Containerd.Address != "" {
		cands = append(cands, env.Info.Containerd.Address)
	}
	cands = append(cands, "/run/containerd/containerd.sock")
	execRoot := settingString(env, "exec-root")
	if execRoot == "" {
		execRoot = "/var/run/docker"
	}
	cands = append(cands, path.Join(execRoot, "containerd", "containerd.sock"))
	var out []string
	for _, p := range dedupeHostPaths(env.Root, cands) {
		if hostExists(env.Root, p) {
			out = append(out, p)
		}
	}
	return out
}

// dockerBinDirs are where the Docker and containerd binaries are installed.
var dockerBinDirs = []string{"/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/bin", "/sbin"}

// hostBinaries returns the existing copies of the named program in dockerBinDirs, once each
// (a link and its target count as one).
func hostBinaries(env *Env, name string, extra ...string) []string {
	cands := append([]string{}, extra...)
	for _, d := range dockerBinDirs {
		cands = append(cands, path.Join(d, name))
	}
	var out []string
	for _, p := range dedupeHostPaths(env.Root, cands) {
		if f, err := statHostFile(env.Root, p); err == nil && !f.dir {
			out = append(out, p)
		}
	}
	return out
}

// dedupeHostPaths drops paths that name the same file as an earlier one.
func dedupeHostPaths(root string, paths []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range paths {
		real, _ := resolveInRoot(root, p)
		if seen[real] {
			continue
		}
		seen[real] = true
		out = append(out, p)
	}
	return out
}
