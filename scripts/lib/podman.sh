# Sourced by scripts/image-test.sh and scripts/kube-play-test.sh: podman with
# a store of its own (nothing of the machine's images or containers is
# touched, and everything goes at the end), and the images they run.
#
# Offline: `FROM scratch` needs no registry. Root lacks CAP_SYS_RESOURCE
# here, so containers get modest limits (podman's defaults would exceed the
# caller's and make runc fail), and no network of their own (--network
# none); the scripts reach the app through the container's network
# namespace (nsenter), as a load balancer would reach the pod.

fail() {
    echo "$(basename "$0"): FAILED: $*" >&2
    exit 1
}
[ "$(id -u)" = 0 ] || fail "run it as root (podman runs the containers)"
command -v podman >/dev/null || fail "podman not found (apt-get install -y podman)"
command -v nsenter >/dev/null || fail "nsenter not found (apt-get install -y util-linux)"

store=$(mktemp -d /tmp/drainit-podman.XXXXXX)
nofile=$(( $(ulimit -Hn) < 1024 ? $(ulimit -Hn) : 1024 ))
limits=(--ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096)
# The same limits for what has no --ulimit (podman kube play).
mkdir -p "$store"
printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=4096:4096"]\n' "$nofile" "$nofile" >"$store/containers.conf"
pm() {
    CONTAINERS_CONF=$store/containers.conf podman --root "$store/storage" --runroot "$store/run" --tmpdir "$store/tmp" \
        --cgroup-manager cgroupfs --events-backend file "$@"
}
podman_cleanup() {
    pm pod rm --all --force --time 0 >/dev/null 2>&1 || true
    pm rm --all --force --time 0 >/dev/null 2>&1 || true
    pm rmi --all --force >/dev/null 2>&1 || true
    rm -rf "$store" 2>/dev/null || true
}

# Seconds between two $EPOCHREALTIME values, and a bound check.
since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
within() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x < hi) }'; }

# Builds, from the release directory $1 (scripts/release.sh's) and version $2:
#   drainit:$2-amd64, drainit:$2-arm64 (the Dockerfile: /drainit only), and
#   drainit:$2 (this machine's, amd64), then the example app image of
#   Dockerfile.example on scratch, with `COPY --from=drainit:$2`, as
#   localhost/drainit-example:latest and under the name the manifests of
#   examples/kubernetes/ use (registry.example.com/drainit-example:latest).
build_images() {
    local dist=$1 version=$2 arch
    for arch in amd64 arm64; do
        pm build --quiet --platform "linux/$arch" --network none "${limits[@]}" \
            -f Dockerfile -t "drainit:$version-$arch" "$dist" >/dev/null ||
            fail "podman build of Dockerfile for $arch"
    done
    pm tag "drainit:$version-amd64" "drainit:$version"

    local app=$store/app-context
    mkdir -p "$app"
    local release
    release=$(scripts/static-build.sh --example slow_server)
    install -m 755 "$release/examples/slow_server" "$app/slow_server"
    # Dockerfile.example's image stage, with the drainit image as the source
    # of /drainit and scratch for distroless (neither binary reads its files).
    sed -n '/^FROM gcr.io\/distroless/,$p' Dockerfile.example |
        sed -e 's|^FROM gcr.io/distroless/static-debian12|FROM scratch|' \
            -e "s|^COPY --from=build .*/drainit /drainit|COPY --from=drainit:$version /drainit /drainit|" \
            -e 's|^COPY --from=build .*/slow_server /app|COPY slow_server /app|' >"$app/Containerfile"
    grep -q "^COPY --from=drainit:$version /drainit /drainit" "$app/Containerfile" ||
        fail "Dockerfile.example no longer has the COPY lines this script rewrites"
    pm build --network none "${limits[@]}" -f "$app/Containerfile" \
        -t localhost/drainit-example:latest "$app" >"$store/app-build.log" 2>&1 ||
        { cat "$store/app-build.log" >&2; fail "podman build of the example app image"; }
    pm tag localhost/drainit-example:latest registry.example.com/drainit-example:latest
}

# The pid of a running container (for nsenter into its network namespace).
container_pid() { pm inspect --format '{{.State.Pid}}' "$1"; }

# Waits until the app answers GET / on 127.0.0.1:$2 in container $1's network.
wait_for_app() {
    local pid i
    pid=$(container_pid "$1")
    for i in $(seq 200); do
        nsenter --net="/proc/$pid/ns/net" /usr/bin/python3 examples/demo/load.py once "http://127.0.0.1:$2/" "$store/first" 2>/dev/null
        grep -q ' ok$' "$store/first" 2>/dev/null && return 0
        sleep 0.1
    done
    pm logs "$1" >&2 || true
    fail "the app of $1 does not answer on port $2"
}
