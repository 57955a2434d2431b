#!/usr/bin/env bash
# The main job on embedded defaults: install, build, load the bundled busybox
# image (built locally from Debian's busybox-static: no registry needed), and
# run a container with vitro (state under /var/lib/vitro, SQLite), showing that
# it is isolated; then the same through vitro-runtime alone.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root" >&2; exit 1; }
scripts/setup.sh build
apt-get install -y -qq containernetworking-plugins iptables >/dev/null
scripts/build.sh release >/dev/null
V=$PWD/build/release/vitro
work=$(mktemp -d /tmp/vitro-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
scripts/make-image.sh "$work/busybox.tar"
"$V" load -i "$work/busybox.tar"
echo "== host: $(hostname), $(ls /proc | grep -c '^[0-9]') processes =="
"$V" run --rm --memory 64m localhost/busybox sh -c '
echo "== inside the container =="
echo "hostname:   $(hostname)"
echo "pid 1 is:   $(cat /proc/1/comm) (own pid namespace; $(ls /proc | grep -c "^[0-9]") processes visible)"
echo "network:    $(ip -o -4 addr show eth0 | awk "{print \$4}") on the vitro0 bridge (own network namespace)"
echo "memory max: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
echo "seccomp:    $(unshare -n true 2>&1 | sed "s/.*: //") for unshare (default profile)"
echo "caps:       $(grep CapEff /proc/self/status)"'
