#!/usr/bin/env bash
# The container commands podman has beside start/stop, through the real vitro
# binary: restart (running, exited, ignoring its stop signal, --rm kept),
# pause/unpause (the processes really frozen: a counter that stops while a
# reference loop on the host goes on, and goes on again after unpause; exec,
# stop and rm -f of a paused container), rename, port. Outputs, states and
# exit codes as podman's. In its own network namespace, every vitro path in a
# temp dir. TAP. Root only.
# usage: container-cmds.sh PATH_TO_VITRO
set -uo pipefail
V=$(readlink -f "${1:?usage: container-cmds.sh PATH_TO_VITRO}")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/sandbox.sh"
sandbox container-cmds-test "$V"
helpers=""
cleanup() {
  for p in $helpers; do kill "$p" 2>/dev/null; done
  sandbox_teardown
}
trap cleanup EXIT
. "$here/../lib/tap.sh"
sandbox_image

state() { "$V" inspect -f '{{.State.Status}}' "$1" 2>&1; }
pid_of() { "$V" inspect -f '{{.State.Pid}}' "$1" 2>&1; }
is_state() { [ "$(state "$1")" = "$2" ]; }
# run CMD... : stdout in $out, stderr in $err, exit status in $rc.
run() { out=$("$@" 2>"$T/err"); rc=$?; err=$(cat "$T/err"); }
# The container prints READY (its logs) once its traps are set.
LOOP='echo READY; while :; do sleep .1; done'
ready_count() { "$V" logs "$1" 2>/dev/null | grep -c READY; }
ready_at_least() { [ "$(ready_count "$1")" -ge "$2" ]; }

# --- restart
"$V" run -d --name rs$$ --network none $IMG sh -c "trap '' TERM; $LOOP" >/dev/null
wait_for ready_at_least rs$$ 1
old=$(pid_of rs$$)
run "$V" restart -t 1 rs$$
check "restart of a running container that ignores its stop signal (-t 1: SIGKILL) exits 0" eq "$rc" 0
check "... and prints its name as given" eq "$out" rs$$
check "... it runs again, with a new init" bash -c "[ '$(state rs$$)' = running ] && [ '$(pid_of rs$$)' != '$old' ]"
check "... which started afresh (READY twice in its logs)" poll 30 ready_at_least rs$$ 2

"$V" run -d --name rx$$ --network none $IMG echo RAN >/dev/null
wait_for is_state rx$$ exited
run "$V" restart rx$$
check "restart of an exited container exits 0 and names it" bash -c "[ $rc = 0 ] && [ '$out' = rx$$ ]"
check "... and runs it again" poll 30 bash -c "[ \$('$V' logs rx$$ | grep -c RAN) = 2 ]"

"$V" run -d --rm --name rrm$$ --network none $IMG sh -c "trap 'exit 0' TERM; $LOOP" >/dev/null
wait_for ready_at_least rrm$$ 1
old=$(pid_of rrm$$)
run "$V" restart rrm$$
check "restart of a --rm container exits 0 (its monitor does not remove it in between)" eq "$rc" 0
check "... it runs again with a new init, not removed" \
  bash -c "[ '$(state rrm$$)' = running ] && [ '$(pid_of rrm$$)' != '$old' ]"
"$V" stop rrm$$ >/dev/null
check "... and once stopped, --rm removes it" poll 30 bash -c "! '$V' inspect rrm$$ >/dev/null 2>&1"

# A restart killed while it waits for the stop: the container's exit is no
# longer anyone's to start, and --rm removes it.
"$V" run -d --rm --name rk$$ --network none $IMG sh -c "trap 'echo GOT-TERM' TERM; $LOOP" >/dev/null
wait_for ready_at_least rk$$ 1
"$V" restart -t 60 rk$$ >/dev/null 2>&1 &
client=$! helpers="$helpers $!"
wait_for bash -c "'$V' logs rk$$ | grep -q GOT-TERM"
kill -9 $client; wait $client 2>/dev/null
"$V" kill rk$$ >/dev/null
check "a restart killed during its stop leaves no --rm container behind once it exits" \
  poll 30 bash -c "! '$V' inspect rk$$ >/dev/null 2>&1"

