#!/usr/bin/env bash
# The command line's edges a docker user meets first (issue 20, bugs 3, 7, 8
# and 9), through the real `vitro` binary: `top` shows the container's
# processes only, images by ID and tag's reference checks, --stop-signal and
# --memory refused before anything is made, unknown commands named with the
# nearest ones. In its own network namespace, every vitro path in a temp dir.
# Prints TAP; exits non-zero when a check fails. Root only.
# usage: cli.sh PATH_TO_VITRO
set -uo pipefail
V=$(readlink -f "${1:?usage: cli.sh PATH_TO_VITRO}")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/sandbox.sh"
sandbox cli-test "$V"
trap sandbox_teardown EXIT
. "$here/../lib/tap.sh"
sandbox_image

no_containers() { eq "$("$V" ps -aq | wc -l)" 0; }

# --- bug 7: images by ID, tag's reference checks
id=$("$V" images --format '{{.Id}}'); hex=${id#sha256:}; short=${hex:0:12}
check "images shows a sha256 ID" bash -c "[[ '$id' =~ ^sha256:[0-9a-f]{64}$ ]]"
for ref in "$short" "$hex" "sha256:$hex" "${hex:0:5}"; do
  check "run by ID $ref" eq "$("$V" run --rm --network none --pull never "$ref" echo hi 2>&1)" hi
done
check "run by short ID with the default --pull (no registry tried)" \
  eq "$("$V" run --rm --network none "$short" echo hi 2>&1)" hi
check "inspect by short ID shows the image" eq "$("$V" inspect -f '{{.Id}}' "$short")" "$hex"
"$V" tag "$short" bb2; check "tag by ID; a bare name is local: localhost/bb2:latest" \
  bash -c "'$V' images --format '{{.Repository}}:{{.Tag}}' | grep -qx localhost/bb2:latest"
"$V" save -o "$T/byid.tar" "$short"
check "save by ID writes an archive that loads" \
  bash -c "VITRO_ROOT='$T/other' '$V' load -i '$T/byid.tar' | grep -q 'Loaded image'"
rc_err "tag refuses Bad:Tag:x (125, names the reference)" 125 'invalid reference format.*Bad:Tag:x' "$V" tag "$IMG" Bad:Tag:x
rc_err "tag refuses UPPER/case (must be lowercase)" 125 'lowercase' "$V" tag "$IMG" UPPER/case
rc_err "tag with a bad tag part says why" 125 'tag "-x"' "$V" tag "$IMG" ok:-x
check "... and none of them was stored" bash -c "! '$V' images --format '{{.Repository}}' | grep -qi -e bad -e upper -e '/ok$'"
rc_err "rmi by the ID of an image with two tags needs --force" 125 'has 2 tags' "$V" rmi "$short"
# Two images whose IDs begin alike: the bundled one with labels v=1, v=2, ...
# until two IDs share the first hex digit (at most 17 tries: 16 digits).
mkdir -p "$T/x"; tar -C "$T/x" -xf "$T/bb.tar"
cfg=$(cd "$T/x" && ls [0-9a-f]*.json)
declare -A seen=()
for i in $(seq 1 17); do
  sed "s/\"WorkingDir\":\"\/\"/\"WorkingDir\":\"\/\",\"Labels\":{\"v\":\"$i\"}/" "$T/x/$cfg" >"$T/var$i.json"
  d=$(sha256sum "$T/var$i.json" | cut -d' ' -f1)
  [ -n "${seen[${d:0:1}]:-}" ] && { pair="${seen[${d:0:1}]} $i"; break; }
  seen[${d:0:1}]=$i
done
for i in $pair; do
  d=$(sha256sum "$T/var$i.json" | cut -d' ' -f1)
  rm -rf "$T/y"; mkdir -p "$T/y"; cp "$T/x/layer.tar" "$T/y/"; cp "$T/var$i.json" "$T/y/$d.json"
  printf '[{"Config":"%s.json","RepoTags":["localhost/var:%s"],"Layers":["layer.tar"]}]\n' "$d" "$i" >"$T/y/manifest.json"
  tar -C "$T/y" -cf "$T/var.tar" . && "$V" load -q -i "$T/var.tar"
  vhex=$d vtag=$i
done
rc_err "an ambiguous ID prefix is an error naming it" 125 "\"${vhex:0:1}\" is ambiguous" \
  "$V" run --rm --network none --pull never "${vhex:0:1}" true
check "... and no container was made" no_containers
"$V" rmi "${vhex:0:12}" >/dev/null
check "rmi by short ID removes the image" bash -c "! '$V' images --format '{{.Repository}}:{{.Tag}}' | grep -qx localhost/var:$vtag"
rc_err "rmi of an unknown ID: image not known" 125 'image not known' "$V" rmi 0123456789ab

# --- bug 3: top shows the container's processes, and ps's errors exit 125
"$V" run -d --name topc --network none "$IMG" sleep 1000 >/dev/null
rows() { "$V" top topc "$@" | tail -n +2; }
for opts in aux -ef; do
  out=$(rows $opts); rc=$?
  check "top CTR $opts: exit 0, only the container's one process" \
    bash -c "[ $rc = 0 ] && [ \$(wc -l <<<'$out') = 1 ] && grep -q 'sleep 1000' <<<'$out'"
done
check "top CTR aux: this shell ($$) is not in it" bash -c "! '$V' top topc aux | awk '{print \$2}' | grep -qx $$"
out=$("$V" top topc pid user args); rc=$?
check "top CTR pid user args: podman's descriptors" \
  bash -c "[ $rc = 0 ] && head -1 <<<'$out' | grep -Eq 'PID +USER +COMMAND' && grep -q 'root *sleep 1000' <<<'$out'"
rc_err "top with a bad descriptor / ps option exits 125 with ps's error" 125 'ps' "$V" top topc bogus
rc_err "top with ps options but no PID column exits 125" 125 'PID column' "$V" top topc -o args
"$V" rm -f topc >/dev/null

# --- bug 8: --stop-signal and --memory checked before anything is made
rc_err "--stop-signal BOGUS is refused, naming it" 125 '"BOGUS"' \
  "$V" run --rm --network none --stop-signal BOGUS "$IMG" true
rc_err "--stop-signal 65 is refused" 125 '"65"' "$V" create --network none --stop-signal 65 "$IMG" true
for s in KILL SIGUSR1 9 64; do
  c=$("$V" create --network none --stop-signal $s "$IMG" true 2>"$T/err")
  check "--stop-signal $s is taken" bash -c "[ -n '$c' ]"
  "$V" rm "$c" >/dev/null 2>&1
done
rc_err "-m 1k: podman's minimum-memory error" 125 'minimum memory limit allowed is 6MB' \
  "$V" run --rm --network none -m 1k "$IMG" true
check "... and no container was made" no_containers

# --- bug 9: unknown commands named, with the nearest ones
rc_err "a mistyped command: unrecognized, with a suggestion" 125 \
  'unrecognized command "vitro imagse".*|Did you mean "vitro images"' "$V" imagse
check "... the suggestion names images" grep -Eq 'Did you mean .*"vitro images"' "$T/err"
rc_err "an unknown command's --help is an error, not the top-level help" 125 'unrecognized command "vitro xyzzy"' \
  "$V" xyzzy --help
check "... and prints no help" bash -c "! grep -q 'Subcommands' '$T/out'"
rc_err "after a global option with a value" 125 'Did you mean "vitro ps"' "$V" --root "$T/root" pss
rc_err "a mistyped subcommand of a group" 125 'unrecognized command "vitro network lss".*|Did you mean "vitro network ls"' \
  "$V" network lss
"$V" run --help >/dev/null; check "a known command's --help still exits 0" eq $? 0
"$V" --help >/dev/null; check "the top-level --help still exits 0" eq $? 0

tap_done
