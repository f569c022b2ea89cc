"""Sends HTTP requests until a CLOCK_MONOTONIC instant, as a load balancer does
until it learns that the endpoint is gone; prints `ok=N failed=M`.

usage: client.py PORT UNTIL_NS new|keepalive
new: a new connection per request; keepalive: one connection for all.
"""
import http.client
import sys
import time

port, until, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ok = failed = 0
connection = None
while time.monotonic_ns() < until:
    try:
        if connection is None or mode == "new":
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        ok += response.status == 200
        failed += response.status != 200
        if mode == "new":
            connection.close()
    except (OSError, http.client.HTTPException):
        # Refused, reset, or cut short mid-response (IncompleteRead): failed.
        failed += 1
        connection = None
    time.sleep(0.02)
print(f"ok={ok} failed={failed}", flush=True)
