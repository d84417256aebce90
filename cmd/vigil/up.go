package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-sec/vigil/internal/agent"
	"github.com/vigil-sec/vigil/internal/api"
	"github.com/vigil-sec/vigil/internal/audit"
	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/internal/enforce"
	"github.com/vigil-sec/vigil/internal/flow"
	"github.com/vigil-sec/vigil/internal/policy"
	"github.com/vigil-sec/vigil/internal/procmon"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/workload"
	"github.com/vigil-sec/vigil/internal/workload/docker"
)

type upOptions struct {
	listen        string
	dataDir       string
	dockerHost    string
	maxFlows      int
	flowHistory   int
	auditInterval time.Duration
	autoPromote   time.Duration
	eventsMax     int
	eventsMaxAge  time.Duration
	failOpen      bool
	vulnDB        string
}

// nftKernel applies enforcement plans with nftables.
type nftKernel struct{}

func (nftKernel) Apply(p enforce.Plan) error                { return enforce.Apply(p) }
func (nftKernel) Remove(netns string) error                 { return enforce.Remove(netns) }
func (nftKernel) CutDisallowed(p enforce.Plan) (int, error) { return enforce.CutDisallowed(p) }
func (nftKernel) ListenDenied(ctx context.Context, netns string, fn func(enforce.Denied)) error {
	return enforce.ListenDenied(ctx, netns, fn)
}
func (nftKernel) Reset(netns string, inode uint64, local, remote netip.AddrPort) error {
	err := procmon.DestroySocket(procmon.NetNSRef{Path: netns, Inode: inode}, local, remote)
	if errors.Is(err, procmon.ErrNoSuchSocket) {
		return fmt.Errorf("%w: %w", controller.ErrNoConnection, err)
	}
	return err
}

// socketOwners adapts procmon's socket lookup to what the agent asks.
type socketOwners struct{ *procmon.SocketOwners }

func (s socketOwners) Lookup(ctx context.Context, ns workload.NetNS, proto uint8, local, remote netip.AddrPort) (flow.Process, bool) {
	p, ok := s.SocketOwners.Lookup(ctx, procmon.NetNSRef{Path: ns.Path, Inode: ns.Inode}, proto, local, remote)
	return flow.Process{PID: p.PID, Comm: p.Comm, Exe: p.Exe, UID: p.UID}, ok
}

