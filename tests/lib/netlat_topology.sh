# shellcheck shell=bash
# tests/lib/netlat_topology.sh: the hand-made topology netlat is measured on,
# shared by tests/netlat/netlat.sh and bench/netlat-reference.sh. Sourced.
#   netlat_topology P MID NET   namespaces P-remote <-veth-> P-MID (a router:
#                               bridge br0, IP forwarding) <-veth-> P-ctr.
#                               remote NET.0.2, MID NET.0.1 (up-h) and NET.1.1
#                               (br0), ctr NET.1.2 (eth0, its host end vh0).
#                               The caller deletes the namespaces.
netlat_topology() {
  local P=$1 mid=$2 net=$3 n
  for n in remote "$mid" ctr; do ip netns add "$P-$n"; ip -n "$P-$n" link set lo up; done
  ip link add up-r netns "$P-remote" type veth peer name up-h netns "$P-$mid"
  ip -n "$P-remote" addr add "$net.0.2/24" dev up-r; ip -n "$P-remote" link set up-r up
  ip -n "$P-$mid" addr add "$net.0.1/24" dev up-h; ip -n "$P-$mid" link set up-h up
  ip -n "$P-$mid" link add br0 type bridge; ip -n "$P-$mid" addr add "$net.1.1/24" dev br0
  ip -n "$P-$mid" link set br0 up
  ip link add eth0 netns "$P-ctr" type veth peer name vh0 netns "$P-$mid"
  ip -n "$P-$mid" link set vh0 master br0; ip -n "$P-$mid" link set vh0 up
  ip -n "$P-ctr" addr add "$net.1.2/24" dev eth0; ip -n "$P-ctr" link set eth0 up
  ip -n "$P-ctr" route add default via "$net.1.1"
  ip netns exec "$P-$mid" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
  ip -n "$P-remote" route add "$net.1.0/24" via "$net.0.1"
}
