# shellcheck shell=bash
# tests/peers/lib.sh: helpers shared by the peer tests (podman.sh, containerd.sh).
# Sourced, not run. Provides:
#   - peers_init NAME RUNTIME: temp dir $PEERS_T, cleanup trap, runtime selection;
#   - a cleanup stack (peers_on_exit) run in reverse order on any exit or signal;
#   - TAP-like reporting (peers_ok / peers_fail / peers_skip / peers_done);
#   - peers_build_image: a busybox OCI image made locally, no registry involved;
#   - polling (peers_poll), and sweepers for processes, mounts and cgroups left
#     behind under this run's temp dir or cgroup name.
#
# Environment:
#   VITRO_PEERS_RUNTIME   runtime to drive instead of the argument (e.g. /usr/sbin/runc)
#   VITRO_PEERS_KEEP=1    keep the temp dir (daemons, mounts and cgroups still go)
#   VITRO_PEERS_TRACE=1   log every runtime invocation (argv, exit code) to
#                         $PEERS_T/runtime-calls.log, shown on failure
#   VITRO_PEERS_IMAGE_CACHE=DIR  reuse (or fill) an image cache in DIR across runs
#   VITRO_PEERS_ONLY=REGEX run only the cases whose name matches
#   VITRO_PEERS_CMD_TIMEOUT  seconds one podman/ctr command may take (default 90)
#   VITRO_PEERS_BUDGET     seconds for all the cases (default 360): cases not
#                         started by then fail as "not run"; a case running past it
#                         gets 60 s more, then every command and poll in it is cut
#                         short; the cleanup so fits in CTest's 600 s too
#
# The script's own stdout/stderr are kept on fds 7 and 8, so that the cleanup
# trap reports there even when it fires inside a case whose output goes to a
# file. Commands that may outlive the script (daemons, podman, ctr) must get
# "7>&- 8>&-" (see peers_cmd), so that none keeps CTest's pipe open.

set -uo pipefail
export LC_ALL=C
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

PEERS_NAME=peers
PEERS_T=""
PEERS_N=0
PEERS_FAILED=0
PEERS_SKIPPED=0
PEERS_FAILED_NAMES=()
PEERS_CLEANUP=()
PEERS_RUNTIME=""
PEERS_IMAGE_NAME=localhost/vitro-busybox:latest
# shellcheck disable=SC2034,SC2016 # used by the scripts; expands in the container
PEERS_OOM_CMD='x=$(head -c 100000000 /dev/zero | tr "\0" a); echo survived'

PEERS_CMD_TIMEOUT=${VITRO_PEERS_CMD_TIMEOUT:-90}
PEERS_BUDGET=${VITRO_PEERS_BUDGET:-360}
PEERS_START=$(date +%s)
exec 7>&1 8>&2

peers_log() { printf '# %s\n' "$*" >&8; }

# Indent a file (or stdin) as TAP diagnostics, at most N lines (tail).
peers_diag() {
  local n=${2:-40}
  if [ -n "${1:-}" ] && [ "$1" != - ]; then
    [ -s "$1" ] || return 0
    tail -n "$n" -- "$1"
  else
    tail -n "$n"
  fi | sed 's/^/#   /' >&8
}

peers_ok() {
  PEERS_N=$((PEERS_N + 1))
  printf 'ok %d - %s\n' "$PEERS_N" "$1"
}

# peers_fail NAME [REASON]: records a failure and prints the runtime trace if any.
peers_fail() {
  PEERS_N=$((PEERS_N + 1))
  PEERS_FAILED=$((PEERS_FAILED + 1))
  PEERS_FAILED_NAMES+=("$1")
  printf 'not ok %d - %s\n' "$PEERS_N" "$1"
  [ -z "${2:-}" ] || peers_log "$2"
  if [ -n "$PEERS_T" ] && [ -s "$PEERS_T/runtime-calls.log" ]; then
    peers_log "last runtime calls ($PEERS_T/runtime-calls.log):"
    peers_diag "$PEERS_T/runtime-calls.log" 15
  fi
}

