package audit

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
)

// Section 5 Container runtime.
//
// The checks judge the running containers, as the benchmark's audit does: a stopped
// container has no runtime to judge and is re-checked when it starts. v1.8.0 marks every
// control of this section Manual (not scored); where the inspected configuration decides
// the question, the check still says PASS or WARN and names every offending container.
var containerChecks = []Check{
	{
		ID: "5.1", Title: "Swarm mode is off unless this node belongs to a swarm", Level: 1,
		Remediation: "If the node was put in a swarm by mistake, leave it: docker swarm leave (--force on a manager).",
		Run:         checkSwarmMode,
	},
	{
		ID: "5.2", Title: "Containers run under an AppArmor profile where AppArmor is available", Level: 1,
		Remediation: "Keep Docker's default profile (docker-default) or give a tailored one with --security-opt apparmor=<profile>; never run with apparmor=unconfined.",
		Run:         checkAppArmor,
	},
	{
		ID: "5.3", Title: "Containers run with SELinux labels where SELinux is available", Level: 2,
		Remediation: "Start dockerd with --selinux-enabled and do not pass --security-opt label=disable; set a type or level with --security-opt label=... where the default does not fit.",
		Run:         checkSELinux,
	},
	{
		ID: "5.4", Title: "Containers get no kernel capabilities beyond what they need", Level: 1,
		Remediation: "Drop what is not needed and add back only what is: --cap-drop ALL --cap-add <needed>. Do not add SYS_ADMIN, NET_ADMIN, SYS_PTRACE or ALL; drop NET_RAW unless raw sockets are required.",
		Run: perRunningContainer("containers are given kernel capabilities beyond Docker's default set",
			capabilityFindings, netRawNote),
	},
	{
		ID: "5.5", Title: "No container runs privileged", Level: 1,
		Remediation: "Run without --privileged; grant the specific capability (--cap-add) or device (--device) the workload needs instead.",
		Run: perRunningContainer("privileged containers have every capability and every host device", func(_ *Env, c *container.InspectResponse) []string {
			if hostConfig(c).Privileged {
				return []string{"Privileged=true"}
			}
			return nil
		}),
	},
	{
		ID: "5.6", Title: "Sensitive host directories are not mounted into containers", Level: 1,
		Remediation: "Do not bind-mount /, /boot, /dev, /etc, /lib, /proc, /sys or /usr from the host; mount only the specific files needed, read-only (:ro).",
		Run:         perRunningContainer("containers mount sensitive host directories", sensitiveMountFindings),
	},
	{
		ID: "5.7", Title: "No container runs an SSH daemon", Level: 1,
		Remediation: "Remove sshd from the image; use docker exec (or your orchestrator) to get into a container.",
		Run:         checkSSHD,
	},
	{
		ID: "5.8", Title: "No host port below 1024 is published to a container", Level: 1,
		Remediation: "Publish on a host port of 1024 or above (-p 8080:80) and put a proxy or load balancer in front where a low port is needed.",
		Run:         perRunningContainer("containers are published on privileged host ports (below 1024)", privilegedPortFindings),
	},
	{
		ID: "5.9", Title: "Containers publish only the ports they need", Level: 1,
		Remediation: "Publish ports explicitly with -p, only those the service needs; avoid -P (publish all) and remove EXPOSE lines for ports that are not served.",
		Run:         checkPublishedPorts,
	},
	{
		ID: "5.10", Title: "No container shares the host's network namespace", Level: 1,
		Remediation: "Run on a bridge or user-defined network instead of --network host, publishing only the needed ports.",
		Run: perRunningContainer("containers share the host's network stack", func(_ *Env, c *container.InspectResponse) []string {
			if hostConfig(c).NetworkMode.IsHost() {
				return []string{"NetworkMode=host"}
			}
			return nil
		}),
	},
	{
		ID: "5.11", Title: "Every container has a memory limit", Level: 1,
		Remediation: "Start containers with --memory (and --memory-swap equal to it to forbid swap), sized to the workload.",
		Run: perRunningContainer("containers without a memory limit can exhaust the host's memory", func(_ *Env, c *container.InspectResponse) []string {
			if hostConfig(c).Memory == 0 {
				return []string{"no memory limit (Memory=0)"}
			}
			return nil
		}),
	},
	{
		ID: "5.12", Title: "Containers have a CPU share or limit set", Level: 1,
		Remediation: "Give each container a relative weight with --cpu-shares (default 1024) or a hard limit with --cpus.",
		Run: perRunningContainer("containers compete for CPU without a share or limit", func(_ *Env, c *container.InspectResponse) []string {
			hc := hostConfig(c)
			if (hc.CPUShares == 0 || hc.CPUShares == 1024) && hc.NanoCPUs == 0 && hc.CPUQuota == 0 {
				return []string{"no CPU shares or limit"}
			}
			return nil
		}),
	},
	{
		ID: "5.13", Title: "Container root filesystems are read-only", Level: 1,
		Remediation: "Run with --read-only and give the paths that must be written a volume or a tmpfs (--tmpfs /tmp).",
		Run: perRunningContainer("containers can write to their root filesystem", func(_ *Env, c *container.InspectResponse) []string {
			if !hostConfig(c).ReadonlyRootfs {
				return []string{"ReadonlyRootfs=false"}
			}
			return nil
		}),
	},
	{
		ID: "5.14", Title: "Published ports are bound to a specific host address", Level: 1,
		Remediation: "Publish on the address that should receive the traffic: -p 10.0.0.5:8080:80 rather than -p 8080:80, which listens on every interface.",
		Run:         perRunningContainer("containers publish ports on every host interface", wildcardBindingFindings),
	},
	{
		ID: "5.15", Title: "Restart policies give up after at most five failures", Level: 1,
		Remediation: "Use --restart on-failure:5 (or no restart policy) rather than always, unless-stopped or an unbounded on-failure.",
		Run:         perRunningContainer("containers restart without bound, which can hide a crash loop or an attack", restartPolicyFindings),
	},
	{
		ID: "5.16", Title: "No container shares the host's process namespace", Level: 1,
		Remediation: "Do not run with --pid host; containers then see and can signal only their own processes.",
		Run: perRunningContainer("containers see and can signal every process on the host", func(_ *Env, c *container.InspectResponse) []string {
			if hostConfig(c).PidMode.IsHost() {
				return []string{"PidMode=host"}
			}
			return nil
		}),
	},
	{
		ID: "5.17", Title: "No container shares the host's IPC namespace", Level: 1,
		Remediation: "Do not run with --ipc host; share IPC between containers with --ipc shareable and --ipc container:<name> where it is needed.",
		Run: perRunningContainer("containers share the host's shared memory and IPC objects", func(_ *Env, c *container.InspectResponse) []string {
			if hostConfig(c).IpcMode.IsHost() {
				return []string{"IpcMode=host"}
			}
			return nil
		}),
	},
	{
		ID: "5.18", Title: "Host devices are not passed into containers", Level: 1,
		Remediation: "Remove --device options that are not needed; where one is, grant the least access (--device /dev/x:/dev/x:r rather than rwm).",
		Run:         perRunningContainer("containers have direct access to host devices", deviceFindings),
	},
	{
		ID: "5.19", Title: "Default ulimits are overridden only where needed", Level: 1,
		Remediation: "Rely on the daemon's default ulimits (--default-ulimit) and override per container (--ulimit) only where the workload needs it.",
		Run:         checkUlimits,
	},
	{
		ID: "5.20", Title: "No mount uses shared propagation", Level: 1,
		Remediation: "Mount volumes with private (default) or slave propagation; do not use shared or rshared.",
		Run:         perRunningContainer("shared mounts let a container's mounts appear on the host and in other containers", sharedPropagationFindings),
	},
	{
		ID: "5.21", Title: "No container shares the host's UTS namespace", Level: 1,
		Remediation: "Do not run with --uts host; a container could then change the host's hostname.",
		Run: perRunningContainer("containers share the host's hostname and domain name", func(_ *Env, c *container.InspectResponse) []string {
			if hostConfig(c).UTSMode.IsHost() {
				return []string{"UTSMode=host"}
			}
			return nil
		}),
	},
	{
		ID: "5.22", Title: "No container runs without a seccomp profile", Level: 1,
		Remediation: "Keep Docker's default seccomp profile or a tailored one (--security-opt seccomp=<file>); never seccomp=unconfined.",
		Run:         perRunningContainer("containers can make every system call", seccompFindings),
	},
	{
		ID: "5.23", Title: "docker exec is not used with --privileged", Level: 2,
		Remediation: "Do not pass --privileged to docker exec; restrict who can reach the Docker API, and audit exec calls through the daemon's logs or an authorization plugin.",
		Run: func(context.Context, *Env) Result {
			return info("Docker keeps no record of past exec sessions, so this needs the daemon's logs or audit records (auditd on docker) to review.")
		},
	},
	{
		ID: "5.24", Title: "docker exec is not used with --user root", Level: 2,
		Remediation: "Do not pass --user root (or 0) to docker exec; restrict who can reach the Docker API and review exec calls in the daemon's audit records.",
		Run: func(context.Context, *Env) Result {
			return info("Docker keeps no record of past exec sessions, so this needs the daemon's logs or audit records (auditd on docker) to review.")
		},
	},
	{
		ID: "5.25", Title: "Containers run in the expected cgroup", Level: 1,
		Remediation: "Leave --cgroup-parent unset so the daemon's cgroup is used, or set it only to a cgroup you have configured and reviewed.",
		Run:         checkContainerCgroup,
	},
	{
		ID: "5.26", Title: "Containers cannot gain new privileges", Level: 1,
		Remediation: "Run with --security-opt no-new-privileges (or set \"no-new-privileges\": true in daemon.json for every container), so setuid binaries cannot raise privileges.",
		Run:         perRunningContainer("processes in these containers can gain privileges through setuid or file capabilities", noNewPrivilegesFindings),
	},
	{
		ID: "5.27", Title: "Container health is checked at run time", Level: 1,
		Remediation: "Add a HEALTHCHECK to the image or pass --health-cmd (with --health-interval) when starting the container.",
		Run: perRunningContainer("containers without a health check fail silently", func(_ *Env, c *container.InspectResponse) []string {
			if c.State == nil || c.State.Health == nil {
				return []string{"no health check"}
			}
			return nil
		}),
	},
	{
		ID: "5.28", Title: "Containers run the current build of their image", Level: 1,
		Remediation: "Pull before running (docker run --pull always, docker compose pull) and recreate containers when their image is rebuilt.",
		Run:         checkImageCurrency,
	},
	{
		ID: "5.29", Title: "Every container has a PIDs limit", Level: 1,
		Remediation: "Start containers with --pids-limit (for example 100), sized to the workload, so a fork bomb cannot exhaust the host.",
		Run: perRunningContainer("containers without a PIDs limit can exhaust the host's process table", func(_ *Env, c *container.InspectResponse) []string {
			if l := hostConfig(c).PidsLimit; l == nil || *l <= 0 {
				return []string{"no PIDs limit"}
			}
			return nil
		}),
	},
	{
		ID: "5.30", Title: "Containers do not use the default bridge (docker0)", Level: 2,
		Remediation: "Create user-defined networks (docker network create) and attach each application to its own, instead of the default bridge where every container can reach every other.",
		Run: perRunningContainer("containers on the default bridge can reach each other unfiltered", func(_ *Env, c *container.InspectResponse) []string {
			if c.NetworkSettings != nil && c.NetworkSettings.Networks[network.NetworkBridge] != nil {
				return []string{"on the default bridge network"}
			}
			return nil
		}),
	},
	{
		ID: "5.31", Title: "No container shares the host's user namespace", Level: 1,
		Remediation: "Do not run with --userns host where the daemon remaps users (userns-remap); root in such a container is root on the host.",
		Run:         checkUserNamespace,
	},
	{
		ID: "5.32", Title: "The Docker socket is not mounted into any container", Level: 1,
		Remediation: "Remove the docker.sock mount; a container that needs the API should reach it through an authorizing proxy that allows only what it needs.",
		Run:         perRunningContainer("a container with the Docker socket controls the daemon and so the host", dockerSocketFindings),
	},
}