run "$V" restart nosuch$$
check "restart of an unknown container exits 125" eq "$rc" 125
check "... saying so" grep -q "no container with name or ID \"nosuch$$\" found" "$T/err"

# --- pause / unpause
# The container counts in a file on the host; a host loop counts beside it
# (the reference: while it goes on, a frozen counter must stay).
mkdir -p "$T/cnt"
"$V" run -d --name pz$$ --network none -v "$T/cnt:/cnt" $IMG \
  sh -c "trap 'exit 3' TERM; i=0; while :; do i=\$((i+1)); echo \$i >/cnt/n; sleep .05; done" >/dev/null
( i=0; while :; do i=$((i+1)); echo $i >"$T/ref"; sleep .05; done ) &
helpers="$helpers $!"
count() { cat "$1" 2>/dev/null || echo 0; }
advanced() { [ "$(count "$1")" -gt "$2" ]; }
wait_for advanced "$T/cnt/n" 2
run "$V" pause pz$$
check "pause exits 0 and prints the name" bash -c "[ $rc = 0 ] && [ '$out' = pz$$ ]"
check "inspect: .State.Status paused" eq "$(state pz$$)" paused
check "... .State.Paused true, .State.Running false" \
  eq "$("$V" inspect -f '{{.State.Paused}} {{.State.Running}}' pz$$)" "true false"
check "ps -a: STATUS Paused, State paused" \
  eq "$("$V" ps -a --format '{{.Names}} {{.Status}} {{.State}}' | grep pz$$)" "[\"pz$$\"] Paused paused"
short=$("$V" inspect -f '{{.Id}}' pz$$ | cut -c1-12)
check "ps without -a leaves a paused container out (as podman's)" bash -c "! '$V' ps -q | grep -qx '$short'"
# The counter after the freeze took hold: a write under way may land once.
a=$(count "$T/cnt/n"); r=$(count "$T/ref")
wait_for advanced "$T/ref" $((r + 10))
b=$(count "$T/cnt/n"); r=$(count "$T/ref")
wait_for advanced "$T/ref" $((r + 10))
c=$(count "$T/cnt/n")
check "a paused container's processes are frozen: its counter stays while the host's goes 20 on" \
  bash -c "[ '$b' = '$c' ] && [ \$(( $b - $a )) -le 1 ]"
run "$V" exec pz$$ true
check "exec in a paused container exits 125" eq "$rc" 125
check "... saying it is paused" grep -q paused "$T/err"
run "$V" pause pz$$
check "pause of a paused container exits 125" eq "$rc" 125
run "$V" unpause pz$$
check "unpause exits 0 and prints the name" bash -c "[ $rc = 0 ] && [ '$out' = pz$$ ]"
check "... the counter goes on" poll 30 advanced "$T/cnt/n" "$c"
check "... and it is running" eq "$(state pz$$)" running
run "$V" unpause pz$$
check "unpause of a running container exits 125" eq "$rc" 125
check "... saying it is not paused" grep -q "not paused" "$T/err"
check "pause --help describes it" bash -c "'$V' pause --help | grep -q freeze"
check "unpause --help describes it" bash -c "'$V' unpause --help | grep -q thaw"
check "restart --help has -t, --time" bash -c "'$V' restart --help | grep -q -- '--time'"

# stop of a paused container: thawed, and its stop signal reaches it (exit 3, not SIGKILL's 137).
"$V" pause pz$$ >/dev/null
run "$V" stop -t 20 pz$$
check "stop of a paused container exits 0" eq "$rc" 0
check "... its stop signal reached it (exit code 3)" \
  eq "$("$V" inspect -f '{{.State.Status}} {{.State.ExitCode}}' pz$$)" "exited 3"
run "$V" pause pz$$
check "pause of a stopped container exits 125" eq "$rc" 125
check "... saying it is not running" grep -q "not running" "$T/err"
run "$V" restart pz$$
check "restart of a container that was paused runs it, not paused" \
  bash -c "[ $rc = 0 ] && [ '$(state pz$$)' = running ]"
