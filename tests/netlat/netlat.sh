#!/bin/bash
# vitro netlat ping against a real topology this test makes in namespaces of
# its own: remote <-veth-> host (router; bridge br0) <-veth-> ctr. Checks the
# JSON of a bridged and a NATed run (every reply matched, overhead > 0,
# corrected < raw), the bad inputs (missing netns, unreachable target, a
# namespace without a network, the host's own namespace), and that no BPF
# program of ours stays loaded afterwards, after SIGINT and SIGKILL too; and a
# shortened `netlat calibrate`, and `netlat calibrate --reference iputils`
# (iputils ping and the kernel's echo as the reference).
# No timing assertions. Exit 77 (skip) with the reason when the machine lacks
# what it needs.
set -u
VITRO=${1:?usage: netlat.sh PATH_TO_VITRO}
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, BPF)"
[ -r /sys/kernel/btf/vmlinux ] || skip "no kernel BTF (/sys/kernel/btf/vmlinux): the BPF tracer cannot load"
for t in ip jq bpftool iptables; do command -v $t >/dev/null || skip "$t not installed (scripts/setup.sh)"; done

P=vnlt$$
T=$(mktemp -d /tmp/vitro-netlat-test.XXXXXX)
fail=0
pass() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fail=1; }
cleanup() {
    [ -n "${BG:-}" ] && kill -9 "$BG" 2>/dev/null
    for n in remote host ctr empty; do ip netns del $P-$n 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT

# Programs of ours still loaded (netlat_xmit, netlat_rx, ...).
our_progs() { bpftool prog list 2>/dev/null | grep -c ' name netlat_' ; }
# The kernel frees a program shortly after its last fd and link go (deferred
# work), so "none left" is polled for, up to 10 s: not a timing assertion.
no_progs_left() { for _ in $(seq 100); do [ "$(our_progs)" = 0 ] && return 0; sleep 0.1; done; return 1; }
[ "$(our_progs)" = 0 ] || skip "netlat BPF programs already loaded by another vitro: cannot tell ours apart"

set -e
. "$(dirname "$0")/../lib/netlat_topology.sh"
netlat_topology $P host 10.77
ip netns add $P-empty; ip -n $P-empty link set lo up
set +e

CTR=/run/netns/$P-ctr HOST=/run/netns/$P-host
ping_json() { "$VITRO" netlat ping --netns $CTR --host-netns $HOST --hops "$@" --format json; }

check_run() {  # $1: label, $2: json file
    local j=$2
    local sent matched
    sent=$(jq .sent "$j"); matched=$(jq .matched "$j")
    [ "$sent" = 20 ] && [ "$(jq .received "$j")" = 20 ] && pass "$1: 20 sent, 20 replies" || bad "$1: sent $sent received $(jq .received "$j")"
    [ "$matched" = 20 ] && pass "$1: every reply matched to its trace events" || bad "$1: matched $matched of 20: $(jq -c '[.packets[].unmatched_reason]' "$j")"
    [ "$(jq '[.packets[] | select(.matched) | select(.overhead_us > 0 and .corrected_us < .raw_us and .egress_us > 0 and .ingress_us > 0)] | length' "$j")" = "$matched" ] \
        && pass "$1: overhead > 0 and corrected < raw for every matched packet" || bad "$1: overhead/corrected out of range"
    # The path: the request leaves eth0 in the container, is queued at vh0 and
    # taken up there by the softirq, crosses br0, leaves the host by up-h.
    [ "$(jq -r '[.packets[0].events[] | select(.dir=="request") | .hook + ":" + .ifname] | join(" ")' "$j")" \
        = "xmit:eth0 recv:vh0 process:vh0 recv:br0 xmit:up-h" ] \
        && pass "$1: request path eth0 vh0 br0 up-h (container and host namespaces only)" || bad "$1: request path $(jq -c '[.packets[0].events[] | .hook + ":" + .ifname]' "$j")"
    # up-h is a veth (the remote is another namespace of this kernel): bare
    # metal waits for the softirq at its peer as long as the container's
    # request waits at vh0, so that wait is left out of the overhead:
    # backlog = vh0 taken up - vh0 queued, egress = up-h out - eth0 out - backlog.
    [ "$(jq '[.packets[] | select(.matched) | (.events | map(select(.dir=="request"))) as $r
              | ($r | map(select(.hook=="process" and .ifname=="vh0"))[0].ts_ns) as $p
              | ($r | map(select(.hook=="recv" and .ifname=="vh0" and .queued))[0].ts_ns) as $q
              | ($r | map(select(.hook=="xmit" and .ifname=="up-h" and .local_peer))[0].ts_ns) as $o
              | ($r | map(select(.hook=="xmit" and .ifname=="eth0"))[0].ts_ns) as $c
              | select(.backlog_us > 0 and ((.backlog_us - ($p - $q) / 1000) | fabs) < 0.01
                       and ((.egress_us - (($o - $c) / 1000 - .backlog_us)) | fabs) < 0.01)] | length' "$j")" = "$matched" ] \
        && pass "$1: the request's backlog wait at vh0 is left in (egress up-h is a veth, where bare metal waits too)" \
        || bad "$1: backlog wait not taken off: $(jq -c '.packets[0] | {egress_us, backlog_us, events: [.events[] | {ts_ns, hook, ifname, queued, local_peer}]}' "$j")"
}

# Bridged and routed.
ping_json -c 20 -i 0.02 10.77.0.2 > $T/bridged.json 2> $T/bridged.err
rc=$?
[ $rc = 0 ] && pass "bridged: exit 0" || { bad "bridged: exit $rc: $(cat $T/bridged.err)"; }
check_run bridged $T/bridged.json
no_progs_left && pass "no BPF program left after a normal exit" || bad "BPF programs left after exit"

# By default the tracer records only the four edges the overhead needs.
"$VITRO" netlat ping --netns $CTR --host-netns $HOST -c 3 -i 0.02 --format json 10.77.0.2 > $T/edges.json 2>&1
[ "$(jq -r '[.packets[] | select(.matched) | [.events[] | .dir + ":" + .hook + ":" + .ifname] | join(" ")] | unique | join("|")' $T/edges.json)" \
    = "request:xmit:eth0 request:recv:vh0 request:process:vh0 request:xmit:up-h reply:recv:up-h reply:recv:eth0" ] \
    && pass "default: the four edge events and the backlog wait at vh0 per echo" \
    || bad "default edges: $(jq -c '.packets[0].events' $T/edges.json)"

# Text output and a plot.
"$VITRO" netlat ping --netns $CTR --host-netns $HOST -c 3 -i 0.02 --plot $T/p.svg 10.77.0.2 > $T/text.out 2>&1
grep -q "3 packets transmitted, 3 received, 0% packet loss, 3 matched" $T/text.out && grep -q '^corrected ' $T/text.out \
    && pass "text summary" || bad "text summary: $(cat $T/text.out)"
grep -q '<svg' $T/p.svg && pass "--plot writes an SVG" || bad "--plot"
"$VITRO" netlat ping --netns $CTR --host-netns $HOST -c 3 -i 0.02 --format csv 10.77.0.2 > $T/csv.out 2>&1
[ "$(grep -c '^[0-9]*,1,[0-9.]*,1,' $T/csv.out)" = 3 ] && pass "csv rows" || bad "csv: $(cat $T/csv.out)"

# The tracefs fallback: same path, found by device, length and skb address.
if [ -d /sys/kernel/tracing/events/net ] || mount | grep -q tracefs || [ -d /sys/kernel/tracing ]; then
    "$VITRO" netlat ping --netns $CTR --host-netns $HOST --tracer tracefs -c 20 -i 0.02 --format json 10.77.0.2 > $T/tracefs.json 2> $T/tracefs.err
    rc=$?
    if [ $rc = 0 ] && [ "$(jq -r .tracer $T/tracefs.json)" = tracefs ]; then
        m=$(jq .matched $T/tracefs.json)
        # Unmatched only with a reason (ambiguity is reported, never guessed).
        [ "$m" -ge 1 ] && [ "$(jq '[.packets[] | select(.replied and (.matched|not) and (.unmatched_reason|length) == 0)] | length' $T/tracefs.json)" = 0 ] \
            && pass "tracefs fallback: $m of 20 matched, the rest with a reason" || bad "tracefs: $(jq -c '[.packets[].unmatched_reason]' $T/tracefs.json)"
        [ "$(jq '[.packets[] | select(.matched) | select(.overhead_us > 0 and .corrected_us < .raw_us)] | length' $T/tracefs.json)" = "$m" ] \
            && pass "tracefs fallback: overhead > 0, corrected < raw" || bad "tracefs: overhead/corrected out of range"
    else
        bad "tracefs fallback: exit $rc: $(cat $T/tracefs.err)"
    fi
    [ -z "$(ls /sys/kernel/tracing/instances 2>/dev/null | grep vitro-netlat)" ] && pass "tracefs: no instance left" || bad "tracefs instance left"
else
    echo "skip - tracefs fallback: no tracefs"
fi

# NATed: the host masquerades; the remote has no route back to 10.77.1.0/24.
ip -n $P-remote route del 10.77.1.0/24 via 10.77.0.1
ip netns exec $P-host iptables -t nat -A POSTROUTING -s 10.77.1.0/24 -o up-h -j MASQUERADE
ping_json -c 20 -i 0.02 10.77.0.2 > $T/nat.json 2> $T/nat.err
rc=$?
[ $rc = 0 ] && pass "nat: exit 0" || bad "nat: exit $rc: $(cat $T/nat.err)"
check_run nat $T/nat.json

# Bad input: each a clear message and a non-zero exit.
expect_error() {  # $1 label, $2 pattern, rest: command
    local label=$1 pat=$2; shift 2
    "$@" > $T/bad.out 2> $T/bad.err
    local rc=$?
    if [ $rc != 0 ] && grep -q "$pat" $T/bad.err; then pass "$label: exit $rc, \"$(head -1 $T/bad.err)\""
    else bad "$label: exit $rc, stderr: $(cat $T/bad.err)"; fi
}
expect_error "missing netns" "no such network namespace" "$VITRO" netlat ping --netns /run/netns/$P-nope -c 1 10.77.0.2
expect_error "not a netns file" "not a network namespace" "$VITRO" netlat ping --netns /etc/hostname -c 1 10.77.0.2
expect_error "unreachable target" "no reply from 10.77.0.99" "$VITRO" netlat ping --netns $CTR --host-netns $HOST -c 2 -i 0.1 -W 0.3 10.77.0.99
expect_error "namespace without a network" "Network is unreachable" "$VITRO" netlat ping --netns /run/netns/$P-empty --host-netns $HOST -c 1 10.77.0.2
expect_error "the host's own namespace" "shares the host's network namespace" "$VITRO" netlat ping --netns $HOST --host-netns $HOST -c 1 10.77.0.2
expect_error "no such pid" "no such process" "$VITRO" netlat ping --pid 999999999 -c 1 10.77.0.2
expect_error "bad format" "expected text, json or csv" "$VITRO" netlat ping --netns $CTR --format yaml -c 1 10.77.0.2
# No permission to load BPF: an unprivileged user in a user namespace of its
# own (two network namespaces there, so that there is something to trace).
U=$(mktemp -d /tmp/vitro-netlat-nobody.XXXXXX); chmod 755 "$U"; cp "$VITRO" "$U/vitro"; chmod 755 "$U/vitro"
if setpriv --reuid=65534 --regid=65534 --clear-groups unshare -Urn true 2>/dev/null; then
    setpriv --reuid=65534 --regid=65534 --clear-groups unshare -Urn sh -c \
        'unshare -n sleep 10 & p=$!; sleep 0.3; "$0" netlat ping --pid $p --host-netns /proc/$$/ns/net --tracer bpf -c 1 127.0.0.1; rc=$?; kill $p; exit $rc' \
        "$U/vitro" > $T/bad.out 2> $T/bad.err
    rc=$?
    # (rc != 0, not 125: a sanitizer build may end differently as nobody.)
    [ $rc != 0 ] && grep -q "needs CAP_BPF and CAP_PERFMON, or root" $T/bad.err \
        && pass "no permission to load BPF: exit $rc, \"$(head -1 $T/bad.err | cut -c1-120)\"" || bad "no BPF permission: exit $rc: $(cat $T/bad.err)"
else
    echo "ok - no permission to load BPF # SKIP unprivileged user namespaces are off here"
fi
rm -rf "$U"
no_progs_left && pass "no BPF program left after the failures" || bad "BPF programs left after failures"

# Interrupted: SIGINT ends the run with a summary and detaches; SIGKILL too
# leaves nothing (links are fd-based, never pinned).
wait_for_progs() {
    for _ in $(seq 100); do [ "$(our_progs)" -gt 0 ] && return 0; sleep 0.1; done; return 1
}
for sig in INT TERM KILL; do
    "$VITRO" netlat ping --netns $CTR --host-netns $HOST -i 0.05 10.77.0.2 > $T/sig.out 2>&1 &
    BG=$!
    if wait_for_progs; then
        for _ in $(seq 50); do grep -q '^seq=' $T/sig.out && break; sleep 0.1; done
        kill -$sig $BG; wait $BG; rc=$?; BG=
        no_progs_left && pass "SIG$sig: no BPF program left" || bad "SIG$sig: BPF programs left: $(bpftool prog list | grep netlat_)"
        if [ $sig != KILL ]; then
            [ $rc = 0 ] && grep -q "packets transmitted" $T/sig.out && pass "SIG$sig: exit 0 with a summary" || bad "SIG$sig: exit $rc: $(tail -3 $T/sig.out)"
        fi
    else
        bad "SIG$sig: the tracer never showed up in bpftool prog list: $(cat $T/sig.out)"; kill -9 $BG; BG=
    fi
done

# calibrate, shortened (one trial of 50 echoes per kind, at 0 and 1 ms, no
# load): it runs, every traced echo is matched, the delaying responder
# answered every echo of the 1 ms condition (3 x 50 + warm-ups) and the
# RTTs there include the delay after the responder's lateness is taken off;
# its namespaces are gone afterwards. Correctness only, no accuracy bounds.
ip netns list | sort > $T/ns.before
if "$VITRO" netlat calibrate --trials 1 -c 50 --delays 0 1 --no-load --format json > $T/cal.json 2> $T/cal.err; then
    jq -e '(.trials | length) == 2 and all(.trials[]; .traced_matched == .traced_sent and .traced_sent == 50)' $T/cal.json >/dev/null \
        && pass "calibrate: every traced echo matched" || bad "calibrate: $(jq -c '[.trials[] | {traced_sent, traced_matched}]' $T/cal.json)"
    jq -e '.trials[1] | .delay_ms == 1 and .responder_answered >= 150 and .bare.mean_us >= 1000 and .corrected.mean_us >= 1000
           and (.error_uncompensated_us | type) == "number"' $T/cal.json >/dev/null \
        && pass "calibrate: 1 ms condition delayed by the responder, lateness compensated" \
        || bad "calibrate 1 ms: $(jq -c '.trials[1] | {responder_answered, bare: .bare.mean_us, corrected: .corrected.mean_us}' $T/cal.json)"
else
    bad "calibrate failed: $(tail -3 $T/cal.err)"
fi
ip netns list | sort | diff -q $T/ns.before - >/dev/null && pass "calibrate: no namespace left" || bad "calibrate left namespaces: $(ip netns list | sort | diff $T/ns.before - | grep '^>')"
no_progs_left && pass "calibrate: no BPF program left" || bad "calibrate left BPF programs"

# calibrate against an independent reference: iputils ping from the host
# (router) namespace and the remote kernel's own echo replies, in rotating
# blocks with vitro's probers. Structure only: both sides produced their
# echoes, the output names the reference and reports the difference.
ip netns list | sort > $T/ns.before
if command -v ping >/dev/null; then
    if "$VITRO" netlat calibrate --reference iputils --trials 1 -c 40 --block 20 --no-load --format json > $T/ref.json 2> $T/ref.err; then
        jq -e '.reference == "iputils" and (.reference_description | test("iputils ping")) and (.trials | length) == 1
               and (.trials[0] | .delay_ms == 0 and .reference_sent == 40 and .reference.n == 40 and .bare.n == 40
                    and .traced_sent == 40 and .traced_matched == 40 and (.blocks | length) == 2
                    and all(.blocks[]; (.difference_us | type) == "number" and .reference_median_us > 0 and .corrected_median_us > 0
                                       and ((.difference_us - (.corrected_median_us - .reference_median_us)) | fabs) < 1e-6)
                    and (.difference_us | type) == "number" and .backlog.n == 40 and (has("untraced") | not))' $T/ref.json >/dev/null \
            && pass "calibrate --reference iputils: 40 ping and 40 traced echoes, per-block medians and their difference" \
            || bad "calibrate --reference iputils: $(jq -c '{reference, t: (.trials[0] | {reference_sent, r: .reference.n, bare: .bare.n, traced_sent, traced_matched, blocks})}' $T/ref.json)"
    else
        bad "calibrate --reference iputils failed: $(tail -3 $T/ref.err)"
    fi
    "$VITRO" netlat calibrate --reference iputils --trials 1 -c 10 --block 10 --no-load > $T/ref.txt 2>&1
    grep -q "^reference: iputils ping from the host namespace" $T/ref.txt && grep -q "corrected - ping" $T/ref.txt \
        && grep -q "worst |corrected - ping|" $T/ref.txt && pass "calibrate --reference iputils (text): names the reference and the difference" \
        || bad "calibrate --reference iputils text: $(cat $T/ref.txt)"
else
    echo "ok - calibrate --reference iputils # SKIP ping (iputils-ping) not installed"
fi
expect_error "reference with a delay" "no added delay" "$VITRO" netlat calibrate --reference iputils --delays 1 --trials 1 -c 2
expect_error "unknown reference" "expected vitro or iputils" "$VITRO" netlat calibrate --reference podman --trials 1 -c 2
ip netns list | sort | diff -q $T/ns.before - >/dev/null && pass "calibrate --reference: no namespace left" || bad "calibrate --reference left namespaces"
no_progs_left && pass "calibrate --reference: no BPF program left" || bad "calibrate --reference left BPF programs"

[ $fail = 0 ] && echo "netlat: all passed" || echo "netlat: FAILED"
exit $fail
