#!/bin/busybox sh
# /init of the arm64 virtual machine of tests/arm64/vm.sh: a real arm64
# kernel (Debian's, under qemu-system-aarch64), busybox and /drainit. It
# runs what qemu-user cannot: drainit as PID 1 of a PID namespace on an
# arm64 kernel (as the integration tests do on x86_64, with
# `unshare --pid --fork --mount-proc`), the child subreaper, and the
# adaptive drain's view of the bytes on a connection (sock_diag netlink).
#
# Each case prints `arm64-test: PASS NAME: ...` or `arm64-test: FAIL NAME:
# ...` on the serial console, then `arm64-test: done`, and the machine
# powers off. Times come from /proc/uptime (10 ms steps); the bounds leave
# room for an emulated CPU on a loaded machine.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev # (before any 2>/dev/null, and background jobs read /dev/null)
mount -t tmpfs tmp /tmp
# TCP's sock_diag, which the adaptive drain reads (modules in Debian's
# kernel; a full system loads them on demand through modprobe).
insmod /inet_diag.ko && insmod /tcp_diag.ko || echo "arm64-test: FAIL modules: cannot load inet_diag and tcp_diag"

say() { echo "arm64-test: $*"; }
now() { cut -d' ' -f1 /proc/uptime; }
# Seconds from $1 to $2, with two decimals.
since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# within X LO HI: LO <= X < HI
within() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x < hi) }'; }
check() { # NAME CONDITION-STATUS DETAIL
    if [ "$2" = 0 ]; then say "PASS $1: $3"; else say "FAIL $1: $3"; fi
}
# The pids whose parent is $1.
children() {
    for stat in /proc/[0-9]*/stat; do
        read -r pid _ _ ppid _ 2>/dev/null <"$stat" || continue
        [ "$ppid" = "$1" ] && echo "$pid"
    done
}
# How many processes with parent $1 are in state $2 (Z: zombies; any: all).
count_children() {
    n=0
    for stat in /proc/[0-9]*/stat; do
        read -r _ _ state ppid _ 2>/dev/null <"$stat" || continue
        [ "$ppid" = "$1" ] || continue
        [ "$2" = any ] || [ "$state" = "$2" ] || continue
        n=$((n + 1))
    done
    echo "$n"
}
# Kills the children of $1 but the app ($1's first child), and waits until
# $1 has reaped them (a single child left), at most 20 s.
kill_orphans() {
    app=$(children "$1" | sort -n | head -1)
    for pid in $(children "$1"); do [ "$pid" = "$app" ] || kill -KILL "$pid"; done
    i=0
    while [ "$(count_children "$1" any)" -gt 1 ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
}
wait_for_file() { # FILE: up to 20 s
    i=0
    while [ ! -s "$1" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
    [ -s "$1" ]
}
# The first time the app logged $2 in $1 ("TERM", "USR1", ...).
logged() { awk -v w="$2" '$1 == w { print $2; exit }' "$1"; }

# The app: logs "ready", then each of TERM, USR1, HUP with its instant;
# on TERM exits with $2 (or ignores TERM if $2 is "ignore").
cat >/app <<'EOF'
#!/bin/sh
log=$1 code=$2
now() { cut -d' ' -f1 /proc/uptime; }
for sig in USR1 HUP; do trap "echo $sig \$(now) >>$log" $sig; done
if [ "$code" = ignore ]; then
    trap "echo TERM \$(now) >>$log" TERM
else
    trap "echo TERM \$(now) >>$log; exit $code" TERM
fi
echo ready "$(now)" >>"$log"
while :; do sleep 0.05; done
EOF
chmod +x /app

# Starts drainit as PID 1 of a new PID namespace: sets $unshare (the
# unshare process, whose exit status is drainit's) and $drainit (drainit's
# pid, seen from here).
start_pid1() {
    unshare --pid --fork --mount-proc /drainit "$@" &
    unshare=$!
    drainit=""
    i=0
    while [ -z "$drainit" ] && [ $i -lt 400 ]; do
        drainit=$(children "$unshare")
        [ -n "$drainit" ] || sleep 0.05
        i=$((i + 1))
    done
}

say "kernel $(uname -r) $(uname -m), $(nproc) CPUs; drainit: $(/drainit --version)"

# 1. PID 1: orphans re-parented to drainit are reaped; no zombie is left.
cat >/orphans <<'EOF'
#!/bin/sh
# 20 orphans at once: the subshell that started them exits. They sleep
# until the test kills them.
(
    i=0
    while [ $i -lt 20 ]; do sleep 1000 & i=$((i + 1)); done
)
echo "ready $(cut -d' ' -f1 /proc/uptime)" >>"$1"
exec sleep 1000
EOF
chmod +x /orphans
log=/tmp/orphans.log
start_pid1 -- /orphans $log
wait_for_file $log
adopted=$(count_children "$drainit" any)
kill_orphans "$drainit"
zombies=$(count_children "$drainit" Z)
left=$(count_children "$drainit" any)
kill -TERM "$drainit"
wait "$unshare"
code=$?
[ "$adopted" -gt 10 ] && [ "$zombies" = 0 ] && [ "$left" = 1 ]
check pid1_reaps_orphans $(( $? + (code != 143) )) "$adopted children of drainit once the orphans were adopted, $zombies zombies and $left child (the app) once they were killed; exit $code (143: the app's sleep died of SIGTERM)"

# 2. PID 1: the drain holds the stop signal back, then the app's code is drainit's.
log=/tmp/drain.log
start_pid1 --drain 1s --grace 10s -- /app $log 3
wait_for_file $log
t0=$(now)
kill -TERM "$drainit"
wait "$unshare"
code=$?
term=$(logged $log TERM)
after=$(since "$t0" "${term:-0}")
within "$after" 0.99 2.0
check pid1_drain $(( $? + (code != 3) )) "app got SIGTERM at +${after}s of a 1s drain; drainit exited $code (app's code: 3)"

# 3. PID 1: an app that ignores SIGTERM is killed at grace - margin, exit 137.
log=/tmp/kill.log
start_pid1 --drain 500ms --grace 3s --kill-margin 1s -- /app $log ignore
wait_for_file $log
t0=$(now)
kill -TERM "$drainit"
wait "$unshare"
code=$?
t1=$(now)
term=$(logged $log TERM)
after=$(since "$t0" "${term:-0}")
took=$(since "$t0" "$t1")
within "$after" 0.49 1.5 && within "$took" 1.99 3.0
check pid1_sigkill_at_deadline $(( $? + (code != 137) )) "SIGTERM to the app at +${after}s (drain 0.5s), gone at +${took}s (SIGKILL due at +2s); drainit exited $code (137)"

# 4. PID 1: USR1 and HUP are forwarded at once; a repeated SIGTERM changes
# nothing. (Not SIGINT here: started in the background by this shell, the
# app inherits SIGINT ignored, which drainit keeps, and sh cannot trap it.)
log=/tmp/forward.log
start_pid1 --drain 5s -- /app $log 0
wait_for_file $log
t0=$(now)
kill -USR1 "$drainit"
kill -HUP "$drainit"
sleep 1
usr1=$(logged $log USR1)
hup=$(logged $log HUP)
t1=$(now)
kill -TERM "$drainit"
sleep 0.5
kill -TERM "$drainit" # a repeated SIGTERM changes nothing (the drain goes on)
wait "$unshare"
code=$?
term=$(logged $log TERM)
a=$(since "$t0" "${usr1:-99}")
b=$(since "$t0" "${hup:-99}")
c=$(since "$t1" "${term:-0}")
within "$a" 0 0.8 && within "$b" 0 0.8 && within "$c" 4.99 6.0
check pid1_forwarding $(( $? + (code != 0) )) "USR1 at +${a}s, HUP at +${b}s; SIGTERM, and again at +0.5s: the app got SIGTERM at +${c}s, the 5s drain's end; exit $code (0)"

# 5. Not PID 1, on a real kernel: drainit becomes a child subreaper, the
# orphans are re-parented to it, and reaped.
log=/tmp/subreaper.log
/drainit -- /orphans $log &
drainit=$!
wait_for_file $log
adopted=$(count_children "$drainit" any)
kill_orphans "$drainit"
zombies=$(count_children "$drainit" Z)
left=$(count_children "$drainit" any)
kill -TERM "$drainit"
wait "$drainit"
code=$?
[ "$adopted" -gt 10 ] && [ "$zombies" = 0 ] && [ "$left" = 1 ]
check not_pid1_subreaper $(( $? + (code != 143) )) "$adopted children of drainit (a subreaper) once the orphans were adopted, $zombies zombies and $left child once they were killed; exit $code (143)"

# 6. Adaptive drain: bytes on one open connection count as traffic (read
# over sock_diag netlink, which qemu-user does not emulate), so the drain
# lasts as long as they flow and ends a quiet time after they stop.
cat >/listener <<'EOF'
#!/bin/sh
ip link set lo up
echo ready >>"$1"
# -ll: keep listening (one `cat` per connection, echoing its bytes)
exec nc -ll -p 8099 -e /bin/cat
EOF
chmod +x /listener
log=/tmp/adaptive.log
unshare --pid --fork --mount-proc --net /drainit -v --drain 20s --drain-min 500ms --drain-quiet 1s -- /listener $log 2>/tmp/adaptive.err &
unshare=$!
wait_for_file $log
drainit=$(children "$unshare")
# Until nc listens on 8099 (0x1FA3, IPv6 and IPv4) in drainit's network namespace.
i=0
while ! cat /proc/"$drainit"/net/tcp6 | grep -q ":1FA3 0*:0000 0A" && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
# One connection, a few bytes every 100 ms, for 3 s after the SIGTERM.
(
    read -r up _ </proc/uptime
    end=$((${up%.*}${up#*.} + 350)) # in centiseconds
    while read -r up _ </proc/uptime && [ "${up%.*}${up#*.}" -lt $end ]; do
        echo x
        sleep 0.1
    done
) | nsenter --net=/proc/"$drainit"/ns/net nc 127.0.0.1 8099 >/dev/null &
client=$!
sleep 0.5
t0=$(now)
kill -TERM "$drainit"
wait "$unshare"
code=$?
took=$(since "$t0" "$(now)")
wait "$client" 2>/dev/null
# Bytes until about +3s, quiet 1s: about +4s. Without the bytes it would
# end at +1.5s at the latest (no new connection after the first; minimum
# 0.5s, quiet 1s); at the latest +20s.
within "$took" 2.5 6.0
check adaptive_drain_sees_bytes $(( $? + (code != 143) )) "drain ended and drainit exited $code (143) at +${took}s: bytes until about +3s, quiet 1s"
[ "$code" = 143 ] && within "$took" 2.5 6.0 || cat /tmp/adaptive.err

say done
poweroff -f
