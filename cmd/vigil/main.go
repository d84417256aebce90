// Command vigil is run-time security for containers: `vigil up` runs the server on a
// Docker host; the other subcommands talk to it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/api"
	"github.com/vigil-sec/vigil/internal/store"
)

// exitError carries a specific exit status out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRootCommand(os.Stdout, os.Stderr).ExecuteContext(ctx)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "vigil: "+err.Error())
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(1)
}

// globals are the flags every subcommand shares.
type globals struct {
	logLevel  string
	logFormat string
	server    string
	tokenFile string
	stdout    io.Writer
	stderr    io.Writer
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "vigil",
		Short: "Run-time security for containers",
		Long: `Vigil sees every connection of every container on a host, learns which are legitimate,
reports what departs from that and blocks it when asked.

Start the server on a Docker host with 'vigil up' (as root); the other commands talk to it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	pf.StringVar(&g.server, "server", envOr("VIGIL_SERVER", api.DefaultServer), "address of the Vigil server (env VIGIL_SERVER)")
	pf.StringVar(&g.tokenFile, "token-file", envOr("VIGIL_TOKEN_FILE", filepath.Join(store.DefaultDir, api.TokenFile)), "file holding the API token (env VIGIL_TOKEN_FILE)")

	root.AddCommand(
		newUpCommand(g),
		newWorkloadsCommand(g),
		newGroupsCommand(g),
		newFlowsCommand(g),
		newGraphCommand(g),
		newAuditCommand(g),
		newModeCommand(g),
		newRulesCommand(g),
		newRuleCommand(g),
		newEventsCommand(g),
		newPolicyCommand(g),
		newGroupCommand(g),
		newProcessesCommand(g),
		newProfileCommand(g),
		newScanCommand(g),
		newDBCommand(g),
		newVulnerabilitiesCommand(g),
		newCleanupCommand(g),
		newVersionCommand(g),
		newConsoleCommand(g),
	)
	return root
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func (g *globals) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(g.logFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(g.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(g.stderr, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", g.logFormat)
	}
}
