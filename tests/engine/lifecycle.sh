#!/usr/bin/env bash
# A container's life around its client, through the real vitro binary: a
# foreground run passes the signals it gets on to the container (--sig-proxy)
# and a client killed with -9 leaves no container running; `stop` and `rm -f`
# of a --rm container exit 0 although its monitor removes it meanwhile; a
# named volume new to the host is filled from the image (symlinks in the image
# resolved inside its rootfs). In its own network namespace, every vitro path
# in a temp dir. TAP. Root only.
# usage: lifecycle.sh PATH_TO_VITRO
set -uo pipefail
V=$(readlink -f "${1:?usage: lifecycle.sh PATH_TO_VITRO}")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/sandbox.sh"
sandbox lifecycle-test "$V"
clients=""
cleanup() {
  for p in $clients; do kill -9 "$p" 2>/dev/null; done
  sandbox_teardown
}
trap cleanup EXIT
. "$here/../lib/tap.sh"
sandbox_image

# names [ps FLAGS]: the containers' names; a listing that fails is neither "gone" nor "running".
names() { local out; out=$("$V" ps "$@" --format '{{.Names}}') && tr -d '[]"' <<<"$out"; }
gone() { local out; out=$(names -a) && ! grep -qx "$1" <<<"$out"; }
running() { names | grep -qx "$1"; }
# A background client's exit status, once it has exited (bounded: one that
# does not exit is killed, 137).
dead() { local s; ! s=$(ps -o stat= -p "$1") || [ "${s:0:1}" = Z ]; }
finished() { poll 30 dead "$1" || kill -9 "$1"; wait "$1"; }
# The container prints READY once its traps are set.
LOOP='echo READY; while :; do sleep .1; done'

# --- bug 2: stop / rm -f of a --rm container, whose monitor removes it meanwhile
for i in 1 2 3; do
  "$V" run -d --rm --name rmstop$i$$ --network none $IMG sh -c "trap 'exit 0' TERM; $LOOP" >/dev/null
  wait_for bash -c "'$V' logs rmstop$i$$ | grep -q READY"
  out=$("$V" stop rmstop$i$$ 2>"$T/err"); rc=$?
  check "stop of a --rm container exits 0 and names it (try $i of 3)" \
    bash -c "[ $rc = 0 ] && [ '$out' = rmstop$i$$ ] || { cat '$T/err' >&2; false; }"
  check "... and it is gone" poll 30 gone rmstop$i$$
  "$V" run -d --rm --name rmf$i$$ --network none $IMG sleep 1000 >/dev/null
  wait_for running rmf$i$$
  out=$("$V" rm -f rmf$i$$ 2>"$T/err"); rc=$?
  check "rm -f of a running --rm container exits 0 and names it (try $i of 3)" \
    bash -c "[ $rc = 0 ] && [ '$out' = rmf$i$$ ] || { cat '$T/err' >&2; false; }"
  check "... and it is gone" gone rmf$i$$
done

tap_done
