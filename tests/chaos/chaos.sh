#!/usr/bin/env bash
# Chaos: random vitro commands for N minutes with kill -9 of the CLI, the
# per-container waiters (vitro-monitor) and the exporter at random moments,
# then checks that vitro's state agrees with the kernel and that nothing
# leaked. Not part of CI (it runs for minutes); any developer can run it:
#
#   tests/chaos/chaos.sh build/release/vitro [MINUTES=3] [SEED=$RANDOM]
#
# Runs in its own network namespace with every vitro path in a temp dir, so
# the machine's containers, bridges and iptables are untouched. Prints TAP
# and a summary of what it did; exits non-zero when a check fails. Root only.
set -uo pipefail
V=$(readlink -f "${1:?usage: chaos.sh PATH_TO_VITRO [MINUTES] [SEED]}")
minutes=${2:-3}
seed=${3:-$RANDOM}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/sandbox.sh"
sandbox chaos "$V" "$minutes" "$seed"
RANDOM=$seed
exporter_pid=""
cleanup() {
  [ -n "$exporter_pid" ] && kill -9 "$exporter_pid" 2>/dev/null
  sandbox_teardown
}
trap cleanup EXIT
. "$here/../lib/tap.sh"

sandbox_image
"$V" network create --subnet 10.231.0.0/24 chaosnet >/dev/null || { echo "Bail out! network create failed"; exit 1; }
PORT=9231
start_exporter() {
  "$V" monitor --listen 127.0.0.1:$PORT >"$T/exporter.log" 2>&1 &
  exporter_pid=$!
}
start_exporter

# Every id this run may have made, for the leak checks at the end.
ids_file=$T/ids
touch "$ids_file"
remember_ids() { "$V" ps -a --format '{{.Id}}' 2>/dev/null >>"$ids_file"; }

# A sentinel that no command targets: its waiter is killed with the others,
# and it must still run, with the same process, at the end.
sentinel=$("$V" run -d --name sentinel --network none $IMG sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done')
sentinel_pid=$("$V" inspect -f '{{.State.Pid}}' sentinel)

declare -A did=()
pick() { local a=("$@"); echo "${a[RANDOM % ${#a[@]}]}"; }
some_container() { "$V" ps -aq 2>/dev/null | grep -v "^${sentinel:0:12}" | shuf -n1 --random-source=<(yes "$RANDOM"); }
net_opt() { [ $((RANDOM % 3)) = 0 ] && echo "--network chaosnet" || echo "--network none"; }

# One random command, in the background; prints its pid.
random_command() {
  local c
  c=$(some_container)
  case $(pick run-d run-d run-rm run-restart stop rm start exec ps logs kill inspect) in
    run-d) "$V" run -d $(net_opt) $IMG sh -c 'trap "exit 0" TERM; while :; do echo tick; sleep 0.2; done' ;;
    run-rm) "$V" run --rm $(net_opt) $IMG sh -c 'sleep 0.$((RANDOM % 5)); echo done' ;;
    run-restart) "$V" run -d --restart on-failure:3 --network none $IMG sh -c 'sleep 0.3; exit 1' ;;
    stop) [ -n "$c" ] && "$V" stop -t 1 "$c" ;;
    rm) [ -n "$c" ] && "$V" rm -f "$c" ;;
    start) [ -n "$c" ] && "$V" start "$c" ;;
    exec) [ -n "$c" ] && "$V" exec "$c" true ;;
    ps) "$V" ps -a ;;
    logs) [ -n "$c" ] && "$V" logs --tail 3 "$c" ;;
    kill) [ -n "$c" ] && "$V" kill "$c" ;;
    inspect) [ -n "$c" ] && "$V" inspect "$c" ;;
  esac >/dev/null 2>&1 &
  echo $!
}

