#!/usr/bin/env bash
# The rollout lab (examples/rollout/README.md): a rolling update of N pods
# behind a real Service (kube-proxy's iptables rules) and a real ingress
# (nginx), under real load (hey), once per init: tini, dumb-init,
# `preStop: sleep`, drainit with a fixed drain, drainit with the adaptive one.
#
#   examples/rollout/run.sh                  the full lab, about 4 minutes: writes
#                                            examples/rollout/results.json, rollout.svg
#                                            and the table in README.md
#   ROLLOUT_QUICK=1 examples/rollout/run.sh  for CI, about 1 minute: 2 replicas,
#                                            tini and drainit (fixed, adaptive),
#                                            new connections only; writes nothing
#                                            in the repository
#
# Both exit non-zero if drainit (fixed or adaptive) failed any request through
# the Service or the ingress, or if tini failed none through the Service (then
# the lab no longer shows the problem it exists for).
#
# Settings (variables): ROLLOUT_REPLICAS (3; quick 2), ROLLOUT_LAG (2: seconds
# from an endpoint's removal to the Service rules and the ingress),
# ROLLOUT_GRACE (30), ROLLOUT_DRAIN (5: drainit's fixed drain and the preStop
# sleep), ROLLOUT_ADAPTIVE ("--drain 15s --drain-min 2s --drain-quiet 1s"),
# ROLLOUT_CONCURRENCY (4 workers per path), ROLLOUT_RATE (50 requests/s per
# worker), ROLLOUT_CONTENDERS, ROLLOUT_SCENARIOS (new,keepalive).
#
# As root; installs what it lacks from Debian's packages. Everything it creates
# is named ro-* and lives in network namespaces of its own (addresses
# 10.213.0.0/16 exist only there); it is all removed at the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=examples/rollout

fail() {
    echo "rollout: FAILED: $*" >&2
    exit 1
}
[ "$(id -u)" = 0 ] || fail "run it as root (network namespaces, iptables, runc)"

need=()
command -v runc >/dev/null || need+=(runc)
command -v hey >/dev/null || need+=(hey)
command -v nginx >/dev/null || need+=(nginx-light)
[ -x /usr/bin/tini-static ] || need+=(tini)
[ -x /usr/bin/dumb-init ] || need+=(dumb-init)
command -v iptables-restore >/dev/null || need+=(iptables)
command -v conntrack >/dev/null || need+=(conntrack)
command -v ip >/dev/null || need+=(iproute2)
[ -x /usr/bin/python3 ] || need+=(python3)
[ -x /usr/bin/sleep ] || need+=(coreutils)
if [ ${#need[@]} -gt 0 ]; then
    echo "rollout: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

tmp=$(mktemp -d /tmp/ro-run.XXXXXX)
lab_pid=""
cleanup() {
    if [ -n "$lab_pid" ] && kill -0 "$lab_pid" 2>/dev/null; then
        kill -TERM "$lab_pid" 2>/dev/null || true # the lab removes what it made
        wait "$lab_pid" 2>/dev/null || true
    fi
    # What a killed lab could not remove: its containers, the processes in
    # its namespaces, the namespaces (with them the bridge, veths and rules).
    if [ -d "$tmp/lab/runc" ]; then
        for id in $(runc --root "$tmp/lab/runc" list -q 2>/dev/null); do
            runc --root "$tmp/lab/runc" kill "$id" KILL 2>/dev/null || true
            runc --root "$tmp/lab/runc" delete --force "$id" 2>/dev/null || true
        done
    fi
    for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^ro-(node|p[0-9]+)$/ { print $1 }'); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns list | grep -q '^ro-node' && fail "a netns ro-node exists already: another run of the lab? (ip netns del ro-node)"

echo "== the image: /drainit (scripts/static-build.sh), /tini (Debian's tini-static), /app.py;" \
    "/usr (python3, dumb-init, sleep) bind-mounted from the host" >&2
release=$(scripts/static-build.sh --bin drainit)
mkdir -p "$tmp/image"
install -m 755 "$release/drainit" "$tmp/image/drainit"
install -m 755 /usr/bin/tini-static "$tmp/image/tini"
install -m 644 "$here/app.py" "$tmp/image/app.py"

if [ -n "${ROLLOUT_QUICK:-}" ] && [ "${ROLLOUT_QUICK}" != 0 ]; then
    out=$tmp/results.json
else
    out=$here/results.json
fi
LAB_TMP=$tmp/lab /usr/bin/python3 "$here/lab.py" "$tmp/image" "$out.new" &
lab_pid=$!
wait "$lab_pid" || fail "the lab failed (exit $?)"
lab_pid=""
mv "$out.new" "$out"

if [ "$out" = "$here/results.json" ]; then
    /usr/bin/python3 "$here/report.py" "$out" --svg "$here/rollout.svg" --readme README.md
else
    /usr/bin/python3 "$here/report.py" "$out"
fi
/usr/bin/python3 "$here/report.py" "$out" --check
