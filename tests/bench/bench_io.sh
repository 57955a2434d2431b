#!/usr/bin/env bash
# vitro bench io through the real vitro binary and fio: bad input refused
# before any run (exit 125, one line naming the flag), the JSON's shape and
# non-zero bandwidth for host and namespace mode, the ground truth (fio's
# bytes against the cgroup's block-layer counters, within 2%, for O_DIRECT
# writes: buffered I/O may be served by the page cache), and a SIGINT in
# the middle of a run leaving no container, file, mount or cgroup behind.
# Small sizes (16 MiB, 2 repeats); no timed assertions. In its own network
# namespace, every vitro path in a temp dir. TAP. Root only.
# usage: bench_io.sh PATH_TO_VITRO
set -uo pipefail
V=$(readlink -f "${1:?usage: bench_io.sh PATH_TO_VITRO}")
here=$(cd "$(dirname "$0")" && pwd)
command -v fio >/dev/null || { echo "1..0 # SKIP fio is not installed (apt-get install fio)"; exit 77; }
. "$here/../lib/sandbox.sh"
sandbox bench-io-test "$V"
bgpid=
cleanup() { [ -n "$bgpid" ] && kill -KILL "$bgpid" 2>/dev/null; sandbox_teardown; }
trap cleanup EXIT
. "$here/../lib/tap.sh"
sandbox_image

