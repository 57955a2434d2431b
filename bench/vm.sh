#!/usr/bin/env bash
# bench/vm.sh [RUNS]: the cost of --isolation vm against namespace isolation,
# side by side in one run on the bundled busybox image: `vitro run --rm
# --network none IMAGE true` alternated between the modes (median and p90,
# ms), and the host memory of an idle detached container (VM: the shim, QEMU
# and virtiofsd, PSS so that shared pages count once; namespaces: the
# monitor and the container's processes). Prints markdown tables naming the
# accelerator. In a private network namespace; every path in a temp dir.
set -euo pipefail
runs=${1:-10}
. "$(dirname "$0")/lib.sh"
bench_in_netns "$@"
T=$(mktemp -d /tmp/vitro-bench-vm.XXXXXX)
trap '"$V" rm -f $("$V" ps -aq) >/dev/null 2>&1 || true; umount -R "$T" 2>/dev/null || true; rm -rf "$T"' EXIT
export VITRO_ROOT=$T/vitro VITRO_RUNROOT=$T/run VITRO_NETWORK_CONFIG_DIR=$T/net
scripts/make-image.sh "$T/bb.tar" >/dev/null
"$V" load -q -i "$T/bb.tar"
img=localhost/busybox:latest
p90() { sort -n | awk '{a[NR]=$1} END {i = int(NR * 0.9 + 0.999); if (i < 1) i = 1; printf "%.1f", a[i] / 1000}'; }
echo "accelerator: ${VITRO_VM_ACCEL:-tcg}, guest kernel $(cat "${VITRO_VM_DIR:-/usr/lib/vitro/vm}/release"), $(nproc) CPUs, $(qemu-system-x86_64 --version | head -1)"
echo
# warm-up: layer unpack, the initramfs cache, page cache
ms "$V" run --rm --network none $img true >/dev/null; ms "$V" run --rm --isolation vm $img true >/dev/null
: > "$T/ns"; : > "$T/vm"
for _ in $(seq "$runs"); do
  ms "$V" run --rm --network none $img true >> "$T/ns"
  ms "$V" run --rm --isolation vm $img true >> "$T/vm"
done
ns=$(median < "$T/ns"); vm=$(median < "$T/vm")
echo "| run --rm true ($runs each, alternated) | median (ms) | p90 (ms) |"
echo "|---|---|---|"
echo "| namespaces | $ns | $(p90 < "$T/ns") |"
echo "| vm (cold boot) | $vm | $(p90 < "$T/vm") |"
echo "| ratio vm / namespaces | $(awk -v a="$vm" -v b="$ns" 'BEGIN {printf "%.1f", a / b}') | |"

# Idle memory: three detached sleeping containers per mode, after their start.
pss_tree() {  # PSS (KiB) of the processes listed on stdin
  local sum=0 p k
  while read -r p; do k=$(awk '$1 == "Pss:" {print $2}' /proc/$p/smaps_rollup 2>/dev/null || echo 0); sum=$((sum + ${k:-0})); done
  echo $sum
}
for i in 1 2 3; do
  "$V" run -d --network none --name ns$i $img sleep 600 >/dev/null
  "$V" run -d --isolation vm --name vm$i $img sleep 600 >/dev/null
done
for i in 1 2 3; do
  for _ in $(seq 100); do "$V" logs vm$i >/dev/null 2>&1 && "$V" top vm$i >/dev/null 2>&1 && break; sleep 0.1; done
done
sleep 3  # the guests settle (boot done, agent waiting)
: > "$T/nsm"; : > "$T/vmm"
for i in 1 2 3; do
  "$V" top ns$i pid 2>/dev/null | tail -n +2 | { cat; "$V" inspect -f '{{.State.MonitorPid}}' ns$i; } | pss_tree >> "$T/nsm"
  "$V" top vm$i pid 2>/dev/null | tail -n +2 | pss_tree >> "$T/vmm"
done
med() { sort -n "$1" | sed -n 2p; }
echo
echo "| idle detached container (median of 3) | host PSS (MiB) |"
echo "|---|---|"
echo "| namespaces (monitor + container processes) | $(awk -v k="$(med "$T/nsm")" 'BEGIN {printf "%.1f", k / 1024}') |"
echo "| vm (shim + QEMU + virtiofsd) | $(awk -v k="$(med "$T/vmm")" 'BEGIN {printf "%.1f", k / 1024}') |"
