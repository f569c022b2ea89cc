"""Runs COMMAND on a new pseudo-terminal, as `docker run -it` does.

usage: pty_run.py -- COMMAND [ARGS]...

Bytes read from this script's stdin are typed on the terminal (b"\\x03" is
Ctrl-C, b"\\x1a" Ctrl-Z); what the terminal shows is copied to stdout. Exits
with COMMAND's exit code (128+N if it died of signal N).
"""
import os
import pty
import select
import sys

command = sys.argv[sys.argv.index("--") + 1:]
pid, master = pty.fork()
if pid == 0:
    os.execvp(command[0], command)

typing = True
while True:
    ready, _, _ = select.select([master] + ([0] if typing else []), [], [], 0.05)
    if 0 in ready:
        keys = os.read(0, 1024)
        if keys:
            os.write(master, keys)
        else:
            typing = False
    if master in ready:
        try:
            shown = os.read(master, 4096)
        except OSError:
            shown = b""
        sys.stdout.buffer.write(shown)
        sys.stdout.flush()
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        sys.exit(os.waitstatus_to_exitcode(status) % 256 if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
