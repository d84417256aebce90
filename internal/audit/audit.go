package audit

import (
	"context"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
)

// Benchmark names the benchmark whose control ids the checks follow.
const Benchmark = "CIS Docker Benchmark v1.8.0"

// Status is a check's result.
type Status string

const (
	Pass Status = "PASS" // the recommendation is met
	Warn Status = "WARN" // it is not: something to fix
	Info Status = "INFO" // facts for a person to judge (a manual control)
	Note Status = "NOTE" // met or not applicable, with a remark worth reading
	Skip Status = "SKIP" // could not be checked here; Reason says why
)

// Check is one control of the benchmark.
type Check struct {
	// ID is the benchmark's control id, e.g. "5.4"; its first number is the section.
	ID    string
	Title string // our own words
	Level int    // 1 or 2
	// Scored marks controls the benchmark calls Automated: only they count in the score.
	// A Manual control still says WARN when its answer is certain (icc enabled, say).
	Scored      bool
	Remediation string
	// Run evaluates the control. It fills Status, Reason, Evidence and Targets of the
	// result it returns; the rest is taken from the Check.
	Run func(ctx context.Context, env *Env) Result
}

// Section returns the control's section number.
func (c *Check) Section() string {
	s, _, _ := strings.Cut(c.ID, ".")
	return s
}

// Target is an object a result is about: the containers, images or files that fail (or
// pass) the control.
type Target struct {
	Kind string `json:"kind"` // container, image, file, daemon, host
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
}

// Result is the outcome of one check.
type Result struct {
	ID          string   `json:"id"`
	Section     string   `json:"section"`
	Title       string   `json:"title"`
	Level       int      `json:"level"`
	Scored      bool     `json:"scored"`
	Status      Status   `json:"status"`
	Reason      string   `json:"reason,omitempty"`   // why it is WARN/SKIP/INFO/NOTE, in a sentence
	Evidence    []string `json:"evidence,omitempty"` // what was found: modes, values, settings
	Targets     []Target `json:"targets,omitempty"`  // for WARN: the offending objects
	Remediation string   `json:"remediation,omitempty"`
}

// Env is what the checks read. Loaders fill it from the real host and daemon; tests fill
// it from fixtures. Checks never touch the system except through it.
type Env struct {
	// Root is where the host's filesystem is seen ("/" normally; a fixture tree in
	// tests). Every host path a check reads is joined to it.
	Root string
	// Info and Version are the daemon's answers; ServerVersion is Version.Version.
	Info          system.Info
	ServerVersion string
	APIVersion    string
	// Daemon is the daemon's effective configuration: daemon.json merged with the
	// dockerd command line.
	Daemon DaemonConfig
	// Rootless is set when the daemon runs rootless (Info.SecurityOptions says so);
	// host-file checks then look at the user's paths and some controls do not apply.
	Rootless bool
	// Containers are every container (running or not), fully inspected; Images every
	// image, fully inspected.
	Containers []container.InspectResponse
	Images     []image.InspectResponse
	// ImageHistory is each image's build history (newest step first), by image ID:
	// what tells ADD from COPY and a lone package-index update, where knowable.
	ImageHistory map[string][]image.HistoryResponseItem
	// Now is the audit's clock.
	Now time.Time
	// Errors met while loading, by what was being loaded; checks that needed that part
	// SKIP with the error as their reason.
	LoadErrors map[string]error
}

// DaemonConfig is the daemon's configuration as far as the benchmark cares. Each field is
// set from daemon.json or the dockerd command line (the command line wins, as in dockerd);
// Sources says where each setting came from.
type DaemonConfig struct {
	// Found is false when neither daemon.json nor a dockerd process could be read.
	Found      bool
	ConfigFile string   // the daemon.json path used (from --config-file or the default)
	Cmdline    []string // the dockerd command line, when a dockerd process was found
	// Settings maps dockerd option names without dashes (as in daemon.json: "icc",
	// "log-level", "iptables", "insecure-registries", "storage-driver", "tlsverify",
	// "default-ulimits", "userns-remap", "cgroup-parent", "authorization-plugins",
	// "log-driver", "live-restore", "userland-proxy", "seccomp-profile", "experimental",
	// "no-new-privileges", "hosts", "tls", "tlscacert", "tlscert", "tlskey", ...) to their
	// values as JSON-decoded values (bool, string, float64, []any, map[string]any).
	Settings map[string]any
	Sources  map[string]string // option -> "daemon.json" or "cmdline"
}

