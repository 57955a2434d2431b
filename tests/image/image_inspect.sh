#!/usr/bin/env bash
# podman's image inspection commands (issue 20), through the real vitro
# binary: `image inspect` (and `inspect` falling back to images) with
# podman's fields, -f templates and errors; `history` rows matched to layers
# (empty_layer entries, base images' IDs, --no-trunc, -q, -H, --format);
# `images` with REF, --filter reference/before/since/label/dangling,
# --digests, --no-trunc, -q, -a. Three images: the bundled busybox (2024),
# a two-layer one built from it with empty_layer history entries (2025), and
# one from `vitro import` with labels (now). Where podman is installed, the
# two-layer image's history and inspect keys are compared with podman's for
# the same archive. In its own network namespace, every vitro path in a temp
# dir. TAP. Root only.
# usage: image_inspect.sh PATH_TO_VITRO
set -uo pipefail
V=$(readlink -f "${1:?usage: image_inspect.sh PATH_TO_VITRO}")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/sandbox.sh"
sandbox image-inspect-test "$V"
trap sandbox_teardown EXIT
. "$here/../lib/tap.sh"
export LC_ALL=C
sandbox_image

# A two-layer docker-archive on top of the bundled image: its history has
# empty_layer entries around the second layer's, and a long CreatedBy.
L=$T/layered
mkdir -p "$L/img" "$L/l2/etc"
tar -xf "$T/bb.tar" -C "$L/img"
echo layered >"$L/l2/etc/motd"
tar --sort=name --mtime='2025-01-01 00:00Z' --owner=0 --group=0 --numeric-owner -C "$L/l2" -cf "$L/img/layer2.tar" .
l2_size=$(stat -c %s "$L/img/layer2.tar")
l2_diff=sha256:$(sha256sum "$L/img/layer2.tar" | cut -d' ' -f1)
old_cfg=$(jq -r '.[0].Config' "$L/img/manifest.json")
long_by='/bin/sh -c #(nop) COPY file:0123456789abcdef0123456789abcdef0123456789abcdef in /etc/motd'
jq -c --arg d "$l2_diff" --arg by "$long_by" '.created = "2025-01-01T00:00:00Z"
  | .config.Labels = {"app": "base"}
  | .rootfs.diff_ids += [$d]
  | .history += [{"created": "2025-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ENV A=1", "empty_layer": true},
                 {"created": "2025-01-01T00:00:00Z", "created_by": $by},
                 {"created": "2025-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) CMD [\"sh\"]",
                  "comment": "top", "empty_layer": true}]' "$L/img/$old_cfg" >"$L/cfg.json"
rm "$L/img/$old_cfg"
cfg=$(sha256sum "$L/cfg.json" | cut -d' ' -f1)
mv "$L/cfg.json" "$L/img/$cfg.json"
printf '[{"Config":"%s.json","RepoTags":["localhost/layered:1"],"Layers":["layer.tar","layer2.tar"]}]\n' "$cfg" \
  >"$L/img/manifest.json"
tar -C "$L/img" -cf "$L/layered.tar" .
"$V" load -q -i "$L/layered.tar"
# A third image, made now, with labels.
mkdir -p "$T/small/etc" && echo small >"$T/small/etc/small"
tar -C "$T/small" -cf "$T/small.tar" .
"$V" import -q -c 'LABEL app=web' -c 'LABEL tier=front' -c 'CMD ["sh"]' -m "second image" "$T/small.tar" web:1 >/dev/null

