#!/usr/bin/env bash
# cgroup-v2-host.sh RUNTIME: vitro-runtime on a pure cgroup v2 host. This CI
# machine is hybrid, so the test makes a v2 host of its own: in a private mount
# namespace it unmounts every cgroup hierarchy and mounts a fresh cgroup2 at
# /sys/fs/cgroup (controllers still bound to the host's v1 hierarchies are not
# available there, but the v2 manager's own paths are all exercised: detection,
# clone3(CLONE_INTO_CGROUP), the eBPF device controller, freeze, cleanup).
set -euo pipefail
rt=$(readlink -f "${1:?usage: cgroup-v2-host.sh RUNTIME}")
here=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/vitro-v2host.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$here/scripts/make-bundle.sh" "$work/bundle" sh -c '
  set -e
  mknod /tmp/mem c 1 1
  if head -c1 /tmp/mem >/dev/null 2>&1; then echo "FAIL: read /dev/mem allowed"; exit 1; fi
  echo "ok device policy: /dev/mem denied, /dev/null: $(echo x > /dev/null && echo usable)"
  cat /proc/self/cgroup'
# mknod needs CAP_MKNOD in the container.
sed -i 's/"CAP_AUDIT_WRITE", "CAP_KILL"/"CAP_AUDIT_WRITE", "CAP_MKNOD", "CAP_KILL"/g' "$work/bundle/config.json"
# Only the device rules: memory and pids are bound to the host's v1 hierarchies.
sed -i 's/, "memory": {"limit": 268435456}, "pids": {"limit": 256}//' "$work/bundle/config.json"
export rt work
unshare -m --propagation private bash -euo pipefail -c '
  for m in $(awk '\''$9 ~ /^cgroup2?$/ {print $5}'\'' /proc/self/mountinfo | sort -r); do umount -l "$m"; done
  umount -l /sys/fs/cgroup 2>/dev/null || true
  mount -t cgroup2 none /sys/fs/cgroup
  [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] || { echo "FAIL: no cgroup2 at /sys/fs/cgroup"; exit 1; }
  echo "ok private pure-v2 host (controllers: $(cat /sys/fs/cgroup/cgroup.controllers))"
  out=$("$rt" --root "$work/state" run --bundle "$work/bundle" v2host-$$)
  echo "$out"
  echo "$out" | grep -q "ok device policy" || { echo "FAIL: container did not report"; exit 1; }
  echo "$out" | grep -q "^0::/vitro/v2host-$$" || echo "$out" | grep -q "^0::/$" || { echo "FAIL: not in its v2 cgroup"; exit 1; }
  [ ! -e /sys/fs/cgroup/vitro/v2host-$$ ] || { echo "FAIL: cgroup left behind"; exit 1; }
  echo "ok cgroup removed"
  # A created container can be paused and resumed through cgroup.freeze.
  sed -i "s/\"args\": \[[^]]*\]/\"args\": [\"sleep\", \"30\"]/" "$work/bundle/config.json"
  "$rt" --root "$work/state" run -d --bundle "$work/bundle" v2p-$$ </dev/null >/dev/null 2>&1
  "$rt" --root "$work/state" pause v2p-$$
  "$rt" --root "$work/state" state v2p-$$ | grep -q "\"status\": \"paused\"" || { echo "FAIL: not paused"; exit 1; }
  "$rt" --root "$work/state" resume v2p-$$
  "$rt" --root "$work/state" state v2p-$$ | grep -q "\"status\": \"running\"" || { echo "FAIL: not running"; exit 1; }
  "$rt" --root "$work/state" delete -f v2p-$$
  [ ! -e /sys/fs/cgroup/vitro/v2p-$$ ] || { echo "FAIL: cgroup left behind after delete -f"; exit 1; }
  echo "ok pause/resume/delete on v2"
'
echo "1 passed, 0 failed"