peers_skip() {
  PEERS_N=$((PEERS_N + 1))
  PEERS_SKIPPED=$((PEERS_SKIPPED + 1))
  printf 'ok %d - %s # SKIP %s\n' "$PEERS_N" "$1" "$2"
}

# peers_selected NAME: false when VITRO_PEERS_ONLY excludes the case.
peers_selected() {
  [ -z "${VITRO_PEERS_ONLY:-}" ] || [[ "$1" =~ $VITRO_PEERS_ONLY ]]
}

# peers_case NAME FUNCTION: runs one case; the function returns 0 for pass and
# prints its reason for failure. Output of the case goes to a log under the
# temp dir and is shown only on failure ("note: " lines always).
peers_case() {
  local name=$1 fn=$2 log rc
  peers_selected "$name" || { peers_skip "$name" "not selected by VITRO_PEERS_ONLY"; return 0; }
  if [ $(($(date +%s) - PEERS_START)) -ge "$PEERS_BUDGET" ]; then
    peers_fail "$name" "not run: the cases' time budget ($PEERS_BUDGET s) is spent"
    return 0
  fi
  log="$PEERS_T/case-$((PEERS_N + 1)).log"
  [ -z "${VITRO_PEERS_TRACE:-}" ] || : >"$PEERS_T/runtime-calls.log"
  "$fn" >"$log" 2>&1
  rc=$?
  # A per-script hook tidies up after each case (containers it left behind).
  if declare -F peers_after_case >/dev/null; then peers_after_case >>"$log" 2>&1; fi
  if [ "$rc" = 0 ]; then
    peers_ok "$name"
    sed -n 's/^note: /# note: /p' "$log"
  else
    peers_fail "$name"
    peers_log "output of '$name':"
    peers_diag "$log" 60
  fi
  return 0
}

# peers_done: plan line, summary, exit status.
peers_done() {
  printf '1..%d\n' "$PEERS_N"
  if [ "$PEERS_FAILED" -gt 0 ]; then
    printf '# %s: FAIL: %d of %d failed:' "$PEERS_NAME" "$PEERS_FAILED" "$PEERS_N"
    printf ' %s;' "${PEERS_FAILED_NAMES[@]}"
    printf '\n'
    exit 1
  fi
  printf '# %s: all %d passed, %d of them skipped (runtime %s)\n' "$PEERS_NAME" "$PEERS_N" "$PEERS_SKIPPED" "$PEERS_RUNTIME"
  exit 0
}

# Assertions used inside case functions: print the reason and return 1.
expect_eq() { # expect_eq WHAT EXPECTED ACTUAL
  if [ "$2" != "$3" ]; then
    printf 'FAIL: %s: expected [%s], got [%s]\n' "$1" "$2" "$3"
    return 1
  fi
  printf 'ok: %s = [%s]\n' "$1" "$3"
}

# ---------------------------------------------------------------- cleanup

peers_on_exit() { PEERS_CLEANUP+=("$1"); }

