# shellcheck shell=bash
# tests/lib/sandbox.sh: how the engine-level shell tests start. Sourced, not run.
#   sandbox NAME ARGS...  re-runs the calling script with ARGS in a network
#                         namespace of its own (the host's bridges, routes and
#                         iptables stay untouched), then, in there: lo up,
#                         T=/tmp/vitro-NAME.XXXXXX, and every vitro path under T.
#                         With SANDBOX_HOST_NETNS_FD=N set, fd N keeps the
#                         host's network namespace (the proc connector exists
#                         only there: `nsenter --net=/proc/self/fd/N`).
sandbox() {
  local name=$1; shift
  if [ "${VITRO_SANDBOX:-}" != "$name" ]; then
    export VITRO_SANDBOX=$name
    if [ -n "${SANDBOX_HOST_NETNS_FD:-}" ]; then
      [[ $SANDBOX_HOST_NETNS_FD =~ ^[0-9]+$ ]] || { echo "sandbox: SANDBOX_HOST_NETNS_FD must be an fd number" >&2; exit 2; }
      eval "exec ${SANDBOX_HOST_NETNS_FD}</proc/self/ns/net"
    fi
    exec unshare --net -- bash "$0" "$@"
  fi
  ip link set lo up
  T=$(mktemp -d "/tmp/vitro-$name.XXXXXX")
  export VITRO_ROOT=$T/root VITRO_RUNROOT=$T/run VITRO_NETWORK_CONFIG_DIR=$T/net.d
}
# sandbox_image: the bundled busybox image built and loaded, as $IMG.
sandbox_image() {
  bash "$here/../../scripts/make-image.sh" "$T/bb.tar" >/dev/null &&
    "$V" load -i "$T/bb.tar" >/dev/null || { echo "Bail out! cannot load the test image"; exit 1; }
  IMG=localhost/busybox
}
# sandbox_teardown: every container of this root removed, then T unmounted
# and removed (for the script's EXIT trap, after what the script started itself).
sandbox_teardown() {
  "$V" rm -f $("$V" ps -aq 2>/dev/null) >/dev/null 2>&1
  umount -R "$T" 2>/dev/null
  rm -rf "$T"
}
