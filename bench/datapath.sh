#!/usr/bin/env bash
# bench/datapath.sh: the cost of Vigil's data path between two containers on this host.
#
# Measures TCP throughput (iperf3) and request/response rate and latency (bench/rr, 64-byte
# requests over one connection, and one connection per request) between two containers,
# each tool run inside the containers' network namespaces with `nsenter -t PID -n` (the
# image needs nothing). Scenarios, all in one run:
#   a) no Vigil running (baseline)
#   b) `vigil up` running (capture + flows, groups in Discover)
#   c) the same server with the server's group in Monitor
#   d) Protect, only when this build enforces (`vigil mode` accepts protect and
#      `vigil up --help` mentions enforcement); otherwise reported as not available.
# Each figure is the median of RUNS runs of DUR seconds; ratios are to (a) of this run.
# Root, Docker and iperf3 on the host are required. Traffic only goes between the two
# containers created here and to Vigil's API on 127.0.0.1.
#
# Environment: RUNS (default 3), DUR (seconds, default 4), PROTECT_RULES (default 1000),
# PIN_CPU (default 0; empty: no pinning): the client and server tools both run on this CPU.
# VIGIL_CPU (default empty): pin vigil up (and its scan children) to these CPUs.
# On a small VM a wake-up across CPUs costs tens of microseconds and comes and goes with
# how busy the other CPU is, so unpinned RR figures are bimodal (e.g. 14k or 36k req/s
# from one run to the next) and a busy Vigil can even make them look faster. Pinned, they
# are stable and what changes is the work added on the path; Vigil itself is not pinned.
set -euo pipefail

RUNS=${RUNS:-3}
DUR=${DUR:-4}
PROTECT_RULES=${PROTECT_RULES:-1000}
PIN_CPU=${PIN_CPU-0}
PIN=()
[ -n "$PIN_CPU" ] && PIN=(taskset -c "$PIN_CPU")
# VIGIL_CPU (default empty: not pinned): the CPUs vigil up may run on, e.g. 1 to keep it off
# the tools' CPU and see what sharing a core costs apart from the capture itself.
VIGIL_CPU=${VIGIL_CPU-}
VIGIL_PIN=()
[ -n "$VIGIL_CPU" ] && VIGIL_PIN=(taskset -c "$VIGIL_CPU")
IMAGE=vigil-test/busybox:latest
IPERF_PORT=5201
RR_PORT=7000
PROBE_PORT=7001 # also listening, never used by the measurements: Protect must refuse it

cd "$(dirname "$0")/.."
ROOT=$(pwd)

