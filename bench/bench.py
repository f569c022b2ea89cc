"""drainit's benchmark against tini, tini-static, dumb-init and catatonit.

Run through bench/run.sh (which builds everything), with /usr/bin/python3:

    bench.py DRAINIT BUILD_DIR RESULTS_JSON RESULTS_MD

Every init is measured in the same run, interleaved round by round, so that
the ratios compare like with like on a noisy machine. Each init runs as PID 1
of a new PID namespace (unshare --pid --fork --kill-child --mount-proc), with
a clean environment, except for the startup overhead (plain processes, under
hyperfine). Prints a markdown table, writes it to RESULTS_MD, and writes one
JSON object per init per metric to RESULTS_JSON.
"""

import ctypes
import json
import os
import platform
import random
import select
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sampler  # noqa: E402  (bench/sampler.py)

QUICK = os.environ.get("BENCH_QUICK") == "1"
# bench/sampler_cost.rs built: the adaptive drain's sampler at scale (bench/sampler.py).
SAMPLER_COST = os.environ.get("BENCH_SAMPLER_COST")

# How much to repeat (BENCH_QUICK=1: a fast smoke run, not for figures).
STARTUP_ROUNDS, STARTUP_RUNS, STARTUP_WARMUP = (1, 100, 10) if QUICK else (10, 150, 20)
MEMORY_LAUNCHES = 1 if QUICK else 3
IDLE_SECONDS = 2 if QUICK else 10
SIGNAL_ROUNDS, SIGNALS_PER_ROUND, SIGNAL_GAP_US = (1, 200, 300) if QUICK else (6, 500, 300)
ORPHANS = 5000
REAP_REPS = 2 if QUICK else 10
DEADLINE_RUNS = int(os.environ.get("BENCH_DEADLINE_RUNS", "3" if QUICK else "20"))
DRAIN, GRACE, KILL_MARGIN = 0.5, 2.5, 1.0  # seconds: stop at +0.5 s, SIGKILL at +1.5 s

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The whole environment of every init: drainit refuses unknown DRAINIT_*
# variables, and none of the bench's own settings must reach an init.
CLEAN_ENV = {"PATH": PATH}

PEERS = ["tini", "tini-static", "dumb-init", "catatonit"]
BASELINE = "waitpid-loop"


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- processes -------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # In the forked child before exec: if the bench dies, so does unshare,
    # and with it (--kill-child) the init and its whole namespace.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def stat_of(pid):
    """(state, ppid) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    rest = stat[stat.rfind(")") + 2:].split()
    return rest[0], int(rest[1])


def exe_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def children_of(ppid):
    kids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = stat_of(int(name))
            if st and st[1] == ppid:
                kids.append(int(name))
    return kids


def wait_for_child_exec(ppid, exe, timeout=10.0):
    """The pid of a child of `ppid` that runs the file `exe`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in children_of(ppid):
            if exe_of(pid) == exe:
                return pid
        time.sleep(0.001)
    raise RuntimeError(f"no child of pid {ppid} ran {exe} within {timeout}s")


_live = []


class Namespace:
    """`unshare --pid --fork --mount-proc INIT -- COMMAND`: INIT is PID 1 of a
    new PID namespace; `pid` is its pid on the host."""

    def __init__(self, init, command, stderr=subprocess.DEVNULL):
        self.init = init
        self.proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc",
             init.path, *init.args, "--", *command],
            env=CLEAN_ENV, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=stderr, preexec_fn=_die_with_parent)
        _live.append(self)
        try:
            self.pid = wait_for_child_exec(self.proc.pid, init.real)
        except Exception:
            self.close()
            raise

    def wait(self, timeout):
        code = self.proc.wait(timeout)
        self.close()
        return code

    def close(self):
        # SIGKILL to PID 1 of a namespace kills every process in it; unshare
        # then reaps it and exits (killing unshare first would leave the init
        # as a zombie of the host's PID 1).
        if self.proc.poll() is None:
            if getattr(self, "pid", None):
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()
        if self in _live:
            _live.remove(self)


