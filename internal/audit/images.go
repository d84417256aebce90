package audit

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
)

// Section 4 Container images and build files.
//
// The checks read what an inspected image keeps of its Dockerfile: its configuration
// (USER, HEALTHCHECK, ENV, LABEL) and, where the Env carries it, its build history
// (`docker history`). Everything else (packages, file modes, provenance) needs the image's
// contents or a person, and those controls say so. v1.8.0 marks every control of this
// section Manual (not scored).
var imageChecks = []Check{
	{
		ID: "4.1", Title: "Containers run as a non-root user", Level: 1,
		Remediation: "Create a user in the Dockerfile (RUN useradd -r -u 10001 app) and switch to it with USER; or start the container with --user <uid>. Where root is needed at start, drop to the user in the entrypoint.",
		Run:         checkImageUser,
	},
	{
		ID: "4.2", Title: "Images are built only from base images you trust", Level: 1,
		Remediation: "Build FROM official or your own vetted base images, pinned by digest, pulled from registries you control or trust; keep a list of allowed sources and enforce it at pull time.",
		Run:         checkImageSources,
	},
	{
		ID: "4.3", Title: "Images carry no packages they do not need", Level: 1,
		Remediation: "Start from a minimal base (distroless, alpine, -slim), install with --no-install-recommends, and remove build tools in a multi-stage build.",
		Run: func(context.Context, *Env) Result {
			return info("deciding which packages an image needs takes a person; `vigil scan image <name>` lists what each image contains")
		},
	},
	{
		ID: "4.4", Title: "Images are scanned and rebuilt to pick up security fixes", Level: 1,
		Remediation: "Scan every image on a schedule (vigil scan image <name>), rebuild on patched bases without the build cache (docker build --pull --no-cache), and redeploy.",
		Run:         checkImageAge,
	},
	{
		ID: "4.5", Title: "Docker Content Trust is on where images are pulled and pushed", Level: 2,
		Remediation: "Export DOCKER_CONTENT_TRUST=1 in the environment of every docker client that pulls, runs or pushes images (shell profiles, CI jobs, systemd units).",
		Run: func(context.Context, *Env) Result {
			return info("content trust is a setting of each docker client (DOCKER_CONTENT_TRUST=1 in its environment), not of the daemon, so it cannot be seen from here")
		},
	},
	{
		ID: "4.6", Title: "Images define a HEALTHCHECK", Level: 1,
		Remediation: "Add a HEALTHCHECK instruction that probes the service (HEALTHCHECK CMD wget -q --spider http://localhost:8080/health || exit 1) and rebuild.",
		Run:         perImage("images without a HEALTHCHECK leave a hung service undetected", healthcheckFindings),
	},
	{
		ID: "4.7", Title: "Package index updates never stand alone in a build step", Level: 1,
		Remediation: "Update the package index and install in the same RUN (RUN apt-get update && apt-get install -y ...), so a cached, stale index is never used.",
		Run:         checkUpdateAlone,
	},
	{
		ID: "4.8", Title: "Images carry no setuid or setgid files they do not need", Level: 2,
		Remediation: "Remove the bits in the Dockerfile: RUN find / -xdev -perm /6000 -type f -exec chmod a-s {} + (keeping only those the application needs).",
		Run: func(context.Context, *Env) Result {
			return info("this needs the image's files, which inspect does not show: list them with docker run --rm --entrypoint find <image> / -xdev -perm /6000 -type f")
		},
	},
	{
		ID: "4.9", Title: "Dockerfiles use COPY rather than ADD", Level: 1,
		Remediation: "Replace ADD with COPY; fetch remote files with curl or wget in a RUN step that verifies a checksum, and unpack archives explicitly.",
		Run:         checkAddInstructions,
	},
	{
		ID: "4.10", Title: "No secrets are baked into images", Level: 1,
		Remediation: "Remove credentials from ENV, LABEL and ARG; pass them at run time (docker secrets, --env-file kept out of the image) or at build time with RUN --mount=type=secret. Rotate any secret that was in an image.",
		Run:         checkImageSecrets,
	},
	{
		ID: "4.11", Title: "Only verified packages are installed", Level: 2,
		Remediation: "Install from repositories whose signatures the package manager checks (apt with signed-by keys, dnf gpgcheck=1, pip --require-hashes, npm ci with a lockfile).",
		Run: func(context.Context, *Env) Result {
			return info("whether packages were verified when installed cannot be read from an image; review the Dockerfiles and build pipelines")
		},
	},
	{
		ID: "4.12", Title: "Signed artifacts are verified before use", Level: 1,
		Remediation: "Sign images and other build outputs (cosign, Notation) and verify the signatures in the pipeline and at deployment.",
		Run: func(context.Context, *Env) Result {
			return info("signature verification happens in the build and deployment pipelines, which cannot be seen from here")
		},
	},
}

