package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/internal/scan"
	"github.com/vigil-sec/vigil/internal/scan/inventory"
	"github.com/vigil-sec/vigil/internal/scan/report"
	"github.com/vigil-sec/vigil/internal/scan/vulndb"
	"github.com/vigil-sec/vigil/internal/workload"
)

type scanOptions struct {
	output        string
	outputFile    string
	db            string
	failOn        string
	ignoreUnfixed bool
	severities    []string
	maxDBAge      time.Duration
	tempDir       string
	// reportFiles makes -o json carry the files of every package: the protocol between
	// `vigil up` and the scans it runs as child processes.
	reportFiles bool
}

func newScanCommand(g *globals) *cobra.Command {
	o := &scanOptions{}
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "Scan an image, a container, the host or a directory for known vulnerabilities",
		Long: `Scan a target for packages with known vulnerabilities: OS packages (dpkg, apk, rpm) and
language packages (Go binaries, npm, Python, Java, Rust, Ruby, PHP, .NET), matched against
the offline OSV database (--db; created from the starter database shipped in vigil on first
use, refreshed with 'vigil db update'). Runs locally; no server is needed.

Exit status: 0, or 3 when --fail-on is given and a finding at or above that severity
remains after the filters (--ignore-unfixed, --severity); 1 on an error.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVarP(&o.output, "output", "o", "table", "output format: table, json, sarif, cyclonedx or spdx")
	pf.StringVar(&o.outputFile, "output-file", "", "write the report to this file instead of standard output")
	pf.StringVar(&o.db, "db", vulndb.DefaultDir(), "directory of the vulnerability database")
	pf.StringVar(&o.failOn, "fail-on", "", "exit with status 3 when a finding is at least this severe: low, medium, high or critical")
	pf.BoolVar(&o.ignoreUnfixed, "ignore-unfixed", false, "leave out vulnerabilities that no released version fixes")
	pf.StringSliceVar(&o.severities, "severity", nil, "report only these severities (unknown, low, medium, high, critical), repeatable or comma-separated")
	pf.DurationVar(&o.maxDBAge, "max-db-age", vulndb.StaleAfter, "warn when the database's newest data is older than this (the scan still runs)")
	pf.StringVar(&o.tempDir, "temp-dir", "", "where saved images and temporary copies go (default: $TMPDIR or /tmp)")
	pf.BoolVar(&o.reportFiles, "report-files", false, "with -o json, include each package's files (used by vigil up)")
	_ = pf.MarkHidden("report-files")

	sub := func(use, short, long string, args cobra.PositionalArgs, kind func([]string) (string, string)) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Long: long, Args: args,
			RunE: func(cmd *cobra.Command, a []string) error {
				k, ref := kind(a)
				return runScan(cmd.Context(), g, o, k, ref)
			},
		}
	}
	cmd.AddCommand(
		sub("image REF|ARCHIVE", "Scan an image: in the local Docker daemon, a docker save archive, or an OCI layout",
			`Scan an image: a name or ID in the local Docker daemon, a 'docker save' archive (plain or
gzip), or an OCI image layout (directory or archive). Layers are applied in order with
their whiteouts; each finding names the layer that introduced its package.`,
			cobra.ExactArgs(1), func(a []string) (string, string) { return "image", a[0] }),
		sub("container ID|NAME", "Scan a running container's filesystem (through /proc/PID/root; as root)",
			"", cobra.ExactArgs(1), func(a []string) (string, string) { return "container", a[0] }),
		sub("host [ROOT]", "Scan this host (or the root filesystem mounted at ROOT)",
			"", cobra.MaximumNArgs(1), func(a []string) (string, string) {
				if len(a) == 0 {
					return "host", "/"
				}
				return "host", a[0]
			}),
		sub("dir PATH", "Scan a directory tree (an unpacked root filesystem, a project)",
			"", cobra.ExactArgs(1), func(a []string) (string, string) { return "dir", a[0] }),
	)
	return cmd
}

// scanFilter checks the filter and threshold flags.
func (o *scanOptions) filter() (report.Filter, string, error) {
	flt := report.Filter{IgnoreUnfixed: o.ignoreUnfixed}
	for _, s := range o.severities {
		l, err := report.ParseSeverity(s)
		if err != nil {
			return flt, "", fmt.Errorf("--severity: %w", err)
		}
		flt.Severities = append(flt.Severities, l)
	}
	threshold := ""
	if o.failOn != "" {
		var err error
		if threshold, err = report.ParseThreshold(o.failOn); err != nil {
			return flt, "", err
		}
	}
	return flt, threshold, nil
}

func runScan(ctx context.Context, g *globals, o *scanOptions, kind, ref string) error {
	format, err := report.ParseFormat(o.output)
	if err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	if o.reportFiles && format != report.JSON {
		return errors.New("--report-files goes with -o json")
	}
	flt, threshold, err := o.filter()
	if err != nil {
		return err
	}
	log, err := g.logger()
	if err != nil {
		return err
	}
	db, err := vulndb.Open(o.db)
	if err != nil {
		return fmt.Errorf("open the vulnerability database: %w", err)
	}
	defer db.Close()
	st, err := db.Status()
	if err != nil {
		return fmt.Errorf("vulnerability database: %w", err)
	}
	if age := st.Age(); o.maxDBAge > 0 && age > o.maxDBAge {
		fmt.Fprintf(g.stderr, "vigil: warning: the vulnerability database's newest data is %s old (over --max-db-age %s); "+
			"update it with 'vigil db update' (findings newer than that are missing)\n", humanAge(age), o.maxDBAge)
	}

	bar := newProgressBar(g.stderr, format != report.JSON && !o.reportFiles)
	bar.bytes = kind == "image" // image data read; files walked for the other kinds
	opts := inventory.Options{TempDir: o.tempDir, Progress: bar.update, Log: log}
	var inv *scan.Inventory
	switch kind {
	case "image":
		inv, err = inventory.ScanImage(ctx, ref, opts)
	case "container":
		inv, err = inventory.ScanContainer(ctx, ref, opts)
	default:
		inv, err = inventory.ScanRoot(ctx, kind, ref, opts)
	}
	bar.done()
	if err != nil {
		return fmt.Errorf("scan %s %s: %w", kind, ref, err)
	}
	findings, warnings, err := db.Match(inv.Packages)
	if err != nil {
		return fmt.Errorf("match %s %s against the vulnerability database: %w", kind, ref, err)
	}
	rep := &scan.Report{Inventory: *inv, Findings: findings, ScannedAt: time.Now().UTC(), DBAge: st.Age()}
	rep.Warnings = append(rep.Warnings, warnings...)
	if rep.Findings == nil {
		rep.Findings = []scan.Finding{}
	}
	flt.Apply(rep)
	if !o.reportFiles {
		printWarnings(g.stderr, rep.Warnings)
	}

	tool := report.Tool{Name: "vigil", Version: buildVersion().Version}
	write := func(w io.Writer) error {
		if o.reportFiles {
			return report.WriteFull(w, rep)
		}
		return report.Write(w, format, rep, tool)
	}
	if o.outputFile != "" {
		err = writeFileAtomic(o.outputFile, write)
	} else {
		err = write(g.stdout)
	}
	if err != nil {
		return err
	}
	if threshold != "" {
		if n := report.Reaching(rep.Findings, threshold); n > 0 {
			return &exitError{code: exitFindings, err: fmt.Errorf("%d findings at or above %s", n, threshold)}
		}
	}
	return nil
}

// printWarnings shows the first few warnings (files that could not be read); the JSON
// output has them all.
func printWarnings(w io.Writer, warnings []string) {
	const shown = 5
	for i, s := range warnings {
		if i == shown {
			fmt.Fprintf(w, "vigil: warning: and %d more (see -o json)\n", len(warnings)-shown)
			break
		}
		fmt.Fprintf(w, "vigil: warning: %s\n", s)
	}
}

// writeFileAtomic writes path through a temporary file renamed into place, so that a CI
// step never reads half a report.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("--output-file: %w", err)
	}
	defer os.Remove(f.Name()) // after a successful rename there is nothing left to remove
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func humanAge(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
	return d.Round(time.Minute).String()
}

// progressBar draws a scan's progress on a terminal's standard error, at most ten times
// a second, and clears its line when done. It draws nothing unless stderr is a terminal
// (and the output is not JSON, which scripts read). It is safe for concurrent use.
type progressBar struct {
	w       io.Writer
	mu      sync.Mutex
	last    time.Time
	drawn   bool
	enabled bool
	bytes   bool // done counts bytes (images), not files
}

func newProgressBar(stderr io.Writer, wanted bool) *progressBar {
	f, ok := stderr.(*os.File)
	return &progressBar{w: stderr, enabled: wanted && ok && isTerminal(f)}
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// update is inventory.Options.Progress: bytes of image data read of total, or files
// walked when total is 0.
func (b *progressBar) update(done, total int64) {
	if !b.enabled {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if now := time.Now(); now.Sub(b.last) >= 100*time.Millisecond || total > 0 && done >= total {
		b.last = now
		fmt.Fprint(b.w, "\r\033[K"+progressLine(done, total, 30, b.bytes))
		b.drawn = true
	}
}

func (b *progressBar) done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
}

// progressLine renders one state of the bar, width cells wide.
func progressLine(done, total int64, width int, bytes bool) string {
	switch {
	case total <= 0 && bytes:
		return "scanning: " + mib(done) + " read"
	case total <= 0:
		return fmt.Sprintf("scanning: %d files", done)
	}
	done = min(max(done, 0), total)
	fill := int(int64(width) * done / total)
	return fmt.Sprintf("scanning [%s%s] %3d%% %s / %s", strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
		100*done/total, mib(done), mib(total))
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// childScanner is the server's controller.VulnScanner: each scan is `vigil scan ... -o
// json --report-files`, run as a child process at idle CPU priority (SCHED_IDLE, nice 19)
// and idle I/O priority, on one core (GOMAXPROCS=1) with a soft memory limit. The kernel
// then gives it only what the data path leaves unused, a scan's memory goes back to the
// system when it ends, and a crash in an extractor cannot take the server down.
type childScanner struct {
	exe     string
	db      string
	tempDir string
	env     []string
	log     *slog.Logger
}

func newChildScanner(db string, env []string, log *slog.Logger) (*childScanner, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("vulnerability scans: find vigil's own executable: %w", err)
	}
	return &childScanner{exe: exe, db: db, env: env, log: log}, nil
}

