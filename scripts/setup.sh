#!/usr/bin/env bash
# Idempotent host preparation for building, running and testing Vigil on Debian.
# Installs what is missing from Debian's packages and makes sure a Docker daemon answers.
# Safe to run again and again: it changes nothing on a machine that is already ready.
set -euo pipefail

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (Vigil and its tests need root for Docker, network namespaces and nftables)"

# command -> Debian package that provides it
declare -A need=(
	[dockerd]=docker.io
	[docker]=docker.io
	[nft]=nftables
	[ip]=iproute2
	[conntrack]=conntrack
	[iperf3]=iperf3
	[git]=git
	[make]=make
	[gcc]=gcc
	[node]=nodejs    # the web console's build (npm ci && npm run build in web/)
	[npm]=npm
	[chromium]=chromium # the console's browser tests
)
missing=()
for cmd in "${!need[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# The test image is made from a statically linked busybox; Debian's dynamic one would not run in it.
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' || missing+=(busybox-static)

if [ ${#missing[@]} -gt 0 ]; then
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || die "apt-get update failed: check the machine's access to Debian's package mirror"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
fi

nodever=$(node -p 'process.versions.node.split(".")[0]')
[ "$nodever" -ge 18 ] || die "Node.js $(node --version) is too old: the web console's build needs 18 or newer"

export PATH=/usr/local/go/bin:$PATH
command -v go >/dev/null 2>&1 || die "Go is not installed: install Go 1.26 or newer to /usr/local/go"
gover=$(go env GOVERSION)
case "$gover" in
go1.2[6-9]* | go1.[3-9][0-9]* | go[2-9]*) ;;
*) die "Go $gover is too old: Vigil needs Go 1.26 or newer (in /usr/local/go)" ;;
esac

docker_ok() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if ! docker_ok; then
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		log "starting docker with systemd"
		systemctl start docker || log "systemctl start docker failed; starting dockerd directly"
	fi
fi
if ! docker_ok; then
	if pgrep -x dockerd >/dev/null 2>&1; then
		log "dockerd is running but does not answer yet; waiting"
	else
		logfile=/var/log/vigil-dockerd.log
		log "starting dockerd in the background (log: $logfile)"
		nohup dockerd >"$logfile" 2>&1 </dev/null &
		disown || true
	fi
	for _ in $(seq 1 120); do
		docker_ok && break
		sleep 0.5
	done
	docker_ok || die "Docker did not come up within 60 s; see /var/log/vigil-dockerd.log"
fi
log "ready: docker $(docker version --format '{{.Server.Version}}'), $gover"
