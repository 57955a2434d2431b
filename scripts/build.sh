#!/usr/bin/env bash
# build.sh [release|asan]: configure and build into build/<kind>.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
case "$kind" in
  release) flags="-DCMAKE_BUILD_TYPE=Release" ;;
  asan) flags="-DCMAKE_BUILD_TYPE=Debug -DVITRO_SANITIZE=ON" ;;
  *) echo "build.sh: unknown build kind '$kind' (release or asan)" >&2; exit 2 ;;
esac
cmake -S . -B "build/$kind" -G Ninja $flags >/dev/null
ninja -C "build/$kind"