// dockerDefaultCaps is the capability set Docker grants a container by default
// (moby's oci/caps/defaults.go).
var dockerDefaultCaps = []string{
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

// normalizeCap gives a capability one spelling, upper case without the CAP_ prefix:
// Docker accepts and reports both.
func normalizeCap(c string) string {
	return strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_")
}

// capabilityFindings faults capabilities added beyond the default set. NET_RAW is in that
// set but the benchmark singles it out, so adding it explicitly counts too.
func capabilityFindings(_ *Env, c *container.InspectResponse) []string {
	hc := hostConfig(c)
	if hc.Privileged {
		return []string{"Privileged=true (every capability)"}
	}
	var added []string
	for _, cp := range hc.CapAdd {
		n := normalizeCap(cp)
		if n == "NET_RAW" || !slices.Contains(dockerDefaultCaps, n) {
			added = append(added, n)
		}
	}
	if len(added) == 0 {
		return nil
	}
	return []string{"CapAdd=" + strings.Join(added, ",")}
}

// keepsNetRaw reports whether a container has NET_RAW: Docker grants it unless dropped.
func keepsNetRaw(c *container.InspectResponse) bool {
	hc := hostConfig(c)
	for _, cp := range hc.CapDrop {
		if n := normalizeCap(cp); n == "NET_RAW" || n == "ALL" {
			return slices.ContainsFunc(hc.CapAdd, func(a string) bool { n := normalizeCap(a); return n == "NET_RAW" || n == "ALL" })
		}
	}
	return true
}

// netRawNote is 5.4's result when no container adds capabilities: containers that keep
// Docker's default NET_RAW are worth a look, not a failure (some need raw sockets).
func netRawNote(env *Env, cs []*container.InspectResponse) *Result {
	var lines []string
	for _, c := range cs {
		if !hostConfig(c).Privileged && keepsNetRaw(c) {
			lines = append(lines, containerName(c)+": keeps NET_RAW (granted by default)")
		}
	}
	if len(lines) == 0 {
		return nil
	}
	r := note(fmt.Sprintf("no container adds capabilities, but %d keep NET_RAW, which lets them forge packets; drop it (--cap-drop NET_RAW) unless they need raw sockets", len(lines)), lines...)
	return &r
}

// sensitiveHostDirs are the host directories the benchmark lists.
var sensitiveHostDirs = []string{"/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr"}

// sensitiveMountFindings faults bind mounts of a sensitive directory itself (read-only or
// not) and read-write bind mounts of anything under one.
func sensitiveMountFindings(_ *Env, c *container.InspectResponse) []string {
	var out []string
	for _, m := range c.Mounts {
		if m.Type != mount.TypeBind {
			continue
		}
		src := path.Clean(m.Source)
		for _, dir := range sensitiveHostDirs {
			exact := src == dir
			under := dir != "/" && strings.HasPrefix(src, dir+"/")
			if exact || (under && m.RW) {
				out = append(out, fmt.Sprintf("%s mounted at %s (%s)", src, m.Destination, rwString(m.RW)))
				break
			}
		}
	}
	return out
}

func rwString(rw bool) string {
	if rw {
		return "read-write"
	}
	return "read-only"
}

// checkSSHD looks for sshd in what each container was started with. A daemon started
// later by a script or supervisor inside is not seen, so a clean result is a NOTE.
func checkSSHD(_ context.Context, env *Env) Result {
	cs, stop := runningContainers(env)
	if stop != nil {
		return *stop
	}
	var f objectFindings
	for _, c := range cs {
		if cmd := sshdCommand(c); cmd != "" {
			f.add(containerTarget(c), "runs "+cmd)
		}
	}
	r := f.result(env, "containers run an SSH daemon, a second way in to manage and patch", nil, loadErrContainers)
	if r.Status == Pass {
		r = note(fmt.Sprintf("none of the %d running containers was started with sshd; a daemon started later inside a container is not seen here", len(cs)))
	}
	return r
}

// sshdCommand returns the part of the container's command line that starts sshd, or "".
func sshdCommand(c *container.InspectResponse) string {
	args := append([]string{c.Path}, c.Args...)
	if c.Config != nil {
		args = append(args, c.Config.Entrypoint...)
		args = append(args, c.Config.Cmd...)
	}
	for _, a := range args {
		for _, word := range strings.Fields(a) {
			if path.Base(word) == "sshd" {
				return word
			}
		}
	}
	return ""
}

// publishedPort is one host binding of a container port; it prints as
// "hostip:hostport->port/proto".
type publishedPort struct {
	container network.Port
	binding   network.PortBinding
}

func (p publishedPort) String() string {
	ip := "0.0.0.0"
	if p.binding.HostIP.IsValid() {
		ip = p.binding.HostIP.String()
		if p.binding.HostIP.Is6() {
			ip = "[" + ip + "]"
		}
	}
	return fmt.Sprintf("%s:%s->%s", ip, p.binding.HostPort, p.container)
}

// publishedPorts returns the container's host bindings, sorted.
func publishedPorts(c *container.InspectResponse) []publishedPort {
	if c.NetworkSettings == nil {
		return nil
	}
	var out []publishedPort
	for port, bindings := range c.NetworkSettings.Ports {
		for _, b := range bindings {
			out = append(out, publishedPort{container: port, binding: b})
		}
	}
	slices.SortFunc(out, func(a, b publishedPort) int { return strings.Compare(a.String(), b.String()) })
	return out
}

func privilegedPortFindings(_ *Env, c *container.InspectResponse) []string {
	var out []string
	for _, p := range publishedPorts(c) {
		if n, err := strconv.Atoi(p.binding.HostPort); err == nil && n > 0 && n < 1024 {
			out = append(out, "publishes "+p.String())
		}
	}
	return out
}

func wildcardBindingFindings(_ *Env, c *container.InspectResponse) []string {
	var out []string
	for _, p := range publishedPorts(c) {
		if ip := p.binding.HostIP; !ip.IsValid() || ip.IsUnspecified() {
			out = append(out, "publishes "+p.String())
		}
	}
	return out
}

// checkPublishedPorts lists what each container exposes on the host, for a person to
// judge against what the service needs.
func checkPublishedPorts(_ context.Context, env *Env) Result {
	cs, stop := runningContainers(env)
	if stop != nil {
		return *stop
	}
	var lines []string
	for _, c := range cs {
		if hostConfig(c).NetworkMode.IsHost() {
			lines = append(lines, containerName(c)+": host network (every port it listens on is open on the host)")
			continue
		}
		var ports []string
		for _, p := range publishedPorts(c) {
			ports = append(ports, p.String())
		}
		if len(ports) > 0 {
			lines = append(lines, containerName(c)+": "+strings.Join(ports, ", "))
		}
	}
	if len(lines) == 0 {
		return pass(fmt.Sprintf("none of the %d running containers publishes a port", len(cs)))
	}
	return info(fmt.Sprintf("%d of the %d running containers open ports on the host; only a person can tell which of them the services need", len(lines), len(cs)), lines...)
}

func restartPolicyFindings(_ *Env, c *container.InspectResponse) []string {
	rp := hostConfig(c).RestartPolicy
	switch rp.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		return []string{"RestartPolicy=" + string(rp.Name)}
	case container.RestartPolicyOnFailure:
		if rp.MaximumRetryCount <= 0 || rp.MaximumRetryCount > 5 {
			return []string{fmt.Sprintf("RestartPolicy=on-failure with MaximumRetryCount=%d", rp.MaximumRetryCount)}
		}
	}
	return nil
}

