package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Section 3 Docker daemon configuration files.
//
// Every control looks at one kind of file. A file that is not there is not a finding:
// the control does not apply (NOTE). For a rootless daemon the files are its user's
// (~/.config/docker, $XDG_RUNTIME_DIR/docker.sock) and are expected to be owned by that
// user; controls about files a rootless daemon does not use say so (NOTE).
var fileChecks = []Check{
	ownershipCheck("3.1", 1, true, "the docker.service unit file", dockerUnit("docker.service"),
		"chown root:root <unit file> (systemctl show -p FragmentPath docker.service names it)"),
	modeCheck("3.2", 1, true, "the docker.service unit file", 0o644, dockerUnit("docker.service"),
		"chmod 644 <unit file>"),
	ownershipCheck("3.3", 1, true, "the docker.socket unit file", dockerUnit("docker.socket"),
		"chown root:root <unit file> (systemctl show -p FragmentPath docker.socket names it)"),
	modeCheck("3.4", 1, true, "the docker.socket unit file", 0o644, dockerUnit("docker.socket"),
		"chmod 644 <unit file>"),
	ownershipCheck("3.5", 1, true, "the Docker configuration directory", configDirFile,
		"chown root:root /etc/docker"),
	modeCheck("3.6", 1, true, "the Docker configuration directory", 0o755, configDirFile,
		"chmod 755 /etc/docker"),
	ownershipCheck("3.7", 1, false, "registry certificate files", registryCertFiles,
		"chown root:root /etc/docker/certs.d/<registry>/*"),
	modeCheck("3.8", 1, false, "registry certificate files", 0o444, registryCertFiles,
		"chmod 444 /etc/docker/certs.d/<registry>/*"),
	ownershipCheck("3.9", 1, false, "the TLS CA certificate", tlsFile("tlscacert", "ca.pem"),
		"chown root:root <file named by tlscacert>"),
	modeCheck("3.10", 1, false, "the TLS CA certificate", 0o444, tlsFile("tlscacert", "ca.pem"),
		"chmod 444 <file named by tlscacert>"),
	ownershipCheck("3.11", 1, false, "the daemon's TLS certificate", tlsFile("tlscert", "cert.pem"),
		"chown root:root <file named by tlscert>"),
	modeCheck("3.12", 1, false, "the daemon's TLS certificate", 0o444, tlsFile("tlscert", "cert.pem"),
		"chmod 444 <file named by tlscert>"),
	ownershipCheck("3.13", 1, false, "the daemon's TLS private key", tlsFile("tlskey", "key.pem"),
		"chown root:root <file named by tlskey>"),
	modeCheck("3.14", 1, false, "the daemon's TLS private key", 0o400, tlsFile("tlskey", "key.pem"),
		"chmod 400 <file named by tlskey>"),
	{
		ID: "3.15", Title: "The Docker socket is owned by root and the docker group",
		Level: 1, Scored: true,
		Remediation: "chown root:docker /var/run/docker.sock, and set SocketUser=root and SocketGroup=docker " +
			"in docker.socket (or the daemon's group option) so that it stays so after a restart.",
		Run: func(_ context.Context, env *Env) Result {
			reason := "the Docker socket is not owned by root and the docker group: others may control the daemon through it"
			if env.Rootless {
				reason = "the Docker socket is not owned by the daemon's user: another account may control the daemon through it"
			}
			return judgeFiles(env, dockerSocketFiles, socketOwnerJudge(env), reason)
		},
	},
	modeCheck("3.16", 1, true, "the Docker socket", 0o660, dockerSocketFiles,
		"chmod 660 /var/run/docker.sock, and SocketMode=0660 in docker.socket"),
	ownershipCheck("3.17", 2, false, "the daemon.json file", daemonJSONFile,
		"chown root:root /etc/docker/daemon.json"),
	modeCheck("3.18", 2, false, "the daemon.json file", 0o644, daemonJSONFile,
		"chmod 644 /etc/docker/daemon.json"),
	ownershipCheck("3.19", 2, false, "/etc/default/docker", rootfulOnly("/etc/default/docker"),
		"chown root:root /etc/default/docker"),
	modeCheck("3.20", 2, false, "/etc/default/docker", 0o644, rootfulOnly("/etc/default/docker"),
		"chmod 644 /etc/default/docker"),
	modeCheck("3.21", 2, false, "/etc/sysconfig/docker", 0o644, rootfulOnly("/etc/sysconfig/docker"),
		"chmod 644 /etc/sysconfig/docker"),
	ownershipCheck("3.22", 2, false, "/etc/sysconfig/docker", rootfulOnly("/etc/sysconfig/docker"),
		"chown root:root /etc/sysconfig/docker"),
	ownershipCheck("3.23", 1, true, "the containerd socket", containerdSocketFiles,
		"chown root:root /run/containerd/containerd.sock"),
	modeCheck("3.24", 1, true, "the containerd socket", 0o660, containerdSocketFiles,
		"chmod 660 /run/containerd/containerd.sock"),
}

