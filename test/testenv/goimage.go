package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

var goImages sync.Map // image name -> *goImage

type goImage struct {
	once sync.Once
	err  error
}

// GoImage builds the Go program in the package directory pkgDir into a static binary and
// imports it as the image name (FROM scratch: the binary at /app and nothing else), once
// per process. The program is the image's command.
func (d *Docker) GoImage(t testing.TB, name, pkgDir string) string {
	t.Helper()
	v, _ := goImages.LoadOrStore(name, &goImage{})
	gi := v.(*goImage)
	gi.once.Do(func() { gi.err = d.buildGoImage(name, pkgDir) })
	if gi.err != nil {
		t.Fatalf("build image %s from %s: %v", name, pkgDir, gi.err)
	}
	return name
}

func (d *Docker) buildGoImage(name, pkgDir string) error {
	dir, err := os.MkdirTemp("", "vigil-goimage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "app")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = pkgDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v: %s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "app", Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := d.Client.ImageImport(ctx, client.ImageImportSource{Source: &buf, SourceName: "-"}, name,
		client.ImageImportOptions{Changes: []string{`CMD ["/app"]`}})
	if err != nil {
		return fmt.Errorf("docker import: %w", err)
	}
	defer res.Close()
	_, err = io.Copy(io.Discard, res)
	return err
}
