package controller

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-sec/vigil/internal/scan"
	scanreport "github.com/vigil-sec/vigil/internal/scan/report"
	"github.com/vigil-sec/vigil/internal/workload"
)

// VulnScanner scans one target and matches its packages against the vulnerability
// database. kind is "image" (ref: an image ID in the local daemon) or "host" (ref: the
// root, "/"). The report's packages must carry their Files, which in-use detection
// needs. The server's scanner runs each scan in a child process at idle priority.
type VulnScanner interface {
	Scan(ctx context.Context, kind, ref string) (*scan.Report, error)
}

// VulnStore keeps scan results across restarts (store.DB does).
type VulnStore interface {
	PutScan(key string, value []byte) error
	DeleteScan(key string) error
	Scans(fn func(key string, value []byte) error) error
}

// VulnConfig tunes the vulnerability service.
type VulnConfig struct {
	// HostInterval is how often the host is scanned again (default 24 h).
	HostInterval time.Duration
	// Poll is how often the workload list is looked at for new images (default 10 s).
	Poll time.Duration
	// ScanTimeout bounds one scan (default 15 min).
	ScanTimeout time.Duration
	// MaxImages bounds the cached image results; the oldest unused go first (default 256).
	MaxImages int
	// ProcRoot is where /proc is (default "/proc").
	ProcRoot string
	// InUseTTL is how long the running processes' mapped files are reused between
	// requests (default 10 s).
	InUseTTL time.Duration
}

func (c *VulnConfig) defaults() {
	c.HostInterval = cmp.Or(c.HostInterval, 24*time.Hour)
	c.Poll = cmp.Or(c.Poll, 10*time.Second)
	c.ScanTimeout = cmp.Or(c.ScanTimeout, 15*time.Minute)
	c.MaxImages = cmp.Or(c.MaxImages, 256)
	c.ProcRoot = cmp.Or(c.ProcRoot, "/proc")
	c.InUseTTL = cmp.Or(c.InUseTTL, 10*time.Second)
}

// Scan states of a target.
const (
	ScanPending  = "pending"
	ScanRunning  = "scanning"
	ScanDone     = "done"
	ScanFailed   = "failed"
	hostKey      = "host"
	imageKeyPfx  = "image:"
	maxRetryWait = 6 * time.Hour
)

// target is one scanned thing: an image (by ID) or the host.
type target struct {
	key      string // hostKey or imageKeyPfx+id
	kind     string // "image" or "host"
	ref      string // image ID or "/"
	names    []string
	state    string
	report   *scan.Report // the last good report; kept while a rescan runs or fails
	err      string
	failures int
	retryAt  time.Time
	lastUsed time.Time // last time a running workload used the image
	queued   bool
}

// Vulnerabilities scans each container image once (cached by image ID and persisted),
// the host at start and every HostInterval, one scan at a time, and answers which
// vulnerabilities each running workload carries, flagging those in packages whose files
// a running process of the workload maps. It is safe for concurrent use.
type Vulnerabilities struct {
	scanner VulnScanner
	list    func() []workload.Workload
	store   VulnStore
	cfg     VulnConfig
	log     *slog.Logger
	procs   *mappedFiles

	wake chan struct{}

	mu      sync.Mutex
	targets map[string]*target
	queue   []string // keys, in order
}

// NewVulnerabilities returns the service; list gives the running workloads, store may
// be nil (results then last as long as the process).
func NewVulnerabilities(scanner VulnScanner, list func() []workload.Workload, store VulnStore, cfg VulnConfig, log *slog.Logger) *Vulnerabilities {
	cfg.defaults()
	return &Vulnerabilities{
		scanner: scanner, list: list, store: store, cfg: cfg, log: log,
		procs:   newMappedFiles(cfg.ProcRoot, cfg.InUseTTL),
		wake:    make(chan struct{}, 1),
		targets: map[string]*target{},
	}
}

