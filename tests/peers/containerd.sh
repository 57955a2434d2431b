#!/usr/bin/env bash
# tests/peers/containerd.sh RUNTIME: containerd 1.6 (runc v2 shim, ctr) driving an
# OCI runtime through `ctr run --runc-binary` (vitro-runtime under CTest;
# VITRO_PEERS_RUNTIME=/usr/sbin/runc to check the test itself).
#
# containerd runs from a config of its own: root, state, sockets and the opt dir
# under a temp dir, CRI disabled, metrics off. It is started in the background
# and stopped by its pid. Containers live in a namespace named for this run, so
# their cgroups (/<namespace>/<id>) are this run's too.
# Prints TAP; exits non-zero on any failure; cleans up on every exit path.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

peers_need containerd ctr containerd-shim-runc-v2 umoci skopeo script file
peers_init containerd "${1:-}"

T=$PEERS_T
NS="vitro-peers-$$"
SOCK="$T/containerd.sock"
IMG=$PEERS_IMAGE_NAME
CONTAINERD_PID=""
mkdir -p "$T/root" "$T/state" "$T/opt"

cat >"$T/config.toml" <<EOF
version = 2
root = "$T/root"
state = "$T/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$T/containerd-ttrpc.sock"

[debug]
  address = "$T/containerd-debug.sock"
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$T/opt"
EOF

c() { peers_cmd ctr -a "$SOCK" -n "$NS" "$@"; }
# ctr run with the runtime under test.
crun_() { c run --runc-binary "$PEERS_RUNTIME_CMD" "$@"; }

containerd_log_tail() {
  peers_log "containerd log ($T/containerd.log), last lines:"
  peers_diag "$T/containerd.log" "${1:-25}"
}

start_containerd() {
  containerd --config "$T/config.toml" </dev/null >"$T/containerd.log" 2>&1 7>&- 8>&- &
  CONTAINERD_PID=$!
  if ! peers_poll 60 ctr -a "$SOCK" version >/dev/null 2>&1; then
    echo "containerd did not answer on $SOCK"
    containerd_log_tail 40
    return 1
  fi
  ctr -a "$SOCK" version | sed 's/^/# /'
}

# Every task and container in our namespace, then the images, then the daemon.
containerd_cleanup() {
  local id ids rroot="/run/containerd/runc/$NS" q="timeout -k 5"
  # Container ids from the shims' state, not from containerd (which may hang).
  ids=$(ls "$T/state/io.containerd.runtime.v2.task/$NS" 2>/dev/null)
  if [ -n "$CONTAINERD_PID" ] && kill -0 "$CONTAINERD_PID" 2>/dev/null; then
    for id in $($q 30 ctr -a "$SOCK" -n "$NS" task ls -q 2>/dev/null 7>&- 8>&-); do
      $q 60 ctr -a "$SOCK" -n "$NS" task rm -f "$id" >/dev/null 2>&1 7>&- 8>&- || peers_log "ctr task rm -f $id failed"
    done
    for id in $($q 30 ctr -a "$SOCK" -n "$NS" container ls -q 2>/dev/null 7>&- 8>&-); do
      $q 60 ctr -a "$SOCK" -n "$NS" container rm "$id" >/dev/null 2>&1 7>&- 8>&- || peers_log "ctr container rm $id failed"
    done
    $q 60 ctr -a "$SOCK" -n "$NS" images rm "$IMG" >/dev/null 2>&1 7>&- 8>&-
    $q 30 ctr -a "$SOCK" namespaces rm "$NS" >/dev/null 2>&1 7>&- 8>&-
    peers_kill_pids "$CONTAINERD_PID"
    wait "$CONTAINERD_PID" 2>/dev/null
  fi
  # Shims outlive containerd: they are found by their -address under $T.
  peers_kill_under "$T"
  peers_rm_cgroup "$NS"
  # The shim keeps the runtime's state under /run/containerd/runc/<namespace>:
  # what the shims could not delete, the runtime deletes, then it goes.
  for id in $ids; do
    if $q 30 "$PEERS_RUNTIME" --root "$rroot" state "$id" >/dev/null 2>&1 7>&- 8>&-; then
      peers_log "runtime state left for $id: $PEERS_RUNTIME delete --force"
      $q 30 "$PEERS_RUNTIME" --root "$rroot" delete --force "$id" 7>&- 8>&- || peers_log "runtime delete --force $id failed"
    fi
  done
  peers_umount_under "$T"
  [ ! -d "$rroot" ] || rm -rf -- "$rroot"
}
peers_on_exit containerd_cleanup

