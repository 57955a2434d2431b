#!/usr/bin/env bash
# podman's everyday run/create flags (issue 20, "Missing"), through the real
# `vitro` binary: --add-host and the container's own lines in /etc/hosts
# (host.containers.internal on a bridge network), --dns/--dns-search/
# --dns-option in /etc/resolv.conf (--dns none: the image's own), --ulimit in
# the container's limits, --label/--label-file in inspect and ps --filter
# (label, name, id, status, exited, ancestor; podman's AND/OR rule), ps
# --no-trunc; bad values refused with 125 and nothing made. In its own network
# namespace, every vitro path in a temp dir. TAP. Root only.
# usage: run-flags.sh PATH_TO_VITRO
set -uo pipefail
V=$(readlink -f "${1:?usage: run-flags.sh PATH_TO_VITRO}")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/sandbox.sh"
sandbox run-flags-test "$V"
trap sandbox_teardown EXIT
. "$here/../lib/tap.sh"
sandbox_image

# names FLAGS...: ps -a's names for these flags, sorted, on one line.
names() { "$V" ps -a "$@" --format '{{.Names}}' | tr -d '[]"' | sort | tr '\n' ' ' | sed 's/ $//'; }
run() { "$V" run --rm --network none "$@"; }

# --- /etc/hosts: --add-host lines first, then localhost and the container's own names
run --name hosts$$ --add-host db.local:10.1.2.3 --add-host v6host:fd00::5 --add-host 'br6:[fd00::6]' \
  "$IMG" cat /etc/hosts >"$T/hosts" 2>&1
check "--add-host HOST:IPv4 is the first line of /etc/hosts" eq "$(head -1 "$T/hosts")" "$(printf '10.1.2.3\tdb.local')"
check "--add-host HOST:IPv6 (bare and in brackets)" \
  eq "$(grep -E 'v6host|br6' "$T/hosts")" "$(printf 'fd00::5\tv6host\nfd00::6\tbr6')"
check "/etc/hosts has the container's host name and name" grep -Eq "^127\.0\.1\.1	[0-9a-f]{12} hosts$$\$" "$T/hosts"
check "--network none: no host.containers.internal" bash -c "! grep -q host.containers.internal '$T/hosts'"

# On the default network: the container's address with its names, and the
# host (the network's gateway, the container's default route) as host.containers.internal.
"$V" run --rm --name net$$ --add-host extra:192.0.2.9 "$IMG" \
  sh -c 'cat /etc/hosts; echo "route $(ip route | awk "/^default/ {print \$3}")"; echo "addr $(ip -4 -o addr show eth0 | awk "{print \$4}")"' \
  >"$T/nethosts" 2>&1
gw=$(awk '/^route/ {print $2}' "$T/nethosts") addr=$(awk '/^addr/ {print $2}' "$T/nethosts")
check "bridge network: host.containers.internal is the host on it (the gateway $gw)" \
  bash -c "[ -n '$gw' ] && grep -qx '$gw	host.containers.internal' '$T/nethosts'"
check "bridge network: the container's address with its host name and name" \
  bash -c "[ -n '$addr' ] && grep -Eqx '${addr%/*}	[0-9a-f]{12} net$$' '$T/nethosts'"
check "bridge network: --add-host still first" eq "$(head -1 "$T/nethosts")" "$(printf '192.0.2.9\textra')"

# --- /etc/resolv.conf
run --dns 192.0.2.53 --dns 2001:db8::53 --dns-search example.com --dns-search corp.test --dns-option ndots:2 \
  "$IMG" cat /etc/resolv.conf >"$T/resolv" 2>&1
check "--dns: only the given servers, in order" \
  eq "$(grep '^nameserver' "$T/resolv")" "$(printf 'nameserver 192.0.2.53\nnameserver 2001:db8::53')"