// Load reads the persisted results, so that images scanned before a restart are not
// scanned again. A result that cannot be read is dropped (and scanned again).
func (v *Vulnerabilities) Load() error {
	if v.store == nil {
		return nil
	}
	var bad []string
	err := v.store.Scans(func(key string, value []byte) error {
		rep, err := scanreport.ReadFull(bytes.NewReader(value))
		if err != nil || !(key == hostKey || strings.HasPrefix(key, imageKeyPfx)) {
			v.log.Warn("dropping an unreadable stored scan result", "key", key, "err", err)
			bad = append(bad, key)
			return nil
		}
		t := v.targetFor(key)
		t.report, t.state = rep, ScanDone
		if rep.Target.Name != "" && t.kind == "image" {
			t.names = appendNew(t.names, rep.Target.Name)
		}
		return nil
	})
	for _, k := range bad {
		if err := v.store.DeleteScan(k); err != nil {
			v.log.Warn("delete stored scan result", "key", k, "err", err)
		}
	}
	if err != nil {
		return fmt.Errorf("load stored scan results: %w", err)
	}
	return nil
}

// targetFor returns the target of key, creating it; the caller holds mu or runs before
// Run.
func (v *Vulnerabilities) targetFor(key string) *target {
	t := v.targets[key]
	if t == nil {
		t = &target{key: key, state: ScanPending}
		if key == hostKey {
			t.kind, t.ref = "host", "/"
		} else {
			t.kind, t.ref = "image", strings.TrimPrefix(key, imageKeyPfx)
		}
		v.targets[key] = t
	}
	return t
}

// Run scans until ctx ends: the host now and every HostInterval, each new image as it
// appears, one scan at a time.
func (v *Vulnerabilities) Run(ctx context.Context) error {
	v.mu.Lock()
	host := v.targetFor(hostKey)
	if host.report == nil || time.Since(host.report.ScannedAt) > v.cfg.HostInterval/2 {
		v.enqueue(host)
	}
	v.mu.Unlock()
	poll := time.NewTicker(v.cfg.Poll)
	defer poll.Stop()
	hostTick := time.NewTicker(v.cfg.HostInterval)
	defer hostTick.Stop()
	for {
		v.syncImages()
		for ctx.Err() == nil {
			t := v.next()
			if t == nil {
				break
			}
			v.scanOne(ctx, t)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
		case <-v.wake:
		case <-hostTick.C:
			v.mu.Lock()
			v.enqueue(v.targetFor(hostKey))
			v.mu.Unlock()
		}
	}
}

// Rescan queues every known target and the images of the running workloads; the last
// results stay visible until the new ones land. It returns how many were queued.
func (v *Vulnerabilities) Rescan() int {
	v.syncImages()
	v.mu.Lock()
	n := 0
	for _, t := range v.targets {
		t.failures, t.retryAt = 0, time.Time{}
		if !t.queued {
			v.enqueue(t)
			n++
		}
	}
	v.mu.Unlock()
	v.kick()
	return n
}