peers_run_cleanup() {
  local i
  trap - EXIT INT TERM HUP
  # The trap may fire inside a case whose output goes to its log.
  exec 1>&7 2>&8
  for ((i = ${#PEERS_CLEANUP[@]} - 1; i >= 0; i--)); do
    eval "${PEERS_CLEANUP[$i]}" || peers_log "cleanup step failed: ${PEERS_CLEANUP[$i]}"
  done
  PEERS_CLEANUP=()
}

peers_trap_exit() {
  local rc=$?
  peers_run_cleanup
  exit "$rc"
}

peers_trap_signal() {
  peers_log "interrupted by signal $1"
  peers_run_cleanup
  exit $((128 + $2))
}

# peers_cmd CMD...: runs a peer's command (podman, ctr, script) bounded by
# $PEERS_CMD_TIMEOUT (SIGTERM, then SIGKILL 10 s later, to its process group)
# and without the saved fds 7 and 8. A timeout is reported on stderr.
peers_cmd() {
  local rc t0=$SECONDS limit
  limit=$(peers_limit "$PEERS_CMD_TIMEOUT")
  timeout -k 10 "$limit" "$@" 7>&- 8>&-
  rc=$?
  if { [ "$rc" = 124 ] || [ "$rc" = 137 ]; } && [ $((SECONDS - t0)) -ge "$limit" ]; then
    echo "TIMEOUT: '$*' did not finish in $limit s" >&2
  fi
  return "$rc"
}

# peers_limit SECONDS: SECONDS, or less once the budget (+60 s of grace) runs out.
peers_limit() {
  local left=$((PEERS_START + PEERS_BUDGET + 60 - $(date +%s)))
  [ "$left" -ge 5 ] || left=5
  [ "$1" -le "$left" ] && echo "$1" || echo "$left"
}

# peers_capture VAR CMD...: runs CMD with its stdout in a file, not a pipe (a
# hung grandchild holding a pipe would block the test past any timeout), and
# stores it in VAR without trailing newlines. Returns CMD's status.
peers_capture() {
  local __var=$1 __f __rc
  shift
  __f="$PEERS_T/capture.$BASHPID"
  "$@" >"$__f"
  __rc=$?
  printf -v "$__var" '%s' "$(cat "$__f")"
  rm -f -- "$__f"
  return "$__rc"
}

# peers_poll LIMIT_SECONDS CMD...: retries CMD every 0.2 s until it succeeds or
# the limit passes (the limit is generous; it only bounds a hang).
peers_poll() {
  local limit deadline
  limit=$(peers_limit "$1")
  shift
  deadline=$(($(date +%s) + limit))
  while :; do
    "$@" && return 0
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# Processes whose command line, executable, or working directory refers to DIR
# (daemons, shims, conmon started for this run).
peers_pids_under() {
  local dir=$1 p pid cmd
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" != $$ ] && [ "$pid" != "$BASHPID" ] || continue
    cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    if [[ "$cmd" == *"$dir"* ]] ||
      [[ "$(readlink "$p/cwd" 2>/dev/null)" == "$dir"* ]] ||
      [[ "$(readlink "$p/exe" 2>/dev/null)" == "$dir"* ]]; then
      echo "$pid"
    fi
  done
}

# peers_kill_pids PID...: SIGTERM, wait a little, then SIGKILL the survivors.
peers_kill_pids() {
  local pid left
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null
  for _ in $(seq 50); do
    left=""
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && left="$left $pid"; done
    [ -n "$left" ] || return 0
    sleep 0.1
  done
  peers_log "killing with SIGKILL:$left"
  # shellcheck disable=SC2086
  kill -KILL $left 2>/dev/null
  sleep 0.2
  return 0
}

peers_kill_under() {
  local pids
  # shellcheck disable=SC2046
  pids=$(peers_pids_under "$1")
  [ -z "$pids" ] || { peers_log "stopping leftover processes under $1: $(echo $pids)"; peers_kill_pids $pids; }
}

# Mount points at or under DIR, deepest first (octal escapes in mountinfo decoded).
peers_mounts_under() {
  local dir=$1
  awk '{print $5}' /proc/self/mountinfo | while read -r m; do
    m=$(printf '%b' "${m//\\/\\0}")
    case "$m" in "$dir" | "$dir"/*) echo "$m" ;; esac
  done | sort -r
}

peers_umount_under() {
  local m n=0
  while read -r m; do
    [ -n "$m" ] || continue
    n=$((n + 1))
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || peers_log "cannot unmount $m"
  done < <(peers_mounts_under "$1")
  [ "$n" = 0 ] || peers_log "unmounted $n leftover mount(s) under $1"
}

# All cgroup hierarchies mounted on this host (v1 controllers, named, unified).
peers_cgroup_roots() {
  awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/self/mounts | sort -u
}

# peers_rm_cgroup REL: kills what is left in cgroup REL (relative to each
# hierarchy root) and removes it, deepest first, in every hierarchy.
peers_rm_cgroup() {
  local rel=${1#/} root d pids found=0
  [ -n "$rel" ] || return 0
  for root in $(peers_cgroup_roots); do
    [ -d "$root/$rel" ] || continue
    found=1
    # A frozen cgroup (v1 freezer) would keep its tasks from dying.
    [ ! -f "$root/$rel/freezer.state" ] || echo THAWED >"$root/$rel/freezer.state" 2>/dev/null
    pids=$(find "$root/$rel" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
    # shellcheck disable=SC2086
    [ -z "$pids" ] || { peers_log "killing leftover tasks in $root/$rel: $(echo $pids)"; kill -KILL $pids 2>/dev/null; sleep 0.2; }
    find "$root/$rel" -depth -type d 2>/dev/null | while read -r d; do
      peers_poll 10 rmdir "$d" 2>/dev/null || peers_log "cannot remove cgroup $d"
    done
  done
  [ "$found" = 0 ] || peers_log "removed cgroup /$rel"
  return 0
}

# peers_cgroups_left REL: prints the hierarchies that still hold REL.
peers_cgroups_left() {
  local rel=${1#/} root
  for root in $(peers_cgroup_roots); do
    [ ! -d "$root/$rel" ] || echo "$root/$rel"
  done
}

# ---------------------------------------------------------------- setup

# peers_need CMD...: exits with a clear message when a tool is missing.
peers_need() {
  local c missing=""
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing="$missing $c"; done
  if [ -n "$missing" ]; then
    echo "Bail out! missing tools:$missing (run: bash scripts/setup.sh all)"
    exit 1
  fi
}

# peers_init NAME RUNTIME_ARG: checks root, picks the runtime, makes $PEERS_T.
peers_init() {
  PEERS_NAME=$1
  local arg=${2:-}
  if [ "$(id -u)" != 0 ]; then
    echo "Bail out! $PEERS_NAME: must run as root (containers, cgroups, mounts)"
    exit 1
  fi
  PEERS_RUNTIME=${VITRO_PEERS_RUNTIME:-$arg}
  if [ -z "$PEERS_RUNTIME" ]; then
    echo "Bail out! usage: $0 PATH_TO_RUNTIME (or set VITRO_PEERS_RUNTIME)"
    exit 2
  fi
  case "$PEERS_RUNTIME" in /*) ;; *) PEERS_RUNTIME=$(command -v "$PEERS_RUNTIME" || realpath -- "$PEERS_RUNTIME") ;; esac
  if [ ! -x "$PEERS_RUNTIME" ]; then
    echo "Bail out! runtime '$PEERS_RUNTIME' is not an executable file"
    exit 1
  fi
  PEERS_T=$(mktemp -d "${TMPDIR:-/tmp}/vitro-$PEERS_NAME.XXXXXX") || exit 1
  chmod 0755 "$PEERS_T"
  trap peers_trap_exit EXIT
  trap 'peers_trap_signal INT 2' INT
  trap 'peers_trap_signal TERM 15' TERM
  trap 'peers_trap_signal HUP 1' HUP
  # Registered first, so it runs last: sweep, then remove the temp dir.
  peers_on_exit peers_final_sweep
  echo "# $PEERS_NAME: runtime $PEERS_RUNTIME, temp dir $PEERS_T"
  if [ -n "${VITRO_PEERS_TRACE:-}" ]; then
    peers_make_trace_wrapper
    echo "# $PEERS_NAME: tracing runtime calls through $PEERS_RUNTIME_CMD"
  else
    PEERS_RUNTIME_CMD=$PEERS_RUNTIME
  fi
}

# A wrapper with the runtime's own base name (peers key some behaviour on it)
# that logs each call and its exit status, then runs the real runtime.
peers_make_trace_wrapper() {
  local dir="$PEERS_T/trace-bin"
  mkdir -p "$dir"
  PEERS_RUNTIME_CMD="$dir/$(basename "$PEERS_RUNTIME")"
  cat >"$PEERS_RUNTIME_CMD" <<EOF
#!/bin/bash
log='$PEERS_T/runtime-calls.log'
printf '%s [%s] %s\n' "\$(date +%T.%N | cut -c1-12)" "\$\$" "\$(printf '%q ' "\$@")" >>"\$log"
'$PEERS_RUNTIME' "\$@"
rc=\$?
printf '%s [%s] exit %s\n' "\$(date +%T.%N | cut -c1-12)" "\$\$" "\$rc" >>"\$log"
exit \$rc
EOF
  chmod 0755 "$PEERS_RUNTIME_CMD"
}

peers_final_sweep() {
  [ -n "$PEERS_T" ] && [ -d "$PEERS_T" ] || return 0
  peers_kill_under "$PEERS_T"
  peers_umount_under "$PEERS_T"
  if [ -n "${VITRO_PEERS_KEEP:-}" ]; then
    peers_log "keeping $PEERS_T (VITRO_PEERS_KEEP)"
  else
    # Files made read-only or immutable-looking by tools (vfs layers) still go.
    rm -rf --one-file-system -- "$PEERS_T" 2>/dev/null || {
      chmod -R u+w -- "$PEERS_T" 2>/dev/null
      rm -rf --one-file-system -- "$PEERS_T" || peers_log "cannot remove $PEERS_T"
    }
  fi
}

# ---------------------------------------------------------------- the image

# peers_build_image: sets PEERS_IMAGE_OCI (OCI layout dir, tag "busybox") and
# PEERS_IMAGE_DOCKER_TAR (docker-archive named $PEERS_IMAGE_NAME), building them
# once per run under $PEERS_T/image (or once for all runs in VITRO_PEERS_IMAGE_CACHE).
peers_build_image() {
  local cache=${VITRO_PEERS_IMAGE_CACHE:-$PEERS_T/image}
  PEERS_IMAGE_OCI="$cache/oci"
  PEERS_IMAGE_DOCKER_TAR="$cache/busybox-docker.tar"
  if [ -f "$cache/.complete" ]; then
    echo "# image: reusing $cache"
    return 0
  fi
  mkdir -p "$cache" || return 1
  rm -rf -- "$PEERS_IMAGE_OCI" "$cache/bundle" "$PEERS_IMAGE_DOCKER_TAR"
  local bb
  bb=$(command -v busybox) || { echo "peers_build_image: busybox not found" >&2; return 1; }
  # Only a static busybox works in an image with no libc.
  if ! file -L "$bb" 2>/dev/null | grep -q 'statically linked'; then
    if file -L /bin/busybox 2>/dev/null | grep -q 'statically linked'; then
      bb=/bin/busybox
    else
      echo "peers_build_image: $bb is not statically linked (install busybox-static)" >&2
      return 1
    fi
  fi
  (
    set -e
    umoci init --layout "$PEERS_IMAGE_OCI"
    umoci new --image "$PEERS_IMAGE_OCI:busybox"
    umoci unpack --image "$PEERS_IMAGE_OCI:busybox" "$cache/bundle"
    r="$cache/bundle/rootfs"
    mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root" "$r/proc" "$r/sys" "$r/dev" "$r/home"
    chmod 1777 "$r/tmp"
    cp "$bb" "$r/bin/busybox"
    for a in $("$bb" --list); do
      [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"
    done
    printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/home:/bin/false' >"$r/etc/passwd"
    printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$r/etc/group"
    umoci repack --image "$PEERS_IMAGE_OCI:busybox" "$cache/bundle"
    umoci config --image "$PEERS_IMAGE_OCI:busybox" \
      --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --config.workingdir / --config.cmd sh
    umoci gc --layout "$PEERS_IMAGE_OCI"
    rm -rf -- "$cache/bundle"
    skopeo --insecure-policy copy -q --tmpdir "$cache" "oci:$PEERS_IMAGE_OCI:busybox" "docker-archive:$PEERS_IMAGE_DOCKER_TAR:$PEERS_IMAGE_NAME"
  ) >"$cache/build.log" 2>&1 || {
    echo "peers_build_image: failed:" >&2
    peers_diag "$cache/build.log" 30
    return 1
  }
  touch "$cache/.complete"
  echo "# image: built $PEERS_IMAGE_NAME in $cache ($(du -sh "$PEERS_IMAGE_DOCKER_TAR" | cut -f1) docker-archive)"
}

# Strips carriage returns and NULs (tty output) and trailing blanks.
peers_clean_output() { tr -d '\r\000' | sed 's/[[:space:]]*$//'; }
