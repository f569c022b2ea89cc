"""Edits the config.json that `runc spec` wrote, for the container tests.

usage: oci_config.py CONFIG [--env NAME=VALUE]... [--bind HOST:CONTAINER]... -- ARGS...

Sets process.args to ARGS, turns the terminal off (the test runs runc with
plain files and pipes as stdio), appends the variables to process.env and
adds read-write bind mounts.
"""
import json
import sys

path, rest = sys.argv[1], sys.argv[2:]
split = rest.index("--")
options, args = rest[:split], rest[split + 1:]
with open(path) as f:
    config = json.load(f)
process = config["process"]
process["args"] = args
process["terminal"] = False
while options:
    option, value = options.pop(0), options.pop(0)
    if option == "--env":
        process["env"].append(value)
    elif option == "--bind":
        host, container = value.split(":")
        config["mounts"].append(
            {
                "destination": container,
                "type": "bind",
                "source": host,
                "options": ["rbind", "rw"],
            }
        )
    else:
        sys.exit(f"unknown option {option}")
with open(path, "w") as f:
    json.dump(config, f, indent=2)
