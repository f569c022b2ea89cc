#!/usr/bin/env bash
# The image of Dockerfile.example as a real container, without Docker or a
# registry: builds the same two static files (/drainit and /app, with the
# Dockerfile's build commands), puts them in an OCI bundle with the
# Dockerfile's ENV, USER, ENTRYPOINT and CMD (examples/oci/bundle.py), and
# runs it under runc. The base image is left out: neither binary reads a file
# of distroless (it adds /etc/passwd, certificates and time zones).
#
# Then it does what Kubernetes does to a pod: the container runs, a client
# keeps sending requests, the runtime sends the STOPSIGNAL (SIGTERM), the
# client goes on sending for the drain (the load balancers have not caught
# up yet) and one slow request is still in flight when the drain ends. It
# checks that every request succeeds and that the container exits with the
# app's code 0, right after the drain, long before the grace period.
#
# Needs root, runc, cargo and python3. Takes about 10 s (plus the build).
# The container shares the host's network (the app listens on port 8080, or
# another free port if 8080 is taken). Removes everything it created.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${CARGO_TARGET_DIR:-target}
dockerfile=Dockerfile.example
load=examples/demo/load.py

fail() {
    echo "FAILED: $*" >&2
    exit 1
}
[ "$(id -u)" = 0 ] || fail "run it as root (runc creates the container's namespaces and cgroups)"
command -v runc >/dev/null || fail "runc not found (apt-get install runc)"

# The Dockerfile's settings that this script needs, e.g. `ENV DRAINIT_DRAIN=5s`.
setting() { sed -n "s/^$1//p" "$dockerfile" | tail -1; }
seconds() { # 5s, 500ms, 30 -> seconds (the forms this script supports)
    case $1 in
    *ms) awk -v v="${1%ms}" 'BEGIN { print v / 1000 }' ;;
    *s) echo "${1%s}" ;;
    *[0-9]) echo "$1" ;;
    *) fail "$dockerfile: cannot read the duration $1 (give it as 5s, 500ms or 5)" ;;
    esac
}
drain=$(seconds "$(setting 'ENV DRAINIT_DRAIN=')")
grace=$(seconds "$(setting 'ENV DRAINIT_GRACE=')")
margin=$(seconds "$(setting 'ENV DRAINIT_KILL_MARGIN=')")
stop_signal=$(setting 'STOPSIGNAL ')
awk -v d="$drain" 'BEGIN { exit !(d >= 2) }' || fail "this check needs DRAINIT_DRAIN of 2s or more in $dockerfile"

# Float arithmetic on wall-clock times (bash's $EPOCHREALTIME).
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }
sleep_until() { sleep "$(awk -v t="$1" -v now="$EPOCHREALTIME" 'BEGIN { d = t - now; print (d > 0 ? d : 0) }')"; }

echo "== build stage: the Dockerfile's cargo command, through scripts/static-build.sh"
grep '^RUN RUSTFLAGS=' "$dockerfile" | sed 's/^RUN /  /'
release=$(CARGO_TARGET_DIR=$target scripts/static-build.sh --bin drainit --example slow_server)

tmp=$(mktemp -d /tmp/drainit-oci.XXXXXX)
id=drainit-example-$$
state=$tmp/runc # runc's own state (--root): nothing outside $tmp
bundle=$tmp/bundle
runc_pid="" client_pid="" slow_pid=""
cleanup() {
    for pid in $client_pid $slow_pid; do
        kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    if [ -n "$runc_pid" ] && kill -0 "$runc_pid" 2>/dev/null; then
        runc --root "$state" kill "$id" KILL 2>/dev/null || true
        wait "$runc_pid" 2>/dev/null || true
    fi
    runc --root "$state" delete --force "$id" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

echo
echo "== image: /drainit and /app, on an empty base, as a runc bundle"
mkdir -p "$bundle/rootfs/proc" "$bundle/rootfs/dev" "$bundle/rootfs/sys"
install -d -m 1777 "$bundle/rootfs/tmp"
install -m 755 "$release/drainit" "$bundle/rootfs/drainit"
install -m 755 "$release/examples/slow_server" "$bundle/rootfs/app"
(cd "$bundle" && runc spec)

echo
echo "== RUN [\"/drainit\", \"--check\"] (with the image's ENV)"
python3 examples/oci/bundle.py "$dockerfile" "$bundle/config.json" --args /drainit --check >/dev/null
check=0
runc --root "$state" run --bundle "$bundle" "$id" </dev/null >"$tmp/check.log" 2>&1 || check=$?
sed 's/^/  | /' "$tmp/check.log"
[ "$check" = 0 ] || fail "drainit --check refused the image's configuration (exit $check)"

port=8080 # the Dockerfile's CMD
cmd=()
# (SO_REUSEADDR, as the app binds: the connections of a previous run, in
# TIME_WAIT, do not keep the port.)
if ! python3 -c 'import socket as s; l = s.socket(); l.setsockopt(s.SOL_SOCKET, s.SO_REUSEADDR, 1); l.bind(("0.0.0.0", 8080))' 2>/dev/null; then
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("0.0.0.0", 0)); print(s.getsockname()[1])')
    echo
    echo "(port 8080 is taken on this machine: CMD [\"/app\", \"--port\", \"$port\"] instead, as \`docker run IMAGE /app --port $port\`)"
    cmd=(--cmd /app --port "$port")
