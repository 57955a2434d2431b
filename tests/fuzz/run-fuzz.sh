#!/usr/bin/env bash
# run-fuzz.sh SRC_DIR BUILD_DIR RUNS: builds the config.json fuzz target with
# clang (libFuzzer + ASan + UBSan) and runs it for RUNS inputs from the seed corpus.
set -euo pipefail
src=$1 out=$2/fuzz runs=${3:-20000}
mkdir -p "$out" "$out/corpus"
cp -n "$src"/tests/fuzz/corpus/config/* "$out/corpus/" 2>/dev/null || true
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I"$src/src" \
  "$src/tests/fuzz/fuzz_config.cpp" "$src/src/oci/spec.cpp" "$src/src/util/error.cpp" "$src/src/util/file.cpp" \
  "$src/src/linux/capabilities.cpp" "$src/src/linux/rlimits.cpp" -o "$out/fuzz_config"
"$out/fuzz_config" -runs="$runs" -max_len=8192 -timeout=10 "$out/corpus" 2>&1 | tail -5