// fileLocator names the host files a control looks at. notApplicable, when set, says
// why the control does not apply here (NOTE); err why it cannot be checked (SKIP).
// Paths that do not exist are fine: they are reported as not present.
type fileLocator func(env *Env) (paths []string, notApplicable string, err error)

// fileJudge returns what is wrong with f (problem), or a remark worth a NOTE about a
// file that is acceptable.
type fileJudge func(acc *hostAccounts, f hostFile) (problem, remark string)

// ownershipCheck builds a control that the files are owned by root:root (by the
// daemon's user, or root, for a rootless daemon).
func ownershipCheck(id string, level int, scored bool, what string, locate fileLocator, fix string) Check {
	return Check{
		ID: id, Title: upperFirst(what) + verb(what, " is", " are") + " owned by root:root",
		Level: level, Scored: scored,
		Remediation: "Make root the owner so that no other account can change it: " + fix + ".",
		Run: func(_ context.Context, env *Env) Result {
			judge, err := ownerJudge(env)
			if err != nil {
				return skip(err.Error())
			}
			return judgeFiles(env, locate, judge,
				fmt.Sprintf("%s%s not owned by root:root: the owner can change how Docker runs", what, verb(what, " is", " are")))
		},
	}
}

// modeCheck builds a control that the files' permissions are max or stricter.
func modeCheck(id string, level int, scored bool, what string, max uint32, locate fileLocator, fix string) Check {
	return Check{
		ID: id, Title: fmt.Sprintf("%s%s permissions %04o or stricter", upperFirst(what), verb(what, " has", " have"), max),
		Level: level, Scored: scored,
		Remediation: "Remove the extra permission bits: " + fix + ".",
		Run: func(_ context.Context, env *Env) Result {
			judge := func(_ *hostAccounts, f hostFile) (string, string) {
				if extra := f.mode &^ max; extra != 0 {
					return fmt.Sprintf("mode %04o allows more than %04o", f.mode, max), ""
				}
				return "", ""
			}
			return judgeFiles(env, locate, judge,
				fmt.Sprintf("%s%s more access than %04o", what, verb(what, " allows", " allow"), max))
		},
	}
}

// judgeFiles applies judge to each file locate names and turns the findings into one
// result: WARN with the offending files, NOTE when nothing applies or no file is
// present (or all are acceptable with a remark), PASS otherwise.
func judgeFiles(env *Env, locate fileLocator, judge fileJudge, warnReason string) Result {
	paths, na, err := locate(env)
	if err != nil {
		return skip(err.Error())
	}
	if na != "" {
		return note(na)
	}
	acc, _ := readHostAccounts(env.Root) // without it, owners are shown as numbers
	var ev, absent, remarks []string
	var bad []Target
	for _, p := range paths {
		f, err := statHostFile(env.Root, p)
		if errors.Is(err, fs.ErrNotExist) {
			absent = append(absent, p)
			continue
		}
		if err != nil {
			return skip(fmt.Sprintf("cannot stat %s: %v", p, err))
		}
		problem, remark := judge(acc, f)
		switch {
		case problem != "":
			bad = append(bad, Target{Kind: "file", Name: p})
			ev = append(ev, f.describe(acc)+": "+problem)
		case remark != "":
			remarks = append(remarks, remark)
			ev = append(ev, f.describe(acc))
		default:
			ev = append(ev, f.describe(acc))
		}
	}
	if len(ev) == 0 {
		return note("not present: " + strings.Join(absent, ", "))
	}
	ev = append(ev, labelEach("not present: ", absent)...)
	if len(bad) > 0 {
		return warn(warnReason, bad, ev...)
	}
	if len(remarks) > 0 {
		return note(strings.Join(remarks, "; "), ev...)
	}
	return pass(ev...)
}

// ownerJudge expects root:root, or for a rootless daemon its user (or root).
func ownerJudge(env *Env) (fileJudge, error) {
	if !env.Rootless {
		return func(acc *hostAccounts, f hostFile) (string, string) {
			if f.uid != 0 || f.gid != 0 {
				return fmt.Sprintf("owned by %s:%s, not root:root", acc.userName(f.uid), acc.groupName(f.gid)), ""
			}
			return "", ""
		}, nil
	}
	u, err := rootlessLayout(env)
	if err != nil {
		return nil, err
	}
	return func(acc *hostAccounts, f hostFile) (string, string) {
		if f.uid != 0 && f.uid != u.uid {
			return fmt.Sprintf("owned by %s, neither root nor the daemon's user %s", acc.userName(f.uid), u.name), ""
		}
		return "", ""
	}, nil
}

