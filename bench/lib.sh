# bench/lib.sh: what the bench scripts share. Sourced first thing:
#   . "$(dirname "$0")/lib.sh"; bench_in_netns "$@"

# From the repository root, with $V the release vitro ($VITRO overrides it;
# built when missing), the rest of the script runs again inside a private
# network namespace with lo up, so that the machine's bridges and iptables
# stay untouched.
bench_in_netns() {
  cd "$(dirname "$0")/.."
  V=${VITRO:-$PWD/build/release/vitro}
  [ -x "$V" ] || scripts/build.sh release >/dev/null
  if [ "${VITRO_BENCH_INNER:-}" != 1 ]; then
    export VITRO_BENCH_INNER=1
    exec unshare --net -- bash "$0" "$@"
  fi
  ip link set lo up
}

# ms CMD...: CMD's wall time in µs, its output dropped; a failure ends the bench.
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
# median_by D: the median of the figures on stdin divided by D, one decimal ("nan" for none).
median_by() { sort -n | awk -v d="$1" '{a[NR]=$1} END {if (!NR) {print "nan"; exit} m = NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.1f", m / d}'; }
# The median of the µs figures on stdin, in ms with one decimal.
median() { median_by 1000; }