// scanMemoryLimit is the child's soft memory limit (GOMEMLIMIT).
const scanMemoryLimit = "768MiB"

// maxScanOutput bounds what is read of a child's report.
const maxScanOutput = 512 << 20

func (c *childScanner) Scan(ctx context.Context, kind, ref string) (*scan.Report, error) {
	args := []string{"scan", kind, ref, "-o", "json", "--report-files", "--db", c.db, "--log-level", "error"}
	if c.tempDir != "" {
		args = append(args, "--temp-dir", c.tempDir)
	}
	cmd := exec.CommandContext(ctx, c.exe, args...)
	cmd.Env = append(append(os.Environ(), c.env...), "GOMAXPROCS=1", "GOMEMLIMIT="+scanMemoryLimit)
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 8 << 10}
	cmd.Stdout = &limitedWriter{w: &stdout, n: maxScanOutput}
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	// A scan must not outlive a server that is killed (the server runs as root, so the
	// starting thread is returned to the runtime, not retired, and does not end first).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := startIdle(cmd); err != nil {
		return nil, fmt.Errorf("start scan of %s %s: %w", kind, ref, err)
	}
	if err := cmd.Wait(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		msg = strings.TrimPrefix(msg, "vigil: ")
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("scan of %s %s: %s", kind, ref, msg)
	}
	rep, err := report.ReadFull(&stdout)
	if err != nil {
		return nil, fmt.Errorf("scan of %s %s: %w", kind, ref, err)
	}
	return rep, nil
}

