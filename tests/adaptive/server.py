"""An HTTP/1.1 server (keep-alive) for the adaptive-drain tests.

usage: server.py LOG PORT[,PORT...]   (or LOG udp: no TCP listener, a UDP socket)
Brings loopback up is the caller's job. Appends `<CLOCK_MONOTONIC ns> app ready`
when listening and `<ns> app TERM` when SIGTERM arrives, then stops
accepting, finishes in-flight requests and exits 0.
"""
import http.server
import os
import signal
import socket
import sys
import threading
import time

log = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
ports = sys.argv[2]


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


if ports == "udp":
    # A UDP service: nothing for the TCP sampler to watch.
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 5353))
    signal.signal(signal.SIGTERM, lambda n, f: (record("TERM"), os._exit(0)))
    record("ready")
    while True:
        signal.pause()

class Server(http.server.ThreadingHTTPServer):
    # Not the default 5: a full backlog drops a SYN, whose retry a second
    # later would be traffic long after the client stopped.
    request_queue_size = 128


servers = []
for port in ports.split(","):
    server = Server(("127.0.0.1", int(port)), Handler)
    server.daemon_threads = True
    servers.append(server)


def on_term(number, frame):
    record("TERM")
    for server in servers:
        threading.Thread(target=server.shutdown).start()


signal.signal(signal.SIGTERM, on_term)
record("ready")
threads = [threading.Thread(target=s.serve_forever) for s in servers]
for t in threads:
    t.start()
for t in threads:
    t.join()
os._exit(0)
