#!/usr/bin/env bash
# The main job on embedded defaults: install, build, make the bundled busybox
# bundle and run a container with vitro-runtime, showing that it is isolated.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root" >&2; exit 1; }
scripts/setup.sh build
scripts/build.sh release >/dev/null
rt=$PWD/build/release/vitro-runtime
work=$(mktemp -d /tmp/vitro-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
scripts/make-bundle.sh "$work/bundle" sh -c '
echo "== inside the container =="
echo "hostname:   $(hostname)"
echo "pid 1 is:   $(cat /proc/1/comm) (own pid namespace; $(ls /proc | grep -c "^[0-9]") processes visible)"
echo "network:    $(ls /sys/class/net | tr "\n" " ")(own network namespace)"
echo "root fs:    $(touch /x 2>&1 | sed "s/.*: //")"
echo "memory max: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
echo "caps:       $(grep CapEff /proc/self/status)"
echo "user:       $(id)"'
echo "== host: $(hostname), $(ls /proc | grep -c '^[0-9]') processes =="
"$rt" --root "$work/state" run --bundle "$work/bundle" "vitro-demo-$$"
