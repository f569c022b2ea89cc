"""Connections for bench/sampler.py, in network namespaces it made.

    sampler_load.py serve ADDR PORT PER_PROCESS PROCESSES
        listens on ADDR:PORT (backlog 65535) and accepts with PROCESSES
        processes, each holding up to PER_PROCESS connections (no process may
        hold more descriptors than `ulimit -Hn`); runs until stdin closes.
    sampler_load.py connect DST PORT SOURCE N
        opens N connections to DST:PORT from address SOURCE, prints `ready`,
        and holds them until stdin closes.
    sampler_load.py tick DST PORT
        one connection that sends a byte every 10 ms until stdin closes: TCP
        then receives segments between every two samples (without traffic, a
        sample only reads /proc/net/snmp), on a connection that was busy in
        the sample before (which the sampler then looks up alone).
    sampler_load.py churn DST PORT
        a new connection every 10 ms, which sends a byte and closes, until
        stdin closes: no connection stays busy from one sample to the next,
        so that each sample walks the kernel's table of connections.
"""
import os
import select
import socket
import sys


def wait_for_stdin_eof():
    while os.read(0, 4096):
        pass


def serve(addr, port, per_process, processes):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((addr, port))
    listener.listen(65535)
    children = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            held = []
            # Until stdin closes or this process holds its share.
            while len(held) < per_process:
                ready, _, _ = select.select([listener, 0], [], [])
                if 0 in ready and not os.read(0, 4096):
                    os._exit(0)
                if listener in ready:
                    try:
                        held.append(listener.accept()[0])
                    except BlockingIOError:
                        pass
            wait_for_stdin_eof()
            os._exit(0)
        children.append(pid)
    listener.setblocking(False)
    wait_for_stdin_eof()
    for pid in children:
        os.waitpid(pid, 0)


def connect(dst, port, source, n):
    held = []
    for _ in range(n):
        s = socket.socket()
        s.bind((source, 0))
        s.connect((dst, port))
        held.append(s)
    print("ready", flush=True)
    wait_for_stdin_eof()


def tick(dst, port):
    s = socket.create_connection((dst, port))
    print("ready", flush=True)
    while not select.select([0], [], [], 0.01)[0]:
        s.send(b"x")


def churn(dst, port):
    print("ready", flush=True)
    while not select.select([0], [], [], 0.01)[0]:
        s = socket.create_connection((dst, port))
        s.send(b"x")
        s.close()


if __name__ == "__main__":
    role, args = sys.argv[1], sys.argv[2:]
    if role == "serve":
        serve(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif role == "connect":
        connect(args[0], int(args[1]), args[2], int(args[3]))
    elif role == "tick":
        tick(args[0], int(args[1]))
    elif role == "churn":
        churn(args[0], int(args[1]))
    else:
        sys.exit(f"unknown role {role}")
