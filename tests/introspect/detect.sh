#!/usr/bin/env bash
# Pristine versus infected, end to end through the real vitro binary: a
# busybox httpd container, `vitro baseline learn` while wget requests come in,
# then `vitro detect` against that baseline: the same wget load raises no
# alert; a miner (4 busy loops with a stratum+tcp:// argument), a reverse shell
# (busybox nc -e /bin/sh to a listener in the container's netns) and a dropped
# binary (/bin/busybox copied to /tmp/x and run through a symlink) are each detected with their
# rule; `vitro alerts` reads them back from the evidence store; a baseline of
# another image digest is refused. Own network namespace, every vitro path in
# a temp dir. TAP. Root only. No timed assertions (bounded polls).
# usage: detect.sh PATH_TO_VITRO
set -uo pipefail
V=$(readlink -f "${1:?usage: detect.sh PATH_TO_VITRO}")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/sandbox.sh"
# The proc connector exists only in the initial network namespace: keep a
# handle on this one for learn/detect (nsenter --net=/proc/self/fd/9).
SANDBOX_HOST_NETNS_FD=9 sandbox detect-test "$V"
det_pid= mon_pid=
cleanup() {
  [ -n "$det_pid" ] && kill "$det_pid" 2>/dev/null && wait "$det_pid" 2>/dev/null
  [ -n "$mon_pid" ] && kill "$mon_pid" 2>/dev/null && wait "$mon_pid" 2>/dev/null
  sandbox_teardown
}
trap cleanup EXIT

. "$here/../lib/tap.sh"
host() { nsenter --net=/proc/self/fd/9 "$@"; }

