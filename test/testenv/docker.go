package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Image is the test image: busybox-static with its applets, made by docker import.
const Image = "vigil-test/busybox:latest"

// TestLabel marks everything the tests create; TestPIDLabel names the test process that
// created it, so that leftovers are told apart from what a running suite still uses.
const (
	TestLabel    = "vigil.test"
	TestPIDLabel = "vigil.test.pid"
)

func testLabels() map[string]string {
	return map[string]string{TestLabel: "1", TestPIDLabel: strconv.Itoa(os.Getpid())}
}

// leftover reports whether an object labelled by a test belongs to a process that is gone.
func leftover(labels map[string]string) bool {
	pid, err := strconv.Atoi(labels[TestPIDLabel])
	if err != nil || pid <= 0 {
		return true
	}
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

// BusyboxPath is where Debian's busybox-static puts the binary the image is made from.
const BusyboxPath = "/bin/busybox"

// Docker is a connection to the real daemon for tests.
type Docker struct {
	Client *client.Client
}

var (
	imageOnce sync.Once
	imageErr  error
)

// Prerequisites returns what is missing for the integration suite, as instructions, or
// nil when everything is there. TestMain calls it to fail early with one clear message.
func Prerequisites(ctx context.Context) []string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "run as root (sudo make test): the tests create containers, namespaces and read other processes' namespaces")
	}
	if err := checkStaticBusybox(); err != nil {
		missing = append(missing, fmt.Sprintf("%v: apt-get install busybox-static (make test does this through scripts/setup.sh)", err))
	}
	if _, err := exec.LookPath("ip"); err != nil {
		missing = append(missing, "the ip command: apt-get install iproute2")
	}
	cli, err := client.New(client.FromEnv)
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = cli.ServerVersion(pctx, client.ServerVersionOptions{})
		cancel()
		cli.Close()
	}
	if err != nil {
		missing = append(missing, fmt.Sprintf("a running Docker daemon (%v): apt-get install docker.io and start dockerd; scripts/setup.sh does both", err))
	}
	return missing
}

// checkStaticBusybox makes sure the binary exists and needs no dynamic loader, since
// the image has no libc.
func checkStaticBusybox() error {
	data, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return fmt.Errorf("no %s", BusyboxPath)
	}
	if bytes.Contains(data[:min(len(data), 4096)], []byte("/lib64/ld-linux")) || bytes.Contains(data[:min(len(data), 4096)], []byte("/lib/ld-linux")) {
		return fmt.Errorf("%s is dynamically linked", BusyboxPath)
	}
	return nil
}

// NewDocker connects to the daemon named by the environment (DOCKER_HOST or the default
// socket); the test fails when it does not answer.
func NewDocker(t testing.TB) *Docker {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.ServerVersion(ctx, client.ServerVersionOptions{}); err != nil {
		t.Fatalf("Docker is not reachable (%v): run scripts/setup.sh, which installs and starts it", err)
	}
	return &Docker{Client: cli}
}

// EnsureImage builds the test image once per process, unless the daemon already has it.
func (d *Docker) EnsureImage(t testing.TB) string {
	t.Helper()
	imageOnce.Do(func() { imageErr = d.buildImage(context.Background()) })
	if imageErr != nil {
		t.Fatalf("build %s: %v", Image, imageErr)
	}
	return Image
}

func (d *Docker) buildImage(ctx context.Context) error {
	if _, err := d.Client.ImageInspect(ctx, Image); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return err
	}
	rootfs, err := BusyboxRootfs()
	if err != nil {
		return err
	}
	res, err := d.Client.ImageImport(ctx,
		client.ImageImportSource{Source: bytes.NewReader(rootfs), SourceName: "-"},
		Image,
		client.ImageImportOptions{Changes: []string{`CMD ["/bin/sh"]`}, Message: "vigil test image from busybox-static"})
	if err != nil {
		return fmt.Errorf("docker import: %w", err)
	}
	defer res.Close()
	if _, err := io.Copy(io.Discard, res); err != nil {
		return fmt.Errorf("docker import: %w", err)
	}
	if _, err := d.Client.ImageInspect(ctx, Image); err != nil {
		return fmt.Errorf("image missing after import: %w", err)
	}
	return nil
}

