package audit

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/image"
)

func imageNamed(t *testing.T, env *Env, name string) *image.InspectResponse {
	t.Helper()
	for i := range env.Images {
		if imageName(&env.Images[i]) == name {
			return &env.Images[i]
		}
	}
	t.Fatalf("no image %s in the env", name)
	return nil
}

func TestIsRootUser(t *testing.T) {
	for user, root := range map[string]bool{
		"": true, "root": true, "0": true, "0:0": true, "root:root": true, "root:1000": true, " 0 ": true,
		"1000": false, "1000:0": false, "app": false, "nobody": false, "65534:65534": false,
	} {
		if got := isRootUser(user); got != root {
			t.Errorf("isRootUser(%q) = %v", user, got)
		}
	}
}

func TestImageUser(t *testing.T) {
	// The busybox image sets no USER; the app image USER 1000. Running containers are
	// judged by their effective user: the hardened one runs as 1000, the bad one as 65534.
	env := dockerEnv(t, "hardened", "bad", "exposed", "stopped")
	r := runCheck(t, env, "4.1")
	expect(t, r, Warn, []string{"image/vigil-test/busybox:latest"}, "vigil-test/busybox:latest: no USER (runs as root)")

	// A container running as root is named whatever its image says; a stopped one is not.
	env = dockerEnv(t, "default", "hardened", "stopped")
	r = runCheck(t, env, "4.1")
	expect(t, r, Warn, []string{"image/vigil-test/busybox:latest", "container/fx-default"}, `fx-default: runs as root (User="")`)

	env = dockerEnv(t, "hardened")
	env.Images = env.Images[1:] // only the app image
	expect(t, runCheck(t, env, "4.1"), Pass, nil, "1 running containers and 1 images checked")
	imageNamed(t, env, "vigil-fixture/app:1").Config.User = "0:0"
	expect(t, runCheck(t, env, "4.1"), Warn, []string{"image/vigil-fixture/app:1"}, "vigil-fixture/app:1: USER 0:0")

	env = dockerEnv(t, "hardened")
	env.Images = nil
	env.LoadErrors[loadErrImages] = errors.New("list images: EOF")
	expect(t, runCheck(t, env, "4.1"), Skip, nil, "list images: EOF")
}

func TestHealthcheckInImage(t *testing.T) {
	env := dockerEnv(t)
	r := runCheck(t, env, "4.6")
	expect(t, r, Warn, []string{"image/vigil-test/busybox:latest"}, "vigil-test/busybox:latest: no HEALTHCHECK")

	env.Images = env.Images[1:]
	expect(t, runCheck(t, env, "4.6"), Pass, nil, "1 images checked")
	imageNamed(t, env, "vigil-fixture/app:1").Config.Healthcheck.Test = []string{"NONE"}
	expect(t, runCheck(t, env, "4.6"), Warn, []string{"image/vigil-fixture/app:1"}, "HEALTHCHECK NONE")

	env.Images = nil
	expect(t, runCheck(t, env, "4.6"), Pass, nil, "there are no images")
}

func TestSecretsInImage(t *testing.T) {
	env := dockerEnv(t)
	r := runCheck(t, env, "4.10")
	expect(t, r, Warn, []string{"image/vigil-fixture/app:1"},
		"vigil-fixture/app:1: ENV API_TOKEN is set", "vigil-fixture/app:1: LABEL aws_secret_access_key is set")
	text := strings.Join(r.Evidence, "\n") + r.Reason
	for _, never := range []string{"s3cr3t-value", "AKIAEXAMPLE", "DB_PASSWORD_FILE", "GREETING", "team"} {
		if strings.Contains(text, never) {
			t.Errorf("evidence mentions %q:\n%s", never, text)
		}
	}

	// Build arguments recorded in the history are found too, without their value.
	histories := map[string][]image.HistoryResponseItem{env.Images[0].ID: historyFixture(t, "buildkit")}
	env.Images = env.Images[:1] // busybox only: clean in ENV and LABEL
	r = imageSecretsResult(env, histories)
	expect(t, r, Warn, []string{"image/vigil-test/busybox:latest"}, "build argument NPM_TOKEN recorded in the history")
	if strings.Contains(strings.Join(r.Evidence, "\n"), "npm_abc123") {
		t.Errorf("the token's value is in the evidence: %v", r.Evidence)
	}
	expect(t, imageSecretsResult(env, nil), Pass, nil)
}

