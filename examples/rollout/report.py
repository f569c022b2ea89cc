"""The lab's results (examples/rollout/results.json) as a table, a picture and
a check (examples/rollout/run.sh runs it).

usage: report.py RESULTS.json [--svg OUT.svg] [--readme README.md] [--check]

Prints the table (markdown). --svg draws the picture. --readme replaces the
text between the markers `<!-- rollout:begin -->` and `<!-- rollout:end -->`
of README.md with the table and the settings. --check exits 1 if drainit
(fixed or adaptive) failed a request in any run (Service or ingress, new
connections or keep-alive), or if tini failed none through the Service with a
new connection per request (then the lab no longer shows the problem).
"""
import json
import sys


def table(results):
    rows = ["| init | client | path | requests | failed | how | slowest answer | retried by the ingress "
            "| the app's stop signal, after each deletion | connections left on each old pod after its removal "
            "| rollout |",
            "|---|---|---|---:|---:|---|---:|---:|---|---|---:|"]
    for r in results["runs"]:
        kinds = ", ".join("%s %d" % (k, v) for k, v in sorted(r["failures"].items(), key=lambda kv: -kv[1]))
        stops = ", ".join("%.1f s" % s if s is not None else "?" for s in r["stop_signal_after_deletion_s"])
        pinned = ", ".join("(exited)" if n is None else str(n) for n in r.get("established_after_removal", []))
        retried = r.get("ingress_retried")
        rows.append("| %s | %s | %s | %d | %s | %s | %.2f s | %s | %s | %s | %.1f s |" % (
            r["init"], r["client"].replace("hey, ", ""), r["path"], r["requests"],
            "**%d**" % r["failed"] if r["failed"] else "0", kinds, r.get("slowest_answer_s", 0),
            retried["answered"] + retried["failed"] if retried else "", stops, pinned, r["rollout_s"]))
    return "\n".join(rows)


def check(results):
    problems = []
    for r in results["runs"]:
        if r["init"].startswith("drainit") and r["failed"]:
            problems.append("%s failed %d requests through the %s" % (r["init"], r["failed"], r["path"]))
        if r["init"] == "tini" and r["path"] == "service" and "new connection" in r["client"] and not r["failed"]:
            problems.append("tini failed no request through the Service: the lab no longer shows the problem")
    return problems


COLORS = {"service": "#1f77b4", "ingress": "#2ca02c"}
FAIL = {"service": "#d62728", "ingress": "#ff7f0e"}