// staleImageAge is how old a build is before 4.4 lists it: base images get security
// fixes every few weeks.
const staleImageAge = 90 * 24 * time.Hour

// isRootUser reports whether a USER or --user value runs as uid 0: empty, root or 0,
// with or without a group.
func isRootUser(user string) bool {
	u, _, _ := strings.Cut(strings.TrimSpace(user), ":")
	return u == "" || u == "root" || u == "0"
}

// checkImageUser faults running containers whose process runs as root (their effective
// user: --user, else the image's USER), as the benchmark's audit does, and images that
// set no non-root USER.
func checkImageUser(_ context.Context, env *Env) Result {
	var f objectFindings
	cs, _ := runningContainers(env)
	for _, c := range cs {
		user := ""
		if c.Config != nil {
			user = c.Config.User
		}
		if isRootUser(user) {
			f.add(containerTarget(c), fmt.Sprintf("runs as root (User=%q)", user))
		}
	}
	images := auditedImages(env)
	for _, im := range images {
		if user := imageConfigUser(im); isRootUser(user) {
			f.add(imageTarget(im), imageUserDetail(user))
		}
	}
	return f.result(env, "a process running as root in a container is root on the host if it breaks out, unless the daemon remaps users",
		[]string{fmt.Sprintf("%d running containers and %d images checked", len(cs), len(images))},
		loadErrContainers, loadErrImages)
}

func imageConfigUser(im *image.InspectResponse) string {
	if im.Config == nil {
		return ""
	}
	return im.Config.User
}

func imageUserDetail(user string) string {
	if user == "" {
		return "no USER (runs as root)"
	}
	return fmt.Sprintf("USER %s", user)
}

// checkImageSources lists where each image came from, for a person to judge against
// the sources they trust.
func checkImageSources(_ context.Context, env *Env) Result {
	if r, stop := noImages(env); stop {
		return r
	}
	var lines []string
	local := 0
	images := auditedImages(env)
	for _, im := range images {
		if len(im.RepoDigests) == 0 {
			local++
			lines = append(lines, imageName(im)+": built or loaded locally (no registry digest)")
			continue
		}
		lines = append(lines, imageName(im)+": from "+strings.Join(im.RepoDigests, ", "))
	}
	return info(fmt.Sprintf("only a person can say which sources are trusted; %d of the %d images have no registry digest (built or loaded here)", local, len(images)), lines...)
}

// checkImageAge points to vigil scan and lists the images built long ago: a build that
// old has missed fixes to its base whatever a scan says today.
func checkImageAge(_ context.Context, env *Env) Result {
	if r, stop := noImages(env); stop {
		return r
	}
	var old []string
	for _, im := range auditedImages(env) {
		created, err := time.Parse(time.RFC3339Nano, im.Created)
		if err != nil || created.IsZero() {
			continue
		}
		if age := env.Now.Sub(created); age > staleImageAge {
			old = append(old, fmt.Sprintf("%s: built %s (%d days ago)", imageName(im), created.Format(time.DateOnly), int(age.Hours()/24)))
		}
	}
	reason := "scan the images with `vigil scan image <name>` (or your scanner) and rebuild those with fixes available"
	if len(old) > 0 {
		reason += fmt.Sprintf("; %d images were built more than %d days ago", len(old), int(staleImageAge.Hours()/24))
	}
	return note(reason, old...)
}

