package audit

import "errors"

// loadDaemonConfig reads the daemon's effective configuration: the dockerd command line
// (from the dockerd process found under procRoot) merged over daemon.json (from
// --config-file, else root/etc/docker/daemon.json, or the rootless user's path).
func loadDaemonConfig(root, procRoot string, rootless bool) (DaemonConfig, error) {
	return DaemonConfig{}, errors.New("not implemented yet")
}
