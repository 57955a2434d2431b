#!/usr/bin/env bash
# image/ and container logs end to end through the real vitro binary:
#  - `vitro load` names archives as podman does (and containerd's names
#    where podman takes them): archives written by skopeo, podman save and
#    ctr images export (containerd 1.6 started in a temp root), each also
#    loaded by podman and the names compared;
#  - a `vitro load` killed with -9 mid-way leaves temp files that the next
#    load, and `system prune`, remove;
#  - --log-opt max-size/max-file: a container writing several MB keeps a
#    bounded, rotated log that `logs` and `logs --tail` read back in order.
# Everything under a temp dir, in a network namespace of its own. Prints
# TAP. Root only.
# usage: images.sh PATH_TO_VITRO
set -uo pipefail
V=$(readlink -f "${1:?usage: images.sh PATH_TO_VITRO}")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/sandbox.sh"
sandbox images-test "$V"
export LC_ALL=C
chmod 0755 "$T"
unset VITRO_LOG_OPTS
CONTAINERD_PID=""
cleanup() {
  "$V" rm -f $("$V" ps -aq 2>/dev/null) >/dev/null 2>&1
  if [ -n "$CONTAINERD_PID" ]; then
    kill "$CONTAINERD_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$CONTAINERD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$CONTAINERD_PID" 2>/dev/null
  fi
  umount -R "$T" 2>/dev/null
  grep -q " $T" /proc/self/mountinfo && awk -v t="$T" '$5 ~ "^"t {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf --one-file-system "$T"
}
trap cleanup EXIT

. "$here/../lib/tap.sh"
for tool in skopeo podman containerd ctr; do
  command -v "$tool" >/dev/null || { echo "Bail out! $tool is missing (bash scripts/setup.sh all)"; exit 1; }
done

# ---------------------------------------------------------------- names
A=$T/archives
mkdir -p "$A"
bash "$here/../../scripts/make-image.sh" "$A/bb.tar" localhost/busybox:latest >/dev/null
sk() { skopeo --insecure-policy copy -q --tmpdir "$T" "$@"; }
sk docker-archive:"$A/bb.tar" oci:"$A/layout:bb"
sk oci:"$A/layout:bb" oci-archive:"$A/skopeo-full.tar:localhost/team/app:1"
sk oci:"$A/layout:bb" oci-archive:"$A/skopeo-short.tar:team/app"
sk oci:"$A/layout:bb" oci-archive:"$A/skopeo-bare.tar:1"

PM=(podman --root "$T/podman/root" --runroot "$T/podman/run" --tmpdir "$T/podman/tmp" --storage-driver vfs
  --cgroup-manager cgroupfs --events-backend file)
PM2=(podman --root "$T/podman2/root" --runroot "$T/podman2/run" --tmpdir "$T/podman2/tmp" --storage-driver vfs
  --cgroup-manager cgroupfs --events-backend file)
"${PM[@]}" load -q -i "$A/bb.tar" >/dev/null
"${PM[@]}" tag localhost/busybox:latest localhost/team/app:1 localhost/team/web:2
"${PM[@]}" save -q --format oci-archive -o "$A/podman-oci.tar" localhost/team/app:1
"${PM[@]}" save -q --format docker-archive -o "$A/podman-docker.tar" localhost/team/web:2

# containerd 1.6 in a temp root: ctr images export, as a user of containerd does it.
C=$T/containerd
mkdir -p "$C/root" "$C/state" "$C/opt"
cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$C/c.sock"
[ttrpc]
  address = "$C/c-ttrpc.sock"
[debug]
  address = "$C/c-debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
EOF
containerd --config "$C/config.toml" </dev/null >"$C/log" 2>&1 &
CONTAINERD_PID=$!
ctr_() { timeout 60 ctr -a "$C/c.sock" -n "images-test-$$" "$@"; }
if ! poll 60 ctr -a "$C/c.sock" version >/dev/null 2>&1; then
  echo "Bail out! containerd did not start: $(tail -5 "$C/log")"
  exit 1
fi
ctr_ images import --base-name localhost/busybox "$A/bb.tar" >/dev/null
ctr_ images tag localhost/busybox:latest localhost/team/app:1 >/dev/null
ctr_ images tag localhost/busybox:latest docker.io/library/busybox:1.36 >/dev/null
ctr_ images export "$A/ctr-app.tar" localhost/team/app:1
ctr_ images export --skip-manifest-json "$A/ctr-app-oci-only.tar" localhost/team/app:1
ctr_ images export "$A/ctr-hub.tar" docker.io/library/busybox:1.36
ctr_ images export --skip-manifest-json "$A/ctr-two.tar" localhost/team/app:1 docker.io/library/busybox:1.36
check "ctr writes the bare tag in ref.name and the full name beside it" \
  bash -c "tar xOf '$A/ctr-app.tar' index.json | grep -q '\"org.opencontainers.image.ref.name\":\"1\"'"