func healthcheckFindings(im *image.InspectResponse) []string {
	if im.Config == nil || im.Config.Healthcheck == nil || len(im.Config.Healthcheck.Test) == 0 {
		return []string{"no HEALTHCHECK"}
	}
	if im.Config.Healthcheck.Test[0] == "NONE" {
		return []string{"HEALTHCHECK NONE"}
	}
	return nil
}

// secretKeyWords mark an ENV or LABEL key as holding a credential.
var secretKeyWords = []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "ACCESS_KEY", "PRIVATE_KEY", "CREDENTIAL"}

// notSecretSuffixes mark keys that name where a secret is, not the secret itself
// (POSTGRES_PASSWORD_FILE=/run/secrets/db, TOKEN_URL=https://...).
var notSecretSuffixes = []string{"_FILE", "_PATH", "_DIR", "_URL", "_URI"}

// secretKey reports whether an ENV or LABEL key names a credential.
func secretKey(key string) bool {
	k := strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(key))
	for _, s := range notSecretSuffixes {
		if strings.HasSuffix(k, s) {
			return false
		}
	}
	return slices.ContainsFunc(secretKeyWords, func(w string) bool { return strings.Contains(k, w) })
}

// secretFindings names the ENV variables and labels of an image that look like
// credentials with a value. It never includes the value.
func secretFindings(im *image.InspectResponse) []string {
	if im.Config == nil {
		return nil
	}
	var out []string
	for _, kv := range im.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		if v != "" && secretKey(k) {
			out = append(out, "ENV "+k+" is set")
		}
	}
	keys := make([]string, 0, len(im.Config.Labels))
	for k, v := range im.Config.Labels {
		if v != "" && secretKey(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, "LABEL "+k+" is set")
	}
	return out
}

// checkImageSecrets looks for credentials in the images' ENV and LABEL and, where the
// build history is known, in the build arguments recorded with RUN steps.
func checkImageSecrets(_ context.Context, env *Env) Result {
	return imageSecretsResult(env, imageHistories(env))
}

func imageSecretsResult(env *Env, histories map[string][]image.HistoryResponseItem) Result {
	var f objectFindings
	for i := range env.Images {
		im := &env.Images[i]
		for _, line := range secretFindings(im) {
			f.add(imageTarget(im), line)
		}
		for _, step := range histories[im.ID] {
			for _, k := range buildArgSecrets(step.CreatedBy) {
				f.add(imageTarget(im), "build argument "+k+" recorded in the history")
			}
		}
	}
	return f.result(env, "anyone who can pull these images can read the credentials in them",
		[]string{fmt.Sprintf("%d images checked (ENV and LABEL)", len(env.Images))}, loadErrImages)
}

// classicArgs matches the build arguments the classic builder records before a RUN
// step: "|2 TOKEN=abc USER=x /bin/sh -c ...".
var classicArgs = regexp.MustCompile(`^\|\d+ (.*?) /bin/sh -c `)

// buildArgSecrets returns the names of credential-like build arguments with a value
// recorded in a history line.
func buildArgSecrets(createdBy string) []string {
	s := strings.TrimPrefix(createdBy, "RUN ")
	m := classicArgs.FindStringSubmatch(s)
	if m == nil {
		return nil
	}
	var out []string
	for _, kv := range strings.Fields(m[1]) {
		k, v, ok := strings.Cut(kv, "=")
		if ok && v != "" && secretKey(k) {
			out = append(out, k)
		}
	}
	return out
}