// BusyboxRootfs returns a tar of a minimal root filesystem: busybox-static, a link for
// every applet, /etc/passwd and /etc/group with root and nobody, and the usual mount
// points.
func BusyboxRootfs() ([]byte, error) {
	if err := checkStaticBusybox(); err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(BusyboxPath, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list-full: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Unix(0, 0)
	dirs := []struct {
		name string
		mode int64
	}{
		{"bin", 0o755}, {"sbin", 0o755}, {"usr", 0o755}, {"usr/bin", 0o755}, {"usr/sbin", 0o755},
		{"etc", 0o755}, {"tmp", 0o1777}, {"proc", 0o555}, {"sys", 0o555}, {"dev", 0o755},
		{"root", 0o700}, {"var", 0o755}, {"var/run", 0o755}, {"run", 0o755}, {"home", 0o755},
	}
	haveDir := map[string]bool{}
	for _, dir := range dirs {
		haveDir[dir.name] = true
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir.name + "/", Mode: dir.mode, ModTime: now}); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"bin/busybox", 0o755, bin},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{"etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: now}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name := strings.TrimPrefix(strings.TrimSpace(line), "/")
		if name == "" || name == "bin/busybox" || !haveDir[path.Dir(name)] {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: "/bin/busybox", Mode: 0o777, ModTime: now}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// RandomName returns prefix followed by a random suffix, for objects that must not clash
// with a parallel or earlier run.
func RandomName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// ContainerSpec describes a test container.
type ContainerSpec struct {
	Name        string
	Image       string // the test image when empty
	Cmd         []string
	Labels      map[string]string
	NetworkMode string   // "bridge" when empty; "host", "none", "container:<id>", a network name
	Networks    []string // further networks to connect after creation
	Privileged  bool
	User        string
	// ExtraHosts are "name:ip" lines added to the container's /etc/hosts.
	ExtraHosts []string
}

// Container is a started test container.
type Container struct {
	ID   string
	Name string
}

// Run creates and starts a container and removes it (with force) when the test ends.
// The default command sleeps, so the container stays up until removed.
func (d *Docker) Run(t testing.TB, spec ContainerSpec) Container {
	t.Helper()
	c := d.Create(t, spec)
	d.Start(t, c.ID)
	return c
}

// Create creates a container without starting it; it is removed when the test ends.
func (d *Docker) Create(t testing.TB, spec ContainerSpec) Container {
	t.Helper()
	return d.create(t, spec, nil)
}

// create makes the container of spec (test image, labels, a command that sleeps, an init
// so that removal is immediate), letting mutate change the full configuration first.
func (d *Docker) create(t testing.TB, spec ContainerSpec, mutate func(*container.Config, *container.HostConfig)) Container {
	t.Helper()
	ctx := context.Background()
	if spec.Name == "" {
		spec.Name = RandomName("vigil-test")
	}
	if spec.Image == "" {
		spec.Image = d.EnsureImage(t)
	}
	if len(spec.Cmd) == 0 {
		spec.Cmd = []string{"sleep", "3600"}
	}
	labels := testLabels()
	for k, v := range spec.Labels {
		labels[k] = v
	}
	mode := container.NetworkMode(spec.NetworkMode)
	if mode == "" {
		mode = "bridge"
	}
	cfg := &container.Config{Image: spec.Image, Cmd: spec.Cmd, Labels: labels, User: spec.User}
	hc := &container.HostConfig{
		NetworkMode: mode,
		Privileged:  spec.Privileged,
		ExtraHosts:  spec.ExtraHosts,
		// Containers must stop at once when removed; sleep ignores SIGTERM as PID 1.
		Init: boolPtr(true),
	}
	if mutate != nil {
		mutate(cfg, hc)
	}
	res, err := d.Client.ContainerCreate(ctx, client.ContainerCreateOptions{Name: spec.Name, Config: cfg, HostConfig: hc})
	if err != nil {
		t.Fatalf("create container %s: %v", spec.Name, err)
	}
	t.Cleanup(func() { d.Remove(t, res.ID) })
	for _, n := range spec.Networks {
		if _, err := d.Client.NetworkConnect(ctx, n, client.NetworkConnectOptions{Container: res.ID}); err != nil {
			t.Fatalf("connect %s to network %s: %v", spec.Name, n, err)
		}
	}
	return Container{ID: res.ID, Name: spec.Name}
}

func boolPtr(b bool) *bool { return &b }

// Start starts a created container.
func (d *Docker) Start(t testing.TB, id string) {
	t.Helper()
	if _, err := d.Client.ContainerStart(context.Background(), id, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start container %s: %v", id, err)
	}
}

// Stop stops a container, killing it at once.
func (d *Docker) Stop(t testing.TB, id string) {
	t.Helper()
	timeout := 0
	if _, err := d.Client.ContainerStop(context.Background(), id, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		t.Fatalf("stop container %s: %v", id, err)
	}
}

// Remove force-removes a container; a container already gone is fine.
func (d *Docker) Remove(t testing.TB, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := d.Client.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		t.Errorf("remove container %s: %v", id, err)
	}
}