die() { echo "datapath: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
for c in docker iperf3 nsenter ss jq taskset go; do
	command -v "$c" >/dev/null || [ "$c" = go ] || die "missing $c"
done
export PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || die "missing go"
docker info >/dev/null 2>&1 || die "docker does not answer (bash scripts/setup.sh)"

TMP=$(mktemp -d /tmp/vigil-bench.XXXXXX)
TAG=vigil-bench-$$
SRV=$TAG-srv
CLI=$TAG-cli
VIGIL_PID=
SERVER_PIDS=()

stop_vigil() {
	if [ -n "$VIGIL_PID" ] && kill -0 "$VIGIL_PID" 2>/dev/null; then
		kill -TERM "$VIGIL_PID" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$VIGIL_PID" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$VIGIL_PID" 2>/dev/null; then
			echo "datapath: vigil did not stop within 10 s of SIGTERM, killing it" >&2
			kill -KILL "$VIGIL_PID" 2>/dev/null || true
		fi
		wait "$VIGIL_PID" 2>/dev/null || true
	fi
	VIGIL_PID=
}

cleanup() {
	set +e
	stop_vigil
	for p in "${SERVER_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	docker rm -f "$SRV" "$CLI" >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build -------------------------------------------------------------------------
make build >"$TMP/build.log" 2>&1 || { cat "$TMP/build.log" >&2; die "make build failed"; }
# Run a private copy: bin/vigil may be rebuilt by someone else while this runs.
cp "$ROOT/bin/vigil" "$TMP/vigil"
VIGIL=$TMP/vigil
CGO_ENABLED=0 go build -o "$TMP/rr" ./bench/rr || die "building bench/rr failed"
RR=$TMP/rr

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
	echo "datapath: $IMAGE missing, building it through the integration test" >&2
	go test -count=1 -tags integration -run TestWorkloadDiscovery ./test/integration/ >"$TMP/image.log" 2>&1 ||
		{ cat "$TMP/image.log" >&2; die "could not build $IMAGE"; }
fi

# --- containers --------------------------------------------------------------------
docker run -d --name "$SRV" --label vigil.group=bench-srv --network bridge "$IMAGE" sleep 100000 >/dev/null
docker run -d --name "$CLI" --label vigil.group=bench-cli --network bridge "$IMAGE" sleep 100000 >/dev/null
SRV_GROUP=vigil.bench-srv
SPID=$(docker inspect -f '{{.State.Pid}}' "$SRV")
CPID=$(docker inspect -f '{{.State.Pid}}' "$CLI")
SRV_IP=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$SRV")
[ -n "$SRV_IP" ] || die "no address for $SRV"
# Connection-per-request mode opens tens of thousands of connections from the client:
# let its own namespace reuse TIME_WAIT ports (this touches only the bench container).
nsenter -t "$CPID" -n sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"

nsenter -t "$SPID" -n "${PIN[@]}" iperf3 -s -p "$IPERF_PORT" >"$TMP/iperf3-server.log" 2>&1 &
SERVER_PIDS+=($!)
nsenter -t "$SPID" -n "${PIN[@]}" "$RR" -server -listen ":$RR_PORT" >"$TMP/rr-server.log" 2>&1 &
SERVER_PIDS+=($!)
nsenter -t "$SPID" -n "${PIN[@]}" "$RR" -server -listen ":$PROBE_PORT" >"$TMP/rr-probe.log" 2>&1 &
SERVER_PIDS+=($!)
for _ in $(seq 1 50); do
	nsenter -t "$SPID" -n ss -ltnH | grep -q ":$RR_PORT " &&
		nsenter -t "$SPID" -n ss -ltnH | grep -q ":$IPERF_PORT " && break
	sleep 0.1
done

# --- measurement -------------------------------------------------------------------
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "nan"; else print v[int((NR+1)/2)]}'; }

# measure NAME: fills $TMP/NAME.{tput,rr_rate,rr_p50,rr_p99,crr_rate,crr_p50,crr_p99}
# Other vigil processes: not the one under test, nor its own vulnerability-scan children.
others() { pgrep -x vigil | grep -vx "${VIGIL_PID:-0}" | grep -vxF -f <(pgrep -P "${VIGIL_PID:-0}" || true) | tr '\n' ' ' || true; }
measure() {
	local name=$1 i out o
	o=$(others)
	: >"$TMP/$name.tput"; : >"$TMP/$name.rr"; : >"$TMP/$name.crr"
	for i in $(seq 1 "$RUNS"); do
		out=$(nsenter -t "$CPID" -n "${PIN[@]}" iperf3 -c "$SRV_IP" -p "$IPERF_PORT" -t "$DUR" -J) || die "iperf3 failed"
		echo "$out" | jq -r '.end.sum_received.bits_per_second / 1e9' >>"$TMP/$name.tput"
		nsenter -t "$CPID" -n "${PIN[@]}" "$RR" -addr "$SRV_IP:$RR_PORT" -mode persistent -size 64 -d "${DUR}s" >>"$TMP/$name.rr" || die "rr failed"
		nsenter -t "$CPID" -n "${PIN[@]}" "$RR" -addr "$SRV_IP:$RR_PORT" -mode conn -size 64 -d "${DUR}s" >>"$TMP/$name.crr" || die "rr -mode conn failed"
	done
	o="$o $(others)"
	o=$(tr ' ' '\n' <<<"$o" | sed '/^$/d' | sort -u | tr '\n' ' ')
	if [ -n "$o" ]; then echo "another vigil (pid $o) ran on this host during this scenario" >"$TMP/$name.note"; else rm -f "$TMP/$name.note"; fi
	median <"$TMP/$name.tput" | awk '{printf "%.2f\n", $1}' >"$TMP/$name.v.tput"
	for k in rr crr; do
		for f in rate p50_us p99_us; do
			sed -n "s/.* $f=\([0-9.]*\).*/\1/p" "$TMP/$name.$k" | median >"$TMP/$name.v.${k}_$f"
		done
	done
}

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
proc_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

METRICS="tput rr_rate rr_p50_us rr_p99_us crr_rate crr_p50_us crr_p99_us"
label() {
	case $1 in
	tput) echo "iperf3 throughput (Gbit/s)" ;;
	rr_rate) echo "RR 64 B, 1 conn (req/s)" ;;
	rr_p50_us) echo "RR 64 B, 1 conn p50 (us)" ;;
	rr_p99_us) echo "RR 64 B, 1 conn p99 (us)" ;;
	crr_rate) echo "RR 64 B, conn/req (req/s)" ;;
	crr_p50_us) echo "RR 64 B, conn/req p50 (us)" ;;
	crr_p99_us) echo "RR 64 B, conn/req p99 (us)" ;;
	esac
}

