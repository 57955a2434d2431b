#!/usr/bin/env bash
# --isolation vm end to end (issue 17's first part): a container in a QEMU
# microvm with Debian's kernel (scripts/vm-kernel.sh), its rootfs over
# virtiofs, its stdio, signals and exit status over the agent's
# virtio-serial port. The guest's kernel, not the host's; no host process or
# mount seen from inside; exit codes, -e/-w/-u, detached runs with logs, stop
# and start; kill -9 of the VMM (137, nothing left); flags a VM cannot honour
# yet refused before anything is made; a missing kernel and a guest that
# never answers. A guest that does not boot is a failure, not a skip. In its
# own network namespace, every vitro path in a temp dir. TAP. Root only.
# usage: isolation.sh PATH_TO_VITRO
set -uo pipefail
V=$(readlink -f "${1:?usage: isolation.sh PATH_TO_VITRO}")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/sandbox.sh"
sandbox vm-test "$V"
trap sandbox_teardown EXIT
. "$here/../lib/tap.sh"
sandbox_image
KDIR=${VITRO_VM_DIR:-/usr/lib/vitro/vm}
echo "# accelerator: ${VITRO_VM_ACCEL:-tcg}; guest kernel: $(cat "$KDIR/release" 2>/dev/null || echo none in $KDIR)"
vm() { "$V" run --isolation vm "$@"; }
# What this test's VMs can leave: processes naming its temp dir, VM run dirs.
# (Called in this shell, never under bash -c: that command line would match.)
leftovers() {
  { pgrep -af "qemu-system-x86_64.*$T|virtiofsd.*$T"; ls "$VITRO_RUNROOT/vm" 2>/dev/null; } | grep -c .
}
vm_gone() { [ "$(leftovers)" = 0 ]; }
nothing_left() { [ "$(leftovers)" = 0 ] && [ -z "$("$V" ps -aq)" ]; }
vm_booted_and_logging() { [ "$("$V" logs v1 | grep -c tick)" -gt 0 ] && pgrep -f "qemu-system-x86_64.*$T" >/dev/null; }

out=$(vm --rm $IMG uname -r 2>"$T/err"); rc=$?
check "run --rm uname -r exits 0" eq $rc 0
[ $rc = 0 ] || sed 's/^/#   /' "$T/err"
check "... and prints the guest's kernel ($(cat "$KDIR/release" 2>/dev/null))" eq "$out" "$(cat "$KDIR/release" 2>/dev/null)"
check "... not the host's" bash -c "[ '$out' != \"\$(uname -r)\" ]"