fi

echo
echo "== container: runc run $id, with STOPSIGNAL $stop_signal"
python3 examples/oci/bundle.py "$dockerfile" "$bundle/config.json" "${cmd[@]}"
runc --root "$state" run --bundle "$bundle" "$id" </dev/null >"$tmp/container.log" 2>&1 &
runc_pid=$!
for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$runc_pid" 2>/dev/null || { cat "$tmp/container.log" >&2; fail "the container exited before serving"; }
    sleep 0.05
done
python3 "$load" once "http://127.0.0.1:$port/" "$tmp/first"
grep -q ' ok$' "$tmp/first" || { cat "$tmp/container.log" >&2; fail "the app does not answer on port $port: $(cat "$tmp/first")"; }
echo "  the app answers on http://127.0.0.1:$port/; $(runc --root "$state" state "$id" | python3 -c 'import json, sys; s = json.load(sys.stdin); print("runc state: %s, PID 1 of the container is host pid %d" % (s["status"], s["pid"]))')"

# The client: one request every 25 ms from 1 s before the stop signal until
# 0.2 s before the drain ends (a load balancer that takes the whole drain to
# stop sending), and a 2 s request that starts 1 s before the drain ends.
python3 "$load" send "http://127.0.0.1:$port/" "$tmp/requests" &
client_pid=$!
for _ in $(seq 100); do
    [ -s "$tmp/requests" ] && break
    sleep 0.05
done
sleep 1
t0=$EPOCHREALTIME
runc --root "$state" kill "$id" "$stop_signal"
sleep_until "$(calc "$t0 + $drain - 1")"
python3 "$load" once "http://127.0.0.1:$port/slow?ms=2000" "$tmp/slow" &
slow_pid=$!
sleep_until "$(calc "$t0 + $drain - 0.2")"
kill -TERM "$client_pid"
wait "$client_pid"

# The container's exit: at most until the grace period, as the platform would.
exited=""
while [ -z "$exited" ] && awk -v t0="$t0" -v g="$grace" -v now="$EPOCHREALTIME" 'BEGIN { exit !(now < t0 + g) }'; do
    kill -0 "$runc_pid" 2>/dev/null || exited=$EPOCHREALTIME
    sleep 0.02
done
[ -n "$exited" ] || fail "the container still runs ${grace}s after $stop_signal"
code=0
wait "$runc_pid" || code=$?
runc_pid=""
wait "$slow_pid"

echo
echo "== container log (drainit and the app, on stderr)"
sed 's/^/  | /' "$tmp/container.log"

echo
echo "== timeline, relative to \`runc kill $id $stop_signal\`"
echo "  requests every 25 ms, per 500 ms (# answered, x failed):"
python3 "$load" bars "$t0" 0.5 "$tmp/requests" -1 | tee "$tmp/bars" | sed '$d'
read -r slow_start slow_end slow_result <"$tmp/slow"
drain_over=$(sed -n 's/.*drain over: .* at +\([0-9.]*\)s$/\1/p' "$tmp/container.log")
echo "  +$(calc "$slow_start - $t0")s  GET /slow?ms=2000 sent; answered ($slow_result) at +$(calc "$slow_end - $t0")s"
echo "  +${drain_over:-?}s  drain over: drainit sends the app its stop signal (drainit's log)"
echo "  +$(calc "$exited - $t0")s  container exited with code $code; drainit's SIGKILL would have come at +$(calc "$grace - $margin")s, the platform's at +$(calc "$grace")s"

echo
failed=$(tail -1 "$tmp/bars" | awk '{ print $4 }')
ok=$(tail -1 "$tmp/bars" | awk '{ print $2 }')
[ "$ok" -gt 0 ] && [ "$failed" = 0 ] || fail "requests during the drain: $(tail -1 "$tmp/bars")"
[ "$slow_result" = ok ] || fail "the request in flight when the drain ended got: $slow_result"
awk -v e="$slow_end" -v t="$t0" -v d="$drain" 'BEGIN { exit !(e > t + d) }' ||
    fail "the slow request ended before the drain did: it proves nothing"
[ "$code" = 0 ] || fail "the container exited $code, not the app's 0"
awk -v x="$exited" -v t="$t0" -v d="$drain" 'BEGIN { exit !(x < t + d + 4) }' ||
    fail "the container exited $(calc "$exited - $t0")s after $stop_signal: more than the drain plus the slow request"
runc --root "$state" state "$id" >/dev/null 2>&1 && fail "runc still lists the container"
echo "OK: $ok requests answered from 1 s before $stop_signal to the end of the ${drain}s drain, none failed; the request in flight at the stop signal finished; exit code 0 at +$(calc "$exited - $t0")s of a ${grace}s grace period."
