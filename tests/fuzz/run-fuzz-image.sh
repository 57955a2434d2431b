#!/usr/bin/env bash
# run-fuzz-image.sh SRC_DIR BUILD_DIR TARGET RUNS [SECONDS]: builds one image/ fuzz
# target (TARGET: unpack = tar layers, manifest = index/manifest/config JSON) with
# clang (libFuzzer + ASan + UBSan) and runs it for RUNS inputs, at most SECONDS
# (default 45), from its seed corpus tests/fuzz/corpus/TARGET.
set -euo pipefail
src=$1 out=$2/fuzz target=$3 runs=${4:-20000} secs=${5:-45}
mkdir -p "$out" "$out/corpus-$target"
cp -n "$src/tests/fuzz/corpus/$target"/* "$out/corpus-$target/" 2>/dev/null || true
case $target in
  unpack)
    srcs=("$src"/src/image/{unpack,fsutil,digest,store,manifest,reference}.cpp "$src"/src/linux/mounts.cpp
          "$src"/src/util/{error,file,strings}.cpp)
    libs=(-larchive -lcrypto) max_len=65536 ;;
  manifest)
    srcs=("$src"/src/image/{manifest,digest}.cpp "$src"/src/util/error.cpp)
    libs=(-lcrypto) max_len=16384 ;;
  *) echo "run-fuzz-image.sh: unknown target $target" >&2; exit 2 ;;
esac
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I"$src/src" \
  "$src/tests/fuzz/fuzz_$target.cpp" "${srcs[@]}" "${libs[@]}" -o "$out/fuzz_$target"
"$out/fuzz_$target" -runs="$runs" -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
  "$out/corpus-$target" 2>&1 | tail -5