func deviceFindings(_ *Env, c *container.InspectResponse) []string {
	hc := hostConfig(c)
	if hc.Privileged {
		return []string{"Privileged=true (every host device)"}
	}
	var out []string
	for _, d := range hc.Devices {
		out = append(out, fmt.Sprintf("device %s at %s (%s)", d.PathOnHost, d.PathInContainer, d.CgroupPermissions))
	}
	return out
}

// checkUlimits lists the containers that override the daemon's default ulimits, for a
// person to confirm each override is needed.
func checkUlimits(_ context.Context, env *Env) Result {
	cs, stop := runningContainers(env)
	if stop != nil {
		return *stop
	}
	var lines []string
	for _, c := range cs {
		var ul []string
		for _, u := range hostConfig(c).Ulimits {
			if u != nil {
				ul = append(ul, fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard))
			}
		}
		if len(ul) > 0 {
			lines = append(lines, containerName(c)+": "+strings.Join(ul, ", "))
		}
	}
	if len(lines) == 0 {
		return pass(fmt.Sprintf("none of the %d running containers overrides the default ulimits", len(cs)))
	}
	return info(fmt.Sprintf("%d of the %d running containers override the default ulimits; confirm each override is needed", len(lines), len(cs)), lines...)
}

func sharedPropagationFindings(_ *Env, c *container.InspectResponse) []string {
	var out []string
	for _, m := range c.Mounts {
		if m.Propagation == mount.PropagationShared || m.Propagation == mount.PropagationRShared {
			out = append(out, fmt.Sprintf("%s mounted with %s propagation", m.Destination, m.Propagation))
		}
	}
	return out
}