task_status() { c task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $3}'; }
is_running() { [ "$(task_status "$1")" = RUNNING ]; }
is_paused() { [ "$(task_status "$1")" = PAUSED ]; }
is_stopped() { [ "$(task_status "$1")" = STOPPED ]; }

# After each case: remove whatever tasks and containers it left (a failed case too).
peers_after_case() {
  local id
  for id in $(c task ls -q 2>/dev/null); do echo "after case: task rm -f $id"; c task rm -f "$id"; done
  for id in $(c container ls -q 2>/dev/null); do echo "after case: container rm $id"; c container rm "$id"; done
  return 0
}

# ------------------------------------------------------------------ cases

case_import() {
  c images import "$PEERS_IMAGE_DOCKER_TAR" || return 1
  c images ls
  c images check | grep -F "$IMG" | grep -q complete ||
    { echo "FAIL: $IMG not complete after import"; c images check; return 1; }
}

case_run_echo() {
  local out
  peers_capture out crun_ --rm "$IMG" ce-echo echo hello || { echo "FAIL: ctr run exited $?"; return 1; }
  expect_eq "output" hello "$out"
}

case_exit_code() {
  local rc
  crun_ --rm "$IMG" ce-exit sh -c 'exit 3'
  rc=$?
  expect_eq "exit code of sh -c 'exit 3'" 3 "$rc"
}

case_env_cwd() {
  local out
  peers_capture out crun_ --rm --env FOO=bar --cwd /tmp "$IMG" ce-env sh -c 'echo "$FOO $(pwd) $(id -u)"' ||
    { echo "FAIL: ctr run exited $?"; return 1; }
  expect_eq "env, cwd, uid" "bar /tmp 0" "$out"
}

case_detached_kill() {
  local id=ce-detached out
  crun_ -d "$IMG" "$id" sleep 1000 || { echo "FAIL: ctr run -d exited $?"; return 1; }
  peers_poll 60 is_running "$id" || { echo "FAIL: task not running: [$(task_status "$id")]"; return 1; }
  # sleep as PID 1 ignores SIGTERM: kill it with SIGKILL.
  c task kill -s SIGKILL "$id" || { echo "FAIL: ctr task kill exited $?"; return 1; }
  peers_poll 60 is_stopped "$id" || { echo "FAIL: task state after kill: [$(task_status "$id")]"; return 1; }
  peers_capture out c task delete "$id" || { echo "FAIL: ctr task delete exited $?"; return 1; }
  echo "task delete: $out"
  c container delete "$id" || { echo "FAIL: ctr container delete exited $?"; return 1; }
}

case_exec() {
  local id=ce-exec out rc
  crun_ -d "$IMG" "$id" sleep 1000 || { echo "FAIL: ctr run -d exited $?"; return 1; }
  peers_poll 60 is_running "$id" || { echo "FAIL: task not running: [$(task_status "$id")]"; return 1; }
  peers_capture out c task exec --exec-id x1 "$id" sh -c 'echo exec-ok; cat /proc/1/cmdline | tr "\0" " "' ||
    { echo "FAIL: ctr task exec exited $?"; return 1; }
  expect_eq "ctr task exec output" "exec-ok sleep 1000" "$(echo $out)" || return 1
  c task exec --exec-id x2 "$id" sh -c 'exit 5'
  rc=$?
  expect_eq "ctr task exec exit code" 5 "$rc" || return 1
  c task kill -s SIGKILL "$id"
  peers_poll 60 is_stopped "$id" || { echo "FAIL: task state after kill: [$(task_status "$id")]"; return 1; }
  c task delete "$id" && c container delete "$id"
}

case_ps() {
  local id=ce-ps out
  crun_ -d "$IMG" "$id" sh -c 'sleep 1000 & wait' || { echo "FAIL: ctr run -d exited $?"; return 1; }
  peers_poll 60 is_running "$id" || { echo "FAIL: task not running: [$(task_status "$id")]"; return 1; }
  # ctr task ps asks the shim, which runs "RUNTIME ps --format json ID".
  c task ps "$id" || { echo "FAIL: ctr task ps exited $?"; return 1; }
  peers_poll 60 ps_lists "$id" 2 || { echo "FAIL: ctr task ps never listed 2 processes:"; c task ps "$id"; return 1; }
  c task ps "$id"
  c task kill -s SIGKILL "$id"
  peers_poll 60 is_stopped "$id" || { echo "FAIL: task state after kill: [$(task_status "$id")]"; return 1; }
  c task delete "$id" && c container delete "$id"
}
ps_lists() { [ "$(c task ps "$1" 2>/dev/null | tail -n +2 | wc -l)" -ge "$2" ]; }

