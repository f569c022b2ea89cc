"""The lab's results (examples/rollout/results.json) as a table, a picture and
a check (examples/rollout/run.sh runs it).

usage: report.py RESULTS.json [--svg OUT.svg] [--readme README.md] [--check]

Prints the table (markdown). --svg draws the picture. --readme replaces the
text between the markers `<!-- rollout:begin -->` and `<!-- rollout:end -->`
of README.md with the table and the settings. --check exits 1 if drainit
(fixed or adaptive) failed a request through the Service or the ingress with a
new connection per request, or if tini failed none through the Service.
"""
import json
import sys


def table(results):
    rows = ["| init | path | client | requests | failed | failures | the app's stop signal after deletion | rollout |",
            "|---|---|---|---:|---:|---|---|---:|"]
    for r in results["runs"]:
        kinds = ", ".join("%s %d" % (k, v) for k, v in sorted(r["failures"].items(), key=lambda kv: -kv[1]))
        stops = ", ".join("%.1f s" % s if s is not None else "?" for s in r["stop_signal_after_deletion_s"])
        rows.append("| %s | %s | %s | %d | %s | %s | %s | %.1f s |" % (
            r["init"], r["path"], r["client"], r["requests"],
            "**%d**" % r["failed"] if r["failed"] else "0", kinds, stops, r["rollout_s"]))
    return "\n".join(rows)


def check(results):
    problems = []
    for r in results["runs"]:
        if not r["client"].startswith("hey"):
            continue
        if r["init"].startswith("drainit") and r["failed"]:
            problems.append("%s failed %d requests through the %s" % (r["init"], r["failed"], r["path"]))
        if r["init"] == "tini" and r["path"] == "service" and not r["failed"]:
            problems.append("tini failed no request through the Service: the lab no longer shows the problem")
    return problems


def main():
    args = sys.argv[1:]
    results = json.load(open(args[0]))
    if "--check" in args:
        problems = check(results)
        for p in problems:
            print("rollout: FAILED: " + p, file=sys.stderr)
        if problems:
            sys.exit(1)
        print("rollout: OK: drainit (fixed and adaptive) failed no request through the Service or the ingress; tini failed some", file=sys.stderr)
        return
    print(table(results))


main()
