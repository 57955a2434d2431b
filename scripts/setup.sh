#!/usr/bin/env bash
# Installs everything vitro builds, tests and benchmarks with, from Debian's archive.
# Idempotent: only missing packages are installed. Usage: scripts/setup.sh [build|test|all]
set -euo pipefail
what=${1:-all}

BUILD_PKGS="build-essential cmake ninja-build pkg-config git
  libseccomp-dev libcap-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev busybox-static libarchive-dev libssl-dev libsqlite3-dev libcurl4-openssl-dev
  zlib1g-dev libbpf-dev bpftool clang libyaml-cpp-dev"
TEST_PKGS="libclang-rt-14-dev prometheus iperf3 fio iputils-ping crun runc podman containerd umoci skopeo
  jq util-linux iproute2 containernetworking-plugins iptables procps psmisc uidmap golang-go perl curl xz-utils
  docker-registry apache2-utils openssl python3 python3-jwt python3-cryptography sqlite3
  qemu-system-x86 lz4"

pkgs=$BUILD_PKGS
[ "$what" = build ] || pkgs="$pkgs $TEST_PKGS"

missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt="apt-get -o DPkg::Lock::Timeout=900 -q"
  $apt install -y --no-install-recommends $missing >&2 ||
    { $apt update >&2 && $apt install -y --no-install-recommends $missing >&2; }
fi
# The microVM guest kernel (--isolation vm), from the same archive.
[ "$what" = build ] || bash "$(dirname "$0")/vm-kernel.sh"
