package procmon

import (
	"bytes"
	"strings"
)

// containerPrefixes are what runtimes put before a container ID in a cgroup directory
// name: systemd scopes of Docker (docker-ID.scope), containerd's CRI plugin, CRI-O and
// Podman. With the cgroupfs driver Docker uses the bare ID under /docker.
var containerPrefixes = []string{"docker-", "cri-containerd-", "crio-", "libpod-", "containerd-"}

// ContainerFromCgroup returns the ID of the container a process belongs to, from the
// content of /proc/PID/cgroup, for cgroup v1 ("12:pids:/docker/ID"), v2
// ("0::/system.slice/docker-ID.scope") and hybrid layouts; "" for a process of the
// host. The ID is the outermost 64-hex-digit component: for a container nested in a
// container (Docker in Docker) that is the one the host's runtime knows.
func ContainerFromCgroup(b []byte) string {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		// hierarchy-ID:controllers:path; the path may itself hold colons.
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			continue
		}
		j := bytes.IndexByte(line[i+1:], ':')
		if j < 0 {
			continue
		}
		if id := containerInPath(line[i+1+j+1:]); id != "" {
			return id
		}
	}
	return ""
}

func containerInPath(p []byte) string {
	for len(p) > 0 {
		comp := p
		if i := bytes.IndexByte(p, '/'); i >= 0 {
			comp, p = p[:i], p[i+1:]
		} else {
			p = nil
		}
		c := string(comp)
		c = strings.TrimSuffix(c, ".scope")
		for _, pre := range containerPrefixes {
			if strings.HasPrefix(c, pre) {
				c = c[len(pre):]
				break
			}
		}
		if isContainerID(c) {
			return c
		}
	}
	return ""
}

func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
