//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/api"
	"github.com/vigil-sec/vigil/internal/workload"
	"github.com/vigil-sec/vigil/test/testenv"
)

// vigilProc is a running `vigil up`.
type vigilProc struct {
	cmd       *exec.Cmd
	URL       string
	DataDir   string
	TokenFile string
	Client    *api.Client
	logs      *syncBuffer
	done      chan struct{}
	waitErr   error
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startVigil runs `vigil up` on a free loopback port with a fresh data dir and waits until
// it reports healthy. It is stopped with SIGTERM when the test ends, and must then exit 0.
func startVigil(t *testing.T, extra ...string) *vigilProc {
	t.Helper()
	return startVigilIn(t, filepath.Join(t.TempDir(), "data"), extra...)
}

// startVigilIn is startVigil with a given data dir (to restart on the same state).
func startVigilIn(t *testing.T, dataDir string, extra ...string) *vigilProc {
	t.Helper()
	addr := freeAddr(t)
	v := &vigilProc{
		URL:     "http://" + addr,
		DataDir: dataDir,
		logs:    &syncBuffer{},
		done:    make(chan struct{}),
	}
	v.TokenFile = filepath.Join(v.DataDir, api.TokenFile)
	args := append([]string{"up", "--listen", addr, "--data-dir", v.DataDir, "--log-level", "debug"}, extra...)
	if !slices.Contains(extra, "--vuln-db") {
		args = append(args, "--vuln-db", vulnDBDir)
	}
	v.cmd = exec.Command(vigilBin, args...)
	v.cmd.Stdout, v.cmd.Stderr = v.logs, v.logs
	if err := v.cmd.Start(); err != nil {
		t.Fatalf("start vigil: %v", err)
	}
	go func() {
		v.waitErr = v.cmd.Wait()
		close(v.done)
	}()
	t.Cleanup(func() {
		v.stop(t)
		if t.Failed() {
			t.Logf("vigil logs:\n%s", v.logs.String())
		}
	})

	eventually(t, 30*time.Second, "vigil up to report healthy", func() (bool, string) {
		select {
		case <-v.done:
			t.Fatalf("vigil up exited early: %v\n%s", v.waitErr, v.logs.String())
		default:
		}
		tok, err := api.ReadToken(v.TokenFile)
		if err != nil {
			return false, err.Error()
		}
		if v.Client == nil {
			if v.Client, err = api.NewClient(v.URL, tok); err != nil {
				t.Fatal(err)
			}
		}
		h, err := v.Client.Health(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return h.Status == "ok", fmt.Sprintf("health %+v", h)
	})
	return v
}

// kill ends vigil up with SIGKILL, as a crash would, and waits for it to be gone.
func (v *vigilProc) kill(t *testing.T) {
	t.Helper()
	_ = v.cmd.Process.Kill()
	<-v.done
}

// stop sends SIGTERM and waits for a clean exit.
func (v *vigilProc) stop(t *testing.T) {
	select {
	case <-v.done:
		return // exited, or killed on purpose
	default:
	}
	_ = v.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-v.done:
		if v.waitErr != nil {
			t.Errorf("vigil up did not exit cleanly on SIGTERM: %v", v.waitErr)
		}
	case <-time.After(15 * time.Second):
		_ = v.cmd.Process.Kill()
		<-v.done
		t.Errorf("vigil up did not stop within 15 s of SIGTERM")
	}
}

// workloads lists the workloads through the API.
func (v *vigilProc) workloads(t *testing.T) []workload.Workload {
	t.Helper()
	list, err := v.Client.Workloads(context.Background())
	if err != nil {
		t.Fatalf("list workloads: %v", err)
	}
	return list
}

func find(list []workload.Workload, id string) (workload.Workload, bool) {
	for _, w := range list {
		if w.ID == id {
			return w, true
		}
	}
	return workload.Workload{}, false
}

// eventually polls cond every 10 ms until it holds or timeout passes, then fails the test
// with cond's last explanation.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last: %s", timeout, what, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func execVigil(args ...string) (string, error) {
	out, err := exec.Command(vigilBin, args...).CombinedOutput()
	return string(out), err
}

func readToken(t *testing.T, v *vigilProc) string {
	t.Helper()
	tok, err := api.ReadToken(v.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// apiCall sends a request with the token (none when empty) and returns status and body.
func apiCall(t *testing.T, v *vigilProc, tok, method, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, v.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// waitCaptured waits until vigil captures on the interfaces of every given container.
func waitCaptured(t *testing.T, v *vigilProc, cs ...testenv.Container) {
	t.Helper()
	eventually(t, 10*time.Second, "the captures", func() (bool, string) {
		st, err := v.Client.Capture(context.Background())
		if err != nil {
			return false, err.Error()
		}
		for _, c := range cs {
			if !strings.Contains(string(st), `"workload": "`+c.ID+`"`) {
				return false, "no capture for " + c.Name + ": " + string(st)
			}
		}
		return true, ""
	})
}
