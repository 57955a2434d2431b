#!/usr/bin/env bash
# The vitro engine end to end, as a user drives it: the real `vitro` binary,
# real containers, the real CNI plugins. Runs inside its own network namespace
# (the host's bridges and iptables stay untouched) with every vitro path in a
# temp dir. Prints TAP; exits non-zero when a check fails. Root only.
# usage: engine.sh PATH_TO_VITRO
set -uo pipefail
V=$(readlink -f "${1:?usage: engine.sh PATH_TO_VITRO}")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/sandbox.sh"
sandbox engine-test "$V"
export REGISTRY_AUTH_FILE=$T/auth.json
cleanup() {
  "$V" pod rm -fa >/dev/null 2>&1
  sandbox_teardown
}
trap cleanup EXIT

. "$here/../lib/tap.sh"

bash "$here/../../scripts/make-image.sh" "$T/bb.tar" >/dev/null
out=$("$V" load -i "$T/bb.tar"); check "load a docker-archive" eq "$out" "Loaded image: localhost/busybox:latest"
check "images lists it" bash -c "'$V' images --format '{{.Repository}}:{{.Tag}}' | grep -qx localhost/busybox:latest"
IMG=localhost/busybox
digest=$("$V" images --format '{{.Digest}}')
for fmt in docker-archive oci-archive; do
  "$V" save --format $fmt -o "$T/saved-$fmt.tar" busybox   # a short name finds localhost/busybox
  out=$(VITRO_ROOT=$T/other-$fmt "$V" load -i "$T/saved-$fmt.tar")
  check "save --format $fmt, then load elsewhere: same name" eq "$out" "Loaded image: localhost/busybox:latest"
  check "... and the same manifest digest" eq "$(VITRO_ROOT=$T/other-$fmt "$V" images --format '{{.Digest}}')" "$digest"
done
"$V" save --format zip -o "$T/bad.tar" $IMG 2>"$T/err"; rc=$?
check "save with an unknown format exits 125, naming it" bash -c "[ $rc = 125 ] && grep -q '\"zip\"' '$T/err' && [ ! -e '$T/bad.tar' ]"

# --- foreground runs and exit codes
out=$("$V" run --rm --network none $IMG echo hello); check "run prints the container's output" eq "$out" hello
"$V" run --rm --network none $IMG sh -c 'exit 3'; check "run exits with the container's code" eq $? 3
err=$("$V" run --rm --network none $IMG /nosuch 2>&1); rc=$?
check "a missing command exits 127" eq $rc 127
check "... and says why" bash -c "grep -q 'nosuch' <<<'$err'"
"$V" run --rm --network none nosuch/image true 2>"$T/err"; rc=$?
check "an unknown image exits 125" eq $rc 125
check "... with one clear line" bash -c "[ \$(wc -l < '$T/err') = 1 ] && grep -q 'nosuch/image: image not known' '$T/err'"
out=$(echo piped | "$V" run --rm -i --network none $IMG cat); check "-i passes stdin" eq "$out" piped
out=$("$V" run --rm --network none -e FOO=bar -w /tmp -u nobody $IMG sh -c 'echo $FOO $(pwd) $(id -u)')
check "-e, -w and -u apply" eq "$out" "bar /tmp 65534"
out=$("$V" run --rm --network none --read-only $IMG sh -c 'touch /x 2>/dev/null && echo rw || echo ro'); check "--read-only" eq "$out" ro
mkdir -p "$T/vol"; echo data > "$T/vol/f"
out=$("$V" run --rm --network none -v "$T/vol:/data:ro" $IMG cat /data/f); check "-v binds a host path" eq "$out" data
"$V" run --rm --network none -v "$T/nosuch:/data" $IMG true 2>"$T/err"; rc=$?
check "a missing volume path exits 125" eq $rc 125
check "... and leaves no container" eq "$("$V" ps -aq | wc -l)" 0
out=$("$V" run --rm --network none --memory 64m $IMG cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || true)
check "--memory sets the cgroup limit" eq "$out" 67108864
out=$("$V" run --rm --network none $IMG sh -c 'unshare -n true 2>/dev/null; echo $?'); check "the default seccomp profile denies unshare" eq "$out" 1

