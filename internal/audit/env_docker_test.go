package audit

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
)

// fakeDaemon serves the Docker API calls loadDocker makes from the fixtures. Container
// "gone" was removed after being listed (404); container "broken" fails (500).
type fakeDaemon struct {
	t      *testing.T
	info   []byte            // the /info answer, nil for a 500
	ids    map[string]string // container id -> fixture name
	images map[string]string // image id -> fixture name
}

// newFakeDaemon reads the fixtures up front: the handler runs outside the test's
// goroutine, where it must not call t.Fatal.
func newFakeDaemon(t *testing.T, withInfo, rootless bool) *fakeDaemon {
	f := &fakeDaemon{t: t, ids: map[string]string{}, images: map[string]string{}}
	for _, name := range []string{"default", "bad"} {
		f.ids[containerFixture(t, name).ID] = name
	}
	for _, name := range []string{"busybox", "app"} {
		f.images[imageFixture(t, name).ID] = name
	}
	if withInfo {
		var info map[string]any
		readFixture(t, "info.json", &info)
		if rootless {
			info["SecurityOptions"] = []string{"name=seccomp,profile=default", "name=rootless", "name=cgroupns"}
		}
		f.info, _ = json.Marshal(info)
	}
	return f
}

var apiPath = regexp.MustCompile(`^/v[0-9.]+(/.*)$`)

