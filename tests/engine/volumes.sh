#!/usr/bin/env bash
# Named volumes through the real vitro binary: volume create/ls/inspect/rm/prune
# with podman's output and exit codes (rm: 1 no such volume, 2 in use), a
# created volume is what `run -v NAME:/path` mounts (filled from the image on
# first use unless -o nocopy), data outlives containers, a volume in use is
# refused unless -f (which removes its containers), `system prune --volumes`,
# removals racing container creation, and nothing left behind. In its own
# network namespace, every vitro path in a temp dir. TAP. Root only.
# usage: volumes.sh PATH_TO_VITRO
set -uo pipefail
V=$(readlink -f "${1:?usage: volumes.sh PATH_TO_VITRO}")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/sandbox.sh"
sandbox volumes-test "$V"
trap sandbox_teardown EXIT
. "$here/../lib/tap.sh"
sandbox_image

VOLS=$VITRO_ROOT/volumes
# vr ARGS...: runs vitro, stdout in $out, stderr in $err, exit status in $rc.
vr() { out=$("$V" "$@" 2>"$T/err"); rc=$?; err=$(cat "$T/err"); }
has() { grep -q -- "$2" <<<"$1" || { echo "#   [$1] lacks [$2]" >&2; return 1; }; }
# failed CODE TEXT: the last vr exited CODE with TEXT (fixed string) on stderr.
failed() { eq "$rc" "$1" && grep -qF -- "$2" <<<"$err" || { echo "#   stderr [$err] lacks [$2]" >&2; return 1; }; }
# jq-less JSON: python3 -c EXPR on the parsed $out as `j`.
js() { python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$out"; }

# --- create
a=va$$
vr volume create $a
check "volume create NAME prints the name, exit 0" eq "$rc:$out" "0:$a"
check "... and makes <root>/volumes/NAME/_data" test -d "$VOLS/$a/_data"
vr volume create $a
check "an existing name: exit 125" eq $rc 125
check "... saying it exists" has "$err" "volume with name $a already exists"
vr volume create --ignore $a
check "--ignore: an existing name is fine (exit 0, name printed)" eq "$rc:$out" "0:$a"
for bad in _bad$$ 'a b' 'x/y'; do
  vr volume create "$bad"
  check "bad name [$bad]: exit 125 naming it" failed 125 "\"$bad\""
done
check "... and nothing made for them" eq "$(ls -A "$VOLS" | grep -cv "^$a\$")" 0
vr volume create --driver nfs nd$$
check "--driver other than local: exit 125 naming it" failed 125 '"nfs"'
vr volume create -o type=tmpfs od$$
check "-o type=tmpfs: refused, exit 125" failed 125 'volume option "type=tmpfs" is not supported'
vr volume create -o bogus=1 od$$
check "-o unknown: refused, exit 125 naming it" failed 125 'unrecognized volume option "bogus=1"'
check "... and no volume made for refused options" test ! -e "$VOLS/od$$"
vr volume create
anon=$out
check "volume create without a name prints a random 64-hex name" bash -c "[ $rc = 0 ] && [[ '$anon' =~ ^[0-9a-f]{64}$ ]]"
vr volume create -o uid=1234 --gid 55 own$$
check "-o uid=N / --gid N: the volume's root is owned by them" eq "$(stat -c %u:%g "$VOLS/own$$/_data")" 1234:55
vr volume create -o uid=x own2$$
check "-o uid=NOT-A-NUMBER: exit 125" failed 125 'invalid volume option "uid=x"'
vr volume rm own$$
b=vb$$
vr volume create --label app=db --label tier=1 $b
check "volume create --label" eq "$rc:$out" "0:$b"

# --- ls
vr volume ls
check "volume ls: podman's header and columns" eq "$(head -1 <<<"$out")" "DRIVER      VOLUME NAME"
check "... a row per volume" eq "$(grep -c '^local       ' <<<"$out")" 3
check "... naming it" has "$out" "^local       $b\$"
vr volume ls -q
check "volume ls -q: names only, sorted" eq "$out" "$(printf '%s\n' $a $anon $b | LC_ALL=C sort)"
vr volume ls --format '{{.Name}} {{.Driver}}' --filter label=app=db
check "volume ls --filter label=K=V --format template" eq "$out" "$b local"
vr volume ls --filter label=app --filter name=^va -q
check "different filter keys narrow" eq "$out" ""
vr volume ls --filter name=^va --filter name=^vb -q
check "the same filter key widens" eq "$out" "$(printf '%s\n%s' $a $b)"
vr volume ls --format json
check "volume ls --format json: an array of the volumes" eq "$(js 'len(j)')" 3
vr volume ls --filter bogus=1
check "volume ls --filter unknown: exit 125" eq $rc 125
vr volume ls -q --format json
check "volume ls -q with --format: exit 125" eq $rc 125

# --- inspect
vr volume inspect $b
check "volume inspect: podman's fields" eq "$(js '",".join(k for k in ["Name","Driver","Mountpoint","CreatedAt","Labels","Scope","Options"] if k in j[0])')" \
  "Name,Driver,Mountpoint,CreatedAt,Labels,Scope,Options"
check "... its values" eq "$(js 'j[0]["Name"], j[0]["Driver"], j[0]["Scope"], j[0]["Labels"]["app"], j[0]["Mountpoint"]')" \
  "$b local local db $VOLS/$b/_data"
check "... CreatedAt is RFC 3339" eq "$(js '__import__("re").fullmatch(r"20\d\d-\d\d-\d\dT[\d:.]+(Z|[+-][\d:]+)", j[0]["CreatedAt"]) is not None')" True
vr volume inspect --format '{{.Mountpoint}}' $a
check "volume inspect --format template" eq "$out" "$VOLS/$a/_data"
vr volume inspect nope$$
check "volume inspect of a missing volume: exit 125 naming it" failed 125 "no such volume nope$$"

# --- a created volume is what run -v mounts, filled from the image on first use
vr run --rm --network none -v $a:/etc $IMG cat /etc/passwd
check "a created volume on /etc shows the image's /etc/passwd (copy-up on first use)" has "$out" "^root:x:0:0"
check "... the copy is in the volume made by volume create" test -f "$VOLS/$a/_data/passwd"
vr run --rm --network none -v $a:/etc $IMG sh -c 'echo kept > /etc/mine'
vr run --rm --network none -v $a:/other $IMG cat /other/mine
check "data written by one container is seen by the next" eq "$rc:$out" "0:kept"
vr volume inspect --format '{{.NeedsCopyUp}}' $a
check "... and the volume is filled once (NeedsCopyUp false)" eq "$out" false
vr volume create -o nocopy nc$$
vr run --rm --network none -v nc$$:/var/www $IMG ls -A /var/www
check "-o nocopy: never filled from the image" eq "$rc:$out" "0:"
vr run --rm --network none -v impl$$:/data $IMG true
vr volume ls -q --filter name=impl$$
check "a -v NAME of a new name is listed as a volume" eq "$out" impl$$

# --- in use: rm refuses (exit 2), prune keeps, -f removes the containers first
vr create --name user$$ --network none -v $b:/data $IMG true
vr volume rm $b
check "volume rm of a volume a (created) container uses: exit 2, saying so" failed 2 "volume $b is being used by the following container"
check "... and the volume is still there" test -d "$VOLS/$b/_data"
# A record from before containers listed their volumes: its bundle's mounts say.
vr create --name old$$ --network none -v oldv$$:/data $IMG true
sqlite3 "$VITRO_ROOT/vitro.db" "update containers set config = json_remove(config, '\$.volumes') where name = 'old$$'"
vr volume rm oldv$$
check "a container recorded without its volume list still holds its volume (exit 2)" failed 2 "volume oldv$$ is being used"
"$V" rm old$$ >/dev/null && vr volume rm oldv$$
check "... which goes once that container is removed" eq "$rc:$out" "0:oldv$$"
vr volume ls -q --filter dangling=true
check "volume ls --filter dangling=true leaves the used one out" bash -c "! grep -qx $b <<<'$out' && grep -qx $a <<<'$out'"
vr volume rm nope$$
check "volume rm of a missing volume: exit 1" failed 1 "no volume with name \"nope$$\" found"
vr volume rm $anon nope$$
check "volume rm GOOD MISSING: the good one removed and printed, exit 1" eq "$rc:$out:$(test -e "$VOLS/$anon" && echo left)" "1:$anon:"

vr run -d --name runner$$ --network none -v $a:/data $IMG sleep 300
vr volume rm -f $a
check "volume rm -f of a volume a running container uses: exit 0" eq "$rc:$out" "0:$a"
vr ps -a --format '{{.Names}}'
check "... the container using it is removed first" bash -c "! grep -q runner$$ <<<'$out'"
check "... and the volume is gone" test ! -e "$VOLS/$a"

# --- prune: asks first (no answer on stdin: exit 125, nothing removed)
vr volume prune </dev/null
check "volume prune without -f and no answer: exit 125" eq $rc 125
check "... it listed what it would remove" has "$out" "^nc$$\$"
check "... and removed nothing" test -d "$VOLS/nc$$"
out=$(echo n | "$V" volume prune); rc=$?
check "volume prune answered n: exit 0, nothing removed" bash -c "[ $rc = 0 ] && [ -d '$VOLS/nc$$' ]"
out=$(echo y | "$V" volume prune --filter name=^nc); rc=$?
check "volume prune answered y (--filter name=): exit 0, removes it" bash -c "[ $rc = 0 ] && [ ! -e '$VOLS/nc$$' ] && [ -d '$VOLS/impl$$' ]"
vr volume prune -f
check "volume prune -f prints the unused volumes it removed" eq "$rc:$out" "0:impl$$"
check "... and keeps the one a container uses" test -d "$VOLS/$b/_data"
vr system df --format json
check "system df: 1 local volume, active (its container exists)" eq "$(js '[(r["Total"], r["Active"]) for r in j if r["Type"] == "Local Volumes"][0]')" "(1, 1)"

# --- system prune --volumes: the stopped container, then its volume
vr system prune -f --volumes
check "system prune --volumes removes the volume its pruned container used" \
  bash -c "[ $rc = 0 ] && grep -q '^Deleted Volumes' <<<'$out' && grep -qx $b <<<'$out' && [ ! -e '$VOLS/$b' ]"

# --- removals racing creation: a container is never recorded on a volume
# that is then removed (the volume lock; see engine/volumes.hpp)
for i in $(seq 1 15); do
  "$V" create --name race$i-$$ --network none -v race$i-$$:/data $IMG true >/dev/null 2>&1 &
  c=$!
  "$V" volume rm race$i-$$ >/dev/null 2>&1 &
  r=$!
  wait $c $r
done
lost=0
for i in $(seq 1 15); do
  if "$V" inspect race$i-$$ >/dev/null 2>&1 && [ ! -d "$VOLS/race$i-$$/_data" ]; then lost=$((lost + 1)); fi
done
check "no container is left recorded on a volume removed under it" eq $lost 0
vr volume rm race1-$$
check "... and a volume a created container uses is refused (exit 2)" eq $rc 2
"$V" rm -f $("$V" ps -aq) >/dev/null 2>&1

# --- nothing left behind (what a creation or removal killed midway left too)
mkdir -p "$VOLS/.new-0123abcd/_data" "$VOLS/.gone-4567cdef/_data"
vr volume ls -q
check "a half-made volume (temporary name) is not listed" eq "$(grep -c '^\.' <<<"$out")" 0
vr volume prune -f
vr volume ls
check "after prune: volume ls prints nothing" eq "$rc:$out" "0:"
check "... and <root>/volumes is empty (no temp dirs)" eq "$(ls -A "$VOLS")" ""

tap_done
