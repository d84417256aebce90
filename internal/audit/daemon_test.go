package audit

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
)

// Environments in which the daemon's configuration or information is missing.

func configUnreadable(_ *hostFixture, env *Env) *Env {
	env.LoadErrors[daemonConfigLoadKey] = errors.New("parse /etc/docker/daemon.json: unexpected end of JSON input")
	return env
}

func configNotFound(_ *hostFixture, env *Env) *Env {
	env.Daemon = DaemonConfig{Settings: map[string]any{}, Sources: map[string]string{}}
	return env
}

func infoMissing(_ *hostFixture, env *Env) *Env {
	env.Info = system.Info{}
	env.ServerVersion = ""
	env.LoadErrors["docker"] = errors.New("docker info: connection refused")
	return env
}

func with(key string, value any) func(*hostFixture, *Env) *Env {
	return func(_ *hostFixture, env *Env) *Env {
		setOpt(env, key, value)
		return env
	}
}

func TestDaemonChecks(t *testing.T) {
	tests := map[string][]hostCase{
		"2.1": {
			{name: "rootless", setup: func(f *hostFixture, _ *Env) *Env { return f.rootlessEnv() }, want: Pass},
			{name: "root", want: Info, evidence: "profile=builtin"},
			{name: "no info", setup: infoMissing, want: Skip},
		},
		"2.2": {
			{name: "icc false", setup: with("icc", false), want: Pass, evidence: "icc=false (/etc/docker/daemon.json)"},
			{name: "icc false on the command line", setup: func(_ *hostFixture, env *Env) *Env {
				env.Daemon.Settings["icc"], env.Daemon.Sources["icc"] = false, fromCmdline
				return env
			}, want: Pass, evidence: "dockerd command line"},
			{name: "icc unset is on", want: Warn, evidence: "icc not set (default true)"},
			{name: "icc true", setup: with("icc", true), want: Warn},
			{name: "icc false as text", setup: with("icc", "false"), want: Pass},
			{name: "config unreadable", setup: configUnreadable, want: Skip, evidence: "unexpected end of JSON"},
			{name: "config not found", setup: configNotFound, want: Skip},
			{name: "daemon.json only", setup: func(_ *hostFixture, env *Env) *Env {
				env.Daemon.Cmdline = nil
				delete(env.Daemon.Settings, "hosts")
				return env
			}, want: Warn, evidence: "command line was not seen"},
			{name: "cmdline wins over an unreadable file", setup: func(f *hostFixture, env *Env) *Env {
				configUnreadable(f, env)
				env.Daemon.Settings["icc"], env.Daemon.Sources["icc"] = false, fromCmdline
				return env
			}, want: Pass},
		},
		"2.3": {
			{name: "unset is info", want: Pass},
			{name: "info", setup: with("log-level", "info"), want: Pass},
			{name: "debug level", setup: with("log-level", "debug"), want: Warn, evidence: `"debug"`},
			{name: "error level", setup: with("log-level", "error"), want: Warn},
			{name: "debug flag", setup: with("debug", true), want: Warn, evidence: "debug=true"},
			{name: "daemon reports debug", setup: func(_ *hostFixture, env *Env) *Env { env.Info.Debug = true; return env }, want: Warn},
			{name: "config unreadable", setup: configUnreadable, want: Skip},
		},
		"2.4": {
			{name: "unset", want: Pass, evidence: "default true"},
			{name: "true", setup: with("iptables", true), want: Pass},
			{name: "false", setup: with("iptables", false), want: Warn},
			{name: "config unreadable", setup: configUnreadable, want: Skip},
		},
		"2.5": {
			{name: "loopback only", setup: func(_ *hostFixture, env *Env) *Env {
				env.Info.RegistryConfig = &registry.ServiceConfig{
					InsecureRegistryCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
					IndexConfigs:          map[string]*registry.IndexInfo{"docker.io": {Name: "docker.io", Secure: true}},
				}
				return env
			}, want: Pass},
			{name: "insecure CIDR", setup: func(_ *hostFixture, env *Env) *Env {
				env.Info.RegistryConfig = &registry.ServiceConfig{
					InsecureRegistryCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")},
				}
				return env
			}, want: Warn, evidence: "10.0.0.0/8"},
			{name: "insecure registry by name", setup: func(_ *hostFixture, env *Env) *Env {
				env.Info.RegistryConfig = &registry.ServiceConfig{
					IndexConfigs: map[string]*registry.IndexInfo{"reg.local:5000": {Name: "reg.local:5000", Secure: false}},
				}
				return env
			}, want: Warn, evidence: "reg.local:5000"},
			{name: "no info, setting", setup: func(f *hostFixture, env *Env) *Env {
				infoMissing(f, env)
				setOpt(env, "insecure-registries", []any{"reg.local:5000"})
				return env
			}, want: Warn, evidence: "reg.local:5000"},
			{name: "no info, no setting", setup: infoMissing, want: Pass},
			{name: "no info, config unreadable", setup: func(f *hostFixture, env *Env) *Env {
				return configUnreadable(f, infoMissing(f, env))
			}, want: Skip},
		},
		"2.6": {
			{name: "overlay2", want: Pass, evidence: "overlay2"},
			{name: "aufs", setup: func(_ *hostFixture, env *Env) *Env { env.Info.Driver = "aufs"; return env }, want: Warn},
			{name: "no info, aufs configured", setup: func(f *hostFixture, env *Env) *Env {
				infoMissing(f, env)
				setOpt(env, "storage-driver", "aufs")
				return env
			}, want: Warn},
			{name: "no info, nothing configured", setup: infoMissing, want: Skip},
		},
		"2.7": {
			{name: "overlay2", want: Pass},
			{name: "devicemapper", setup: func(_ *hostFixture, env *Env) *Env { env.Info.Driver = "devicemapper"; return env }, want: Warn},
		},
		"2.8": {
			{name: "unix and fd only", want: Note},
			{name: "tcp with tlsverify", setup: func(_ *hostFixture, env *Env) *Env {
				setOpt(env, "hosts", []any{"unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"})
				setOpt(env, "tlsverify", true)
				setOpt(env, "tlscacert", "/etc/docker/tls/ca.pem")
				setOpt(env, "tlscert", "/etc/docker/tls/cert.pem")
				setOpt(env, "tlskey", "/etc/docker/tls/key.pem")
				return env
			}, want: Pass, evidence: "tcp://0.0.0.0:2376"},
			{name: "tcp with DOCKER_TLS_VERIFY", setup: func(_ *hostFixture, env *Env) *Env {
				setOpt(env, "hosts", []any{"tcp://0.0.0.0:2376"})
				env.Daemon.Settings["tlsverify"], env.Daemon.Sources["tlsverify"] = true, fromEnvironment
				return env
			}, want: Pass, evidence: "DOCKER_TLS_VERIFY"},
			{name: "tcp with tls but no verify", setup: func(_ *hostFixture, env *Env) *Env {
				setOpt(env, "hosts", []any{"tcp://0.0.0.0:2376"})
				setOpt(env, "tls", true)
				return env
			}, want: Warn, evidence: "does not verify"},
			{name: "tcp plain", setup: func(_ *hostFixture, env *Env) *Env {
				setOpt(env, "hosts", []any{"tcp://0.0.0.0:2375"})
				return env
			}, want: Warn, evidence: "without TLS"},
			{name: "host:port without scheme is tcp", setup: func(_ *hostFixture, env *Env) *Env {
				setOpt(env, "hosts", []any{":2375"})
				return env
			}, want: Warn},
			{name: "config unreadable", setup: func(f *hostFixture, env *Env) *Env {
				delete(env.Daemon.Settings, "hosts")
				return configUnreadable(f, env)
			}, want: Skip},
		},
		"2.9": {
			{name: "set", setup: with("default-ulimits", map[string]any{"nofile": map[string]any{"Name": "nofile", "Soft": 1024.0, "Hard": 2048.0}}),
				want: Pass, evidence: "nofile: soft 1024, hard 2048"},
			{name: "unset", want: Info},
			{name: "config unreadable", setup: configUnreadable, want: Skip},
		},
		"2.10": {
			{name: "daemon reports userns", setup: func(_ *hostFixture, env *Env) *Env {
				env.Info.SecurityOptions = append(env.Info.SecurityOptions, "name=userns")
				return env
			}, want: Pass},
			{name: "off", want: Warn},
			{name: "configured but info missing", setup: func(f *hostFixture, env *Env) *Env {
				infoMissing(f, env)
				setOpt(env, "userns-remap", "default")
				return env
			}, want: Pass},
			{name: "rootless", setup: func(f *hostFixture, _ *Env) *Env { return f.rootlessEnv() }, want: Note},
			{name: "nothing known", setup: func(f *hostFixture, env *Env) *Env { return configUnreadable(f, infoMissing(f, env)) }, want: Skip},
		},
		"2.11": {
			{name: "unset", want: Pass},
			{name: "set", setup: with("cgroup-parent", "/foobar"), want: Info, evidence: "/foobar"},
			{name: "config unreadable", setup: configUnreadable, want: Skip},
		},
		"2.12": {
			{name: "unset", want: Pass},
			{name: "other storage opts", setup: with("storage-opts", []any{"overlay2.size=10G"}), want: Pass},
			{name: "basesize", setup: with("storage-opts", []any{"dm.basesize=50G"}), want: Info, evidence: "dm.basesize=50G"},
			{name: "config unreadable", setup: configUnreadable, want: Skip},
		},
		"2.13": {
			{name: "daemon reports a plugin", setup: func(_ *hostFixture, env *Env) *Env {
				env.Info.Plugins.Authorization = []string{"opa-docker-authz"}
				return env
			}, want: Pass, evidence: "opa-docker-authz"},
			{name: "configured", setup: func(f *hostFixture, env *Env) *Env {
				infoMissing(f, env)
				setOpt(env, "authorization-plugins", []any{"authz-broker"})
				return env
			}, want: Pass},
			{name: "none", want: Warn},
			{name: "none, config unreadable but info says", setup: configUnreadable, want: Warn},
			{name: "nothing known", setup: func(f *hostFixture, env *Env) *Env { return configUnreadable(f, infoMissing(f, env)) }, want: Skip},
		},
		"2.14": {
			{name: "syslog", setup: func(_ *hostFixture, env *Env) *Env { env.Info.LoggingDriver = "syslog"; return env }, want: Pass},
			{name: "json-file", want: Info},
			{name: "journald", setup: func(_ *hostFixture, env *Env) *Env { env.Info.LoggingDriver = "journald"; return env }, want: Info},
			{name: "none", setup: func(_ *hostFixture, env *Env) *Env { env.Info.LoggingDriver = "none"; return env }, want: Warn},
			{name: "no info, gelf configured", setup: func(f *hostFixture, env *Env) *Env {
				infoMissing(f, env)
				setOpt(env, "log-driver", "gelf")
				return env
			}, want: Pass},
			{name: "nothing known", setup: func(f *hostFixture, env *Env) *Env { return configUnreadable(f, infoMissing(f, env)) }, want: Skip},
		},
		"2.15": {
			{name: "true", setup: with("no-new-privileges", true), want: Pass},
			{name: "unset", want: Warn, evidence: "default false"},
			{name: "config unreadable", setup: configUnreadable, want: Skip},
		},
		"2.16": {
			{name: "enabled", setup: func(_ *hostFixture, env *Env) *Env { env.Info.LiveRestoreEnabled = true; return env }, want: Pass},
			{name: "disabled", want: Warn},
			{name: "swarm", setup: func(_ *hostFixture, env *Env) *Env {
				env.Info.Swarm = swarm.Info{LocalNodeState: swarm.LocalNodeStateActive}
				return env
			}, want: Note},
			{name: "no info, configured", setup: func(f *hostFixture, env *Env) *Env {
				infoMissing(f, env)
				setOpt(env, "live-restore", true)
				return env
			}, want: Pass},
			{name: "nothing known", setup: func(f *hostFixture, env *Env) *Env { return configUnreadable(f, infoMissing(f, env)) }, want: Skip},
		},
		"2.17": {
			{name: "false", setup: with("userland-proxy", false), want: Pass},
			{name: "unset", want: Warn, evidence: "default true"},
			{name: "config unreadable", setup: configUnreadable, want: Skip},
		},
		"2.18": {
			{name: "custom profile", setup: func(_ *hostFixture, env *Env) *Env {
				env.Info.SecurityOptions = []string{"name=seccomp,profile=/etc/docker/seccomp.json"}
				return env
			}, want: Pass},
			{name: "default profile", want: Info},
			{name: "unconfined", setup: func(_ *hostFixture, env *Env) *Env {
				env.Info.SecurityOptions = []string{"name=seccomp,profile=unconfined"}
				return env
			}, want: Warn},
			{name: "no seccomp", setup: func(_ *hostFixture, env *Env) *Env { env.Info.SecurityOptions = nil; return env }, want: Warn},
			{name: "no info, custom configured", setup: func(f *hostFixture, env *Env) *Env {
				infoMissing(f, env)
				setOpt(env, "seccomp-profile", "/etc/docker/seccomp.json")
				return env
			}, want: Pass},
			{name: "nothing known", setup: func(f *hostFixture, env *Env) *Env { return configUnreadable(f, infoMissing(f, env)) }, want: Skip},
		},
		"2.19": {
			{name: "off", want: Pass},
			{name: "on", setup: func(_ *hostFixture, env *Env) *Env { env.Info.ExperimentalBuild = true; return env }, want: Warn},
			{name: "no info, configured", setup: func(f *hostFixture, env *Env) *Env {
				infoMissing(f, env)
				setOpt(env, "experimental", true)
				return env
			}, want: Warn},
			{name: "nothing known", setup: func(f *hostFixture, env *Env) *Env { return configUnreadable(f, infoMissing(f, env)) }, want: Skip},
		},
	}
	for _, c := range daemonChecks {
		cases, ok := tests[c.ID]
		if !ok {
			t.Errorf("no test cases for %s", c.ID)
			continue
		}
		t.Run(c.ID, func(t *testing.T) { runHostCases(t, c.ID, cases) })
	}
}