case_signal() {
  local id=ce-signal rc run_pid
  # ctr run in the foreground reports the task's exit status as its own.
  # "ready" on stdout says the trap is set (no exec or ps needed to know).
  crun_ --rm "$IMG" "$id" sh -c 'trap "exit 42" USR1; echo ready; while :; do sleep 0.1; done' \
    </dev/null >"$T/signal.out" &
  run_pid=$!
  peers_poll 60 grep -q ready "$T/signal.out" ||
    { echo "FAIL: the container never said ready: [$(task_status "$id")]"; kill "$run_pid"; return 1; }
  c task kill -s SIGUSR1 "$id" || { echo "FAIL: ctr task kill exited $?"; kill "$run_pid"; return 1; }
  wait "$run_pid"
  rc=$?
  expect_eq "exit status after SIGUSR1" 42 "$rc"
}

case_pause_resume() {
  local id=ce-pause log="$T/pause.out" n
  # The task counts on stdout (to a log file): after resume the count goes on.
  crun_ -d --log-uri "file://$log" "$IMG" "$id" sh -c 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done' ||
    { echo "FAIL: ctr run -d exited $?"; return 1; }
  peers_poll 60 is_running "$id" || { echo "FAIL: task not running: [$(task_status "$id")]"; return 1; }
  c task pause "$id" || { echo "FAIL: ctr task pause exited $?"; return 1; }
  peers_poll 60 is_paused "$id" || { echo "FAIL: task state after pause: [$(task_status "$id")]"; return 1; }
  n=$(wc -l <"$log")
  echo "count when paused: $n; freezer state: $(freezer_state_of "$id")"
  c task resume "$id" || { echo "FAIL: ctr task resume exited $?"; return 1; }
  peers_poll 60 is_running "$id" || { echo "FAIL: task state after resume: [$(task_status "$id")]"; return 1; }
  peers_poll 60 sh -c "[ \$(wc -l <'$log') -gt $((n + 2)) ]" ||
    { echo "FAIL: the task did not go on counting after resume (still $(wc -l <"$log") lines)"; return 1; }
  echo "count after resume: $(wc -l <"$log")"
  c task kill -s SIGKILL "$id"
  peers_poll 60 is_stopped "$id" || { echo "FAIL: task state after kill: [$(task_status "$id")]"; return 1; }
  c task delete "$id" && c container delete "$id"
}

# freezer state of a task's cgroup (v1 freezer.state or v2 cgroup.freeze), for diagnostics.
freezer_state_of() {
  local pid rel
  pid=$(c task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $2}')
  rel=$(awk -F: '$2 == "freezer" {print $3}' "/proc/$pid/cgroup" 2>/dev/null)
  if [ -n "$rel" ]; then cat "/sys/fs/cgroup/freezer$rel/freezer.state" 2>&1
  else rel=$(awk -F: '$1 == 0 {print $3}' "/proc/$pid/cgroup" 2>/dev/null); cat "/sys/fs/cgroup$rel/cgroup.freeze" 2>&1; fi
}

case_tty() {
  local cmd out rc
  cmd="$(printf '%q ' ctr -a "$SOCK" -n "$NS" run --rm -t --runc-binary "$PEERS_RUNTIME_CMD" "$IMG" ce-tty \
    sh -c 'test -t 0 && echo tty0; test -t 1 && echo tty1; test -t 2 && echo tty2')"
  peers_cmd script -qec "$cmd" /dev/null </dev/null >"$T/tty.out"
  rc=$?
  out=$(peers_clean_output <"$T/tty.out")
  printf '%s\n' "$out"
  expect_eq "exit code" 0 "$rc" || return 1
  # A terminal may echo control characters (^@) around the output: only the
  # markers count.
  expect_eq "isatty inside the container" "tty0 tty1 tty2" "$(grep -o 'tty[012]' <<<"$out" | paste -sd ' ')"
}

