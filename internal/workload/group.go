package workload

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/distribution/reference"
)

// GroupPrefix starts the name of every learned group.
const GroupPrefix = "vigil."

// Label keys that decide a container's group.
const (
	LabelGroup          = "vigil.group"
	LabelComposeProject = "com.docker.compose.project"
	LabelComposeService = "com.docker.compose.service"
)

// maxLabel is the longest DNS label (RFC 1035), which the part after the prefix must fit.
const maxLabel = 63

// GroupName returns the learned group of a container: the vigil.group label when set,
// else the compose project and service, else the image repository without registry host,
// tag or digest. Replicas of one service or image therefore share a group.
func GroupName(labels map[string]string, image string) string {
	if g := strings.TrimSpace(labels[LabelGroup]); g != "" {
		return GroupPrefix + dnsLabel(strings.TrimPrefix(g, GroupPrefix))
	}
	project, service := labels[LabelComposeProject], labels[LabelComposeService]
	if service != "" {
		if project != "" {
			return GroupPrefix + dnsLabel(project+"-"+service)
		}
		return GroupPrefix + dnsLabel(service)
	}
	return GroupPrefix + dnsLabel(imageRepository(image))
}

// imageRepository reduces an image reference to the repository path a person would name
// it by: "docker.io/library/nginx:1.25" is "nginx", "ghcr.io/acme/api@sha256:..." is
// "acme/api". A bare image ID stays recognisable by its first 12 hex digits.
func imageRepository(image string) string {
	image = strings.TrimSpace(image)
	if image == "" {
		return "unknown"
	}
	if id, ok := strings.CutPrefix(image, "sha256:"); ok {
		return "image-" + shorten(id, 12)
	}
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		// An ID given without its algorithm, or a reference Docker would have rejected:
		// keep what it says rather than failing.
		if isHex(image) && len(image) >= 12 {
			return "image-" + image[:12]
		}
		return image
	}
	return strings.TrimPrefix(reference.Path(named), "library/")
}

// dnsLabel folds s into a DNS label: lower case letters, digits and inner hyphens, at most
// 63 characters. Names that must be cut keep a short hash of the whole so that two long
// names differing only at the end stay apart.
func dnsLabel(s string) string {
	var b strings.Builder
	hyphen := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			hyphen = false
			continue
		}
		if !hyphen && b.Len() > 0 {
			b.WriteByte('-')
			hyphen = true
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if out == "" {
		return "unnamed"
	}
	if len(out) > maxLabel {
		sum := sha256.Sum256([]byte(s))
		suffix := hex.EncodeToString(sum[:])[:8]
		out = strings.TrimRight(out[:maxLabel-len(suffix)-1], "-") + "-" + suffix
	}
	return out
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func isHex(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return s != ""
}