sandbox_image
STORE=$VITRO_ROOT/evidence/evidence.db
load() { local i; for i in $(seq "$1"); do "$V" exec web wget -q -O /dev/null http://127.0.0.1/; sleep 0.5; done; }

id=$("$V" run -d --name web --network none $IMG httpd -f -p 80 -h /var/www)
check "an httpd container is running" eq "${#id}" 64
check "it serves" wait_for "$V" exec web wget -q -O /dev/null http://127.0.0.1/

# --- learn
host "$V" baseline learn web --for 8s >"$T/learn.out" 2>"$T/learn.err" &
lpid=$!
sleep 1
load 8
wait $lpid; rc=$?
check "baseline learn exits 0" eq $rc 0
BL=$VITRO_ROOT/baselines/$id.json
check "... writes <root>/baselines/<id>.json" test -s "$BL"
"$V" baseline show --format json web >"$T/bl.json"
check "baseline show --format json: the image digest" eq "$(jq -r .image_digest "$T/bl.json")" "$("$V" images --format '{{.Digest}}')"
check "... listening port 80" eq "$(jq -c .listen "$T/bl.json")" "[80]"
check "... the busybox executable with its hash" \
  eq "$(jq -r '.executables[] | select(.path=="/bin/busybox") | .sha256' "$T/bl.json")" "sha256:$(sha256sum /bin/busybox | cut -d' ' -f1)"
check "... outbound endpoints (wget to its own port 80 is not one)" bash -c "! jq -r '.outbound[]' '$T/bl.json' | grep -qx 127.0.0.1:80"
check "... lineage has httpd" bash -c "jq -r '.lineage[].child' '$T/bl.json' | grep -qx httpd"
check "baseline show (text) names the container" bash -c "'$V' baseline show web | grep -q '^Container: *web'"

# --- a baseline of another image is refused
jq '.image_digest="sha256:0000000000000000000000000000000000000000000000000000000000000000"' "$BL" >"$T/other.json"
host "$V" detect web --baseline "$T/other.json" --duration 1 >/dev/null 2>"$T/err"; rc=$?
check "detect refuses a baseline of another image digest (exit 125, naming both)" \
  bash -c "[ $rc = 125 ] && grep -q 'sha256:0000000000' '$T/err' && grep -q '$(jq -r .image_digest "$T/bl.json")' '$T/err'"

# --- detect: pristine load first
starts() { sqlite3 "$STORE" "SELECT count(*) FROM records WHERE kind='capture.start'"; }
s0=$(starts)
nsenter --net=/proc/self/fd/9 "$V" detect web --format json >"$T/detect.out" 2>"$T/detect.err" &
det_pid=$!
check "detect starts watching" wait_for bash -c "[ \$(sqlite3 '$STORE' \"SELECT count(*) FROM records WHERE kind='capture.start'\") -gt $s0 ]"
sleep 1
load 12
sleep 2
check "the pristine wget load raises no alert" eq "$(wc -l <"$T/detect.out")" 0
[ -s "$T/detect.out" ] && sed 's/^/#   /' "$T/detect.out"

has_rule() { grep -q "\"rule\":\"$1\"" "$T/detect.out"; }
# --- miner
"$V" exec -d web sh -c 'for i in 1 2 3; do while :; do :; done & done; while :; do :; done' stratum+tcp://pool.example.org:3333
check "miner: mining-command-line" wait_for has_rule mining-command-line
check "miner: cpu-above-envelope" wait_for has_rule cpu-above-envelope
"$V" exec web killall sh   # the miner's shells (the only ones there)

# --- reverse shell to a listener in the container's netns
"$V" exec -d web sh -c 'sleep 60 | nc -l -p 4444'
sleep 1
"$V" exec -d web nc 127.0.0.1 4444 -e /bin/sh
check "reverse shell: reverse-shell" wait_for has_rule reverse-shell
check "... unexpected-shell" wait_for has_rule unexpected-shell
check "... unseen-listen" wait_for bash -c "grep '\"rule\":\"unseen-listen\"' '$T/detect.out' | grep -q 4444"
check "... unseen-outbound" wait_for bash -c "grep '\"rule\":\"unseen-outbound\"' '$T/detect.out' | grep -q 127.0.0.1:4444"

# --- dropped and executed binary
# (run through a symlink named after an applet: busybox picks the applet from argv[0])
"$V" exec web sh -c 'cp /bin/busybox /tmp/x && ln -s x /tmp/sleep && /tmp/sleep 2'
check "dropped binary: drop-and-execute" wait_for has_rule drop-and-execute

kill -INT $det_pid; wait $det_pid; rc=$?; det_pid=
check "detect stops on Ctrl-C with exit 0" eq $rc 0

# --- alerts from the store
"$V" alerts web --format json >"$T/alerts.json"
check "vitro alerts: the same alerts from the store" eq "$(wc -l <"$T/alerts.json")" "$(wc -l <"$T/detect.out")"
check "... each with the seq of the record that triggered it" \
  bash -c "seq=\$(jq -r 'select(.rule==\"drop-and-execute\") | .trigger_seq' '$T/alerts.json'); [ \"\$(sqlite3 '$STORE' \"SELECT kind FROM records WHERE seq=\$seq\")\" = process.exec ]"
check "vitro alerts (text): one line per alert" eq "$("$V" alerts web | grep -c ' drop-and-execute: ')" 1
check "vitro alerts --since in the future: none" eq "$("$V" alerts --since "$(( $(date +%s) + 3600 ))" | wc -l)" 0
check "the store still verifies" "$V" evidence verify

# --- the same detection inside the exporter service: vitro monitor --evidence
# (web2 runs, without a baseline, before the service starts: see below)
id2=$("$V" run -d --name web2 --network none $IMG httpd -f -p 80 -h /var/www)
check "a second httpd container (web2) is running" eq "${#id2}" 64
c0=$(sqlite3 "$STORE" "SELECT count(*) FROM records WHERE kind='capture.start'")
nsenter --net=/proc/self/fd/9 "$V" monitor --evidence --listen 127.0.0.1:0 >"$T/mon.out" 2>"$T/mon.err" &
mon_pid=$!
wait_for grep -q serving "$T/mon.out"
URL=$(sed -n 's/.*serving //p' "$T/mon.out")
wait_for bash -c "[ \$(sqlite3 '$STORE' \"SELECT count(*) FROM records WHERE kind='capture.start'\") -gt $c0 ]"
"$V" exec web sh -c 'mkdir /tmp/d && cp /bin/busybox /tmp/d/y && ln -s y /tmp/d/sleep && /tmp/d/sleep 2'
check "monitor --evidence: vitro_alerts_total counts a drop-and-execute" \
  wait_for bash -c "nsenter --net=/proc/$$/fd/9 curl -sf '$URL' | grep -q '^vitro_alerts_total{container=\"web\",rule=\"drop-and-execute\"} [1-9]'"

# --- a baseline learned while the service runs applies without a restart,
# and one removed stops detection (the service follows <root>/baselines/)
alert_count() { sqlite3 "$STORE" "SELECT count(*) FROM records WHERE kind='alert' AND container_id='$1'"; }
check "monitor --evidence captures web2" wait_for bash -c \
  "[ \$(sqlite3 '$STORE' \"SELECT count(*) FROM records WHERE kind='capture.start' AND container_id='$id2'\") -gt 0 ]"
check "web2 has no alert before it has a baseline" eq "$(alert_count "$id2")" 0
host "$V" baseline learn web2 --for 3s >/dev/null 2>"$T/learn2.err"; rc=$?
check "baseline learn web2 while the service runs exits 0" eq $rc 0
# A reverse shell per attempt (each on its own port) until one alerts: the
# service applies the new baseline soon after the file appears, and nothing
# here assumes how soon.
try=0
revshell2() {
  try=$((try + 1))
  local port=$((5000 + try))
  "$V" exec -d web2 sh -c "sleep 5 | nc -l -p $port"
  sleep 0.5
  "$V" exec -d web2 nc 127.0.0.1 $port -e /bin/sh
  poll 5 bash -c "sqlite3 '$STORE' \"SELECT payload FROM records WHERE kind='alert' AND container_id='$id2'\" | grep -q '\"rule\":\"reverse-shell\"'"
}
check "... and then a reverse shell in web2 alerts, without a restart" wait_for revshell2
# A baseline file that does not parse (here web2's, written in place) is
# reported, and the last good one stays applied: quiet() below needs web2's
# alerts.
echo '{' >"$VITRO_ROOT/baselines/$id2.json"
check "a damaged baseline file is reported (warning)" wait_for grep -q "detection for web2: .*not JSON.*stays" "$T/mon.err"
# Removing a baseline the service loaded when it started (web's) stops web's
# alerts. Per attempt, a miner's command line in web and then in web2 (whose
# new baseline stays): once web2's has alerted, web's exec (recorded, and
# handled before it, in order) must have raised nothing. Retried until the
# removal applies.
rm "$BL"
quiet() {
  try=$((try + 1))
  local before sentinel marker="stratum+tcp://pool.example.org:$((3000 + try))"
  before=$(alert_count "$id") sentinel=$(alert_count "$id2")
  "$V" exec web sh -c 'sleep 1' "$marker"
  "$V" exec web2 sh -c 'sleep 1' "$marker"
  poll 10 bash -c "[ \$(sqlite3 '$STORE' \"SELECT count(*) FROM records WHERE kind='alert' AND container_id='$id2'\") -gt $sentinel ]" || return 1
  [ "$(sqlite3 "$STORE" "SELECT count(*) FROM records WHERE kind='process.exec' AND container_id='$id' AND payload LIKE '%$marker%'")" -gt 0 ] &&
    [ "$(alert_count "$id")" = "$before" ]
}
check "removing web's baseline stops its alerts (web2's, damaged since, still come), without a restart" wait_for quiet

kill -TERM $mon_pid; wait $mon_pid; rc=$?; mon_pid=
check "... and SIGTERM ends it with exit 0" eq $rc 0

tap_done