// socketOwnerJudge expects the Docker socket to be root:docker (the group named by the
// daemon's group option). root:root is stricter and acceptable. A rootless daemon's
// socket belongs to its user.
func socketOwnerJudge(env *Env) fileJudge {
	if env.Rootless {
		judge, err := ownerJudge(env)
		if err != nil {
			return func(*hostAccounts, hostFile) (string, string) { return err.Error(), "" }
		}
		return judge
	}
	group := settingString(env, "group")
	if group == "" {
		group = "docker"
	}
	return func(acc *hostAccounts, f hostFile) (string, string) {
		owner := acc.userName(f.uid) + ":" + acc.groupName(f.gid)
		switch {
		case f.uid != 0:
			return "owned by " + owner + ", not root:" + group, ""
		case f.gid == 0:
			return "", "the socket is root:root, stricter than root:" + group + ": only root can use it"
		case acc.groupName(f.gid) != group:
			return "owned by " + owner + ", not root:" + group, ""
		}
		return "", ""
	}
}

// verb picks the singular or plural form for what ("the socket", "registry certificate
// files").
func verb(what, singular, plural string) string {
	if strings.HasSuffix(what, "files") {
		return plural
	}
	return singular
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// Locators.

func dockerUnit(unit string) fileLocator {
	return func(env *Env) ([]string, string, error) {
		if env.Rootless {
			if _, err := rootlessLayout(env); err != nil {
				return nil, "", err
			}
		}
		files := unitFiles(env, unit)
		if len(files) == 0 {
			return nil, fmt.Sprintf("no %s unit file on this host (looked in %s)", unit, strings.Join(systemdUnitDirs(env), ", ")), nil
		}
		return files, "", nil
	}
}

func configDirFile(env *Env) ([]string, string, error) {
	if env.Rootless {
		if _, err := rootlessLayout(env); err != nil {
			return nil, "", err
		}
	}
	return []string{dockerConfigDir(env)}, "", nil
}

// registryCertFiles are the files under certs.d in the configuration directory.
func registryCertFiles(env *Env) ([]string, string, error) {
	dir := path.Join(dockerConfigDir(env), "certs.d")
	real, err := resolveInRoot(env.Root, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "no registry certificates: " + dir + " is not present", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("resolve %s: %w", dir, err)
	}
	var files []string
	walkRoot := filepath.Join(env.Root, real)
	err = filepath.WalkDir(walkRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(walkRoot, p)
		if err != nil {
			return err
		}
		files = append(files, path.Join(dir, filepath.ToSlash(rel)))
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, "no registry certificate files under " + dir, nil
	}
	sort.Strings(files)
	return files, "", nil
}

// tlsFile locates the file named by a TLS option (tlscacert, tlscert, tlskey). When the
// option is unset but TLS is on, dockerd uses ~/.docker/<name> of its user.
func tlsFile(key, name string) fileLocator {
	return func(env *Env) ([]string, string, error) {
		o, why := lookupDaemonOpt(env, key)
		if why != "" {
			return nil, "", errors.New(why)
		}
		if p, _ := o.value.(string); p != "" {
			return []string{p}, "", nil
		}
		if !settingTrue(env, "tlsverify") && !settingTrue(env, "tls") {
			return nil, "the daemon does not use TLS (" + key + ", tls and tlsverify are not set)", nil
		}
		home := "/root"
		if env.Rootless {
			u, err := rootlessLayout(env)
			if err != nil {
				return nil, "", err
			}
			home = u.home
		} else if acc, _ := readHostAccounts(env.Root); acc != nil && acc.homeByUID[0] != "" {
			home = acc.homeByUID[0]
		}
		return []string{path.Join(home, ".docker", name)}, "", nil
	}
}

func dockerSocketFiles(env *Env) ([]string, string, error) {
	if _, why := lookupDaemonOpt(env, "hosts"); why != "" {
		return nil, "", errors.New(why)
	}
	if env.Rootless {
		if _, err := rootlessLayout(env); err != nil {
			return nil, "", err
		}
	}
	socks := dockerSockets(env)
	if len(socks) == 0 {
		return nil, "the daemon listens on no unix socket", nil
	}
	return socks, "", nil
}

func daemonJSONFile(env *Env) ([]string, string, error) {
	if env.Daemon.ConfigFile == "" {
		if err := env.LoadErrors[daemonConfigLoadKey]; err != nil {
			return nil, "", fmt.Errorf("the daemon.json location is unknown: %w", err)
		}
		return nil, "", errors.New("the daemon.json location is unknown")
	}
	if env.Rootless {
		if _, err := rootlessLayout(env); err != nil {
			return nil, "", err
		}
	}
	return []string{env.Daemon.ConfigFile}, "", nil
}

// rootfulOnly locates a file that only a rootful daemon's init scripts read.
func rootfulOnly(p string) fileLocator {
	return func(env *Env) ([]string, string, error) {
		if env.Rootless {
			return nil, "the daemon is rootless and does not read " + p, nil
		}
		return []string{p}, "", nil
	}
}

func containerdSocketFiles(env *Env) ([]string, string, error) {
	if env.Rootless {
		return nil, "the daemon is rootless: its containerd runs as the daemon's user inside its own namespace", nil
	}
	socks := containerdSockets(env)
	if len(socks) == 0 {
		return nil, "no containerd socket on this host (looked at /run/containerd/containerd.sock and under the daemon's exec root)", nil
	}
	return socks, "", nil
}