func newUpCommand(g *globals) *cobra.Command {
	o := &upOptions{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the Vigil server on this Docker host (as root)",
		Long: `Run the Vigil server in the foreground: discover the workloads on this host and follow
them as they come and go, capture every container's traffic into flows (application,
DNS names, processes), judge them against the policy (learning in Discover, reporting in
Monitor, enforcing with nftables in each workload's namespace in Protect), audit the host
against the CIS Docker Benchmark, and serve the API.

The API token is created at first start in <data-dir>/token (mode 0600); the other vigil
commands read it from there. Stop with Ctrl-C or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			return runUp(cmd.Context(), o, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8470", "address for the API (host:port)")
	f.StringVar(&o.dataDir, "data-dir", store.DefaultDir, "directory for Vigil's state and API token")
	f.StringVar(&o.dockerHost, "docker-host", "", "Docker daemon address (default: DOCKER_HOST, else "+docker.DefaultHost+")")
	f.IntVar(&o.maxFlows, "max-flows", 262144, "bound of the flow table (split over 64 shards); past it the least recently active flow of a shard is evicted")
	f.IntVar(&o.flowHistory, "flow-history", 20000, "how many ended flows the API keeps")
	f.BoolVar(&o.failOpen, "fail-open", false, "remove every enforcement table when vigil up stops (by default the kernel keeps enforcing: fail static)")
	o.vulnFlags(f)
	f.IntVar(&o.eventsMax, "events-max", 10000, "how many events are kept")
	f.DurationVar(&o.eventsMaxAge, "events-max-age", 30*24*time.Hour, "events older than this are dropped")
	f.DurationVar(&o.autoPromote, "auto-promote", 0, "move a group from discover to monitor once it has learned nothing new for this long (e.g. 72h); 0: never")
	f.DurationVar(&o.auditInterval, "audit-interval", 6*time.Hour, "how often the CIS Docker Benchmark audit runs (also at start and on POST /api/v1/audit/run); 0: only then")
	return cmd
}

func runUp(ctx context.Context, o *upOptions, log *slog.Logger) error {
	if os.Geteuid() != 0 {
		return errors.New("'vigil up' must run as root: it reads every container's network namespace; run it with sudo")
	}
	host, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", o.listen, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		log.Warn("the API listens beyond loopback without TLS: anyone who can reach it sees the token in transit", "listen", o.listen)
	}

	dir, err := store.OpenDir(o.dataDir)
	if err != nil {
		return err
	}
	defer dir.Close()
	token, err := api.LoadOrCreateToken(dir.Path)
	if err != nil {
		return err
	}

	rt, err := docker.New(o.dockerHost)
	if err != nil {
		return err
	}
	defer rt.Close()
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	dockerVersion, err := rt.Ping(pingCtx)
	cancel()
	if err != nil {
		return fmt.Errorf("cannot reach Docker at %s: %v\n"+
			"Start Docker ('systemctl start docker', or 'dockerd &' where there is no systemd; 'make run' does this for you),\n"+
			"or point --docker-host or DOCKER_HOST at the daemon", rt.Host(), err)
	}

	reg := workload.NewRegistry(rt, &workload.KernelResolver{}, log)
	srv, err := api.NewServer(reg, token, buildVersion().Version, log)
	if err != nil {
		return err
	}
	flows := controller.NewFlows(o.flowHistory, 100000)
	owners := procmon.NewSocketOwners("/proc", log)
	defer owners.Close()
	ag := agent.New(agent.Config{
		Flows:        flow.Config{MaxFlows: o.maxFlows},
		NewInspector: newInspector,
	}, reg, socketOwners{owners}, flows, log)
	srv.SetFlows(flows, func() any {
		return map[string]any{"data_path": ag.Stats(), "process_attribution": owners.Stats()}
	})
	db, err := store.Open(dir)
	if err != nil {
		return err
	}
	defer db.Close()
	if n, err := db.PruneEvents(o.eventsMax, o.eventsMaxAge, time.Now()); err != nil {
		return err
	} else if n > 0 {
		log.Info("pruned old events", "events", n)
	}
	pol, err := db.LoadPolicy()
	if err != nil {
		return err
	}
	events := controller.NewEvents(o.eventsMax)
	events.SetMaxAge(o.eventsMaxAge)
	if err := events.Persist(eventStore{db}, log); err != nil {
		return err
	}
	engine, err := controller.NewPolicyEngine(pol, db, events, func(id string) (policy.Subject, bool) {
		w, err := reg.Get(id)
		if err != nil {
			return policy.Subject{}, false
		}
		return controller.SubjectOf(w), true
	}, log)
	if err != nil {
		return err
	}
	flows.SetJudge(engine)
	enf := controller.NewEnforcer(engine, reg.List, nftKernel{}, log)
	engine.SetOnChange(enf.Kick)
	engine.SetReset(func(r flow.Record, done func(bool, error)) {
		enf.Reset(controller.ResetRequest{Flow: r, Done: done})
	})
	enf.OnDenied(func(d enforce.Denied) { engine.Denied(d, ag.Endpoint) })
	srv.SetPolicy(engine)
	auditor := controller.NewAuditor(func(ctx context.Context) (audit.Report, error) {
		env, err := audit.LoadEnv(ctx, rt.Client(), "/", "/proc")
		if err != nil {
			return audit.Report{}, err
		}
		return audit.Run(ctx, env, audit.Filter{}), nil
	}, events, o.auditInterval, log)
	srv.SetAudit(auditor, events)
	vulns, err := newServerVulns(o, db, reg.List, log)
	if err != nil {
		return err
	}
	srv.SetVulnerabilities(vulns)
	procsec, err := newProcessSecurity(db, events, engine, log)
	if err != nil {
		return err
	}
	srv.SetProcesses(procsec.engine)

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	log.Info("vigil is up",
		"version", buildVersion().Version,
		"api", "http://"+ln.Addr().String(),
		"data_dir", dir.Path,
		"token_file", filepath.Join(dir.Path, api.TokenFile),
		"docker", rt.Host(),
		"docker_version", dockerVersion)

	grp, ctx := errgroup.WithContext(ctx)
	// Requests inherit the server's context, so that open streams end when it stops
	// (Shutdown alone waits for them).
	httpSrv.BaseContext = func(net.Listener) context.Context { return ctx }
	grp.Go(func() error { return reg.Run(ctx) })
	grp.Go(func() error { return ag.Run(ctx) })
	grp.Go(func() error { return auditor.Run(ctx) })
	grp.Go(func() error { return vulns.Run(ctx) })
	grp.Go(func() error { return engine.RunAutoPromote(ctx, o.autoPromote) })
	grp.Go(func() error { return events.RunFlush(ctx) })
	grp.Go(func() error { return enf.Run(ctx, o.failOpen) })
	procsec.start(ctx, grp, reg)
	grp.Go(func() error {
		// Workloads coming and going change the peer sets and who is protected.
		sub := reg.Subscribe(1024)
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return nil
			case _, ok := <-sub.C:
				if !ok {
					sub = reg.Subscribe(1024)
				}
				enf.Kick()
			}
		}
	})
	grp.Go(func() error { return engine.RunHitFlush(ctx, 30*time.Second) })
	grp.Go(func() error {
		if err := httpSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("api server: %w", err)
		}
		return nil
	})
	grp.Go(func() error {
		<-ctx.Done()
		log.Info("shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return httpSrv.Shutdown(shutdownCtx)
	})
	if err := grp.Wait(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
