#!/usr/bin/env bash
# The image to copy drainit from, built and used as a user would:
#   1. `Dockerfile` (FROM scratch, /drainit only) for amd64 and arm64, from
#      the release binaries: each image holds one file, the release's
#      binary (its SHA256SUMS line);
#   2. an app image that copies from it (Dockerfile.example's image stage,
#      with `COPY --from=drainit:VERSION /drainit /drainit`), whose
#      `RUN ["/drainit", "--check"]` runs during the build;
#   3. `podman run` of the app image, a client sending requests through the
#      drain, then `podman stop -t GRACE`: the app keeps answering during the
#      image's DRAINIT_DRAIN, gets its STOPSIGNAL at the drain's end, and the
#      container exits with the app's code (0), without podman's SIGKILL.
#
#   scripts/image-test.sh [VERSION]    (as root; runs scripts/release.sh first)
set -euo pipefail
cd "$(dirname "$0")/.."
dist=$(scripts/release.sh "$@")
version=$(basename "$dist")
. scripts/lib/podman.sh
name=drainit-image-test-$$
client_pid=""
cleanup() {
    [ -z "$client_pid" ] || kill "$client_pid" 2>/dev/null || true
    podman_cleanup
}
trap cleanup EXIT

echo "== podman build: drainit:$version-amd64, drainit:$version-arm64 (Dockerfile), the app image (Dockerfile.example on scratch)"
build_images "$dist" "$version"
for arch in amd64 arm64; do
    image=drainit:$version-$arch
    said=$(pm image inspect --format '{{.Os}}/{{.Architecture}}' "$image")
    [ "$said" = "linux/$arch" ] || fail "$image says it is for $said"
    cid=$(pm create "$image" 2>/dev/null) # (arm64: "does not match the expected platform")
    files=$(pm export "$cid" | tar -t | grep -v '/$' | sort | tr '\n' ' ')
    pm export "$cid" | tar -x -O drainit >"$store/drainit-$arch"
    chmod 755 "$store/drainit-$arch" # (qemu-user wants it executable)
    pm rm "$cid" >/dev/null
    [ "$files" = "drainit " ] || fail "$image holds more than /drainit: $files"
    want=$(awk -v f="drainit-$arch" '$2 == f { print $1 }' "$dist/SHA256SUMS")
    got=$(sha256sum <"$store/drainit-$arch" | cut -d' ' -f1)
    [ "$want" = "$got" ] || fail "/drainit of $image is not the release's drainit-$arch"
    echo "  $image: linux/$arch, one file /drainit, sha256 $got (SHA256SUMS' drainit-$arch)"
done
if command -v qemu-aarch64-static >/dev/null; then
    said=$(qemu-aarch64-static "$store/drainit-arm64" --version) || fail "/drainit of drainit:$version-arm64 does not run under qemu-aarch64-static"
    echo "  /drainit of drainit:$version-arm64 runs (qemu-aarch64-static): $said"
fi
echo "  drainit:$version = drainit:$version-amd64 (this machine's)"
# The app image's `RUN ["/drainit", "--check"]` ran in the build, and printed the plan.
grep -q '^On SIGTERM' "$store/app-build.log" || { cat "$store/app-build.log" >&2; fail "the app image's build did not run drainit --check"; }
echo "  the app image's RUN [\"/drainit\", \"--check\"] (podman build):"
sed -n '/drainit configuration/,/^When the app exits/p' "$store/app-build.log" | sed 's/^/  | /'

# What the image says, and what the README promises for it.
drain=$(sed -n 's/^ENV DRAINIT_DRAIN=\([0-9]*\)s$/\1/p' Dockerfile.example)
grace=$(sed -n 's/^ENV DRAINIT_GRACE=\([0-9]*\)s$/\1/p' Dockerfile.example)
[ -n "$drain" ] && [ -n "$grace" ] || fail "cannot read DRAINIT_DRAIN and DRAINIT_GRACE (whole seconds) from Dockerfile.example"

echo
echo "== podman run localhost/drainit-example:latest (ENV DRAINIT_DRAIN=${drain}s DRAINIT_GRACE=${grace}s), then podman stop -t $grace"
pm run -d --name "$name" --network none "${limits[@]}" localhost/drainit-example:latest >/dev/null
wait_for_app "$name" 8080
pid=$(container_pid "$name")
# A load balancer that keeps sending until 0.5 s before the drain ends.
nsenter --net="/proc/$pid/ns/net" /usr/bin/python3 examples/demo/load.py send http://127.0.0.1:8080/ "$store/requests" &
client_pid=$!
sleep 1
t0=$EPOCHREALTIME
pm stop -t "$grace" "$name" >"$store/stop.out" 2>"$store/stop.err" &
stop_pid=$!
sleep "$(awk -v d="$drain" 'BEGIN { print d - 0.5 }')"
kill -TERM "$client_pid"
wait "$client_pid" || true
client_pid=""
wait "$stop_pid" || fail "podman stop failed: $(cat "$store/stop.err")"
took=$(since "$t0" "$EPOCHREALTIME")
code=$(pm inspect --format '{{.State.ExitCode}}' "$name")
pm logs "$name" >"$store/logs" 2>&1
sed 's/^/  | /' "$store/logs"
result=$(python3 examples/demo/load.py bars "$t0" 0.5 "$store/requests" 0 | tail -1)
echo "  requests from the stop to the drain's end: $result"
echo "  podman stop -t $grace took ${took}s; the container exited $code"

ok=$(echo "$result" | awk '{ print $2 }')
failed=$(echo "$result" | awk '{ print $4 }')
[ "${ok:-0}" -gt 0 ] && [ "$failed" = 0 ] || fail "requests during the drain: $result"
[ "$code" = 0 ] || fail "the container exited $code, not the app's 0"
within "$took" "$drain" "$((drain + 3))" ||
    fail "podman stop took ${took}s: the app should stop at the end of the ${drain}s drain"
grep -q "resorting to SIGKILL" "$store/stop.err" && fail "podman had to SIGKILL the container: $(cat "$store/stop.err")"
grep -q "drain" "$store/logs" && grep -q "SIGTERM" "$store/logs" || fail "drainit's log says nothing of the drain"
echo "OK: the image holds only /drainit for each architecture; an app image copying it ran, answered $ok requests during the ${drain}s drain with none failed, and stopped with the app's exit code 0 at +${took}s of podman stop -t $grace."