// securityOpt returns the value of a --security-opt key ("seccomp", "apparmor",
// "label", "no-new-privileges"), accepting both key=value and the old key:value
// spelling, and whether it was set at all ("no-new-privileges" alone means true).
func securityOpt(c *container.InspectResponse, key string) (values []string, set bool) {
	for _, opt := range hostConfig(c).SecurityOpt {
		if opt == key {
			values, set = append(values, "true"), true
			continue
		}
		for _, sep := range []string{"=", ":"} {
			if v, ok := strings.CutPrefix(opt, key+sep); ok {
				values, set = append(values, v), true
				break
			}
		}
	}
	return values, set
}

func seccompFindings(_ *Env, c *container.InspectResponse) []string {
	if hostConfig(c).Privileged {
		return []string{"Privileged=true (no seccomp filter)"}
	}
	if vs, _ := securityOpt(c, "seccomp"); slices.Contains(vs, "unconfined") {
		return []string{"seccomp=unconfined"}
	}
	return nil
}

// noNewPrivilegesFindings faults containers where no-new-privileges is off: not set on
// the container, and not made the default by the daemon (or explicitly turned off).
func noNewPrivilegesFindings(env *Env, c *container.InspectResponse) []string {
	vs, set := securityOpt(c, "no-new-privileges")
	if set {
		if on, err := strconv.ParseBool(vs[len(vs)-1]); err == nil && on {
			return nil
		}
		return []string{"no-new-privileges turned off"}
	}
	if on, _ := env.Daemon.Settings["no-new-privileges"].(bool); on {
		return nil
	}
	return []string{"no-new-privileges not set"}
}