# loaded NAME...: what `vitro load` prints for an archive, in a fresh store each time.
loaded() { VITRO_ROOT=$T/stores/$1 "$V" load -i "$A/$1.tar" 2>&1 | sed -n 's/^Loaded image: //p' | sort; }
podman_loaded() {
  rm -rf "$T/podman2"
  "${PM2[@]}" load -i "$A/$1.tar" 2>&1 | sed -n 's/^Loaded image: //p' | sort
}
expect_name() { # ARCHIVE EXPECTED [podman]
  local got
  got=$(loaded "$1")
  check "load $1: ${2//$'\n'/, }" eq "$got" "$2"
  if [ "${3:-}" = podman ]; then
    check "... as podman names it" eq "$got" "$(podman_loaded "$1")"
  fi
}
expect_name skopeo-full "localhost/team/app:1" podman
expect_name skopeo-short "localhost/team/app:latest" podman
expect_name skopeo-bare "localhost/1:latest" podman
expect_name podman-oci "localhost/team/app:1" podman
expect_name podman-docker "localhost/team/web:2" podman
expect_name ctr-app "localhost/team/app:1" podman
expect_name ctr-app-oci-only "localhost/team/app:1" podman
expect_name ctr-hub "docker.io/library/busybox:1.36" podman
# Two images in one export: podman names neither (it takes the image ID);
# vitro loads both under their containerd names, as `ctr images import` does.
expect_name ctr-two "$(printf '%s\n' docker.io/library/busybox:1.36 localhost/team/app:1)"
out=$(VITRO_ROOT=$T/stores/ctr-two "$V" run --rm --network none localhost/team/app:1 echo ran 2>&1)
check "an image loaded from a ctr export runs" eq "$out" ran
VITRO_ROOT=$T/stores/ctr-app-oci-only "$V" load --name mine:1 -i "$A/ctr-app-oci-only.tar" >/dev/null
check "--name replaces the archive's name" \
  bash -c "VITRO_ROOT=$T/stores/ctr-app-oci-only '$V' images --format '{{.Repository}}:{{.Tag}}' | grep -qx mine:1"
VITRO_ROOT=$T/stores/bad "$V" load --name x:1 -i "$A/ctr-two.tar" 2>"$T/err"; rc=$?
check "--name for a two-image archive exits 125, saying why" \
  bash -c "[ $rc = 125 ] && grep -q '2 images' '$T/err'"
check "... and tags nothing" eq "$(VITRO_ROOT=$T/stores/bad "$V" images -q | wc -l)" 0

