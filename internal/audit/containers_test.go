package audit

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
)

// Fixtures under testdata/docker (see its README): real inspect output, trimmed.

func readFixture(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "docker", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func containerFixture(t *testing.T, name string) container.InspectResponse {
	t.Helper()
	var c container.InspectResponse
	readFixture(t, "containers/"+name+".json", &c)
	return c
}

func imageFixture(t *testing.T, name string) image.InspectResponse {
	t.Helper()
	var im image.InspectResponse
	readFixture(t, "images/"+name+".json", &im)
	return im
}

func historyFixture(t *testing.T, name string) []image.HistoryResponseItem {
	t.Helper()
	var h []image.HistoryResponseItem
	readFixture(t, "history/"+name+".json", &h)
	return h
}

// fixtureNow is the audit clock of the fixtures: a day after they were captured.
var fixtureNow = time.Date(2026, 11, 30, 20, 0, 0, 0, time.UTC)

// dockerEnv returns an Env with the captured daemon info, both captured images and the
// named container fixtures, each optionally changed by edit (keyed by fixture name).
func dockerEnv(t *testing.T, containers ...string) *Env {
	t.Helper()
	var info system.Info
	readFixture(t, "info.json", &info)
	env := &Env{
		Root: t.TempDir(), Info: info, ServerVersion: info.ServerVersion, APIVersion: "1.41",
		Now: fixtureNow, LoadErrors: map[string]error{},
		Images: []image.InspectResponse{imageFixture(t, "busybox"), imageFixture(t, "app")},
	}
	for _, name := range containers {
		env.Containers = append(env.Containers, containerFixture(t, name))
	}
	return env
}

// containerNamed returns the env's container of that name, to edit a fixture in place.
func containerNamed(t *testing.T, env *Env, name string) *container.InspectResponse {
	t.Helper()
	for i := range env.Containers {
		if containerName(&env.Containers[i]) == name {
			return &env.Containers[i]
		}
	}
	t.Fatalf("no container %s in the env", name)
	return nil
}

// runCheck runs one check as Run does (panics recovered, fields filled).
func runCheck(t *testing.T, env *Env, id string) Result {
	t.Helper()
	for _, c := range Checks() {
		if c.ID == id {
			return runOne(context.Background(), env, &c)
		}
	}
	t.Fatalf("no check %s", id)
	return Result{}
}

// targetNames returns "kind/name" for each target, sorted.
func targetNames(r Result) []string {
	var out []string
	for _, tg := range r.Targets {
		out = append(out, tg.Kind+"/"+tg.Name)
	}
	slices.Sort(out)
	return out
}

// expect checks a result's status, WARN targets and that each want string is in its
// evidence or reason.
func expect(t *testing.T, r Result, status Status, targets []string, want ...string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: status %s, want %s (reason %q, evidence %q)", r.ID, r.Status, status, r.Reason, r.Evidence)
	}
	slices.Sort(targets)
	if got := targetNames(r); !slices.Equal(got, targets) {
		t.Errorf("%s: targets %v, want %v", r.ID, got, targets)
	}
	text := r.Reason + "\n" + strings.Join(r.Evidence, "\n")
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s: %q not in reason/evidence:\n%s", r.ID, w, text)
		}
	}
}

