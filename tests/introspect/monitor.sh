#!/usr/bin/env bash
# vitro monitor against ground truth: real containers (vitro's, and crun's and
# runc's found through their state dirs), a real Prometheus scraping the
# exporter every second, PromQL answers compared with what the kernel says.
# Runs in its own network namespace with every path in a temp dir. TAP. Root.
# usage: monitor.sh PATH_TO_VITRO
set -uo pipefail
V=$(readlink -f "${1:?usage: monitor.sh PATH_TO_VITRO}")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/sandbox.sh"
sandbox monitor-test "$V"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  "$V" pod rm -f pod1 >/dev/null 2>&1
  runc --root "$T/runc" delete -f fr >/dev/null 2>&1
  sandbox_teardown
}
trap cleanup EXIT

. "$here/../lib/tap.sh"

sandbox_image

# The workloads: CPU held to half a core, a tmpfs to fill, a TCP sink on the bridge.
"$V" run -d --name cpu --cpus 0.5 --network none $IMG sh -c 'while :; do :; done' >/dev/null
"$V" run -d --name mem --network none --tmpfs /big:size=200m $IMG sleep 1000 >/dev/null
"$V" pod create --name pod1 >/dev/null
"$V" run -d --pod pod1 --name inpod $IMG sleep 1000 >/dev/null
"$V" run -d --name net $IMG sh -c 'while :; do nc -l -p 9000 >/dev/null; done' >/dev/null
# A container another runtime started, found through its state directory
# (runc: crun refuses cgroup hybrid hosts such as this CI machine).
bash "$here/../../scripts/make-bundle.sh" "$T/bundle" sleep 1000 >/dev/null
sed -i 's/"terminal": true/"terminal": false/' "$T/bundle/config.json"
runc --root "$T/runc" run -d --bundle "$T/bundle" fr >/dev/null 2>"$T/runc.err" </dev/null || echo "# runc: $(cat "$T/runc.err")"

MON=(--runtime-root "$T/runc")
"$V" monitor "${MON[@]}" --once >"$T/once.prom"
check "--once: one scrape, promtool check metrics is clean" bash -c "promtool check metrics <'$T/once.prom'"
for name in cpu mem net; do
  check "container $name has cAdvisor's series with id, name and image" \
    grep -q "^container_cpu_usage_seconds_total{id=\"/[^\"]*\",image=\"$IMG\",name=\"$name\",cpu=\"total\"}" "$T/once.prom"
done
found_runc() { "$V" monitor "${MON[@]}" --once >"$T/runc.prom" && grep -q 'container_processes{id="[^"]*fr",image="",name="fr"} 1' "$T/runc.prom"; }
if poll 30 found_runc; then ok "runc's container is found through its state dir"; else
  not_ok "runc's container is found through its state dir"
  echo "#   runc state: $(runc --root "$T/runc" state fr 2>&1 | tr '\n' ' ')"
  echo "#   series named fr: $(grep 'name="fr"' "$T/runc.prom" | head -3 | tr '\n' ' ')"
fi
check "host metrics: node_cpu_seconds_total, machine_memory_bytes" \
  bash -c "grep -q '^node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}' '$T/once.prom' && grep -q '^machine_memory_bytes [1-9]' '$T/once.prom'"
check "top processes carry pid, comm and the exe's SHA-256" \
  grep -qE "^vitro_process_cpu_seconds_total\{[^}]*name=\"cpu\",comm=\"sh\",exe_sha256=\"$(sha256sum /bin/busybox | cut -c1-64)\",pid=\"[0-9]+\"\}" "$T/once.prom"
check "a pod member carries the pod label" grep -q 'container_processes{[^}]*name="inpod",namespace="",pod="pod1"} 1' "$T/once.prom"
# Processes, threads, fds and sockets against /proc: the net container's
# shell and its `nc -l` (one listening socket), listed by its cgroup.
netpid=$("$V" inspect --format '{{.State.Pid}}' net)
cg=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print "/sys/fs/cgroup/memory" $3; exit}' "/proc/$netpid/cgroup")
[ -n "$cg" ] || cg=/sys/fs/cgroup$(awk -F: '$1 == "0" {print $3}' "/proc/$netpid/cgroup")
"$V" monitor "${MON[@]}" --once >"$T/procs.prom"
series() { sed -n "s/^$1{[^}]*name=\"net\"} //p" "$T/procs.prom"; }
nprocs=0; nfds=0; nthreads=0
for p in $(cat "$cg/cgroup.procs"); do
  nprocs=$((nprocs + 1))
  nfds=$((nfds + $(ls "/proc/$p/fd" | wc -l)))
  nthreads=$((nthreads + $(awk '{print $20}' "/proc/$p/stat")))