check "--dns-search: one search line with both" eq "$(grep -E '^(search|domain)' "$T/resolv")" "search example.com corp.test"
check "--dns-option: the options line" eq "$(grep '^options' "$T/resolv")" "options ndots:2"
check "--dns none: the image's own /etc/resolv.conf (none in this image)" \
  eq "$(run --dns none "$IMG" sh -c '[ -e /etc/resolv.conf ] && echo present || echo absent' 2>&1)" absent
check "without --dns: a resolv.conf with a server (the host's, or public ones)" \
  bash -c "'$V' run --rm --network none '$IMG' cat /etc/resolv.conf | grep -q '^nameserver '"

# --- --ulimit
check "--ulimit nofile=512:1024: soft and hard inside" \
  eq "$(run --ulimit nofile=512:1024 "$IMG" sh -c 'ulimit -n; ulimit -Hn' 2>&1 | tr '\n' ' ')" "512 1024 "
check "--ulimit nofile=300: the hard limit is the soft one" \
  eq "$(run --ulimit nofile=300 "$IMG" sh -c 'ulimit -Sn; ulimit -Hn' 2>&1 | tr '\n' ' ')" "300 300 "
check "--ulimit core=-1 (unlimited) with another" \
  eq "$(run --ulimit core=-1 --ulimit stack=16777216:33554432 "$IMG" sh -c 'ulimit -c; ulimit -s; ulimit -Hs' 2>&1 | tr '\n' ' ')" "unlimited 16384 32768 "

# A subshell's soft limit lowered (the hard one stays: raising it back needs
# CAP_SYS_RESOURCE, which a test machine may lack).
check "--ulimit host: the calling shell's limits" \
  eq "$(ulimit -Sn 333 && run --ulimit host "$IMG" sh -c 'ulimit -Sn; ulimit -Hn' 2>&1 | tr '\n' ' ')" "333 $(ulimit -Hn) "
check "inspect shows --ulimit in .HostConfig.Ulimits" \
  bash -c "'$V' create --network none --name ul$$ --ulimit nofile=64:128 '$IMG' true >/dev/null &&
           '$V' inspect -f '{{json .HostConfig.Ulimits}}' ul$$ | grep -q '\"Name\":\"RLIMIT_NOFILE\"' && '$V' rm ul$$ >/dev/null"

# --- labels, inspect, ps --filter
printf 'team=b\n# a comment\ntier=ignored\n' >"$T/labels"
"$V" create --network none --name lab1$$ -l tier=web -l team=a "$IMG" true >/dev/null
"$V" create --network none --name lab2$$ --label-file "$T/labels" --label tier=db "$IMG" true >/dev/null
"$V" create --network none --name other$$ "$IMG" sh -c 'echo a-long-command-that-ps-would-cut' >/dev/null
check "inspect shows --label in .Config.Labels" eq "$("$V" inspect -f '{{.Config.Labels.tier}}/{{.Config.Labels.team}}' lab1$$)" web/a
check "--label-file, then --label over it" eq "$("$V" inspect -f '{{.Config.Labels.tier}}/{{.Config.Labels.team}}' lab2$$)" db/b
check "ps --filter label=KEY" eq "$(names --filter label=tier)" "lab1$$ lab2$$"
check "ps --filter label=KEY=VALUE" eq "$(names --filter label=tier=web)" "lab1$$"
check "ps: two label filters both match (podman: label is AND)" \
  eq "$(names --filter label=tier --filter label=team=b)" "lab2$$"
