//go:build integration

// Package integration runs the real vigil binary as root against the real Docker daemon,
// with real containers, networks and namespaces. Run it with `make test` (or
// `go test -tags integration ./test/integration`); it fails, never skips, when a
// prerequisite is missing.
package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/vigil-sec/vigil/test/testenv"
)

// vigilBin is the binary under test, built once for the suite.
var vigilBin string

// vulnDBDir is the vulnerability database the suite's servers use (seeded once from the
// starter data), so that no test touches the host's /var/lib/vigil.
var vulnDBDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	if missing := testenv.Prerequisites(ctx); len(missing) > 0 {
		fmt.Fprintln(os.Stderr, "integration tests cannot run; missing:")
		for _, s := range missing {
			fmt.Fprintln(os.Stderr, "  - "+s)
		}
		return 1
	}
	if cli, err := client.New(client.FromEnv); err == nil {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		if err := (&testenv.Docker{Client: cli}).RemoveLeftovers(cctx); err != nil {
			fmt.Fprintf(os.Stderr, "remove leftovers of an earlier run: %v\n", err)
		}
		cancel()
		cli.Close()
	}
	dir, err := os.MkdirTemp("", "vigil-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Other users must be able to run the binary: one test checks the refusal as non-root.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	vigilBin = filepath.Join(dir, "vigil")
	vulnDBDir = filepath.Join(dir, "vulndb")
	build := exec.Command("go", "build", "-o", vigilBin, "../../cmd/vigil")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build vigil: %v\n", err)
		return 1
	}
	return m.Run()
}