# --- detached: logs, exec, stop, rm
id=$("$V" run -d --name web1 --network none $IMG sh -c 'echo out; echo err >&2; trap "exit 0" TERM; while :; do sleep 0.1; done')
check "run -d prints the full ID" eq "${#id}" 64
sleep 0.5
check "a detached container's monitor waits as the small vitro-monitor" \
  eq "$(cat /proc/$("$V" inspect -f '{{.State.MonitorPid}}' web1)/comm)" vitro-monitor
check "ps shows it running" bash -c "'$V' ps --format '{{.Names}} {{.State}}' | grep -q 'web1.*running'"
out=$("$V" logs web1 2>/dev/null); check "logs has stdout" eq "$out" out
out=$("$V" logs web1 2>&1 >/dev/null); check "logs has stderr apart" eq "$out" err
check "the log file is in the CRI format" bash -c "grep -Eq '^[0-9T:.-]+Z stdout F out$' '$("$V" inspect -f '{{.LogPath}}' web1)'"
out=$("$V" exec web1 sh -c 'echo in $(hostname)'); check "exec runs inside" eq "$out" "in ${id:0:12}"
"$V" exec web1 sh -c 'exit 7'; check "exec returns the code" eq $? 7
"$V" run -d --name web1 --network none $IMG true >/dev/null 2>"$T/err"; rc=$?
check "a name in use exits 125" eq $rc 125
check "... naming the name" grep -q 'name "web1" is already in use' "$T/err"
"$V" run -d --name limited --network none --memory 64m $IMG sleep 100 >/dev/null
check "stats --no-stream reports the memory limit and the processes" \
  eq "$("$V" stats --no-stream --format '{{.MemLimit}} {{.PIDs}}' limited)" "67108864 1"
"$V" rm -f limited >/dev/null
"$V" rm web1 2>/dev/null; check "rm of a running container without -f fails" test $? -ne 0
"$V" stop -t 5 web1 >/dev/null
check "stop: exited with the code of its TERM handler" eq "$("$V" inspect -f '{{.State.Status}} {{.State.ExitCode}}' web1)" "exited 0"
check "wait prints the exit code" eq "$("$V" wait web1)" 0
"$V" start web1 >/dev/null; sleep 0.3
check "start runs it again" eq "$("$V" inspect -f '{{.State.Running}}' web1)" true
"$V" rm -f web1 >/dev/null
check "rm -f removes it" eq "$("$V" ps -aq | wc -l)" 0
check "... and its rootfs" bash -c "[ -z \"\$(ls '$VITRO_ROOT/containers')\" ]"
check "... with no mount left" bash -c "! grep -q '$T' /proc/self/mountinfo"

# --- restart policy and crash repair
"$V" run -d --name flaky --network none --restart on-failure:2 $IMG sh -c 'exit 1' >/dev/null
"$V" wait flaky >/dev/null; sleep 1.5; "$V" wait flaky >/dev/null
check "on-failure:2 restarts twice" eq "$("$V" inspect -f '{{.State.RestartCount}} {{.State.ExitCode}}' flaky)" "2 1"
"$V" rm -f flaky >/dev/null
"$V" run -d --name crash --network none $IMG sleep 100 >/dev/null
mon=$("$V" inspect -f '{{.State.MonitorPid}}' crash); pid=$("$V" inspect -f '{{.State.Pid}}' crash)
kill -9 "$mon" "$pid"; sleep 0.3
check "a kill -9 of monitor and container is repaired by the next command" \
  eq "$("$V" inspect -f '{{.State.Status}}' crash)" exited
"$V" rm crash >/dev/null; check "... and the container can be removed" eq "$("$V" ps -aq | wc -l)" 0