// Inspect returns Docker's own description of a container, to compare Vigil's with.
func (d *Docker) Inspect(t testing.TB, id string) container.InspectResponse {
	t.Helper()
	res, err := d.Client.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect container %s: %v", id, err)
	}
	return res.Container
}

// IP returns the container's address on its first network (or on the named one).
func (d *Docker) IP(t testing.TB, id string, network ...string) string {
	t.Helper()
	c := d.Inspect(t, id)
	for name, ep := range c.NetworkSettings.Networks {
		if ep != nil && ep.IPAddress.IsValid() && (len(network) == 0 || network[0] == name) {
			return ep.IPAddress.String()
		}
	}
	t.Fatalf("container %s has no IPv4 address", id)
	return ""
}

// Network creates a bridge network and removes it when the test ends.
func (d *Docker) Network(t testing.TB, name string) string {
	t.Helper()
	if name == "" {
		name = RandomName("vigil-test-net")
	}
	res, err := d.Client.NetworkCreate(context.Background(), name, client.NetworkCreateOptions{
		Driver: "bridge",
		Labels: testLabels(),
	})
	if err != nil {
		t.Fatalf("create network %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := d.Client.NetworkRemove(ctx, res.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove network %s: %v", name, err)
		}
	})
	return name
}

// Exec runs cmd in a container and returns its standard output; the test fails when the
// command exits non-zero.
func (d *Docker) Exec(t testing.TB, id string, cmd ...string) string {
	t.Helper()
	out, code, err := d.ExecResult(id, cmd...)
	if err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, id, err)
	}
	if code != 0 {
		t.Fatalf("exec %v in %s: exit code %d: %s", cmd, id, code, out)
	}
	return out
}

// ExecResult runs cmd in a container and returns its output (stdout then stderr) and exit
// code.
func (d *Docker) ExecResult(id string, cmd ...string) (string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ex, err := d.Client.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return "", 0, err
	}
	att, err := d.Client.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return "", 0, err
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil && !errors.Is(err, io.EOF) {
		return "", 0, err
	}
	insp, err := d.Client.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil {
		return "", 0, err
	}
	return stdout.String() + stderr.String(), insp.ExitCode, nil
}

// RemoveLeftovers removes containers and networks labelled by an earlier test run that
// was killed before its cleanup ran; those of a test process still running are left.
func (d *Docker) RemoveLeftovers(ctx context.Context) error {
	f := client.Filters{}
	f.Add("label", TestLabel+"=1")
	cs, err := d.Client.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return err
	}
	for _, c := range cs.Items {
		if !leftover(c.Labels) {
			continue
		}
		if _, err := d.Client.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return err
		}
	}
	ns, err := d.Client.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return err
	}
	for _, n := range ns.Items {
		if !leftover(n.Labels) {
			continue
		}
		if _, err := d.Client.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return err
		}
	}
	return nil
}