// startIdle starts cmd from an OS thread whose CPU and I/O priorities were lowered
// first, so that the child inherits them from its first instruction on (setting them
// on the child after the start would leave the threads the Go runtime creates at once
// at normal priority). The thread's priorities are then restored; where that is not
// allowed (not root) the thread stays locked, and the runtime retires it when the
// goroutine ends rather than run other goroutines at idle priority.
func startIdle(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		saved, err := threadPriority()
		if err != nil {
			errc <- err
			return
		}
		if err := setThreadPriority(threadPrio{nice: 19, policy: unix.SCHED_IDLE, ioprio: ioprioClassIdle << ioprioClassShift}); err != nil {
			errc <- err
			return
		}
		errc <- cmd.Start()
		if setThreadPriority(saved) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return <-errc
}

const (
	ioprioWhoProcess = 1 // IOPRIO_WHO_PROCESS: one thread, on Linux
	ioprioClassIdle  = 3 // IOPRIO_CLASS_IDLE
	ioprioClassShift = 13
)

// threadPrio is a thread's CPU and I/O priorities; on Linux all three are per thread
// and inherited across fork.
type threadPrio struct {
	nice   int
	policy uint32
	ioprio uintptr
}

func threadPriority() (threadPrio, error) {
	var p threadPrio
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		return p, fmt.Errorf("getpriority: %w", err)
	}
	p.nice = 20 - raw // the system call answers 20 - nice, to stay positive
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return p, fmt.Errorf("sched_getattr: %w", err)
	}
	p.policy = attr.Policy
	io, _, e := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, 0, 0)
	if e != 0 {
		return p, fmt.Errorf("ioprio_get: %w", e)
	}
	p.ioprio = io
	return p, nil
}