# --- networking (the default bridge network through CNI)
"$V" run -d --name a $IMG sleep 100 >/dev/null
ip_a=$("$V" inspect -f '{{.NetworkSettings.IPAddress}}' a)
check "a bridge container gets an address" bash -c "[[ '$ip_a' == 10.86.* ]]"
check "two containers on one bridge reach each other" "$V" run --rm $IMG ping -c1 -W2 "$ip_a"
# bridge + host-local run built in; the plugin binaries take turns with them on one network.
check "... and with the CNI plugin binaries (VITRO_CNI_BUILTIN=0) beside the built-in" \
  env VITRO_CNI_BUILTIN=0 "$V" run --rm $IMG ping -c1 -W2 "$ip_a"
"$V" run -d --name httpd -p 8080:80 $IMG httpd -f -p 80 -h /var/www >/dev/null; sleep 0.5
check "-p 8080:80 answers on 127.0.0.1:8080" bash -c "wget -qO- http://127.0.0.1:8080/ | grep -q 'hello from vitro'"
"$V" run --rm -p 8080:80 $IMG true 2>"$T/err"; rc=$?
check "a port already taken exits 125" eq $rc 125
check "... saying so" grep -q 'port 8080/tcp is already in use' "$T/err"
check "... and --rm removes the container that could not start" eq "$("$V" ps -aq | wc -l)" 2
"$V" run -d --name portless -p 8080:80 $IMG true >/dev/null 2>&1
check "without --rm, a run that could not start leaves its container created, as docker does" \
  eq "$("$V" inspect -f '{{.State.Status}}' portless 2>&1)" created
"$V" rm portless >/dev/null
check "/etc/hosts names the container" bash -c "'$V' exec a cat /etc/hosts | grep -q '$ip_a'"
out=$("$V" run --rm --network none $IMG ls /sys/class/net); check "--network none has only lo" eq "$out" lo
# CVE-2024-32473's lesson: an interface given no IPv6 address keeps none (no
# link-local address, no router advertisements taken, no solicitations sent).
check "an IPv4-only network's interface has IPv6 off" \
  eq "$("$V" run --rm $IMG cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6)" 1
check "... and no IPv6 address" eq "$("$V" run --rm $IMG sh -c 'grep -c eth0 /proc/net/if_inet6')" 0
"$V" network create --subnet fd00:93::/64 six >/dev/null
check "... and an IPv6 network's keeps it on" \
  eq "$("$V" run --rm --network six $IMG cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6)" 0
"$V" network rm six >/dev/null
# Outbound traffic is masqueraded by the network's one host rule: a peer in
# its own netns with no route back to the bridge's subnet answers only then.
# FORWARD's policy is DROP meanwhile (as docker leaves a host): the network's
# forward rules must let the traffic through.
iptables -P FORWARD DROP
unshare --net sleep 600 & outside=$!
# Until the child has unshared, it is still in this namespace: a veth moved
# to it then would stay here.
poll 10 bash -c "[ \"\$(readlink /proc/$outside/ns/net)\" != \"\$(readlink /proc/self/ns/net)\" ]"
ip link add v-out type veth peer name v-in netns $outside
ip addr add 192.0.2.1/24 dev v-out && ip link set v-out up
nsenter -t $outside -n sh -c 'ip link set lo up; ip addr add 192.0.2.2/24 dev v-in; ip link set v-in up'
check "outbound traffic is forwarded and masqueraded (a peer with no route back answers)" \
  bash -c "'$V' run --rm $IMG ping -c1 -W2 192.0.2.2 >/dev/null"
check "... by one rule for the whole network, tagged with its name" \
  eq "$(iptables -t nat -S POSTROUTING | grep -c -- '-s 10.86.0.0/16 ! -d 10.86.0.0/16 .*vitro network vitro.* -j MASQUERADE')" 1