// Report is the outcome of an audit run.
type Report struct {
	Benchmark     string    `json:"benchmark"`
	Host          string    `json:"host"`
	DockerVersion string    `json:"docker_version"`
	Rootless      bool      `json:"rootless"`
	StartedAt     time.Time `json:"started_at"`
	Duration      string    `json:"duration"`
	Results       []Result  `json:"results"`
	Summary       Summary   `json:"summary"`
}

// Summary counts results. Score is the share of scored (Automated) controls that pass,
// among those that were checked (PASS or WARN), in percent.
type Summary struct {
	Pass  int     `json:"pass"`
	Warn  int     `json:"warn"`
	Info  int     `json:"info"`
	Note  int     `json:"note"`
	Skip  int     `json:"skip"`
	Total int     `json:"total"`
	Score float64 `json:"score"`

	scoredPass, scoredChecked int
}

// Filter selects checks: by section ("5") and/or by id ("5.4"). Empty selects all.
type Filter struct {
	Sections []string
	IDs      []string
}

func (f Filter) match(c *Check) bool {
	if len(f.Sections) == 0 && len(f.IDs) == 0 {
		return true
	}
	for _, s := range f.Sections {
		if c.Section() == s {
			return true
		}
	}
	for _, id := range f.IDs {
		if c.ID == id {
			return true
		}
	}
	return false
}

// Checks returns every check, in benchmark order.
func Checks() []Check {
	var all []Check
	for _, section := range [][]Check{hostChecks, daemonChecks, fileChecks, imageChecks, containerChecks, operationsChecks} {
		all = append(all, section...)
	}
	return all
}

// Run evaluates the selected checks against env.
func Run(ctx context.Context, env *Env, f Filter) Report {
	start := time.Now()
	rep := Report{Benchmark: Benchmark, Host: env.Info.Name, DockerVersion: env.ServerVersion, Rootless: env.Rootless, StartedAt: start.UTC()}
	for _, c := range Checks() {
		if !f.match(&c) {
			continue
		}
		r := runOne(ctx, env, &c)
		rep.Results = append(rep.Results, r)
		rep.Summary.add(&r)
	}
	rep.Summary.finish()
	rep.Duration = time.Since(start).Round(time.Millisecond).String()
	return rep
}

// runOne evaluates a check, turning a panic in it into a SKIP so that one broken check
// does not lose the report.
func runOne(ctx context.Context, env *Env, c *Check) (r Result) {
	defer func() {
		if p := recover(); p != nil {
			r = Result{Status: Skip, Reason: "internal error in the check"}
			r = fill(r, c)
		}
	}()
	return fill(c.Run(ctx, env), c)
}

func fill(r Result, c *Check) Result {
	r.ID, r.Section, r.Title, r.Level, r.Scored = c.ID, c.Section(), c.Title, c.Level, c.Scored
	if r.Status == "" {
		r.Status, r.Reason = Skip, "the check gave no result"
	}
	if r.Status != Pass {
		r.Remediation = c.Remediation
	}
	return r
}

func (s *Summary) add(r *Result) {
	s.Total++
	if r.Scored && (r.Status == Pass || r.Status == Warn) {
		s.scoredChecked++
		if r.Status == Pass {
			s.scoredPass++
		}
	}
	switch r.Status {
	case Pass:
		s.Pass++
	case Warn:
		s.Warn++
	case Info:
		s.Info++
	case Note:
		s.Note++
	case Skip:
		s.Skip++
	}
}

func (s *Summary) finish() {
	if s.scoredChecked > 0 {
		s.Score = float64(int(1000*float64(s.scoredPass)/float64(s.scoredChecked)+0.5)) / 10
	}
}

// Helpers that checks use to build their results.

func pass(evidence ...string) Result { return Result{Status: Pass, Evidence: evidence} }

func warn(reason string, targets []Target, evidence ...string) Result {
	return Result{Status: Warn, Reason: reason, Targets: targets, Evidence: evidence}
}

func info(reason string, evidence ...string) Result {
	return Result{Status: Info, Reason: reason, Evidence: evidence}
}

func note(reason string, evidence ...string) Result {
	return Result{Status: Note, Reason: reason, Evidence: evidence}
}

func skip(reason string) Result { return Result{Status: Skip, Reason: reason} }
