#!/usr/bin/env bash
# `vitro cp` (issue 20), through the real vitro binary, as podman's rules say:
# a file or directory out of and into a running and a stopped container, "/."
# for a directory's contents, a directory into an existing one nested, a tar
# stream on stdin and stdout, --archive's owners, podman's exit codes. Every
# container path is hostile: symlinks the container made to a host file and
# a host directory (absolute, and by ../ climbs) and a tar with "../" and a
# path through its own symlink resolve inside the container's rootfs only;
# the host's file and directory are checked untouched at the end. In its own
# network namespace, every vitro path in a temp dir. TAP. Root only.
# usage: engine_cp.sh PATH_TO_VITRO
set -uo pipefail
V=$(readlink -f "${1:?usage: engine_cp.sh PATH_TO_VITRO}")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/sandbox.sh"
sandbox cp-test "$V"
trap sandbox_teardown EXIT
. "$here/../lib/tap.sh"
sandbox_image

# The host's things a hostile container aims at.
echo HOSTSECRET >"$T/hostsecret"
mkdir "$T/hostdir"
up=../../../../../../../../..
# The container's own content: data, and symlinks aiming at the host. The
# same paths exist inside the container too (its own $T/hostdir): they must
# be the ones used.
SETUP="mkdir -p /data/sub $T/hostdir && echo in >/data/sub/f && ln -sf sub/f /data/link &&
  ln -sf $T/hostsecret /evil-abs && ln -sf $up$T/hostsecret /evil-up &&
  ln -sf $T/hostdir /evil-dir && ln -sf $up$T/hostdir /evil-updir && echo READY"
"$V" run --name cs$$ --network none $IMG sh -c "$SETUP" >/dev/null
"$V" run -d --name cr$$ --network none --user 123:456 $IMG sh -c "while :; do sleep .1; done" >/dev/null
"$V" exec --user 0 cr$$ sh -c "$SETUP" >/dev/null
id=$("$V" inspect -f '{{.Id}}' cs$$)
merged=$VITRO_ROOT/containers/$id/merged
in_ctr() { "$V" exec cr$$ "$@" 2>&1; }
# cat of a file in the stopped container, through cp to stdout
cat_stopped() { "$V" cp "cs$$:$1" - | tar -xOf -; }

# --- out of a stopped container
check "cp --help exits 0 and shows cp's own usage" bash -c "'$V' cp --help | grep -q 'CONTAINER:'"
"$V" cp cs$$:/data/sub/f "$T/out1"
check "cp CTR:FILE NEWFILE (stopped container)" eq "$(cat "$T/out1" 2>&1)" in
check "... its rootfs is unmounted again" bash -c "! mountpoint -q '$merged'"
"$V" cp cs$$:/data/link "$T/out2"
check "a final symlink in SRC is followed (inside the container)" eq "$(cat "$T/out2" 2>&1)" in
"$V" cp cs$$:/data "$T/newdir"
check "cp CTR:DIR NEWDIR: NEWDIR made with DIR's contents" eq "$(cat "$T/newdir/sub/f" 2>&1)" in
mkdir "$T/d1" "$T/d2"
"$V" cp cs$$:/data "$T/d1"
check "cp CTR:DIR EXISTINGDIR nests DIR" eq "$(cat "$T/d1/data/sub/f" 2>&1)" in
"$V" cp cs$$:/data/. "$T/d2"
check "cp CTR:DIR/. EXISTINGDIR copies the contents" bash -c "[ \"\$(cat '$T/d2/sub/f')\" = in ] && [ ! -e '$T/d2/data' ]"
check "cp CTR:DIR - writes a tar of DIR" bash -c "'$V' cp cs$$:/data - | tar -tf - | grep -qx 'data/sub/f'"
for l in evil-abs evil-up; do
  rc_err "cp CTR:/$l (a symlink to the host's file) exits 125, not found in the container" 125 \
    "\"/$l\" in container cs$$: no such file" "$V" cp cs$$:/$l "$T/stolen-$l"
  check "... and nothing of the host's file came out" bash -c "[ ! -e '$T/stolen-$l' ]"
done
rc_err "cp CTR:/nosuch exits 125 naming the path" 125 '"/nosuch" in container .*no such file' \
  "$V" cp cs$$:/nosuch "$T/x"
rc_err "cp of an unknown container exits 125" 125 "no container with name or ID \"nosuch$$\" found" \
  "$V" cp nosuch$$:/data "$T/x"
rc_err "cp between two host paths exits 125" 125 "both on the host" "$V" cp "$T/out1" "$T/out9"
rc_err "cp CTR:DIR FILE exits 125" 125 "cannot copy a directory to a file" "$V" cp cs$$:/data "$T/out1"

# --- into a stopped container
echo hello >"$T/in.txt"
"$V" cp "$T/in.txt" cs$$:/data/
check "cp FILE CTR:DIR/ (stopped container)" eq "$(cat_stopped /data/in.txt)" hello
"$V" cp "$T/in.txt" cs$$:/evil-dir/
check "cp FILE CTR:SYMLINK-TO-HOST-DIR/ lands in the container's directory" eq "$(cat_stopped "$T/hostdir/in.txt")" hello
"$V" cp "$T/in.txt" cs$$:/evil-updir/up.txt
check "... through a ../ symlink too" eq "$(cat_stopped "$T/hostdir/up.txt")" hello
"$V" cp "$T/in.txt" cs$$:/evil-abs
check "cp FILE CTR:SYMLINK-TO-HOST-FILE replaces the container's symlink" eq "$(cat_stopped /evil-abs)" hello
mkdir -p "$T/tar1" "$T/tar2/l" "$T/tar3/a"
ln -s "$T/hostdir" "$T/tar1/l"; echo pwned >"$T/tar2/l/pwned"
tar -C "$T/tar1" -cf "$T/through.tar" l && tar -C "$T/tar2" -cf "$T/p.tar" l/pwned && tar -Af "$T/through.tar" "$T/p.tar"
"$V" cp - cs$$:/data <"$T/through.tar"
check "a tar on stdin: a path through its own symlink to a host dir stays in the container" \
  eq "$(cat_stopped "$T/hostdir/pwned")" pwned