"$V" network create --subnet 10.93.0.0/24 side >/dev/null
check "a container on a created network is masqueraded too" bash -c "'$V' run --rm --network side $IMG ping -c1 -W2 192.0.2.2 >/dev/null"
kill $outside; ip link del v-out 2>/dev/null; iptables -P FORWARD ACCEPT
"$V" network rm side >/dev/null
check "network rm takes its host rules with it" bash -c "! iptables-save | grep -q 'vitro network side'"
"$V" rm -f a httpd >/dev/null
check "nothing outlives rm: no veth" bash -c "! ip -o link | grep -q veth"
check "... no netns pin" bash -c "[ -z \"\$(ls '$VITRO_RUNROOT/netns' 2>/dev/null)\" ]"
check "... no per-container iptables chain" bash -c "! iptables -t nat -S | grep -q -- '-N CNI-[0-9a-f]'"
check "... no port held" bash -c "! ss -ltn | grep -q ':8080 '"

# --- pods: an infra holding net, ipc and uts; members on localhost; ports on the pod
pod=$("$V" pod create --name web -p 8081:80 --label app=demo)
check "pod create prints the full pod ID" eq "${#pod}" 64
check "pod ps: Created, with its infra as the one container" \
  eq "$("$V" pod ps --format '{{.Name}} {{.Status}} {{.NumberOfContainers}}')" "web Created 1"
infra=$("$V" pod inspect -f '{{.InfraContainerId}}' web)
"$V" run -d --pod web --name web-httpd --stop-timeout 2 $IMG httpd -f -p 80 -h /var/www >/dev/null
check "run --pod starts the pod's infra" eq "$("$V" inspect -f '{{.State.Running}}' "$infra")" true
"$V" run -d --pod web --name web-client --stop-timeout 2 $IMG sleep 100 >/dev/null
check "containers in a pod reach each other on localhost" \
  wait_for bash -c "'$V' exec web-client timeout 5 wget -qO- http://127.0.0.1:80/ | grep -q 'hello from vitro'"
check "the pod's published port answers on the host" \
  wait_for bash -c "wget -qO- http://127.0.0.1:8081/ | grep -q 'hello from vitro'"
check "members have the pod's hostname" eq "$("$V" exec web-client hostname) $("$V" exec web-httpd hostname)" "web web"
check "... its /etc/hosts" eq "$("$V" exec web-client cat /etc/hosts)" "$("$V" exec web-httpd cat /etc/hosts)"
ns_of() { readlink "/proc/$("$V" inspect -f '{{.State.Pid}}' "$1")/ns/$2"; }
check "... its ipc namespace" eq "$(ns_of web-client ipc)" "$(ns_of "$infra" ipc)"
check "... and not its pid namespace (not shared by default)" bash -c "[ '$(ns_of web-client pid)' != '$(ns_of "$infra" pid)' ]"
check "ps lists pod members normally" bash -c "'$V' ps --format '{{.Names}} {{.State}}' | grep -q 'web-client.*running'"
check "ps --pod shows POD ID and PODNAME" \
  bash -c "'$V' ps --pod | head -1 | grep -q 'POD ID.*PODNAME' && '$V' ps --pod | grep web-client | grep -q ' ${pod:0:12}  web$'"
check "inspect names a member's pod (for the metrics labels)" eq "$("$V" inspect -f '{{.PodName}} {{.Pod}}' web-client)" "web $pod"
check "pod ps --format json: status, count, infra, labels" bash -c "'$V' pod ps --format json | jq -e '.[0] |
  .Id == \"$pod\" and .Name == \"web\" and .Status == \"Running\" and .NumberOfContainers == 3 and
  .InfraId == \"$infra\" and .Labels.app == \"demo\"' >/dev/null"
