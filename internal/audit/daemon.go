package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/swarm"
)

// Section 2 Docker daemon configuration.
//
// A check reads what the daemon itself reports (Env.Info) when the daemon reports the
// setting, and the effective configuration (Env.Daemon: daemon.json merged with the
// dockerd command line) otherwise. Defaults are dockerd's: an option that is not set
// has dockerd's default value.
var daemonChecks = []Check{
	{
		ID: "2.1", Title: "Run the daemon without root privileges where the workloads allow it (rootless mode)",
		Level: 1, Scored: false,
		Remediation: "Where the containers need no root-only features, install Docker in rootless mode " +
			"(dockerd-rootless-setuptool.sh install) so that a compromise of the daemon or a container " +
			"escape does not yield root on the host.",
		Run: checkRootlessDaemon,
	},
	{
		ID: "2.2", Title: "Containers on the default bridge cannot talk to each other (icc off)",
		Level: 1, Scored: false,
		Remediation: `Set "icc": false in daemon.json (or start dockerd with --icc=false) and restart the ` +
			"daemon; give containers that must talk to each other a user-defined network of their own.",
		Run: checkICC,
	},
	{
		ID: "2.3", Title: "The daemon logs at level info",
		Level: 1, Scored: false,
		Remediation: `Remove "debug" and set "log-level": "info" in daemon.json (or drop --debug and ` +
			"--log-level from the dockerd command line), then restart the daemon.",
		Run: checkLogLevel,
	},
	{
		ID: "2.4", Title: "The daemon manages iptables rules itself",
		Level: 1, Scored: false,
		Remediation: `Remove "iptables": false from daemon.json (and --iptables=false from the command ` +
			"line) so that Docker keeps the firewall rules of its networks consistent.",
		Run: checkIPTables,
	},
	{
		ID: "2.5", Title: "No insecure registries are configured",
		Level: 1, Scored: false,
		Remediation: `Remove entries from "insecure-registries" in daemon.json (and --insecure-registry ` +
			"flags); serve every registry over TLS and place its CA certificate under " +
			"/etc/docker/certs.d/<registry>/ca.crt.",
		Run: checkInsecureRegistries,
	},
	{
		ID: "2.6", Title: "The aufs storage driver is not in use",
		Level: 1, Scored: false,
		Remediation: "Move to the overlay2 storage driver: save what must be kept, set " +
			`"storage-driver": "overlay2" and restart the daemon (images and containers are not carried over).`,
		Run: storageDriverCheck("aufs"),
	},
	{
		ID: "2.7", Title: "The devicemapper storage driver is not in use",
		Level: 1, Scored: false,
		Remediation: "devicemapper is deprecated and removed in Docker Engine 25: move to overlay2 " +
			`("storage-driver": "overlay2"), after saving what must be kept.`,
		Run: storageDriverCheck("devicemapper"),
	},
	{
		ID: "2.8", Title: "A daemon listening on TCP requires TLS client certificates",
		Level: 1, Scored: false,
		Remediation: "Prefer the local unix socket (or SSH) for remote administration. If the API must be " +
			`on TCP, set "tlsverify": true with "tlscacert", "tlscert" and "tlskey" in daemon.json and ` +
			"give only trusted clients a certificate signed by that CA; use port 2376.",
		Run: checkDaemonTLS,
	},
	{
		ID: "2.9", Title: "Default ulimits for containers are set deliberately",
		Level: 1, Scored: false,
		Remediation: `Set "default-ulimits" in daemon.json (for example nofile and nproc) to limits that ` +
			"suit the workloads, so that one container cannot exhaust the host's processes or file descriptors.",
		Run: checkDefaultUlimits,
	},
	{
		ID: "2.10", Title: "User namespace remapping is enabled",
		Level: 2, Scored: false,
		Remediation: `Set "userns-remap": "default" in daemon.json (dockerd creates the dockremap user and ` +
			"its /etc/subuid and /etc/subgid ranges) and restart the daemon; root in a container then maps " +
			"to an unprivileged host user. Test the workloads first: volume ownership changes.",
		Run: checkUserNamespaces,
	},
	{
		ID: "2.11", Title: "The containers' default cgroup parent is the intended one",
		Level: 2, Scored: false,
		Remediation: `Leave "cgroup-parent" unset unless containers must run under a particular cgroup, ` +
			"and then make sure that cgroup has the intended limits.",
		Run: checkCgroupParent,
	},
	{
		ID: "2.12", Title: "The base device size is left at its default unless more is needed",
		Level: 2, Scored: false,
		Remediation: `Remove dm.basesize from "storage-opts" unless containers need a larger base ` +
			"device; a larger size lets a container fill more of the host's storage.",
		Run: checkBaseDeviceSize,
	},
	{
		ID: "2.13", Title: "An authorization plugin controls access to the daemon's API",
		Level: 2, Scored: false,
		Remediation: "Install an authorization plugin that fits the access policy and list it in " +
			`"authorization-plugins" in daemon.json, so that API requests are checked per user and action.`,
		Run: checkAuthorizationPlugins,
	},
	{
		ID: "2.14", Title: "Container logs go to a central, remote log store",
		Level: 2, Scored: false,
		Remediation: `Set "log-driver" to a driver that ships logs off the host (syslog, journald forwarded ` +
			"to a collector, fluentd, gelf, splunk, awslogs, gcplogs...), or run an agent that ships the " +
			"local log files to a central store.",
		Run: checkRemoteLogging,
	},
	{
		ID: "2.15", Title: "Containers cannot gain new privileges by default (no-new-privileges)",
		Level: 1, Scored: false,
		Remediation: `Set "no-new-privileges": true in daemon.json (or start dockerd with ` +
			"--no-new-privileges) so that setuid and setgid binaries in containers cannot raise privileges.",
		Run: checkNoNewPrivileges,
	},
	{
		ID: "2.16", Title: "Live restore is enabled",
		Level: 1, Scored: false,
		Remediation: `Set "live-restore": true in daemon.json and reload the daemon (systemctl reload docker), ` +
			"so that containers keep running while the daemon is restarted or upgraded.",
		Run: checkLiveRestore,
	},
	{
		ID: "2.17", Title: "The userland proxy is disabled",
		Level: 1, Scored: false,
		Remediation: `Set "userland-proxy": false in daemon.json so that published ports are forwarded ` +
			"by iptables (hairpin NAT) rather than by a docker-proxy process per port.",
		Run: checkUserlandProxy,
	},
	{
		ID: "2.18", Title: "A daemon-wide seccomp profile suited to the workloads is applied",
		Level: 2, Scored: false,
		Remediation: "Write a seccomp profile that allows only the system calls the workloads need and " +
			`set it as "seccomp-profile" in daemon.json; never set it to "unconfined".`,
		Run: checkDaemonSeccomp,
	},
	{
		ID: "2.19", Title: "Experimental features are off in production",
		Level: 1, Scored: false,
		Remediation: `Remove "experimental": true from daemon.json (and --experimental from the command ` +
			"line) on production hosts and restart the daemon.",
		Run: checkExperimental,
	},
}

