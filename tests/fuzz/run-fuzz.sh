#!/usr/bin/env bash
# run-fuzz.sh SRC_DIR BUILD_DIR TARGET RUNS [SECONDS]: builds one fuzz target
# with clang (libFuzzer + ASan + UBSan) and runs it for RUNS inputs, at most
# SECONDS (default 45), from its seed corpus tests/fuzz/corpus/TARGET.
# Targets: config (OCI config.json), unpack (image layer tars), manifest
# (index/manifest/config JSON), evidence (evidence bundles to verify), http
# (the exporter's HTTP request parser).
set -euo pipefail
src=$1 out=$2/fuzz target=$3 runs=${4:-20000} secs=${5:-45}
corpus=$out/corpus-$target
mkdir -p "$out" "$corpus"
cp -n "$src/tests/fuzz/corpus/$target"/* "$corpus/" 2>/dev/null || true  # evidence: seeded by the target itself, plus regressions
case $target in
  config)
    srcs=("$src"/src/oci/{spec,sysctl}.cpp "$src"/src/linux/{capabilities,rlimits}.cpp "$src"/src/util/{error,file}.cpp)
    libs=() max_len=8192 ;;
  unpack)
    srcs=("$src"/src/image/{unpack,fsutil,digest,store,manifest,reference}.cpp "$src"/src/linux/mounts.cpp
          "$src"/src/util/{error,file,strings,log,time,sha256}.cpp)
    libs=(-larchive -lcrypto) max_len=65536 ;;
  manifest)
    srcs=("$src"/src/image/{manifest,digest}.cpp "$src"/src/util/{error,sha256}.cpp)
    libs=(-lcrypto) max_len=16384 ;;
  evidence)
    srcs=("$src"/src/introspect/evidence/{evidence_archive,hash_chain}.cpp "$src"/src/util/{error,file,time,sha256}.cpp)
    libs=(-larchive -lcrypto) max_len=65536 ;;
  http)
    srcs=("$src"/src/introspect/metrics/http_server.cpp "$src"/src/util/error.cpp)
    libs=() max_len=4096 ;;
  agent)
    srcs=("$src"/src/vm/protocol.cpp "$src"/src/util/error.cpp)
    libs=() max_len=4096 ;;
  *) echo "run-fuzz.sh: unknown target '$target' (config, unpack, manifest, evidence, http or agent)" >&2; exit 2 ;;
esac
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I"$src/src" \
  "$src/tests/fuzz/fuzz_$target.cpp" "${srcs[@]}" "${libs[@]}" -o "$out/fuzz_$target"
VITRO_FUZZ_SEED_DIR=$corpus "$out/fuzz_$target" -runs="$runs" -max_total_time="$secs" -max_len="$max_len" \
  -timeout=10 -rss_limit_mb=2048 "$corpus" 2>&1 | tail -5
