//go:build integration

package audit

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// TestHostChecksOnRealHost runs sections 1 to 3 against this machine and its Docker
// daemon. Hosts differ, so it asserts only that every check gives one valid result
// without panicking; run with -v to read them.
func TestHostChecksOnRealHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	defer cli.Close()

	env := &Env{Root: "/", Now: time.Now(), LoadErrors: map[string]error{}}
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		t.Fatalf("docker info (is the daemon running? scripts/setup.sh starts it): %v", err)
	}
	env.Info = info.Info
	env.Rootless = slices.Contains(info.Info.SecurityOptions, "name=rootless")
	if v, err := cli.ServerVersion(ctx, client.ServerVersionOptions{}); err == nil {
		env.ServerVersion, env.APIVersion = v.Version, v.APIVersion
	}
	env.Daemon, err = loadDaemonConfig("/", "/proc", env.Rootless)
	if err != nil {
		env.LoadErrors[daemonConfigLoadKey] = err
		t.Logf("daemon configuration: %v", err)
	}
	if !env.Daemon.Found {
		t.Errorf("no dockerd configuration found on a host with a running daemon: %+v", env.Daemon)
	}
	t.Logf("dockerd %q, config %s, settings %v", env.Daemon.Cmdline, env.Daemon.ConfigFile, env.Daemon.Settings)

	valid := map[Status]bool{Pass: true, Warn: true, Info: true, Note: true, Skip: true}
	for _, section := range [][]Check{hostChecks, daemonChecks, fileChecks} {
		for _, c := range section {
			var r Result
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Errorf("%s panicked: %v", c.ID, p)
					}
				}()
				r = c.Run(ctx, env)
			}()
			if !valid[r.Status] {
				t.Errorf("%s: invalid status %q", c.ID, r.Status)
			}
			if r.Status != Pass && r.Reason == "" {
				t.Errorf("%s: %s without a reason", c.ID, r.Status)
			}
			t.Logf("%-6s %-4s %s: %s %q", c.ID, r.Status, c.Title, r.Reason, r.Evidence)
		}
	}
}