def esc(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg(results):
    """One lane per contender and scenario: answers per second through the
    Service and the ingress (lines), failures per second (bars, each with its
    count), and each old pod's deletion, endpoint removal, stop signal and
    exit."""
    # Only the runs with a new connection per request have a timeline: hey
    # reports errors in its summary alone, and the keep-alive runs are one
    # hey each (slicing them would reopen the connections every second).
    scenarios = ["new"]
    lane_h, top, left, width = 92, 100, 170, 800
    lanes = [(s, d) for s in scenarios for d in results["details"] if d["scenario"] == s]
    if not lanes:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>\n'
    height = top + len(lanes) * (lane_h + 18) + len(scenarios) * 28 + 30
    t_min = -2.0
    t_max = max(e[0] for _, d in lanes for e in d["events"]) + 3
    peak = max([t[1] for r in results["runs"] for t in r["timeline"]] + [1])

    def x(t):
        return left + (t - t_min) / (t_max - t_min) * width

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">'
           % (left + width + 30, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="10" y="18" font-size="14" font-weight="bold">A rolling update of %d pods, per init: '
           'answers per second (lines) and failed requests per second (bars, with their count)</text>'
           % results["replicas"],
           '<text x="10" y="34">endpoint removal reaches the Service rules and the ingress %g s after the deletion; '
           'grace %g s; %s</text>' % (results["lag_s"], results["grace_s"], esc(results["load"])),
           '<text x="10" y="50" fill="#555">%s; %s; %s</text>' % (
               esc(results["date"]), esc(results["machine"].split(" (the machine")[0]),
               esc(results.get("cpu_busy", "").split(" (")[0])),
           ]
    legend_y = 70
    lx = 10
    for label, color, kind in (("through the Service", COLORS["service"], "line"),
                               ("through the ingress", COLORS["ingress"], "line"),
                               ("failed (Service)", FAIL["service"], "bar"),
                               ("failed (ingress)", FAIL["ingress"], "bar")):
        if kind == "line":
            out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>'
                       % (lx, legend_y - 4, lx + 18, legend_y - 4, color))
        else:
            out.append('<rect x="%d" y="%d" width="10" height="9" fill="%s"/>' % (lx + 4, legend_y - 9, color))
        out.append('<text x="%d" y="%d">%s</text>' % (lx + 22, legend_y, label))
        lx += 150
    legend_y, lx = legend_y + 16, 10
    for label, mark in (("pod deleted", "del"), ("endpoint removed (rules, ingress)", "ep"),
                        ("app's stop signal", "stop"), ("container exited", "exit")):
        out.append(marker(mark, lx + 5, legend_y - 4, 8))
        out.append('<text x="%d" y="%d">%s</text>' % (lx + 14, legend_y, label))
        lx += 60 + 6 * len(label)

    y = top
    current = None
    for scenario, d in lanes:
        if scenario != current:
            current = scenario
            y += 18
            title = "hey -disable-keepalive: a new connection per request, through the Service and the ingress at once"
            out.append('<text x="10" y="%d" font-size="13" font-weight="bold">%s</text>' % (y, esc(title)))
            y += 10
        base = y + lane_h
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="#f7f7f7" stroke="#ccc"/>'
                   % (left, y, width, lane_h))
        runs = [r for r in results["runs"] if r["init"] == d["init"] and "new connection" in r["client"]]
        rollout = runs[0]["rollout_s"] if runs else 0
        out.append('<text x="10" y="%d" font-weight="bold">%s</text>' % (y + 16, esc(d["init"])))
        line_y = y + 31
        for r in runs:
            text = "%s: %d of %d failed" % (r["path"], r["failed"], r["requests"])
            out.append('<text x="10" y="%d" fill="%s">%s</text>' % (line_y, COLORS[r["path"]], esc(text)))
            line_y += 13
            if r.get("ingress_retried"):
                n = r["ingress_retried"]["answered"] + r["ingress_retried"]["failed"]
                if n:
                    out.append('<text x="18" y="%d" fill="%s">(%d retried by nginx)</text>'
                               % (line_y, COLORS[r["path"]], n))
                    line_y += 13
        out.append('<text x="10" y="%d">rollout %.1f s</text>' % (line_y, rollout))
        # time axis ticks
        t = int(t_min)
        while t <= t_max:
            out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e2e2e2"/>' % (x(t), y, x(t), base))
            out.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#777">%d s</text>' % (x(t), base + 12, t))
            t += 2 if t_max - t_min > 16 else 1
        for offset, r in enumerate(runs):
            points = []
            for t0, ok, failed in r["timeline"]:
                if t0 + 1 < t_min or t0 > t_max:
                    continue
                a, b = max(t0, t_min), min(t0 + 1, t_max)
                yy = base - ok / peak * (lane_h - 22)
                points += ["%.1f,%.1f" % (x(a), yy), "%.1f,%.1f" % (x(b), yy)]
                if failed:
                    h = max(3.0, failed / peak * (lane_h - 22))
                    bx = x(a) + 2 + offset * ((x(b) - x(a)) / 2 - 1)
                    bw = (x(b) - x(a)) / 2 - 3
                    out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>'
                               % (bx, base - h, bw, h, FAIL[r["path"]]))
                    out.append('<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s" font-weight="bold">%d</text>'
                               % (bx + bw / 2, base - h - 2, FAIL[r["path"]], failed))
            out.append('<polyline fill="none" stroke="%s" stroke-width="1.6" points="%s"/>'
                       % (COLORS[r["path"]], " ".join(points)))
        pods = sorted({e[2] for e in d["events"] if e[1] == "deleted"})
        for i, pod in enumerate(pods):
            my = y + 8 + i * 9
            for t0, kind, name in d["events"]:
                if name != pod or t0 > t_max:
                    continue
                mark = {"deleted": "del", "endpoint removed": "ep", "container exited": "exit"}.get(kind)
                if mark:
                    out.append(marker(mark, x(t0), my, 7))
            stop = d.get("stops", {}).get(pod)
            if stop is not None and stop <= t_max:
                out.append(marker("stop", x(stop), my, 7))
        y = base + 18
    out.append('<text x="%d" y="%d" fill="#777">seconds from the start of the rolling update '
               '(the first new pod); one row of marks per old pod</text>' % (left, y + 8))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def marker(kind, cx, cy, size):
    r = size / 2
    if kind == "del":
        return ('<path d="M%.1f,%.1f L%.1f,%.1f M%.1f,%.1f L%.1f,%.1f" stroke="#555" stroke-width="1.5"/>'
                % (cx - r, cy - r, cx + r, cy + r, cx - r, cy + r, cx + r, cy - r))
    if kind == "ep":
        return '<circle cx="%.1f" cy="%.1f" r="%.1f" fill="#9467bd"/>' % (cx, cy, r)
    if kind == "stop":
        return ('<path d="M%.1f,%.1f L%.1f,%.1f L%.1f,%.1f Z" fill="black"/>'
                % (cx - r, cy - r, cx + r, cy - r, cx, cy + r))
    return '<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="black" stroke-width="1.5"/>' % (
        cx - r, cy - r, size, size)


def readme_block(results):
    runs = results["runs"]
    inits = "\n".join("- **%s**: `%s`" % (name, line) for name, line in results["inits"].items())
    return """Measured %s on %s, %s, by `examples/rollout/run.sh` (from `examples/rollout/results.json`):
%d replicas; endpoint removal reaches the Service rules and the ingress %g s after the
deletion (the lag); grace period %g s; load %s.

%s

![requests per second and failures during the rolling update, per init](examples/rollout/rollout.svg)

The contenders (the same image and app, `examples/rollout/app.py`):

%s
""" % (results["date"], results["machine"], results.get("cpu_busy", ""), results["replicas"], results["lag_s"], results["grace_s"],
       results["load"], table(results), inits)


def write_readme(path, results):
    begin, end = "<!-- rollout:begin -->", "<!-- rollout:end -->"
    text = open(path).read()
    if begin not in text or end not in text:
        sys.exit("report.py: %s has no %s ... %s block" % (path, begin, end))
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as f:
        f.write(head + begin + "\n" + readme_block(results) + end + tail)


def main():
    args = sys.argv[1:]
    results = json.load(open(args[0]))
    if "--check" in args:
        problems = check(results)
        for p in problems:
            print("rollout: FAILED: " + p, file=sys.stderr)
        if problems:
            sys.exit(1)
        print("rollout: OK: drainit (fixed and adaptive) failed no request through the Service or the ingress;"
              " tini failed some through the Service", file=sys.stderr)
        return
    print(table(results))
    if "--svg" in args:
        with open(args[args.index("--svg") + 1], "w") as f:
            f.write(svg(results))
    if "--readme" in args:
        write_readme(args[args.index("--readme") + 1], results)


main()
