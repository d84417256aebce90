package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/audit"
	"github.com/vigil-sec/vigil/internal/workload/docker"
)

// exitFindings is the exit status of an audit or scan that found what --fail-on names,
// so that CI tells findings (3) from errors (1).
const exitFindings = 3

type auditOptions struct {
	output     string
	sections   []string
	checks     []string
	failOn     string
	dockerHost string
	root       string
}

func newAuditCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Audit this host against security benchmarks",
	}
	o := &auditOptions{}
	dockerCmd := &cobra.Command{
		Use:   "docker",
		Short: "Check the Docker host, daemon, images and containers against the CIS Docker Benchmark",
		Long: `Check this Docker host against the CIS Docker Benchmark (v1.8.0 control ids): host
configuration, daemon configuration and files, images and the container runtime.

Runs locally, as root (it reads the daemon's files and asks the daemon). The exit status
is 0 unless --fail-on warn is given and a check warns: then it is 3 (1 is an error).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAudit(cmd.Context(), g, o)
		},
	}
	f := dockerCmd.Flags()
	f.StringVarP(&o.output, "output", "o", "table", "output format: table, json, sarif or junit")
	f.StringSliceVar(&o.sections, "section", nil, "only these sections (1-6), repeatable or comma-separated")
	f.StringSliceVar(&o.checks, "check", nil, "only these checks (e.g. 5.4), repeatable or comma-separated")
	f.StringVar(&o.failOn, "fail-on", "", "exit with status 3 when a check has this result: warn")
	f.StringVar(&o.dockerHost, "docker-host", "", "Docker daemon address (default: DOCKER_HOST, else "+docker.DefaultHost+")")
	f.StringVar(&o.root, "root", "/", "where the host's filesystem is seen (when Vigil runs in a container with it mounted)")
	cmd.AddCommand(dockerCmd)
	return cmd
}

func runAudit(ctx context.Context, g *globals, o *auditOptions) error {
	switch o.output {
	case "table", "json", "sarif", "junit":
	default:
		return fmt.Errorf("-o %q: want table, json, sarif or junit", o.output)
	}
	if o.failOn != "" && strings.ToLower(o.failOn) != "warn" {
		return fmt.Errorf("--fail-on %q: want warn", o.failOn)
	}
	for _, s := range o.sections {
		if len(s) != 1 || s < "1" || s > "6" {
			return fmt.Errorf("--section %q: want a section number from 1 to 6", s)
		}
	}
	known := map[string]bool{}
	for _, c := range audit.Checks() {
		known[c.ID] = true
	}
	for _, id := range o.checks {
		if !known[id] {
			return fmt.Errorf("--check %q: no such check (see 'vigil audit docker -o json' for the ids)", id)
		}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("'vigil audit docker' must run as root: it reads the daemon's files and sockets")
	}
	rt, err := docker.New(o.dockerHost)
	if err != nil {
		return err
	}
	defer rt.Close()
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = rt.Ping(pingCtx)
	cancel()
	if err != nil {
		return fmt.Errorf("cannot reach Docker at %s: %v", rt.Host(), err)
	}
	env, err := audit.LoadEnv(ctx, rt.Client(), o.root, "/proc")
	if err != nil {
		return err
	}
	rep := audit.Run(ctx, env, audit.Filter{Sections: o.sections, IDs: o.checks})
	switch o.output {
	case "json":
		err = audit.WriteJSON(g.stdout, &rep)
	case "sarif":
		err = audit.WriteSARIF(g.stdout, &rep, buildVersion().Version)
	case "junit":
		err = audit.WriteJUnit(g.stdout, &rep)
	default:
		err = audit.WriteTable(g.stdout, &rep)
	}
	if err != nil {
		return err
	}
	if o.failOn != "" && rep.Summary.Warn > 0 {
		return &exitError{code: exitFindings, err: fmt.Errorf("%d checks warn", rep.Summary.Warn)}
	}
	return nil
}
