"""Turns the `runc spec` config.json of a bundle into what Docker would run
for the last stage of a Dockerfile: its ENV, USER, WORKDIR, ENTRYPOINT and
CMD. Used by examples/oci/run.sh.

usage: bundle.py DOCKERFILE CONFIG [--cmd ARG...] [--args ARG...]

--cmd replaces the Dockerfile's CMD (as `docker run IMAGE ARG...` does);
--args replaces ENTRYPOINT and CMD (as a `RUN [...]` step runs its command).

The container shares the host's network namespace (as `docker run
--network host`), so the host reaches the app on 127.0.0.1. Prints the
process it configured.
"""
import json
import shlex
import sys

# Docker's PATH when the image sets none.
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def last_stage(dockerfile):
    """The instructions after the last FROM, as (KEYWORD, rest) pairs."""
    with open(dockerfile) as f:
        text = f.read().replace("\\\n", " ")
    stage = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage = []
        else:
            stage.append((keyword, rest.strip()))
    return stage


def main():
    dockerfile, config_path, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    override = {}
    if rest:
        override[rest[0]] = rest[1:]

    env, user, cwd = [], "0:0", "/"
    entrypoint, cmd = [], []
    for keyword, rest in last_stage(dockerfile):
        if keyword == "ENV":
            # ENV NAME=VALUE [NAME=VALUE...] (the old `ENV NAME VALUE` form too)
            pairs = shlex.split(rest)
            if "=" not in pairs[0]:
                pairs = [pairs[0] + "=" + " ".join(pairs[1:])]
            for pair in pairs:
                name = pair.split("=", 1)[0]
                env = [e for e in env if e.split("=", 1)[0] != name] + [pair]
        elif keyword == "USER":
            user = rest if ":" in rest else rest + ":" + rest
        elif keyword == "WORKDIR":
            cwd = rest
        elif keyword == "ENTRYPOINT":
            entrypoint = json.loads(rest)  # exec form only: there is no shell
            cmd = []  # as in Docker: a new ENTRYPOINT resets CMD
        elif keyword == "CMD":
            cmd = json.loads(rest)
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH)

    args = entrypoint + override.get("--cmd", cmd)
    if "--args" in override:
        args = override["--args"]
    uid, gid = user.split(":")
    if not (uid.isdigit() and gid.isdigit()):
        sys.exit(f"bundle.py: USER {user}: give it as numbers (runc reads no /etc/passwd)")

    with open(config_path) as f:
        config = json.load(f)
    process = config["process"]
    process["args"] = args
    process["env"] = env
    process["cwd"] = cwd
    process["user"] = {"uid": int(uid), "gid": int(gid)}
    process["terminal"] = False  # plain stdout/stderr, as `docker run` without -t
    config["root"]["readonly"] = False  # a container's root is writable by default
    # No network namespace of its own: the app listens on the host's.
    namespaces = config["linux"]["namespaces"]
    config["linux"]["namespaces"] = [n for n in namespaces if n["type"] != "network"]
    with open(config_path, "w") as f:
        json.dump(config, f, indent=2)

    print("  user  " + user)
    for e in env:
        print("  env   " + e)
    print("  args  " + json.dumps(args))


main()
