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
# sequence gaps), dropped (worker queues full), unread (exited before /proc was read and
# no exec notification came) and recovered (exited before /proc was read, judged from the
# file guard's FAN_OPEN_EXEC notification) counters during the run, and Vigil's CPU
# (utime+stime of its process) over the run, and the taskstats exit records: received,
# execs judged gone whose name and user IDs came from their record (named; waited: the
# record came after the exec was ready to be judged), timed out (no record within 50 ms),
# rejected (a later program's record), overruns (ENOBUFS).
#
# Seen is counted two ways. "As true": events whose process is named true (read from
# /proc, or its name from /proc's stat before it went). "By executable only": events of
# /bin/busybox whose name could not be read (the process had gone; the notification
# gives the file, /bin/busybox, not the applet's name). The loops' own `date` and
# `usleep` (two per batch) are busybox applets too and may land in the second count, so
# the total of all the container's execs made is given beside the total seen.
#
# Root, Docker and the test image vigil-test/busybox:latest (built by the integration
# tests; scripts/setup.sh) are required. Nothing leaves the host.
#
# PROG chooses the program: "true" (default) is busybox's applet, /bin/true, a link to
# /bin/busybox; "quick" is a 129-byte static x86-64 program that calls exit(0) at once,
# put in a derived image (vigil-bench/quick, made here with docker commit, so it is part
# of the image, not drift) at /bin/quick. With "quick" the group's profile
# (learned in Discover before the switch: busybox's sleep) does not hold the program, so
# every exec is a violation even when only its exec notification identified it.
#
# Environment: RATE (execs/s, default 2000), DUR (seconds, default 10), LOOPS (default 4),
# PROG (true or quick, default true).
set -euo pipefail

RATE=${RATE:-2000}
DUR=${DUR:-10}
LOOPS=${LOOPS:-4}
PROG=${PROG:-true}
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

case "$PROG" in
true) PROGPATH=/bin/true ;;
quick)
	PROGPATH=/bin/quick
	[ "$(uname -m)" = x86_64 ] || die "PROG=quick is x86-64 machine code"
	python3 - "$WORK/quick" <<'PY'
import struct, sys
code = bytes([0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05])  # exit(0)
base, hdr = 0x400000, 64 + 56
eh = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9) + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, base + hdr, 64, 0, 0, 64, 56, 1, 0, 0, 0)
ph = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, hdr + len(code), hdr + len(code), 0x1000)
open(sys.argv[1], "wb").write(eh + ph + code)
PY
	chmod 755 "$WORK/quick"
	tmp=$(docker create "$IMAGE" true)
	docker cp "$WORK/quick" "$tmp:/bin/quick" >/dev/null
	docker commit "$tmp" vigil-bench/quick:latest >/dev/null
	docker rm -f "$tmp" >/dev/null
	IMAGE=vigil-bench/quick:latest
	;;
*) die "PROG: true or quick" ;;
esac
PROGNAME=${PROGPATH##*/}

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
      i=0; while [ \$i -lt $PER ]; do $PROGPATH; i=\$((i+1)); done
      n=\$((n+$PER)); b=\$((b+1)); usleep 100000
    done; echo \$n \$b ) &
done; wait" >"$WORK/made"
t1=$(date +%s.%N)
# Let the workers drain.
for _ in $(seq 50); do sleep 0.1; done
cpu1=$(cpu)
after=$(stats)

made=$(awk '{s+=$1} END {print s}' "$WORK/made")
# Every exec of the container: the trues, per batch one date and one usleep, per loop
# the date that ends it, and the sh, date and seq that start the whole.
made_all=$(awk -v loops="$LOOPS" '{s+=$1+2*$2} END {print s+loops+3}' "$WORK/made")
"${V[@]}" events --type process -o json >"$WORK/events.json"
read -r seen seen_exe seen_all < <(python3 -c "
import json
n=x=a=0
for e in json.load(open('$WORK/events.json')):
    d=e['detail']
    if d.get('workload')!='$NAME' or e['type']!='process': continue
    p=d.get('process',{}); c=int(d.get('count',0)); a+=c
    if p.get('comm')=='$PROGNAME': n+=c
    elif p.get('exe')=='/bin/busybox' and 'name' in (p.get('inferred') or []): x+=c
print(n, x, a)")
secs=$(python3 -c "print(round($t1-$t0,2))")
for k in execs lost dropped unread recovered; do
	eval "d_$k=$(( $(echo "$after" | field $k 2>/dev/null || echo 0) - $(echo "$before" | field $k 2>/dev/null || echo 0) ))"
done
xfield() { python3 -c "import json,sys; print(json.load(sys.stdin)['monitor'].get('exit_records',{}).get('$1',0))"; }
for k in records named waited timed_out rejected overruns full; do
	eval "x_$k=$(( $(echo "$after" | xfield $k 2>/dev/null || echo 0) - $(echo "$before" | xfield $k 2>/dev/null || echo 0) ))"
done
cpu_pct=$(python3 -c "print(round(100*($cpu1-$cpu0)/$TICKS/($t1-$t0),1))")
echo "process bench: $made execs of $PROGPATH made in ${secs}s ($(python3 -c "print(round($made/$secs))")/s) by $LOOPS loops, target $RATE/s"
echo "  seen and judged as $PROGNAME:   $seen ($(python3 -c "print(round(100*$seen/max($made,1),1))")%)"
echo "  by executable only:        $seen_exe (busybox, applet name unknown); true + these: $(python3 -c "print(round(100*($seen+$seen_exe)/max($made,1),1))")%"
echo "  all execs of the container: made $made_all (with the loops' date and usleep), violations seen $seen_all"
echo "  monitor during the run:    execs $d_execs (all of the host's), lost $d_lost, dropped $d_dropped, unread $d_unread, recovered $d_recovered"
echo "  judged from notifications: $d_recovered (gone before /proc was read; the name and user IDs then come from the exit record, else a busybox applet's name is unknown and it is judged by executable and user: allowed, as busybox's sleep is in the profile)"
echo "  taskstats exit records:    $x_records received, named $x_named execs (of them waited $x_waited), timed out $x_timed_out, rejected $x_rejected, overruns $x_overruns, full $x_full"
echo "  Vigil CPU over the run:    ${cpu_pct}% of one CPU"
echo "  host load average:         $(cut -d' ' -f1-3 /proc/loadavg)"