# vr ARGS...: runs vitro, stdout in $out, stderr in $err, exit status in $rc.
vr() { out=$("$V" "$@" 2>"$T/err"); rc=$?; err=$(cat "$T/err"); }
# js EXPR: python3 on the parsed $out as `j`.
js() { python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$out"; }
# leftovers: what a bench run of this root could leave: containers, its work
# directory, fio files, mounts, host-mode cgroups.
leftovers() {
  "$V" ps -aq
  ls -d "$VITRO_ROOT"/bench-io-* 2>/dev/null
  find "$T" -name 'fio-*.dat' 2>/dev/null
  grep -F "$T" /proc/self/mountinfo | grep -F bench-io
  ls -d /sys/fs/cgroup/*/vitro-bench-io-* /sys/fs/cgroup/vitro-bench-io-* 2>/dev/null
}
none_left() { local l; l=$(leftovers); [ -z "$l" ] || { echo "#   left behind: $l" >&2; return 1; }; }

B=(bench io --size 16m --repeat 2)
# --- bad input: one line, exit 125, before any run
rc_err "unknown workload" 125 '^Error: --workload seqreed: expected seqread' "$V" "${B[@]}" --workload seqreed
rc_err "unknown mode" 125 '^Error: --isolation kata: expected host, namespace or vm' "$V" "${B[@]}" --isolation kata
rc_err "unknown runtime" 125 '^Error: --runtime kata: expected vitro, crun or runc' "$V" "${B[@]}" --runtime kata
rc_err "bad --bs" 125 '^Error: --bs 4x: expected a size' "$V" "${B[@]}" --bs 4x
rc_err "bad --size" 125 '^Error: --size 12q: expected a size' "$V" bench io --size 12q
rc_err "--size larger than the target's free space" 125 '^Error: --size 100000g: larger than the free space of ' \
  "$V" bench io --size 100000g
rc_err "--size larger than the memory for a tmpfs" 125 '^Error: --size 100000g: larger than the memory available' \
  "$V" bench io --size 100000g --target tmpfs
rc_err "a target directory that does not exist" 125 "^Error: --target /nonexistent-$$: no such directory" \
  "$V" "${B[@]}" --target /nonexistent-$$
rc_err "an unknown target word" 125 '^Error: --target disk: expected rootfs, volume, tmpfs' "$V" "${B[@]}" --target disk
rc_err "fio missing" 125 '^Error: fio is not installed' env PATH=/nonexistent "$V" "${B[@]}"
rc_err "--profile: not yet" 125 '^Error: --profile: not yet' "$V" "${B[@]}" --profile
rc_err "an image not in the store" 125 'image localhost/nothere is not in the store' "$V" "${B[@]}" --image localhost/nothere
check "... in one line (the last one)" eq "$(wc -l <"$T/err")" 1
check "... and nothing made or run for any of them" none_left

# --- host and namespace: the JSON's shape, bandwidth, ground truth
vr "${B[@]}" --isolation host,namespace --workload seqwrite,randread --bs 4k,1m --direct --format json
check "host,namespace x seqwrite,randread x 4k,1m --direct: exit 0" eq "$rc" 0
[ "$rc" = 0 ] || echo "# stderr: $(tail -c 600 <<<"$err")"
check "... 8 results, one per mode x workload x bs" eq "$(js 'len(j["results"])')" 8
check "... modes and runtimes" eq "$(js '",".join(sorted({r["isolation"]+"/"+r["runtime"] for r in j["results"]}))')" "host/none,namespace/vitro"
check "... bs as given" eq "$(js '",".join(sorted({r["bs"] for r in j["results"]}))')" "1m,4k"
check "... every result has the fields, medians of 2 runs" eq "$(js 'all({"isolation","runtime","workload","bs","bandwidth_bytes_per_s","iops","cv","cpu","bytes_per_cpu_s","ground_truth"} <= r.keys() and r["repeats"] == 2 for r in j["results"])')" True
check "... bandwidth and IOPS above zero everywhere" eq "$(js 'all(r["bandwidth_bytes_per_s"] > 0 and r["iops"] > 0 for r in j["results"])')" True
check "... the CPU split adds up to 100%" eq "$(js 'all(abs(sum(r["cpu"][k] for k in ("usr","nice","sys","iowait","irq","soft","steal","guest","idle")) - 100) < 0.5 for r in j["results"])')" True
check "... the container's own cgroup CPU is counted" eq "$(js 'all(r["cgroup_cpu_s"] > 0 for r in j["results"])')" True
check "... the header names machine, kernel and fio" eq "$(js 'bool(j["machine"]) and j["kernel"].startswith("Linux") and j["fio_version"].startswith("fio-")')" True
check "... the progress lines, one per run, with the time left" eq "$(grep -c 'left)$' <<<"$err")" 16
for iso in host namespace; do
  gt="[r['ground_truth'] for r in j['results'] if r['isolation']=='$iso' and r['workload']=='seqwrite' and r['bs']=='1m'][0]"
  fio_b=$(js "$gt['fio_bytes']"); task=$(js "$gt['task_io_bytes']"); disk=$(js "$gt['diskstats_bytes']")
  check "ground truth, $iso seqwrite 1m --direct: fio's bytes are 2 x 16 MiB" eq "$fio_b" 33554432
  check "... the bytes submitted to the block layer for fio within 2% of them ($task)" within "$task" "$fio_b" 2
  # The whole device's counters take other users' writes too: at least fio's.
  check "... the device's diskstats count at least 98% of them ($disk)" \
    python3 -c "import sys; sys.exit(not $disk >= 0.98 * $fio_b)"
done
check "nothing left behind after the runs" none_left

# --- vm: fio in a microVM (fio and its libraries one read-only virtiofs
# share, run through their own loader), the file on the virtiofs rootfs
vr bench io --size 16m --isolation vm --workload seqwrite --bs 1m --repeat 1 --direct --format json
check "vm seqwrite 1m --direct: exit 0" eq "$rc" 0
[ "$rc" = 0 ] || echo "# stderr: $(tail -c 600 <<<"$err")"
check "... one vm result with bandwidth above zero" eq "$(js '[(r["isolation"], r["bandwidth_bytes_per_s"] > 0) for r in j["results"]]')" "[('vm', True)]"
check "... fio's bytes are what was asked (16 MiB)" eq "$(js 'j["results"][0]["ground_truth"]["fio_bytes"]')" 16777216
check "nothing left behind after the VM run" none_left

# --- csv, text and plots
vr bench io --size 16m --isolation host --workload seqread --bs 1m --repeat 1 --format csv --plot "$T/plots"
check "csv: a header and one row" eq "$(wc -l <<<"$out"):$(head -1 <<<"$out" | cut -d, -f1-4)" "2:isolation,runtime,workload,bs"
check "--plot: an SVG per workload" test -s "$T/plots/bench-io-seqread.svg"
vr bench io --size 16m --isolation host --workload seqread --bs 1m --repeat 1 --target tmpfs
check "text on a tmpfs: a row for host seqread 1m" bash -c "grep -qE '^host +seqread +1m ' <<<'$out'"

# --- SIGINT in the middle of a run
"$V" bench io --isolation namespace --workload randwrite --bs 4k --size 256m --repeat 5 --target volume \
  >"$T/int.out" 2>"$T/int.err" &
bgpid=$!
check "a container is running for the bench" poll 60 bash -c "[ -n \"\$('$V' ps -q)\" ]"
kill -INT $bgpid
wait $bgpid; rc=$?; bgpid=
check "SIGINT: a non-zero exit (130)" eq "$rc" 130
check "... saying it was stopped and what finished" grep -q 'stopped by SIGINT' "$T/int.out"
check "... no container, work directory, file, mount or cgroup left" none_left

tap_done