done
check "container_processes is cgroup.procs' count ($nprocs)" eq "$(series container_processes)" "$nprocs"
check "container_threads is its processes' threads ($nthreads)" eq "$(series container_threads)" "$nthreads"
check "container_file_descriptors is their /proc/PID/fd entries ($nfds)" eq "$(series container_file_descriptors)" "$nfds"
check "container_sockets counts nc's listener" eq "$(series container_sockets)" 1
check "pod-level series: vitro_pod_containers counts the infra and the member" grep -q '^vitro_pod_containers{namespace="",pod="pod1"} 2' "$T/once.prom"
check "spec: the CPU quota of --cpus 0.5" grep -q 'container_spec_cpu_quota{[^}]*name="cpu"} 50000' "$T/once.prom"

# The service, and a real Prometheus scraping it every second.
"$V" monitor "${MON[@]}" --listen 127.0.0.1:0 >"$T/monitor.out" 2>"$T/monitor.err" &
pids+=($!)
poll 20 grep -q serving "$T/monitor.out"
URL=$(sed -n 's/.*serving \(http[^ ]*\).*/\1/p' "$T/monitor.out")
PORT=$(echo "$URL" | sed 's/.*:\([0-9]*\)\/metrics/\1/')
check "serves on a free port: $URL" curl -sf -o "$T/scrape.prom" "$URL"
check "a served scrape is promtool-clean too" bash -c "promtool check metrics <'$T/scrape.prom'"
"$V" monitor --listen "127.0.0.1:$PORT" >/dev/null 2>"$T/err"; rc=$?
check "a taken port: exit 125 and a message naming the address" \
  bash -c "[ $rc = 125 ] && grep -q 'listen 127.0.0.1:$PORT: cannot bind' '$T/err'"

# Which path runs: on this kernel both BPF walks load (in the background: the
# port is served first), and nothing says it fell back; where one cannot
# load, one line on stderr at the default log level and a 0 gauge say so.
walks_loaded() { grep -q '^vitro_exporter_bpf_walk_loaded{walk="cgroup"} 1' "$1" && grep -q '^vitro_exporter_bpf_walk_loaded{walk="task"} 1' "$1"; }
if [ -e /sys/kernel/btf/vmlinux ]; then
  check "--once: both BPF walks run (vitro_exporter_bpf_walk_loaded 1)" walks_loaded "$T/once.prom"
  served_walks() { curl -sf -o "$T/walks.prom" "$URL" && walks_loaded "$T/walks.prom"; }
  check "the service: both BPF walks run once loaded" poll 60 served_walks
  check "... and its stderr names no fallback" bash -c "! grep 'counters: every' '$T/monitor.err'"
else
  echo "# skip: no kernel BTF (/sys/kernel/btf/vmlinux): the BPF walks cannot load here"
fi
chmod 755 "$T"
setpriv --reuid 65534 --regid 65534 --clear-groups "$V" --root "$T/nobody" monitor --runtime-root "$T/nobody" --once >"$T/nobody.prom" 2>"$T/nobody.err"
check "without BPF (not root): each walk's fallback is one line on stderr" \
  bash -c "[ \$(grep -c 'counters: every.*needs root' '$T/nobody.err') = 2 ]"
check "... and vitro_exporter_bpf_walk_loaded says 0" \
  bash -c "grep -q '^vitro_exporter_bpf_walk_loaded{walk=\"cgroup\"} 0' '$T/nobody.prom' && grep -q '^vitro_exporter_bpf_walk_loaded{walk=\"task\"} 0' '$T/nobody.prom'"

# Idle and trickling connections (slowloris), more than the exporter keeps:
# every new scrape is still served. curl's --max-time bounds a hang only.
held=()
for i in $(seq 100); do
  exec {fd}<>"/dev/tcp/127.0.0.1/$PORT" && held+=("$fd") && printf 'GET /metrics HTTP/1.1\r\nHost: x\r\n' >&"$fd"
done
for i in $(seq 60); do exec {fd}<>"/dev/tcp/127.0.0.1/$PORT" && held+=("$fd"); done
fails=0
for probe in 1 2 3 4 5; do
  ( trap '' PIPE; for fd in "${held[@]}"; do printf X >&"$fd"; done ) 2>/dev/null  # some were closed: evicted
  curl -sf --max-time 60 -o /dev/null "$URL" || fails=$((fails + 1))
