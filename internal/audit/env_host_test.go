package audit

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// fakeProc is a /proc tree with the files loadDaemonConfig reads.
type fakeProc struct {
	t    *testing.T
	root string
}

func newFakeProc(t *testing.T) *fakeProc {
	p := &fakeProc{t: t, root: t.TempDir()}
	// PID 1 is unreadable in some sandboxes: its files are directories here, so that
	// reading them fails even for root.
	for _, f := range []string{"comm", "cmdline", "status"} {
		if err := os.MkdirAll(filepath.Join(p.root, "1", f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p.process(77, "bash", 0, []string{"/bin/bash"}, nil)
	// Not processes.
	if err := os.MkdirAll(filepath.Join(p.root, "self", "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.root, "uptime"), []byte("1.0 1.0\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *fakeProc) process(pid int, comm string, uid int, argv, environ []string) {
	p.t.Helper()
	dir := filepath.Join(p.root, strconv.Itoa(pid))
	files := map[string]string{
		"comm":    comm + "\n",
		"cmdline": strings.Join(argv, "\x00") + "\x00",
		"status":  "Name:\t" + comm + "\nUid:\t" + strconv.Itoa(uid) + "\t" + strconv.Itoa(uid) + "\t" + strconv.Itoa(uid) + "\t" + strconv.Itoa(uid) + "\nGid:\t0\t0\t0\t0\n",
	}
	if environ != nil {
		files["environ"] = strings.Join(environ, "\x00") + "\x00"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o444); err != nil {
			p.t.Fatal(err)
		}
	}
}

func TestLoadDaemonConfig(t *testing.T) {
	t.Run("cmdline over daemon.json", func(t *testing.T) {
		f := newHostFixture(t)
		f.file("/etc/docker/daemon.json", 0o644, `{"icc": true, "log-level": "debug", "live-restore": true,
			"insecure-registries": ["reg.local:5000"], "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 64000, "Hard": 64000}}}`)
		proc := newFakeProc(t)
		proc.process(900, "dockerd", 0, []string{"/usr/bin/dockerd", "-H", "fd://", "--icc=false",
			"--log-level", "info", "--containerd=/run/containerd/containerd.sock"}, nil)

		cfg, err := loadDaemonConfig(f.root, proc.root, false)
		if err != nil {
			t.Fatal(err)
		}
		if !cfg.Found || cfg.ConfigFile != "/etc/docker/daemon.json" {
			t.Errorf("Found %v, ConfigFile %q", cfg.Found, cfg.ConfigFile)
		}
		want := map[string]any{
			"icc": false, "log-level": "info", "live-restore": true, "hosts": []any{"fd://"},
			"containerd": "/run/containerd/containerd.sock", "insecure-registries": []any{"reg.local:5000"},
			"default-ulimits": map[string]any{"nofile": map[string]any{"Name": "nofile", "Soft": 64000.0, "Hard": 64000.0}},
		}
		if !reflect.DeepEqual(cfg.Settings, want) {
			t.Errorf("Settings\n got %#v\nwant %#v", cfg.Settings, want)
		}
		wantSources := map[string]string{"icc": "cmdline", "log-level": "cmdline", "live-restore": "daemon.json",
			"hosts": "cmdline", "containerd": "cmdline", "insecure-registries": "daemon.json", "default-ulimits": "daemon.json"}
		if !reflect.DeepEqual(cfg.Sources, wantSources) {
			t.Errorf("Sources %v, want %v", cfg.Sources, wantSources)
		}
		if len(cfg.Cmdline) != 7 || cfg.Cmdline[0] != "/usr/bin/dockerd" {
			t.Errorf("Cmdline %q", cfg.Cmdline)
		}
	})

	t.Run("config-file flag", func(t *testing.T) {
		f := newHostFixture(t)
		f.file("/srv/docker.json", 0o644, `{"userland-proxy": false}`)
		f.file("/etc/docker/daemon.json", 0o644, `{"userland-proxy": true}`)
		proc := newFakeProc(t)
		proc.process(900, "dockerd", 0, []string{"dockerd", "--config-file", "/srv/docker.json"}, nil)
		cfg, err := loadDaemonConfig(f.root, proc.root, false)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ConfigFile != "/srv/docker.json" || cfg.Settings["userland-proxy"] != false {
			t.Errorf("ConfigFile %q, Settings %v", cfg.ConfigFile, cfg.Settings)
		}
	})

	t.Run("no daemon.json", func(t *testing.T) {
		f := newHostFixture(t)
		proc := newFakeProc(t)
		proc.process(900, "dockerd", 0, []string{"dockerd"}, []string{"DOCKER_TLS_VERIFY=1", "PATH=/usr/bin"})
		cfg, err := loadDaemonConfig(f.root, proc.root, false)
		if err != nil {
			t.Fatal(err)
		}
		if !cfg.Found || len(cfg.Settings) != 1 || cfg.Settings["tlsverify"] != true || cfg.Sources["tlsverify"] != fromEnvironment {
			t.Errorf("Found %v, Settings %v, Sources %v", cfg.Found, cfg.Settings, cfg.Sources)
		}
	})

	t.Run("malformed daemon.json", func(t *testing.T) {
		f := newHostFixture(t)
		f.file("/etc/docker/daemon.json", 0o644, `{"icc": false,`)
		proc := newFakeProc(t)
		proc.process(900, "dockerd", 0, []string{"dockerd", "--no-new-privileges"}, nil)
		cfg, err := loadDaemonConfig(f.root, proc.root, false)
		if err == nil || !strings.Contains(err.Error(), "parse /etc/docker/daemon.json") {
			t.Fatalf("err = %v, want a parse error", err)
		}
		if !cfg.Found || cfg.Settings["no-new-privileges"] != true || len(cfg.Settings) != 1 {
			t.Errorf("the command line's settings should survive: %+v", cfg)
		}
		// Checks SKIP on what only daemon.json could say, and still judge the command line.
		env := f.env()
		env.Daemon, env.LoadErrors[daemonConfigLoadKey] = cfg, err
		if r := checkICC(t.Context(), env); r.Status != Skip || !strings.Contains(r.Reason, "parse") {
			t.Errorf("2.2 = %s %q, want SKIP with the parse error", r.Status, r.Reason)
		}
		if r := checkNoNewPrivileges(t.Context(), env); r.Status != Pass {
			t.Errorf("2.15 = %s %q, want PASS from the command line", r.Status, r.Reason)
		}
	})

	t.Run("empty daemon.json", func(t *testing.T) {
		f := newHostFixture(t)
		f.file("/etc/docker/daemon.json", 0o644, "\n")
		cfg, err := loadDaemonConfig(f.root, newFakeProc(t).root, false)
		if err != nil || !cfg.Found || len(cfg.Settings) != 0 {
			t.Errorf("cfg %+v, err %v", cfg, err)
		}
	})

	t.Run("no dockerd, daemon.json only", func(t *testing.T) {
		f := newHostFixture(t)
		f.file("/etc/docker/daemon.json", 0o644, `{"icc": false}`)
		cfg, err := loadDaemonConfig(f.root, newFakeProc(t).root, false)
		if err != nil || !cfg.Found || cfg.Cmdline != nil || cfg.Settings["icc"] != false {
			t.Errorf("cfg %+v, err %v", cfg, err)
		}
	})

	t.Run("nothing found", func(t *testing.T) {
		f := newHostFixture(t)
		cfg, err := loadDaemonConfig(f.root, newFakeProc(t).root, false)
		if err == nil || cfg.Found {
			t.Errorf("cfg %+v, err %v: want not found and an error saying so", cfg, err)
		}
	})

	t.Run("no proc", func(t *testing.T) {
		f := newHostFixture(t)
		_, err := loadDaemonConfig(f.root, filepath.Join(f.root, "no-proc"), false)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v, want not exist", err)
		}
	})

	t.Run("dockerd command line unreadable", func(t *testing.T) {
		f := newHostFixture(t)
		f.file("/etc/docker/daemon.json", 0o644, `{}`)
		proc := newFakeProc(t)
		proc.process(900, "dockerd", 0, []string{"dockerd"}, nil)
		cmdline := filepath.Join(proc.root, "900", "cmdline")
		if err := os.Remove(cmdline); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(cmdline, 0o755); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadDaemonConfig(f.root, proc.root, false)
		if err == nil || !strings.Contains(err.Error(), "command line") || !cfg.Found {
			t.Errorf("cfg %+v, err %v: want the daemon.json found and an error about the command line", cfg, err)
		}
	})

	t.Run("rootless", func(t *testing.T) {
		f := newHostFixture(t)
		f.file("/home/alice/.config/docker/daemon.json", 0o600, `{"experimental": true}`)
		f.file("/etc/docker/daemon.json", 0o644, `{"experimental": false}`)
		proc := newFakeProc(t)
		// A rootful dockerd runs too; the rootless audit wants alice's.
		proc.process(800, "dockerd", 0, []string{"/usr/bin/dockerd", "-H", "fd://"}, nil)
		proc.process(900, "dockerd", fixtureAlice, []string{"dockerd"}, []string{"HOME=/home/alice", "XDG_RUNTIME_DIR=/run/user/1000"})
		cfg, err := loadDaemonConfig(f.root, proc.root, true)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ConfigFile != "/home/alice/.config/docker/daemon.json" || cfg.Settings["experimental"] != true {
			t.Errorf("ConfigFile %q, Settings %v", cfg.ConfigFile, cfg.Settings)
		}
		// And the rootful audit wants root's.
		cfg, err = loadDaemonConfig(f.root, proc.root, false)
		if err != nil || cfg.ConfigFile != defaultDaemonJSON || cfg.Settings["experimental"] != false {
			t.Errorf("rootful: ConfigFile %q, Settings %v, err %v", cfg.ConfigFile, cfg.Settings, err)
		}
	})

	t.Run("rootless with XDG_CONFIG_HOME, home from passwd", func(t *testing.T) {
		f := newHostFixture(t)
		f.file("/srv/alice-config/docker/daemon.json", 0o600, `{"icc": false}`)
		proc := newFakeProc(t)
		proc.process(900, "dockerd", fixtureAlice, []string{"dockerd"}, []string{"XDG_CONFIG_HOME=/srv/alice-config"})
		cfg, err := loadDaemonConfig(f.root, proc.root, true)
		if err != nil || cfg.ConfigFile != "/srv/alice-config/docker/daemon.json" {
			t.Errorf("ConfigFile %q, err %v", cfg.ConfigFile, err)
		}
		proc.process(901, "dockerd", fixtureBob, []string{"dockerd"}, nil)
		if err := os.RemoveAll(filepath.Join(proc.root, "900")); err != nil {
			t.Fatal(err)
		}
		cfg, _ = loadDaemonConfig(f.root, proc.root, true)
		if cfg.ConfigFile != "/home/bob/.config/docker/daemon.json" {
			t.Errorf("ConfigFile %q, want bob's from /etc/passwd", cfg.ConfigFile)
		}
	})
}

func TestParseDockerdArgs(t *testing.T) {
	tests := []struct {
		name       string
		argv       []string
		want       map[string]any
		configFile string
	}{
		{"forms of values", []string{"dockerd", "--log-level", "warn", "--userns-remap=default", "-H", "unix:///var/run/docker.sock",
			"-Htcp://0.0.0.0:2376", "-H=fd://", "--host=tcp://127.0.0.1:2375"},
			map[string]any{"log-level": "warn", "userns-remap": "default",
				"hosts": []any{"unix:///var/run/docker.sock", "tcp://0.0.0.0:2376", "fd://", "tcp://127.0.0.1:2375"}}, ""},
		{"booleans", []string{"dockerd", "--icc=false", "--iptables=true", "--live-restore", "--no-new-privileges",
			"--userland-proxy=false", "--experimental", "--tlsverify", "-D", "--selinux-enabled"},
			map[string]any{"icc": false, "iptables": true, "live-restore": true, "no-new-privileges": true,
				"userland-proxy": false, "experimental": true, "tlsverify": true, "debug": true, "selinux-enabled": true}, ""},
		{"a bool flag does not take the next word", []string{"dockerd", "--icc", "--log-level", "info"},
			map[string]any{"icc": true, "log-level": "info"}, ""},
		{"repeatable", []string{"dockerd", "--insecure-registry", "a:5000", "--insecure-registry=10.0.0.0/8",
			"--authorization-plugin", "authz", "--storage-opt", "dm.basesize=20G", "--log-opt", "max-size=10m", "--log-opt", "max-file=3",
			"--default-ulimit", "nofile=1024:2048", "--default-ulimit", "nproc=512"},
			map[string]any{"insecure-registries": []any{"a:5000", "10.0.0.0/8"}, "authorization-plugins": []any{"authz"},
				"storage-opts": []any{"dm.basesize=20G"}, "log-opts": map[string]any{"max-size": "10m", "max-file": "3"},
				"default-ulimits": map[string]any{
					"nofile": map[string]any{"Name": "nofile", "Soft": 1024.0, "Hard": 2048.0},
					"nproc":  map[string]any{"Name": "nproc", "Soft": 512.0, "Hard": 512.0},
				}}, ""},
		{"short flags and renames", []string{"dockerd", "-l", "error", "-G", "staff", "-g", "/data/docker", "-s", "overlay2",
			"--config-file=/srv/d.json", "--seccomp-profile", "/etc/docker/seccomp.json", "--cgroup-parent", "/docker",
			"--log-driver", "syslog", "--tlscacert", "/ca.pem"},
			map[string]any{"log-level": "error", "group": "staff", "data-root": "/data/docker", "storage-driver": "overlay2",
				"seccomp-profile": "/etc/docker/seccomp.json", "cgroup-parent": "/docker", "log-driver": "syslog", "tlscacert": "/ca.pem"},
			"/srv/d.json"},
		{"odd input", []string{"dockerd", "stray", "-x", "--", "--icc=false"}, map[string]any{}, ""},
		{"a value may start with a dash", []string{"dockerd", "--bip", "--", "--icc=false"},
			map[string]any{"bip": "--", "icc": false}, ""},
		{"missing value at the end", []string{"dockerd", "--log-level"}, map[string]any{}, ""},
		{"unparsable values kept", []string{"dockerd", "--icc=maybe", "--default-ulimit", "nofile=lots"},
			map[string]any{"icc": "maybe", "default-ulimits": map[string]any{"nofile": "lots"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, configFile := parseDockerdArgs(tc.argv)
			if !reflect.DeepEqual(got, tc.want) || configFile != tc.configFile {
				t.Errorf("parseDockerdArgs(%q)\n got %#v, %q\nwant %#v, %q", tc.argv, got, configFile, tc.want, tc.configFile)
			}
		})
	}
}

func TestResolveInRoot(t *testing.T) {
	f := newHostFixture(t)
	f.file("/usr/sbin/runc", 0o755, "x")
	f.symlink("../sbin/runc", "/usr/bin/runc")
	f.symlink("usr/bin", "/bin")
	f.symlink("/run", "/var/run") // absolute: must stay inside the root
	f.dir("/run/docker", 0o755)
	f.symlink("loop2", "/loop1")
	f.symlink("loop1", "/loop2")
	tests := []struct {
		in, want string
		err      error
	}{
		{"/bin/runc", "/usr/sbin/runc", nil},
		{"/var/run/docker", "/run/docker", nil},
		{"/var/run/docker/../docker/./", "/run/docker", nil},
		{"/var/run/missing/x", "/run/missing/x", fs.ErrNotExist},
		{"/loop1", "", nil}, // too many links: only the error matters
	}
	for _, tc := range tests {
		got, err := resolveInRoot(f.root, tc.in)
		if tc.in == "/loop1" {
			if err == nil {
				t.Errorf("resolveInRoot(%q): want an error for a link loop", tc.in)
			}
			continue
		}
		if got != tc.want || (tc.err == nil) != (err == nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
			t.Errorf("resolveInRoot(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestReadHostAccounts(t *testing.T) {
	f := newHostFixture(t)
	f.file("/etc/group", 0o644, fixtureGroup+"# comment\n+nis\nbroken\n")
	acc, err := readHostAccounts(f.root)
	if err != nil {
		t.Fatal(err)
	}
	if acc.userName(fixtureAlice) != "alice" || acc.userName(4242) != "4242" || acc.groupName(fixtureDockerGr) != "docker" ||
		acc.homeByUID[fixtureBob] != "/home/bob" || acc.gidByUser["bob"] != fixtureDockerGr {
		t.Errorf("accounts %+v", acc)
	}
	if g := acc.groups["docker"]; !reflect.DeepEqual(g.members, []string{"alice"}) {
		t.Errorf("docker group %+v", g)
	}
	f.remove("/etc/passwd")
	if acc, err := readHostAccounts(f.root); err == nil || acc.groupName(0) != "root" {
		t.Errorf("without passwd: %v, %v; want the groups and an error", acc, err)
	}
}

func TestStatusUID(t *testing.T) {
	for in, want := range map[string]int{
		"Name:\tdockerd\nUid:\t1000\t1000\t1000\t1000\n": 1000,
		"Uid:\t0\t0\t0\t0": 0,
		"Name:\tx\n":       -1,
		"Uid:\tx":          -1,
		"Uid:":             -1,
	} {
		if got := statusUID([]byte(in)); got != want {
			t.Errorf("statusUID(%q) = %d, want %d", in, got, want)
		}
	}
}
