#!/usr/bin/env bash
# Networks end to end, as a docker user meets them (issue 20, bugs 4, 5, 6 and
# 8's --network container:X): the default subnet and subnets the host's routes
# already cover, a removed network's bridge, `system prune` with two state
# roots sharing one network config dir, and a container joining another's
# network namespace. In its own network namespace, every path under a temp
# dir. Prints TAP; exits non-zero when a check fails. Root only.
# usage: networks.sh PATH_TO_VITRO
set -uo pipefail
V=$(readlink -f "${1:?usage: networks.sh PATH_TO_VITRO}")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/sandbox.sh"
sandbox networks-test "$V"
R2=$T/root2 RR2=$T/run2  # a second state root sharing $VITRO_NETWORK_CONFIG_DIR
v2() { VITRO_ROOT=$R2 VITRO_RUNROOT=$RR2 "$V" "$@"; }
cleanup() {
  v2 rm -f $(v2 ps -aq 2>/dev/null) >/dev/null 2>&1
  sandbox_teardown
}
trap cleanup EXIT
. "$here/../lib/tap.sh"
sandbox_image
subnet_of() { "$V" network inspect "$1" | jq -r '.[0].plugins[0].ipam.ranges[0][0].subnet'; }
bridge_of() { "$V" network inspect "$1" | jq -r '.[0].plugins[0].bridge'; }
# Whether CIDR $1 overlaps CIDR $2 (disjoint: a CIDR that does not).
overlaps() {
  python3 -c 'import ipaddress,sys; sys.exit(0 if ipaddress.ip_network(sys.argv[1]).overlaps(ipaddress.ip_network(sys.argv[2])) else 1)' "$1" "$2"
}
disjoint() { [[ $1 =~ ^[0-9a-f.:]+/[0-9]+$ ]] && ! overlaps "$1" "$2"; }

# --- bug 4: the default subnet is neither podman's nor docker's; subnets the host routes are refused
def=$(subnet_of vitro)
for other in 10.88.0.0/16 10.89.0.0/16 172.16.0.0/12 192.168.0.0/16; do
  check "the default subnet $def is not in podman's or docker's $other" disjoint "$def" $other
done
# No dummy driver here: a bridge of the test's own carries the host's routes.
ip link add nf-dummy type bridge && ip link set nf-dummy up
ip addr add 10.191.0.1/24 dev nf-dummy
ip addr add fd00:191::1/64 dev nf-dummy nodad
"$V" network create --subnet 10.191.0.0/24 taken >/dev/null 2>"$T/err"; rc=$?
check "create --subnet a host route covers exits 125" eq $rc 125
check "... saying the subnet is used on the host" \
  grep -q 'subnet 10.191.0.0/24 is already used on the host or by another config' "$T/err"
check "... and creates nothing" bash -c "! '$V' network ls -q | grep -qx taken && [ ! -e '$VITRO_NETWORK_CONFIG_DIR/taken.conflist' ]"
"$V" network create --subnet 10.191.0.0/16 wider >/dev/null 2>"$T/err"; rc=$?
check "a subnet wider than a host route is refused too" \
  bash -c "[ $rc = 125 ] && grep -q 'subnet 10.191.0.0/16 is already used on the host' '$T/err'"
"$V" network create --subnet 10.191.0.128/25 narrower >/dev/null 2>"$T/err"; rc=$?
check "... and one inside it" bash -c "[ $rc = 125 ] && grep -q 'subnet 10.191.0.128/25 is already used on the host' '$T/err'"
"$V" network create --subnet fd00:191::/64 taken6 >/dev/null 2>"$T/err"; rc=$?
check "an IPv6 subnet a host route covers is refused" \
  bash -c "[ $rc = 125 ] && grep -q 'subnet fd00:191::/64 is already used on the host' '$T/err'"
# The pool skips what the host routes: its first /24 taken, a network gets another.
pool0=$("$V" network create probe >/dev/null && subnet_of probe); "$V" network rm probe >/dev/null
ip route add "$pool0" dev nf-dummy
"$V" network create auto >/dev/null; auto=$(subnet_of auto)
check "a network without --subnet skips a /24 the host routes ($pool0)" bash -c "[ -n '$auto' ] && [ '$auto' != '$pool0' ] && [ '$auto' != null ]"
"$V" network rm auto >/dev/null
# The default network, first made where a route covers its subnet: the first
# free /24 of the pool instead, and a warning that says why.
ip route add "$def" dev nf-dummy
out=$(VITRO_NETWORK_CONFIG_DIR=$T/net2 "$V" network ls -q 2>"$T/err")
def2=$(VITRO_NETWORK_CONFIG_DIR=$T/net2 "$V" network inspect vitro | jq -r '.[0].plugins[0].ipam.ranges[0][0].subnet')
check "a default network whose subnet the host routes takes another" \
  bash -c "[ '$out' = vitro ] && [ '$def2' != '$def' ] && [ '$def2' != '$pool0' ] && [ '$def2' != null ]"