// checkContainerCgroup lists containers placed under a cgroup of their own choosing, for a
// person to confirm it is one they meant.
func checkContainerCgroup(_ context.Context, env *Env) Result {
	cs, stop := runningContainers(env)
	if stop != nil {
		return *stop
	}
	var lines []string
	for _, c := range cs {
		if p := hostConfig(c).CgroupParent; p != "" {
			lines = append(lines, containerName(c)+": cgroup parent "+p)
		}
	}
	if len(lines) == 0 {
		return pass(fmt.Sprintf("all %d running containers use the daemon's cgroup", len(cs)))
	}
	return info(fmt.Sprintf("%d of the %d running containers run under a cgroup parent of their own; confirm each is intended", len(lines), len(cs)), lines...)
}

// checkImageCurrency finds containers whose image name now points at another image on
// this host: they run an older build than the one a new container would get. Newer
// images in a registry are not seen without pulling, hence INFO at most.
func checkImageCurrency(_ context.Context, env *Env) Result {
	cs, stop := runningContainers(env)
	if stop != nil {
		return *stop
	}
	current := map[string]string{} // image reference -> image id, from the local images
	for i := range env.Images {
		for _, tag := range env.Images[i].RepoTags {
			current[normalizeImageRef(tag)] = env.Images[i].ID
		}
	}
	var lines []string
	for _, c := range cs {
		if c.Config == nil || strings.HasPrefix(c.Config.Image, "sha256:") {
			continue
		}
		if id, ok := current[normalizeImageRef(c.Config.Image)]; ok && id != c.Image {
			lines = append(lines, fmt.Sprintf("%s: runs %s of %s, which now names %s", containerName(c), shortID(c.Image), c.Config.Image, shortID(id)))
		}
	}
	if len(lines) == 0 {
		return note("every running container runs the local build of its image name; whether a newer one is in the registry needs a pull to tell")
	}
	return info(fmt.Sprintf("%d of the %d running containers run an older build than their image name now gives; recreate them", len(lines), len(cs)), lines...)
}

