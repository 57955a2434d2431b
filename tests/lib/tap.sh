# shellcheck shell=bash
# tests/lib/tap.sh: the TAP reporting and bounded polling that the shell
# integration tests share. Sourced, not run.
#   check NAME CMD...   runs CMD: "ok N - NAME", or "not ok N - NAME" + the command
#   ok NAME / not_ok NAME [DETAIL]
#   eq GOT WANT         succeeds when equal; says both on stderr when not
#   within A B PCT      succeeds when |A - B| <= PCT% of B
#   poll SECONDS CMD... retries CMD every 0.2 s until it succeeds or SECONDS
#                       pass (bounded; no fixed sleeps, no timed assertions)
#   wait_for CMD...     poll 30 CMD..., quiet, then one last try that shows its output
#   tap_done            prints the plan; its status is 0 when nothing failed
#   rc_err NAME WANT_RC PATTERN CMD...  CMD exits WANT_RC and its stderr has PATTERN (grep -E; uses $T)
n=0 failed=0
ok() { n=$((n+1)); echo "ok $n - $1"; }
not_ok() { n=$((n+1)); failed=$((failed+1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "#   $2"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name" "command: $*"; fi; }
eq() { [ "$1" = "$2" ] || { echo "#   expected [$2], got [$1]" >&2; return 1; }; }
within() { awk -v a="$1" -v b="$2" -v p="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; ok = (d <= b * p / 100);
  if (!ok) printf "#   %s is not within %s%% of %s\n", a, p, b > "/dev/stderr"; exit !ok }'; }
poll() { local end=$((SECONDS + $1)); shift; until "$@"; do [ $SECONDS -ge $end ] && return 1; sleep 0.2; done; }
wait_for() { poll 30 "$@" >/dev/null 2>&1 || "$@"; }
tap_done() { echo "1..$n"; [ "$failed" = 0 ]; }
rc_err() {
  local name=$1 want=$2 pat=$3 rc; shift 3
  "$@" >"$T/out" 2>"$T/err"; rc=$?
  if [ "$rc" = "$want" ] && grep -Eq -- "$pat" "$T/err"; then ok "$name"
  else not_ok "$name" "exit $rc (want $want), stderr: $(head -c 400 "$T/err")"; fi
}
