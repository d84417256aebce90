package audit

import (
	"context"
	"fmt"
)

// Section 6 Docker security operations.
//
// Both controls are Manual in v1.8.0: how many images or containers are too many is a
// judgement, so the checks give the counts that judgement needs.
var operationsChecks = []Check{
	{
		ID: "6.1", Title: "Unused images do not pile up", Level: 1,
		Remediation: "Remove images nothing uses (docker image prune -a after review) and keep only the builds you may roll back to.",
		Run:         checkImageSprawl,
	},
	{
		ID: "6.2", Title: "Stopped containers do not pile up", Level: 1,
		Remediation: "Remove containers that are not coming back (docker container prune after review); run short-lived ones with --rm.",
		Run:         checkContainerSprawl,
	},
}

func checkImageSprawl(_ context.Context, env *Env) Result {
	if err := env.LoadErrors[loadErrImages]; err != nil && len(env.Images) == 0 {
		return skip("the images could not be read: " + err.Error())
	}
	used := imagesInUse(env.Containers)
	var dangling, unused int
	for i := range env.Images {
		im := &env.Images[i]
		if untagged(im) {
			dangling++
		}
		if !used[im.ID] {
			unused++
		}
	}
	evidence := []string{fmt.Sprintf("%d images: %d used by a container, %d unused, %d untagged (dangling)",
		len(env.Images), len(env.Images)-unused, unused, dangling)}
	if err := env.LoadErrors[loadErrContainers]; err != nil {
		evidence = append(evidence, "the containers could not all be read, so some images counted unused may be in use: "+err.Error())
	}
	return info(fmt.Sprintf("%d of the %d images are used by no container (%d untagged); remove those you will not roll back to",
		unused, len(env.Images), dangling), evidence...)
}

func checkContainerSprawl(_ context.Context, env *Env) Result {
	if err := env.LoadErrors[loadErrContainers]; err != nil && len(env.Containers) == 0 {
		return skip("the containers could not be read: " + err.Error())
	}
	running := 0
	for i := range env.Containers {
		if c := &env.Containers[i]; c.State != nil && c.State.Running {
			running++
		}
	}
	stopped := len(env.Containers) - running
	return info(fmt.Sprintf("%d of the %d containers are not running; remove those that will not be started again", stopped, len(env.Containers)),
		fmt.Sprintf("%d containers: %d running, %d not running", len(env.Containers), running, stopped))
}