# A host process and a host mount that a container in the VM must not see.
sleep 1000 & marker=$!
exec 9>&2 2>/dev/null; mkdir -p "$T/hostmnt"; mount -t tmpfs vm-test-marker "$T/hostmnt"; exec 2>&9 9>&-
seen=$(vm --rm $IMG sh -c 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\0" " "; echo; cat /proc/mounts; grep -c ^processor /proc/cpuinfo' 2>&1)
check "a container in the VM sees no host process (sleep 1000)" bash -c "! grep -q 'sleep 1000' <<<\"\$1\"" _ "$seen"
check "... and no host mount" bash -c "! grep -q vm-test-marker <<<\"\$1\"" _ "$seen"
check "... its rootfs is the virtiofs share" grep -q '^rootfs / virtiofs\|^rootfs /rootfs virtiofs\| virtiofs ' <<<"$seen"
kill $marker; umount "$T/hostmnt"

vm --rm $IMG sh -c 'echo out; echo err >&2; exit 7' >"$T/out" 2>"$T/err"; rc=$?
check "the container's exit code comes back (7)" eq $rc 7
check "... its stdout on stdout" eq "$(cat "$T/out")" out
check "... its stderr on stderr" eq "$(cat "$T/err")" err
vm --rm $IMG nosuchcmd >/dev/null 2>"$T/err"; rc=$?
check "a command that does not exist: 127, as docker" eq $rc 127
check "... saying which" grep -q 'nosuchcmd' "$T/err"
out=$(vm --rm -e FOO=bar -w /tmp -u 1000:1000 --hostname vmhost $IMG sh -c 'echo $FOO $(pwd) $(id -u):$(id -g) $(hostname)')
check "-e, -w, -u and --hostname apply in the VM" eq "$out" "bar /tmp 1000:1000 vmhost"
out=$(printf 'from stdin\n' | vm --rm -i $IMG cat)
check "-i: stdin reaches the process in the VM" eq "$out" "from stdin"
# More than the pipes hold, both ways at once (cat writes while it reads).
out=$(head -c 3000000 /dev/urandom | tee "$T/big" | vm --rm -i $IMG cat | md5sum)
check "-i: 3 MB through cat and back, unchanged" eq "$out" "$(md5sum <"$T/big")"

# Volumes: host directories over virtiofs (one share each), named volumes,
# tmpfs; a read-only one stays read-only on the host side even when the
# guest remounts it read-write.
mkdir -p "$T/vro" "$T/vrw"; echo host-data >"$T/vro/f"
out=$(vm --rm -v "$T/vro:/data:ro" -v "$T/vrw:/out" -v vmvol:/nv --tmpfs /scratch $IMG sh -c \
  'cat /data/f; echo w >/out/w; echo n >/nv/n; echo t >/scratch/t && cat /scratch/t
   mount -o remount,rw /data 2>/dev/null; echo x >/data/g 2>/dev/null || echo ro-held' 2>&1)
check "-v DIR:/data:ro: the host's file is read in the VM" bash -c "grep -qx host-data <<<\"\$1\"" _ "$out"
check "... and a guest that remounts it rw still cannot write it (got: $(tr '\n' ' ' <<<"$out"))" \
  bash -c "grep -qx ro-held <<<\"\$1\" && [ ! -e '$T/vro/g' ]" _ "$out"
check "-v DIR:/out: what the VM writes is on the host" eq "$(cat "$T/vrw/w" 2>/dev/null)" w
check "-v NAME:/nv: a named volume, kept after the container" \
  eq "$(vm --rm -v vmvol:/nv $IMG cat /nv/n 2>&1)" n
check "--tmpfs /scratch: a tmpfs in the guest" bash -c "grep -qx t <<<\"\$1\"" _ "$out"
echo f >"$T/vfile"
vm --rm -v "$T/vfile:/f" $IMG true >/dev/null 2>"$T/err"; rc=$?
check "-v FILE:/f: refused (125, virtiofs shares directories)" \
  bash -c "[ $rc = 125 ] && grep -q 'only directories' '$T/err'"
check "... and no container is left of it" eq "$("$V" ps -aq | wc -l)" 0

# Limits: --memory is the guest's RAM, --cpus its vCPUs (rounded up).
out=$(vm --rm -m 160m --cpus 1.5 $IMG sh -c 'echo $(($(sed -n "s/^MemTotal: *\([0-9]*\) kB/\1/p" /proc/meminfo) / 1024)) $(nproc)')
check "-m 160m --cpus 1.5: the guest has 2 vCPUs and at most 160 MiB (got: $out)" \
  bash -c "set -- $out; [ \"\$2\" = 2 ] && [ \"\$1\" -le 160 ] && [ \"\$1\" -gt 96 ]"

# Detached: logs, ps, stats and metrics, stop (the TERM trap's code), start again.
v1=$("$V" run -d --isolation vm -m 256m --name v1 $IMG sh -c 'trap "echo got-term; exit 3" TERM; while :; do echo tick; sleep 0.2; done')
check "run -d: the container runs and logs" poll 60 bash -c "'$V' logs v1 2>/dev/null | grep -q tick"
check "... ps shows it running" bash -c "'$V' ps | grep -q 'Up .* v1\$'"
check "... inspect says vm" eq "$("$V" inspect -f '{{.HostConfig.Isolation}}' v1)" vm
# The VMM and virtiofsd live in the container's cgroup, its limit the
# guest's 256 MiB plus the VM's overhead (192 MiB): stats and the exporter
# report them as the container.
stats=$("$V" stats --no-stream --format json v1)
check "stats: the limit is the guest's RAM + the VMM's overhead (448 MiB)" \
  eq "$(jq -r '.[0].MemLimit' <<<"$stats")" $((448 << 20))
check "... memory in use and the VMM's processes counted (got: $(jq -c '.[0] | [.MemUsage, .PIDs]' <<<"$stats"))" \
  bash -c "jq -e '.[0].MemUsage > 0 and .[0].PIDs >= 3' >/dev/null <<<'$stats'"
check "vitro monitor reports it with cAdvisor's names (cpu, memory limit)" bash -c \
  "'$V' monitor --once 2>/dev/null | grep -E '^container_(cpu_usage_seconds_total|spec_memory_limit_bytes)\\{.*name=\"v1\"' | grep -c . | grep -qx 2"
# exec: a process in the running container, inside its VM (its namespaces
# in the guest), relayed in a session of its own beside the container's.
out=$("$V" exec -e B=2 -w /tmp v1 sh -c 'echo $B $(pwd) $(uname -r) $(hostname)')
check "exec: -e and -w apply, in the guest's kernel and the container's hostname" \
  eq "$out" "2 /tmp $(cat "$KDIR/release") ${v1:0:12}"
"$V" exec v1 sh -c 'echo to-err >&2; exit 5' 2>"$T/err"; rc=$?
check "... its exit code (5) and stderr come back" bash -c "[ $rc = 5 ] && grep -qx to-err '$T/err'"
out=$(head -c 1000000 /dev/urandom | tee "$T/big" | "$V" exec -i v1 cat | md5sum)
check "... -i: 1 MB through cat and back, unchanged" eq "$out" "$(md5sum <"$T/big")"
"$V" exec v1 nosuchcmd 2>/dev/null; rc=$?
check "... a command that does not exist: 127" eq $rc 127
"$V" exec -d -u 1000 v1 sh -c 'id -u >/tmp/from-exec'
check "... -d -u 1000: runs on, detached, as that user, in the container's filesystem" \
  poll 20 bash -c "[ \"\$('$V' exec v1 cat /tmp/from-exec 2>/dev/null)\" = 1000 ]"
for i in 1 2 3 4; do "$V" exec v1 sh -c "sleep 0.5; echo par$i" >"$T/par$i" & done; wait
check "... four at once, each its own output" eq "$(cat "$T"/par[1-4] | sort | tr '\n' ' ')" "par1 par2 par3 par4 "
check "... the container ran on meanwhile" bash -c "'$V' ps | grep -q 'Up .* v1\$'"
"$V" exec -t v1 true >/dev/null 2>"$T/err"; rc=$?
check "... -t refused (125, naming it)" bash -c "[ $rc = 125 ] && grep -q -- '-t' '$T/err'"
"$V" stop -t 20 v1 >/dev/null
check "stop: the TERM reaches the process in the VM (exit 3)" eq "$("$V" inspect -f '{{.State.Status}} {{.State.ExitCode}}' v1)" "exited 3"
check "... which said so in the log" bash -c "'$V' logs v1 | grep -q got-term"
check "... and its VM is gone" poll 10 vm_gone
"$V" start v1 >/dev/null
check "start again boots a new VM" poll 60 vm_booted_and_logging
kill -9 $(pgrep -f "qemu-system-x86_64.*$T")
check "kill -9 of the VMM: the container exited 137" \
  poll 20 bash -c "[ \"\$('$V' inspect -f '{{.State.Status}} {{.State.ExitCode}}' v1)\" = 'exited 137' ]"
"$V" rm -f v1 >/dev/null
check "... and after rm nothing is left (qemu, virtiofsd, run dir, container)" poll 10 nothing_left
check "... nor its cgroup" bash -c "[ -z \"\$(find /sys/fs/cgroup -maxdepth 6 -type d -name '$v1')\" ]"

# Refused before anything is made: one line naming the flag, exit 125.
for flags in "-t" "-p 8080:80" "--network bridge" "--memory 64m" "--pids-limit 10" "--pod nopod"; do
  "$V" run --isolation vm $flags $IMG true >/dev/null 2>"$T/err"; rc=$?
  first=${flags%% *}
  check "refused with --isolation vm: $flags (125, naming it)" \
    bash -c "[ $rc = 125 ] && [ \$(wc -l <'$T/err') = 1 ] && grep -q -- '$first' '$T/err'"
done
"$V" run --isolation bogus $IMG true >/dev/null 2>"$T/err"; rc=$?
check "--isolation bogus: 125, naming the value" bash -c "[ $rc = 125 ] && grep -q bogus '$T/err'"
check "... and no container was made by any of them" eq "$("$V" ps -aq | wc -l)" 0

# Bad guest assets: a clear line, 125, nothing running or left.
VITRO_VM_DIR=$T/nokernel vm --rm $IMG true >/dev/null 2>"$T/err"; rc=$?
check "a missing kernel: 125" eq $rc 125
check "... naming it and how to get one" bash -c "grep -q '$T/nokernel/vmlinux' '$T/err' && grep -q vm-kernel.sh '$T/err'"
mkdir -p "$T/mute"; cp -a "$KDIR/." "$T/mute/"; : >"$T/mute/modules/order"
VITRO_VM_DIR=$T/mute vm --rm $IMG true >/dev/null 2>"$T/err"; rc=$?
check "a guest that never answers (no virtio modules): 125" eq $rc 125
check "... saying the VM did not say hello, with the guest's console" \
  bash -c "grep -q 'hello' '$T/err' && grep -q 'no virtio-serial port' '$T/err' || { sed 's/^/#   /' '$T/err'; false; }"
check "... and nothing is left (processes, run dirs, containers)" poll 10 nothing_left
tap_done
