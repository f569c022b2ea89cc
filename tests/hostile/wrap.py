"""Starts a program in a hostile state, for drainit's tests (tests/hostile.rs).

usage: wrap.py [OPTIONS] -- PROGRAM [ARGS]...

Sets every signal disposition to default, then applies the options, then
execs PROGRAM (same pid: run as PID 1 of a namespace, PROGRAM is PID 1 too).
  --ignore SIGS     set these signals to SIG_IGN (comma list: TERM,INT,CHLD)
  --block SIGS      block these signals (the mask survives exec)
  --nofile N        set RLIMIT_NOFILE to N (soft and hard)
  --close-stdio     close file descriptors 0, 1 and 2
  --broken-stdio    stdout and stderr become a pipe whose read end is closed
                    (every write fails with EPIPE), stdin a pipe at EOF
"""
import os
import resource
import signal
import sys


def signals(text):
    return [signal.Signals["SIG" + s.upper().removeprefix("SIG")] for s in text.split(",") if s]


args = sys.argv[1:]
opts = {}
while args:
    key = args.pop(0)
    if key == "--":
        break
    key = key.removeprefix("--")
    opts[key] = True if key in ("close-stdio", "broken-stdio") else args.pop(0)
if not args:
    sys.exit("wrap.py: no program given")

# Python ignores SIGPIPE and SIGXFSZ itself: start from a clean slate.
for number in signal.valid_signals():
    if number in (signal.SIGKILL, signal.SIGSTOP):
        continue
    try:
        signal.signal(number, signal.SIG_DFL)
    except (OSError, ValueError):
        pass
for number in signals(opts.get("ignore", "")):
    signal.signal(number, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_BLOCK, signals(opts.get("block", "")))
if "nofile" in opts:
    n = int(opts["nofile"])
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
if opts.get("broken-stdio"):
    read, write = os.pipe()
    os.close(read)
    os.dup2(write, 1)
    os.dup2(write, 2)
    os.close(write)
    read, write = os.pipe()
    os.close(write)
    os.dup2(read, 0)
    os.close(read)
if opts.get("close-stdio"):
    for fd in (0, 1, 2):
        os.close(fd)
try:
    os.execv(args[0], args)
except OSError as error:
    os.write(2, f"wrap.py: cannot run {args[0]}: {error}\n".encode())
    os._exit(126)
