"""What one sample of the adaptive drain costs with 0 to 50,000 connections,
beside `ss -tin` on the same sockets. Run by bench.py, or alone (as root):

    sampler.py SAMPLER_COST [RESULTS_MD]

SAMPLER_COST is the binary of bench/sampler_cost.rs (drainit's own sampler
code). Two network namespaces of this script's own, joined by a veth pair:
the server's (the app's: a listener on port 8080 holding the connections) and
the clients'. Each size is measured three times: with the connections idle
(a sample then only reads /proc/net/snmp); with one connection sending a byte
every 10 ms (a sample then looks up alone the connection that was busy in the
sample before: the case of load balancers and ingress controllers, whose
connections are kept alive); and with a new connection every 10 ms that sends
a byte and closes: with the one listener and every source counted, PassiveOpens
alone tells that connections came; with `--drain-ignore-from`, no connection is
busy twice, so every sample walks the kernel's table of connections, as `ss`
does. Everything is removed at the
end, also on failure.
"""

import json
import math
import os
import resource
import signal
import subprocess
import sys
import time

QUICK = os.environ.get("BENCH_QUICK") == "1"
SIZES = [0, 1000, 10000] if QUICK else [0, 1000, 10000, 50000]
SAMPLES, SS_RUNS = (10, 3) if QUICK else (30, 10)
PORT = 8080
# --drain-ignore-from for the walk: an address no client has (the kubelet's,
# in a pod), which keeps PassiveOpens from vouching for every new connection.
IGNORED = "192.0.2.1/32"
PER_PROCESS = 18000  # descriptors a process may hold: below `ulimit -Hn` (20000 here)
SERVER, CLIENTS = "10.201.0.1", ["10.201.1.%d" % i for i in range(1, 5)]
TARGET_CPU_MS_AT_10K = 2.0
# drainit's timeline: a sample every 100 ms, or 50 times its CPU time if longer.
INTERVAL_MS, SHARE = 100.0, 50
HERE = os.path.dirname(os.path.abspath(__file__))
LOAD = os.path.join(HERE, "sampler_load.py")
PYTHON = "/usr/bin/python3"


def log(message):
    print(f"bench: sampler: {message}", file=sys.stderr, flush=True)


def sh(*command):
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Lab:
    """The two namespaces and the processes in them."""

    def __init__(self):
        tag = os.getpid() % 100000
        self.srv, self.cli = f"dib-srv-{tag}", f"dib-cli-{tag}"
        self.processes = []
        sh("ip", "netns", "add", self.srv)
        sh("ip", "netns", "add", self.cli)
        sh("ip", "link", "add", f"dbs{tag}", "netns", self.srv, "type", "veth",
           "peer", "name", f"dbc{tag}", "netns", self.cli)
        for ns, dev, addrs in ((self.srv, f"dbs{tag}", [SERVER]), (self.cli, f"dbc{tag}", CLIENTS)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", dev, "up")
            for addr in addrs:
                sh("ip", "-n", ns, "addr", "add", f"{addr}/16", "dev", dev)
        self.run(self.srv, "sysctl", "-q", "-w", "net.core.somaxconn=65535")
        self.run(self.srv, "sysctl", "-q", "-w", "net.ipv4.tcp_max_syn_backlog=65535")
        self.run(self.cli, "sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65000")

    def run(self, ns, *command, **kw):
        return subprocess.run(["ip", "netns", "exec", ns, *command], check=True, **kw)

    def start(self, ns, *args):
        p = subprocess.Popen(["ip", "netns", "exec", ns, PYTHON, LOAD, *args],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             preexec_fn=raise_nofile)
        self.processes.append(p)
        return p

    def ready(self, p):
        line = p.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"load process {p.args[4:]} failed to start")

    def stop(self, p):
        p.stdin.close()
        p.wait(30)
        self.processes.remove(p)

    def established(self):
        snmp = self.run(self.srv, "cat", "/proc/net/snmp", capture_output=True, text=True).stdout
        tcp = [line.split() for line in snmp.splitlines() if line.startswith("Tcp:")]
        return int(tcp[1][tcp[0].index("CurrEstab")])

    def close(self):
        for p in self.processes:
            try:
                p.stdin.close()
            except OSError:
                pass
        for p in self.processes:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        for ns in (self.srv, self.cli):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                  text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


