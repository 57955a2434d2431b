#!/usr/bin/env bash
# bench/cni-builtin.sh [RUNS]: `vitro run --rm IMAGE true` on the default
# bridge network with bridge + host-local built in (the default) and with the
# plugin binaries (VITRO_CNI_BUILTIN=0), and with --network none for the
# network's own cost, alternated in one run (A B C A B C ...). Prints medians
# as a markdown table. In a private network namespace; every vitro path in a
# temp dir (host-local's files, as bench/engine.sh's, in /var/lib/cni/networks/vitro).
set -euo pipefail
runs=${1:-20}
. "$(dirname "$0")/lib.sh"
bench_in_netns "$@"
T=$(mktemp -d /tmp/vitro-bench-cni.XXXXXX)
trap '"$V" rm -f $("$V" ps -aq) >/dev/null 2>&1 || true; umount -R "$T" 2>/dev/null || true; rm -rf "$T"' EXIT
export VITRO_ROOT=$T/vitro VITRO_RUNROOT=$T/vitro-run VITRO_NETWORK_CONFIG_DIR=$T/vitro-net
scripts/make-image.sh "$T/bb.tar" >/dev/null
"$V" load -q -i "$T/bb.tar"
img=localhost/busybox:latest
# warm-up: the bridge, the host rules, the first layer unpack, the page cache
ms "$V" run --rm --network bridge $img true >/dev/null
VITRO_CNI_BUILTIN=0 ms "$V" run --rm --network bridge $img true >/dev/null
ms "$V" run --rm --network none $img true >/dev/null
: > "$T/a"; : > "$T/b"; : > "$T/n"
for _ in $(seq "$runs"); do
  ms "$V" run --rm --network bridge $img true >> "$T/a"
  VITRO_CNI_BUILTIN=0 ms "$V" run --rm --network bridge $img true >> "$T/b"
  ms "$V" run --rm --network none $img true >> "$T/n"
done
a=$(median < "$T/a"); b=$(median < "$T/b"); n=$(median < "$T/n")
echo "| \`vitro run --rm true\` | median (ms) | network's own (ms) |"
echo "|---|---|---|"
echo "| bridge network, built in (default) | $a | $(awk -v x="$a" -v y="$n" 'BEGIN {printf "%.1f", x - y}') |"
echo "| bridge network, binaries (VITRO_CNI_BUILTIN=0) | $b | $(awk -v x="$b" -v y="$n" 'BEGIN {printf "%.1f", x - y}') |"
echo "| --network none | $n | 0 |"
