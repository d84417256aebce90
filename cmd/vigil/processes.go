package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-sec/vigil/internal/api"
	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/internal/export"
	"github.com/vigil-sec/vigil/internal/procmon"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/workload"
)

// processSecurity is vigil up's process side: the monitor (process events and the
// tree), the detector, and the engine (profiles, modes, events).
type processSecurity struct {
	monitor *procmon.Monitor
	engine  *controller.ProcessEngine
	log     *slog.Logger
}

func newProcessSecurity(db *store.DB, events *controller.Events, pol *controller.PolicyEngine, log *slog.Logger) (*processSecurity, error) {
	engine, err := controller.NewProcessEngine(db, events, pol.WorkloadMode, "/proc", log)
	if err != nil {
		return nil, err
	}
	det := procmon.NewDetector(procmon.DetectorConfig{ProcRoot: "/proc", ContainerCreated: engine.Created})
	mon := procmon.NewMonitor(procmon.MonitorConfig{ProcRoot: "/proc", Detector: det, Observe: engine.Observe}, log)
	engine.SetMonitor(mon)
	return &processSecurity{monitor: mon, engine: engine, log: log}, nil
}

// start runs the monitor and the engine in grp, and feeds the engine the registry's
// workloads as they change.
func (p *processSecurity) start(ctx context.Context, grp *errgroup.Group, reg *workload.Registry) {
	grp.Go(func() error {
		if err := p.monitor.Run(ctx); err != nil {
			// Without process events the rest of Vigil still serves; say so loudly.
			p.log.Error("process monitor stopped: no process events, profiles or detections", "err", err)
		}
		return nil
	})
	grp.Go(func() error { return p.engine.Run(ctx) })
	// The file guard: exec permission checks for protected containers, and writes to
	// sensitive files in every container. Without it Protect kills instead.
	if guard, err := procmon.NewFileGuard(p.log); err != nil {
		p.log.Warn("file guard unavailable: no sensitive-file events; protect mode kills unknown processes instead of refusing their exec", "err", err)
	} else {
		execChecks := true
		if err := guard.Supported(); err != nil {
			execChecks = false
			p.log.Warn("exec permission checks unavailable: protect mode kills unknown processes instead of refusing their exec", "err", err)
		}
		p.engine.SetGuard(guard, execChecks)
		grp.Go(func() error { return p.engine.RunFileEvents(ctx, guard.Events()) })
		grp.Go(func() error {
			<-ctx.Done()
			// After the engine has let go of its watches (Run returns on the same ctx).
			return guard.Close()
		})
	}
	grp.Go(func() error {
		sub := reg.Subscribe(1024)
		defer func() { sub.Close() }()
		for {
			select {
			case <-ctx.Done():
				return nil
			case _, ok := <-sub.C:
				if !ok {
					sub = reg.Subscribe(1024)
				}
				p.engine.SetWorkloads(reg.List())
				p.engine.Reconcile(ctx)
			}
		}
	})
}

func newProcessesCommand(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "processes [WORKLOAD]",
		Aliases: []string{"ps", "process"},
		Short:   "Show the live process tree of the host and its containers, or of one workload",
		Long: `Show the live process tree: every process with its parent, user IDs (real/effective),
executable, command line and workload. WORKLOAD is a container's ID, name or ID prefix,
or "host" for the host's own processes.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clientFor(output)
			if err != nil {
				return err
			}
			ref := ""
			if len(args) == 1 {
				ref = args[0]
			}
			list, err := c.Processes(cmd.Context(), ref)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSONTo(g.stdout, list)
			}
			return writeProcessTree(g.stdout, list)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

// writeProcessTree prints processes as a tree: each under its parent, roots being the
// processes whose parent is not in the list.
func writeProcessTree(w io.Writer, list []controller.ProcessView) error {
	byPID := make(map[int]int, len(list))
	for i, p := range list {
		byPID[p.PID] = i
	}
	children := map[int][]int{}
	var roots []int
	for i, p := range list {
		if _, ok := byPID[p.PPID]; ok && p.PPID != p.PID {
			children[p.PPID] = append(children[p.PPID], i)
		} else {
			roots = append(roots, i)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "PID\tPPID\tUID\tEUID\tWORKLOAD\tEXE\tCOMMAND")
	seen := make(map[int]bool, len(list))
	var walk func(i int, prefix string, last, root bool)
	walk = func(i int, prefix string, last, root bool) {
		if seen[i] {
			return
		}
		seen[i] = true
		p := list[i]
		branch, next := "", prefix
		if !root {
			if last {
				branch, next = prefix+"└─ ", prefix+"   "
			} else {
				branch, next = prefix+"├─ ", prefix+"│  "
			}
		}
		cmdline := strings.Join(p.Cmdline, " ")
		if cmdline == "" {
			cmdline = "[" + p.Comm + "]"
		}
		if len(cmdline) > 120 {
			cmdline = cmdline[:117] + "..."
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t%s\t%s%s\n", p.PID, p.PPID, p.UID, p.EUID, p.Workload, p.Exe, branch, cmdline)
		kids := children[p.PID]
		for j, k := range kids {
			walk(k, next, j == len(kids)-1, false)
		}
	}
	for _, r := range roots {
		walk(r, "", true, true)
	}
	return tw.Flush()
}

func newProfileCommand(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "profile [GROUP]",
		Aliases: []string{"profiles"},
		Short:   "Show a group's process profile (what it learned to run in discover mode), or list the profiles",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clientFor(output)
			if err != nil {
				return err
			}
			var views []controller.ProfileView
			if len(args) == 1 {
				v, err := c.Profile(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSONTo(g.stdout, v)
				}
				views = []controller.ProfileView{v}
			} else {
				if views, err = c.Profiles(cmd.Context()); err != nil {
					return err
				}
				if output == "json" {
					return writeJSONTo(g.stdout, views)
				}
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "GROUP\tMODE\tEXE\tNAME\tUID\tFIRST SEEN")
			for _, v := range views {
				entries := slices.Clone(v.Entries)
				for _, e := range entries {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Group, v.Mode, e.Exe, e.Name, strconv.Itoa(e.UID),
						e.FirstSeen.Local().Format(time.DateTime))
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

// appendProcessProfiles adds the process profiles to an exported policy, as a second
// YAML document.
func appendProcessProfiles(ctx context.Context, c *api.Client, policyYAML []byte) ([]byte, error) {
	views, err := c.Profiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("process profiles: %w", err)
	}
	profiles := make([]export.ProcessProfile, 0, len(views))
	for _, v := range views {
		profiles = append(profiles, export.ProcessProfile{Group: v.Group, Entries: v.Entries})
	}
	doc, err := export.MarshalProcessProfiles(profiles)
	if err != nil || doc == nil {
		return policyYAML, err
	}
	return append(append(policyYAML, "---\n"...), doc...), nil
}