def close_all():
    for ns in list(_live):
        try:
            ns.close()
        except Exception:
            pass


class Init:
    def __init__(self, name, path, args=()):
        self.name, self.path, self.args = name, path, list(args)
        self.real = os.path.realpath(path)


# --- statistics ------------------------------------------------------------

def quantile(values, q):
    s = sorted(values)
    if not s:
        return None
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def median(values):
    return quantile(values, 0.5)


def half_range(values):
    """The spread reported: half the interquartile range of the per-round
    values (robust to the odd round disturbed by other work)."""
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return None
    return (quantile(values, 0.75) - quantile(values, 0.25)) / 2


# Rounds visit the inits in a shuffled order, so that none is always measured
# just after the same other one; seeded, so that runs are comparable.
_order = random.Random(1)


def shuffled(items):
    items = list(items)
    _order.shuffle(items)
    return items


# --- the metrics ------------------------------------------------------------

class Results:
    def __init__(self):
        self.rows = {}  # (init, metric) -> (value, unit, spread)

    def put(self, init, metric, value, unit, spread=None):
        self.rows[(init, metric)] = (value, unit, spread)

    def get(self, init, metric):
        row = self.rows.get((init, metric))
        return row[0] if row else None


def measure_size(inits, res):
    for init in inits:
        res.put(init.name, "size", os.path.getsize(init.real), "bytes")
        desc = subprocess.run(["file", "-b", init.real], capture_output=True,
                              text=True).stdout
        static = "statically linked" in desc or "static-pie linked" in desc
        res.put(init.name, "static", static, "bool")
        if "not stripped" in desc:
            log(f"warning: {init.real} is not stripped")


