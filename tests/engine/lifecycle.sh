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

# --- bug 1: a foreground run without -t passes signals on (podman's --sig-proxy)
# The client runs in the background here, where the shell has it ignore
# SIGINT: the proxy takes INT all the same, as podman does.
"$V" run --rm --name sigint$$ --network none $IMG sh -c "trap 'exit 8' INT; $LOOP" >"$T/int.out" 2>&1 &
pid=$! clients="$clients $!"
wait_for grep -q READY "$T/int.out"
kill -INT $pid
finished $pid; rc=$?
check "SIGINT to the client reaches the container: the client exits with its code (8)" eq $rc 8
check "... and the --rm container is gone" poll 30 gone sigint$$

"$V" run --rm --name sigmix$$ --network none $IMG \
  sh -c "trap 'echo GOT-USR1' USR1; trap 'echo GOT-HUP' HUP; trap 'exit 7' TERM; $LOOP" >"$T/mix.out" 2>&1 &
pid=$! clients="$clients $!"
wait_for grep -q READY "$T/mix.out"
kill -USR1 $pid
check "SIGUSR1 to the client reaches the container" poll 30 grep -q GOT-USR1 "$T/mix.out"
kill -HUP $pid
check "SIGHUP to the client reaches the container" poll 30 grep -q GOT-HUP "$T/mix.out"
kill -TERM $pid
finished $pid; rc=$?
check "SIGTERM to the client reaches the container: the client exits with its code (7), not 143" eq $rc 7
check "... and the container is not left running" poll 30 gone sigmix$$

# A client that cannot pass anything on (kill -9): its monitor stops the
# container (stop signal, then the stop timeout), and --rm removes it.
"$V" run --rm --name orphan$$ --network none $IMG sh -c "trap 'exit 0' TERM; $LOOP" >"$T/orphan.out" 2>&1 &
pid=$! clients="$clients $!"
wait_for grep -q READY "$T/orphan.out"
kill -KILL $pid
finished $pid 2>/dev/null
check "a client killed with -9: its foreground --rm container is stopped and removed, not orphaned" poll 30 gone orphan$$

# --sig-proxy=false: the client's signals stay its own (docker's and podman's
# flag); the container runs on without it.
"$V" run --sig-proxy=false --rm --name noproxy$$ --network none $IMG \
  sh -c "trap 'echo GOT-TERM' TERM; trap 'echo ALIVE' USR1; $LOOP" >"$T/noproxy.out" 2>&1 &
pid=$! clients="$clients $!"
wait_for grep -q READY "$T/noproxy.out"
kill -TERM $pid
finished $pid; rc=$?
check "--sig-proxy=false: SIGTERM ends the client itself (143)" eq $rc 143
# Two rounds of USR1 seen: a TERM passed on before them would have run its trap.
"$V" kill -s USR1 noproxy$$ >/dev/null
poll 30 bash -c "'$V' logs noproxy$$ | grep -q ALIVE"
"$V" kill -s USR1 noproxy$$ >/dev/null
check "... the container runs on" poll 30 bash -c "[ \$('$V' logs noproxy$$ | grep -c ALIVE) -ge 2 ]"
check "... and got no SIGTERM" bash -c "! '$V' logs noproxy$$ | grep -q GOT-TERM"
"$V" rm -f noproxy$$ >/dev/null 2>&1
check "run --help describes --sig-proxy" bash -c "'$V' run --help | grep -q -- --sig-proxy"

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

# --- bug 8 (volumes): a named volume new to the host is filled from the image
vol=lcvol$$
out=$("$V" run --rm --network none -v $vol:/etc $IMG cat /etc/passwd 2>&1)
check "a new named volume on /etc shows the image's /etc/passwd" bash -c "grep -q '^root:x:0:0' <<<'$out'"
data=$VITRO_ROOT/volumes/$vol/_data
check "... the copy is in the volume on the host" test -f "$data/passwd"
rm -f "$data/passwd"
check "a volume that exists is not filled again" \
  bash -c "! '$V' run --rm --network none -v $vol:/etc $IMG ls /etc | grep -qx passwd"
out=$("$V" run --rm --network none -v ${vol}b:/var/www:ro $IMG cat /var/www/index.html 2>&1)
check "a new read-only named volume is filled too" bash -c "grep -q 'hello from vitro' <<<'$out'"

# An image whose /data is a symlink to a host path (which the image has too,
# with other content): the copy resolves it inside the image's rootfs, never
# on the host.
mkdir -p "$T/secret" "$T/hostile/img" "$T/hostile/l2/${T#/}/secret" && echo host-only >"$T/secret/key"
echo image-side >"$T/hostile/l2/${T#/}/secret/key"
tar -xf "$T/bb.tar" -C "$T/hostile/img"
ln -s "$T/secret" "$T/hostile/l2/data"
tar --owner=0 --group=0 -C "$T/hostile/l2" -cf "$T/hostile/img/l2.tar" data "${T#/}"
python3 - "$T/hostile/img" <<'PY'
import hashlib, json, os, sys
d = sys.argv[1]
m = json.load(open(f"{d}/manifest.json"))
cfg = json.load(open(f"{d}/{m[0]['Config']}"))
l2 = hashlib.sha256(open(f"{d}/l2.tar", "rb").read()).hexdigest()
cfg["rootfs"]["diff_ids"].append("sha256:" + l2)
blob = json.dumps(cfg).encode()
name = hashlib.sha256(blob).hexdigest() + ".json"
open(f"{d}/{name}", "wb").write(blob)
os.remove(f"{d}/{m[0]['Config']}")
m[0].update(Config=name, RepoTags=["localhost/hostile:latest"], Layers=m[0]["Layers"] + ["l2.tar"])
json.dump(m, open(f"{d}/manifest.json", "w"))
PY
tar -C "$T/hostile/img" -cf "$T/hostile.tar" . && "$V" load -i "$T/hostile.tar" >/dev/null
out=$("$V" run --rm --network none -v hvol$$:/data localhost/hostile cat /data/key 2>&1)
check "a volume over an image's symlink to a host path shows the image's content there" eq "$out" image-side
check "... and the volume holds the image's file, not the host's" eq "$(cat "$VITRO_ROOT/volumes/hvol$$/_data/key")" image-side

tap_done