func TestSection5ChecksOnFixtures(t *testing.T) {
	tests := []struct {
		id   string
		pass []string // container fixtures the check passes
		warn []string // fixtures, including offenders
		// targets are the containers named in the WARN; evidence lines expected in it.
		targets  []string
		evidence []string
	}{
		{id: "5.5", pass: []string{"default", "hardened", "exposed"}, warn: []string{"default", "bad"},
			targets: []string{"container/fx-bad"}, evidence: []string{"fx-bad: Privileged=true"}},
		{id: "5.6", pass: []string{"default", "hardened", "exposed"}, warn: []string{"bad", "exposed"},
			targets: []string{"container/fx-bad"}, evidence: []string{"fx-bad: /etc mounted at /host/etc (read-write)"}},
		{id: "5.8", pass: []string{"default", "hardened"}, warn: []string{"hardened", "exposed"},
			targets: []string{"container/fx-exposed"}, evidence: []string{"fx-exposed: publishes 0.0.0.0:80->8080/tcp", "fx-exposed: publishes [::]:80->8080/tcp"}},
		{id: "5.10", pass: []string{"default", "hardened", "exposed"}, warn: []string{"bad", "default"},
			targets: []string{"container/fx-bad"}, evidence: []string{"fx-bad: NetworkMode=host"}},
		{id: "5.11", pass: []string{"hardened"}, warn: []string{"hardened", "default", "bad"},
			targets: []string{"container/fx-default", "container/fx-bad"}, evidence: []string{"fx-default: no memory limit"}},
		{id: "5.12", pass: []string{"hardened"}, warn: []string{"hardened", "default"},
			targets: []string{"container/fx-default"}, evidence: []string{"fx-default: no CPU shares or limit"}},
		{id: "5.13", pass: []string{"hardened"}, warn: []string{"hardened", "exposed"},
			targets: []string{"container/fx-exposed"}, evidence: []string{"fx-exposed: ReadonlyRootfs=false"}},
		{id: "5.14", pass: []string{"default", "hardened", "bad"}, warn: []string{"hardened", "exposed"},
			targets: []string{"container/fx-exposed"}, evidence: []string{"fx-exposed: publishes 0.0.0.0:8443->8443/tcp", "fx-exposed: publishes [::]:8443->8443/tcp"}},
		{id: "5.15", pass: []string{"default", "hardened", "exposed"}, warn: []string{"hardened", "bad"},
			targets: []string{"container/fx-bad"}, evidence: []string{"fx-bad: RestartPolicy=always"}},
		{id: "5.16", pass: []string{"default", "hardened", "exposed"}, warn: []string{"bad"},
			targets: []string{"container/fx-bad"}, evidence: []string{"fx-bad: PidMode=host"}},
		{id: "5.17", pass: []string{"default", "hardened", "exposed"}, warn: []string{"bad"},
			targets: []string{"container/fx-bad"}, evidence: []string{"fx-bad: IpcMode=host"}},
		{id: "5.18", pass: []string{"default", "hardened"}, warn: []string{"default", "exposed", "bad"},
			targets: []string{"container/fx-exposed", "container/fx-bad"}, evidence: []string{"fx-exposed: device /dev/fuse at /dev/fuse (rwm)", "fx-bad: Privileged=true (every host device)"}},
		{id: "5.20", pass: []string{"default", "exposed", "bad"}, warn: []string{"exposed", "rshared"},
			targets: []string{"container/shared-mount"}, evidence: []string{"shared-mount: /data mounted with rshared propagation"}},
		{id: "5.21", pass: []string{"default", "hardened", "exposed"}, warn: []string{"bad"},
			targets: []string{"container/fx-bad"}, evidence: []string{"fx-bad: UTSMode=host"}},
		{id: "5.22", pass: []string{"default", "hardened", "exposed"}, warn: []string{"default", "bad"},
			targets: []string{"container/fx-bad"}, evidence: []string{"fx-bad: Privileged=true (no seccomp filter)"}},
		{id: "5.26", pass: []string{"hardened"}, warn: []string{"hardened", "default"},
			targets: []string{"container/fx-default"}, evidence: []string{"fx-default: no-new-privileges not set"}},
		{id: "5.27", pass: []string{"hardened", "exposed"}, warn: []string{"hardened", "default"},
			targets: []string{"container/fx-default"}, evidence: []string{"fx-default: no health check"}},
		{id: "5.29", pass: []string{"hardened"}, warn: []string{"hardened", "default"},
			targets: []string{"container/fx-default"}, evidence: []string{"fx-default: no PIDs limit"}},
		{id: "5.30", pass: []string{"hardened", "bad"}, warn: []string{"hardened", "bad", "default", "exposed"},
			targets: []string{"container/fx-default", "container/fx-exposed"}, evidence: []string{"fx-default: on the default bridge network"}},
		{id: "5.32", pass: []string{"default", "hardened", "exposed"}, warn: []string{"default", "bad"},
			targets: []string{"container/fx-bad"}, evidence: []string{"fx-bad: /var/run/docker.sock mounted at /var/run/docker.sock"}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			r := runCheck(t, dockerEnv(t, tt.pass...), tt.id)
			expect(t, r, Pass, nil, "running containers checked")
			if r.Scored || r.Remediation != "" {
				t.Errorf("PASS: scored %v, remediation %q", r.Scored, r.Remediation)
			}
			r = runCheck(t, dockerEnv(t, tt.warn...), tt.id)
			expect(t, r, Warn, tt.targets, tt.evidence...)
			if r.Remediation == "" || r.Reason == "" {
				t.Errorf("WARN without reason or remediation: %+v", r)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	// Dropping everything passes; adding back a default capability other than NET_RAW too.
	env := dockerEnv(t, "hardened")
	containerNamed(t, env, "fx-hardened").HostConfig.CapAdd = []string{"NET_BIND_SERVICE"}
	expect(t, runCheck(t, env, "5.4"), Pass, nil)

	// Docker's defaults pass, with a note on NET_RAW.
	expect(t, runCheck(t, dockerEnv(t, "default", "hardened"), "5.4"), Note, nil, "fx-default: keeps NET_RAW")

	// CHOWN is a default capability and is not named; NET_ADMIN is; privileged has them all.
	r := runCheck(t, dockerEnv(t, "exposed", "bad", "hardened"), "5.4")
	expect(t, r, Warn, []string{"container/fx-exposed", "container/fx-bad"},
		"fx-exposed: CapAdd=NET_ADMIN\n", "fx-bad: Privileged=true (every capability)")

	// Adding NET_RAW explicitly is named, in any spelling.
	env = dockerEnv(t, "hardened")
	containerNamed(t, env, "fx-hardened").HostConfig.CapAdd = []string{"cap_net_raw"}
	expect(t, runCheck(t, env, "5.4"), Warn, []string{"container/fx-hardened"}, "fx-hardened: CapAdd=NET_RAW")
}

func TestSensitiveMounts(t *testing.T) {
	env := dockerEnv(t, "default")
	c := containerNamed(t, env, "fx-default")
	c.Mounts = []container.MountPoint{
		{Type: "bind", Source: "/etc/localtime", Destination: "/etc/localtime", RW: false}, // a file under /etc, read-only: fine
		{Type: "volume", Source: "/var/lib/docker/volumes/x/_data", Destination: "/usr"},   // a volume, not the host's /usr
		{Type: "bind", Source: "/srv/app", Destination: "/app", RW: true},
	}
	expect(t, runCheck(t, env, "5.6"), Pass, nil)

	c.Mounts = append(c.Mounts,
		container.MountPoint{Type: "bind", Source: "/", Destination: "/host", RW: false},
		container.MountPoint{Type: "bind", Source: "/usr/lib/", Destination: "/hostlib", RW: true})
	expect(t, runCheck(t, env, "5.6"), Warn, []string{"container/fx-default"},
		"fx-default: / mounted at /host (read-only)", "fx-default: /usr/lib mounted at /hostlib (read-write)")
}

func TestSSHD(t *testing.T) {
	expect(t, runCheck(t, dockerEnv(t, "default", "hardened"), "5.7"), Note, nil, "none of the 2 running containers was started with sshd")
	expect(t, runCheck(t, dockerEnv(t, "default", "sshd"), "5.7"), Warn, []string{"container/ssh-box"}, "ssh-box: runs /usr/sbin/sshd")

	env := dockerEnv(t, "default")
	c := containerNamed(t, env, "fx-default")
	c.Path, c.Args = "/bin/sh", []string{"-c", "/usr/sbin/sshd && exec nginx"}
	expect(t, runCheck(t, env, "5.7"), Warn, []string{"container/fx-default"}, "runs /usr/sbin/sshd")
}

func TestRestartPolicy(t *testing.T) {
	for _, tt := range []struct {
		policy container.RestartPolicy
		want   Status
	}{
		{container.RestartPolicy{Name: "no"}, Pass},
		{container.RestartPolicy{Name: ""}, Pass},
		{container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}, Pass},
		{container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 5}, Pass},
		{container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 6}, Warn},
		{container.RestartPolicy{Name: "on-failure"}, Warn},
		{container.RestartPolicy{Name: "unless-stopped"}, Warn},
		{container.RestartPolicy{Name: "always"}, Warn},
	} {
		env := dockerEnv(t, "default")
		containerNamed(t, env, "fx-default").HostConfig.RestartPolicy = tt.policy
		if r := runCheck(t, env, "5.15"); r.Status != tt.want {
			t.Errorf("%+v: %s, want %s (%v)", tt.policy, r.Status, tt.want, r.Evidence)
		}
	}
}

