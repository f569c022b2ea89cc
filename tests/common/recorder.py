"""A test app that records what it receives, for drainit's integration tests.

Each line it appends to the log file is `<CLOCK_MONOTONIC ns> <role> <what>`,
so tests compare instants with their own monotonic clock. Roles: `app` (the
process drainit started) and `grandchild` (a process it forked, in its group).

Options:
  --log FILE           where to append (required)
  --ignore SIGS        record these signals and keep running (e.g. TERM)
  --grandchild         fork a grandchild that records the same way
  --exit-after S:CODE  exit with CODE S seconds after start
  --orphans N          leave N orphans that exit at once, then record `orphans-done`
  --orphan-sleep S     leave one orphan that sleeps S seconds; record `orphan pid=P`
Every other catchable signal is recorded; TERM, INT and QUIT also end the
process with exit code 0 unless ignored.
"""
import os
import signal
import sys
import time

args = sys.argv[1:]
opts = {}
while args:
    key = args.pop(0).lstrip("-")
    opts[key] = True if key == "grandchild" else args.pop(0)

log = os.open(opts["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
role = "app"


def record(what):
    os.write(log, f"{time.monotonic_ns()} {role} {what}\n".encode())


ignored = {s.upper().removeprefix("SIG") for s in opts.get("ignore", "").split(",") if s}


def on_signal(number, _frame):
    name = signal.Signals(number).name.removeprefix("SIG")
    record(name)
    if name in ("TERM", "INT", "QUIT") and name not in ignored:
        os._exit(0)


for sig in signal.valid_signals():
    if sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD) or sig >= 32:
        continue
    try:
        signal.signal(sig, on_signal)
    except (OSError, ValueError):
        pass

if opts.get("grandchild") and os.fork() == 0:
    role = "grandchild"

if role == "app":
    if "orphans" in opts:
        for _ in range(int(opts["orphans"])):
            pid = os.fork()
            if pid == 0:
                if os.fork() == 0:
                    os._exit(0)
                os._exit(0)
            os.waitpid(pid, 0)
        record("orphans-done")
    if "orphan-sleep" in opts:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            orphan = os.fork()
            if orphan == 0:
                os.close(read)
                os.close(write)
                time.sleep(float(opts["orphan-sleep"]))
                os._exit(0)
            os.write(write, str(orphan).encode())
            os._exit(0)
        os.waitpid(pid, 0)
        os.close(write)
        record(f"orphan pid={os.read(read, 32).decode()}")
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    tty = "none"
    if os.isatty(0):
        tty = "fg" if os.tcgetpgrp(0) == os.getpgrp() else "bg"
    record(f"ready pid={os.getpid()} pgid={os.getpgrp()} mask={len(mask)} tty={tty}")
else:
    record(f"ready pid={os.getpid()} pgid={os.getpgrp()}")

deadline = None
if "exit-after" in opts and role == "app":
    seconds, code = opts["exit-after"].split(":")
    deadline = time.monotonic() + float(seconds)
while True:
    if deadline is None:
        signal.pause()
    else:
        left = deadline - time.monotonic()
        if left <= 0:
            record("exit")
            os._exit(int(code))
        time.sleep(left)