report() { # NAME TITLE [vigil cpu seconds] [rss] [hwm]
	local name=$1 m v b
	echo
	echo "== ($name) $2"
	printf '  %-30s %12s %9s\n' metric median "vs (a)"
	for m in $METRICS; do
		v=$(cat "$TMP/$name.v.$m"); b=$(cat "$TMP/a.v.$m")
		printf '  %-30s %12s %8s\n' "$(label "$m")" "$v" "$(awk -v v="$v" -v b="$b" 'BEGIN {if (b+0 == 0) print "-"; else printf "%.1f%%", 100*v/b}')"
	done
	[ -s "$TMP/$name.note" ] && echo "  NOTE: $(cat "$TMP/$name.note"): figures disturbed"
	if [ $# -gt 2 ]; then
		printf '  vigil CPU during the scenario: %s s (%s%% of one core over %s s)\n' "$3" "$(awk -v c="$3" -v w="$6" 'BEGIN {printf "%.1f", 100*c/w}')" "$6"
		printf '  vigil RSS at the end: VmRSS %s MiB, VmHWM %s MiB\n' "$(awk -v k="$4" 'BEGIN {printf "%.1f", k/1024}')" "$(awk -v k="$5" 'BEGIN {printf "%.1f", k/1024}')"
	fi
}

# run_vigil_scenario NAME TITLE: measure with Vigil up; report its CPU and memory.
run_vigil_scenario() {
	local t0 c0 t1 c1
	t0=$(date +%s.%N); c0=$(cpu_ticks "$VIGIL_PID")
	measure "$1"
	t1=$(date +%s.%N); c1=$(cpu_ticks "$VIGIL_PID")
	kill -0 "$VIGIL_PID" 2>/dev/null || die "vigil exited during ($1); see $TMP/vigil.log"
	report "$1" "$2" "$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" 'BEGIN {printf "%.2f", (b-a)/t}')" \
		"$(proc_kb "$VIGIL_PID" VmRSS)" "$(proc_kb "$VIGIL_PID" VmHWM)" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", b-a}')"
}

echo "Vigil data path benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "host: $(uname -r), $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "vigil: $("$VIGIL" version 2>/dev/null | head -1); iperf3: $(iperf3 --version | head -1 | awk '{print $2}')"
echo "containers: $CLI -> $SRV ($SRV_IP, docker bridge); $RUNS runs x ${DUR} s per figure, median"
echo "client and server tools pinned to CPU: ${PIN_CPU:-none}; vigil pinned to CPU: ${VIGIL_CPU:-none}"

# (a) baseline
# Another vigil (e.g. an integration test) would capture on these containers' veths too.
for _ in $(seq 1 60); do [ -z "$(others)" ] && break; sleep 1; done
[ -z "$(others)" ] || echo "warning: another vigil process is running on this host (pid $(others)); the scenarios it overlaps are marked" >&2
nsenter -t "$CPID" -n "${PIN[@]}" "$RR" -addr "$SRV_IP:$RR_PORT" -n 200 >/dev/null || die "warm-up failed"
measure a
report a "no Vigil (baseline)"

# (b) vigil up, Discover
PORT=
for p in $(shuf -i 20000-29999 -n 50); do
	ss -ltnH "sport = :$p" | grep -q . || { PORT=$p; break; }
done
[ -n "$PORT" ] || die "no free port"
DATA=$TMP/data
mkdir -p "$DATA"
# With --fail-open (when this build has it) Vigil removes its own enforcement on SIGTERM.
FAIL_OPEN=
# (help texts are read into variables first: grep -q under pipefail could see SIGPIPE)
UP_HELP=$("$VIGIL" up --help 2>&1 || true)
MODE_HELP=$("$VIGIL" mode --help 2>&1 || true)
grep -q -- --fail-open <<<"$UP_HELP" && FAIL_OPEN=--fail-open
"${VIGIL_PIN[@]}" "$VIGIL" up --data-dir "$DATA" --listen "127.0.0.1:$PORT" --audit-interval 0 $FAIL_OPEN >"$TMP/vigil.log" 2>&1 &
VIGIL_PID=$!
V() { "$VIGIL" --server "http://127.0.0.1:$PORT" --token-file "$DATA/token" "$@"; }
ready=
for _ in $(seq 1 150); do
	kill -0 "$VIGIL_PID" 2>/dev/null || { cat "$TMP/vigil.log" >&2; die "vigil up exited"; }
	if [ -s "$DATA/token" ] && out=$(V workloads 2>/dev/null) && grep -q "$SRV" <<<"$out" && grep -q "$CLI" <<<"$out"; then
		ready=1; break
	fi
	sleep 0.2