check "... saying which and why" bash -c "grep -q '$def' '$T/err' && grep -q '$def2' '$T/err' && grep -q 'already used on the host' '$T/err'"
ip route del "$def" dev nf-dummy; ip route del "$pool0" dev nf-dummy

# --- bug 5: network rm takes the bridge (and its address) with it
"$V" network create --subnet 10.94.0.0/24 neta >/dev/null; br=$(bridge_of neta)
"$V" run -d --name ca --network neta $IMG sleep 100 >/dev/null
check "a container on network neta runs (bridge $br)" bash -c "ip -o addr show dev '$br' | grep -q 10.94.0.1/24"
"$V" rm -f ca >/dev/null; "$V" network rm neta >/dev/null
check "network rm removes its bridge" bash -c "! ip link show '$br' >/dev/null 2>&1"
"$V" network create --subnet 10.95.0.0/24 netb >/dev/null
check "a new network reuses the bridge name" eq "$(bridge_of netb)" "$br"
out=$("$V" run --rm --network netb $IMG sh -c 'ip -o -4 addr show eth0' 2>&1)
check "... and its containers start, with an address of the new subnet" bash -c "grep -q 'inet 10.95.0.' <<<'$out'"
"$V" network rm netb >/dev/null

# --- bug 6: system prune removes only the networks no state root uses, with their rules
"$V" network create --subnet 10.97.0.0/24 othernet >/dev/null
"$V" network create --subnet 10.98.0.0/24 gone >/dev/null
"$V" run --rm --network gone $IMG true
check "a container on network gone made its host rules" bash -c "iptables-save | grep -q 'vitro network gone'"
gbr=$(bridge_of gone)
v2 load -i "$T/bb.tar" >/dev/null
v2 create --name other --network othernet $IMG true >/dev/null
"$V" network rm othernet >/dev/null 2>"$T/err"; rc=$?
check "network rm refuses a network another root's container uses, naming it" \
  bash -c "[ $rc = 125 ] && grep -q 'used by container(s) other (root $R2)' '$T/err'"
"$V" system prune -f >"$T/out" 2>&1
check "system prune keeps a network only another root's container uses" \
  bash -c "'$V' network ls -q | grep -qx othernet"
check "... so that container starts" v2 start -a other
check "system prune removes a network no root uses" bash -c "! '$V' network ls -q | grep -qx gone && grep -qx gone '$T/out'"
check "... with its host rules" bash -c "! iptables-save | grep -q 'vitro network gone'"
check "... and its bridge" bash -c "! ip link show '$gbr' >/dev/null 2>&1"
v2 rm other >/dev/null
v2 system prune -f >/dev/null 2>&1
check "once no root uses it, prune removes it" bash -c "! '$V' network ls -q | grep -qx othernet"

# --- bug 8: --network container:X joins X's network namespace
"$V" run -d --name srv $IMG httpd -f -p 8090 -h /var/www >/dev/null
mac=$("$V" exec srv cat /sys/class/net/eth0/address)
out=$("$V" run --rm --network container:srv $IMG sh -c 'cat /sys/class/net/eth0/address; wget -qO- http://127.0.0.1:8090/' 2>&1)
check "--network container:srv sees srv's interface" bash -c "[ -n '$mac' ] && [ \"\$(head -1 <<<'$out')\" = '$mac' ]"
check "... and its listening port on localhost" bash -c "grep -q 'hello from vitro' <<<'$out'"
"$V" create --name idle $IMG true >/dev/null
"$V" run --rm --network container:idle $IMG true 2>"$T/err"; rc=$?
check "--network container:X with X not running exits 125" eq $rc 125
check "... naming X" grep -q 'idle.*not running' "$T/err"
"$V" run --rm --network container:nosuch $IMG true 2>"$T/err"; rc=$?
check "--network container:X with no X exits 125, naming it" bash -c "[ $rc = 125 ] && grep -q nosuch '$T/err'"
"$V" rm -f srv idle >/dev/null
check "nothing is left: no container" eq "$("$V" ps -aq | wc -l)" 0

ip link del nf-dummy
tap_done