// normalizeImageRef makes "busybox", "busybox:latest" and "docker.io/library/busybox"
// compare equal.
func normalizeImageRef(s string) string {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return s
	}
	return reference.TagNameOnly(named).String()
}

// checkUserNamespace faults containers that ask for the host's user namespace. Without
// userns-remap on the daemon every container shares it anyway; that is 2.x's concern,
// noted here.
func checkUserNamespace(ctx context.Context, env *Env) Result {
	r := perRunningContainer("root in these containers is root on the host", func(_ *Env, c *container.InspectResponse) []string {
		if hostConfig(c).UsernsMode.IsHost() {
			return []string{"UsernsMode=host"}
		}
		return nil
	})(ctx, env)
	if r.Status == Pass && env.LoadErrors[loadErrDaemon] == nil && !daemonHasSecurityOption(env, "userns") {
		return note("no container asks for the host's user namespace, but the daemon does not remap users (userns-remap), so every container shares it", r.Evidence...)
	}
	return r
}

func dockerSocketFindings(_ *Env, c *container.InspectResponse) []string {
	var out []string
	for _, m := range c.Mounts {
		if path.Base(m.Source) == "docker.sock" || path.Base(m.Destination) == "docker.sock" {
			out = append(out, fmt.Sprintf("%s mounted at %s", m.Source, m.Destination))
		}
	}
	return out
}