"$V" pause pz$$ >/dev/null
run "$V" rm -f pz$$
check "rm -f of a paused container exits 0" eq "$rc" 0
check "... and it is gone" bash -c "! '$V' inspect pz$$ >/dev/null 2>&1"

# --- rename
"$V" run -d --name rn1$$ --network none $IMG sh -c "$LOOP" >/dev/null
"$V" create --name taken$$ --network none $IMG true >/dev/null
id=$("$V" inspect -f '{{.Id}}' rn1$$)
run "$V" rename rn1$$ rn2$$
check "rename of a running container exits 0, printing nothing" bash -c "[ $rc = 0 ] && [ -z '$out' ]"
check "... the new name finds it, running" eq "$("$V" inspect -f '{{.Id}} {{.Name}} {{.State.Status}}' rn2$$)" "$id rn2$$ running"
check "... the old name is gone" bash -c "! '$V' inspect rn1$$ >/dev/null 2>&1"
check "... and the old name can be used again" bash -c "'$V' create --name rn1$$ --network none $IMG true >/dev/null"
run "$V" rename rn2$$ taken$$
check "rename to a name in use exits 125" eq "$rc" 125
check "... saying the name is in use" grep -q "\"taken$$\" is already in use" "$T/err"
run "$V" rename rn2$$ 'bad/name'
check "rename to an invalid name exits 125, naming it" \
  bash -c "[ $rc = 125 ] && grep -q 'invalid container name \"bad/name\"' '$T/err'"
check "... and the container keeps its name" eq "$("$V" inspect -f '{{.Name}}' $id)" rn2$$
run "$V" rename nosuch$$ x$$
check "rename of an unknown container exits 125" eq "$rc" 125

# --- port
"$V" run -d --name pt$$ -p 18080:80 -p 127.0.0.1:18081:81/udp $IMG sleep 1000 >/dev/null
run "$V" port pt$$
check "port lists the published ports as podman's" eq "$out" "80/tcp -> 0.0.0.0:18080
81/udp -> 127.0.0.1:18081"
check "port CTR 80: the host address of 80/tcp" eq "$("$V" port pt$$ 80)" 0.0.0.0:18080
check "port CTR 81/udp" eq "$("$V" port pt$$ 81/udp)" 127.0.0.1:18081
run "$V" port pt$$ 81
check "port CTR 81 (tcp, not published) exits 125" \
  bash -c "[ $rc = 125 ] && grep -q 'failed to find published port \"81\"' '$T/err'"
run "$V" port pt$$ 80/xyz
check "port with a bad protocol exits 125" eq "$rc" 125
short=$("$V" inspect -f '{{.Id}}' pt$$ | cut -c1-12)
run "$V" port -a
check "port -a: each running container's ports after its short ID" \
  bash -c "grep -qx '$short	80/tcp -> 0.0.0.0:18080' <<<'$out' && [ \$(wc -l <<<'$out') = 2 ]"
run "$V" port rn2$$
check "port of a container without published ports prints nothing, exit 0" bash -c "[ $rc = 0 ] && [ -z '$out' ]"
run "$V" port -a pt$$
check "port -a with a container exits 125" eq "$rc" 125
run "$V" port
check "port without a container exits 125" eq "$rc" 125
# --- -a
running_ids() { "$V" ps -q | sort; }
before=$(running_ids)
run "$V" pause -a
check "pause -a pauses every running container, printing their IDs" \
  bash -c "[ $rc = 0 ] && [ -n '$before' ] && [ \"\$(cut -c1-12 <<<'$out' | sort)\" = '$before' ] && [ -z \"\$('$V' ps -q)\" ]"
run "$V" unpause -a
check "unpause -a thaws them all" bash -c "[ $rc = 0 ] && [ '$(running_ids)' = '$before' ]"
run "$V" pause -a pt$$
check "pause -a with a name exits 125" eq "$rc" 125
run "$V" restart --running pt$$
check "restart --running without -a exits 125" eq "$rc" 125
check "port --help describes PRIVATE_PORT" bash -c "'$V' port --help | grep -q PRIVATE_PORT"
check "rename --help describes it" bash -c "'$V' rename --help | grep -q NEW_NAME"

tap_done