done
for fd in "${held[@]}"; do exec {fd}>&-; done
check "${#held[@]} idle or trickling connections held: 5 scrapes, none refused" test "$fails" = 0
# HTTP/1.0 keep-alive (ab -k): answered as kept alive, never left waiting for a close.
timeout 120 ab -k -n 50 "$URL" >"$T/ab.out" 2>&1
check "ab -k -n 50: 50 requests complete, all on kept-alive connections" \
  bash -c "grep -q '^Complete requests: *50$' '$T/ab.out' && grep -q '^Keep-Alive requests: *50$' '$T/ab.out'"

cat >"$T/prometheus.yml" <<EOF2
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: vitro
    static_configs: [{targets: ["127.0.0.1:$PORT"]}]
EOF2
prometheus --config.file "$T/prometheus.yml" --storage.tsdb.path "$T/tsdb" \
  --web.listen-address 127.0.0.1:0 >"$T/prom.log" 2>&1 &
pids+=($!)
# Prometheus logs the port it bound when asked for :0.
poll 30 grep -q 'msg="Listening on"' "$T/prom.log"
PROM=$(sed -n 's/.*msg="Listening on" address=\([0-9.:]*\).*/\1/p' "$T/prom.log" | head -1)
q() { curl -sf --data-urlencode "query=$1" "http://$PROM/api/v1/query" | jq -r '.data.result[0].value[1] // empty'; }
check "Prometheus scrapes the exporter (up == 1)" poll 60 bash -c "[ \"\$(curl -sf --data-urlencode 'query=up' http://$PROM/api/v1/query | jq -r '.data.result[0].value[1] // empty')\" = 1 ]"
t_start=$SECONDS

# Memory: 100 MiB written to the container's tmpfs is charged to its cgroup.
ws() { q 'container_memory_working_set_bytes{name="mem"}'; }
poll 20 bash -c "[ -n \"\$($(declare -f q); PROM=$PROM; q 'container_memory_working_set_bytes{name=\"mem\"}')\" ]"
before=$(ws)
"$V" exec mem dd if=/dev/zero of=/big/fill bs=1M count=100 2>/dev/null
want=$((before + 104857600))
poll 20 bash -c "$(declare -f q within); PROM=$PROM; within \"\$(q 'container_memory_working_set_bytes{name=\"mem\"}')\" $want 5 2>/dev/null"
after=$(ws)
check "100 MiB allocated reads in working_set_bytes within 5% ($before -> $after)" within "$((after - before))" 104857600 5

# Network: bytes sent to the container equal what its veth's host end transmitted.
# The host end of the container's eth0: the interface whose index is eth0's iflink.
peer=$("$V" exec net cat /sys/class/net/eth0/iflink)
veth=$(ip -j link show | jq -r ".[] | select(.ifindex == $peer) | .ifname")
txb() { ip -j -s link show dev "$veth" | jq '.[0].stats64.tx.bytes'; }  # this netns's, not sysfs's
rx() { q 'container_network_receive_bytes_total{name="net",interface="eth0"}'; }
poll 20 bash -c "[ -n \"\$($(declare -f q); PROM=$PROM; q 'container_network_receive_bytes_total{name=\"net\"}')\" ]"
v0=$(txb); r0=$(rx)
head -c 8388608 /dev/zero >"$T/payload"
# bash's /dev/tcp: busybox nc can close with the payload unsent.
cat "$T/payload" >"/dev/tcp/$("$V" inspect --format '{{.NetworkSettings.IPAddress}}' net)/9000"
poll 20 bash -c "[ \"\$($(declare -f q); PROM=$PROM; q 'container_network_receive_bytes_total{name=\"net\",interface=\"eth0\"}')\" -ge $((r0 + 8388608)) ]"
sleep 2  # let the counters settle: two more scrapes
v1=$(txb); r1=$(rx)
check "8 MiB sent: receive_bytes_total grew by at least the payload ($((r1 - r0)))" test "$((r1 - r0))" -ge 8388608
check "... and by what the veth's host end transmitted, within 1% ($((v1 - v0)))" within "$((r1 - r0))" "$((v1 - v0))" 1