func (v *Vulnerabilities) kick() {
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// enqueue queues t unless it is; the caller holds mu.
func (v *Vulnerabilities) enqueue(t *target) {
	if t.queued {
		return
	}
	t.queued = true
	if t.report == nil && t.state != ScanFailed {
		t.state = ScanPending
	}
	if t.key == hostKey {
		v.queue = append([]string{t.key}, v.queue...)
		return
	}
	v.queue = append(v.queue, t.key)
}

// syncImages queues the images of running containers that were never scanned, and
// retries failed ones whose wait is over.
func (v *Vulnerabilities) syncImages() {
	now := time.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, w := range v.list() {
		if w.Kind != workload.KindContainer || w.ImageID == "" {
			continue
		}
		t := v.targetFor(imageKeyPfx + w.ImageID)
		t.lastUsed = now
		t.names = appendNew(t.names, w.Image)
		switch {
		case t.queued || t.state == ScanRunning:
		case t.report == nil && t.state == ScanPending:
			v.enqueue(t)
		case t.state == ScanFailed && now.After(t.retryAt):
			v.enqueue(t)
		}
	}
	v.prune()
}

// prune drops the results of the images no running workload used for longest, past
// MaxImages; the caller holds mu.
func (v *Vulnerabilities) prune() {
	var images []*target
	for _, t := range v.targets {
		if t.kind == "image" && !t.queued && t.state != ScanRunning {
			images = append(images, t)
		}
	}
	if len(images) <= v.cfg.MaxImages {
		return
	}
	slices.SortFunc(images, func(a, b *target) int { return a.lastUsed.Compare(b.lastUsed) })
	for _, t := range images[:len(images)-v.cfg.MaxImages] {
		delete(v.targets, t.key)
		if v.store != nil {
			if err := v.store.DeleteScan(t.key); err != nil {
				v.log.Warn("delete stored scan result", "key", t.key, "err", err)
			}
		}
	}
}

func (v *Vulnerabilities) next() *target {
	v.mu.Lock()
	defer v.mu.Unlock()
	for len(v.queue) > 0 {
		key := v.queue[0]
		v.queue = v.queue[1:]
		if t := v.targets[key]; t != nil {
			t.queued = false
			t.state = ScanRunning
			return t
		}
	}
	return nil
}

func (v *Vulnerabilities) scanOne(ctx context.Context, t *target) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.ScanTimeout)
	defer cancel()
	start := time.Now()
	rep, err := v.scanner.Scan(ctx, t.kind, t.ref)
	if err == nil && rep == nil {
		err = errors.New("the scanner returned no report")
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled) {
			// Shutting down: the scan did not fail, it was stopped.
			t.state = ScanPending
			if t.report != nil {
				t.state = ScanDone
			}
			return
		}
		t.failures++
		t.state, t.err = ScanFailed, err.Error()
		t.retryAt = time.Now().Add(min(time.Duration(1<<min(t.failures, 10))*time.Minute, maxRetryWait))
		v.log.Warn("vulnerability scan failed", "target", t.kind, "ref", t.ref, "err", err, "retry_at", t.retryAt)
		return
	}
	t.report, t.state, t.err, t.failures = rep, ScanDone, "", 0
	v.log.Info("vulnerability scan done", "target", t.kind, "ref", t.ref, "packages", len(rep.Packages),
		"findings", len(rep.Findings), "duration", time.Since(start).Round(time.Millisecond))
	if v.store != nil {
		var buf bytes.Buffer
		err := scanreport.WriteFull(&buf, rep)
		if err == nil {
			err = v.store.PutScan(t.key, buf.Bytes())
		}
		if err != nil {
			v.log.Warn("persist scan result", "key", t.key, "err", err)
		}
	}
}

// VulnQuery selects what List returns. Empty fields select everything.
type VulnQuery struct {
	// Workload is a workload ID (resolved by the caller).
	Workload string
	// Image matches an image ID, an ID prefix of at least 4 hex digits (with or
	// without "sha256:") or a reference a workload was created from.
	Image string
	// Host: "true" for the host only, "false" for everything but the host.
	Host string
	// MinSeverity drops findings below it.
	MinSeverity string
}

// VulnTarget is what the API answers for one workload, image or the host.
type VulnTarget struct {
	Kind         string             `json:"kind"` // container, host or image (scanned, no running container)
	Workload     string             `json:"workload,omitempty"`
	WorkloadName string             `json:"workload_name,omitempty"`
	Image        string             `json:"image,omitempty"`
	ImageID      string             `json:"image_id,omitempty"`
	State        string             `json:"state"`
	Error        string             `json:"error,omitempty"`
	ScannedAt    time.Time          `json:"scanned_at,omitzero"`
	DBAge        time.Duration      `json:"db_age_ns,omitempty"`
	OS           *scan.OS           `json:"os,omitempty"`
	Layers       []scan.Layer       `json:"layers,omitempty"`
	Summary      scanreport.Summary `json:"summary"`
	Findings     []scan.Finding     `json:"findings"`
	Warnings     []string           `json:"warnings,omitempty"`
}

