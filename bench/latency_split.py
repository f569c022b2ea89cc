"""Where a forwarded signal's latency goes, init by init: the three parts of
bench.py's signal-forwarding path, from perf's system-call tracepoints.

    latency_split.py ROUNDS SIGNALS NAME:PATH [NAME:PATH ...]

e.g. `latency_split.py 5 1000 drainit:target/x86_64-unknown-linux-musl/release/drainit
dumb-init:/usr/bin/dumb-init` (as root; bench/run.sh builds bench/.build first).
Each round starts every init in turn (shuffled) as PID 1 of its own PID
namespace over bench/stamp, sends SIGNALS SIGUSR1s with bench/sigsend, and
records, machine-wide, the entries and exits of system calls:

    wake  sigsend's kill(2) enters -> the init's rt_sigtimedwait(2) returns
    user  rt_sigtimedwait returns  -> the init's kill(2) enters (its own work)
    app   the init's kill enters   -> stamp's write(2) of the ack enters

and prints the median over rounds of each round's median, in µs. The
tracepoints add their own cost to each part, the same for every init: compare
inits, not absolute figures. x86_64 system call numbers; needs `perf` (linux-perf).
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402

BUILD = os.path.join(HERE, ".build")
KILL, RT_SIGTIMEDWAIT, WRITE = 62, 128, 1


def parts(trace, pid):
    """Lists of the three parts (seconds) in `perf script` output."""
    wake, user, app = [], [], []
    sent = returned = killed = None
    for line in trace.splitlines():
        f = line.split()
        if len(f) < 5:
            continue
        comm, tid, t, event = f[0], f[1], float(f[2].rstrip(":")), f[3]
        nr = int(f[5].rstrip(",")) if f[4] == "NR" else None
        enter = "sys_enter" in event
        if comm == "sigsend" and enter and nr == KILL:
            sent = t
        elif tid == str(pid) and not enter and nr == RT_SIGTIMEDWAIT:
            if sent is not None:
                wake.append(t - sent)
                sent = None
            returned = t
        elif tid == str(pid) and enter and nr == KILL:
            if returned is not None:
                user.append(t - returned)
                returned = None
            killed = t
        elif comm == "stamp" and enter and nr == WRITE and killed is not None:
            app.append(t - killed)
            killed = None
    return wake, user, app


def round_of(init, signals):
    with tempfile.TemporaryDirectory() as tmp:
        fifo = os.path.join(tmp, "acks")
        os.mkfifo(fifo)
        ns = bench.Namespace(init, [os.path.join(BUILD, "stamp"), fifo])
        data = os.path.join(tmp, "perf.data")
        try:
            perf = subprocess.Popen(
                ["perf", "record", "-q", "-a", "-o", data,
                 "-e", "raw_syscalls:sys_enter,raw_syscalls:sys_exit"],
                stderr=subprocess.DEVNULL)
            time.sleep(0.3)
            subprocess.run([os.path.join(BUILD, "sigsend"), str(ns.pid), fifo, str(signals), "300"],
                           stdout=subprocess.DEVNULL, check=True)
            perf.send_signal(2)
            perf.wait()
            pid = ns.pid
        finally:
            ns.close()
        trace = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,time,event,trace",
                                "--ns"], capture_output=True, text=True, check=True).stdout
    return [statistics.median(p) * 1e6 for p in parts(trace, pid)]


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    rounds, signals = int(sys.argv[1]), int(sys.argv[2])
    inits = [bench.Init(*spec.split(":", 1)) for spec in sys.argv[3:]]
    results = {i.name: [] for i in inits}
    for _ in range(rounds):
        for init in bench.shuffled(inits):
            results[init.name].append(round_of(init, signals))
    for init in inits:
        rows = results[init.name]
        wake, user, app = (statistics.median(r[k] for r in rows) for k in range(3))
        print(f"{init.name:12} wake {wake:6.2f}  user {user:5.2f}  app {app:6.2f} µs "
              f"(median of {len(rows)} rounds' medians)")


if __name__ == "__main__":
    main()
