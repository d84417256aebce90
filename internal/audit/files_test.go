package audit

import (
	"os"
	"testing"
)

type fixtureMaker func(f *hostFixture, p string, mode os.FileMode)

func regular(f *hostFixture, p string, mode os.FileMode)   { f.file(p, mode, "x") }
func directory(f *hostFixture, p string, mode os.FileMode) { f.dir(p, mode) }
func sock(f *hostFixture, p string, mode os.FileMode)      { f.socket(p, mode) }

// ownerCases are the cases of an ownership control whose file is at p.
func ownerCases(p string, create fixtureMaker, mode os.FileMode) []hostCase {
	return []hostCase{
		{name: "root:root", root: true, setup: func(f *hostFixture, env *Env) *Env { create(f, p, mode); return env },
			want: Pass, evidence: p},
		{name: "owned by alice", root: true, setup: func(f *hostFixture, env *Env) *Env {
			create(f, p, mode)
			f.chown(p, fixtureAlice, 0)
			return env
		}, want: Warn, evidence: "owned by alice:root, not root:root"},
		{name: "group docker", root: true, setup: func(f *hostFixture, env *Env) *Env {
			create(f, p, mode)
			f.chown(p, 0, fixtureDockerGr)
			return env
		}, want: Warn, evidence: "root:docker"},
		{name: "absent", want: Note},
	}
}

// modeCases are the cases of a permissions control whose file is at p and may have at
// most max.
func modeCases(p string, create fixtureMaker, max, tooOpen os.FileMode) []hostCase {
	return []hostCase{
		{name: "at most", setup: func(f *hostFixture, env *Env) *Env { create(f, p, max); return env }, want: Pass, evidence: p},
		{name: "stricter", setup: func(f *hostFixture, env *Env) *Env { create(f, p, max&0o700); return env }, want: Pass},
		{name: "too open", setup: func(f *hostFixture, env *Env) *Env { create(f, p, tooOpen); return env }, want: Warn, evidence: "allows more than"},
		{name: "setuid", setup: func(f *hostFixture, env *Env) *Env { create(f, p, max|0o4000); return env }, want: Warn},
		{name: "absent", want: Note},
	}
}

func TestUnitFiles(t *testing.T) {
	for _, unit := range []struct{ owner, mode, name string }{{"3.1", "3.2", "docker.service"}, {"3.3", "3.4", "docker.socket"}} {
		p := "/lib/systemd/system/" + unit.name
		runHostCases(t, unit.owner, append(ownerCases(p, regular, 0o644),
			hostCase{name: "override in /etc owned by alice", root: true, setup: func(f *hostFixture, env *Env) *Env {
				f.file(p, 0o644, "x")
				f.file("/etc/systemd/system/"+unit.name, 0o644, "x")
				f.chown("/etc/systemd/system/"+unit.name, fixtureAlice, fixtureAlice)
				return env
			}, want: Warn, evidence: "/etc/systemd/system/" + unit.name},
			hostCase{name: "merged /usr counts once", root: true, setup: func(f *hostFixture, env *Env) *Env {
				f.file("/usr/lib/systemd/system/"+unit.name, 0o644, "x")
				f.symlink("usr/lib", "/lib")
				return env
			}, want: Pass},
			hostCase{name: "rootless user unit", root: true, setup: func(f *hostFixture, _ *Env) *Env {
				env := f.rootlessEnv()
				up := "/home/alice/.config/systemd/user/" + unit.name
				f.file(up, 0o644, "x")
				f.chown(up, fixtureAlice, fixtureAlice)
				return env
			}, want: Pass},
			hostCase{name: "rootless user unit owned by bob", root: true, setup: func(f *hostFixture, _ *Env) *Env {
				env := f.rootlessEnv()
				up := "/home/alice/.config/systemd/user/" + unit.name
				f.file(up, 0o644, "x")
				f.chown(up, fixtureBob, fixtureDockerGr)
				return env
			}, want: Warn, evidence: "neither root nor the daemon's user alice"},
		))
		runHostCases(t, unit.mode, modeCases(p, regular, 0o644, 0o664))
	}
}

func TestConfigDir(t *testing.T) {
	runHostCases(t, "3.5", append(ownerCases("/etc/docker", directory, 0o755),
		hostCase{name: "rootless", root: true, setup: func(f *hostFixture, _ *Env) *Env {
			env := f.rootlessEnv()
			f.dir("/home/alice/.config/docker", 0o700)
			f.chown("/home/alice/.config/docker", fixtureAlice, fixtureAlice)
			return env
		}, want: Pass, evidence: "/home/alice/.config/docker 0700 alice:alice"},
		hostCase{name: "rootless user unknown", setup: func(f *hostFixture, _ *Env) *Env {
			env := f.rootlessEnv()
			env.Daemon.ConfigFile, env.Info.DockerRootDir = "", "/var/lib/docker"
			return env
		}, want: Skip},
	))
	runHostCases(t, "3.6", modeCases("/etc/docker", directory, 0o755, 0o775))
}

