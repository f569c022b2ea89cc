#!/usr/bin/env bash
# What the drain changes, on one machine, in about 10 s (plus the first build).
#
# examples/slow_server.rs runs under drainit, drainit being PID 1 of a PID
# namespace as in a container (unshare --pid --fork --mount-proc). A client
# sends GET / every 25 ms, from 0.5 s before drainit's SIGTERM to 2 s after
# it, as load balancers keep doing until they learn that the pod is going
# away. Two runs:
#
#   drainit --drain 0   the app gets SIGTERM at once (what tini, dumb-init or
#                       an app without an init do): the requests that keep
#                       coming are refused;
#   drainit --drain 3s  the app keeps serving 3 s, then gets SIGTERM: none fails.
#
# Prints, for each run, drainit's and the app's log and the requests per
# 250 ms (# answered, x failed). Exits non-zero unless the run without a
# drain had failures and the run with one had none. Needs root (for
# unshare), cargo and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
load=examples/demo/load.py

if [ "$(id -u)" != 0 ]; then
    echo "demo.sh: run it as root: drainit runs as PID 1 of a new PID namespace (unshare --pid)" >&2
    exit 1
fi
echo "building drainit and examples/slow_server.rs (cargo build --release) ..."
cargo build --release --quiet --bin drainit --example slow_server
drainit=$target/release/drainit
server=$target/release/examples/slow_server

tmp=$(mktemp -d /tmp/drainit-demo.XXXXXX)
started=()
cleanup() {
    local pid children
    for pid in "${started[@]}"; do
        # For unshare, kill its child (drainit: its end ends the whole PID
        # namespace) and let unshare reap it and exit; else the process itself.
        children=()
        read -ra children 2>/dev/null <"/proc/$pid/task/$pid/children" || true
        kill -KILL "${children[@]:-$pid}" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# run NAME DRAIN: one run; leaves NAME.log (the requests) and NAME.stderr.
run() {
    local name=$1 drain=$2 port unshare_pid drainit_pid="" t0 client_pid rc
    port=$(free_port)
    # --kill-child: if this script is killed, drainit (and with it the
    # whole PID namespace) goes too.
    unshare --pid --fork --mount-proc --kill-child "$drainit" --drain "$drain" -- \
        "$server" --port "$port" </dev/null 2>"$tmp/$name.stderr" &
    unshare_pid=$!
    started+=("$unshare_pid")
    # Wait for the app to listen, and find drainit: unshare's child.
    for _ in $(seq 100); do
        drainit_pid=$(cat "/proc/$unshare_pid/task/$unshare_pid/children" 2>/dev/null || true)
        if [ -n "$drainit_pid" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            break
        fi
        drainit_pid=""
        sleep 0.05
    done
    if [ -z "$drainit_pid" ]; then
        echo "demo.sh: the app did not start:" >&2
        cat "$tmp/$name.stderr" >&2
        exit 1
    fi

    python3 "$load" send "http://127.0.0.1:$port/" "$tmp/$name.log" &
    client_pid=$!
    started+=("$client_pid")
    for _ in $(seq 100); do
        [ -s "$tmp/$name.log" ] && break
        sleep 0.05
    done
    sleep 0.5
    t0=$EPOCHREALTIME
    kill -TERM "$drainit_pid"
    sleep 2
    kill -TERM "$client_pid"
    wait "$client_pid"
    rc=0
    wait "$unshare_pid" || rc=$?
    echo "$t0" >"$tmp/$name.t0"
    if [ "$rc" != 0 ]; then
        echo "demo.sh: drainit exited $rc (expected 0: the app's code):" >&2
        cat "$tmp/$name.stderr" >&2
        exit 1
    fi
}

# show NAME TITLE: the log and the requests of one run.
show() {
    echo
    echo "== $2"
    sed 's/^/  | /' "$tmp/$1.stderr"
    echo "  requests by start time, relative to drainit's SIGTERM (# answered, x failed):"
    python3 "$load" bars "$(cat "$tmp/$1.t0")" 0.25 "$tmp/$1.log" -0.5 2 | tee "$tmp/$1.bars" | sed '$d'
    echo "  $(tail -1 "$tmp/$1.bars")"
}

echo "client: GET / every 25 ms, from 0.5 s before the SIGTERM to 2 s after it"
run nodrain 0
run drain 3s
show nodrain "drainit --drain 0: the app gets SIGTERM at once"
show drain "drainit --drain 3s: the app keeps serving 3 s, then gets SIGTERM"

failed() { tail -1 "$tmp/$1.bars" | awk '{ print $4 }'; }
echo
if [ "$(failed nodrain)" -gt 0 ] && [ "$(failed drain)" -eq 0 ]; then
    echo "OK: without a drain $(failed nodrain) requests failed; with a 3 s drain none did."
else
    echo "FAILED: expected failures without a drain ($(failed nodrain)) and none with one ($(failed drain))." >&2
    exit 1
fi
