#!/usr/bin/env bash
# bench/runtime.sh [RUNS] [SEQ]: vitro-runtime vs crun vs runc, alternated in
# one run: `run` (create+start+wait+delete) of /bin/true from one bundle,
# RUNS times each; then SEQ containers in sequence per runtime for total CPU.
# crun 1.8 refuses hybrid cgroups, so the whole comparison runs in a private
# mount namespace with the cgroup2 'unified' mount hidden: every runtime sees
# the same pure-v1 host. Prints markdown tables for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-100} seq=${2:-1000}
[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
scripts/setup.sh all >/dev/null
scripts/build.sh release >/dev/null
c++ -O2 -std=c++20 -o build/release/runbench bench/runbench.cpp
rt=$PWD/build/release/vitro-runtime rb=$PWD/build/release/runbench
work=$(mktemp -d /tmp/vitro-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
scripts/make-bundle.sh "$work/bundle" /bin/true
cd "$work/bundle"
export rt rb runs seq
unshare -m --propagation private bash -c '
  umount -l /sys/fs/cgroup/unified 2>/dev/null || true
  echo "### create+start+wait+delete of /bin/true ($runs runs each, alternated)"
  echo
  "$rb" -n "$runs" -- \
    "vitro-runtime=$rt --root /run/vb-v run b-v-{i}" \
    "vitro-runtime (no sealed exe)=VITRO_NO_SEALED_EXE=1 $rt --root /run/vb-n run b-n-{i}" \
    "crun=crun --root /run/vb-c run b-c-{i}" \
    "runc=runc --root /run/vb-r run b-r-{i}"
  echo
  echo "### $seq containers in sequence (total CPU per runtime)"
  echo
  "$rb" -n "$seq" -- \
    "vitro-runtime=$rt --root /run/vb-v run s-v-{i}" \
    "crun=crun --root /run/vb-c run s-c-{i}"
'
