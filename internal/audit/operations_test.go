package audit

import (
	"errors"
	"testing"
)

func TestSprawl(t *testing.T) {
	env := dockerEnv(t, "default", "hardened", "bad", "exposed", "stopped")
	env.Images = append(env.Images, imageFixture(t, "busybox"))
	env.Images[2].ID, env.Images[2].RepoTags = "sha256:d06943d60eb7aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", nil
	expect(t, runCheck(t, env, "6.1"), Info, nil, "3 images: 2 used by a container, 1 unused, 1 untagged (dangling)")
	expect(t, runCheck(t, env, "6.2"), Info, nil, "5 containers: 4 running, 1 not running")

	env.LoadErrors[loadErrContainers] = errors.New("inspect container 0123: EOF")
	expect(t, runCheck(t, env, "6.1"), Info, nil, "some images counted unused may be in use")

	env = dockerEnv(t)
	env.Images = nil
	env.LoadErrors[loadErrImages] = errors.New("list images: EOF")
	env.LoadErrors[loadErrContainers] = errors.New("list containers: EOF")
	expect(t, runCheck(t, env, "6.1"), Skip, nil, "list images: EOF")
	expect(t, runCheck(t, env, "6.2"), Skip, nil, "list containers: EOF")
}

func TestOperationsChecksMetadata(t *testing.T) {
	if len(operationsChecks) != 2 || operationsChecks[0].ID != "6.1" || operationsChecks[1].ID != "6.2" {
		t.Fatalf("section 6 checks: %+v", operationsChecks)
	}
	for _, c := range operationsChecks {
		if c.Title == "" || c.Remediation == "" || c.Run == nil || c.Level != 1 || c.Scored {
			t.Errorf("%s: %+v", c.ID, c)
		}
	}
}
