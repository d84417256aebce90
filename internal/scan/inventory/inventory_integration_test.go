//go:build integration

package inventory

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/vigil-sec/vigil/internal/scan"
)

// An image built in the test from this machine's real dpkg status, os-release and Go
// binaries, loaded into the real daemon, scanned by name, as a `docker save` archive, and
// as a running container.
func TestIntegrationImageAndContainer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatalf("docker client: %v (is the daemon running? scripts/setup.sh)", err)
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		t.Fatalf("docker daemon does not answer: %v (run scripts/setup.sh)", err)
	}

	pars := statusParagraphs(t)
	removed := field(pars[0], "Package")
	var full, without bytes.Buffer
	for i, p := range pars {
		full.Write(p)
		full.WriteByte('\n')
		if i != 0 {
			without.Write(p)
			without.WriteByte('\n')
		}
	}
	sleeper := readFile(t, realGoBinary(t))
	l1 := tarOf(t, []entry{
		dirEntry("etc"), reg("etc/os-release", readFile(t, "/etc/os-release")),
		dirEntry("var"), dirEntry("var/lib"), dirEntry("var/lib/dpkg"), reg("var/lib/dpkg/status", full.Bytes()),
		dirEntry("usr"), dirEntry("usr/bin"), exe("usr/bin/staticcheck", readFile(t, "/root/go/bin/staticcheck")),
		dirEntry("usr/local"), dirEntry("usr/local/bin"), exe("usr/local/bin/app", sleeper),
		exe("sleeper", sleeper),
	})
	l2 := tarOf(t, []entry{reg("var/lib/dpkg/status", without.Bytes()), whiteout("usr/local/bin", "app")})
	im := testImage{layers: [][]byte{l1, l2}, createdBy: []string{"COPY / /", "RUN dpkg --purge " + removed}, cmd: []string{"/sleeper"}}
	tag := "vigil-test/inventory:" + strings.TrimPrefix(token(t), "vigil-escape-")
	archive := filepath.Join(t.TempDir(), "load.tar")
	im.dockerSave(t, archive, tag)

	f, err := os.Open(archive)
	must(t, err)
	res, err := cli.ImageLoad(ctx, f, client.ImageLoadWithQuiet(true))
	f.Close()
	must(t, err, "docker load")
	out, _ := io.ReadAll(res)
	res.Close()
	t.Cleanup(func() {
		if _, err := cli.ImageRemove(context.Background(), tag, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("remove image %s: %v", tag, err)
		}
	})
	if !strings.Contains(string(out), tag) {
		t.Fatalf("docker load: %s", out)
	}

	wantDpkg := map[string]string{}
	for _, par := range pars[1:] {
		if dpkgInstalled(field(par, "Status")) {
			wantDpkg[field(par, "Package")] = field(par, "Version")
		}
	}
	gover, deps := goVersionM(t, "/root/go/bin/staticcheck")
	sleeperGo, _ := goVersionM(t, realGoBinary(t))
	diff1 := digest(l1)
	check := func(t *testing.T, inv *scan.Inventory, image bool) {
		t.Helper()
		if inv.OS == nil || inv.OS.ID != "debian" {
			t.Errorf("OS = %+v", inv.OS)
		}
		wantLayer := ""
		if image {
			wantLayer = diff1
			if len(inv.Layers) != 2 || inv.Layers[0].DiffID != diff1 || inv.Layers[1].DiffID != digest(l2) || inv.Layers[1].CreatedBy != im.createdBy[1] {
				t.Errorf("layers = %+v", inv.Layers)
			}
		}
		dpkg := map[string]string{}
		goAt := map[string]map[string]string{}
		for _, p := range inv.Packages {
			if p.Layer != wantLayer {
				t.Errorf("%s %s: layer %q, want %q", p.Name, p.Location, p.Layer, wantLayer)
			}
			switch {
			case strings.HasPrefix(p.Ecosystem, "Debian:"):
				dpkg[p.Name] = p.Version
			case p.Ecosystem == "Go":
				if goAt[p.Location] == nil {
					goAt[p.Location] = map[string]string{}
				}
				goAt[p.Location][p.Name] = p.Version
			default:
				t.Errorf("unexpected package %+v", p)
			}
		}
		sameSet(t, "dpkg", dpkg, wantDpkg)
		if _, ok := dpkg[removed]; ok {
			t.Errorf("%s, removed in layer 2, is reported", removed)
		}
		want := map[string]string{"stdlib": gover}
		for m, v := range deps {
			want[m] = strings.TrimPrefix(v, "v")
		}
		got := goAt["/usr/bin/staticcheck"]
		for m, v := range want {
			if got[m] != v {
				t.Errorf("staticcheck: %s = %q, want %q", m, got[m], v)
			}
		}
		if goAt["/sleeper"]["stdlib"] != sleeperGo {
			t.Errorf("/sleeper: %v", goAt["/sleeper"])
		}
		if len(goAt) != 2 {
			t.Errorf("Go packages at %d places (the whiteout of /usr/local/bin/app?): %v", len(goAt), goAt)
		}
	}

	t.Run("image-by-name", func(t *testing.T) {
		inv, err := ScanImage(ctx, tag, Options{Docker: cli, TempDir: t.TempDir()})
		must(t, err)
		if inv.Target.Kind != "image" || !strings.HasPrefix(inv.Target.ID, "sha256:") {
			t.Errorf("target = %+v", inv.Target)
		}
		check(t, inv, true)
	})
	t.Run("docker-save-archive", func(t *testing.T) {
		rc, err := cli.ImageSave(ctx, []string{tag})
		must(t, err)
		p := filepath.Join(t.TempDir(), "saved.tar")
		sf, err := os.Create(p)
		must(t, err)
		_, err = io.Copy(sf, rc)
		rc.Close()
		sf.Close()
		must(t, err)
		inv, err := ScanImage(ctx, p, Options{TempDir: t.TempDir()})
		must(t, err)
		check(t, inv, true)
	})
	t.Run("container", func(t *testing.T) {
		name := "vigil-inventory-" + strings.TrimPrefix(token(t), "vigil-escape-")
		cr, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name: name, Config: &container.Config{Image: tag},
			HostConfig: &container.HostConfig{NetworkMode: "none"},
		})
		must(t, err, "create container")
		t.Cleanup(func() {
			if _, err := cli.ContainerRemove(context.Background(), cr.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
				t.Errorf("remove container %s: %v", name, err)
			}
		})
		_, err = cli.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{})
		must(t, err, "start container")
		deadline := time.Now().Add(30 * time.Second)
		for {
			ci, err := cli.ContainerInspect(ctx, cr.ID, client.ContainerInspectOptions{})
			must(t, err)
			if ci.Container.State != nil && ci.Container.State.Running && ci.Container.State.Pid > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("container %s not running: %+v", name, ci.Container.State)
			}
			time.Sleep(50 * time.Millisecond)
		}
		inv, err := ScanContainer(ctx, name, Options{Docker: cli})
		must(t, err)
		if inv.Target.Kind != "container" || inv.Target.Name != name || inv.Target.ID != cr.ID {
			t.Errorf("target = %+v", inv.Target)
		}
		check(t, inv, false)
	})
}