// daemonConfigLoadKey is the Env.LoadErrors key under which LoadEnv records why the
// daemon's configuration could not be read.
const daemonConfigLoadKey = "daemon-config"

// daemonOpt is one daemon option as a check sees it.
type daemonOpt struct {
	key    string
	value  any
	set    bool
	source string // fromDaemonJSON, fromCmdline or fromEnvironment
}

// lookupDaemonOpt returns the option; the second result is a reason to SKIP, set when
// the configuration could not be read and the option is not on dockerd's command line
// (which wins over anything daemon.json could say).
func lookupDaemonOpt(env *Env, key string) (daemonOpt, string) {
	o := daemonOpt{key: key, source: env.Daemon.Sources[key]}
	o.value, o.set = env.Daemon.Settings[key]
	if o.set && o.source == fromCmdline {
		return o, ""
	}
	if err := env.LoadErrors[daemonConfigLoadKey]; err != nil {
		return o, "the daemon's configuration could not be read: " + err.Error()
	}
	if !env.Daemon.Found {
		return o, "the daemon's configuration was not found: no dockerd process and no daemon.json"
	}
	return o, ""
}

func (o daemonOpt) boolValue() (value, ok bool) { return settingBool(o.value) }

// evidence renders the option and where it was set, or its default when unset.
func (o daemonOpt) evidence(env *Env, dflt string) string {
	if !o.set {
		s := o.key + " not set"
		if dflt != "" {
			s = fmt.Sprintf("%s not set (default %s)", o.key, dflt)
		}
		if len(env.Daemon.Cmdline) == 0 {
			s += "; dockerd's command line was not seen"
		}
		return s
	}
	return fmt.Sprintf("%s=%s (%s)", o.key, formatSetting(o.value), settingOrigin(env, o.source))
}

