//go:build integration

package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/test/testenv"
)

// dockerProxy forwards a unix socket to the real Docker socket and can be cut and
// restored, which looks to Vigil exactly like dockerd going away and coming back,
// without disturbing the daemon that other tests use.
type dockerProxy struct {
	path   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func startDockerProxy(t *testing.T) *dockerProxy {
	t.Helper()
	target := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		target = strings.TrimPrefix(h, "unix://")
	}
	p := &dockerProxy{path: filepath.Join(t.TempDir(), "docker.sock"), target: target, conns: map[net.Conn]struct{}{}}
	p.resume(t)
	t.Cleanup(p.cut)
	return p
}

func (p *dockerProxy) resume(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("unix", p.path)
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("unix", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

// cut closes the listener (removing the socket) and every open connection.
func (p *dockerProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
	os.Remove(p.path)
}

func TestReconnectAndResync(t *testing.T) {
	d := testenv.NewDocker(t)
	d.EnsureImage(t)
	proxy := startDockerProxy(t)
	v := startVigil(t, "--docker-host", "unix://"+proxy.path)

	before := d.Run(t, testenv.ContainerSpec{})
	eventually(t, arrivalDeadline, "the first container", func() (bool, string) {
		_, ok := find(v.workloads(t), before.ID)
		return ok, "absent"
	})

	proxy.cut()
	eventually(t, 10*time.Second, "health to report the runtime lost", func() (bool, string) {
		h, err := v.Client.Health(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return h.Status == "degraded" && !h.Runtime.Connected, fmt.Sprintf("%+v", h)
	})
	// What was known stays served while the runtime is away.
	if _, ok := find(v.workloads(t), before.ID); !ok {
		t.Errorf("workloads were forgotten while Docker was unreachable")
	}

	// Changes Vigil cannot see while cut off.
	d.Remove(t, before.ID)
	during := d.Run(t, testenv.ContainerSpec{})

	proxy.resume(t)
	// The reconnect delay grows from 200 ms; a short outage is caught within seconds.
	eventually(t, 20*time.Second, "resynchronisation after the runtime came back", func() (bool, string) {
		list := v.workloads(t)
		_, gone := find(list, before.ID)
		_, came := find(list, during.ID)
		h, err := v.Client.Health(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return !gone && came && h.Runtime.Connected && h.Runtime.Syncs >= 2,
			fmt.Sprintf("removed still listed=%v new listed=%v runtime=%+v", gone, came, h.Runtime)
	})

	// Events flow again on the new connection.
	after := d.Run(t, testenv.ContainerSpec{})
	eventually(t, arrivalDeadline, "a container started after the reconnect", func() (bool, string) {
		_, ok := find(v.workloads(t), after.ID)
		return ok, "absent"
	})
}

// runUp runs `vigil up` expecting it to refuse, and returns its combined output.
func runUpExpectingFailure(t *testing.T, cred *syscall.Credential, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, vigilBin, append([]string{"up", "--listen", freeAddr(t)}, args...)...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("vigil up %v succeeded; want a refusal. Output:\n%s", args, out)
	}
	if ctx.Err() != nil {
		t.Fatalf("vigil up %v did not exit within 30 s:\n%s", args, out)
	}
	return string(out)
}

func TestUpRefusals(t *testing.T) {
	t.Run("not root", func(t *testing.T) {
		out := runUpExpectingFailure(t, &syscall.Credential{Uid: 65534, Gid: 65534}, "--data-dir", t.TempDir())
		if !strings.Contains(out, "must run as root") {
			t.Errorf("output does not say root is needed:\n%s", out)
		}
	})
	t.Run("docker unreachable", func(t *testing.T) {
		out := runUpExpectingFailure(t, nil, "--data-dir", t.TempDir(), "--docker-host", "unix:///nonexistent/docker.sock")
		for _, want := range []string{"cannot reach Docker at unix:///nonexistent/docker.sock", "dockerd"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("data dir in use", func(t *testing.T) {
		v := startVigil(t)
		out := runUpExpectingFailure(t, nil, "--data-dir", v.DataDir)
		if !strings.Contains(out, "in use") {
			t.Errorf("output does not say the data dir is in use:\n%s", out)
		}
	})
	t.Run("token readable by others", func(t *testing.T) {
		dir := t.TempDir()
		tok := "vgl_" + strings.Repeat("ab", 32) + "\n"
		if err := os.WriteFile(filepath.Join(dir, "token"), []byte(tok), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, "token"), 0o644); err != nil {
			t.Fatal(err)
		}
		out := runUpExpectingFailure(t, nil, "--data-dir", dir)
		if !strings.Contains(out, "chmod 600") {
			t.Errorf("output does not explain the token file's mode:\n%s", out)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "token")); string(got) != tok {
			t.Errorf("the refused token file was changed")
		}
	})
	t.Run("bad listen address", func(t *testing.T) {
		out := runUpExpectingFailure(t, nil, "--data-dir", t.TempDir(), "--listen", "nonsense")
		if !strings.Contains(out, "--listen") {
			t.Errorf("output does not name the flag:\n%s", out)
		}
	})
}

func TestCLIErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "token")
	out, err := exec.Command(vigilBin, "workloads", "--token-file", missing).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no API token at "+missing) {
		t.Errorf("missing token: err %v, output:\n%s", err, out)
	}

	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte("vgl_"+strings.Repeat("cd", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(vigilBin, "workloads", "--token-file", tokFile, "--server", "http://"+freeAddr(t)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is 'vigil up' running") {
		t.Errorf("server down: err %v, output:\n%s", err, out)
	}

	v := startVigil(t)
	out, err = exec.Command(vigilBin, "workloads", "--token-file", tokFile, "--server", v.URL).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "401") {
		t.Errorf("wrong token: err %v, output:\n%s", err, out)
	}
	out, err = exec.Command(vigilBin, "workloads", "-o", "yaml", "--token-file", v.TokenFile, "--server", v.URL).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "want table or json") {
		t.Errorf("bad output format: err %v, output:\n%s", err, out)
	}
}
