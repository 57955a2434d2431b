#!/usr/bin/env bash
# The whole test suite: install, build (release and ASan+UBSan), then every
# CTest test (unit, integration, peers) in both builds.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test: run as root (tests create namespaces, cgroups and mounts)" >&2; exit 1; }
# Each phase says how long it took: CI has a time budget to keep.
phase_start=$SECONDS
phase() { echo "== $1 (previous phase: $((SECONDS - phase_start)) s) ==" >&2; phase_start=$SECONDS; }
phase setup
scripts/setup.sh all
rc=0
for kind in release asan; do
  phase "build: $kind"
  scripts/build.sh "$kind" >&2
  phase "tests: $kind"
  # Peer tests (podman/containerd) and fuzzers (already ASan-built) run once, in release.
  exclude=""; [ "$kind" = asan ] && exclude="-LE peers|fuzz"
  ctest --test-dir "build/$kind" --output-on-failure --timeout 600 $exclude || rc=1
done
phase done
exit $rc