func settingOrigin(env *Env, source string) string {
	switch source {
	case fromDaemonJSON:
		return env.Daemon.ConfigFile
	case fromCmdline:
		return "dockerd command line"
	case fromEnvironment:
		return "DOCKER_TLS_VERIFY in dockerd's environment"
	}
	return source
}

func formatSetting(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []any:
		return strings.Join(settingList(v), ",")
	case map[string]any:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
	return fmt.Sprint(v)
}

// daemonTargets names the daemon as the object at fault.
func daemonTargets(env *Env) []Target {
	return []Target{{Kind: "daemon", ID: env.Info.ID, Name: "dockerd"}}
}

// securityOption returns the key=value fields of the daemon's security option called
// name ("seccomp", "userns", ...), or nil when the daemon does not report it.
func securityOption(env *Env, name string) map[string]string {
	for _, opt := range env.Info.SecurityOptions {
		fields := map[string]string{}
		for f := range strings.SplitSeq(opt, ",") {
			k, v, _ := strings.Cut(f, "=")
			fields[k] = v
		}
		if fields["name"] == name {
			return fields
		}
	}
	return nil
}

func checkRootlessDaemon(_ context.Context, env *Env) Result {
	if err := daemonInfoErr(env); err != nil {
		return skip("cannot tell how the daemon runs: " + err.Error())
	}
	ev := "security options: " + strings.Join(env.Info.SecurityOptions, " ")
	if env.Rootless {
		return pass("the daemon runs in rootless mode", ev)
	}
	return info("the daemon runs as root; whether rootless mode can serve these workloads is for a person to judge", ev)
}

func checkICC(_ context.Context, env *Env) Result {
	o, why := lookupDaemonOpt(env, "icc")
	if why != "" {
		return skip(why)
	}
	if v, ok := o.boolValue(); o.set && ok && !v {
		return pass(o.evidence(env, "true"))
	}
	return warn("inter-container communication on the default bridge is allowed: every container there can reach every other",
		daemonTargets(env), o.evidence(env, "true"))
}

func checkLogLevel(_ context.Context, env *Env) Result {
	level, why := lookupDaemonOpt(env, "log-level")
	if why != "" {
		return skip(why)
	}
	debug, _ := lookupDaemonOpt(env, "debug")
	if d, _ := debug.boolValue(); d || (daemonInfoErr(env) == nil && env.Info.Debug) {
		ev := []string{debug.evidence(env, "false")}
		if env.Info.Debug {
			ev = append(ev, "the daemon reports debug mode on")
		}
		return warn("the daemon runs in debug mode, which logs far more than needed and can record sensitive request data",
			daemonTargets(env), ev...)
	}
	if !level.set {
		return pass(level.evidence(env, "info"))
	}
	if s, _ := level.value.(string); strings.EqualFold(s, "info") {
		return pass(level.evidence(env, "info"))
	}
	return warn(fmt.Sprintf("the log level is %q rather than info: events worth reviewing are lost (or debug noise is kept)", formatSetting(level.value)),
		daemonTargets(env), level.evidence(env, "info"))
}

func checkIPTables(_ context.Context, env *Env) Result {
	o, why := lookupDaemonOpt(env, "iptables")
	if why != "" {
		return skip(why)
	}
	if v, ok := o.boolValue(); o.set && ok && !v {
		return warn("Docker may not manage iptables: published ports and network isolation depend on rules kept by hand",
			daemonTargets(env), o.evidence(env, "true"))
	}
	return pass(o.evidence(env, "true"))
}