echo esc >"$T/escape"
(cd "$T/tar3/a" && tar -cPf "$T/dotdot.tar" ../../escape)
rc_err "a tar on stdin with a ../ entry exits 125" 125 '\.\.' sh -c "'$V' cp - cs$$:/data <'$T/dotdot.tar'"
rc_err "cp - CTR:FILE (not a directory) exits 125" 125 "not a directory" sh -c "'$V' cp - cs$$:/data/sub/f <'$T/p.tar'"
"$V" cp "$T/d2" cs$$:/newd
check "cp DIR CTR:NEWDIR" eq "$(cat_stopped /newd/sub/f)" in
check "the stopped container still starts" bash -c "'$V' start -a cs$$ | grep -q READY"

# --- a running container (--user 123:456)
"$V" cp "$T/in.txt" cr$$:/tmp/
check "cp FILE CTR:/tmp/ (running): the container sees it" eq "$(in_ctr cat /tmp/in.txt)" hello
check "... owned by the container's user (--archive)" eq "$(in_ctr stat -c %u:%g /tmp/in.txt)" 123:456
chown 7:8 "$T/in.txt"
"$V" cp --archive=false "$T/in.txt" cr$$:/tmp/keep.txt
check "--archive=false keeps the source's owner" eq "$(in_ctr stat -c %u:%g /tmp/keep.txt)" 7:8
"$V" cp "$T/in.txt" cr$$:/evil-dir/
check "cp FILE CTR:SYMLINK-TO-HOST-DIR/ (running) lands in the container's directory" \
  eq "$(in_ctr cat "$T/hostdir/in.txt")" hello
in_ctr sh -c 'echo running >/tmp/r' >/dev/null
"$V" cp cr$$:/tmp/r "$T/r"
check "cp CTR:FILE out of a running container" eq "$(cat "$T/r" 2>&1)" running
rc_err "cp CTR:/evil-up out of a running container exits 125" 125 "no such file" "$V" cp cr$$:/evil-up "$T/stolen"
"$V" cp cr$$:/tmp/r cs$$:/data/
check "cp between two containers" eq "$(cat_stopped /data/r)" running

# --- export / import
"$V" export -o "$T/cs.tar" cs$$
check "export -o FILE of a stopped container: its files, hostile symlinks as symlinks" \
  bash -c "tar -tf '$T/cs.tar' | grep -qx 'data/sub/f' && tar -tvf '$T/cs.tar' | grep -q '^l.* evil-abs -> $T/hostsecret'"
check "... no temp file left beside it" eq "$(ls "$T" | grep -c 'cs.tar.tmp')" 0
check "export of a running container to stdout" bash -c "'$V' export cr$$ | tar -tf - | grep -qx 'tmp/r'"
script -qec "'$V' export cr$$" /dev/null >"$T/tty.out" 2>&1; rc=$?
check "export to a terminal is refused (125)" bash -c "[ $rc = 125 ] && grep -q 'refusing to export to a terminal' '$T/tty.out'"
rc_err "export of an unknown container exits 125" 125 "no container with name or ID" "$V" export nosuch$$
"$V" import -c 'CMD ["cat", "/data/sub/f"]' -c 'ENV A=1 B=two' -c 'WORKDIR=/data' -c 'LABEL k=v' -c 'USER 0' \
  -c 'EXPOSE 8080' -m imported "$T/cs.tar" imp$$ >"$T/imp.id"
check "import FILE REF prints the image ID" bash -c "grep -Eqx '[0-9a-f]{64}' '$T/imp.id'"
check "... the image runs with its --change CMD" eq "$("$V" run --rm --network none imp$$ 2>&1)" in
check "... ENV and WORKDIR" eq "$("$V" run --rm --network none imp$$ sh -c 'echo $A-$B-$PWD' 2>&1)" 1-two-/data
check "... LABEL, USER, EXPOSE in its config" bash -c "'$V' inspect imp$$ | tr -d ' \n' | grep -q '\"k\":\"v\"' &&
  '$V' inspect imp$$ | grep -q '8080/tcp'"
"$V" export cs$$ | gzip | "$V" import - localhost/imp2$$:1 >/dev/null
check "import - (gzip on stdin) under a full name" eq "$("$V" run --rm --network none localhost/imp2$$:1 cat /data/sub/f 2>&1)" in
rc_err "import with an unknown --change instruction exits 125 naming it" 125 'RUN is not one of' \
  "$V" import -c 'RUN true' "$T/cs.tar" bad$$
rc_err "import of something that is no tar exits 125" 125 "not a tar archive" sh -c "echo nonsense | '$V' import - bad$$"
check "... and neither made an image" bash -c "! '$V' images --format '{{.Repository}}' | grep -q bad$$"

# --- the host untouched by all of it
check "the host's file is unchanged" eq "$(cat "$T/hostsecret")" HOSTSECRET
check "the host's directory is still empty" eq "$(ls -A "$T/hostdir")" ""
tap_done
