#!/usr/bin/env bash
# The engine's state and lifecycle under damage and crashes, through the real
# vitro binary: a state database truncated, scribbled over or replaced (refused;
# `vitro system check` reports the containers, `vitro system repair` brings them
# back), a monitor killed (the container runs on and is adopted), commands
# killed at random points (nothing leaks), and a state file system that fills
# up (stop and rm -f still work). In its own network namespace, every vitro
# path in a temp dir. TAP. Root only.
# usage: state.sh PATH_TO_VITRO   (VITRO_CRASH_TRIALS=N: trials per crash test, default 30)
set -uo pipefail
V=$(readlink -f "${1:?usage: state.sh PATH_TO_VITRO}")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/sandbox.sh"
sandbox state-test "$V"
TRIALS=${VITRO_CRASH_TRIALS:-30}
cleanup() {
  for r in "$T/root" "$T/full"; do VITRO_ROOT=$r "$V" rm -f $(VITRO_ROOT=$r "$V" ps -aq 2>/dev/null) >/dev/null 2>&1; done
  umount -R "$T" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
. "$here/../lib/tap.sh"
sandbox_image
DB=$VITRO_ROOT/vitro.db

# What a container can leave behind: its cgroups, processes (in its cgroup or
# a monitor naming it), mounts, netns pin, directory, row. Prints one line per leak.
leaks_of() {
  local id=$1
  ls -d /sys/fs/cgroup/*/vitro/$id /sys/fs/cgroup/*/vitro/*/$id 2>/dev/null | sed 's/^/cgroup /'
  # Not a zombie of pid 1: reaping orphans is init's job (this sandbox's pid 1 does not).
  grep -l "[${id:0:1}]${id:1}" /proc/[0-9]*/cgroup /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 | while read -r p; do
    grep -q '^State:.Z' /proc/$p/status 2>/dev/null && grep -q '^PPid:.1$' /proc/$p/status && continue
    echo "process $p"
  done
  grep -F "$id" /proc/self/mountinfo | sed 's/^/mount /'
  [ -e "$VITRO_RUNROOT/netns/$id" ] && echo "netns $id"
  [ -e "$VITRO_ROOT/containers/$id" ] && echo "dir $id"
  [ "$(sqlite3 "$DB" "select count(*) from containers where id = '$id'" 2>/dev/null)" = 0 ] || echo "row $id"
}

# --- (5) the database lost, emptied, damaged or replaced
ids=""
for i in 1 2 3; do ids="$ids $("$V" run -d --name keep$i --network none $IMG sleep 1000)"; done
# 33 commands (the issue's count): the WAL passes its checkpoint size.
for i in $(seq 15); do "$V" run --rm --network none $IMG true; "$V" ps -a >/dev/null; done
check "the database file holds the state, not only the WAL (a copy without its WAL lists the containers)" \
  bash -c "cp '$DB' '$T/copy.db' && [ \"\$(sqlite3 '$T/copy.db' \"select count(*) from containers where name like 'keep%'\")\" = 3 ]"
check "the WAL stays small (under 400 KiB)" bash -c "[ \$(stat -c %s '$DB-wal') -lt 409600 ]"
lost_test() {  # NAME DAMAGE-COMMAND EXPECTED-MESSAGE
  local name=$1 damage=$2 msg=$3
  bash -c "$damage"
  "$V" ps -a >/dev/null 2>"$T/err"; local rc=$?
  check "$name: ps refuses (exit 125) instead of listing nothing" eq $rc 125
  check "... saying why: $msg" grep -q -- "$msg" "$T/err"
  "$V" run -d --network none $IMG true >/dev/null 2>&1
  check "... and run refuses too (nothing overwritten)" eq $? 125
  "$V" system check >"$T/out" 2>&1; rc=$?
  check "... system check exits 1 and lists the 3 running containers" \
    bash -c "[ $rc = 1 ] && [ \$(grep -c 'keep[123]: running (init' '$T/out') = 3 ]"
  "$V" system repair >"$T/out" 2>&1
  check "... system repair restores them" bash -c "grep -q '3 container(s) restored' '$T/out'"
  check "... ps lists them running again" eq "$("$V" ps --format '{{.Names}} {{.State}}' | tr -d '[]"' | sort | tr '\n' ' ')" \
    "keep1 running keep2 running keep3 running "
  check "... and system check finds nothing" "$V" system check
}
lost_test "vitro.db truncated to 0 bytes" "truncate -s 0 '$DB'" "is empty, but beside it are"
lost_test "vitro.db deleted" "rm -f '$DB'" "is missing, but beside it are"
lost_test "4 KiB of garbage over the WAL" "'$V' ps >/dev/null; head -c 4096 /dev/urandom | dd of='$DB-wal' conv=notrunc status=none" \
  "is damaged"
lost_test "vitro.db replaced by another program's database" \
  "rm -f '$DB' '$DB-wal' '$DB-shm'; sqlite3 '$DB' 'create table accounts (id int)'" "is not vitro's"
lost_test "vitro.db replaced by garbage" "rm -f '$DB' '$DB-wal' '$DB-shm'; head -c 8192 /dev/urandom > '$DB'" \
  "not an SQLite database"
# Rows lost but the database sound (an old copy put back): ps warns, run refuses.
sqlite3 "$DB" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null; cp "$DB" "$T/three.db"
"$V" run -d --name keep4 --network none $IMG sleep 1000 >/dev/null
rm -f "$DB-wal" "$DB-shm"; cp "$T/three.db" "$DB"
"$V" ps >"$T/out" 2>"$T/err"
check "an old database put back: ps warns of the container it does not know" grep -q 'does not know 1 container' "$T/err"
"$V" system repair >/dev/null 2>&1
check "... and repair brings it back" eq "$("$V" inspect -f '{{.State.Running}}' keep4)" true
"$V" rm -f keep1 keep2 keep3 keep4 >/dev/null
check "a fresh root is still created without a word" env VITRO_ROOT=$T/fresh "$V" ps -a

# --- (8) the monitor killed: the container runs on, adopted
M=$(dirname "$V")/vitro-monitor
check "vitro-monitor refuses an --init-start that is not a number (exit 2)" bash -c \
  "timeout 10 '$M' --adopt --init 1 --init-start 12x --notify 2 --log '$T/m.log' -- /bin/true 2>/dev/null; [ \$? = 2 ]"
check "... and a --log-max-file of 0 (1 to 1000, as --log-opt)" bash -c \
  "timeout 10 '$M' --init 1 --log '$T/m.log' --log-max-file 0 -- /bin/true 2>/dev/null; [ \$? = 2 ]"
"$V" run -d --name orphan --restart on-failure --network none $IMG \
  sh -c 'trap "exit 7" TERM; trap "" PIPE; i=0; while :; do i=$((i+1)); echo line$i; sleep 0.1; done' >/dev/null
mon=$("$V" inspect -f '{{.State.MonitorPid}}' orphan); init=$("$V" inspect -f '{{.State.Pid}}' orphan)
kill -9 "$mon"; poll 5 bash -c "! kill -0 $mon 2>/dev/null"
check "monitor killed: ps shows the container running" bash -c "'$V' ps --format '{{.Names}} {{.State}}' | grep -q 'orphan.* running'"
check "... its init is the same process" bash -c "kill -0 $init && [ \"\$('$V' inspect -f '{{.State.Pid}}' orphan)\" = $init ]"
new=$("$V" inspect -f '{{.State.MonitorPid}}' orphan)
check "... a new monitor adopted it" bash -c "[ '$new' != '$mon' ] && [ \"\$(cat /proc/$new/comm)\" = vitro-monitor ]"
check "... recorded with its start time (a reused pid does not pass for it)" \
  eq "$(sqlite3 "$DB" "select pid_start_time from containers where name = 'orphan'")" "$(awk '{print $22}' /proc/$new/stat)"
n1=$("$V" logs orphan 2>/dev/null | wc -l)
check "... and its output reaches the log again" poll 10 bash -c "[ \$('$V' logs orphan 2>/dev/null | wc -l) -gt $((n1 + 3)) ]"
# A group stop and its end, seen by the tracing monitor: the container runs on.
kill -STOP "$init"; poll 5 grep -q '^State:.[tT]' /proc/$init/status; kill -CONT "$init"
n1=$("$V" logs orphan 2>/dev/null | wc -l)
check "... kill -STOP then -CONT of its init: it runs on (its output reaches the log)" \
  poll 10 bash -c "[ \$('$V' logs orphan 2>/dev/null | wc -l) -gt $((n1 + 3)) ]"
check "... and it answers exec" eq "$("$V" exec orphan echo hi 2>&1)" hi
# An adopter that fails (its log cannot be opened) records no exit: the
# container runs on, and a later command adopts it.
log=$VITRO_ROOT/containers/$("$V" inspect -f '{{.Id}}' orphan)/ctr.log
mv "$log" "$T/ctr.log"; mkdir "$log"
mon=$("$V" inspect -f '{{.State.MonitorPid}}' orphan)
kill -9 "$mon"; poll 5 bash -c "! kill -0 $mon 2>/dev/null"
"$V" ps >/dev/null 2>"$T/err"
check "an adopter that fails says so" grep -q 'could not take it over' "$T/err"
check "... and the container runs on, no exit recorded" \
  bash -c "kill -0 $init && [ \"\$('$V' inspect -f '{{.State.Status}} {{.State.Pid}}' orphan)\" = 'running $init' ]"
rmdir "$log"; mv "$T/ctr.log" "$log"; "$V" ps >/dev/null
check "... the next command adopts it" \
  bash -c "m=\$('$V' inspect -f '{{.State.MonitorPid}}' orphan); [ \"\$(cat /proc/\$m/comm)\" = vitro-monitor ]"
"$V" stop -t 5 orphan >/dev/null
check "... stop records the real exit code (7 from its TERM trap)" \
  eq "$("$V" inspect -f '{{.State.Status}} {{.State.ExitCode}}' orphan)" "exited 7"
"$V" start orphan >/dev/null
mon=$("$V" inspect -f '{{.State.MonitorPid}}' orphan); init=$("$V" inspect -f '{{.State.Pid}}' orphan)
kill -9 "$mon"; "$V" ps >/dev/null; kill -9 "$init"
check "... the restart policy still applies to an adopted container (killed: restarted)" \
  poll 20 bash -c "[ \"\$('$V' inspect -f '{{.State.RestartCount}} {{.State.Running}}' orphan)\" = '1 true' ]"
"$V" rm -f orphan >/dev/null
# One orphan that cannot be adopted (its directory moved away) fails no command.
"$V" run -d --name stray --network none $IMG sleep 1000 >/dev/null
dir=$VITRO_ROOT/containers/$("$V" inspect -f '{{.Id}}' stray); mon=$("$V" inspect -f '{{.State.MonitorPid}}' stray)
kill -9 "$mon"; poll 5 bash -c "! kill -0 $mon 2>/dev/null"; mv "$dir" "$T/stray"
"$V" ps -a >/dev/null 2>"$T/err"; rc=$?
check "an orphan that cannot be adopted: ps still works (exit 0)" eq $rc 0
check "... and warns, naming it" grep -q 'container stray: its monitor died' "$T/err"
mv "$T/stray" "$dir"; "$V" rm -f stray >/dev/null

# --- (8, 10) crash trials: kill -9 at random points, then count leaks
total=0
for i in $(seq "$TRIALS"); do
  "$V" run -d --network none $IMG sleep 1000 >"$T/id" 2>/dev/null &
  cli=$!
  sleep "0.$((RANDOM % 300))"
  # The waiter: whichever monitor of this root is there now.
  for p in $(grep -l "$T/root" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
    [ "$p" != $$ ] && [ "$p" != "$cli" ] && [ "$(cat /proc/$p/comm 2>/dev/null)" = vitro-monitor ] && kill -9 "$p"
  done
  wait $cli 2>/dev/null
  for id in $("$V" ps -aq 2>/dev/null | xargs -r "$V" inspect -f '{{.Id}}'); do
    "$V" rm -f "$id" >/dev/null 2>&1
    total=$((total + $(leaks_of "$id" | tee -a "$T/leaks" | wc -l)))
  done
done
check "kill -9 of the monitor during or after run -d, then rm -f: nothing leaks ($TRIALS trials)" eq "$total" 0
[ -s "$T/leaks" ] && sed 's/^/#   /' "$T/leaks" | head

total=0; left=0
for i in $(seq "$TRIALS"); do
  "$V" run --rm --network none $IMG true >/dev/null 2>&1 &
  cli=$!
  sleep "0.$((RANDOM % 200))"
  kill -9 $cli 2>/dev/null; wait $cli 2>/dev/null
done
poll 30 bash -c "[ -z \"\$('$V' ps -aq 2>/dev/null)\" ]"
left=$("$V" ps -aq | wc -l)
check "kill -9 of run --rm at random points: no container is left ($TRIALS trials)" eq "$left" 0
check "... and no container directory" eq "$(ls "$VITRO_ROOT/containers" | wc -l)" 0
for id in $(sqlite3 "$DB" "select id from containers"); do  # what was left, to tell why
  sqlite3 "$DB" "select id, state, pid, owner_pid, finished_at from containers where id = '$id'" | sed 's/^/#   left: /'
  tail -3 "$VITRO_ROOT/containers/$id/monitor.log" 2>/dev/null | sed 's/^/#   /'
done

fails=0
for i in $(seq "$TRIALS"); do
  "$V" run -d --name crashed$i $IMG sleep 1000 >/dev/null 2>&1 &
  cli=$!
  sleep "0.$((RANDOM % 300))"
  kill -9 $cli 2>/dev/null; wait $cli 2>/dev/null
  if "$V" inspect crashed$i >/dev/null 2>&1 && ! "$V" start crashed$i >/dev/null 2>"$T/err"; then
    fails=$((fails + 1)); sed 's/^/#   /' "$T/err"
  fi
  "$V" rm -f crashed$i >/dev/null 2>&1
done
check "start after a run -d killed at a random point succeeds ($TRIALS trials)" eq "$fails" 0

# --- (7) a full state file system: stop and rm -f still work
mkdir -p "$T/full"; mount -t tmpfs -o size=24m tmpfs "$T/full"
export VITRO_ROOT=$T/full DB=$T/full/vitro.db
"$V" load -i "$T/bb.tar" >/dev/null
# It fills once told to (/go), after its start has been recorded: filled
# while the engine still wrote the start, the engine's reserve was given up
# then and the file system was no longer full when stop came (a flaky check).
"$V" run -d --name filler --network none $IMG sh -c 'until [ -e /go ]; do sleep 0.1; done; dd if=/dev/zero of=/fill bs=64k 2>/dev/null; sleep 1000' >/dev/null
"$V" exec filler touch /go
check "the container fills the file system" poll 20 bash -c "[ \$(df --output=avail '$T/full' | tail -1) -lt 64 ]"
"$V" stop -t 1 filler >/dev/null 2>"$T/err"; rc=$?; sed 's/^/#   /' "$T/err"
check "stop works on a full state file system" bash -c "[ $rc = 0 ] && [ \"\$('$V' inspect -f '{{.State.Status}}' filler)\" = exited ]"
"$V" start filler >/dev/null 2>&1
"$V" rm -f filler >/dev/null 2>"$T/err"; rc=$?; sed 's/^/#   /' "$T/err"
check "rm -f works on a full state file system" bash -c "[ $rc = 0 ] && [ -z \"\$('$V' ps -aq)\" ]"
umount "$T/full"
tap_done
