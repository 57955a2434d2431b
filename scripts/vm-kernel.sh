#!/usr/bin/env bash
# The microVM guest kernel (--isolation vm): Debian's cloud kernel, its
# uncompressed PVH vmlinux and the virtio modules vitro-agent loads, into DEST
# (default /usr/lib/vitro/vm, what vitro looks in unless $VITRO_VM_DIR says
# otherwise). Idempotent: nothing is fetched when DEST has this release.
# usage: scripts/vm-kernel.sh [DEST]
set -euo pipefail
dest=${1:-/usr/lib/vitro/vm}
# The versioned package behind the metapackage: its name carries the release.
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$pkg" ] || { apt-get -q update >&2; pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'); }
[ -n "$pkg" ] || { echo "vm-kernel: no linux-image-cloud-amd64 in the package lists" >&2; exit 1; }
release=${pkg#linux-image-}
if [ -f "$dest/vmlinux" ] && [ "$(cat "$dest/release" 2>/dev/null)" = "$release" ]; then exit 0; fi
echo "vm-kernel: fetching $pkg for the microVM guest" >&2
work=$(mktemp -d); chmod 755 "$work"; trap 'rm -rf "$work"' EXIT
(cd "$work" && chmod 1777 . && apt-get -q download "$pkg" >&2) || { echo "vm-kernel: apt-get download $pkg failed" >&2; exit 1; }
dpkg-deb -x "$work"/*.deb "$work/x"
# The bzImage's payload is an LZ4 stream (legacy frame, magic 02 21 4c 18);
# QEMU's microvm boots the uncompressed ELF by its PVH note.
vmlinuz="$work/x/boot/vmlinuz-$release"
off=$(grep -obUaP '\x02\x21\x4c\x18' "$vmlinuz" | head -1 | cut -d: -f1)
[ -n "$off" ] || { echo "vm-kernel: $vmlinuz: no LZ4 payload found" >&2; exit 1; }
tail -c +$((off + 1)) "$vmlinuz" | lz4 -dc >"$work/vmlinux" 2>/dev/null || true  # trailing data after the stream
[ "$(head -c 4 "$work/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || { echo "vm-kernel: the payload is not an ELF vmlinux" >&2; exit 1; }
mkdir -p "$work/out/modules"
mods="$work/x/lib/modules/$release/kernel"
# What the agent needs, in load order (a module after those it uses).
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_mmio drivers/char/virtio_console \
         fs/fuse/fuse fs/fuse/virtiofs net/core/failover drivers/net/net_failover drivers/net/virtio_net; do
  cp "$mods/$m.ko" "$work/out/modules/"
  basename "$m" >>"$work/out/modules/order"
done
mv "$work/vmlinux" "$work/out/vmlinux"
echo "$release" >"$work/out/release"
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.new"; mv "$work/out" "$dest.new"; rm -rf "$dest"; mv "$dest.new" "$dest"
echo "vm-kernel: $dest: $release" >&2
