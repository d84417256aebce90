#!/usr/bin/env bash
# bench/process.sh: how Vigil's process monitor keeps up with a storm of short-lived
# processes in a container.
#
# Starts `vigil up` on a fresh data dir and a container of the test image, puts the
# container's group in Monitor with an empty profile, then runs LOOPS shell loops in the
# container for DUR seconds, each exec'ing `/bin/true` (busybox's applet, as a new
# process every time) as fast as it can, pacing the whole at RATE execs a second. Every
# exec Vigil observes is then a violation of the group's profile, counted into one
# aggregated "process" event: its count is the number of execs Vigil saw and judged.
# Reports: execs made (counted by the loops), execs seen, the monitor's lost (kernel
# sequence gaps), dropped (worker queues full) and unread (exited before /proc was read)
# counters during the run, and Vigil's CPU (utime+stime of its process) over the run.
#
# Root, Docker and the test image vigil-test/busybox:latest (built by the integration
# tests; scripts/setup.sh) are required. Nothing leaves the host.
#
# Environment: RATE (execs/s, default 2000), DUR (seconds, default 10), LOOPS (default 4).
set -euo pipefail

RATE=${RATE:-2000}
DUR=${DUR:-10}
LOOPS=${LOOPS:-4}
IMAGE=vigil-test/busybox:latest
cd "$(dirname "$0")/.."

die() { echo "process bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
docker image inspect "$IMAGE" >/dev/null 2>&1 || die "no $IMAGE: run the integration tests or scripts/setup.sh first"

WORK=$(mktemp -d)
BIN=$WORK/vigil
NAME=vigil-bench-proc-$$
GROUP=benchproc$$
go build -o "$BIN" ./cmd/vigil
PORT=$((20000 + RANDOM % 10000))
VIGIL_PID=
cleanup() {
	docker rm -f "$NAME" >/dev/null 2>&1 || true
	[ -n "$VIGIL_PID" ] && kill "$VIGIL_PID" 2>/dev/null && wait "$VIGIL_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" up --listen 127.0.0.1:$PORT --data-dir "$WORK/data" >"$WORK/up.log" 2>&1 &
VIGIL_PID=$!
V=("$BIN" --server http://127.0.0.1:$PORT --token-file "$WORK/data/token")
for _ in $(seq 100); do "${V[@]}" workloads >/dev/null 2>&1 && break; sleep 0.1; done
"${V[@]}" workloads >/dev/null || die "vigil up did not start: $(cat "$WORK/up.log")"

docker run -d --name "$NAME" --label vigil.group=$GROUP "$IMAGE" sleep 3600 >/dev/null
for _ in $(seq 100); do "${V[@]}" processes "$NAME" 2>/dev/null | grep -q "sleep 3600" && break; sleep 0.1; done
"${V[@]}" mode vigil.$GROUP monitor

stats() { curl -s -H "Authorization: Bearer $(cat "$WORK/data/token")" http://127.0.0.1:$PORT/api/v1/processes/stats; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['monitor']['$1'])"; }
cpu() { awk '{print $14+$15}' /proc/$VIGIL_PID/stat; }
TICKS=$(getconf CLK_TCK)

before=$(stats)
cpu0=$(cpu)
t0=$(date +%s.%N)
# Each loop sleeps after every batch so that the loops together make about RATE execs/s.
PER=$((RATE / LOOPS / 10)) # execs per loop per 100 ms
docker exec "$NAME" sh -c "
end=\$((\$(date +%s) + $DUR))
for l in \$(seq $LOOPS); do
  ( n=0; while [ \$(date +%s) -lt \$end ]; do
      i=0; while [ \$i -lt $PER ]; do /bin/true; i=\$((i+1)); done
      n=\$((n+$PER)); usleep 100000
    done; echo \$n ) &
done; wait" >"$WORK/made"
t1=$(date +%s.%N)
# Let the workers drain.
for _ in $(seq 50); do sleep 0.1; done
cpu1=$(cpu)
after=$(stats)

made=$(awk '{s+=$1} END {print s}' "$WORK/made")
seen=$("${V[@]}" events --type process -o json | python3 -c "
import json,sys
n=0
for e in json.load(sys.stdin):
    p=e['detail'].get('process',{})
    if e['detail'].get('workload')=='$NAME' and p.get('comm')=='true': n+=int(e['detail'].get('count',0))
print(n)")
secs=$(python3 -c "print(round($t1-$t0,2))")
for k in execs lost dropped unread; do
	eval "d_$k=$(( $(echo "$after" | field $k) - $(echo "$before" | field $k) ))"
done
cpu_pct=$(python3 -c "print(round(100*($cpu1-$cpu0)/$TICKS/($t1-$t0),1))")
echo "process bench: $made execs of /bin/true made in ${secs}s ($(python3 -c "print(round($made/$secs))")/s) by $LOOPS loops, target $RATE/s"
echo "  seen and judged by Vigil:  $seen ($(python3 -c "print(round(100*$seen/max($made,1),1))")%)"
echo "  monitor during the run:    execs $d_execs (all of the host's), lost $d_lost, dropped $d_dropped, unread $d_unread"
echo "  Vigil CPU over the run:    ${cpu_pct}% of one CPU"
echo "  host load average:         $(cut -d' ' -f1-3 /proc/loadavg)"