done
[ -n "$ready" ] || { cat "$TMP/vigil.log" >&2; die "vigil did not list the bench containers within 30 s"; }
# Wait until capture sees the bench traffic: a warm-up connection must become a flow.
seen=
for _ in $(seq 1 20); do
	nsenter -t "$CPID" -n "${PIN[@]}" "$RR" -addr "$SRV_IP:$RR_PORT" -n 50 >/dev/null
	if V flows --group "$SRV_GROUP" -o json 2>/dev/null | jq -e 'length > 0' >/dev/null 2>&1; then seen=1; break; fi
	sleep 0.5
done
[ -n "$seen" ] || die "vigil reports no flow for $SRV_GROUP"
# vigil up scans the host and each new image for vulnerabilities when it starts (child
# processes at idle priority); the figures are of the steady state, after those scans.
ts0=$(date +%s.%N)
for _ in $(seq 1 600); do pgrep -P "$VIGIL_PID" -f 'vigil scan' >/dev/null || break; sleep 0.2; done
echo "  (vigil's start-up vulnerability scans took $(awk -v a="$ts0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b-a}') s more before the measurement)"
run_vigil_scenario b "vigil up: capture + flows, Discover"
flows_b=$(V flows --group "$SRV_GROUP" -o json --limit 10000 2>/dev/null | jq length 2>/dev/null || echo "?")
[ "$flows_b" = 10000 ] && flows_b=">= 10000 (the API limit)"

# (c) Monitor
V mode "$SRV_GROUP" monitor >/dev/null || die "vigil mode $SRV_GROUP monitor failed"
run_vigil_scenario c "vigil up, $SRV_GROUP in Monitor"
viol=$(V events -o json 2>/dev/null | jq '[.[] | select(.type == "violation")] | length' 2>/dev/null || echo "?")
echo "  flows of $SRV_GROUP reported after (b): $flows_b; violation events after (c): $viol"

# (d) Protect, only when this build enforces
probe() { nsenter -t "$CPID" -n "${PIN[@]}" "$RR" -addr "$SRV_IP:$PROBE_PORT" -n 1 >/dev/null 2>&1; }
probe || die "probe connection to $SRV_IP:$PROBE_PORT failed before Protect"
if grep -qw protect <<<"$MODE_HELP" && grep -qi enforc <<<"$UP_HELP"; then
	# Make sure the bench traffic is allowed, then load PROTECT_RULES unrelated rules.
	V rule add --from vigil.bench-cli --to "$SRV_GROUP" --ports "tcp/$IPERF_PORT,tcp/$RR_PORT" >/dev/null ||
		die "could not add the allow rule"
	for i in $(seq 1 $((PROTECT_RULES - 1))); do
		V rule add --from "address:10.$((i / 250)).$((i % 250)).1" --to "$SRV_GROUP" --ports "tcp/$((10000 + i))" >/dev/null ||
			die "could not add rule $i"
	done
	if V mode "$SRV_GROUP" protect >/dev/null; then
		# Do not trust the mode alone: a connection outside the rules must be refused.
		blocked=
		tb0=$(date +%s.%N)
		for _ in $(seq 1 100); do probe || { blocked=1; break; }; sleep 0.1; done
		tb=$(awk -v a="$tb0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b-a}')
		if [ -z "$blocked" ]; then
			echo; echo "protect: not available in this build (mode accepted, but tcp/$PROBE_PORT is still open ${tb} s later)"
			echo "  nft tables in the server's namespace: $(nsenter -t "$SPID" -n nft list tables 2>/dev/null | wc -l)"
			grep -iE 'enforc|nft|protect' "$TMP/vigil.log" | grep -iE 'warn|err|fail' | tail -n 3 | cut -c1-300 | sed 's/^/  vigil log: /' || true
			echo "  verdicts of the tcp/$PROBE_PORT flows: $(V flows --group "$SRV_GROUP" -o json --limit 10000 2>/dev/null |
				jq -r --argjson p "$PROBE_PORT" '[.[] | select(tostring | test(":\($p)\\b|\"port\":\($p)\\b")) | "\(.verdict // "-")/\(.rule_id // "-")"] | unique | join(" ")' 2>/dev/null)"
		else
			tables=$(nsenter -t "$SPID" -n nft list tables 2>/dev/null | wc -l || echo "?")
			nsenter -t "$CPID" -n "${PIN[@]}" "$RR" -addr "$SRV_IP:$RR_PORT" -n 50 >/dev/null || die "allowed traffic is blocked in Protect"
			run_vigil_scenario d "vigil up, $SRV_GROUP in Protect, $PROTECT_RULES rules"
			echo "  check: tcp/$PROBE_PORT (no rule) refused ${tb} s after the switch, allowed ports pass; nft tables in the server's namespace: $tables"
		fi
	else
		echo; echo "protect: not available in this build (vigil mode $SRV_GROUP protect failed)"
	fi
else
	echo
	echo "protect: not available in this build"
fi

stop_vigil
echo
echo "vigil stopped with SIGTERM; containers removed on exit"
