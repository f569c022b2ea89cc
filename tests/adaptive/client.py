"""Sends HTTP requests until a CLOCK_MONOTONIC instant, as a load balancer does
until it learns that the endpoint is gone; prints `ok=N failed=M`.

usage: client.py PORT UNTIL_NS new|keepalive|close [SOURCE_ADDRESS]
new: a new connection per request, closed by the client once answered;
keepalive: one connection for all; close: a new connection per request with
`Connection: close`, read to its end: the server closes first (a client that
closes as soon as it has the response races the server's close; a connection
it wins leaves no trace for drainit to tell its port or source, see the README).
"""
import http.client
import socket
import sys
import time

port, until, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
source = (sys.argv[4], 0) if len(sys.argv) > 4 else None
ok = failed = 0
connection = None
def until_server_closes():
    """One request on a new connection; True if answered 200."""
    with socket.create_connection(("127.0.0.1", port), timeout=2, source_address=source) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
        return reply.startswith(b"HTTP/1.1 200 ")


while time.monotonic_ns() < until:
    try:
        if mode == "close":
            answered = until_server_closes()
            ok += answered
            failed += not answered
            time.sleep(0.02)
            continue
        if connection is None or mode != "keepalive":
            connection = http.client.HTTPConnection(
                "127.0.0.1", port, timeout=2, source_address=source
            )
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        ok += response.status == 200
        failed += response.status != 200
        if mode != "keepalive":
            connection.close()
    except (OSError, http.client.HTTPException):
        # Refused, reset, or cut short mid-response (IncompleteRead): failed.
        failed += 1
        connection = None
    time.sleep(0.02)
print(f"ok={ok} failed={failed}", flush=True)