func TestSeccompOption(t *testing.T) {
	for _, opt := range []string{"seccomp=unconfined", "seccomp:unconfined"} {
		env := dockerEnv(t, "default")
		containerNamed(t, env, "fx-default").HostConfig.SecurityOpt = []string{opt}
		expect(t, runCheck(t, env, "5.22"), Warn, []string{"container/fx-default"}, "fx-default: seccomp=unconfined")
	}
	env := dockerEnv(t, "default")
	containerNamed(t, env, "fx-default").HostConfig.SecurityOpt = []string{"seccomp=/etc/docker/strict.json"}
	expect(t, runCheck(t, env, "5.22"), Pass, nil)
}

func TestNoNewPrivileges(t *testing.T) {
	// The daemon's default covers containers that do not say otherwise.
	env := dockerEnv(t, "default", "hardened")
	env.Daemon = DaemonConfig{Found: true, Settings: map[string]any{"no-new-privileges": true}}
	expect(t, runCheck(t, env, "5.26"), Pass, nil)

	// A container can turn it off, in either spelling.
	for _, opt := range []string{"no-new-privileges=false", "no-new-privileges:false"} {
		containerNamed(t, env, "fx-hardened").HostConfig.SecurityOpt = []string{opt}
		expect(t, runCheck(t, env, "5.26"), Warn, []string{"container/fx-hardened"}, "fx-hardened: no-new-privileges turned off")
	}
	for _, opt := range []string{"no-new-privileges", "no-new-privileges=true", "no-new-privileges:true"} {
		env := dockerEnv(t, "default")
		containerNamed(t, env, "fx-default").HostConfig.SecurityOpt = []string{opt}
		expect(t, runCheck(t, env, "5.26"), Pass, nil)
	}
}