func setThreadPriority(p threadPrio) error {
	if err := unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: p.policy, Nice: int32(p.nice)}, 0); err != nil {
		return fmt.Errorf("sched_setattr: %w", err)
	}
	if err := unix.Setpriority(unix.PRIO_PROCESS, 0, p.nice); err != nil {
		return fmt.Errorf("setpriority: %w", err)
	}
	if _, _, e := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, p.ioprio); e != 0 {
		return fmt.Errorf("ioprio_set: %w", e)
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// limitedWriter fails once more than n bytes were written.
type limitedWriter struct {
	w io.Writer
	n int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		return 0, fmt.Errorf("scan output over %d bytes", maxScanOutput)
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}

var _ controller.VulnScanner = (*childScanner)(nil)

// newVulnerabilitiesCommand is the client of the server's vulnerability service.
func newVulnerabilitiesCommand(g *globals) *cobra.Command {
	var output, wl, image, severity string
	var hostOnly bool
	cmd := &cobra.Command{
		Use:     "vulnerabilities",
		Aliases: []string{"vulns"},
		Short:   "List the vulnerabilities of the running workloads and the host (from the server)",
		Long: `List what the server's scans found: for each running container the vulnerabilities of
its image, and those of the host. Findings in packages whose files a running process of
the workload maps are marked IN USE: patch those first. The server scans each new image
once, and the host at start and daily; 'vigil vulnerabilities rescan' scans everything again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.clientFor(output)
			if err != nil {
				return err
			}
			q := url.Values{}
			if wl != "" {
				q.Set("workload", wl)
			}
			if image != "" {
				q.Set("image", image)
			}
			if hostOnly {
				q.Set("host", "true")
			}
			if severity != "" {
				q.Set("severity", severity)
			}
			list, err := c.Vulnerabilities(cmd.Context(), q)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSONTo(g.stdout, list)
			}
			return printVulnTargets(g.stdout, list)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	f.StringVar(&wl, "workload", "", "only this workload (ID, ID prefix or name)")
	f.StringVar(&image, "image", "", "only this image (ID, ID prefix or reference), running or not")
	f.BoolVar(&hostOnly, "host", false, "only the host")
	f.StringVar(&severity, "severity", "", "only findings at least this severe: low, medium, high or critical")
	cmd.AddCommand(&cobra.Command{
		Use:   "rescan",
		Short: "Scan the host and every image again (in the background, one at a time)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ans, err := c.RescanVulnerabilities(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%d targets queued; 'vigil vulnerabilities' shows them as they finish\n", ans.Queued)
			return nil
		},
	})
	return cmd
}

func printVulnTargets(out io.Writer, list []controller.VulnTarget) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for i, vt := range list {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		title := vt.Kind + " " + vt.WorkloadName
		if vt.Kind == "image" {
			title = "image " + vt.Image + " (not running)"
		} else if vt.Image != "" {
			title += " (" + vt.Image + ")"
		}
		if vt.OS != nil && vt.OS.PrettyName != "" {
			title += ": " + vt.OS.PrettyName
		}
		fmt.Fprintln(tw, title)
		switch {
		case vt.ScannedAt.IsZero() && vt.State == controller.ScanFailed:
			fmt.Fprintf(tw, "  scan failed: %s\n", vt.Error)
			continue
		case vt.ScannedAt.IsZero():
			fmt.Fprintf(tw, "  %s\n", vt.State)
			continue
		}
		s := vt.Summary
		fmt.Fprintf(tw, "  scanned %s ago (%s); %d packages, %d findings: %d critical, %d high, %d medium, %d low, %d unknown; %d in use\n",
			humanAge(time.Since(vt.ScannedAt)), vt.State, s.Packages, s.Findings,
			s.BySeverity[scan.SeverityCritical], s.BySeverity[scan.SeverityHigh], s.BySeverity[scan.SeverityMedium],
			s.BySeverity[scan.SeverityLow], s.BySeverity[scan.SeverityUnknown], s.InUse)
		if vt.Error != "" {
			fmt.Fprintf(tw, "  last rescan failed: %s\n", vt.Error)
		}
		if len(vt.Findings) == 0 {
			continue
		}
		fmt.Fprintln(tw, "  SEVERITY\tID\tPACKAGE\tINSTALLED\tFIXED\tIN USE\tLOCATION")
		for _, f := range vt.Findings {
			use := "-"
			if f.InUse {
				use = "yes"
			}
			fixed := f.FixedVersion
			if fixed == "" {
				fixed = "(none)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", strings.ToUpper(f.Severity), f.ID, f.Package.Name, f.Package.Version, fixed, use, f.Package.Location)
		}
	}
	if len(list) == 0 {
		fmt.Fprintln(tw, "no workload matches")
	}
	return tw.Flush()
}

// vulnFlags adds the flags of the server's vulnerability service to `vigil up`.
func (o *upOptions) vulnFlags(f *pflag.FlagSet) {
	f.StringVar(&o.vulnDB, "vuln-db", vulndb.DefaultDir(), "directory of the vulnerability database the server's scans use")
}

// newServerVulns builds the server's vulnerability service: scans in child processes at
// idle priority, results persisted in the store and loaded back, so that an image is
// scanned once.
func newServerVulns(o *upOptions, st controller.VulnStore, list func() []workload.Workload, log *slog.Logger) (*controller.Vulnerabilities, error) {
	var env []string
	if o.dockerHost != "" {
		env = append(env, "DOCKER_HOST="+o.dockerHost)
	}
	sc, err := newChildScanner(o.vulnDB, env, log)
	if err != nil {
		return nil, err
	}
	v := controller.NewVulnerabilities(sc, list, st, controller.VulnConfig{}, log)
	if err := v.Load(); err != nil {
		// A cache: start empty rather than not at all.
		log.Warn("vulnerability scan results not loaded; scanning again", "err", err)
	}
	return v, nil
}
