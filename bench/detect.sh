#!/usr/bin/env bash
# bench/detect.sh [PRISTINE_SECONDS] [RUNS]: pristine versus infected.
# A busybox httpd container (--network none), a baseline learned over 20 s of
# wget requests (`vitro exec web wget ...` every 0.5 s), then `vitro detect`:
#  1. PRISTINE_SECONDS (default 180) of the same wget load: every alert is false;
#  2. RUNS (default 3) of each infection, in the same container:
#     miner        sh -c 'for i in 1 2 3; do while :; do :; done & done; while :; do :; done' stratum+tcp://...  (mining-command-line, cpu-above-envelope)
#     reverse      busybox nc 127.0.0.1 4444 -e /bin/sh to an nc -l in the container (reverse-shell)
#     dropped      cp /bin/busybox /tmp/xN, run as /tmp/dN/sleep -> /tmp/xN  (drop-and-execute)
# Time to detect = the alert record's time minus the time just before the
# `vitro exec` that starts the infection (so it includes exec's own start-up).
# In a private network namespace; every path in a temp dir. Root only.
set -uo pipefail
pristine=${1:-180}
runs=${2:-3}
cd "$(dirname "$0")/.."
V=$PWD/build/release/vitro
[ -x "$V" ] || { echo "build first: ninja -C build/release vitro" >&2; exit 1; }
if [ "${VITRO_BENCH_INNER:-}" != 1 ]; then
  export VITRO_BENCH_INNER=1
  exec 9</proc/self/ns/net   # the proc connector is only in the initial netns: learn/detect run there
  exec unshare --net -- bash "$0" "$@"
fi
ip link set lo up
T=$(mktemp -d /tmp/vitro-bench-det.XXXXXX)
dpid=
trap '[ -n "$dpid" ] && kill $dpid 2>/dev/null; "$V" rm -f $("$V" ps -aq) >/dev/null 2>&1 || true; umount -R "$T" 2>/dev/null || true; rm -rf "$T"' EXIT
export VITRO_ROOT=$T/root VITRO_RUNROOT=$T/run VITRO_NETWORK_CONFIG_DIR=$T/net
host() { nsenter --net=/proc/self/fd/9 "$@"; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2); else print "-"}'; }
load_for() { local end=$(( $(date +%s) + $1 )); while [ "$(date +%s)" -lt "$end" ]; do "$V" exec web wget -q -O /dev/null http://127.0.0.1/; sleep 0.5; done; }

bash scripts/make-image.sh "$T/bb.tar" >/dev/null
"$V" load -i "$T/bb.tar" >/dev/null
"$V" run -d --name web --network none localhost/busybox httpd -f -p 80 -h /var/www >/dev/null
for i in $(seq 50); do "$V" exec web wget -q -O /dev/null http://127.0.0.1/ && break; sleep 0.2; done

echo "## learn: 20 s under wget load"
host "$V" baseline learn web --for 20s --no-store &
lp=$!
sleep 1; load_for 18
wait $lp

nsenter --net=/proc/self/fd/9 "$V" detect web --format json >"$T/alerts" 2>"$T/detect.err" &
dpid=$!
sleep 2

echo "## pristine: $pristine s of the same load"
load_for "$pristine"
sleep 2
false_alerts=$(wc -l <"$T/alerts")
echo "false alerts: $false_alerts in $pristine s"
[ "$false_alerts" -gt 0 ] && sed 's/^/  /' "$T/alerts"

# first alert of RULE after T0 (ns): its time minus T0 in ms, or "" within 20 s
ttd() {
  local rule=$1 t0=$2 i v
  for i in $(seq 200); do
    v=$(jq -r --arg r "$rule" --argjson t0 "$t0" 'select(.rule==$r and .time_ns > $t0) | (.time_ns - $t0) / 1e6 | floor' "$T/alerts" | head -1)
    [ -n "$v" ] && { echo "$v"; return; }
    sleep 0.1
  done
}
: >"$T/res"
for r in $(seq "$runs"); do
  t0=$(date +%s%N)
  "$V" exec -d web sh -c 'for i in 1 2 3; do while :; do :; done & done; while :; do :; done' "stratum+tcp://pool.example.org:3333/run$r"
  echo "mining-command-line $(ttd mining-command-line $t0)" >>"$T/res"
  echo "cpu-above-envelope $(ttd cpu-above-envelope $t0)" >>"$T/res"
  "$V" exec web killall sh; sleep 3

  "$V" exec -d web sh -c 'sleep 30 | nc -l -p 4444'; sleep 1
  t0=$(date +%s%N)
  "$V" exec -d web nc 127.0.0.1 4444 -e /bin/sh
  echo "reverse-shell $(ttd reverse-shell $t0)" >>"$T/res"
  "$V" exec web killall nc sh sleep; sleep 1

  t0=$(date +%s%N)
  "$V" exec web sh -c "cp /bin/busybox /tmp/x$r && mkdir /tmp/d$r && ln -s /tmp/x$r /tmp/d$r/sleep && /tmp/d$r/sleep 2"
  echo "drop-and-execute $(ttd drop-and-execute $t0)" >>"$T/res"
done
kill -INT $dpid; wait $dpid; dpid=

echo "## detection ($runs runs each; time to detect in ms: alert record time - infection start)"
printf '%-22s %-9s %-8s %-8s\n' rule detected median max
for rule in mining-command-line cpu-above-envelope reverse-shell drop-and-execute; do
  got=$(awk -v r=$rule '$1==r && NF==2' "$T/res" | wc -l)
  med=$(awk -v r=$rule '$1==r && NF==2 {print $2}' "$T/res" | median)
  max=$(awk -v r=$rule '$1==r && NF==2 {print $2}' "$T/res" | sort -n | tail -1)
  printf '%-22s %-9s %-8s %-8s\n' $rule "$got/$runs" "$med" "${max:--}"
done
echo "all alerts by rule:"; jq -r .rule "$T/alerts" | sort | uniq -c
