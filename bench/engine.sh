#!/usr/bin/env bash
# bench/engine.sh [RUNS]: `vitro run --rm IMAGE true` vs podman on the same
# bundled busybox image, alternated in one run (A B A B ...), with --network
# none and with each engine's default bridge network (CNI). Prints medians and
# the ratio as a markdown table. In a private network namespace; every path
# in a temp dir. podman: vfs storage, cgroupfs, runc (crun refuses this hybrid
# cgroup host). Then the memory of the process that watches a detached
# container: vitro's monitor vs podman's conmon (RSS and PSS, median of 3).
set -euo pipefail
runs=${1:-20}
. "$(dirname "$0")/lib.sh"
bench_in_netns "$@"
T=$(mktemp -d /tmp/vitro-bench.XXXXXX)
trap 'rm -f "$T"/*.tar; "$V" rm -f $("$V" ps -aq) >/dev/null 2>&1 || true; podman "${P[@]}" rm -af >/dev/null 2>&1 || true; umount -R "$T" 2>/dev/null || true; rm -rf "$T"' EXIT
export VITRO_ROOT=$T/vitro VITRO_RUNROOT=$T/vitro-run VITRO_NETWORK_CONFIG_DIR=$T/vitro-net
P=(--root "$T/p/root" --runroot "$T/p/run" --tmpdir "$T/p/tmp" --storage-driver vfs --cgroup-manager cgroupfs
   --events-backend file --runtime /usr/sbin/runc --network-config-dir "$T/p/net")
scripts/make-image.sh "$T/bb.tar" >/dev/null
"$V" load -q -i "$T/bb.tar"
podman "${P[@]}" load -q -i "$T/bb.tar" >/dev/null
img=localhost/busybox:latest
# The ulimits this host allows (podman's defaults exceed them here).
U=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
echo "| workload | vitro median (ms) | podman median (ms) | ratio |"
echo "|---|---|---|---|"
for net in none bridge; do
  # warm-up: network creation, first layer unpack, page cache
  ms "$V" run --rm --network "$net" $img true >/dev/null; ms podman "${P[@]}" run --rm "${U[@]}" --network "$net" $img true >/dev/null
  : > "$T/v"; : > "$T/p.t"
  for _ in $(seq "$runs"); do
    ms "$V" run --rm --network "$net" $img true >> "$T/v"
    ms podman "${P[@]}" run --rm "${U[@]}" --network "$net" $img true >> "$T/p.t"
  done
  v=$(median < "$T/v"); p=$(median < "$T/p.t")
  echo "| run --rm true, --network $net | $v | $p | $(awk -v a="$v" -v b="$p" 'BEGIN {printf "%.2f", a / b}') |"
done

# Monitor memory: three detached `sleep` containers per engine.
kib() { awk -v k="$2" '$1 == k":" {print $2}' "$1"; }
: > "$T/vm"; : > "$T/pm"
for i in 1 2 3; do
  "$V" run -d --network none --name "mem$i" $img sleep 600 >/dev/null
  podman "${P[@]}" run -d "${U[@]}" --network none --name "mem$i" $img sleep 600 >/dev/null
done
sleep 1
for i in 1 2 3; do
  m=$("$V" inspect -f '{{.State.MonitorPid}}' "mem$i")
  echo "$(kib /proc/$m/status VmRSS) $(kib /proc/$m/smaps_rollup Pss)" >> "$T/vm"
  c=$(podman "${P[@]}" inspect -f '{{.State.ConmonPid}}' "mem$i")
  echo "$(kib /proc/$c/status VmRSS) $(kib /proc/$c/smaps_rollup Pss)" >> "$T/pm"
done
med() { cut -d' ' -f"$2" "$1" | sort -n | sed -n 2p; }
echo
echo "| monitor of a detached container | RSS (KiB) | PSS (KiB) |"
echo "|---|---|---|"
echo "| vitro (vitro-monitor) | $(med "$T/vm" 1) | $(med "$T/vm" 2) |"
echo "| podman (conmon) | $(med "$T/pm" 1) | $(med "$T/pm" 2) |"
"$V" rm -f mem1 mem2 mem3 >/dev/null
podman "${P[@]}" rm -f -t 0 mem1 mem2 mem3 >/dev/null 2>&1 || true
