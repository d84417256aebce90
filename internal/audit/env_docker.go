package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"
)

// Keys of Env.LoadErrors that loadDocker sets. The checks of sections 4 to 6 SKIP on the
// one they need.
const (
	loadErrDaemon     = "docker"         // Info
	loadErrVersion    = "docker-version" // Version
	loadErrContainers = "containers"     // listing or inspecting containers
	loadErrImages     = "images"         // listing or inspecting images
)

// inspectParallel bounds the inspect calls in flight: enough to load a host with
// thousands of containers in seconds, few enough not to load the daemon.
const inspectParallel = 8

// loadDocker fills env's Info, ServerVersion, APIVersion, Rootless, Containers and
// Images from the daemon, recording what failed in env.LoadErrors. Containers and images
// removed while it runs are left out, not errors.
func loadDocker(ctx context.Context, cli *client.Client, env *Env) {
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		env.LoadErrors[loadErrDaemon] = fmt.Errorf("docker info: %w", err)
	} else {
		env.Info = info.Info
		env.Rootless = rootlessDaemon(info.Info.SecurityOptions)
	}
	if v, err := cli.ServerVersion(ctx, client.ServerVersionOptions{}); err != nil {
		env.LoadErrors[loadErrVersion] = fmt.Errorf("docker version: %w", err)
	} else {
		env.ServerVersion, env.APIVersion = v.Version, v.APIVersion
	}

	cs, err := loadContainers(ctx, cli)
	if err != nil {
		env.LoadErrors[loadErrContainers] = err
	}
	env.Containers = cs

	is, err := loadImages(ctx, cli)
	if err != nil {
		env.LoadErrors[loadErrImages] = err
	}
	env.Images = is

	hist, err := loadImageHistories(ctx, cli, is)
	if err != nil {
		env.LoadErrors["image-history"] = err
	}
	env.ImageHistory = hist
}

// rootlessDaemon reports whether the daemon's security options (entries such as
// "name=seccomp,profile=default") include rootless mode.
func rootlessDaemon(securityOptions []string) bool {
	return slices.ContainsFunc(securityOptions, func(opt string) bool {
		return slices.Contains(strings.Split(opt, ","), "name=rootless")
	})
}

// loadContainers inspects every container, running or not, sorted by name. It returns
// those it could inspect along with the errors met, so that checks can still judge what
// was loaded.
func loadContainers(ctx context.Context, cli *client.Client) ([]container.InspectResponse, error) {
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]*container.InspectResponse, len(list.Items))
	errs := inspectAll(ctx, len(list.Items), func(ctx context.Context, i int) error {
		res, err := cli.ContainerInspect(ctx, list.Items[i].ID, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspect container %s: %w", shortID(list.Items[i].ID), err)
		}
		out[i] = &res.Container
		return nil
	})
	cs := make([]container.InspectResponse, 0, len(out))
	for _, c := range out {
		if c != nil {
			cs = append(cs, *c)
		}
	}
	slices.SortFunc(cs, func(a, b container.InspectResponse) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return cs, errs
}

// loadImages inspects every top-level image (what `docker images` lists), sorted by
// name, returning those it could inspect along with the errors met.
func loadImages(ctx context.Context, cli *client.Client) ([]image.InspectResponse, error) {
	list, err := cli.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]*image.InspectResponse, len(list.Items))
	errs := inspectAll(ctx, len(list.Items), func(ctx context.Context, i int) error {
		res, err := cli.ImageInspect(ctx, list.Items[i].ID)
		if err != nil {
			return fmt.Errorf("inspect image %s: %w", shortID(list.Items[i].ID), err)
		}
		out[i] = &res.InspectResponse
		return nil
	})
	is := make([]image.InspectResponse, 0, len(out))
	for _, im := range out {
		if im != nil {
			is = append(is, *im)
		}
	}
	slices.SortFunc(is, func(a, b image.InspectResponse) int {
		return cmp.Or(cmp.Compare(imageName(&a), imageName(&b)), cmp.Compare(a.ID, b.ID))
	})
	return is, errs
}

// loadImageHistories reads the build history (`docker history`) of each image, by image
// id, returning those it could read along with the errors met. The history-based checks
// (4.7, 4.9, 4.10's build arguments) read it through imageHistories once Env carries it.
func loadImageHistories(ctx context.Context, cli *client.Client, images []image.InspectResponse) (map[string][]image.HistoryResponseItem, error) {
	out := make([][]image.HistoryResponseItem, len(images))
	errs := inspectAll(ctx, len(images), func(ctx context.Context, i int) error {
		res, err := cli.ImageHistory(ctx, images[i].ID)
		if err != nil {
			return fmt.Errorf("history of image %s: %w", imageName(&images[i]), err)
		}
		out[i] = res.Items
		return nil
	})
	h := make(map[string][]image.HistoryResponseItem, len(images))
	for i, steps := range out {
		if steps != nil {
			h[images[i].ID] = steps
		}
	}
	return h, errs
}

// inspectAll calls inspect for 0..n-1, a few at a time, and joins the errors other than
// "not found": an object removed since it was listed is simply gone. It stops early only
// when ctx ends.
func inspectAll(ctx context.Context, n int, inspect func(ctx context.Context, i int) error) error {
	var (
		mu   sync.Mutex
		errs []error
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(inspectParallel)
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			err := inspect(gctx, i)
			if err == nil || cerrdefs.IsNotFound(err) {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err() // the caller's context ended: stop the others
			}
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// shortID returns the 12 hex digits Docker shows for an id, without its "sha256:".
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