def median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


SS_TIMER = r"""
import json, os, subprocess, sys, time
cpu, wall = [], []
for _ in range(int(sys.argv[1])):
    t = time.perf_counter()
    p = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    wall.append((time.perf_counter() - t) * 1e6)
    cpu.append((usage.ru_utime + usage.ru_stime) * 1e6)
    if status:
        sys.exit(f"{sys.argv[2:]} failed: {status}")
print(json.dumps({"cpu_us": cpu, "wall_us": wall}))
"""


def sampler_cost(lab, binary, *ignore_from):
    out = lab.run(lab.srv, binary, str(SAMPLES), str(PORT), *ignore_from, capture_output=True,
                  text=True).stdout
    r = json.loads(out)
    return r["connections"], median(r["cpu_us"]) / 1e3, median(r["wall_us"]) / 1e3


def ss_cost(lab):
    out = lab.run(lab.srv, PYTHON, "-c", SS_TIMER, str(SS_RUNS), "ss", "-tin", "state",
                  "established", f"( sport = :{PORT} )", capture_output=True, text=True).stdout
    r = json.loads(out)
    return median(r["cpu_us"]) / 1e3, median(r["wall_us"]) / 1e3


def exponent(points):
    """Least-squares slope of log(cost) over log(connections)."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(c) for _, c in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def measure(binary):
    """Returns the rows: one dict per size."""
    rows = []
    lab = Lab()
    try:
        processes = -(-max(SIZES) // PER_PROCESS)
        lab.start(lab.srv, "serve", SERVER, str(PORT), str(PER_PROCESS), str(processes))
        time.sleep(0.3)
        have = 0
        for size in SIZES:
            while have < size:
                n = min(size - have, PER_PROCESS - 1000)
                source = CLIENTS[(have // PER_PROCESS) % len(CLIENTS)]
                lab.ready(lab.start(lab.cli, "connect", SERVER, str(PORT), source, str(n)))
                have += n
            deadline = time.monotonic() + 60
            while lab.established() < size:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {lab.established()} of {size} connections established")
                time.sleep(0.2)
            log(f"{size} connections")
            seen, idle_cpu, idle_wall = sampler_cost(lab, binary)
            ticker = lab.start(lab.cli, "tick", SERVER, str(PORT))
            lab.ready(ticker)
            seen_busy, cpu, wall = sampler_cost(lab, binary)
            ss_cpu, ss_wall = ss_cost(lab)
            lab.stop(ticker)
            churn = lab.start(lab.cli, "churn", SERVER, str(PORT))
            lab.ready(churn)
            seen_new, new_cpu, new_wall = sampler_cost(lab, binary)
            seen_walk, walk_cpu, walk_wall = sampler_cost(lab, binary, IGNORED)
            lab.stop(churn)
            rows.append({"connections": size, "seen": seen, "idle_cpu_ms": idle_cpu,
                         "idle_wall_ms": idle_wall, "cpu_ms": cpu, "wall_ms": wall,
                         "new_cpu_ms": new_cpu, "new_wall_ms": new_wall,
                         "walk_cpu_ms": walk_cpu, "walk_wall_ms": walk_wall,
                         "ss_cpu_ms": ss_cpu, "ss_wall_ms": ss_wall, "seen_busy": seen_busy,
                         "seen_walk": seen_walk})
    finally:
        lab.close()
    return rows


def table(rows):
    lines = [
        "### The adaptive drain's sampler at scale",
        "",
        "| established connections to the watched port | sample, connections idle: CPU / wall "
        "| sample, traffic on a kept-alive connection: CPU | … wall "
        "| sample, new connections: CPU / wall "
        "| … with `--drain-ignore-from` (walks the table): CPU | … wall "
        "| `ss -tin` on the same sockets: CPU | … wall | walk ÷ ss (CPU) "
        "| share of a core while draining: kept-alive / walk |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    share = lambda ms: 100 * ms / max(INTERVAL_MS, SHARE * ms)
    for r in rows:
        lines.append(
            f"| {r['connections']:,} | {r['idle_cpu_ms']:.3f} / {r['idle_wall_ms']:.3f} ms "
            f"| {r['cpu_ms']:.3f} ms | {r['wall_ms']:.3f} ms "
            f"| {r['new_cpu_ms']:.3f} / {r['new_wall_ms']:.3f} ms "
            f"| {r['walk_cpu_ms']:.2f} ms | {r['walk_wall_ms']:.2f} ms "
            f"| {r['ss_cpu_ms']:.2f} ms | {r['ss_wall_ms']:.2f} ms "
            f"| {r['walk_cpu_ms'] / r['ss_cpu_ms']:.2f}× "
            f"| {share(r['cpu_ms']):.1f}% / {share(r['walk_cpu_ms']):.1f}% |")
    sized = [r for r in rows if r["connections"] > 0]
    floor = next((r["walk_cpu_ms"] for r in rows if r["connections"] == 0), 0.0)
    fit = exponent([(r["connections"], r["cpu_ms"]) for r in sized])
    walk_fit = exponent([(r["connections"], r["walk_cpu_ms"]) for r in sized])
    walk_above = exponent([(r["connections"], max(1e-6, r["walk_cpu_ms"] - floor)) for r in sized])
    ss_fit = exponent([(r["connections"], r["ss_cpu_ms"]) for r in sized])
    at_10k = next((r for r in rows if r["connections"] == 10000), None)
    largest = sized[-1]
    per_connection_us = (largest["walk_cpu_ms"] - floor) / largest["connections"] * 1e3
    sizes = ", ".join(f"{r['connections']:,}" for r in sized)
    if at_10k is None:
        verdict = "–"
    else:
        ok = max(at_10k["cpu_ms"], at_10k["new_cpu_ms"]) <= TARGET_CPU_MS_AT_10K
        verdict = (f"{at_10k['cpu_ms']:.3f} ms with traffic on kept-alive connections, "
                   f"{at_10k['new_cpu_ms']:.3f} ms with new connections "
                   f"{'**PASS**' if ok else '**FAIL**'}; a sample that must walk the table "
                   f"(new connections with `--drain-ignore-from`, or the first after the "
                   f"traffic stops while other segments arrive) "
                   f"{at_10k['walk_cpu_ms']:.2f} ms, over the target: the walk alone costs "
                   f"{floor:.2f} ms with no connection")
    lines += [
        "",
        f"CPU per sample with traffic on kept-alive connections grows as connections^{fit:.2f} "
        f"(least squares over {sizes}); a walk of the table as connections^{walk_fit:.2f}, "
        f"above its cost with no connection ({floor:.2f} ms) as connections^{walk_above:.2f}, "
        f"{per_connection_us:.2f} µs per connection; `ss -tin`: connections^{ss_fit:.2f}. "
        f"Target ≤ {TARGET_CPU_MS_AT_10K:g} ms CPU per sample with traffic at 10,000 "
        f"connections: {verdict}.",
        "",
        f"Medians of {SAMPLES} samples 100 ms apart (bench/sampler_cost.rs runs drainit's own "
        f"sampler; CPU = the thread's user + kernel time, the kernel's sock_diag work included) "
        f"and of {SS_RUNS} runs of `ss -tin state established '( sport = :{PORT} )'` (CPU from "
        f"wait4). Connections come over a veth pair from a second namespace. Kept-alive: one "
        f"connection receives a byte every 10 ms, and each sample looks up alone (sock_diag "
        f"by socket id and cookie) the connections that received bytes in the sample before. "
        f"New connections: a new connection every 10 ms sends a byte and closes; with one "
        f"listener and every source counted, the rise of PassiveOpens (/proc/net/snmp) says "
        f"so; with `--drain-ignore-from {IGNORED}` it cannot, no connection is busy twice, "
        f"and every sample walks the kernel's table of connections, "
        f"which is shared by every namespace of the machine and sized by its memory: its cost "
        f"grows with the sockets of the whole node, not only the app's. The share of a core: "
        f"CPU per sample over the interval drainit leaves between samples (100 ms, or {SHARE}× "
        f"the sample's CPU time when longer, src/timeline.rs).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: sampler.py SAMPLER_COST [RESULTS_MD]")
    if os.geteuid() != 0:
        sys.exit("sampler.py: must run as root (it makes network namespaces)")
    signal.signal(signal.SIGTERM, lambda n, f: sys.exit(128 + n))
    text = table(measure(os.path.realpath(sys.argv[1])))
    print(text)
    if len(sys.argv) == 3:
        with open(sys.argv[2], "w") as f:
            f.write(text)