// loopbackRegistries are the insecure registry ranges dockerd always adds itself.
var loopbackRegistries = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func checkInsecureRegistries(_ context.Context, env *Env) Result {
	var found []string
	if daemonInfoErr(env) == nil && env.Info.RegistryConfig != nil {
		for _, p := range env.Info.RegistryConfig.InsecureRegistryCIDRs {
			if !slices.Contains(loopbackRegistries, p.Masked()) {
				found = append(found, p.String())
			}
		}
		for name, idx := range env.Info.RegistryConfig.IndexConfigs {
			if idx != nil && !idx.Secure {
				found = append(found, name)
			}
		}
		sort.Strings(found)
		if len(found) == 0 {
			return pass("the daemon reports no insecure registries beyond loopback")
		}
		return warn("the daemon pulls from and pushes to registries without verified TLS",
			daemonTargets(env), "insecure registries (reported by the daemon): "+strings.Join(found, ", "))
	}
	o, why := lookupDaemonOpt(env, "insecure-registries")
	if why != "" {
		return skip(why)
	}
	for _, r := range settingList(o.value) {
		if p, err := netip.ParsePrefix(r); err == nil && slices.Contains(loopbackRegistries, p.Masked()) {
			continue
		}
		found = append(found, r)
	}
	if len(found) == 0 {
		return pass(o.evidence(env, "none"))
	}
	return warn("the daemon pulls from and pushes to registries without verified TLS", daemonTargets(env), o.evidence(env, "none"))
}

// storageDriverCheck returns a check that warns when the daemon uses the named storage
// driver.
func storageDriverCheck(driver string) func(context.Context, *Env) Result {
	return func(_ context.Context, env *Env) Result {
		var current, ev string
		if daemonInfoErr(env) == nil && env.Info.Driver != "" {
			current, ev = env.Info.Driver, "storage driver (reported by the daemon): "+env.Info.Driver
		} else {
			o, why := lookupDaemonOpt(env, "storage-driver")
			if why != "" {
				return skip(why)
			}
			if !o.set {
				return skip("the daemon's storage driver is unknown: the daemon did not report it and it is not configured")
			}
			current, ev = formatSetting(o.value), o.evidence(env, "")
		}
		if current == driver {
			return warn(fmt.Sprintf("the daemon uses the %s storage driver, which is deprecated and unsupported in current Docker releases", driver),
				daemonTargets(env), ev)
		}
		return pass(ev)
	}
}

// tlsFileOptions are the daemon's TLS file options and the file each defaults to in
// ~/.docker of the daemon's user.
var tlsFileOptions = []struct{ key, file string }{
	{"tlscacert", "ca.pem"}, {"tlscert", "cert.pem"}, {"tlskey", "key.pem"},
}

// tcpHosts returns the daemon's listen addresses that are on the network.
func tcpHosts(hosts []string) []string {
	var out []string
	for _, h := range hosts {
		switch {
		case strings.HasPrefix(h, "unix://"), strings.HasPrefix(h, "fd://"), strings.HasPrefix(h, "npipe://"):
		default:
			out = append(out, h) // tcp://, or host:port which dockerd takes as tcp
		}
	}
	return out
}

func checkDaemonTLS(_ context.Context, env *Env) Result {
	hosts, why := lookupDaemonOpt(env, "hosts")
	if why != "" {
		return skip(why)
	}
	tcp := tcpHosts(settingList(hosts.value))
	if len(tcp) == 0 {
		return note("the daemon listens on local sockets only; TLS is not needed", hosts.evidence(env, "unix:///var/run/docker.sock"))
	}
	verify, _ := lookupDaemonOpt(env, "tlsverify")
	tls, _ := lookupDaemonOpt(env, "tls")
	ev := []string{"listening on " + strings.Join(tcp, ", "), verify.evidence(env, "false"), tls.evidence(env, "false")}
	for _, f := range tlsFileOptions {
		o, _ := lookupDaemonOpt(env, f.key)
		ev = append(ev, o.evidence(env, "~/.docker/"+f.file))
	}
	if v, _ := verify.boolValue(); v {
		return pass(ev...)
	}
	if v, _ := tls.boolValue(); v {
		return warn("the daemon listens on TCP with TLS but does not verify client certificates: anyone who reaches the port controls the daemon",
			daemonTargets(env), ev...)
	}
	return warn("the daemon listens on TCP without TLS: anyone who reaches the port controls the daemon (and the host)",
		daemonTargets(env), ev...)
}

