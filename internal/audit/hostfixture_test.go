package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/moby/api/types/system"
)

// Accounts of the fixture host (its /etc/passwd and /etc/group).
const (
	fixtureAlice    = 1000 // in the docker group
	fixtureBob      = 1001 // primary group docker
	fixtureDockerGr = 2000
	fixtureStaffGr  = 3000
)

const fixturePasswd = `root:x:0:0:root:/root:/bin/bash
alice:x:1000:1000:Alice:/home/alice:/bin/bash
bob:x:1001:2000:Bob:/home/bob:/bin/bash
`

const fixtureGroup = `root:x:0:
alice:x:1000:
docker:x:2000:alice
staff:x:3000:
`

// hostFixture is a host filesystem under a temporary directory, for the checks of
// sections 1 to 3.
type hostFixture struct {
	t    *testing.T
	root string
}

func newHostFixture(t *testing.T) *hostFixture {
	t.Helper()
	f := &hostFixture{t: t, root: t.TempDir()}
	f.file("/etc/passwd", 0o644, fixturePasswd)
	f.file("/etc/group", 0o644, fixtureGroup)
	return f
}

// file writes a host file with the given mode (set with chmod, so the umask does not
// interfere), creating its directories.
func (f *hostFixture) file(p string, mode os.FileMode, content string) {
	f.t.Helper()
	full := f.path(p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
		f.t.Fatal(err)
	}
	f.chmod(p, mode)
}

func (f *hostFixture) dir(p string, mode os.FileMode) {
	f.t.Helper()
	if err := os.MkdirAll(f.path(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	f.chmod(p, mode)
}

// socket makes a unix socket inode (no one listens on it; the checks only stat it).
func (f *hostFixture) socket(p string, mode os.FileMode) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(f.path(p)), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := syscall.Mknod(f.path(p), syscall.S_IFSOCK|0o600, 0); err != nil {
		f.t.Fatal(err)
	}
	f.chmod(p, mode)
}

func (f *hostFixture) symlink(target, p string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(f.path(p)), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Symlink(target, f.path(p)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *hostFixture) chmod(p string, mode os.FileMode) {
	f.t.Helper()
	// os.Chmod takes Go's mode bits; the set-id and sticky bits need their own flags.
	m := mode.Perm()
	if mode&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if mode&0o1000 != 0 {
		m |= os.ModeSticky
	}
	if err := os.Chmod(f.path(p), m); err != nil {
		f.t.Fatal(err)
	}
}

// chown needs root; tests that use it call needRoot first.
func (f *hostFixture) chown(p string, uid, gid int) {
	f.t.Helper()
	if err := os.Lchown(f.path(p), uid, gid); err != nil {
		f.t.Fatal(err)
	}
}

func (f *hostFixture) remove(p string) {
	f.t.Helper()
	if err := os.RemoveAll(f.path(p)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *hostFixture) path(p string) string { return filepath.Join(f.root, p) }

// env returns an Env for a rootful daemon on the fixture host: the daemon answered
// (overlay2, json-file, seccomp default) and its configuration was found with nothing
// set.
func (f *hostFixture) env() *Env {
	return &Env{
		Root: f.root,
		Info: system.Info{
			ID: "DAEMON-ID", Name: "fixture-host", ServerVersion: "28.0.0", Driver: "overlay2",
			LoggingDriver: "json-file", DockerRootDir: "/var/lib/docker",
			SecurityOptions: []string{"name=seccomp,profile=builtin"},
			OperatingSystem: "Debian GNU/Linux 12 (bookworm)", KernelVersion: "6.1.0",
		},
		ServerVersion: "28.0.0",
		APIVersion:    "1.48",
		Daemon: DaemonConfig{Found: true, ConfigFile: defaultDaemonJSON, Cmdline: []string{"/usr/bin/dockerd", "-H", "fd://"},
			Settings: map[string]any{"hosts": []any{"fd://"}}, Sources: map[string]string{"hosts": fromCmdline}},
		LoadErrors: map[string]error{},
	}
}

// rootlessEnv is env for a daemon run rootless by alice.
func (f *hostFixture) rootlessEnv() *Env {
	env := f.env()
	env.Rootless = true
	env.Info.SecurityOptions = append(env.Info.SecurityOptions, "name=rootless")
	env.Info.DockerRootDir = "/home/alice/.local/share/docker"
	env.Daemon.ConfigFile = "/home/alice/.config/docker/daemon.json"
	env.Daemon.Cmdline = []string{"dockerd"}
	env.Daemon.Settings, env.Daemon.Sources = map[string]any{}, map[string]string{}
	if _, err := os.Stat(f.path("/home/alice")); err != nil {
		f.dir("/home/alice", 0o700)
	}
	if os.Geteuid() == 0 {
		f.chown("/home/alice", fixtureAlice, fixtureAlice)
	}
	return env
}

// setOpt sets a daemon option as if it came from daemon.json.
func setOpt(env *Env, key string, value any) {
	env.Daemon.Settings[key], env.Daemon.Sources[key] = value, fromDaemonJSON
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests chown fixture files: run them as root (make test does)")
	}
}

// checkByID returns the check of sections 1 to 3 with the given id.
func checkByID(t *testing.T, id string) Check {
	t.Helper()
	for _, section := range [][]Check{hostChecks, daemonChecks, fileChecks} {
		for _, c := range section {
			if c.ID == id {
				return c
			}
		}
	}
	t.Fatalf("no check %s", id)
	return Check{}
}

// hostCase is one case of a check's table: setup prepares the fixture and the Env, want
// is the expected status and evidence (if set) a substring of one evidence line or of
// the reason.
type hostCase struct {
	name     string
	setup    func(f *hostFixture, env *Env) *Env
	want     Status
	evidence string
	root     bool // needs root (chown)
}

func runHostCases(t *testing.T, id string, cases []hostCase) {
	t.Helper()
	c := checkByID(t, id)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				needRoot(t)
			}
			f := newHostFixture(t)
			env := f.env()
			if tc.setup != nil {
				if e := tc.setup(f, env); e != nil {
					env = e
				}
			}
			r := c.Run(context.Background(), env)
			if r.Status != tc.want {
				t.Fatalf("%s: status %s, want %s (reason %q, evidence %q)", id, r.Status, tc.want, r.Reason, r.Evidence)
			}
			if r.Status != Pass && r.Reason == "" {
				t.Errorf("%s: %s without a reason", id, r.Status)
			}
			if r.Status == Warn && (len(r.Evidence) == 0 || len(r.Targets) == 0) {
				t.Errorf("%s: WARN without evidence or targets: %+v", id, r)
			}
			if tc.evidence != "" && !strings.Contains(r.Reason+"\n"+strings.Join(r.Evidence, "\n"), tc.evidence) {
				t.Errorf("%s: %q not in reason %q or evidence %q", id, tc.evidence, r.Reason, r.Evidence)
			}
		})
	}
}
