"""The lab's app: an HTTP/1.1 server with keep-alive and a graceful stop, as
most production servers have (Go's http.Server.Shutdown, Node's
server.close): on SIGTERM it stops listening (new connections are refused),
finishes every request in flight (answering it with `Connection: close`),
closes its idle keep-alive connections and exits 0.

examples/slow_server.rs would do, but it closes every connection after one
answer: the lab needs keep-alive, to show what connections that conntrack
keeps on a terminating pod do.

usage: app.py [--port N]      GET / answers at once; GET /slow?ms=N after N ms

Logs to stderr, with wall-clock times (the lab reads them):
  app: SIGTERM at 1764581234.123456
"""
import select
import signal
import socket
import sys
import threading
import time

stopping = threading.Event()
connections = set()
lock = threading.Lock()


def serve_connection(conn):
    """One keep-alive connection: requests until the client closes it, or
    until the stop (an idle connection is closed at once, a busy one after
    its answer)."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = b""
    try:
        while True:
            while b"\r\n\r\n" not in buffer:
                if not buffer:
                    # Idle between two requests: the stop closes it here.
                    readable, _, _ = select.select([conn], [], [], 0.05)
                    if not readable:
                        if stopping.is_set():
                            return
                        continue
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = request_line.split()
            target = parts[1] if len(parts) > 1 else "/"
            path, _, query = target.partition("?")
            if path == "/slow":
                ms = 1000
                for pair in query.split("&"):
                    if pair.startswith("ms=") and pair[3:].isdigit():
                        ms = int(pair[3:])
                time.sleep(ms / 1000)
                status, body = "200 OK", b"slept %d ms\n" % ms
            elif path == "/":
                status, body = "200 OK", b"hello from the rollout lab\n"
            else:
                status, body = "404 Not Found", b"not found\n"
            close = stopping.is_set()
            conn.sendall(
                (
                    "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n"
                    % (status, len(body), "Connection: close\r\n" if close else "")
                ).encode()
                + body
            )
            if close:
                return
    except OSError:
        pass
    finally:
        conn.close()
        with lock:
            connections.discard(threading.current_thread())


def accept_loop(listener):
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return  # the listener was shut down: the stop
        worker = threading.Thread(target=serve_connection, args=(conn,), daemon=True)
        with lock:
            connections.add(worker)
        worker.start()


def main():
    port = 8080
    if sys.argv[1:2] == ["--port"]:
        port = int(sys.argv[2])
    # Blocked before any thread exists, taken by sigwait: the stop is ordinary code.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(1024)
    print("app: listening on port %d at %.6f" % (port, time.time()), file=sys.stderr, flush=True)
    acceptor = threading.Thread(target=accept_loop, args=(listener,), daemon=True)
    acceptor.start()

    signum = signal.sigwait({signal.SIGTERM, signal.SIGINT})
    print("app: %s at %.6f" % (signal.Signals(signum).name, time.time()), file=sys.stderr, flush=True)
    stopping.set()
    listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); new connections are refused
    listener.close()
    acceptor.join()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with lock:
            if not connections:
                break
        time.sleep(0.02)
    print("app: exiting 0 at %.6f" % time.time(), file=sys.stderr, flush=True)


main()
