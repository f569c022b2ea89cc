"""An HTTP/1.1 server (keep-alive) for the adaptive-drain tests.

usage: server.py LOG PORT
Brings loopback up is the caller's job. Appends `<CLOCK_MONOTONIC ns> app ready`
when listening and `<ns> app TERM` when SIGTERM arrives, then stops
accepting, finishes in-flight requests and exits 0.
"""
import http.server
import os
import signal
import sys
import threading
import time

log = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
port = int(sys.argv[2])


def record(what):
    os.write(log, f"{time.monotonic_ns()} app {what}\n".encode())


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.daemon_threads = True


def on_term(number, frame):
    record("TERM")
    threading.Thread(target=server.shutdown).start()


signal.signal(signal.SIGTERM, on_term)
record("ready")
server.serve_forever()
os._exit(0)