func checkDefaultUlimits(_ context.Context, env *Env) Result {
	o, why := lookupDaemonOpt(env, "default-ulimits")
	if why != "" {
		return skip(why)
	}
	if m, ok := o.value.(map[string]any); ok && len(m) > 0 {
		names := make([]string, 0, len(m))
		for k := range m {
			names = append(names, k)
		}
		sort.Strings(names)
		ev := []string{}
		for _, k := range names {
			ev = append(ev, fmt.Sprintf("default ulimit %s: %s", k, formatUlimit(m[k])))
		}
		ev = append(ev, "set in "+settingOrigin(env, o.source))
		return pass(ev...)
	}
	return info("no default ulimits are set: containers inherit the daemon's limits; whether those suit the workloads is for a person to judge",
		o.evidence(env, ""))
}

func formatUlimit(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return formatSetting(v)
	}
	return fmt.Sprintf("soft %v, hard %v", m["Soft"], m["Hard"])
}

func checkUserNamespaces(_ context.Context, env *Env) Result {
	if env.Rootless {
		return note("the daemon is rootless: it and its containers already run in a user namespace owned by an unprivileged user")
	}
	o, why := lookupDaemonOpt(env, "userns-remap")
	if daemonInfoErr(env) == nil {
		if securityOption(env, "userns") != nil {
			return pass("the daemon reports user namespace remapping (security option name=userns)")
		}
		ev := []string{"security options: " + strings.Join(env.Info.SecurityOptions, " ")}
		if why == "" {
			ev = append(ev, o.evidence(env, ""))
		}
		return warn("root in a container is root on the host: user namespace remapping is off", daemonTargets(env), ev...)
	}
	if why != "" {
		return skip(why)
	}
	if s, _ := o.value.(string); s != "" {
		return pass(o.evidence(env, ""))
	}
	return warn("root in a container is root on the host: user namespace remapping is off", daemonTargets(env), o.evidence(env, ""))
}

func checkCgroupParent(_ context.Context, env *Env) Result {
	o, why := lookupDaemonOpt(env, "cgroup-parent")
	if why != "" {
		return skip(why)
	}
	if s, _ := o.value.(string); s != "" {
		return info("containers are placed under a non-default cgroup parent; confirm it is the intended one and carries the intended limits",
			o.evidence(env, ""))
	}
	return pass(o.evidence(env, "docker's own cgroup"))
}

func checkBaseDeviceSize(_ context.Context, env *Env) Result {
	o, why := lookupDaemonOpt(env, "storage-opts")
	if why != "" {
		return skip(why)
	}
	for _, opt := range settingList(o.value) {
		if strings.HasPrefix(strings.ToLower(opt), "dm.basesize=") {
			return info("the devicemapper base device size is changed; confirm the workloads need it, since a larger size lets one container use more of the host's storage",
				o.evidence(env, ""))
		}
	}
	return pass(o.evidence(env, ""))
}

func checkAuthorizationPlugins(_ context.Context, env *Env) Result {
	if daemonInfoErr(env) == nil && len(env.Info.Plugins.Authorization) > 0 {
		return pass("authorization plugins (reported by the daemon): " + strings.Join(env.Info.Plugins.Authorization, ", "))
	}
	o, why := lookupDaemonOpt(env, "authorization-plugins")
	if why != "" && daemonInfoErr(env) != nil {
		return skip(why)
	}
	if why == "" && len(settingList(o.value)) > 0 {
		return pass(o.evidence(env, ""))
	}
	ev := "the daemon reports no authorization plugin"
	if why == "" {
		ev = o.evidence(env, "none")
	}
	return warn("any user who can reach the daemon's socket may do anything through the API: no authorization plugin is in use",
		daemonTargets(env), ev)
}

// Log drivers by where the logs end up.
var (
	localLogDrivers = map[string]bool{"json-file": true, "local": true}
	noLogDrivers    = map[string]bool{"none": true}
)