// List answers q: one entry per running workload (with its image's findings, in_use
// set from its processes) and the host, and, when q.Image is given, the matching images
// no running container uses.
func (v *Vulnerabilities) List(q VulnQuery) []VulnTarget {
	workloads := v.list()
	v.mu.Lock()
	type job struct {
		w      *workload.Workload
		t      *target
		names  []string
		report *scan.Report
	}
	var jobs []job
	seenImage := map[string]bool{}
	for i := range workloads {
		w := &workloads[i]
		if q.Workload != "" && w.ID != q.Workload {
			continue
		}
		var t *target
		switch {
		case w.Kind == workload.KindHost:
			if q.Host == "false" || q.Image != "" {
				continue
			}
			t = v.targets[hostKey]
		case q.Host == "true" || w.ImageID == "":
			continue
		default:
			t = v.targets[imageKeyPfx+w.ImageID]
			seenImage[w.ImageID] = true
			// A container matches its own reference or its image's ID, not the other
			// tags the same image has.
			if q.Image != "" && !imageMatches(q.Image, w.ImageID, []string{w.Image}) {
				continue
			}
		}
		j := job{w: w, t: t}
		if t != nil {
			j.report = t.report
		}
		jobs = append(jobs, j)
	}
	if q.Image != "" && q.Workload == "" && q.Host != "true" {
		for _, t := range v.targets {
			if t.kind == "image" && !seenImage[t.ref] && imageMatches(q.Image, t.ref, t.names) {
				jobs = append(jobs, job{t: t, report: t.report, names: slices.Clone(t.names)})
			}
		}
	}
	// Copy what is needed under the lock; in-use detection reads /proc without it.
	out := make([]VulnTarget, len(jobs))
	for i, j := range jobs {
		vt := &out[i]
		vt.State = ScanPending
		if j.t != nil {
			vt.State, vt.Error = j.t.state, j.t.err
			if j.t.state == ScanRunning && j.report != nil {
				vt.State = ScanRunning
			}
		}
		switch {
		case j.w == nil:
			vt.Kind, vt.ImageID = "image", j.t.ref
			if len(j.names) > 0 {
				vt.Image = j.names[0]
			}
		case j.w.Kind == workload.KindHost:
			vt.Kind, vt.Workload, vt.WorkloadName = "host", j.w.ID, j.w.Name
		default:
			vt.Kind, vt.Workload, vt.WorkloadName, vt.Image, vt.ImageID = "container", j.w.ID, j.w.Name, j.w.Image, j.w.ImageID
		}
	}
	v.mu.Unlock()

	for i, j := range jobs {
		vt := &out[i]
		vt.Findings = []scan.Finding{}
		if j.report == nil {
			continue
		}
		rep := j.report
		vt.ScannedAt, vt.DBAge, vt.OS, vt.Layers, vt.Warnings = rep.ScannedAt, rep.DBAge, rep.OS, rep.Layers, rep.Warnings
		fs := make([]scan.Finding, 0, len(rep.Findings))
		for _, f := range rep.Findings {
			if q.MinSeverity == "" || scanreport.Rank(f.Severity) >= scanreport.Rank(q.MinSeverity) {
				f.InUse = false
				fs = append(fs, f)
			}
		}
		if j.w != nil && j.w.PID > 0 {
			v.markInUse(j.w, fs)
		}
		scanreport.Sort(fs)
		vt.Findings = fs
		vt.Summary = scanreport.Summarize(&scan.Report{Inventory: scan.Inventory{Packages: rep.Packages}, Findings: fs})
	}
	slices.SortStableFunc(out, func(a, b VulnTarget) int {
		rank := map[string]int{"host": 0, "container": 1, "image": 2}
		return cmp.Or(cmp.Compare(rank[a.Kind], rank[b.Kind]), cmp.Compare(a.WorkloadName, b.WorkloadName), cmp.Compare(a.ImageID, b.ImageID))
	})
	return out
}

// markInUse sets InUse on the findings whose package owns a file that a process of w
// maps (or runs as its executable).
func (v *Vulnerabilities) markInUse(w *workload.Workload, fs []scan.Finding) {
	if len(fs) == 0 {
		return
	}
	mapped, root, err := v.procs.of(w.PID)
	if err != nil && w.Kind == workload.KindHost {
		// PID 1 is not always readable (a hardened sandbox); Vigil itself runs in the
		// host's mount namespace, as the registry assumes for the host's network one.
		mapped, root, err = v.procs.of(os.Getpid())
	}
	if err != nil {
		v.log.Debug("in-use detection", "workload", w.Name, "err", err)
		return
	}
	res := newResolver(root)
	for i := range fs {
		p := &fs[i].Package
		fs[i].InUse = mapped[p.Location] || mapped[res.resolve(p.Location)]
		for _, f := range p.Files {
			if fs[i].InUse {
				break
			}
			fs[i].InUse = mapped[f] || mapped[res.resolve(f)]
		}
	}
}

// imageMatches says whether q names the image id or one of its references.
func imageMatches(q, id string, names []string) bool {
	if q == id || slices.Contains(names, q) {
		return true
	}
	hex := strings.TrimPrefix(q, "sha256:")
	return len(hex) >= 4 && strings.HasPrefix(strings.TrimPrefix(id, "sha256:"), hex)
}

func appendNew(list []string, s string) []string {
	if s == "" || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