bb_id=$("$V" images --format '{{.Id}}' localhost/busybox); bb_id=${bb_id#sha256:}
ly_id=$("$V" images --format '{{.Id}}' localhost/layered:1); ly_id=${ly_id#sha256:}
web_id=$("$V" images --format '{{.Id}}' web:1); web_id=${web_id#sha256:}
check "three images with IDs" bash -c "[[ '$bb_id $ly_id $web_id' =~ ^[0-9a-f]{64}\ [0-9a-f]{64}\ [0-9a-f]{64}$ ]]"

# ---------------------------------------------------------------- image inspect
out=$("$V" image inspect localhost/busybox)
j() { jq -r "$1" <<<"$out"; }
check "image inspect: a JSON array of one" eq "$(j length)" 1
check "... Id is the image ID" eq "$(j '.[0].Id')" "$bb_id"
check "... RepoTags" eq "$(j '.[0].RepoTags | join(",")')" "localhost/busybox:latest"
check "... RepoDigests: the repository @ the manifest digest" eq "$(j '.[0].RepoDigests[0]')" "localhost/busybox@$(j '.[0].Digest')"
check "... Created, Architecture, Os" eq "$(j '.[0] | "\(.Created) \(.Architecture) \(.Os)"')" "2024-01-01T00:00:00Z amd64 linux"
check "... Config.Cmd and Config.WorkingDir" eq "$(j '.[0].Config | "\(.Cmd | join(" ")) \(.WorkingDir)"')" "sh /"
check "... RootFS: layers with one diff ID" eq "$(j '.[0].RootFS | "\(.Type) \(.Layers | length)"')" "layers 1"
check "... Size = VirtualSize > 2 MB" bash -c "[ '$(j '.[0].Size')' = '$(j '.[0].VirtualSize')' ] && [ '$(j '.[0].Size')' -gt 2000000 ]"
check "... podman's other fields are there" eq "$(j '.[0] | [has("Parent","Comment","Version","Author","Labels","Annotations","ManifestType","History")] | all')" true
check "... History from the config" eq "$(j '.[0].History[0].created_by')" "vitro scripts/make-image.sh (busybox-static)"
check "-f {{.Labels.app}} and {{.Comment}} of the imported image" \
  eq "$("$V" image inspect -f '{{.Labels.app}} {{.Labels.tier}} {{.Comment}}' web:1)" "web front second image"
check "-f {{json .RepoTags}}" eq "$("$V" image inspect --format '{{json .RepoTags}}' web:1)" '["localhost/web:1"]'
check "by short ID, two images in one call" \
  eq "$("$V" image inspect -f '{{.Id}}' "${bb_id:0:12}" web:1 | tr '\n' ' ')" "$bb_id $web_id "
"$V" tag localhost/busybox bb2
check "an image with two tags lists both" \
  eq "$("$V" image inspect -f '{{json .RepoTags}}' bb2)" '["localhost/busybox:latest","localhost/bb2:latest"]'
"$V" rmi bb2 >/dev/null
rc_err "image inspect of an unknown image: 125, podman's message" 125 '^Error: inspecting object: nosuch: image not known$' \
  "$V" image inspect nosuch
check "... and prints []" eq "$(tr -d ' \n' <"$T/out")" "[]"
rc_err "a known and an unknown image: 125" 125 'nosuch: image not known' "$V" image inspect web:1 nosuch
check "... the known one printed" eq "$(jq -r '.[0].Id' "$T/out")" "$web_id"
check "inspect falls back to images" eq "$("$V" inspect -f '{{.Id}} {{.Created}}' localhost/busybox)" "$bb_id 2024-01-01T00:00:00Z"
rc_err "inspect of an unknown object: 125, podman's message" 125 'inspecting object: no such object: "nosuch"' \
  "$V" inspect nosuch
"$V" create --name inspect-ctr$$ --network none localhost/busybox true >/dev/null
out=$("$V" inspect inspect-ctr$$ web:1)
check "inspect: a container and an image in one call" eq "$(j '.[0].Name + " " + .[1].Id')" "inspect-ctr$$ $web_id"

# ---------------------------------------------------------------- history
out=$("$V" history --format json localhost/layered:1)
check "history --format json: one entry per history entry, newest first" eq "$(j 'map(.CreatedBy[0:20]) | join("|")')" \
  '/bin/sh -c #(nop) CM|/bin/sh -c #(nop) CO|/bin/sh -c #(nop) EN|vitro scripts/make-i'
check "... IDs: the image, <missing>, the base image on its top layer, <missing>" eq "$(j 'map(.id) | join(" ")')" \
  "$ly_id <missing> $bb_id <missing>"
check "... sizes: empty_layer entries 0, the others their layers'" eq "$(j 'map(.size) | .[0:3] | join(" ")')" "0 $l2_size 0"
check "... the base layer's size" bash -c "[ '$(j '.[3].size')' -gt 2000000 ]"
check "... comment" eq "$(j '.[0].comment')" top
tbl=$("$V" history localhost/layered:1)
check "history table: podman's columns" eq "$(head -1 <<<"$tbl" | tr -s ' ')" "ID CREATED CREATED BY SIZE COMMENT"
check "... 4 rows" eq "$(wc -l <<<"$tbl")" 5
check "... the first: short ID, time ago, command, 0 B, comment" \
  grep -Eq "^${ly_id:0:12} +[0-9]+ [a-z]+ ago +/bin/sh -c #\(nop\) CMD \[\"sh\"\] +0 B +top\$" <<<"$(sed -n 2p <<<"$tbl")"
check "... CREATED BY cut at 45 characters" grep -qF "${long_by:0:42}... " <<<"$(sed -n 3p <<<"$tbl")"
check "... <missing> rows" eq "$(awk 'NR>1 {print $1}' <<<"$tbl" | tr '\n' ' ')" "${ly_id:0:12} <missing> ${bb_id:0:12} <missing> "
check "history --no-trunc: full IDs and commands" \
  bash -c "'$V' history --no-trunc localhost/layered:1 | grep -F '$long_by' | grep -q '^<missing>' &&
           '$V' history --no-trunc localhost/layered:1 | grep -q '^$ly_id '"
check "history -q" eq "$("$V" history -q localhost/layered:1 | tr '\n' ' ')" "${ly_id:0:12} <missing> ${bb_id:0:12} <missing> "
check "history --human=false: RFC 3339 times" \
  bash -c "'$V' history --human=false localhost/layered:1 | sed -n 2p | grep -q ' 2025-01-01T00:00:00Z '"
check "history --format template" eq "$("$V" history --format '{{.ID}}:{{.Size}}' localhost/busybox)" "${bb_id:0:12}:$(
  "$V" history --format json localhost/busybox | jq -r '.[0].size' | awk '{printf "%.3g MB", $1 / 1e6}')"
rc_err "history of an unknown image: 125" 125 '^Error: nosuch: image not known$' "$V" history nosuch

# podman, for the same archives: the same history and the same inspect keys.
if command -v podman >/dev/null; then
  PM=(podman --root "$T/podman/root" --runroot "$T/podman/run" --tmpdir "$T/podman/tmp" --storage-driver vfs
    --cgroup-manager cgroupfs --events-backend file)
  "${PM[@]}" load -q -i "$T/bb.tar" >/dev/null && "${PM[@]}" load -q -i "$L/layered.tar" >/dev/null
  check "history: the same IDs, sizes, commands and comments as podman's" \
    eq "$("$V" history --format json localhost/layered:1 | jq -c 'map([.id, .size, .CreatedBy, .comment])')" \
    "$("${PM[@]}" history --format json localhost/layered:1 | jq -c 'map([.id, .size, .CreatedBy, .comment])')"
  check "history -q --no-trunc as podman's" eq "$("$V" history -q --no-trunc localhost/layered:1)" \
    "$("${PM[@]}" history -q --no-trunc localhost/layered:1)"
  check "image inspect: podman's keys (GraphDriver aside)" \
    eq "$("$V" image inspect localhost/layered:1 | jq -c '.[0] | keys')" \
    "$("${PM[@]}" image inspect localhost/layered:1 | jq -c '.[0] | keys - ["GraphDriver"]')"
  check "... the same Id, Config, Labels, RootFS, History" \
    eq "$("$V" image inspect localhost/layered:1 | jq -cS '.[0] | [.Id, .Config, .Labels, .RootFS, .History]')" \
    "$("${PM[@]}" image inspect localhost/layered:1 | jq -cS '.[0] | [.Id, .Config, .Labels, .RootFS, .History]')"
  for ref in busybox 'localhost/*' 'layered:1' '*:1' 'lay*'; do
    check "images '$ref' lists what podman's does" eq "$("$V" images --format '{{.Repository}}:{{.Tag}}' "$ref" | grep -v /web: | sort)" \
      "$("${PM[@]}" images --format '{{.Repository}}:{{.Tag}}' "$ref" | sort)"
  done
else
  echo "# podman not installed: comparisons with podman skipped (bash scripts/setup.sh)"
fi

# ---------------------------------------------------------------- images
names() { "$V" images --format '{{.Repository}}:{{.Tag}}' "$@" 2>&1 | sort | tr '\n' ' '; }
all_three="localhost/busybox:latest localhost/layered:1 localhost/web:1 "
check "images: three" eq "$(names)" "$all_three"
check "images -a: the same (no intermediate images)" eq "$(names -a)" "$all_three"
check "images REPOSITORY" eq "$(names busybox)" "localhost/busybox:latest "
check "images NAME:TAG" eq "$(names web:1)" "localhost/web:1 "
check "images 'localhost/*'" eq "$(names 'localhost/*')" "$all_three"
check "images NOSUCH: nothing, exit 0" eq "$(names nosuch)" ""
check "--filter reference=" eq "$(names --filter reference='*box')" "localhost/busybox:latest "
check "--filter label=KEY" eq "$(names --filter label=app)" "localhost/layered:1 localhost/web:1 "
check "--filter label=KEY=VALUE" eq "$(names --filter label=app=web)" "localhost/web:1 "
check "--filter label=KEY=VALUE, no match" eq "$(names --filter label=app=db)" ""
check "--filter since=IMAGE" eq "$(names --filter since=localhost/busybox)" "localhost/layered:1 localhost/web:1 "
check "--filter before=IMAGE" eq "$(names --filter before=web:1)" "localhost/busybox:latest localhost/layered:1 "
check "--filter before= by short ID" eq "$(names --filter before="${ly_id:0:12}")" "localhost/busybox:latest "
check "--filter since=the newest: none" eq "$(names --filter since=web:1)" ""
check "--filter dangling=true: none (every stored image is named)" eq "$(names --filter dangling=true)" ""
check "--filter dangling=false: all" eq "$(names -f dangling=false)" "$all_three"
check "two filters: both must match" eq "$(names --filter label=app --filter reference=web)" "localhost/web:1 "
check "a filter and a REF" eq "$(names --filter since=localhost/busybox 'lay*')" "localhost/layered:1 "
rc_err "--filter bogus=1: 125, names the filter" 125 'unsupported image filter "bogus"' "$V" images --filter bogus=1
rc_err "--filter since=NOSUCH: 125" 125 'nosuch: image not known' "$V" images --filter since=nosuch
rc_err "--filter dangling=maybe: 125" 125 'dangling=maybe' "$V" images --filter dangling=maybe
"$V" tag localhost/busybox bb2
check "images -q: each ID once" eq "$("$V" images -q | sort | tr '\n' ' ')" \
  "$(printf '%s\n' "${bb_id:0:12}" "${ly_id:0:12}" "${web_id:0:12}" | sort | tr '\n' ' ')"
check "images -q --no-trunc: full IDs" bash -c "'$V' images -q --no-trunc | grep -qx 'sha256:$bb_id'"
"$V" rmi bb2 >/dev/null
check "images --no-trunc: full IDs in the table" bash -c "'$V' images --no-trunc | grep -q 'sha256:$web_id'"
dg=$("$V" images --format '{{.Digest}}' web:1)
check "images --digests: a DIGEST column with the manifest digest" \
  bash -c "'$V' images --digests | head -1 | grep -q 'TAG  *DIGEST  *IMAGE ID' && '$V' images --digests web:1 | grep -qF '$dg'"
check "images table: podman's size (2.14 MB style)" bash -c "'$V' images busybox | sed -n 2p | grep -Eq ' [0-9.]+ MB$'"

# ---------------------------------------------------------------- help
for c in "image inspect" history images; do
  check "$c --help exits 0 with its own flags" bash -c "'$V' $c --help | grep -q -e --format"
done

tap_done
