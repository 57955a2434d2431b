#!/usr/bin/env bash
# bench/monitor.sh [CONTAINERS]: the cost of `vitro monitor` with CONTAINERS
# (default 100) running containers of the bundled busybox image on the bridge
# network: scrape latency (median, p99) as Prometheus sees it, scraping every
# second for two minutes (gzip asked for), the exporter's CPU at that 1 s and
# at a 15 s scrape interval (share of one core, from its own utime+stime), and
# its RSS. Back-to-back scrapes (no interval) are timed too, for the cost of a
# collection made in the request. cAdvisor, the peer the goals
# are set against, is not packaged in Debian: its figures are the ones its
# users report (see docs/benchmarks.md). In a private network namespace.
set -euo pipefail
count=${1:-100}
. "$(dirname "$0")/lib.sh"
bench_in_netns "$@"
T=$(mktemp -d /tmp/vitro-bench-monitor.XXXXXX)
export VITRO_ROOT=$T/root VITRO_RUNROOT=$T/run VITRO_NETWORK_CONFIG_DIR=$T/net.d
mon=""
trap '[ -n "$mon" ] && kill $mon 2>/dev/null; "$V" rm -f $("$V" ps -aq) >/dev/null 2>&1 || true; umount -R "$T" 2>/dev/null || true; rm -rf "$T"' EXIT
scripts/make-image.sh "$T/bb.tar" >/dev/null
"$V" load -q -i "$T/bb.tar"
echo "starting $count containers..." >&2
for i in $(seq "$count"); do
  "$V" run -d --name "c$i" localhost/busybox sh -c 'while :; do sleep 5; done' >/dev/null
done

start_monitor() {
  "$V" monitor --listen 127.0.0.1:0 >"$T/mon.out" 2>&1 &
  mon=$!
  for _ in $(seq 100); do grep -q serving "$T/mon.out" && break; sleep 0.1; done
  URL=$(sed -n 's/.*serving \(http[^ ]*\).*/\1/p' "$T/mon.out")
}
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
scrape() { curl -sf -H 'Accept-Encoding: gzip' -o /dev/null -w '%{time_total}\n' "$URL"; }

start_monitor
scrape >/dev/null  # the first scrape opens every container's stat files
series=$(curl -sf "$URL" | grep -vc '^#')
for _ in $(seq 50); do scrape; done >"$T/b2b"
pct() { sort -n "$1" | awk -v p="$2" '{a[NR]=$1} END {i = int(NR * p); if (i < 1) i = 1; printf "%.2f", a[i] * 1000}'; }

# Scrapes on an interval's ticks for DURATION seconds (their latencies in
# $T/lat.INTERVAL); prints the CPU the exporter used meanwhile.
cpu_at() {
  local interval=$1 duration=$2 c0 c1 t0 t1
  c0=$(cpu_s "$mon"); t0=$(date +%s.%N)
  local end=$((SECONDS + duration))
  while [ $SECONDS -lt $end ]; do scrape >>"$T/lat.$interval"; sleep "$interval"; done
  c1=$(cpu_s "$mon"); t1=$(date +%s.%N)
  awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.3f", (b - a) / (t1 - t0) * 100 }'
}
cpu1=$(cpu_at 1 120)
cpu15=$(cpu_at 15 150)
rss=$(awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$mon/status")
hwm=$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$mon/status")
ahead=$(curl -sf "$URL" | awk '/^vitro_exporter_scrapes_served_total\{collected="ahead"\}/ {a=$2} /^vitro_exporter_scrapes_served_total\{collected="in_request"\}/ {r=$2} END {printf "%d of %d", a, a + r}')

echo "| $count containers, $series series | vitro monitor | goal |"
echo "|---|---|---|"
echo "| scrape latency at a 1 s interval, median (ms) | $(pct "$T/lat.1" 0.5) | |"
echo "| scrape latency at a 1 s interval, p99 (ms) | $(pct "$T/lat.1" 0.99) | ≤ 10 |"
echo "| scrapes served from a collection made ahead | $ahead | |"
echo "| back-to-back scrapes (collected in the request), median / p99 (ms) | $(pct "$T/b2b" 0.5) / $(pct "$T/b2b" 0.99) | |"
echo "| CPU at a 1 s scrape interval (% of one core) | $cpu1 | ≤ 0.5 |"
echo "| CPU at a 15 s scrape interval (% of one core) | $cpu15 | |"
echo "| RSS (MiB), peak | $rss, $hwm | ≤ 16 |"