func checkRemoteLogging(_ context.Context, env *Env) Result {
	var driver, ev string
	if daemonInfoErr(env) == nil && env.Info.LoggingDriver != "" {
		driver, ev = env.Info.LoggingDriver, "default log driver (reported by the daemon): "+env.Info.LoggingDriver
	} else {
		o, why := lookupDaemonOpt(env, "log-driver")
		if why != "" {
			return skip(why)
		}
		driver, ev = "json-file", o.evidence(env, "json-file")
		if s, _ := o.value.(string); s != "" {
			driver = s
		}
	}
	switch {
	case noLogDrivers[driver]:
		return warn("container logs are discarded: the default log driver is none", daemonTargets(env), ev)
	case localLogDrivers[driver]:
		return info("container logs are kept in files on this host; they are central only if an agent ships them elsewhere, which is for a person to confirm", ev)
	case driver == "journald":
		return info("container logs go to the host's journal; they are central only if the journal is forwarded, which is for a person to confirm", ev)
	}
	return pass(ev)
}

func checkNoNewPrivileges(_ context.Context, env *Env) Result {
	o, why := lookupDaemonOpt(env, "no-new-privileges")
	if why != "" {
		return skip(why)
	}
	if v, _ := o.boolValue(); v {
		return pass(o.evidence(env, "false"))
	}
	return warn("processes in containers can gain privileges through setuid and setgid binaries unless each container opts out",
		daemonTargets(env), o.evidence(env, "false"))
}

func checkLiveRestore(_ context.Context, env *Env) Result {
	if daemonInfoErr(env) == nil {
		if env.Info.LiveRestoreEnabled {
			return pass("the daemon reports live restore enabled")
		}
		if env.Info.Swarm.LocalNodeState == swarm.LocalNodeStateActive {
			return note("live restore cannot be used in swarm mode, and this node is part of a swarm", "swarm: active, live restore: off")
		}
		return warn("containers stop whenever the daemon stops or is upgraded: live restore is off", daemonTargets(env),
			"the daemon reports live restore disabled")
	}
	o, why := lookupDaemonOpt(env, "live-restore")
	if why != "" {
		return skip(why)
	}
	if v, _ := o.boolValue(); v {
		return pass(o.evidence(env, "false"))
	}
	return warn("containers stop whenever the daemon stops or is upgraded: live restore is off", daemonTargets(env), o.evidence(env, "false"))
}

func checkUserlandProxy(_ context.Context, env *Env) Result {
	o, why := lookupDaemonOpt(env, "userland-proxy")
	if why != "" {
		return skip(why)
	}
	if v, ok := o.boolValue(); o.set && ok && !v {
		return pass(o.evidence(env, "true"))
	}
	return warn("published ports are served by docker-proxy processes, which widen the attack surface; hairpin NAT does the job",
		daemonTargets(env), o.evidence(env, "true"))
}

func checkDaemonSeccomp(_ context.Context, env *Env) Result {
	if daemonInfoErr(env) == nil {
		sec := securityOption(env, "seccomp")
		if sec == nil {
			return warn("the daemon reports no seccomp support: containers may make every system call",
				daemonTargets(env), "security options: "+strings.Join(env.Info.SecurityOptions, " "))
		}
		return seccompResult(env, sec["profile"], "seccomp profile (reported by the daemon): "+sec["profile"])
	}
	o, why := lookupDaemonOpt(env, "seccomp-profile")
	if why != "" {
		return skip(why)
	}
	profile, _ := o.value.(string)
	if profile == "" {
		profile = "default"
	}
	return seccompResult(env, profile, o.evidence(env, "Docker's default profile"))
}

func seccompResult(env *Env, profile, ev string) Result {
	switch profile {
	case "unconfined":
		return warn("seccomp is turned off for every container by default", daemonTargets(env), ev)
	case "", "default", "builtin":
		return info("Docker's default seccomp profile is in use; a stricter daemon-wide profile fitted to the workloads is optional", ev)
	}
	return pass(ev)
}

func checkExperimental(_ context.Context, env *Env) Result {
	if daemonInfoErr(env) == nil {
		if env.Info.ExperimentalBuild {
			return warn("experimental features are enabled on the daemon", daemonTargets(env), "the daemon reports experimental: true")
		}
		return pass("the daemon reports experimental: false")
	}
	o, why := lookupDaemonOpt(env, "experimental")
	if why != "" {
		return skip(why)
	}
	if v, _ := o.boolValue(); v {
		return warn("experimental features are enabled on the daemon", daemonTargets(env), o.evidence(env, "false"))
	}
	return pass(o.evidence(env, "false"))
}