func (f *fakeDaemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if m := apiPath.FindStringSubmatch(p); m != nil {
		p = m[1]
	}
	fixture := func(name string) {
		data, err := os.ReadFile(filepath.Join("testdata", "docker", name))
		if err != nil {
			f.t.Error(err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
	}
	jsonReply := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	switch {
	case p == "/_ping":
		w.Header().Set("Api-Version", "1.41")
		w.Write([]byte("OK"))
	case p == "/info":
		if f.info == nil {
			jsonReply(http.StatusInternalServerError, map[string]string{"message": "daemon is shutting down"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(f.info)
	case p == "/version":
		jsonReply(http.StatusOK, map[string]string{"Version": "20.10.24+dfsg1", "ApiVersion": "1.41", "MinAPIVersion": "1.12"})
	case p == "/containers/json":
		if r.URL.Query().Get("all") != "1" {
			f.t.Errorf("containers listed without all=1: %s", r.URL)
		}
		var list []map[string]string
		for id := range f.ids {
			list = append(list, map[string]string{"Id": id})
		}
		list = append(list, map[string]string{"Id": "gone"}, map[string]string{"Id": "broken"})
		jsonReply(http.StatusOK, list)
	case strings.HasPrefix(p, "/containers/") && strings.HasSuffix(p, "/json"):
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/containers/"), "/json")
		switch {
		case id == "gone":
			jsonReply(http.StatusNotFound, map[string]string{"message": "No such container: gone"})
		case id == "broken":
			jsonReply(http.StatusInternalServerError, map[string]string{"message": "layer does not exist"})
		case f.ids[id] != "":
			fixture("containers/" + f.ids[id] + ".json")
		default:
			http.NotFound(w, r)
		}
	case p == "/images/json":
		var list []map[string]any
		for id := range f.images {
			list = append(list, map[string]any{"Id": id, "RepoTags": []string{}})
		}
		jsonReply(http.StatusOK, list)
	case strings.HasPrefix(p, "/images/") && strings.HasSuffix(p, "/history"):
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/images/"), "/history")
		switch f.images[id] {
		case "app":
			fixture("history/app.json")
		case "busybox":
			jsonReply(http.StatusNotFound, map[string]string{"message": "No such image: " + id})
		default:
			jsonReply(http.StatusInternalServerError, map[string]string{"message": "layer store busy"})
		}
	case strings.HasPrefix(p, "/images/") && strings.HasSuffix(p, "/json"):
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/images/"), "/json")
		if f.images[id] == "" {
			jsonReply(http.StatusNotFound, map[string]string{"message": "No such image: " + id})
			return
		}
		fixture("images/" + f.images[id] + ".json")
	default:
		f.t.Errorf("unexpected call %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	}
}

func fakeClient(t *testing.T, d *fakeDaemon) *client.Client {
	t.Helper()
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	cli, err := client.New(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithAPIVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func TestLoadDocker(t *testing.T) {
	cli := fakeClient(t, newFakeDaemon(t, true, false))
	env := &Env{LoadErrors: map[string]error{}}
	loadDocker(context.Background(), cli, env)

	if env.Info.Name != "vm" || env.ServerVersion != "20.10.24+dfsg1" || env.APIVersion != "1.41" || env.Rootless {
		t.Errorf("info %q version %q api %q rootless %v", env.Info.Name, env.ServerVersion, env.APIVersion, env.Rootless)
	}
	var names []string
	for i := range env.Containers {
		names = append(names, containerName(&env.Containers[i]))
	}
	if strings.Join(names, ",") != "fx-bad,fx-default" {
		t.Errorf("containers %v, want fx-bad and fx-default sorted (gone skipped, broken failed)", names)
	}
	if err := env.LoadErrors[loadErrContainers]; err == nil || !strings.Contains(err.Error(), "broken") || strings.Contains(err.Error(), "gone") {
		t.Errorf("container load error: %v", err)
	}
	var images []string
	for i := range env.Images {
		images = append(images, imageName(&env.Images[i]))
	}
	if strings.Join(images, ",") != "vigil-fixture/app:1,vigil-test/busybox:latest" {
		t.Errorf("images %v", images)
	}
	for _, k := range []string{loadErrDaemon, loadErrVersion, loadErrImages} {
		if err := env.LoadErrors[k]; err != nil {
			t.Errorf("LoadErrors[%s] = %v", k, err)
		}
	}

	// The loaded Env is what the checks judge.
	env.Now = fixtureNow
	if r := runCheck(t, env, "5.5"); r.Status != Warn || len(r.Targets) != 1 || r.Targets[0].Name != "fx-bad" {
		t.Errorf("5.5 on the loaded env: %+v", r)
	}
}

func TestLoadImageHistories(t *testing.T) {
	cli := fakeClient(t, newFakeDaemon(t, true, false))
	app, busybox := imageFixture(t, "app"), imageFixture(t, "busybox")
	broken := busybox
	broken.ID, broken.RepoTags = "sha256:b0b0", []string{"broken:1"}
	h, err := loadImageHistories(context.Background(), cli, []image.InspectResponse{app, busybox, broken})
	if len(h) != 1 || len(h[app.ID]) != 10 || !strings.Contains(h[app.ID][4].CreatedBy, "apt-get update") {
		t.Errorf("histories: %v", h)
	}
	// The image removed meanwhile is skipped; the one that failed is reported by name.
	if err == nil || !strings.Contains(err.Error(), "history of image broken:1") || strings.Contains(err.Error(), "busybox") {
		t.Errorf("error: %v", err)
	}
	// What it loads is what the history-based checks read.
	env := dockerEnv(t)
	expect(t, updateAloneResult(env, h), Warn, []string{"image/vigil-fixture/app:1"})
}

func TestLoadDockerRootlessAndFailures(t *testing.T) {
	env := &Env{LoadErrors: map[string]error{}}
	loadDocker(context.Background(), fakeClient(t, newFakeDaemon(t, true, true)), env)
	if !env.Rootless {
		t.Error("rootless daemon not recognised")
	}

	env = &Env{LoadErrors: map[string]error{}}
	loadDocker(context.Background(), fakeClient(t, newFakeDaemon(t, false, false)), env)
	if err := env.LoadErrors[loadErrDaemon]; err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("info failure: %v", err)
	}
	if r := runCheck(t, env, "5.1"); r.Status != Skip {
		t.Errorf("5.1 without info: %+v", r)
	}

	// A cancelled context stops the loading; LoadEnv then reports the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	env = &Env{LoadErrors: map[string]error{}}
	loadDocker(ctx, fakeClient(t, newFakeDaemon(t, true, false)), env)
	if len(env.Containers) != 0 || env.LoadErrors[loadErrContainers] == nil {
		t.Errorf("loaded %d containers after cancel, error %v", len(env.Containers), env.LoadErrors[loadErrContainers])
	}
}

func TestRootlessDaemon(t *testing.T) {
	if rootlessDaemon([]string{"name=seccomp,profile=default", "name=cgroupns"}) {
		t.Error("rootful daemon taken for rootless")
	}
	if !rootlessDaemon([]string{"name=seccomp,profile=default", "name=rootless"}) {
		t.Error("rootless daemon not recognised")
	}
}

func TestShortID(t *testing.T) {
	for in, want := range map[string]string{
		"sha256:19a63f216b6091fce72c6575c16b1cd79be9e57cee08bd277a4400b462ee6973": "19a63f216b60",
		"430cb5bdda51b560d0feeed9e6652a2da1c3b6a0":                                "430cb5bdda51",
		"abc": "abc",
	} {
		if got := shortID(in); got != want {
			t.Errorf("shortID(%q) = %q", in, got)
		}
	}
}
