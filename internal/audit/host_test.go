package audit

import (
	"reflect"
	"testing"
)

// mountinfo lines of the fixture host.
const (
	mountRoot        = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
	mountProc        = "23 22 0:21 / /proc rw,relatime - proc proc rw\n"
	mountDockerOwn   = "30 22 254:16 / /var/lib/docker rw,relatime shared:9 - xfs /dev/mapper/vg-docker rw\n"
	mountDockerBind  = "31 22 254:0 /srv/docker /var/lib/docker rw,relatime - ext4 /dev/vda rw\n"
	mountVar         = "24 22 254:1 / /var rw,relatime - ext4 /dev/vdb rw\n"
	mountEscapedPath = "32 22 254:32 / /mnt/data\\040disk rw - ext4 /dev/vdc rw\n"
)

func withMounts(mountinfo string) func(*hostFixture, *Env) *Env {
	return func(f *hostFixture, env *Env) *Env {
		f.dir("/var/lib/docker", 0o710)
		f.file("/proc/self/mountinfo", 0o444, mountinfo)
		return env
	}
}

func TestDataPartition(t *testing.T) {
	runHostCases(t, "1.1.1", []hostCase{
		{name: "own filesystem", setup: withMounts(mountRoot + mountProc + mountDockerOwn), want: Pass, evidence: "/dev/mapper/vg-docker"},
		{name: "on the root filesystem", setup: withMounts(mountRoot + mountProc), want: Warn, evidence: "mounted at / (ext4 /dev/vda)"},
		{name: "on /var", setup: withMounts(mountRoot + mountVar), want: Warn, evidence: "/var (ext4 /dev/vdb)"},
		{name: "bind mount of the root filesystem", setup: withMounts(mountRoot + mountDockerBind), want: Warn, evidence: "same filesystem"},
		{name: "proc/mounts fallback", setup: func(f *hostFixture, env *Env) *Env {
			f.dir("/var/lib/docker", 0o710)
			f.file("/proc/mounts", 0o444, "/dev/vda / ext4 rw 0 0\n/dev/vdc /var/lib/docker xfs rw 0 0\n")
			return env
		}, want: Pass},
		{name: "data-root elsewhere", setup: func(f *hostFixture, env *Env) *Env {
			env.Info.DockerRootDir = "/mnt/data disk/docker"
			f.dir("/mnt/data disk/docker", 0o710)
			f.file("/proc/self/mountinfo", 0o444, mountRoot+mountEscapedPath)
			return env
		}, want: Warn, evidence: "/mnt/data disk (ext4 /dev/vdc)"},
		{name: "data root is a link to its own filesystem", setup: func(f *hostFixture, env *Env) *Env {
			f.dir("/srv/docker", 0o710)
			f.symlink("/srv/docker", "/var/lib/docker")
			f.file("/proc/self/mountinfo", 0o444, mountRoot+"40 22 254:48 / /srv/docker rw - ext4 /dev/vdd rw\n")
			return env
		}, want: Pass},
		{name: "init's mount table first", setup: func(f *hostFixture, env *Env) *Env {
			withMounts(mountRoot)(f, env)
			f.file("/proc/1/mountinfo", 0o444, mountRoot+mountDockerOwn)
			return env
		}, want: Pass},
		{name: "no data root", want: Note},
		{name: "no mount table", setup: func(f *hostFixture, env *Env) *Env { f.dir("/var/lib/docker", 0o710); return env }, want: Skip},
	})
}