func TestRegistryCerts(t *testing.T) {
	certs := func(mode os.FileMode) func(*hostFixture, *Env) *Env {
		return func(f *hostFixture, env *Env) *Env {
			f.file("/etc/docker/certs.d/reg.example:5000/ca.crt", 0o444, "x")
			f.file("/etc/docker/certs.d/reg.example:5000/client.cert", mode, "x")
			return env
		}
	}
	runHostCases(t, "3.7", []hostCase{
		{name: "root:root", root: true, setup: certs(0o444), want: Pass, evidence: "/etc/docker/certs.d/reg.example:5000/client.cert 0444 root:root"},
		{name: "one owned by alice", root: true, setup: func(f *hostFixture, env *Env) *Env {
			certs(0o444)(f, env)
			f.chown("/etc/docker/certs.d/reg.example:5000/client.cert", fixtureAlice, fixtureAlice)
			return env
		}, want: Warn, evidence: "client.cert 0444 alice:alice: owned by alice:alice"},
		{name: "no certs.d", want: Note},
		{name: "empty certs.d", setup: func(f *hostFixture, env *Env) *Env { f.dir("/etc/docker/certs.d", 0o755); return env }, want: Note},
	})
	runHostCases(t, "3.8", []hostCase{
		{name: "0444", setup: certs(0o444), want: Pass},
		{name: "0400", setup: certs(0o400), want: Pass},
		{name: "0644", setup: certs(0o644), want: Warn, evidence: "client.cert"},
		{name: "no certs.d", want: Note},
	})
}

func TestTLSFiles(t *testing.T) {
	for _, c := range []struct {
		owner, mode, key, def string
		max, open             os.FileMode
	}{
		{"3.9", "3.10", "tlscacert", "ca.pem", 0o444, 0o644},
		{"3.11", "3.12", "tlscert", "cert.pem", 0o444, 0o644},
		{"3.13", "3.14", "tlskey", "key.pem", 0o400, 0o440},
	} {
		p := "/etc/docker/tls/" + c.def
		configured := func(f *hostFixture, env *Env) *Env {
			setOpt(env, c.key, p)
			setOpt(env, "tlsverify", true)
			return env
		}
		extra := []hostCase{
			{name: "TLS off", want: Note, evidence: "does not use TLS"},
			{name: "TLS on, default path", root: true, setup: func(f *hostFixture, env *Env) *Env {
				setOpt(env, "tlsverify", true)
				f.file("/root/.docker/"+c.def, c.max, "x")
				return env
			}, want: Pass, evidence: "/root/.docker/" + c.def},
			{name: "configured, file missing", setup: configured, want: Note, evidence: "not present: " + p},
			{name: "config unreadable", setup: configUnreadable, want: Skip},
		}
		var owner []hostCase
		for _, oc := range ownerCases(p, regular, c.max) {
			setup := oc.setup
			oc.setup = func(f *hostFixture, env *Env) *Env {
				configured(f, env)
				if setup != nil {
					return setup(f, env)
				}
				return env
			}
			if oc.name != "absent" {
				owner = append(owner, oc)
			}
		}
		runHostCases(t, c.owner, append(owner, extra...))
		var mode []hostCase
		for _, mc := range modeCases(p, regular, c.max, c.open) {
			setup := mc.setup
			mc.setup = func(f *hostFixture, env *Env) *Env {
				configured(f, env)
				if setup != nil {
					return setup(f, env)
				}
				return env
			}
			if mc.name != "absent" {
				mode = append(mode, mc)
			}
		}
		runHostCases(t, c.mode, append(mode, extra...))
	}
}