func TestSecretKey(t *testing.T) {
	for key, secret := range map[string]bool{
		"PASSWORD": true, "MYSQL_ROOT_PASSWORD": true, "api-key": true, "GITHUB_TOKEN": true, "aws.secret.access.key": true,
		"PRIVATE_KEY": true, "DB_PASSWD": true, "client_credentials": true,
		"POSTGRES_PASSWORD_FILE": false, "TOKEN_URL": false, "GPG_KEY": false, "PATH": false, "KEY_ID": false, "SECRETS_DIR": false,
	} {
		if got := secretKey(key); got != secret {
			t.Errorf("secretKey(%q) = %v", key, got)
		}
	}
	if got := buildArgSecrets("|2 GITHUB_TOKEN=ghp_x VERSION=1.2 /bin/sh -c make"); len(got) != 1 || got[0] != "GITHUB_TOKEN" {
		t.Errorf("classic build args: %v", got)
	}
	if got := buildArgSecrets("|1 GITHUB_TOKEN= /bin/sh -c make"); got != nil {
		t.Errorf("an empty build argument is no secret: %v", got)
	}
	if got := buildArgSecrets("/bin/sh -c echo TOKEN=x"); got != nil {
		t.Errorf("not a build argument: %v", got)
	}
}

func TestUpdateAlone(t *testing.T) {
	for line, alone := range map[string]bool{
		"/bin/sh -c apt-get update":                                                 true,
		"RUN /bin/sh -c apt-get update # buildkit":                                  true,
		"/bin/sh -c apk update":                                                     true,
		"/bin/sh -c yum makecache":                                                  true,
		"/bin/sh -c apt-get update && apt-get install -y curl":                      false,
		"/bin/sh -c apt-get update && apt-get -y --no-install-recommends install x": false,
		"/bin/sh -c apt-get update && apt-get upgrade -y":                           false,
		"/bin/sh -c apk update && apk add --no-cache curl":                          false,
		"/bin/sh -c apk add --no-cache curl":                                        false,
		"/bin/sh -c #(nop)  LABEL note=apt-get update":                              false,
		"/bin/sh -c make":                                                           false,
	} {
		if got := updateAlone(line); got != alone {
			t.Errorf("updateAlone(%q) = %v", line, got)
		}
	}
}

func TestUpdateAloneInHistory(t *testing.T) {
	env := dockerEnv(t)
	// Without the build history the check cannot tell.
	expect(t, runCheck(t, env, "4.7"), Info, nil, "build history")

	busybox, app := env.Images[0].ID, env.Images[1].ID
	r := updateAloneResult(env, map[string][]image.HistoryResponseItem{busybox: nil, app: historyFixture(t, "app")})
	expect(t, r, Warn, []string{"image/vigil-fixture/app:1"}, "vigil-fixture/app:1: step runs an index update alone: echo apt-get update > /tmp/log")

	r = updateAloneResult(env, map[string][]image.HistoryResponseItem{busybox: historyFixture(t, "buildkit"), app: nil})
	expect(t, r, Warn, []string{"image/vigil-test/busybox:latest"}, "step runs an index update alone: RUN /bin/sh -c apt-get update # buildkit")

	r = updateAloneResult(env, map[string][]image.HistoryResponseItem{busybox: nil, app: nil})
	expect(t, r, Pass, nil, "the build history of 2 images checked")
}

func TestAddFinding(t *testing.T) {
	for line, want := range map[string]struct {
		detail string
		remote bool
	}{
		"ADD https://example.com/a.bin /opt/ # buildkit":                         {"ADD https://example.com/a.bin", true},
		"ADD --chown=app:app --chmod=644 vendor.TGZ /opt/ # buildkit":            {"ADD vendor.TGZ", true},
		"ADD a.txt b.tar.xz /opt/ # buildkit":                                    {"ADD b.tar.xz", true},
		"ADD config.yaml /etc/app/ # buildkit":                                   {"", false},
		"COPY app.tar.gz /tmp/ # buildkit":                                       {"", false},
		"/bin/sh -c #(nop) ADD file:ced26e9d21fd in /opt/ ":                      {"ADD into /opt/ (source not recorded by the classic builder)", false},
		"/bin/sh -c #(nop) ADD file:6fef7a4ab2de in / ":                          {"", false},
		"/bin/sh -c #(nop) COPY file:c50ecf0f8081 in /opt/hello2.txt ":           {"", false},
		"/bin/sh -c echo ADD https://example.com/x.tar.gz /opt/ > /dev/null":     {"", false},
		"ADD git@github.com:moby/buildkit.git#v0.10.1 /buildkit # buildkit":      {"ADD git@github.com:moby/buildkit.git#v0.10.1", true},
		"ADD --checksum=sha256:24454f830 https://x.org/y.tar.gz /opt # buildkit": {"ADD https://x.org/y.tar.gz", true},
	} {
		d, remote := addFinding(line)
		if d != want.detail || remote != want.remote {
			t.Errorf("addFinding(%q) = %q, %v; want %q, %v", line, d, remote, want.detail, want.remote)
		}
	}
}