func checkSwarmMode(_ context.Context, env *Env) Result {
	if err := env.LoadErrors[loadErrDaemon]; err != nil {
		return skip("the daemon's information could not be read: " + err.Error())
	}
	s := env.Info.Swarm
	switch s.LocalNodeState {
	case swarm.LocalNodeStateInactive, "":
		return pass("swarm mode is inactive")
	}
	return info("swarm mode is on, which opens the cluster management ports; confirm this node is meant to be in a swarm",
		fmt.Sprintf("LocalNodeState=%s, manager=%v, node %s", s.LocalNodeState, s.ControlAvailable, s.NodeID))
}

func checkAppArmor(ctx context.Context, env *Env) Result {
	if err := env.LoadErrors[loadErrDaemon]; err != nil {
		return skip("the daemon's information could not be read, so whether AppArmor applies is unknown: " + err.Error())
	}
	if !daemonHasSecurityOption(env, "apparmor") {
		return note("AppArmor is not enabled on this host, so the control does not apply (see 5.3 for SELinux)")
	}
	return perRunningContainer("containers run without an AppArmor profile", func(_ *Env, c *container.InspectResponse) []string {
		switch c.AppArmorProfile {
		case "":
			return []string{"no AppArmor profile"}
		case "unconfined":
			return []string{"AppArmorProfile=unconfined"}
		}
		return nil
	})(ctx, env)
}

func checkSELinux(ctx context.Context, env *Env) Result {
	if err := env.LoadErrors[loadErrDaemon]; err != nil {
		return skip("the daemon's information could not be read, so whether SELinux applies is unknown: " + err.Error())
	}
	if !daemonHasSecurityOption(env, "selinux") {
		return note("the daemon does not run with SELinux support (--selinux-enabled), so the control does not apply")
	}
	return perRunningContainer("containers run without SELinux separation", func(_ *Env, c *container.InspectResponse) []string {
		if vs, _ := securityOpt(c, "label"); slices.Contains(vs, "disable") {
			return []string{"label=disable"}
		}
		if c.ProcessLabel == "" {
			return []string{"no SELinux process label"}
		}
		return nil
	})(ctx, env)
}

