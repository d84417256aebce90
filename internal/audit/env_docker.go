package audit

import (
	"context"
	"errors"

	"github.com/moby/moby/client"
)

// loadDocker fills env's Info, ServerVersion, APIVersion, Rootless, Containers and
// Images from the daemon, recording what failed in env.LoadErrors.
func loadDocker(ctx context.Context, cli *client.Client, env *Env) {
	env.LoadErrors["docker"] = errors.New("not implemented yet")
}