def measure_startup(inits, build, res):
    """hyperfine -N: `INIT -- /bin/true` against `/bin/true`, plain processes
    (not PID 1: each init runs as it would outside a container)."""
    per_round = {i.name: [] for i in inits}
    per_round_median = {i.name: [] for i in inits}
    for r in range(STARTUP_ROUNDS):
        order = shuffled(inits)
        commands = ["/bin/true"] + [
            " ".join(shlex.quote(a) for a in [i.path, *i.args, "--", "/bin/true"])
            for i in order]
        out = os.path.join(build, f"hyperfine-{r}.json")
        run = subprocess.run(
            ["hyperfine", "-N", "--style", "none", "--warmup", str(STARTUP_WARMUP),
             "--runs", str(STARTUP_RUNS), "--export-json", out, *commands],
            env=CLEAN_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if run.returncode != 0:  # (its warnings about outliers are not shown)
            raise RuntimeError(f"hyperfine failed: {run.stderr.strip()}")
        with open(out) as f:
            results = json.load(f)["results"]
        means = [x["mean"] for x in results]
        medians = [x["median"] for x in results]
        for init, mean, med in zip(order, means[1:], medians[1:]):
            per_round[init.name].append((mean - means[0]) * 1e6)
            per_round_median[init.name].append((med - medians[0]) * 1e6)
    for init in inits:
        v = per_round[init.name]
        res.put(init.name, "startup_overhead", median(v), "us", half_range(v))
        v = per_round_median[init.name]
        res.put(init.name, "startup_overhead_median", median(v), "us", half_range(v))


def memory_of(pid):
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                values[key] = int(rest.split()[0])
    return values["Rss"], values["Pss"]


def context_switches(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    return total


def measure_memory(inits, res):
    """RSS and PSS of the init (PID 1 of its namespace) while its child sleeps."""
    sleep = os.path.realpath("/bin/sleep")
    samples = {i.name: [] for i in inits}
    for _ in range(MEMORY_LAUNCHES):
        for init in shuffled(inits):
            ns = Namespace(init, ["/bin/sleep", "1000"])
            try:
                wait_for_child_exec(ns.pid, sleep)
                time.sleep(0.2)
                samples[init.name].append(memory_of(ns.pid))
            finally:
                ns.close()
    for init in inits:
        rss = [s[0] for s in samples[init.name]]
        pss = [s[1] for s in samples[init.name]]
        res.put(init.name, "rss", median(rss), "KiB", half_range(rss))
        res.put(init.name, "pss", median(pss), "KiB", half_range(pss))


def measure_idle(inits, res):
    """Context switches of each init over the idle window, all side by side
    (each in its own namespace, its child sleeping)."""
    sleep = os.path.realpath("/bin/sleep")
    spaces = []
    try:
        for init in inits:
            spaces.append(Namespace(init, ["/bin/sleep", "1000"]))
        for ns in spaces:
            wait_for_child_exec(ns.pid, sleep)
        time.sleep(1.0)
        before = [context_switches(ns.pid) for ns in spaces]
        time.sleep(IDLE_SECONDS)
        after = [context_switches(ns.pid) for ns in spaces]
        for ns, b, a in zip(spaces, before, after):
            res.put(ns.init.name, "idle_wakeups", a - b, f"switches/{IDLE_SECONDS}s")
    finally:
        for ns in spaces:
            ns.close()


def measure_signals(inits, build, tmp, res):
    """kill(init, SIGUSR1) on the host -> the app's handler, one signal in
    flight at a time (sigsend waits for each ack)."""
    stamp, sigsend = os.path.join(build, "stamp"), os.path.join(build, "sigsend")
    pooled = {i.name: [] for i in inits}
    rounds = {i.name: [] for i in inits}
    for r in range(SIGNAL_ROUNDS):
        for init in shuffled(inits):
            fifo = os.path.join(tmp, f"sig-{init.name}-{r}.fifo")
            os.mkfifo(fifo)
            ns = Namespace(init, [stamp, fifo])
            try:
                out = subprocess.run(
                    [sigsend, str(ns.pid), fifo, str(SIGNALS_PER_ROUND), str(SIGNAL_GAP_US)],
                    capture_output=True, text=True, timeout=120)
                if out.returncode != 0:
                    raise RuntimeError(f"sigsend under {init.name}: {out.stderr.strip()}")
                lat = [int(x) / 1000 for x in out.stdout.split()]
            finally:
                ns.close()
                os.unlink(fifo)
            pooled[init.name] += lat
            rounds[init.name].append((quantile(lat, 0.5), quantile(lat, 0.99)))
    for init in inits:
        p50s = [x[0] for x in rounds[init.name]]
        p99s = [x[1] for x in rounds[init.name]]
        res.put(init.name, "signal_latency_p50", quantile(pooled[init.name], 0.5), "us",
                half_range(p50s))
        res.put(init.name, "signal_latency_p99", quantile(pooled[init.name], 0.99), "us",
                half_range(p99s))


def reap_burst(init, orphans, tmp, tag):
    """Burst mode of orphans.c: the init reaps while the orphans exit.
    Returns ms from the release to the last reap."""
    out = os.path.join(tmp, f"reap-{tag}.txt")
    ns = Namespace(init, [orphans, str(ORPHANS), out])
    try:
        code = ns.wait(60)
    finally:
        ns.close()
    released, _exited, reaped, _cpu, zombies = read_orphans(out, init, code)
    return (reaped - released) / 1e6


def reap_stopped(init, orphans, tmp, tag):
    """Stopped-init mode of orphans.c: the init is stopped while the orphans
    exit, then continued. Returns (ms from SIGCONT to the last reap, ms of CPU
    the init used for it)."""
    out = os.path.join(tmp, f"ready-{tag}.txt")
    ack_path, ctl_path = (os.path.join(tmp, f"{x}-{tag}.fifo") for x in ("ack", "ctl"))
    os.mkfifo(ack_path)
    os.mkfifo(ctl_path)
    # O_RDWR: the opens do not wait for the other end.
    ack = os.open(ack_path, os.O_RDWR)
    ctl = os.open(ctl_path, os.O_RDWR)
    ns = None
    try:
        ns = Namespace(init, [orphans, str(ORPHANS), out, ack_path, ctl_path])

        def hear(expected):
            ready, _, _ = select.select([ack], [], [], 30)
            if not ready or os.read(ack, 1) != expected:
                raise RuntimeError(f"the orphan helper under {init.name} did not say {expected}")

        hear(b"R")
        os.kill(ns.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while (stat_of(ns.pid) or ("?",))[0] != "T":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{init.name} did not stop")
            time.sleep(0.0005)
        os.write(ctl, b"g")
        hear(b"Z")
        t0 = time.monotonic_ns()
        os.kill(ns.pid, signal.SIGCONT)
        code = ns.wait(60)
    finally:
        if ns:
            ns.close()
        os.close(ack)
        os.close(ctl)
        os.unlink(ack_path)
        os.unlink(ctl_path)
    _released, _exited, reaped, cpu, _zombies = read_orphans(out, init, code)
    return (reaped - t0) / 1e6, (cpu / 1e6 if cpu >= 0 else None)


def read_orphans(out, init, code):
    if code != 0 or not os.path.exists(out):
        raise RuntimeError(f"the orphan helper under {init.name} failed (exit {code})")
    with open(out) as f:
        values = [int(x) for x in f.read().split()]
    if values[4] != 0:
        raise RuntimeError(f"{values[4]} zombies left under {init.name}")
    return values


def measure_reaping(inits, build, tmp, res):
    """ORPHANS orphans exiting at once under each init and under the bare
    waitpid loop, in two ways; see orphans.c."""
    orphans = os.path.join(build, "orphans")
    burst = {i.name: [] for i in inits}
    stopped = {i.name: [] for i in inits}
    for rep in range(REAP_REPS):
        for init in shuffled(inits):
            burst[init.name].append(reap_burst(init, orphans, tmp, f"{init.name}-{rep}"))
            stopped[init.name].append(reap_stopped(init, orphans, tmp, f"{init.name}-{rep}"))
    for init in inits:
        wall = burst[init.name]
        res.put(init.name, "reap_burst", median(wall), "ms", half_range(wall))
        wall = [x[0] for x in stopped[init.name]]
        cpu = [x[1] for x in stopped[init.name] if x[1] is not None]
        res.put(init.name, "reap_ready", median(wall), "ms", half_range(wall))
        res.put(init.name, "reap_ready_cpu", median(cpu), "ms", half_range(cpu))


def read_records(fd, buf, timeout):
    """Waits for data on the FIFO; returns (records, buf, eof)."""
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        raise RuntimeError("the app did not answer in time")
    try:
        data = os.read(fd, 4096)
    except BlockingIOError:
        return [], buf, False
    if not data:
        return [], buf, True
    buf += data
    records = []
    while len(buf) >= 16:
        records.append(struct.unpack("qq", buf[:16]))
        buf = buf[16:]
    return records, buf, False


def measure_deadlines(drainit, build, tmp, res):
    """drainit --drain 500ms --grace 2.5s --kill-margin 1s: the app's handler
    timestamps the stop signal; the app's death (SIGKILL) closes its end of the
    FIFO, and we timestamp the EOF. Both against t0, just before kill(SIGTERM)."""
    stamp = os.path.join(build, "stamp")
    stop_err, kill_err = [], []
    options = ["--drain", f"{int(DRAIN * 1000)}ms", "--grace", f"{GRACE}s",
               "--kill-margin", f"{KILL_MARGIN}s"]
    for run in range(DEADLINE_RUNS):
        fifo = os.path.join(tmp, f"deadline-{run}.fifo")
        os.mkfifo(fifo)
        rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        with open(os.path.join(tmp, f"deadline-{run}.stderr"), "w") as err:
            init = Init("drainit", drainit.path, options)
            ns = Namespace(init, [stamp, fifo], stderr=err)
        try:
            buf, records = b"", []
            while not any(r[0] == 0 for r in records):
                got, buf, eof = read_records(rfd, buf, 10)
                records += got
                if eof:
                    raise RuntimeError("the app closed its FIFO before it was ready")
            t0 = time.monotonic_ns()
            os.kill(ns.pid, signal.SIGTERM)
            stop_ns = None
            while True:
                got, buf, eof = read_records(rfd, buf, 10)
                if eof:
                    dead_ns = time.monotonic_ns()
                    break
                for signo, at in got:
                    if signo == signal.SIGTERM and stop_ns is None:
                        stop_ns = at
            code = ns.wait(10)
        finally:
            ns.close()
            os.close(rfd)
            os.unlink(fifo)
        if stop_ns is None:
            raise RuntimeError(f"deadline run {run}: the app never got the stop signal")
        if code != 128 + signal.SIGKILL:
            raise RuntimeError(f"deadline run {run}: drainit exited {code}, expected 137")
        stop_err.append((stop_ns - t0) / 1e6 - DRAIN * 1000)
        kill_err.append((dead_ns - t0) / 1e6 - (GRACE - KILL_MARGIN) * 1000)
    for name, errs in (("stop", stop_err), ("kill", kill_err)):
        absolute = [abs(e) for e in errs]
        res.put("drainit", f"deadline_{name}_error_p50", median(absolute), "ms")
        res.put("drainit", f"deadline_{name}_error_max", max(absolute), "ms")
    return stop_err, kill_err


# --- the report -------------------------------------------------------------

# metric -> (label, digits, target); target is one of
#   ("ref", INIT, factor): value <= factor x that init's value
#   ("best", factor):      value <= factor x the best peer's value
#   ("zero",):             value == 0
#   ("max", limit):        value <= limit
METRICS = [
    ("size", "binary size (stripped, as shipped)", 0, ("ref", "tini-static", 1.0)),
    ("static", "statically linked", None, None),
    ("startup_overhead", "startup overhead, mean (`INIT -- /bin/true` − `/bin/true`)", 1,
     ("best", 1.0)),
    ("startup_overhead_median", "… the same from hyperfine's medians (less sensitive to load)", 1,
     None),
    ("rss", "RSS as PID 1, child sleeping", 0, ("ref", "catatonit", 1.0)),
    ("pss", "PSS as PID 1, child sleeping", 0, None),
    ("idle_wakeups", "idle wake-ups (voluntary + involuntary switches)", 0, ("zero",)),
    ("signal_latency_p50", "signal forwarding latency p50", 1, ("best", 1.0)),
    ("signal_latency_p99", "signal forwarding latency p99", 1, None),
    ("reap_burst", f"reap a burst of {ORPHANS} orphans: release → no zombie left", 1,
     ("ref", BASELINE, 1.1)),
    ("reap_ready", f"reap {ORPHANS} zombies at once (init stopped while they exit): "
     "SIGCONT → none left", 2, None),
    ("reap_ready_cpu", "… CPU time PID 1 used for it (schedstat)", 2, ("ref", BASELINE, 1.1)),
    ("deadline_stop_error_p50", f"stop signal vs planned +{DRAIN}s: error p50", 2, ("max", 2.0)),
    ("deadline_stop_error_max", "stop signal: error max", 2, ("max", 20.0)),
    ("deadline_kill_error_p50", f"SIGKILL vs planned +{GRACE - KILL_MARGIN}s: error p50", 2,
     ("max", 2.0)),
    ("deadline_kill_error_max", "SIGKILL: error max", 2, ("max", 20.0)),
]
UNIT_SHOWN = {"us": "µs", "bytes": "bytes", "KiB": "KiB", "ms": "ms", "bool": ""}


def fmt(value, digits, spread=None):
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = f"{value:,.{digits}f}" if digits else f"{value:,.0f}"
    if spread:
        text += f" ±{spread:.{digits}f}" if digits else f" ±{spread:.0f}"
    return text


def ratio(a, b):
    if a is None or b is None or isinstance(a, bool):
        return None
    if b == 0:
        return 1.0 if a == 0 else None
    return a / b


def best_peer(res, metric):
    values = [res.get(p, metric) for p in PEERS]
    values = [v for v in values if v is not None and not isinstance(v, bool)]
    return min(values) if values else None


def verdict(res, metric, target):
    """(what the target is, the ratio or value it judges, passed?)"""
    value = res.get("drainit", metric)
    if target is None or value is None:
        return "", None, None
    kind = target[0]
    if kind == "ref":
        r = ratio(value, res.get(target[1], metric))
        return f"≤ {target[2]:.1f}× {target[1]}", r, r is not None and r <= target[2]
    if kind == "best":
        r = ratio(value, best_peer(res, metric))
        return f"≤ {target[1]:.1f}× best peer", r, r is not None and r <= target[1]
    if kind == "zero":
        return "0", None, value == 0
    if kind == "max":
        return f"≤ {target[1]:g} ms", None, value <= target[1]
    raise ValueError(kind)


def report(inits, res, meta, notes):
    names = [i.name for i in inits]
    lines = [
        f"## drainit benchmark ({meta['date']})",
        "",
        f"{meta['machine']}",
        "",
        "| metric | unit | " + " | ".join(names) + " | drainit ÷ best peer | target | |",
        "|---|---|" + "---:|" * len(names) + "---:|---|---|",
    ]
    json_rows = []
    for metric, label, digits, target in METRICS:
        if not any((n, metric) in res.rows for n in names):
            continue
        unit = next(res.rows[(n, metric)][1] for n in names if (n, metric) in res.rows)
        best = best_peer(res, metric)
        cells = []
        for n in names:
            row = res.rows.get((n, metric))
            cells.append(fmt(row[0], digits, row[2]) if row else "")
            if row:
                json_rows.append({
                    "init": n, "metric": metric, "value": row[0], "unit": unit,
                    "spread": row[2],
                    "ratio_to_best_peer": None if metric.startswith("deadline")
                    else ratio(row[0], best),
                })
        vs_best = ratio(res.get("drainit", metric), best)
        what, judged, passed = verdict(res, metric, target)
        if judged is not None and target[0] == "ref":
            what = f"{what} (is {judged:.2f}×)"
        mark = "" if passed is None else ("**PASS**" if passed else "**FAIL**")
        lines.append(f"| {label} | {UNIT_SHOWN.get(unit, unit)} | " + " | ".join(cells)
                     + f" | {'' if vs_best is None or metric.startswith('deadline') else f'{vs_best:.2f}×'}"
                     + f" | {what} | {mark} |")
    lines += ["", *notes]
    return "\n".join(lines) + "\n", json_rows


def cpu_ticks():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields), fields[3] + fields[4]  # total, idle + iowait


def busy_percent(seconds=1.0):
    """How busy the CPUs are (all processes), over `seconds`."""
    total0, idle0 = cpu_ticks()
    time.sleep(seconds)
    total1, idle1 = cpu_ticks()
    return 100.0 * (1 - (idle1 - idle0) / max(1, total1 - total0))


def machine_line():
    busy = busy_percent()
    versions = []
    for tool in (["tini", "--version"], ["dumb-init", "--version"], ["hyperfine", "--version"]):
        try:
            p = subprocess.run(tool, capture_output=True, text=True, env=CLEAN_ENV)
            versions.append((p.stdout + p.stderr).strip().splitlines()[0])
        except OSError:
            pass
    nice = os.nice(0)
    return (f"Linux {platform.release()}, {os.cpu_count()} CPUs, {busy:.0f}% busy in the second "
            f"before the run (other processes); bench at nice {nice}; "
            + "; ".join(versions) + ".")


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: bench.py DRAINIT BUILD_DIR RESULTS_JSON RESULTS_MD")
    drainit_path, build, json_path, md_path = sys.argv[1:]
    inits = [
        Init("drainit", drainit_path),
        Init("tini", shutil.which("tini") or "/usr/bin/tini"),
        Init("tini-static", shutil.which("tini-static") or "/usr/bin/tini-static"),
        Init("dumb-init", shutil.which("dumb-init") or "/usr/bin/dumb-init"),
        Init("catatonit", shutil.which("catatonit") or "/usr/bin/catatonit"),
    ]
    baseline = Init(BASELINE, os.path.join(build, "minit"))
    meta = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine_line()}
    res = Results()
    tmp = tempfile.mkdtemp(prefix="drainit-bench-")
    started = time.monotonic()
    deadline_errs = None
    sampler_rows = None
    failures = []

    def step(name, fn, *args):
        log(f"{name} ({time.monotonic() - started:.0f}s)")
        try:
            return fn(*args)
        except Exception as e:  # report, and go on with the other metrics
            failures.append(f"{name}: {e}")
            log(f"FAILED: {name}: {e}")
            return None

    try:
        step("size", measure_size, inits, res)
        step("startup overhead (hyperfine)", measure_startup, inits, build, res)
        step("memory", measure_memory, inits, res)
        step(f"idle wake-ups over {IDLE_SECONDS}s", measure_idle, inits, res)
        step("signal forwarding latency", measure_signals, inits, build, tmp, res)
        step(f"reaping {ORPHANS} orphans", measure_reaping, inits + [baseline], build, tmp, res)
        deadline_errs = step("deadline precision", measure_deadlines, inits[0], build, tmp, res)
        if SAMPLER_COST:
            sampler_rows = step("adaptive drain's sampler at scale", sampler.measure, SAMPLER_COST)
    finally:
        close_all()
        shutil.rmtree(tmp, ignore_errors=True)

    notes = [
        f"Each init ran as PID 1 of its own PID namespace with `PATH` as its only environment "
        f"variable and default options, except for the startup overhead: hyperfine -N, "
        f"{STARTUP_ROUNDS} rounds × {STARTUP_RUNS} runs, plain processes (not PID 1; tini then "
        f"prints its warning, drainit and catatonit become subreapers).",
        f"± is half the interquartile range of the per-round values, rounds visiting the inits in "
        f"shuffled order: startup {STARTUP_ROUNDS} rounds, memory "
        f"{MEMORY_LAUNCHES} launches, signals {SIGNAL_ROUNDS} rounds × {SIGNALS_PER_ROUND} "
        f"(p50/p99 pooled over {SIGNAL_ROUNDS * SIGNALS_PER_ROUND}, {SIGNAL_GAP_US} µs between a "
        f"signal's ack and the next), reaping {REAP_REPS} runs of each kind. Values are medians of "
        f"the per-round values (signal percentiles: of the pooled samples).",
        f"Idle: {IDLE_SECONDS} s window, all inits side by side. Reaping: orphans made with "
        f"clone(CLONE_VM) so that exiting is cheap; \"release\" is the close of the pipe they "
        f"block on; `{BASELINE}` is bench/minit.c, a bare blocking waitpid(-1) loop.",
        f"Deadlines (drainit only): `--drain 500ms --grace 2.5s --kill-margin 1s`, "
        f"{DEADLINE_RUNS} runs; error = |actual − planned| from just before kill(SIGTERM); the "
        f"stop signal is timed by the app's handler, the SIGKILL by the EOF of the app's FIFO.",
        "Ratios compare inits of this run only: on a busy machine the absolute figures move "
        "from run to run.",
    ]
    if deadline_errs:
        stop, kill = deadline_errs
        notes.append(f"Deadline signed errors (ms, + = late): stop mean {sum(stop) / len(stop):+.3f},"
                     f" SIGKILL mean {sum(kill) / len(kill):+.3f}.")
    for f in failures:
        notes.append(f"**Not measured**: {f}")
    table, rows = report(inits + [baseline], res, meta, notes)
    if sampler_rows:
        table += "\n" + sampler.table(sampler_rows)
        rows += [{"init": "drainit", "metric": f"sampler_{k}", "value": r[k],
                  "connections": r["connections"]}
                 for r in sampler_rows for k in r if k != "connections"]
    elif not SAMPLER_COST:
        table += "\nThe sampler's rows need BENCH_SAMPLER_COST (bench/run.sh builds it).\n"
    print(table)
    with open(md_path, "w") as f:
        f.write(table)
    with open(json_path, "w") as f:
        json.dump(rows, f, indent=1)
        f.write("\n")
    log(f"done in {time.monotonic() - started:.0f}s: {md_path}, {json_path}")
    return 1 if failures else 0


if __name__ == "__main__":
    def _stop(signo, _frame):
        raise SystemExit(128 + signo)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    sys.exit(main())