# ---------------------------------------------------------------- killed loads
# A docker-archive and an oci-archive with a 160 MB layer (random, so that
# nothing compresses it away); each load is killed once its temp files exist.
big=$T/big
mkdir -p "$big/rootfs"
head -c 160M /dev/urandom >"$big/rootfs/blob"
tar -C "$big/rootfs" -cf "$big/layer.tar" .
diff_id=$(sha256sum "$big/layer.tar" | cut -d' ' -f1)
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$diff_id" >"$big/config.json"
printf '[{"Config":"config.json","RepoTags":["localhost/big:1"],"Layers":["layer.tar"]}]' >"$big/manifest.json"
tar -C "$big" -cf "$A/big-docker.tar" config.json manifest.json layer.tar
rm -rf "$big"
sk docker-archive:"$A/big-docker.tar" oci-archive:"$A/big-oci.tar:localhost/big:1"
KR=$T/killed
tmp_entries() { find "$KR/tmp" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
kill_mid_load() { # ARCHIVE: starts a load, kills it -9 once it has temp files; true when it did
  VITRO_ROOT=$KR "$V" load -q -i "$1" >/dev/null 2>&1 &
  local pid=$!
  poll 60 bash -c "[ \$(find '$KR/tmp' -mindepth 1 -maxdepth 1 2>/dev/null | wc -l) -gt 0 ] || ! kill -0 $pid 2>/dev/null"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  [ "$(tmp_entries)" -gt 0 ]
}
trials=0 left=0
for archive in big-docker big-oci big-docker big-oci; do
  VITRO_ROOT=$KR "$V" images >/dev/null  # the store exists
  if kill_mid_load "$A/$archive.tar"; then
    trials=$((trials + 1))
    left=$((left + $(du -sm "$KR/tmp" | cut -f1)))
    VITRO_ROOT=$KR "$V" load -q -i "$A/bb.tar" >/dev/null
    check "after a load of $archive killed mid-way, the next load removes its temp files" eq "$(tmp_entries)" 0
  fi
done
check "the kills landed mid-load (temp files present) in at least 3 of 4 trials" test "$trials" -ge 3
echo "# killed loads left $left MB in tmp/ over $trials trials, all removed"
if kill_mid_load "$A/big-oci.tar"; then
  VITRO_ROOT=$KR "$V" system prune -f >"$T/prune-out"
  check "system prune removes a killed load's temp files" eq "$(tmp_entries)" 0
  check "... and counts them in its summary" grep -Eq 'and [1-9][0-9]* temp files' "$T/prune-out"
else
  not_ok "system prune removes a killed load's temp files" "the load finished before it could be killed"
fi
# A load in flight is never disturbed by another command's sweep.
VITRO_ROOT=$KR "$V" load -q -i "$A/big-oci.tar" >/dev/null 2>"$T/big-err" &
bigpid=$!
poll 60 bash -c "[ \$(find '$KR/tmp' -mindepth 1 -maxdepth 1 2>/dev/null | wc -l) -gt 0 ] || ! kill -0 $bigpid 2>/dev/null"
VITRO_ROOT=$KR "$V" load -q -i "$A/bb.tar" >/dev/null
VITRO_ROOT=$KR "$V" system prune -f >/dev/null
wait "$bigpid"; rc=$?
check "a load running beside another load and a prune completes" eq "$rc" 0
check "... and its image is there" bash -c "VITRO_ROOT=$KR '$V' images --format '{{.Repository}}' | grep -qx localhost/big"
check "... with nothing left in tmp/" eq "$(tmp_entries)" 0
rm -rf "$KR" "$A/big-docker.tar" "$A/big-oci.tar"

# ---------------------------------------------------------------- logs
"$V" load -q -i "$A/bb.tar" >/dev/null
IMG=localhost/busybox
# ~150000 lines of output, ~7 MB of log: seq's lines, numbered, so that
# order and gaps show.
lines=150000
id=$("$V" run -d --name chatty --network none --log-opt max-size=1m --log-opt max-file=3 $IMG seq 1 $lines)
"$V" wait chatty >/dev/null
log=$("$V" inspect -f '{{.LogPath}}' chatty)
check "the log was rotated: ctr.log.1 and ctr.log.2 exist" test -f "$log.1" -a -f "$log.2"
check "... and no more than max-file=3 files" test ! -e "$log.3"
for f in "$log" "$log.1" "$log.2"; do
  check "$(basename "$f") is at most 1 MiB" test "$(stat -c %s "$f")" -le $((1 << 20))
done
"$V" logs chatty >"$T/logs.out"
first=$(head -1 "$T/logs.out")
check "logs reads the rotated files in order: a gapless run ending at the last line" \
  cmp -s "$T/logs.out" <(seq "$first" $lines)
check "... of about 3 MiB of log (the older lines are gone)" test "$first" -gt 1
check "logs --tail 2 prints the last two lines" eq "$("$V" logs --tail 2 chatty)" "$(seq $((lines - 1)) $lines)"
newest=$(wc -l <"$log")
check "logs --tail past the newest file goes on into the older ones" \
  cmp -s <("$V" logs --tail $((newest + 10)) chatty) <(seq $((lines - newest - 9)) $lines)
"$V" rm chatty >/dev/null
check "rm removes the rotated files too" test ! -e "$log.1"

VITRO_LOG_OPTS=max-size=100k,max-file=2 "$V" run --name bydefault --network none $IMG seq 1 20000 >/dev/null
log=$("$V" inspect -f '{{.LogPath}}' bydefault)
check "\$VITRO_LOG_OPTS sets the default: rotated at 100k into 2 files" \
  bash -c "[ -f '$log.1' ] && [ ! -e '$log.2' ] && [ \$(stat -c %s '$log') -le 102400 ]"
check "... and logs ends at the last line" eq "$("$V" logs --tail 1 bydefault)" 20000
"$V" rm bydefault >/dev/null

for bad in "max-size=lots:max-size" "max-file=0:max-file" "max-size=1m,colour=red:colour" "max-size:KEY=VALUE"; do
  opt=${bad%:*} word=${bad##*:}
  "$V" run --rm --network none --log-opt "$opt" $IMG true 2>"$T/err"; rc=$?
  check "--log-opt $opt exits 125 naming $word" bash -c "[ $rc = 125 ] && grep -q -- '$word' '$T/err' && [ \$(wc -l <'$T/err') = 1 ]"
done
check "... and leaves no container" eq "$("$V" ps -aq | wc -l)" 0
VITRO_LOG_OPTS=max-size=huge "$V" run --rm --network none $IMG true 2>"$T/err"; rc=$?
check "a bad \$VITRO_LOG_OPTS exits 125 naming it" bash -c "[ $rc = 125 ] && grep -q 'VITRO_LOG_OPTS' '$T/err'"

tap_done