check "ps: two name filters, either matches (OR)" eq "$(names --filter name=lab1 -f name=other)" "lab1$$ other$$"
check "ps: different keys all match (AND)" eq "$(names --filter name=lab --filter label=team=a)" "lab1$$"
id=$("$V" inspect -f '{{.Id}}' lab2$$)
check "ps --filter id=PREFIX" eq "$(names --filter "id=${id:0:10}")" "lab2$$"
check "ps --filter ancestor=IMAGE" eq "$(names --filter ancestor=$IMG --filter name=lab)" "lab1$$ lab2$$"
img_id=$("$V" images --format '{{.Id}}'); img_id=${img_id#sha256:}
check "ps --filter ancestor=IMAGE-ID (short)" eq "$(names --filter "ancestor=${img_id:0:12}" --filter name=lab)" "lab1$$ lab2$$"
check "ps --filter ancestor=another image: none" eq "$(names --filter ancestor=localhost/nosuch)" ""
"$V" run --network none --name ex$$ "$IMG" sh -c 'exit 3'
"$V" run -d --network none --name up$$ "$IMG" sleep 300 >/dev/null
check "ps --filter status=created" eq "$(names --filter status=created)" "lab1$$ lab2$$ other$$"
check "ps --filter status=exited, without -a" \
  eq "$("$V" ps --filter status=exited --format '{{.Names}}' | tr -d '[]"')" "ex$$"
check "ps --filter status=running" eq "$(names --filter status=running)" "up$$"
check "ps --filter exited=3" eq "$(names --filter exited=3)" "ex$$"
check "ps -q: 12-character IDs" eq "$("$V" ps -aq --filter name=lab2)" "${id:0:12}"
check "ps -q --no-trunc: full IDs" eq "$("$V" ps -aq --no-trunc --filter name=lab2)" "$id"
check "ps --no-trunc: the whole command" \
  bash -c "'$V' ps -a --no-trunc --filter name=other | grep -q 'echo a-long-command-that-ps-would-cut'"
check "ps: the command cut without --no-trunc" \
  bash -c "! '$V' ps -a --filter name=other | grep -q 'a-long-command-that-ps-would-cut'"
rc_err "ps --filter with an unknown key: 125 naming it" 125 'unknown key "bogus"' "$V" ps --filter bogus=1
rc_err "ps --filter status=VALUE not a status: 125" 125 '"sleeping" is not a container status' \
  "$V" ps --filter status=sleeping
rc_err "ps --filter without =: 125" 125 'expected KEY=VALUE' "$V" ps --filter label

# --- bad values: 125 naming the value, nothing created
before=$("$V" ps -aq | sort)
bad() {  # bad NAME PATTERN FLAGS...
  local name=$1 pat=$2; shift 2
  rc_err "$name" 125 "$pat" "$V" run --rm --network none --name bad$$ "$@" "$IMG" true
}
bad "--add-host without an address" '--add-host "nocolon"' --add-host nocolon
bad "--add-host with a bad address" '999\.1\.2\.3' --add-host h:999.1.2.3
bad "--dns not an address" '--dns "dns.example"' --dns dns.example
bad "--dns none with servers" 'none' --dns none --dns 192.0.2.1
bad "--ulimit soft above hard" '--ulimit "nofile=2048:1024".*soft limit is above' --ulimit nofile=2048:1024
bad "--ulimit unknown type" 'unknown type "bogus"' --ulimit bogus=1
bad "--ulimit not a number" '"lots" is not a number' --ulimit nofile=lots
bad "--ulimit nofile above the kernel's fs.nr_open (refused before start, not a failed init)" \
  'fs.nr_open' --ulimit "nofile=1024:$(( $(cat /proc/sys/fs/nr_open) + 1 ))"
bad "--label without a key" '--label "=x"' --label =x
bad "--label-file missing" 'label-file' --label-file "$T/no-such-file"
check "... and none of them made a container" eq "$("$V" ps -aq | sort)" "$before"
rc_err "--add-host in another container's network namespace: 125" 125 'joins another.s network namespace' \
  "$V" create --name bad$$ --network container:lab1$$ --add-host a:192.0.2.1 "$IMG" true
rc_err "--dns in another container's network namespace: 125" 125 'joins another.s network namespace' \
  "$V" create --name bad$$ --network container:lab1$$ --dns 192.0.2.1 "$IMG" true
check "... nothing made" eq "$("$V" ps -aq | sort)" "$before"

"$V" rm -f up$$ >/dev/null
tap_done
