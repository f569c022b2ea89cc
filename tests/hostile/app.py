"""A hostile app for drainit's tests (tests/hostile.rs, tests/privilege.rs).

It writes into --out DIR:
  ready    `pid=<pid> pgid=<pgid> sid=<sid>` once set up (written atomically),
           pids as seen inside drainit's PID namespace
  events   one `<CLOCK_MONOTONIC ns> <role> <what>` line per event

Options:
  --out DIR              where to write (required)
  --count SIGS           count these signals (comma list, e.g. HUP,USR1); the
                         counts are recorded as `counts HUP=n ...` when TERM comes
  --count-max N          ignore a counted signal once it came N times (a storm
                         of Python-level handlers would otherwise starve the app)
  --on-term CODE         on SIGTERM: record `TERM`, then exit with CODE (default 0)
  --ignore-term          on SIGTERM: record `TERM` and keep running
  --exit-after-term S:CODE
                         on SIGTERM: record `TERM`, exit with CODE S seconds later
                         (further SIGTERMs change nothing)
  --children N           fork N children first; they do the same as the app
                         (role `child`), in the app's process group
  --escape               fork a child that calls setsid() (leaving the app's
                         group and session), ignores SIGTERM and sleeps;
                         recorded as `escapee pid=<pid> sid=<sid>`
  --linger               fork a child that stays in the app's process group,
                         ignores SIGTERM and sleeps; recorded as `lingerer pid=<pid>`
  --dump                 copy /proc/self/cmdline and /proc/self/environ to
                         DIR/cmdline and DIR/environ
"""
import os
import signal
import sys
import time

args = sys.argv[1:]
opts = {}
FLAGS = ("ignore-term", "escape", "linger", "dump")
while args:
    key = args.pop(0)
    if key == "--":
        break  # what follows is only there to be seen in /proc/self/cmdline
    key = key.removeprefix("--")
    opts[key] = True if key in FLAGS else args.pop(0)

out = opts["out"]
events = os.open(os.path.join(out, "events"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
role = "app"


def record(what):
    os.write(events, f"{time.monotonic_ns()} {role} {what}\n".encode())


counted = [signal.Signals["SIG" + s.upper().removeprefix("SIG")] for s in opts.get("count", "").split(",") if s]
counts = {s: 0 for s in counted}


count_max = int(opts.get("count-max", "0"))


def count(number, _frame):
    counts[number] += 1
    if count_max and counts[number] >= count_max:
        signal.signal(number, signal.SIG_IGN)


for s in counted:
    signal.signal(s, count)


def counts_line():
    return "counts " + " ".join(f"{s.name.removeprefix('SIG')}={n}" for s, n in counts.items())


exiting = []


def on_term(_number, _frame):
    if exiting:
        return
    record("TERM")
    if counts:
        record(counts_line())
    if "ignore-term" in opts:
        return
    if "exit-after-term" in opts:
        seconds, code = opts["exit-after-term"].split(":")
        exiting.append(int(code))
        signal.setitimer(signal.ITIMER_REAL, float(seconds))
        return
    os._exit(int(opts.get("on-term", "0")))


def on_alarm(_number, _frame):
    record(f"exit {exiting[0]}")
    os._exit(exiting[0])


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGALRM, on_alarm)

if "escape" in opts:
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        os.setsid()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        role = "escapee"
        record(f"escapee pid={os.getpid()} sid={os.getsid(0)}")
        os.close(write)
        while True:
            time.sleep(3600)
    os.close(write)
    os.read(read, 1)  # EOF once the escapee has recorded itself
    os.close(read)

if "linger" in opts:
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        role = "lingerer"
        record(f"lingerer pid={os.getpid()}")
        os.close(write)
        while True:
            time.sleep(3600)
    os.close(write)
    os.read(read, 1)
    os.close(read)

for _ in range(int(opts.get("children", "0"))):
    if os.fork() == 0:
        role = "child"
        break

if "dump" in opts and role == "app":
    for name in ("cmdline", "environ"):
        with open(f"/proc/self/{name}", "rb") as source:
            data = source.read()
        with open(os.path.join(out, name), "wb") as target:
            target.write(data)

record(f"ready pid={os.getpid()}")
if role == "app":
    ready = os.path.join(out, "ready")
    with open(ready + ".tmp", "w") as f:
        f.write(f"pid={os.getpid()} pgid={os.getpgrp()} sid={os.getsid(0)}\n")
    os.rename(ready + ".tmp", ready)

while True:
    signal.pause()
