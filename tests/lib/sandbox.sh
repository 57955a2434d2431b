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
    [ -n "${SANDBOX_HOST_NETNS_FD:-}" ] && eval "exec ${SANDBOX_HOST_NETNS_FD}</proc/self/ns/net"
    exec unshare --net -- bash "$0" "$@"
  fi
  ip link set lo up
  T=$(mktemp -d "/tmp/vitro-$name.XXXXXX")
  export VITRO_ROOT=$T/root VITRO_RUNROOT=$T/run VITRO_NETWORK_CONFIG_DIR=$T/net.d
}