# CPU: a busy loop held to 0.5 CPU. Ground truth: its own utime+stime from
# /proc over the same window, read here (a shared machine may starve it below
# its quota, so 0.5 itself is checked only when the kernel says it got it).
poll 60 test $((SECONDS - t_start)) -ge 10
cpid=$("$V" inspect --format '{{.State.Pid}}' cpu)
ticks() { awk '{print $14 + $15}' "/proc/$cpid/stat"; }
hz=$(getconf CLK_TCK)
k0=$(ticks); w0=$(date +%s.%N)
sleep 30
k1=$(ticks); w1=$(date +%s.%N)
truth=$(awk -v a="$k0" -v b="$k1" -v hz="$hz" -v t0="$w0" -v t1="$w1" 'BEGIN { print (b - a) / hz / (t1 - t0) }')
cpu=$(q "rate(container_cpu_usage_seconds_total{name=\"cpu\"}[30s])")
check "rate(container_cpu_usage_seconds_total) matches the process's CPU time within 5% ($cpu vs $truth)" within "$cpu" "$truth" 5
if within "$truth" 0.5 5 2>/dev/null; then
  check "... and a container held to 0.5 CPU reads 0.5 within 5% ($cpu)" within "$cpu" 0.5 5
else
  echo "# the machine gave the 0.5-CPU container only $truth CPU: the 0.5 check is skipped"
fi
thr=$(q 'rate(container_cpu_cfs_throttled_periods_total{name="cpu"}[30s]) > 0')
check "... and it is throttled (cfs_throttled_periods grows)" test -n "$thr"

# The Grafana dashboard's queries parse and name series the exporter serves.
dash=$here/../../deploy/grafana/vitro-dashboard.json
bad=""
while IFS= read -r expr; do
  expr=${expr//\$instance/.*}; expr=${expr//\$container/.*}
  st=$(curl -s --data-urlencode "query=$expr" "http://$PROM/api/v1/query" | jq -r .status)
  [ "$st" = success ] || bad="$bad [$expr]"
  for m in $(grep -oE '(container|vitro|node|machine|process)_[a-z0-9_]+' <<<"$expr" | sort -u); do
    [ "$m" = vitro_alerts_total ] && continue  # served once a detector runs
    grep -q "^$m[{ ]" "$T/scrape.prom" || bad="$bad [$m not served]"
  done
done < <(jq -r '.panels[].targets[].expr' "$dash")
check "the Grafana dashboard's PromQL parses and uses served metrics" test -z "$bad"
[ -z "$bad" ] || echo "#  $bad"

# Containers that come and go while being scraped: the exporter keeps serving.
( for i in $(seq 8); do "$V" run --rm --network none $IMG true >/dev/null 2>&1; done ) &
churn=$!
fails=0 scrapes=0
while kill -0 $churn 2>/dev/null; do
  curl -sf -o /dev/null "$URL" || fails=$((fails + 1)); scrapes=$((scrapes + 1))
done
check "containers exiting mid-scrape: $scrapes scrapes, none failed" test "$fails" = 0
check "... and the exporter is still running" kill -0 "${pids[0]}"

# Bad input.
"$V" monitor --listen nowhere --once >/dev/null 2>"$T/err"; rc=$?
check "a listen address without a port is refused, naming it" bash -c "[ $rc = 125 ] && grep -q '\"nowhere\"' '$T/err'"
printf 'listen: 127.0.0.1:0\nbogus: 1\n' >"$T/bad.yaml"
"$V" monitor --config "$T/bad.yaml" --once >/dev/null 2>"$T/err"; rc=$?
check "an unknown config setting is refused, naming it" bash -c "[ $rc = 125 ] && grep -q 'unknown setting \"bogus\"' '$T/err'"
printf 'listen: [1, 2\n' >"$T/bad.yaml"
"$V" monitor --config "$T/bad.yaml" --once >/dev/null 2>"$T/err"; rc=$?
check "a config file that is not YAML is refused, naming the file" bash -c "[ $rc = 125 ] && grep -q '$T/bad.yaml' '$T/err'"
"$V" monitor --cgroup-root "$T/nocgroups" --once >/dev/null 2>"$T/err"; rc=$?
check "no cgroup hierarchy under --cgroup-root: a clear message" bash -c "[ $rc = 125 ] && grep -q 'no cgroup hierarchy' '$T/err'"

kill -TERM "${pids[0]}"; wait "${pids[0]}"; rc=$?
check "SIGTERM ends the service cleanly (exit 0)" test "$rc" = 0

tap_done
