#!/usr/bin/env bash
# make-image.sh OUT.tar [NAME]: the bundled default image, built locally from
# Debian's busybox-static (no registry needed), as a docker-archive tarball
# (`vitro load -i OUT.tar`). NAME defaults to localhost/busybox:latest.
# Deterministic: the same busybox gives the same image digest.
set -euo pipefail
out=${1:?usage: make-image.sh OUT.tar [NAME]}
name=${2:-localhost/busybox:latest}
bb=/bin/busybox
[ -x "$bb" ] || { echo "make-image: $bb missing (apt-get install busybox-static)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,proc,sys,dev,tmp,root,var/www,usr/bin,usr/sbin,sbin}
install -m 0755 "$bb" "$root/bin/busybox"
for a in $("$bb" --list); do
  [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
done
chmod 1777 "$root/tmp"
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'www-data:x:33:33:www-data:/var/www:/bin/false' \
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' > "$root/etc/passwd"
printf '%s\n' 'root:x:0:' 'tty:x:5:' 'www-data:x:33:' 'nogroup:x:65534:' > "$root/etc/group"
echo '<h1>hello from vitro</h1>' > "$root/var/www/index.html"
mkdir -p "$work/img"
tar --sort=name --mtime='2024-01-01 00:00Z' --owner=0 --group=0 --numeric-owner \
  -C "$root" -cf "$work/img/layer.tar" .
diff_id=$(sha256sum "$work/img/layer.tar" | cut -d' ' -f1)
cat > "$work/img/config.json" <<JSON
{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",
 "config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},
 "rootfs":{"type":"layers","diff_ids":["sha256:$diff_id"]},
 "history":[{"created":"2024-01-01T00:00:00Z","created_by":"vitro scripts/make-image.sh (busybox-static)"}]}
JSON
cfg=$(sha256sum "$work/img/config.json" | cut -d' ' -f1)
mv "$work/img/config.json" "$work/img/$cfg.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer.tar"]}]\n' "$cfg" "$name" > "$work/img/manifest.json"
tar --sort=name --mtime='2024-01-01 00:00Z' --owner=0 --group=0 --numeric-owner -C "$work/img" -cf "$out" .
