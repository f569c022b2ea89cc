#!/usr/bin/env bash
# The README's test command: installs from Debian's packages what the tests
# need and is missing, then runs `cargo test` (with any arguments given, e.g.
# `scripts/test.sh --test containers --test apps`).
#
# As root: the integration tests run drainit as PID 1 of a new PID namespace
# (unshare, nsenter: util-linux; ip: iproute2) with /usr/bin/python3 as the
# test app; tests/containers.rs runs real containers (runc, podman, a static
# busybox rootfs) and tests/apps.rs real apps (nginx, redis). The static
# build needs glibc's static libraries (libc6-dev) for its fallback, `file`
# for its checks.
#
# If something is missing and cannot be installed (not root, no apt-get, no
# network), it stops before the tests with the command to run. A test whose
# program is missing fails naming its package (tests/common's `require`),
# never skips.
#
#   --install-only   install, and do not run the tests (.ci/run, the examples)
set -euo pipefail
cd "$(dirname "$0")/.."

install_only=""
if [ "${1:-}" = --install-only ]; then
    install_only=1
    shift
fi

need=()
command -v unshare >/dev/null && command -v nsenter >/dev/null || need+=(util-linux)
command -v ip >/dev/null || need+=(iproute2)
[ -x /usr/bin/python3 ] || need+=(python3)
command -v sh >/dev/null || need+=(dash)
command -v runc >/dev/null || need+=(runc)
command -v podman >/dev/null || need+=(podman)
{ [ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q static; } || need+=(busybox-static)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || need+=(redis-server)
command -v file >/dev/null || need+=(file)
[ -f "/usr/lib/$(uname -m)-linux-gnu/libc.a" ] || need+=(libc6-dev)

if [ ${#need[@]} -gt 0 ]; then
    line="apt-get install -y ${need[*]}"
    cannot() {
        echo "test.sh: the tests need ${need[*]}, and $1: run \`$line\` as root" >&2
        exit 1
    }
    [ "$(id -u)" = 0 ] || cannot "this is not root"
    command -v apt-get >/dev/null || cannot "there is no apt-get here"
    echo "test.sh: installing ${need[*]}" >&2
    # (waits for another apt to finish rather than failing on its lock)
    apt=(apt-get -q -o DPkg::Lock::Timeout=600)
    "${apt[@]}" update -qq >&2 || cannot "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq "${need[@]}" >&2 || cannot "apt-get install failed"
fi
[ "$(id -u)" = 0 ] || echo "test.sh: not root: the integration tests need root (PID namespaces, containers) and will fail" >&2

[ -n "$install_only" ] && exit 0
exec cargo test "$@"