check "pod inspect: hostname, shared namespaces, port bindings" bash -c "'$V' pod inspect web | jq -e '
  .Hostname == \"web\" and .SharedNamespaces == [\"ipc\",\"net\",\"uts\"] and
  .InfraConfig.PortBindings[\"80/tcp\"][0].HostPort == \"8081\" and (.Containers | length) == 3' >/dev/null"
check "pod ps -q prints the short ID" eq "$("$V" pod ps -q)" "${pod:0:12}"
"$V" run --pod web -p 9090:80 $IMG true 2>"$T/err"; rc=$?
check "-p on a container in a pod exits 125" eq $rc 125
check "... with podman's message" grep -q 'ports must be defined when the pod is created' "$T/err"
"$V" run --pod web --hostname other $IMG true 2>"$T/err"; rc=$?
check "--hostname on a member sharing uts exits 125" eq $rc 125
"$V" rm "$infra" 2>"$T/err"; rc=$?
check "the infra cannot be removed alone" bash -c "[ $rc != 0 ] && grep -q 'infra container of pod web' '$T/err'"
"$V" pod rm web 2>"$T/err"; rc=$?
check "pod rm of a running pod exits 125" eq $rc 125
check "... naming what runs" grep -q 'pod web has running containers' "$T/err"
"$V" pod stop -t 2 web >/dev/null
check "pod stop stops every container" eq "$("$V" pod inspect -f '{{.State}}' web)" Exited
check "... and frees the published port" bash -c "! ss -ltn | grep -q ':8081 '"
"$V" pod start web >/dev/null
check "pod start runs them all again" eq "$("$V" pod ps --format '{{.Status}}')" Running
check "... serving on the pod's port again" wait_for bash -c "wget -qO- http://127.0.0.1:8081/ | grep -q 'hello from vitro'"
"$V" stop "$infra" >/dev/null
check "stopping the infra stops the pod" eq "$("$V" pod inspect -f '{{.State}}' web)" Exited
"$V" pod restart web >/dev/null
check "pod restart" eq "$("$V" pod inspect -f '{{.State}}' web)" Running
"$V" pod kill web >/dev/null
check "pod kill: the infra's exit is recorded" wait_for bash -c "[ \"\$('$V' pod inspect -f '{{.State}}' web)\" = Exited ]"
"$V" pod start web >/dev/null
kill -9 "$("$V" inspect -f '{{.State.Pid}}' "$infra")"
check "the infra's process dying stops the pod (its monitor stops the members)" \
  wait_for bash -c "[ \"\$('$V' pod inspect -f '{{.State}}' web)\" = Exited ]"
"$V" pod start web >/dev/null
client=$("$V" inspect -f '{{.Id}}' web-client)
"$V" rm -f web-client >/dev/null
check "removing a container leaves the pod" eq "$("$V" pod inspect -f '{{.NumContainers}} {{.State}}' web)" "2 Running"
ids="$infra $client $("$V" inspect -f '{{.Id}}' web-httpd)"
"$V" pod rm -f web >/dev/null
check "pod rm -f removes the pod and its containers" eq "$("$V" pod ps -q | wc -l) $("$V" ps -aq | wc -l)" "0 0"
check "... no state rows" eq "$(sqlite3 "$VITRO_ROOT/vitro.db" 'select (select count(*) from pods) + (select count(*) from containers)')" 0
check "... no netns pin, no veth" bash -c "[ -z \"\$(ls '$VITRO_RUNROOT/netns' 2>/dev/null)\" ] && ! ip -o link | grep -q veth"
check "... no cgroup" bash -c "for id in $ids; do ! ls -d /sys/fs/cgroup/*/vitro/\$id 2>/dev/null | grep -q . || exit 1; done"
# Processes of these containers (their cgroup) or their monitors (the ID on the command line); the
# pattern does not match itself. Not pgrep: other tests on the machine may run an httpd too.
procs_of() { local id; for id in "$@"; do grep -l "[${id:0:1}]${id:1}" /proc/[0-9]*/cgroup /proc/[0-9]*/cmdline 2>/dev/null; done; }
check "... no process (container or monitor)" eq "$(procs_of $ids)" ""
check "... no port held" bash -c "! ss -ltn | grep -q ':8081 '"
"$V" pod create --name solo >/dev/null
"$V" run --rm --pod solo $IMG true
check "a --rm member leaves the pod and its running infra" eq "$("$V" pod inspect -f '{{.NumContainers}} {{.State}}' solo)" "1 Running"
"$V" pod rm -f solo >/dev/null
"$V" pod create --name duo >/dev/null
"$V" run -d --pod duo --name duo1 $IMG sleep 100 >/dev/null & "$V" run -d --pod duo --name duo2 $IMG sleep 100 >/dev/null; wait
check "two members started at once start one infra and share its network" \
  bash -c "[ -n '$(ns_of duo1 net)' ] && [ '$(ns_of duo1 net)' = '$(ns_of duo2 net)' ] && [ '$(ns_of duo1 net)' = '$(ns_of "$("$V" pod inspect -f '{{.InfraContainerId}}' duo)" net)' ]"
check "... and the pod runs" eq "$("$V" pod inspect -f '{{.State}}' duo)" Running
"$V" pod rm -f duo >/dev/null

# --- pods: bad input leaves nothing
counts() { echo "$("$V" pod ps -q | wc -l) $("$V" ps -aq | wc -l) $(ls "$VITRO_ROOT/containers" | wc -l)" \
  "$(ls "$VITRO_RUNROOT/netns" 2>/dev/null | wc -l) $(ip -o link | grep -c veth)"; }
pod_create_fails() {  # EXPECTED-MESSAGE ARGS...: exits 125, says so, leaves nothing
  local msg=$1; shift
  local before; before=$(counts)
  "$V" pod create "$@" >/dev/null 2>"$T/err"; local rc=$?
  check "pod create $* exits 125" eq $rc 125
  check "... saying $msg" grep -q -- "$msg" "$T/err"
  check "... leaving no pod, container, rootfs, netns or veth" eq "$(counts)" "$before"
}
pod_create_fails 'container port "70000" is not in 1-65535' -p 8082:70000
pod_create_fails 'network "nosuch" not found' --network nosuch
pod_create_fails 'unknown namespace "user"' --share net,user
pod_create_fails 'invalid pod name' --name 'bad/name'
"$V" pod create --name taken -p 8083:80 >/dev/null && "$V" pod start taken >/dev/null
pod_create_fails 'port 8083/tcp is already in use' -p 8083:80
"$V" pod create --name taken 2>"$T/err"; rc=$?
check "a pod name in use exits 125, naming it" bash -c "[ $rc = 125 ] && grep -q 'pod name \"taken\" is already in use' '$T/err'"
"$V" run --pod nosuch $IMG true 2>"$T/err"; rc=$?
check "run --pod with an unknown pod exits 125" bash -c "[ $rc = 125 ] && grep -q 'no pod with name or ID \"nosuch\"' '$T/err'"
"$V" pod rm -f taken >/dev/null
check "... and leaves no container" eq "$("$V" ps -aq | wc -l)" 0
"$V" pod rm nosuch 2>/dev/null; rc=$?
check "pod rm of an unknown pod exits 1 (podman's code)" eq $rc 1

# --- storage: system df and prune
check "system df counts the image" bash -c "'$V' system df --format '{{.Type}} {{.Total}}' | grep -qx 'Images 1'"
"$V" create --name stopped --network none $IMG true >/dev/null
stray=$VITRO_ROOT/blobs/sha256/$(printf '%064d' 0)
echo junk > "$stray"
"$V" system prune -f >/dev/null
check "prune keeps a fresh unreferenced blob (a pull may be under way)" test -e "$stray"
check "prune removes stopped containers" eq "$("$V" ps -aq | wc -l)" 0
"$V" system prune -f --grace 0 >/dev/null
check "prune --grace 0 removes an unreferenced blob" test ! -e "$stray"
out=$("$V" run --rm --network none $IMG echo still-here)
check "... and keeps every blob and layer the image needs" eq "$out" still-here

tap_done