func TestParseMountinfo(t *testing.T) {
	got := parseMountinfo(mountDockerOwn + "bad line\n" + mountEscapedPath)
	want := []mountEntry{
		{dev: "254:16", point: "/var/lib/docker", fstype: "xfs", source: "/dev/mapper/vg-docker"},
		{dev: "254:32", point: "/mnt/data disk", fstype: "ext4", source: "/dev/vdc"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseMountinfo = %+v, want %+v", got, want)
	}
}

func TestDockerGroup(t *testing.T) {
	runHostCases(t, "1.1.2", []hostCase{
		{name: "members and primary group", want: Info, evidence: "group docker (gid 2000): alice, bob"},
		{name: "no members", setup: func(f *hostFixture, env *Env) *Env {
			f.file("/etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/bash\n")
			f.file("/etc/group", 0o644, "root:x:0:\ndocker:x:2000:\n")
			return env
		}, want: Pass, evidence: "no members"},
		{name: "no docker group", setup: func(f *hostFixture, env *Env) *Env {
			f.file("/etc/group", 0o644, "root:x:0:\n")
			return env
		}, want: Note},
		{name: "group named by the daemon's group option", setup: func(f *hostFixture, env *Env) *Env {
			setOpt(env, "group", "staff")
			return env
		}, want: Pass, evidence: "group staff (gid 3000)"},
		{name: "rootless", setup: func(f *hostFixture, _ *Env) *Env { return f.rootlessEnv() }, want: Note, evidence: "alice, bob"},
		{name: "no group file", setup: func(f *hostFixture, env *Env) *Env { f.remove("/etc/group"); return env }, want: Skip},
	})
}

// Audit rules of the fixture host.
const dockerRules = `# Docker (CIS 1.1)
-w /usr/bin/dockerd -p wa -k docker
-a always,exit -F path=/run/containerd -F perm=war -k docker
-a exit,always -F dir=/var/lib/docker -F perm=war -k docker
-a never,exit -F dir=/var/lib/docker/overlay2
-w /etc/docker -p wa -k docker
-w /var/run/docker.sock -k docker
`

func withRules(rules string) func(*hostFixture, *Env) *Env {
	return func(f *hostFixture, env *Env) *Env {
		f.file("/etc/audit/rules.d/docker.rules", 0o640, rules)
		return env
	}
}

func TestAuditRules(t *testing.T) {
	dockerd := func(f *hostFixture, env *Env) *Env {
		f.file("/usr/bin/dockerd", 0o755, "ELF")
		return env
	}
	both := func(a, b func(*hostFixture, *Env) *Env) func(*hostFixture, *Env) *Env {
		return func(f *hostFixture, env *Env) *Env { return b(f, a(f, env)) }
	}
	runHostCases(t, "1.1.3", []hostCase{
		{name: "watched", setup: both(dockerd, withRules(dockerRules)), want: Pass, evidence: "-w /usr/bin/dockerd -p wa -k docker"},
		{name: "not watched", setup: both(dockerd, withRules("-w /etc/docker -k docker\n")), want: Warn, evidence: "/usr/bin/dockerd: no audit rule"},
		{name: "no audit rules at all", setup: dockerd, want: Warn, evidence: "auditd is not installed"},
		{name: "compiled audit.rules", setup: both(dockerd, func(f *hostFixture, env *Env) *Env {
			f.file("/etc/audit/audit.rules", 0o640, "-D\n-w /usr/bin/dockerd -k docker\n")
			return env
		}), want: Pass, evidence: "/etc/audit/audit.rules"},
		{name: "merged /usr: /bin/dockerd counts once", setup: both(withRules("-w /bin/dockerd -k docker\n"), func(f *hostFixture, env *Env) *Env {
			f.file("/usr/bin/dockerd", 0o755, "ELF")
			f.symlink("usr/bin", "/bin")
			return env
		}), want: Pass},
		{name: "second copy in /usr/local/bin not watched", setup: both(dockerd, both(withRules(dockerRules), func(f *hostFixture, env *Env) *Env {
			f.file("/usr/local/bin/dockerd", 0o755, "ELF")
			return env
		})), want: Warn, evidence: "/usr/local/bin/dockerd: no audit rule"},
		{name: "dockerd not installed", setup: withRules(dockerRules), want: Note},
	})
	runHostCases(t, "1.1.4", []hostCase{
		{name: "path rule", setup: both(withRules(dockerRules), func(f *hostFixture, env *Env) *Env { f.dir("/run/containerd", 0o711); return env }), want: Pass},
		{name: "exclusion is not a watch", setup: both(withRules("-a never,exit -F path=/run/containerd\n"), func(f *hostFixture, env *Env) *Env {
			f.dir("/run/containerd", 0o711)
			return env
		}), want: Warn},
		{name: "absent", setup: withRules(dockerRules), want: Note},
	})
	runHostCases(t, "1.1.5", []hostCase{
		{name: "dir rule", setup: both(withRules(dockerRules), func(f *hostFixture, env *Env) *Env { f.dir("/var/lib/docker", 0o710); return env }), want: Pass},
		{name: "data-root elsewhere not watched", setup: both(withRules(dockerRules), func(f *hostFixture, env *Env) *Env {
			env.Info.DockerRootDir = "/data/docker"
			f.dir("/data/docker", 0o710)
			return env
		}), want: Warn, evidence: "/data/docker"},
	})
	runHostCases(t, "1.1.11", []hostCase{
		{name: "covered by the watch on /etc/docker", setup: both(withRules(dockerRules), func(f *hostFixture, env *Env) *Env {
			f.file("/etc/docker/daemon.json", 0o644, "{}")
			return env
		}), want: Pass, evidence: "-w /etc/docker"},
		{name: "not watched", setup: both(withRules("-w /etc/docker/certs.d -k docker\n"), func(f *hostFixture, env *Env) *Env {
			f.file("/etc/docker/daemon.json", 0o644, "{}")
			return env
		}), want: Warn},
		{name: "no daemon.json", setup: withRules(dockerRules), want: Note},
	})
	runHostCases(t, "1.1.9", []hostCase{
		{name: "/var/run rule covers /run socket", setup: both(withRules(dockerRules), func(f *hostFixture, env *Env) *Env {
			f.file("/lib/systemd/system/docker.socket", 0o644, "[Socket]\nListenStream=/run/docker.sock\nSocketMode=0660\n")
			f.socket("/run/docker.sock", 0o660)
			return env
		}), want: Pass},
		{name: "socket not watched", setup: both(withRules("-w /etc/docker -k docker\n"), func(f *hostFixture, env *Env) *Env {
			f.socket("/var/run/docker.sock", 0o660)
			return env
		}), want: Warn},
	})
	runHostCases(t, "1.1.18", []hostCase{
		{name: "link and target", setup: both(withRules("-w /usr/sbin/runc -k docker\n"), func(f *hostFixture, env *Env) *Env {
			f.file("/usr/sbin/runc", 0o755, "ELF")
			f.symlink("../sbin/runc", "/usr/bin/runc")
			return env
		}), want: Pass},
		{name: "not watched", setup: both(withRules(dockerRules), func(f *hostFixture, env *Env) *Env {
			f.file("/usr/bin/runc", 0o755, "ELF")
			return env
		}), want: Warn},
		{name: "absent", setup: withRules(dockerRules), want: Note},
	})
	// The remaining audit controls differ only in the path they look for.
	simple := map[string]string{
		"1.1.6":  "/etc/docker/x",
		"1.1.7":  "/lib/systemd/system/docker.service",
		"1.1.10": "/etc/default/docker",
		"1.1.12": "/etc/containerd/config.toml",
		"1.1.13": "/etc/sysconfig/docker",
		"1.1.14": "/usr/bin/containerd",
		"1.1.15": "/usr/bin/containerd-shim",
		"1.1.16": "/usr/bin/containerd-shim-runc-v1",
		"1.1.17": "/usr/bin/containerd-shim-runc-v2",
	}
	for id, p := range simple {
		watched := p
		if id == "1.1.6" {
			watched = "/etc/docker"
		}
		present := func(f *hostFixture, env *Env) *Env { f.file(p, 0o644, "x"); return env }
		runHostCases(t, id, []hostCase{
			{name: "watched", setup: both(present, withRules("-w "+watched+" -p wa -k docker\n")), want: Pass},
			{name: "not watched", setup: both(present, withRules("-w /nothing -k docker\n")), want: Warn},
			{name: "no rules", setup: present, want: Warn},
			{name: "absent", setup: withRules("-w " + watched + " -k docker\n"), want: Note},
		})
	}
	runHostCases(t, "1.1.8", []hostCase{
		{name: "system containerd", setup: both(withRules("-w /run/containerd/containerd.sock -k docker\n"), func(f *hostFixture, env *Env) *Env {
			f.socket("/run/containerd/containerd.sock", 0o660)
			return env
		}), want: Pass},
		{name: "dockerd's own containerd not watched", setup: both(withRules(dockerRules), func(f *hostFixture, env *Env) *Env {
			f.socket("/var/run/docker/containerd/containerd.sock", 0o660)
			return env
		}), want: Warn, evidence: "/var/run/docker/containerd/containerd.sock"},
		{name: "no containerd", setup: withRules(dockerRules), want: Note},
	})
}

func TestParseAuditWatch(t *testing.T) {
	tests := []struct {
		line string
		want auditWatch
		ok   bool
	}{
		{"-w /etc/docker -p wa -k docker", auditWatch{path: "/etc/docker", subtree: true}, true},
		{"-a always,exit -F arch=b64 -F path=/usr/bin/runc -F perm=x -k docker", auditWatch{path: "/usr/bin/runc"}, true},
		{"-a exit,always -F dir=/var/lib/docker -k docker", auditWatch{path: "/var/lib/docker", subtree: true}, true},
		{"-a never,exit -F dir=/var/lib/docker/volumes", auditWatch{}, false},
		{"-W /etc/docker", auditWatch{}, false},
		{"# -w /etc/docker", auditWatch{}, false},
		{"-e 2", auditWatch{}, false},
		{"-w", auditWatch{}, false},
	}
	for _, tc := range tests {
		got, ok := parseAuditWatch(tc.line)
		got.rule = ""
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseAuditWatch(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

func TestHostGeneral(t *testing.T) {
	runHostCases(t, "1.2.1", []hostCase{
		{name: "with daemon info", want: Info, evidence: "mandatory access control: none reported"},
		{name: "apparmor", setup: func(_ *hostFixture, env *Env) *Env {
			env.Info.SecurityOptions = append(env.Info.SecurityOptions, "name=apparmor")
			return env
		}, want: Info, evidence: "mandatory access control: apparmor"},
		{name: "without daemon info", setup: func(f *hostFixture, env *Env) *Env {
			f.file("/etc/os-release", 0o644, "NAME=x\nPRETTY_NAME=\"Fixture OS 1\"\n")
			return infoMissing(f, env)
		}, want: Info, evidence: "Fixture OS 1"},
	})
	runHostCases(t, "1.2.2", []hostCase{
		{name: "versions", setup: func(_ *hostFixture, env *Env) *Env {
			env.Info.ContainerdCommit.ID, env.Info.RuncCommit.ID = "v1.7.27", "v1.2.5"
			return env
		}, want: Info, evidence: "Docker Engine 28.0.0 (API 1.48)"},
		{name: "no info", setup: infoMissing, want: Skip},
	})
}

// TestHostCatalogue pins the controls of sections 1 to 3 to CIS Docker Benchmark v1.8.0:
// ids in order, profile level, and whether the benchmark scores them (Automated).
func TestHostCatalogue(t *testing.T) {
	type meta struct {
		id     string
		level  int
		scored bool
	}
	want := []meta{
		{"1.1.1", 1, false}, {"1.1.2", 1, false}, {"1.1.3", 1, true}, {"1.1.4", 1, false}, {"1.1.5", 1, false},
		{"1.1.6", 1, true}, {"1.1.7", 2, true}, {"1.1.8", 2, true}, {"1.1.9", 2, true}, {"1.1.10", 2, true},
		{"1.1.11", 2, true}, {"1.1.12", 2, true}, {"1.1.13", 2, true}, {"1.1.14", 2, true}, {"1.1.15", 2, true},
		{"1.1.16", 2, false}, {"1.1.17", 2, true}, {"1.1.18", 2, true}, {"1.2.1", 1, false}, {"1.2.2", 1, false},
		{"2.1", 1, false}, {"2.2", 1, false}, {"2.3", 1, false}, {"2.4", 1, false}, {"2.5", 1, false},
		{"2.6", 1, false}, {"2.7", 1, false}, {"2.8", 1, false}, {"2.9", 1, false}, {"2.10", 2, false},
		{"2.11", 2, false}, {"2.12", 2, false}, {"2.13", 2, false}, {"2.14", 2, false}, {"2.15", 1, false},
		{"2.16", 1, false}, {"2.17", 1, false}, {"2.18", 2, false}, {"2.19", 1, false},
		{"3.1", 1, true}, {"3.2", 1, true}, {"3.3", 1, true}, {"3.4", 1, true}, {"3.5", 1, true}, {"3.6", 1, true},
		{"3.7", 1, false}, {"3.8", 1, false}, {"3.9", 1, false}, {"3.10", 1, false}, {"3.11", 1, false},
		{"3.12", 1, false}, {"3.13", 1, false}, {"3.14", 1, false}, {"3.15", 1, true}, {"3.16", 1, true},
		{"3.17", 2, false}, {"3.18", 2, false}, {"3.19", 2, false}, {"3.20", 2, false}, {"3.21", 2, false},
		{"3.22", 2, false}, {"3.23", 1, true}, {"3.24", 1, true},
	}
	var got []meta
	for _, section := range [][]Check{hostChecks, daemonChecks, fileChecks} {
		for _, c := range section {
			got = append(got, meta{c.ID, c.Level, c.Scored})
			if c.Title == "" || c.Remediation == "" || c.Run == nil {
				t.Errorf("%s: title, remediation and Run are required", c.ID)
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("catalogue\n got %v\nwant %v", got, want)
	}
}
