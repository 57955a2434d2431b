#!/usr/bin/env bash
# bench/evidence.sh [SECONDS]: the cost of evidence.
#  1. appends to the hash-chained SQLite store (records/s, median of 3 runs of
#     5000), and a full verify (records/s);
#  2. `vitro evidence watch` under a fork-heavy load: a container running
#     `while :; do /bin/true; done` (fork + exec + exit as fast as it can) for
#     SECONDS (default 10): the watcher's CPU (% of one core, from
#     /proc/PID/stat utime+stime), the events it recorded per second, and the
#     loop's iterations per second with and without the watcher (A B A B).
# In a private network namespace; every path in a temp dir. Root only.
set -euo pipefail
secs=${1:-10}
cd "$(dirname "$0")/.."
V=$PWD/build/release/vitro
[ -x "$V" ] || { echo "build first: ninja -C build/release vitro" >&2; exit 1; }
if [ "${VITRO_BENCH_INNER:-}" != 1 ]; then
  export VITRO_BENCH_INNER=1
  exec 9</proc/self/ns/net   # the proc connector is only in the initial netns: watch runs there
  exec unshare --net -- bash "$0" "$@"
fi
ip link set lo up
T=$(mktemp -d /tmp/vitro-bench-ev.XXXXXX)
wpid=
trap '[ -n "$wpid" ] && kill $wpid 2>/dev/null; "$V" rm -f $("$V" ps -aq) >/dev/null 2>&1 || true; umount -R "$T" 2>/dev/null || true; rm -rf "$T"' EXIT
export VITRO_ROOT=$T/root VITRO_RUNROOT=$T/run VITRO_NETWORK_CONFIG_DIR=$T/net
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }

echo "## append (one transaction per record, then per 100 records)"
for batch in 1 100; do
  for i in 1 2 3; do "$V" evidence bench-append --count 3000 --batch $batch --store "$T/b$batch-$i.db"; done | tee "$T/append"
  echo "batch $batch: median appends/s: $(awk '{print $8}' "$T/append" | median), verify records/s: $(awk '{print $11}' "$T/append" | median)"
done

scripts/make-image.sh "$T/bb.tar" >/dev/null
"$V" load -q -i "$T/bb.tar"
"$V" run -d --name load --network none localhost/busybox sh -c 'while :; do /bin/true; done' >/dev/null
init=$("$V" inspect -f '{{.State.Pid}}' load)
ticks() { awk '{print $14 + $15}' /proc/$1/stat; }
hz=$(getconf CLK_TCK)
# The load's rate: pids the host allocated in $1 s (the last field of
# /proc/loadavg is the last pid handed out; the loop's forks dominate).
count_forks() {
  local a b; a=$(awk '{print $NF}' /proc/loadavg); sleep "$1"; b=$(awk '{print $NF}' /proc/loadavg); echo $((b - a)); }
echo "## watch under fork load ($secs s per run)"
echo "| run | watcher CPU % | events/s recorded | host pids allocated/s |"
echo "|---|---|---|---|"
for r in 1 2 3; do
  f=$(count_forks "$secs")
  echo "| without watcher | - | - | $((f / secs)) |"
  nsenter --net=/proc/self/fd/9 "$V" evidence watch --sample-interval 0 load > "$T/w.out" 2>"$T/w.err" &
  wpid=$!
  for _ in $(seq 100); do grep -q capture.start "$T/w.out" 2>/dev/null && break; sleep 0.1; done
  n0=$(wc -l < "$T/w.out"); t0=$(ticks $wpid)
  f=$(count_forks "$secs")
  t1=$(ticks $wpid); n1=$(wc -l < "$T/w.out")
  kill -INT $wpid; wait $wpid || true; wpid=
  sed 's/^/<!-- /; s/$/ -->/' "$T/w.err" >&2
  echo "| with watcher | $(awk -v a=$t0 -v b=$t1 -v hz=$hz -v s=$secs 'BEGIN {printf "%.1f", 100 * (b - a) / hz / s}') | $(((n1 - n0) / secs)) | $((f / secs)) |"
done