func TestDockerSocket(t *testing.T) {
	const p = "/run/docker.sock"
	socketUnit := func(f *hostFixture, env *Env) *Env {
		f.file("/lib/systemd/system/docker.socket", 0o644, "[Socket]\nListenStream=/run/docker.sock\nSocketGroup=docker\n")
		return env
	}
	owned := func(uid, gid int) func(*hostFixture, *Env) *Env {
		return func(f *hostFixture, env *Env) *Env {
			socketUnit(f, env)
			f.socket(p, 0o660)
			f.chown(p, uid, gid)
			return env
		}
	}
	runHostCases(t, "3.15", []hostCase{
		{name: "root:docker", root: true, setup: owned(0, fixtureDockerGr), want: Pass, evidence: "/run/docker.sock 0660 root:docker"},
		{name: "root:root is stricter", root: true, setup: owned(0, 0), want: Note, evidence: "stricter"},
		{name: "alice:docker", root: true, setup: owned(fixtureAlice, fixtureDockerGr), want: Warn},
		{name: "root:staff", root: true, setup: owned(0, fixtureStaffGr), want: Warn, evidence: "not root:docker"},
		{name: "group option staff", root: true, setup: func(f *hostFixture, env *Env) *Env {
			owned(0, fixtureStaffGr)(f, env)
			setOpt(env, "group", "staff")
			return env
		}, want: Pass},
		{name: "default socket without unit", root: true, setup: func(f *hostFixture, env *Env) *Env {
			delete(env.Daemon.Settings, "hosts")
			f.socket("/var/run/docker.sock", 0o660)
			f.chown("/var/run/docker.sock", 0, fixtureDockerGr)
			return env
		}, want: Pass, evidence: "/var/run/docker.sock"},
		{name: "TCP only", setup: func(_ *hostFixture, env *Env) *Env {
			env.Daemon.Settings["hosts"] = []any{"tcp://127.0.0.1:2376"}
			return env
		}, want: Note},
		{name: "absent", setup: socketUnit, want: Note},
		{name: "rootless", root: true, setup: func(f *hostFixture, _ *Env) *Env {
			env := f.rootlessEnv()
			f.socket("/run/user/1000/docker.sock", 0o660)
			f.chown("/run/user/1000/docker.sock", fixtureAlice, fixtureAlice)
			return env
		}, want: Pass, evidence: "/run/user/1000/docker.sock 0660 alice:alice"},
		{name: "config unreadable", setup: func(f *hostFixture, env *Env) *Env {
			delete(env.Daemon.Settings, "hosts")
			return configUnreadable(f, env)
		}, want: Skip},
	})
	withUnit := func(f *hostFixture, p string, mode os.FileMode) {
		socketUnit(f, nil)
		sock(f, p, mode)
	}
	runHostCases(t, "3.16", append(modeCases(p, withUnit, 0o660, 0o666)[:4],
		hostCase{name: "absent", setup: socketUnit, want: Note}))
}

func TestDaemonJSONFile(t *testing.T) {
	p := defaultDaemonJSON
	runHostCases(t, "3.17", append(ownerCases(p, regular, 0o644),
		hostCase{name: "location unknown", setup: func(f *hostFixture, env *Env) *Env {
			env.Daemon.ConfigFile = ""
			return env
		}, want: Skip},
		hostCase{name: "rootless", root: true, setup: func(f *hostFixture, _ *Env) *Env {
			env := f.rootlessEnv()
			f.file("/home/alice/.config/docker/daemon.json", 0o600, "{}")
			f.chown("/home/alice/.config/docker/daemon.json", fixtureAlice, fixtureAlice)
			return env
		}, want: Pass, evidence: "/home/alice/.config/docker/daemon.json 0600 alice:alice"},
	))
	runHostCases(t, "3.18", modeCases(p, regular, 0o644, 0o666))
}

func TestInitDefaultsFiles(t *testing.T) {
	rootless := hostCase{name: "rootless", setup: func(f *hostFixture, _ *Env) *Env { return f.rootlessEnv() }, want: Note, evidence: "rootless"}
	for _, c := range []struct{ owner, mode, path string }{
		{"3.19", "3.20", "/etc/default/docker"},
		{"3.22", "3.21", "/etc/sysconfig/docker"},
	} {
		runHostCases(t, c.owner, append(ownerCases(c.path, regular, 0o644), rootless))
		runHostCases(t, c.mode, append(modeCases(c.path, regular, 0o644, 0o646), rootless))
	}
}

func TestContainerdSocket(t *testing.T) {
	rootless := hostCase{name: "rootless", setup: func(f *hostFixture, _ *Env) *Env { return f.rootlessEnv() }, want: Note}
	runHostCases(t, "3.23", append(ownerCases("/run/containerd/containerd.sock", sock, 0o660), rootless,
		hostCase{name: "dockerd's own containerd", root: true, setup: func(f *hostFixture, env *Env) *Env {
			f.socket("/var/run/docker/containerd/containerd.sock", 0o660)
			f.chown("/var/run/docker/containerd/containerd.sock", 0, fixtureDockerGr)
			return env
		}, want: Warn, evidence: "/var/run/docker/containerd/containerd.sock"}))
	runHostCases(t, "3.24", append(modeCases("/run/containerd/containerd.sock", sock, 0o660, 0o666), rootless))
}