// daemonHasSecurityOption reports whether the daemon lists a security option by name
// ("apparmor", "selinux", "seccomp", "userns", "rootless"); entries look like
// "name=seccomp,profile=default".
func daemonHasSecurityOption(env *Env, name string) bool {
	return slices.ContainsFunc(env.Info.SecurityOptions, func(opt string) bool {
		return slices.Contains(strings.Split(opt, ","), "name="+name)
	})
}

// Helpers shared by the checks of sections 4 to 6.

// containerRule judges one running container: a line for each way it fails the control
// (without the container's name), none when it complies.
type containerRule func(env *Env, c *container.InspectResponse) []string

// perRunningContainer builds a check from a rule: WARN naming every running container
// the rule faults, else PASS. clean, when given, may replace the PASS with a remark.
func perRunningContainer(reason string, rule containerRule, clean ...func(*Env, []*container.InspectResponse) *Result) func(context.Context, *Env) Result {
	return func(_ context.Context, env *Env) Result {
		cs, stop := runningContainers(env)
		if stop != nil {
			return *stop
		}
		var f objectFindings
		for _, c := range cs {
			for _, line := range rule(env, c) {
				f.add(containerTarget(c), line)
			}
		}
		r := f.result(env, reason, []string{fmt.Sprintf("%d running containers checked", len(cs))}, loadErrContainers)
		if r.Status == Pass {
			for _, fn := range clean {
				if alt := fn(env, cs); alt != nil {
					return *alt
				}
			}
		}
		return r
	}
}

// runningContainers returns the running containers, or the result a check gives
// instead: SKIP when none could be loaded because of an error, NOTE when none runs.
func runningContainers(env *Env) ([]*container.InspectResponse, *Result) {
	var cs []*container.InspectResponse
	for i := range env.Containers {
		if c := &env.Containers[i]; c.State != nil && c.State.Running {
			cs = append(cs, c)
		}
	}
	if len(cs) > 0 {
		return cs, nil
	}
	var r Result
	if err := env.LoadErrors[loadErrContainers]; err != nil {
		r = skip("the containers could not be read: " + err.Error())
	} else {
		r = note("no container is running, so there is nothing to check")
	}
	return nil, &r
}

// hostConfig returns the container's HostConfig, never nil, so rules read fields
// without guarding.
func hostConfig(c *container.InspectResponse) *container.HostConfig {
	if c.HostConfig == nil {
		return &container.HostConfig{}
	}
	return c.HostConfig
}

func containerName(c *container.InspectResponse) string {
	if n := strings.TrimPrefix(c.Name, "/"); n != "" {
		return n
	}
	return shortID(c.ID)
}

func containerTarget(c *container.InspectResponse) Target {
	return Target{Kind: "container", ID: c.ID, Name: containerName(c)}
}

// objectFindings gathers a check's offending objects and what is wrong with each.
type objectFindings struct {
	targets  []Target
	evidence []string
	seen     map[Target]bool
}

// add records that t fails the control; detail says how ("Privileged=true") and becomes
// the evidence line "name: detail".
func (f *objectFindings) add(t Target, detail string) {
	if !f.seen[t] {
		if f.seen == nil {
			f.seen = map[Target]bool{}
		}
		f.seen[t] = true
		f.targets = append(f.targets, t)
	}
	f.evidence = append(f.evidence, t.Name+": "+detail)
}

// result is WARN with the findings, or PASS with passEvidence when there are none. When
// part of what the check needed (the load keys) failed to load, a PASS cannot be
// claimed: it becomes a SKIP, and a WARN says there may be more.
func (f *objectFindings) result(env *Env, reason string, passEvidence []string, loadKeys ...string) Result {
	var errs []error
	for _, k := range loadKeys {
		if err := env.LoadErrors[k]; err != nil {
			errs = append(errs, err)
		}
	}
	loadErr := errors.Join(errs...)
	switch {
	case len(f.targets) > 0:
		r := warn(reason, f.targets, f.evidence...)
		if loadErr != nil {
			r.Evidence = append(r.Evidence, "not everything could be read, so there may be more: "+loadErr.Error())
		}
		return r
	case loadErr != nil:
		return skip("not everything could be read: " + loadErr.Error())
	}
	return pass(passEvidence...)
}
