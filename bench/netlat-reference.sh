#!/usr/bin/env bash
# bench/netlat-reference.sh [BLOCKS] [COUNT] [INTERVAL_S]: netlat against an
# independent reference, on a topology built by hand: a remote namespace
# answering with the kernel's own ICMP echo, a router namespace with a bridge
# and IP forwarding, a container namespace behind the bridge. Alternating
# blocks of COUNT echoes (default 8 x 100, 0.01 s apart): iputils `ping` from
# the router namespace, `vitro netlat ping --netns C --host-netns ROUTER`
# (raw, overhead, backlog wait left in, corrected), and vitro's prober from
# the router (`--tracer none`). Prints each block's medians (µs) and
# corrected - ping. Addresses 10.79.0.0/24 and 10.79.1.0/24, inside those
# namespaces only.
set -euo pipefail
blocks=${1:-8} count=${2:-100} interval=${3:-0.01}
. "$(dirname "$0")/lib.sh"
bench_in_netns "$@"
command -v ping >/dev/null || { echo "needs iputils-ping (scripts/setup.sh)" >&2; exit 1; }
P=vnlref$$
T=$(mktemp -d /tmp/vitro-bench-netlat.XXXXXX)
trap 'for n in remote router ctr; do ip netns del $P-$n 2>/dev/null || true; done; rm -rf "$T"' EXIT
. "$(dirname "$0")/../tests/lib/netlat_topology.sh"
netlat_topology $P router 10.79

med() { median_by 1; }
iputils() { ip netns exec $P-router ping -n -c "$1" -i "$interval" 10.79.0.2 | sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' | awk '{print $1 * 1000}'; }
netlat() { "$V" netlat ping --netns /run/netns/$P-ctr --host-netns /run/netns/$P-router -c "$1" -i "$interval" --format json 10.79.0.2; }
bare() { "$V" netlat ping --netns /run/netns/$P-router --tracer none -c "$1" -i "$interval" --format json 10.79.0.2; }
iputils 5 >/dev/null; netlat 5 >/dev/null; bare 5 >/dev/null   # warm-up: neighbours, caches
echo "| block | iputils ping (router) | vitro bare (router) | container raw | overhead | backlog wait | corrected | corrected - ping | matched |"
echo "|---|---|---|---|---|---|---|---|---|"
for b in $(seq "$blocks"); do
  # Rotate which kind goes first.
  for k in $(seq 0 2); do
    case $(( (b + k) % 3 )) in
      0) iputils "$count" > $T/ping ;;
      1) netlat "$count" > $T/ctr.json ;;
      2) bare "$count" > $T/bare.json ;;
    esac
  done
  p=$(med < $T/ping)
  m() { jq -r ".packets[] | select(.matched) | .$1 // empty" $T/ctr.json | med; }
  c=$(m corrected_us)
  echo "| $b | $p | $(jq '.packets[] | select(.replied) | .raw_us' $T/bare.json | med) | $(m raw_us) | $(m overhead_us) | $(m backlog_us) | $c | $(awk -v c="$c" -v p="$p" 'BEGIN {printf "%+.1f", c - p}') | $(jq .matched $T/ctr.json)/$count |"
done