end=$((SECONDS + minutes * 60))
while [ $SECONDS -lt $end ]; do
  pid=$(random_command)
  did[commands]=$((${did[commands]:-0} + 1))
  sleep "0.$((RANDOM % 400))"
  case $((RANDOM % 6)) in
    0) kill -9 "$pid" 2>/dev/null && did[killed_cli]=$((${did[killed_cli]:-0} + 1)) ;;
    1) w=$(pgrep -x vitro-monitor | while read -r p; do grep -qa "$T" /proc/$p/environ /proc/$p/cmdline 2>/dev/null && echo $p; done | shuf -n1)
       [ -n "$w" ] && kill -9 "$w" 2>/dev/null && did[killed_waiter]=$((${did[killed_waiter]:-0} + 1)) ;;
    2) if [ $((RANDOM % 3)) = 0 ]; then
         kill -9 "$exporter_pid" 2>/dev/null; wait "$exporter_pid" 2>/dev/null
         did[killed_exporter]=$((${did[killed_exporter]:-0} + 1)); start_exporter
       fi ;;
  esac
  wait "$pid" 2>/dev/null
  remember_ids
done
echo "# seed $seed: $(for k in "${!did[@]}"; do printf '%s=%s ' "$k" "${did[$k]}"; done)"

# --- state against the kernel, while containers still run
sleep 2  # let restart policies and killed commands' leftovers settle
"$V" ps -a >/dev/null 2>&1  # any command repairs what crashed commands left
disagree=0
while read -r id state pid; do
  [ -z "$id" ] && continue
  alive=0; [ "$pid" -gt 0 ] 2>/dev/null && kill -0 "$pid" 2>/dev/null && alive=1
  if [ "$state" = running ] && [ $alive = 0 ]; then echo "# $id: shown running, pid $pid is gone"; disagree=1; fi
  if [ "$state" != running ] && [ $alive = 1 ] && [ "$pid" -gt 0 ]; then echo "# $id: shown $state, pid $pid lives"; disagree=1; fi
done < <("$V" ps -a --format '{{.Id}} {{.State}} {{.Pid}}' 2>/dev/null)
check "every container's state agrees with its process" eq $disagree 0
check "the sentinel runs on, with the same process, whatever its waiters met" \
  eq "$("$V" inspect -f '{{.State.Status}} {{.State.Pid}}' sentinel 2>&1)" "running $sentinel_pid"
check "the exporter serves /metrics after its kills" poll 30 bash -c "curl -sf http://127.0.0.1:$PORT/metrics | grep -q '^container_'"

# Processes in a cgroup named after one of our ids that vitro does not know.
known=$("$V" ps -a --format '{{.Id}}' 2>/dev/null)
orphans=0
for id in $(sort -u "$ids_file"); do
  grep -qx "$id" <<<"$known" && continue
  for d in /sys/fs/cgroup/*/vitro/"$id" /sys/fs/cgroup/vitro/"$id"; do
    [ -e "$d/cgroup.procs" ] && [ -s "$d/cgroup.procs" ] && { echo "# orphan processes in $d"; orphans=1; }
  done
done
check "no process runs in a container vitro has forgotten" eq $orphans 0

# --- remove everything, then nothing may be left
"$V" rm -f $("$V" ps -aq) >/dev/null 2>&1
remember_ids
check "rm -f of every container leaves none" eq "$("$V" ps -aq | wc -l)" 0
leaked_cg=""
for id in $(sort -u "$ids_file"); do
  for d in /sys/fs/cgroup/*/vitro/"$id" /sys/fs/cgroup/vitro/"$id"; do [ -d "$d" ] && leaked_cg="$leaked_cg $d"; done
done
check "no cgroup left${leaked_cg:+:$leaked_cg}" eq "$leaked_cg" ""
check "no mount left under the temp dir" eq "$(grep -c " $T/" /proc/self/mountinfo)" 0
check "no veth left" eq "$(ip -o link show type veth | wc -l)" 0
waiters=$(pgrep -x vitro-monitor | while read -r p; do grep -qa "$T" /proc/$p/environ /proc/$p/cmdline 2>/dev/null && echo $p; done)
check "no waiter left${waiters:+: $waiters}" eq "$waiters" ""
check "no temp blob left" eq "$(find "$VITRO_ROOT" -path '*/tmp/*' -name 'blob-*' 2>/dev/null | wc -l)" 0
check "network rm works after the chaos" "$V" network rm chaosnet
tap_done
