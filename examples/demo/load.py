"""A load balancer's view of a shutdown, for examples/demo.sh and
examples/oci/run.sh.

usage:
  load.py send URL LOG
      GET URL every 25 ms, one request at a time, until SIGTERM; appends one
      line per request to LOG: START END RESULT, the times in seconds since
      the epoch (as bash's $EPOCHREALTIME), RESULT ok, refused, reset,
      timeout, http-503, ...
  load.py once URL LOG
      One GET, logged the same way.
  load.py bars T0 STEP LOG [FROM [TO]]
      The requests of LOG (those started from T0+FROM to T0+TO) by
      start time relative to T0, in buckets of STEP seconds: one # per request
      answered, one x per request failed. Prints the totals last:
      `ok N failed M (reasons)`.
"""
import collections
import http.client
import signal
import socket
import sys
import time
import urllib.parse

PERIOD = 0.025


def get(url):
    """GET url; returns "ok" for a 200, else what went wrong."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        connection.request("GET", target)
        response = connection.getresponse()
        response.read()
        return "ok" if response.status == 200 else f"http-{response.status}"
    except ConnectionRefusedError:
        return "refused"
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "timeout"
    except (OSError, http.client.HTTPException) as e:
        return type(e).__name__
    finally:
        connection.close()


def send(url, log):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    with open(log, "a") as out:
        start = time.time()
        while not stop:
            result = get(url)
            out.write(f"{start:.6f} {time.time():.6f} {result}\n")
            out.flush()
            start = max(start + PERIOD, time.time())
            time.sleep(max(0, start - time.time()))


def bars(t0, step, log, since, until):
    buckets = collections.defaultdict(lambda: [0, 0])
    reasons = collections.Counter()
    with open(log) as f:
        for line in f:
            start, _end, result = line.split()
            if not since <= float(start) - t0 < until:
                continue
            bucket = (float(start) - t0) // step
            buckets[bucket][result != "ok"] += 1
            if result != "ok":
                reasons[result] += 1
    ok = failed = 0
    for bucket in sorted(buckets):
        good, bad = buckets[bucket]
        ok, failed = ok + good, failed + bad
        counts = f"{good:3} ok" + (f" {bad:3} failed" if bad else "")
        print(f"  {bucket * step:+6.2f}s  {'#' * good + 'x' * bad:<24} {counts}")
    why = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
    print(f"ok {ok} failed {failed}" + (f" ({why})" if why else ""))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "send":
        send(args[0], args[1])
    elif command == "once":
        with open(args[1], "a") as out:
            start = time.time()
            result = get(args[0])
            out.write(f"{start:.6f} {time.time():.6f} {result}\n")
    elif command == "bars":
        since = float(args[3]) if len(args) > 3 else float("-inf")
        until = float(args[4]) if len(args) > 4 else float("inf")
        bars(float(args[0]), float(args[1]), args[2], since, until)
    else:
        sys.exit(__doc__)
