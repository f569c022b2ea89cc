#!/usr/bin/env bash
# drainit for arm64 on a real arm64 kernel: boots Debian's arm64 kernel under
# qemu-system-aarch64 (emulated, no KVM needed) with an initramfs of
# busybox-static:arm64, the arm64 drainit and tests/arm64/init.sh as /init,
# which runs the cases qemu-user cannot (drainit as PID 1 of a PID namespace,
# the child subreaper, the adaptive drain's byte counts) and prints one
# PASS/FAIL line each on the serial console; then the machine powers off.
#
#   tests/arm64/vm.sh DRAINIT-ARM64     (as root; about 30 s once downloaded)
#
# Downloads (once, kept in $DRAINIT_CI_CACHE, default /var/cache/drainit-ci):
# the arm64 packages linux-image-*-arm64 (60 MB) and busybox-static (0.8 MB),
# with `apt-get download` after enabling the arm64 architecture in dpkg
# (`dpkg --add-architecture arm64`, `apt-get update`: only package lists).
# Needs qemu-system-aarch64 (qemu-system-arm) and, to pack the initramfs, a
# busybox with cpio (busybox-static, which the container tests use too).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
binary=$(realpath "${1:?usage: vm.sh DRAINIT-ARM64}")
cache=${DRAINIT_CI_CACHE:-/var/cache/drainit-ci}/arm64
timeout_s=${DRAINIT_VM_TIMEOUT:-300}

fail() {
    echo "vm.sh: FAILED: $*" >&2
    exit 1
}
command -v qemu-system-aarch64 >/dev/null ||
    fail "qemu-system-aarch64 not found (apt-get install -y qemu-system-arm)"
# The help is read whole before it is searched: `busybox ... | grep -q` under
# pipefail fails when grep stops reading first (SIGPIPE), about 1 run in 200.
cpio_help=$([ -x /bin/busybox ] && /bin/busybox cpio --help 2>&1 || true)
[[ $cpio_help == *newc* ]] ||
    fail "no busybox with cpio to pack the initramfs (apt-get install -y busybox-static)"
file -b "$binary" | grep -q "ARM aarch64" || fail "$binary is not an arm64 binary: $(file -b "$binary")"

# The arm64 kernel and busybox, from Debian, extracted once into $cache.
fetch() {
    mkdir -p "$cache"
    if [ -s "$cache/vmlinuz" ] && [ -x "$cache/busybox" ] && [ -s "$cache/tcp_diag.ko" ]; then
        return
    fi
    [ "$(id -u)" = 0 ] || fail "run it as root the first time (it downloads Debian's arm64 packages into $cache)"
    apt=(apt-get -q -o DPkg::Lock::Timeout=600 -o APT::Sandbox::User=root)
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
    fi
    if ! apt-cache show busybox-static:arm64 >/dev/null 2>&1; then
        "${apt[@]}" update -qq || fail "apt-get update failed (with arm64 added by dpkg --add-architecture arm64)"
    fi
    # The kernel the meta-package linux-image-arm64 points to.
    local kernel
    kernel=$(apt-cache depends linux-image-arm64:arm64 | sed -n 's/^ *Depends: \(linux-image-[^ ]*-arm64\).*/\1/p' | head -1)
    [ -n "$kernel" ] || fail "cannot find the kernel package of linux-image-arm64:arm64 (apt-cache depends linux-image-arm64:arm64)"
    local debs=$cache/debs
    rm -rf "$debs" && mkdir -p "$debs"
    (cd "$debs" && "${apt[@]}" download "$kernel:arm64" busybox-static:arm64) ||
        fail "apt-get download $kernel:arm64 busybox-static:arm64 failed"
    local x=$cache/extract
    rm -rf "$x" && mkdir -p "$x"
    for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$x"; done
    install -m 644 "$x"/boot/vmlinuz-* "$cache/vmlinuz.partial"
    install -m 755 "$x/bin/busybox" "$cache/busybox"
    # sock_diag for TCP, modules in Debian's kernel (a full system loads them
    # on demand, through modprobe; the initramfs loads them with insmod).
    install -m 644 "$x"/lib/modules/*/kernel/net/ipv4/inet_diag.ko "$x"/lib/modules/*/kernel/net/ipv4/tcp_diag.ko "$cache/"
    echo "$kernel" >"$cache/kernel-package"
    mv "$cache/vmlinuz.partial" "$cache/vmlinuz"
    rm -rf "$x" "$debs"
}
fetch

tmp=$(mktemp -d /tmp/drainit-arm64-vm.XXXXXX)
qemu_pid=""
cleanup() {
    if [ -n "$qemu_pid" ]; then kill -KILL "$qemu_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

root=$tmp/root
mkdir -p "$root"/{bin,proc,sys,dev,tmp}
install -m 755 "$cache/busybox" "$root/bin/busybox"
install -m 755 "$binary" "$root/drainit"
install -m 755 "$here/init.sh" "$root/init"
install -m 644 "$cache/inet_diag.ko" "$cache/tcp_diag.ko" "$root/"
(cd "$root" && find . | /bin/busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$tmp/initrd.gz"

echo "== booting $(cat "$cache/kernel-package" 2>/dev/null || echo the arm64 kernel) under qemu-system-aarch64 (TCG), drainit $(stat -c %s "$binary") bytes"
start=$EPOCHREALTIME
qemu-system-aarch64 -M virt -cpu max -smp 2 -m 256 -nographic -no-reboot \
    -kernel "$cache/vmlinuz" -initrd "$tmp/initrd.gz" \
    -append "console=ttyAMA0 panic=-1 quiet" </dev/null >"$tmp/console" 2>&1 &
qemu_pid=$!
# At most $timeout_s, as CI would.
for _ in $(seq $((timeout_s * 10))); do
    kill -0 "$qemu_pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$qemu_pid" 2>/dev/null; then
    cat "$tmp/console" >&2
    fail "the virtual machine still runs after ${timeout_s}s"
fi
wait "$qemu_pid" || true
qemu_pid=""
took=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
tr -d '\r' <"$tmp/console" >"$tmp/console.txt"
sed 's/^/  | /' "$tmp/console.txt"
echo

expected="pid1_drain pid1_sigkill_at_deadline pid1_forwarding pid1_reaps_orphans not_pid1_subreaper adaptive_drain_sees_bytes"
failed=0
for name in $expected; do
    grep -q "^arm64-test: PASS $name:" "$tmp/console.txt" || { echo "vm.sh: $name did not pass" >&2; failed=1; }
done
grep -q "^arm64-test: FAIL" "$tmp/console.txt" && failed=1
grep -q "^arm64-test: done" "$tmp/console.txt" || { echo "vm.sh: the test script did not finish" >&2; failed=1; }
[ $failed = 0 ] || fail "see the console above"
echo "OK: $(grep -c '^arm64-test: PASS' "$tmp/console.txt") cases passed on an arm64 kernel, the whole boot in ${took}s"
