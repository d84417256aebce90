package inventory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"

	"github.com/vigil-sec/vigil/internal/scan"
)

// Options tune a scan. The zero value is usable.
type Options struct {
	// Docker is the Engine API client for images in the daemon and containers; nil
	// means client.New(client.FromEnv), made only when needed.
	Docker *client.Client
	// TempDir holds the saved image and the temporary copies of files being read;
	// "" means os.TempDir().
	TempDir string
	// MaxFileSize bounds the size of one file read; larger files are skipped with a
	// warning. 0 means DefaultMaxFileSize.
	MaxFileSize int64
	// MaxLayerSize bounds the uncompressed size of one image layer (decompression
	// bombs). 0 means DefaultMaxLayerSize.
	MaxLayerSize int64
	// Progress, if set, is called with the bytes of image data read so far and the
	// total of the image's layers, or with files walked so far and 0 for roots.
	Progress func(done, total int64)
	// Log receives debug messages; nil discards them.
	Log *slog.Logger
}

// Bounds used when Options leave them zero.
const (
	DefaultMaxFileSize  = 512 << 20
	DefaultMaxLayerSize = 32 << 30
)

// ErrUnsupported is returned (wrapped) for targets in a format the scanner cannot read.
var ErrUnsupported = errors.New("unsupported format")

func (o *Options) defaults() {
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	if o.MaxLayerSize <= 0 {
		o.MaxLayerSize = DefaultMaxLayerSize
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

func (o *Options) docker() (*client.Client, error) {
	if o.Docker != nil {
		return o.Docker, nil
	}
	c, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("connect to docker: %w", err)
	}
	o.Docker = c
	return c, nil
}

// ScanImage inventories an image. ref is a path to a `docker save` archive (plain or
// gzip), an OCI image layout directory or archive, or else the name or ID of an image
// in the local Docker daemon.
func ScanImage(ctx context.Context, ref string, o Options) (*scan.Inventory, error) {
	o.defaults()
	if st, err := os.Stat(ref); err == nil {
		kind := "archive"
		var src blobSource
		if st.IsDir() {
			src, err = openDirSource(ref)
		} else {
			src, err = openArchiveSource(ref, o)
		}
		if err != nil {
			return nil, err
		}
		defer src.Close()
		return scanImageSource(ctx, src, scan.Target{Kind: kind, Name: ref}, o)
	}
	cli, err := o.docker()
	if err != nil {
		return nil, err
	}
	insp, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("image %s: not a file and not in the docker daemon: %w", ref, err)
	}
	rc, err := cli.ImageSave(ctx, []string{insp.ID})
	if err != nil {
		return nil, fmt.Errorf("save image %s: %w", ref, err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(o.TempDir, "vigil-image-*.tar")
	if err != nil {
		return nil, fmt.Errorf("save image %s: %w", ref, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := io.Copy(tmp, rc); err != nil {
		return nil, fmt.Errorf("save image %s to %s: %w", ref, tmp.Name(), err)
	}
	src, err := newArchiveSource(tmp, tmp.Name(), o)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	inv, err := scanImageSource(ctx, src, scan.Target{Kind: "image", Name: ref, ID: insp.ID}, o)
	if err != nil {
		return nil, err
	}
	return inv, nil
}

// ScanContainer inventories the filesystem of a running container, read through
// /proc/PID/root of its init process. ref is the container's ID or name.
func ScanContainer(ctx context.Context, ref string, o Options) (*scan.Inventory, error) {
	o.defaults()
	cli, err := o.docker()
	if err != nil {
		return nil, err
	}
	res, err := cli.ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("inspect container %s: %w", ref, err)
	}
	c := res.Container
	if c.State == nil || !c.State.Running || c.State.Pid <= 0 {
		return nil, fmt.Errorf("container %s is not running", ref)
	}
	root := fmt.Sprintf("/proc/%d/root", c.State.Pid)
	inv, err := scanRoot(ctx, root, false, o)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", ref, err)
	}
	inv.Target = scan.Target{Kind: "container", Name: strings.TrimPrefix(c.Name, "/"), ID: c.ID}
	return inv, nil
}

// ScanRoot inventories a root filesystem: kind "host" (root "" means /) or "dir".
func ScanRoot(ctx context.Context, kind, root string, o Options) (*scan.Inventory, error) {
	o.defaults()
	switch kind {
	case "host":
		if root == "" {
			root = "/"
		}
	case "dir":
		if root == "" {
			return nil, errors.New("scan dir: no directory given")
		}
	default:
		return nil, fmt.Errorf("scan root: kind %q: want host or dir", kind)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("scan %s %s: %w", kind, root, err)
	}
	inv, err := scanRoot(ctx, abs, kind == "host", o)
	if err != nil {
		return nil, fmt.Errorf("scan %s %s: %w", kind, root, err)
	}
	inv.Target = scan.Target{Kind: kind, Name: abs}
	return inv, nil
}