# The memory cgroup file of a process, from its /proc/PID/cgroup (v1 or v2).
memory_limit_of_pid() {
  local pid=$1 rel root
  rel=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' "/proc/$pid/cgroup")
  if [ -n "$rel" ]; then
    root=$(awk '$3 == "cgroup" && $4 ~ /(^|,)memory(,|$)/ {print $2; exit}' /proc/self/mounts)
    cat "$root$rel/memory.limit_in_bytes"
  else
    rel=$(awk -F: '$1 == 0 {print $3}' "/proc/$pid/cgroup")
    root=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
    cat "$root$rel/memory.max"
  fi
}

case_memory_limit() {
  local id=ce-memlimit pid out
  crun_ -d --memory-limit 33554432 "$IMG" "$id" sleep 1000 || { echo "FAIL: ctr run -d exited $?"; return 1; }
  peers_poll 60 is_running "$id" || { echo "FAIL: task not running: [$(task_status "$id")]"; return 1; }
  pid=$(c task ls | awk -v id="$id" '$1 == id {print $2}')
  echo "task pid $pid, cgroups:"; cat "/proc/$pid/cgroup"
  out=$(memory_limit_of_pid "$pid")
  expect_eq "memory limit of the task's cgroup" 33554432 "$out" || return 1
  c task kill -s SIGKILL "$id"
  peers_poll 60 is_stopped "$id" || { echo "FAIL: task state after kill: [$(task_status "$id")]"; return 1; }
  c task delete "$id" && c container delete "$id"
}

case_oom() {
  local id=ce-oom out rc events_pid
  # containerd publishes /tasks/oom when the shim sees the OOM kill.
  c events >"$T/events.log" 2>&1 &
  events_pid=$!
  peers_capture out crun_ --rm --memory-limit 33554432 "$IMG" "$id" sh -c "$PEERS_OOM_CMD"
  rc=$?
  sleep 0.5
  kill "$events_pid" 2>/dev/null
  wait "$events_pid" 2>/dev/null
  echo "ctr run exit $rc, output [$out]"
  grep -F "$id" "$T/events.log" | sed 's/^/event: /'
  if [ "$out" = survived ] || [ "$rc" = 0 ]; then
    echo "FAIL: the allocation survived a 32 MiB memory limit"
    return 1
  fi
  expect_eq "exit code" 137 "$rc" || return 1
  grep -F /tasks/oom "$T/events.log" | grep -qF "$id" || echo "note: no /tasks/oom event for $id"
}

case_no_leftovers() {
  local left
  expect_eq "tasks left" "" "$(c task ls -q)" || return 1
  expect_eq "containers left" "" "$(c container ls -q)" || return 1
  expect_eq "cgroups left under /$NS" "" "$(for r in $(peers_cgroup_roots); do
    [ -d "$r/$NS" ] && find "$r/$NS" -mindepth 1 -type d; done)" || return 1
  left=$(peers_mounts_under "$T")
  expect_eq "mounts left under $T" "" "$left"
}

# ------------------------------------------------------------------ main

echo "# runtime version: $("$PEERS_RUNTIME" --version 2>&1 | head -1)"
if ! peers_build_image; then
  peers_fail "build busybox image"
  peers_done
fi
peers_ok "build busybox image"

if ! start_containerd >"$T/start.log" 2>&1; then
  peers_fail "start containerd"
  peers_diag "$T/start.log" 50
  peers_done
fi
peers_diag "$T/start.log" 10
peers_ok "start containerd"

peers_case "ctr images import docker-archive" case_import
if ! c images check 2>/dev/null | grep -F "$IMG" | grep -q complete; then
  peers_log "no image: skipping the remaining cases"
  peers_done
fi
peers_case "run --rm echo hello" case_run_echo
peers_case "exit code propagation (exit 3)" case_exit_code
peers_case "env and cwd" case_env_cwd
peers_case "detached run, kill, delete" case_detached_kill
peers_case "task exec (output, exit code)" case_exec
peers_case "task ps (runtime ps)" case_ps
peers_case "signal delivery and exit status (SIGUSR1 -> 42)" case_signal
peers_case "pause and resume" case_pause_resume
peers_case "tty (run -t under script)" case_tty
peers_case "memory limit set on the cgroup (--memory-limit 32 MiB)" case_memory_limit
peers_case "OOM kill under --memory-limit 32 MiB" case_oom
peers_case "no leftovers (tasks, containers, cgroups, mounts)" case_no_leftovers
[ "$PEERS_FAILED" = 0 ] || containerd_log_tail 40
peers_done
