#!/usr/bin/env bash
# The manifests of examples/kubernetes/, played for real with `podman kube
# play` (the image of Dockerfile.example built locally under the name the
# manifests use, scripts/lib/podman.sh), and the kubelet's stop emulated:
#
#   t=0       the pod is deleted: a client (a load balancer not caught up
#             yet) keeps sending to pod 0 through its network namespace;
#             with a preStop hook, the kubelet runs it first (podman runs no
#             hook: this script waits its `sleep: seconds`, the client
#             sending on)
#   then      SIGTERM to every pod's containers, with the grace period left
#             (terminationGracePeriodSeconds - the hook): `podman pod stop -t`
#             for each replica at once.
#
# Checked, per manifest: every replica ran; `/drainit --check` in the pod
# (the README's `kubectl exec ... -- /drainit --check`) shows the manifest's
# drain, grace and margin; drainit's SIGKILL (grace - margin) comes before
# the kubelet's; no request failed before the app's stop; each pod stopped
# at the drain's end (not before, not at the deadline) with the app's exit
# code 0.
#
#   scripts/kube-play-test.sh [VERSION]   (as root; runs scripts/release.sh)
#
# Why not `podman kube down` for the stop: podman 4.3 does not read
# terminationGracePeriodSeconds (its stop timeout stays 10s), so it would
# SIGKILL at 10s, where the kubelet waits the manifest's 30s.
set -euo pipefail
cd "$(dirname "$0")/.."
dist=$(scripts/release.sh "$@" 2>/dev/null)
version=$(basename "$dist")
. scripts/lib/podman.sh
client_pid=""
cleanup() {
    [ -z "$client_pid" ] || kill "$client_pid" 2>/dev/null || true
    podman_cleanup
}
trap cleanup EXIT

echo "== images: drainit:$version, and Dockerfile.example's app on scratch as registry.example.com/drainit-example:latest"
build_images "$dist" "$version"

# The value of env variable $2 in manifest $1 (`- name: X` then `value: "Y"`).
env_value() {
    awk -v n="$2" '$1 == "-" && $2 == "name:" && $3 == n { found = 1; next }
        found && $1 == "value:" { gsub(/"/, "", $2); print $2; exit }' "$1"
}
# Whole seconds of a duration such as 10s, 0, 2s.
whole_seconds() {
    case $1 in
    0) echo 0 ;;
    *[0-9]s) echo "${1%s}" ;;
    *) fail "cannot read the duration $1 (this script reads whole seconds: 10s)" ;;
    esac
}
# A row of `drainit --check`: "  drain         10s    (from DRAINIT_DRAIN)".
check_row() { awk -v k="$2" 'index($0, "  " k " ") == 1 { sub("^  " k " +", ""); print $1; exit }' "$1"; }