// imageHistories returns each image's build history (`docker history`, newest step
// first) by image id, or nil when it could not be loaded; the history-based checks (4.7,
// 4.9 and 4.10's build arguments) then report what they cannot see.
func imageHistories(env *Env) map[string][]image.HistoryResponseItem { return env.ImageHistory }

// updateCommands refresh a package index; on their own in a step they leave a stale
// index in the cache for later steps.
var updateCommands = regexp.MustCompile(`\b(apt-get update|apt update|apk update|yum makecache|dnf makecache|zypper (refresh|ref))\b`)

// installCommands install or upgrade packages in the same step as the update.
var installCommands = regexp.MustCompile(`\b(apt-get|apt|yum|dnf|zypper|microdnf)( -[^ ]+)* (install|upgrade|dist-upgrade|in)\b|\bapk( -[^ ]+)* (add|upgrade)\b`)

// updateAlone reports whether a history line is a RUN step that refreshes a package
// index without installing anything.
func updateAlone(createdBy string) bool {
	if strings.Contains(createdBy, "#(nop)") {
		return false
	}
	return updateCommands.MatchString(createdBy) && !installCommands.MatchString(createdBy)
}

func checkUpdateAlone(_ context.Context, env *Env) Result {
	return updateAloneResult(env, imageHistories(env))
}

func updateAloneResult(env *Env, histories map[string][]image.HistoryResponseItem) Result {
	return historyCheck(env, histories, "these images refresh a package index in a step of its own, so a later install can use a stale cached index",
		func(createdBy string) string {
			if updateAlone(createdBy) {
				return "step runs an index update alone: " + trimStep(createdBy)
			}
			return ""
		})
}

// remoteOrArchive matches the source of an ADD that does more than COPY would: a URL or
// an archive that ADD unpacks.
var remoteOrArchive = regexp.MustCompile(`^(https?://|git@|git://)|\.(tar|tar\.gz|tgz|tar\.xz|txz|tar\.bz2|tbz2|tar\.zst)$`)

// addFinding describes an ADD step in a history line: ("", false) for other steps.
// BuildKit records the instruction as written ("ADD https://x/a.tgz /opt/ # buildkit");
// the classic builder only a content hash ("#(nop) ADD file:3a9c in /opt/"), so there a
// URL or archive cannot be told from a plain file. The classic builder's ADD into / is
// how base images import their root filesystem, and is left alone.
func addFinding(createdBy string) (detail string, remote bool) {
	s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(createdBy), "# buildkit"))
	if rest, ok := strings.CutPrefix(s, "ADD "); ok {
		var srcs []string
		for _, w := range strings.Fields(rest) {
			if !strings.HasPrefix(w, "--") {
				srcs = append(srcs, w)
			}
		}
		if len(srcs) > 1 {
			srcs = srcs[:len(srcs)-1] // the last word is the destination
		}
		for _, src := range srcs {
			if remoteOrArchive.MatchString(strings.ToLower(src)) {
				return "ADD " + src, true
			}
		}
		return "", false
	}
	if _, rest, ok := strings.Cut(s, "#(nop) ADD "); ok {
		if _, dest, ok := strings.Cut(rest, " in "); ok && strings.TrimSpace(dest) != "/" {
			return "ADD into " + strings.TrimSpace(dest) + " (source not recorded by the classic builder)", false
		}
	}
	return "", false
}

// checkAddInstructions faults ADD steps that fetch a URL or unpack an archive, and
// mentions the ADD steps whose source the classic builder did not record.
func checkAddInstructions(_ context.Context, env *Env) Result {
	return addInstructionsResult(env, imageHistories(env))
}