func TestAddInHistory(t *testing.T) {
	env := dockerEnv(t)
	expect(t, runCheck(t, env, "4.9"), Info, nil, "build history")

	busybox, app := env.Images[0].ID, env.Images[1].ID
	r := addInstructionsResult(env, map[string][]image.HistoryResponseItem{busybox: historyFixture(t, "buildkit"), app: historyFixture(t, "app")})
	expect(t, r, Warn, []string{"image/vigil-test/busybox:latest"}, "vigil-test/busybox:latest: ADD https://example.com/releases/app-1.2.tar.gz")
	for _, e := range r.Evidence {
		if strings.Contains(e, "config.yaml") || strings.Contains(e, "vendor.tar.gz") {
			t.Errorf("plain ADD or COPY named: %q", e)
		}
	}

	// The classic builder hides the source: a note, not a failure.
	r = addInstructionsResult(env, map[string][]image.HistoryResponseItem{busybox: nil, app: historyFixture(t, "app")})
	expect(t, r, Note, nil, "vigil-fixture/app:1: ADD into /opt/ (source not recorded by the classic builder)")

	r = addInstructionsResult(env, map[string][]image.HistoryResponseItem{busybox: nil, app: nil})
	expect(t, r, Pass, nil)
}

func TestImageManualControls(t *testing.T) {
	env := dockerEnv(t)
	expect(t, runCheck(t, env, "4.2"), Info, nil, "vigil-test/busybox:latest: built or loaded locally (no registry digest)")
	env.Images[0].RepoDigests = []string{"busybox@sha256:abc"}
	expect(t, runCheck(t, env, "4.2"), Info, nil, "vigil-test/busybox:latest: from busybox@sha256:abc")

	expect(t, runCheck(t, env, "4.4"), Note, nil, "vigil scan image")
	env.Now = fixtureNow.AddDate(1, 0, 0)
	expect(t, runCheck(t, env, "4.4"), Note, nil, "2 images were built more than 90 days ago", "vigil-fixture/app:1: built 2026-11-29 (365 days ago)")

	for _, id := range []string{"4.3", "4.5", "4.8", "4.11", "4.12"} {
		r := runCheck(t, env, id)
		if r.Status != Info || r.Reason == "" || r.Remediation == "" {
			t.Errorf("%s: %+v", id, r)
		}
	}
}

func TestImageChecksMetadata(t *testing.T) {
	if len(imageChecks) != 12 {
		t.Errorf("%d section 4 checks, want 12 (v1.8.0)", len(imageChecks))
	}
	for i, c := range imageChecks {
		if want := "4." + strconv.Itoa(i+1); c.ID != want {
			t.Errorf("check %d has id %s, want %s", i, c.ID, want)
		}
		if c.Title == "" || c.Remediation == "" || c.Run == nil || (c.Level != 1 && c.Level != 2) || c.Scored {
			t.Errorf("%s: incomplete or scored: %+v", c.ID, c)
		}
	}
}

func TestLeftoverImagesLeftToSprawl(t *testing.T) {
	env := dockerEnv(t, "stopped")
	leftover := imageFixture(t, "busybox")
	leftover.ID, leftover.RepoTags = "sha256:d06943d60eb7aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", []string{"<none>:<none>"}
	leftover.Config.Env = []string{"DB_PASSWORD=hunter2"}
	env.Images = append(env.Images, leftover)

	// An untagged image nothing uses is not judged by the image checks...
	expect(t, runCheck(t, env, "4.6"), Warn, []string{"image/vigil-test/busybox:latest"})
	// ...except for secrets, which are on the disk all the same.
	expect(t, runCheck(t, env, "4.10"), Warn, []string{"image/vigil-fixture/app:1", "image/d06943d60eb7"}, "d06943d60eb7: ENV DB_PASSWORD is set")

	// Once a container uses it, it is judged like any other.
	containerNamed(t, env, "fx-stopped").Image = leftover.ID
	expect(t, runCheck(t, env, "4.6"), Warn, []string{"image/vigil-test/busybox:latest", "image/d06943d60eb7"})
}