play() {
    local manifest=$1
    local replicas tgps prestop drain grace margin
    replicas=$(sed -n 's/^  replicas: *\([0-9]*\).*/\1/p' "$manifest")
    tgps=$(sed -n 's/^ *terminationGracePeriodSeconds: *\([0-9]*\).*/\1/p' "$manifest")
    prestop=$(awk '/preStop:/ { p = 1 } p && $1 == "seconds:" { print $2; exit }' "$manifest")
    prestop=${prestop:-0}
    drain=$(whole_seconds "$(env_value "$manifest" DRAINIT_DRAIN)")
    grace=$(whole_seconds "$(env_value "$manifest" DRAINIT_GRACE)")
    margin=$(whole_seconds "$(env_value "$manifest" DRAINIT_KILL_MARGIN)")
    [ -n "$replicas" ] && [ -n "$tgps" ] || fail "$manifest: cannot read replicas and terminationGracePeriodSeconds"
    local left=$((tgps - prestop))
    echo
    echo "== podman kube play --network none $manifest"
    echo "  manifest: $replicas replicas, terminationGracePeriodSeconds $tgps, preStop sleep ${prestop}s; DRAINIT_DRAIN ${drain}s, DRAINIT_GRACE ${grace}s, DRAINIT_KILL_MARGIN ${margin}s"
    # The numbers must agree, as the manifest's comments say.
    [ "$grace" = "$left" ] ||
        fail "$manifest: DRAINIT_GRACE ${grace}s is not terminationGracePeriodSeconds - preStop = ${left}s"
    [ $((drain + margin)) -lt "$grace" ] || fail "$manifest: drain + margin leaves the app no time"
    [ "$prestop" = 0 ] || [ "$drain" = 0 ] || fail "$manifest: a preStop hook and a drain: the pod would wait twice"

    pm kube play --network none "$manifest" >"$store/play.log" 2>&1 ||
        { cat "$store/play.log" >&2; fail "podman kube play $manifest"; }
    local pods=()
    mapfile -t pods < <(pm pod ps --format '{{.Name}}' | sort)
    [ "${#pods[@]}" = "$replicas" ] || fail "$manifest: ${#pods[@]} pods run, not the $replicas replicas"
    local first=${pods[0]}-app
    wait_for_app "$first" 8080
    echo "  ${#pods[@]} pods: ${pods[*]}; the app of $first answers"

    pm exec "$first" /drainit --check >"$store/check" 2>&1 || { cat "$store/check" >&2; fail "/drainit --check in $first"; }
    echo "  podman exec $first /drainit --check:"
    grep -E '^  (drain|grace|kill margin) ' "$store/check" | sed 's/^/  |/'
    [ "$(check_row "$store/check" drain)" = "${drain}s" ] &&
        [ "$(check_row "$store/check" grace)" = "${grace}s" ] &&
        [ "$(check_row "$store/check" 'kill margin')" = "${margin}s" ] ||
        fail "drainit in the pod does not see the manifest's drain, grace and margin"

    local pid
    pid=$(container_pid "$first")
    rm -f "$store/requests"
    nsenter --net="/proc/$pid/ns/net" /usr/bin/python3 examples/demo/load.py send http://127.0.0.1:8080/ "$store/requests" &
    client_pid=$!
    sleep 1
    local t0=$EPOCHREALTIME
    echo "  t=0: pods deleted$([ "$prestop" = 0 ] || echo "; the preStop hook sleeps ${prestop}s (done by this script: podman runs no hook)")"
    # The client stops sending 0.5 s before the app's stop signal: at the
    # end of the drain, or of the hook when there is no drain.
    local client_end=""
    if [ "$drain" = 0 ]; then
        sleep "$(awk -v p="$prestop" 'BEGIN { print (p > 0.5 ? p - 0.5 : 0) }')"
        client_end=$EPOCHREALTIME
        kill -TERM "$client_pid"
        sleep "$(awk -v p="$prestop" 'BEGIN { print (p > 0.5 ? 0.5 : p) }')"
    else
        sleep "$prestop"
    fi
    local term=$EPOCHREALTIME
    local stops=() pod
    for pod in "${pods[@]}"; do
        (
            s=$EPOCHREALTIME
            pm pod stop -t "$left" "$pod" >/dev/null 2>"$store/$pod.stop.err" || exit 1
            since "$s" "$EPOCHREALTIME" >"$store/$pod.took"
        ) &
        stops+=($!)
    done
    echo "  t=$(since "$t0" "$term")s: SIGTERM (podman pod stop -t $left, each pod)"
    if [ -z "$client_end" ]; then
        sleep "$(awk -v d="$drain" 'BEGIN { print d - 0.5 }')"
        client_end=$EPOCHREALTIME
        kill -TERM "$client_pid"
    fi
    wait "$client_pid" || true
    client_pid=""
    for pid in "${stops[@]}"; do wait "$pid" || fail "podman pod stop failed"; done

    local result ok failed
    result=$(python3 examples/demo/load.py bars "$t0" 0.5 "$store/requests" 0 "$(since "$t0" "$client_end")" | tail -1)
    echo "  requests to ${pods[0]} from t=0 to t=$(since "$t0" "$client_end")s: $result"
    ok=$(echo "$result" | awk '{ print $2 }')
    failed=$(echo "$result" | awk '{ print $4 }')
    [ "${ok:-0}" -gt 0 ] && [ "$failed" = 0 ] || fail "requests failed before the app's stop: $result"
    for pod in "${pods[@]}"; do
        local took code
        took=$(cat "$store/$pod.took")
        code=$(pm inspect --format '{{.State.ExitCode}}' "$pod-app")
        pm logs "$pod-app" >"$store/$pod.log" 2>&1
        [ "$pod" != "${pods[0]}" ] || sed 's/^/  | /' "$store/$pod.log"
        echo "  $pod: stopped in ${took}s after its SIGTERM, exit code $code; drainit's SIGKILL was due at +$((grace - margin))s, the kubelet's at +${left}s"
        [ "$code" = 0 ] || fail "$pod-app exited $code, not the app's 0"
        within "$took" "$drain" "$((drain + 3))" ||
            fail "$pod stopped ${took}s after SIGTERM: the app's stop is due at the end of the ${drain}s drain"
        grep -q "SIGTERM" "$store/$pod.log" && grep -q "exit 0" "$store/$pod.log" ||
            fail "drainit's log in $pod says nothing of the SIGTERM and the exit: $(cat "$store/$pod.log")"
    done
    pm kube down "$manifest" >/dev/null 2>&1 || true
    pm pod rm --all --force --time 0 >/dev/null 2>&1 || true
    echo "OK: $manifest: $replicas pods drained ${drain}s after SIGTERM$([ "$prestop" = 0 ] || echo " (the ${prestop}s preStop hook before it)"), exited 0, well before drainit's SIGKILL at +$((grace - margin))s and the kubelet's at +${left}s; $ok requests, none failed."
}

play examples/kubernetes/deployment.yaml
play examples/kubernetes/deployment-with-prestop.yaml