func addInstructionsResult(env *Env, histories map[string][]image.HistoryResponseItem) Result {
	r := historyCheck(env, histories, "these images ADD a remote URL or an archive; COPY with an explicit download or unpack is predictable",
		func(createdBy string) string {
			if d, remote := addFinding(createdBy); remote {
				return d
			}
			return ""
		})
	if r.Status != Pass {
		return r
	}
	var unknown []string
	for _, im := range auditedImages(env) {
		for _, step := range histories[im.ID] {
			if d, remote := addFinding(step.CreatedBy); d != "" && !remote {
				unknown = append(unknown, imageName(im)+": "+d)
			}
		}
	}
	if len(unknown) > 0 {
		return note("no ADD of a URL or archive is recorded, but these ADD steps do not say their source; check that COPY would do", unknown...)
	}
	return r
}

// historyCheck runs a rule over every image's build history: WARN naming the images
// with a step the rule faults (it returns what is wrong, or ""), PASS when none has.
// Without the history it says so (INFO).
func historyCheck(env *Env, histories map[string][]image.HistoryResponseItem, reason string, rule func(createdBy string) string) Result {
	if r, stop := noImages(env); stop {
		return r
	}
	if histories == nil {
		return info("this needs the images' build history (docker history), which this audit does not load yet; review the Dockerfiles")
	}
	var f objectFindings
	for _, im := range auditedImages(env) {
		for _, step := range histories[im.ID] {
			if d := rule(step.CreatedBy); d != "" {
				f.add(imageTarget(im), d)
			}
		}
	}
	return f.result(env, reason, []string{fmt.Sprintf("the build history of %d images checked", len(histories))}, loadErrImages)
}

// trimStep shortens a history line for evidence.
func trimStep(createdBy string) string {
	s := strings.TrimSpace(strings.TrimPrefix(createdBy, "/bin/sh -c "))
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// perImage builds a check from a rule over images: WARN naming every image the rule
// faults, else PASS.
func perImage(reason string, rule func(im *image.InspectResponse) []string) func(context.Context, *Env) Result {
	return func(_ context.Context, env *Env) Result {
		if r, stop := noImages(env); stop {
			return r
		}
		var f objectFindings
		images := auditedImages(env)
		for _, im := range images {
			for _, line := range rule(im) {
				f.add(imageTarget(im), line)
			}
		}
		return f.result(env, reason, []string{fmt.Sprintf("%d images checked", len(images))}, loadErrImages)
	}
}

// auditedImages returns the images the image checks judge: every tagged image and every
// image a container uses. An untagged image nothing uses is a leftover build, counted by
// 6.1, and judging it would bury the images that matter. 4.10 looks at all images: a
// secret in a leftover is still on the disk.
func auditedImages(env *Env) []*image.InspectResponse {
	used := imagesInUse(env.Containers)
	var out []*image.InspectResponse
	for i := range env.Images {
		if im := &env.Images[i]; used[im.ID] || !untagged(im) {
			out = append(out, im)
		}
	}
	return out
}

// noImages gives the result of an image check when there is no image to look at: SKIP
// when they could not be loaded, PASS when there are none.
func noImages(env *Env) (Result, bool) {
	if len(env.Images) > 0 {
		return Result{}, false
	}
	if err := env.LoadErrors[loadErrImages]; err != nil {
		return skip("the images could not be read: " + err.Error()), true
	}
	return pass("there are no images"), true
}

// imageName is how people know an image: its first tag, else its short id.
func imageName(im *image.InspectResponse) string {
	for _, t := range im.RepoTags {
		if t != "<none>:<none>" {
			return t
		}
	}
	return shortID(im.ID)
}

// untagged reports whether an image has no tag ("dangling" in docker images).
func untagged(im *image.InspectResponse) bool {
	return !slices.ContainsFunc(im.RepoTags, func(t string) bool { return t != "<none>:<none>" })
}

func imageTarget(im *image.InspectResponse) Target {
	return Target{Kind: "image", ID: im.ID, Name: imageName(im)}
}

// imagesInUse returns the ids of the images that containers (running or not) use.
func imagesInUse(cs []container.InspectResponse) map[string]bool {
	used := map[string]bool{}
	for i := range cs {
		used[cs[i].Image] = true
	}
	return used
}
