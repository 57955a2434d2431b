#!/usr/bin/env bash
# bench/pull.sh [RUNS]: `vitro pull` vs `skopeo copy docker://… oci:DIR` of the
# same ~200 MiB image (4 layers of random content, gzip) from a local
# docker-registry on 127.0.0.1 (plain HTTP), alternated in one run (A B A B …),
# each pull into an empty store / directory. Prints medians and the ratio as a
# markdown table. vitro also unpacks the layers (what `vitro run` needs);
# skopeo only downloads and verifies. Every path in a temp dir.
# Env: VITRO (default build/release/vitro), SIZE_MB (200), LAYERS (4).
set -euo pipefail
runs=${1:-5}
cd "$(dirname "$0")/.."
V=${VITRO:-$PWD/build/release/vitro}
[ -x "$V" ] || scripts/build.sh release >/dev/null
size_mb=${SIZE_MB:-200}
layers=${LAYERS:-4}
T=$(mktemp -d /tmp/vitro-bench-pull.XXXXXX)
reg_pid=
trap '[ -z "$reg_pid" ] || kill "$reg_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$T/config.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $T/registry
http:
  addr: 127.0.0.1:$port
YML
env -u REGISTRY_AUTH_FILE docker-registry serve "$T/config.yml" > "$T/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

# The image: one umoci layer per random file.
umoci init --layout "$T/img" && umoci new --image "$T/img:t"
for i in $(seq "$layers"); do
  umoci unpack --rootless --image "$T/img:t" "$T/b$i" >/dev/null
  head -c $((size_mb / layers))M /dev/urandom > "$T/b$i/rootfs/data$i"
  umoci repack --image "$T/img:t" "$T/b$i"
  rm -rf "$T/b$i"
done
ref=127.0.0.1:$port/bench/random:t
skopeo copy -q --dest-tls-verify=false "oci:$T/img:t" "docker://$ref"
rm -rf "$T/img"

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
median() { sort -n | awk '{a[NR]=$1} END {m = NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.2f", m / 1000000}'; }
: > "$T/vitro.txt"; : > "$T/skopeo.txt"
for _ in $(seq "$runs"); do
  rm -rf "$T/store"
  ms "$V" --root "$T/store" pull -q --tls-verify=false "$ref" >> "$T/vitro.txt"
  rm -rf "$T/oci"
  ms skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$T/oci:t" >> "$T/skopeo.txt"
done
v=$(median < "$T/vitro.txt"); s=$(median < "$T/skopeo.txt")
echo "| what ($size_mb MiB, $layers layers, $runs runs each) | median (s) |"
echo "|---|---|"
echo "| vitro pull (download, verify, unpack) | $v |"
echo "| skopeo copy docker:// oci: (download, verify) | $s |"
echo "| ratio vitro / skopeo | $(awk -v a="$v" -v b="$s" 'BEGIN {printf "%.2f", a / b}') |"
