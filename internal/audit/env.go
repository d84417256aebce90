package audit

import (
	"context"
	"time"

	"github.com/moby/moby/client"
)

// LoadEnv reads what the checks need from the daemon behind cli and from the host
// filesystem seen at root ("/" normally) with its processes under procRoot ("/proc").
// Parts that cannot be read are recorded in Env.LoadErrors; the checks that need them
// SKIP. It fails only when the context ends.
func LoadEnv(ctx context.Context, cli *client.Client, root, procRoot string) (*Env, error) {
	env := &Env{Root: root, Now: time.Now(), LoadErrors: map[string]error{}}
	loadDocker(ctx, cli, env)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err := loadDaemonConfig(root, procRoot, env.Rootless)
	if err != nil {
		env.LoadErrors["daemon-config"] = err
	}
	env.Daemon = cfg
	return env, nil
}