func TestPortsListed(t *testing.T) {
	expect(t, runCheck(t, dockerEnv(t, "default"), "5.9"), Pass, nil, "none of the 1 running containers publishes a port")
	r := runCheck(t, dockerEnv(t, "default", "hardened", "exposed", "bad"), "5.9")
	expect(t, r, Info, nil,
		"fx-hardened: 127.0.0.1:8080->80/tcp",
		"fx-exposed: 0.0.0.0:80->8080/tcp, 0.0.0.0:8443->8443/tcp, [::]:80->8080/tcp, [::]:8443->8443/tcp",
		"fx-bad: host network")
}

func TestUlimitsAndCgroupListed(t *testing.T) {
	expect(t, runCheck(t, dockerEnv(t, "default", "hardened"), "5.19"), Pass, nil)
	expect(t, runCheck(t, dockerEnv(t, "default", "exposed"), "5.19"), Info, nil, "fx-exposed: nofile=1024:2048")
	expect(t, runCheck(t, dockerEnv(t, "default", "hardened"), "5.25"), Pass, nil)
	expect(t, runCheck(t, dockerEnv(t, "default", "exposed"), "5.25"), Info, nil, "fx-exposed: cgroup parent /vigilfx")
}

func TestMandatoryAccessControl(t *testing.T) {
	// The capture host has neither AppArmor nor SELinux: not applicable.
	expect(t, runCheck(t, dockerEnv(t, "default"), "5.2"), Note, nil, "AppArmor is not enabled")
	expect(t, runCheck(t, dockerEnv(t, "default"), "5.3"), Note, nil, "SELinux")

	env := dockerEnv(t, "default", "hardened", "exposed")
	env.Info.SecurityOptions = append(env.Info.SecurityOptions, "name=apparmor")
	containerNamed(t, env, "fx-default").AppArmorProfile = "docker-default"
	containerNamed(t, env, "fx-exposed").AppArmorProfile = "unconfined"
	expect(t, runCheck(t, env, "5.2"), Warn, []string{"container/fx-exposed", "container/fx-hardened"},
		"fx-exposed: AppArmorProfile=unconfined", "fx-hardened: no AppArmor profile")
	containerNamed(t, env, "fx-hardened").AppArmorProfile = "docker-default"
	containerNamed(t, env, "fx-exposed").AppArmorProfile = "my-profile"
	expect(t, runCheck(t, env, "5.2"), Pass, nil)

	env = dockerEnv(t, "default", "bad")
	env.Info.SecurityOptions = append(env.Info.SecurityOptions, "name=selinux")
	containerNamed(t, env, "fx-default").ProcessLabel = "system_u:system_r:container_t:s0:c1,c2"
	expect(t, runCheck(t, env, "5.3"), Warn, []string{"container/fx-bad"}, "fx-bad: label=disable")
	env.Containers = env.Containers[:1]
	expect(t, runCheck(t, env, "5.3"), Pass, nil)

	env.LoadErrors[loadErrDaemon] = errors.New("connection refused")
	expect(t, runCheck(t, env, "5.2"), Skip, nil, "connection refused")
}

