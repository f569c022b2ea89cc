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
# Left out too, qemu-user's own artefacts: the environment passed unchanged
# (qemu rebuilds it), inherited and SIGPIPE dispositions, a small pids limit
# (qemu's threads); see `skip` below.
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
chmod 755 "$tmp" # (some tests run drainit as another user)
# The wrapper (tests/arm64/qemu_wrapper.rs): it execs qemu with the binary,
# and counts its starts, to prove the suite used it.
: >"$tmp/starts"
chmod 666 "$tmp/starts"
WRAP_STARTS=$tmp/starts WRAP_QEMU=$qemu WRAP_BINARY=$binary \
    rustc --edition 2021 -O tests/arm64/qemu_wrapper.rs -o "$tmp/drainit"
chmod 755 "$tmp/drainit"
"$tmp/drainit" --version | grep -q drainit || {
    echo "qemu-user.sh: FAILED: $binary does not run under $qemu" >&2
    exit 1
}

# tests/common recognises drainit by /proc/PID/exe, which under qemu-user
# is qemu's: TEST_DRAINIT_EXE names it (tests/common/launch.rs reads it; a
# checkout whose launcher does not runs from a patched copy).
export TEST_DRAINIT_EXE=$qemu
crate=.
if ! grep -q TEST_DRAINIT_EXE tests/common/launch.rs; then
    crate=$tmp/crate
    mkdir -p "$crate"
    tar -c --exclude=./target --exclude=./.git --exclude=./fuzz/target . | tar -x -C "$crate"
    sed -i 's|^        let drainit = fs::canonicalize(drainit_binary()).unwrap();$|        let drainit = std::env::var_os("TEST_DRAINIT_EXE").map(PathBuf::from).unwrap_or_else(\|\| fs::canonicalize(drainit_binary()).unwrap());|' "$crate/tests/common/launch.rs"
    grep -q TEST_DRAINIT_EXE "$crate/tests/common/launch.rs" || {
        echo "qemu-user.sh: FAILED: tests/common/launch.rs recognises drainit by its /proc/PID/exe and reads no TEST_DRAINIT_EXE: under qemu-user that is $qemu (the harness needs that knob)" >&2
        exit 1
    }
    # (Its own build directory, kept between runs.)
    export CARGO_TARGET_DIR=$PWD/target/qemu-user
fi

skip=(
    # PR_SET_CHILD_SUBREAPER: EINVAL under qemu-user (the warning, or no reaping)
    not_pid1_it_becomes_a_subreaper_and_reaps_orphans
    no_subreaper_leaves_orphans_to_someone_else
    not_pid1_a_setsid_escapee_left_by_the_app_is_not_left_running
    not_pid1_drainit_holds_only_stdio_and_no_socket
    the_first_example_prints_what_the_readme_shows
    bytes_that_are_not_utf8_in_an_option_or_a_drainit_variable_name
    # sock_diag netlink: not emulated (no bytes nor sources per connection,
    # and its failure changes the fallback's warning)
    bytes_on_keep_alive_connections_count_as_traffic
    without_proc_the_fixed_drain_is_kept
    connections_from_an_ignored_source_do_not_hold_the_drain_open
    # (without sock_diag, connections that come and go cannot be tied to a
    # port: they count as traffic, and hold the drain past the port filter)
    traffic_on_ports_not_watched_does_not_hold_the_drain_open
    # qemu's own: it rebuilds the environment (drops entries without `=`
    # and duplicates, reorders), does not pass inherited SIG_IGN on to the
    # program, leaves SIGPIPE ignored in the app, and its threads do not fit
    # a small pids limit
    as_pid1_the_environment_reaches_the_app_unchanged
    not_pid1_the_environment_reaches_the_app_unchanged
    bytes_that_are_not_utf8_reach_the_app_as_pid1
    bytes_that_are_not_utf8_reach_the_app_not_pid1
    signals_blocked_by_the_parent_stay_blocked_in_the_app_and_drainit_still_drains
    signals_ignored_by_the_parent_stay_ignored_in_the_app_and_drainit_still_drains
    glibc_reserved_signals_ignored_by_the_parent_stay_ignored_in_the_app
    a_pids_limit_that_stops_the_spawn_fails_clearly
)
args=()
for name in "${skip[@]}"; do args+=(--skip "$name"); done
echo "== the integration tests through $qemu $binary (all but: ${skip[*]})"
(cd "$crate" && TEST_DRAINIT_BIN=$tmp/drainit cargo test --quiet --no-fail-fast \
    --test bad_input --test exit_codes --test shutdown --test options --test reaping \
    --test hostile --test privilege --test idle --test adaptive --test readme --test platforms \
    -- --exact "${args[@]}")
starts=$(wc -l <"$tmp/starts")
[ "$starts" -gt 50 ] || {
    echo "qemu-user.sh: FAILED: the arm64 binary was started only $starts times: did the suite honour TEST_DRAINIT_BIN?" >&2
    exit 1
}
echo "OK: the integration tests above passed with the arm64 drainit under qemu-user ($starts starts of it)"
