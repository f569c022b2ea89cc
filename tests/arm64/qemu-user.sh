#!/usr/bin/env bash
# The integration tests, run against the arm64 release binary under
# qemu-user (qemu-aarch64-static, Debian's qemu-user-static): the suite's
# TEST_DRAINIT_BIN names a wrapper that execs the binary through qemu, so
# drainit's pid is qemu's and every signal, exit code, fork and wait goes
# through the emulated binary.
#
#   tests/arm64/qemu-user.sh DRAINIT-ARM64    (as root, like `cargo test`)
#
# What qemu-user (7.2 here) cannot do, and so is left out here and run on a
# real arm64 kernel by tests/arm64/vm.sh instead:
#   - PR_SET_CHILD_SUBREAPER fails with EINVAL: drainit warns and reaps no
#     orphan when it is not PID 1 (the tests that need a subreaper, and the
#     README's first example, whose stderr gains the warning);
#   - sock_diag netlink is not emulated: the adaptive drain falls back to
#     /proc/net/tcp and sees connections but not the bytes on them.
# Left out as well: apps.rs (nginx, redis: the apps, not drainit's
# architecture) and containers.rs (it builds its own x86_64 static binary).
set -euo pipefail
cd "$(dirname "$0")/../.."
binary=$(realpath "${1:?usage: qemu-user.sh DRAINIT-ARM64}")
qemu=$(command -v qemu-aarch64-static) || {
    echo "qemu-user.sh: FAILED: qemu-aarch64-static not found (apt-get install -y qemu-user-static)" >&2
    exit 1
}
file -b "$binary" | grep -q "ARM aarch64" || {
    echo "qemu-user.sh: FAILED: $binary is not an arm64 binary" >&2
    exit 1
}
tmp=$(mktemp -d /tmp/drainit-qemu-user.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# (Each start is counted: the run proves the suite used the wrapper.)
printf '#!/bin/sh\necho >>%s\nexec %s %s "$@"\n' "$tmp/starts" "$qemu" "$binary" >"$tmp/drainit"
chmod +x "$tmp/drainit"
"$tmp/drainit" --version | grep -q drainit || {
    echo "qemu-user.sh: FAILED: $binary does not run under $qemu" >&2
    exit 1
}

skip=(
    not_pid1_it_becomes_a_subreaper_and_reaps_orphans
    no_subreaper_leaves_orphans_to_someone_else
    not_pid1_a_setsid_escapee_left_by_the_app_is_not_left_running
    the_first_example_prints_what_the_readme_shows
    bytes_on_keep_alive_connections_count_as_traffic
)
args=()
for name in "${skip[@]}"; do args+=(--skip "$name"); done
echo "== the integration tests through $qemu $binary (all but: ${skip[*]})"
TEST_DRAINIT_BIN=$tmp/drainit cargo test --quiet \
    --test bad_input --test exit_codes --test shutdown --test options --test reaping \
    --test hostile --test privilege --test idle --test adaptive --test readme \
    -- --exact "${args[@]}"
starts=$(wc -l <"$tmp/starts")
[ "$starts" -gt 50 ] || {
    echo "qemu-user.sh: FAILED: the arm64 binary was started only $starts times: did the suite honour TEST_DRAINIT_BIN?" >&2
    exit 1
}
echo "OK: the integration tests above passed with the arm64 drainit under qemu-user ($starts starts of it)"