func TestUserNamespace(t *testing.T) {
	expect(t, runCheck(t, dockerEnv(t, "default", "exposed"), "5.31"), Warn, []string{"container/fx-exposed"}, "fx-exposed: UsernsMode=host")
	// Without userns-remap every container shares it anyway: worth a note.
	expect(t, runCheck(t, dockerEnv(t, "default"), "5.31"), Note, nil, "userns-remap")
	env := dockerEnv(t, "default")
	env.Info.SecurityOptions = append(env.Info.SecurityOptions, "name=userns")
	expect(t, runCheck(t, env, "5.31"), Pass, nil)
}

func TestSwarmMode(t *testing.T) {
	env := dockerEnv(t)
	expect(t, runCheck(t, env, "5.1"), Pass, nil, "inactive")
	env.Info.Swarm.LocalNodeState = "active"
	env.Info.Swarm.ControlAvailable = true
	env.Info.Swarm.NodeID = "n0de"
	expect(t, runCheck(t, env, "5.1"), Info, nil, "LocalNodeState=active, manager=true, node n0de")
}

func TestImageCurrency(t *testing.T) {
	// The fixtures run the image their name gives.
	expect(t, runCheck(t, dockerEnv(t, "default", "exposed"), "5.28"), Note, nil)

	// The name now gives another build: the container runs an old one. "busybox" and the
	// fully qualified name compare equal to the tag.
	env := dockerEnv(t, "default", "exposed")
	c := containerNamed(t, env, "fx-default")
	c.Image = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	c.Config.Image = "docker.io/vigil-test/busybox"
	expect(t, runCheck(t, env, "5.28"), Info, nil, "fx-default: runs 0123456789ab of docker.io/vigil-test/busybox, which now names 19a63f216b60")
}

func TestExecControlsAreManual(t *testing.T) {
	for _, id := range []string{"5.23", "5.24"} {
		r := runCheck(t, dockerEnv(t, "default"), id)
		expect(t, r, Info, nil, "exec")
		if r.Level != 2 {
			t.Errorf("%s: level %d", id, r.Level)
		}
	}
}

func TestSection5WithoutRunningContainers(t *testing.T) {
	for _, c := range containerChecks {
		if c.ID == "5.1" || c.ID == "5.23" || c.ID == "5.24" || c.ID == "5.2" || c.ID == "5.3" {
			continue // not about the containers, or not applicable on the capture host
		}
		r := runCheck(t, dockerEnv(t, "stopped"), c.ID)
		if r.Status != Note || !strings.Contains(r.Reason, "no container is running") {
			t.Errorf("%s with only a stopped container: %s %q", c.ID, r.Status, r.Reason)
		}
		env := dockerEnv(t)
		env.LoadErrors[loadErrContainers] = errors.New("list containers: permission denied")
		if r := runCheck(t, env, c.ID); r.Status != Skip || !strings.Contains(r.Reason, "permission denied") {
			t.Errorf("%s when the containers could not be loaded: %s %q", c.ID, r.Status, r.Reason)
		}
	}
}

func TestPartialLoad(t *testing.T) {
	// One container could not be inspected: an offender found is still reported, with a
	// warning that there may be more; a clean result cannot be claimed.
	env := dockerEnv(t, "default", "bad")
	env.LoadErrors[loadErrContainers] = errors.New("inspect container 0123456789ab: i/o timeout")
	r := runCheck(t, env, "5.5")
	expect(t, r, Warn, []string{"container/fx-bad"}, "there may be more", "i/o timeout")
	r = runCheck(t, env, "5.32")
	expect(t, r, Warn, []string{"container/fx-bad"})
	env.Containers = env.Containers[:1]
	expect(t, runCheck(t, env, "5.5"), Skip, nil, "i/o timeout")
}

func TestContainerChecksMetadata(t *testing.T) {
	if len(containerChecks) != 32 {
		t.Errorf("%d section 5 checks, want 32 (v1.8.0)", len(containerChecks))
	}
	for i, c := range containerChecks {
		if want := "5." + strconv.Itoa(i+1); c.ID != want {
			t.Errorf("check %d has id %s, want %s", i, c.ID, want)
		}
		if c.Title == "" || c.Remediation == "" || c.Run == nil || (c.Level != 1 && c.Level != 2) || c.Scored {
			t.Errorf("%s: incomplete or scored: %+v", c.ID, c)
		}
	}
}
