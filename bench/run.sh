#!/usr/bin/env bash
# drainit's benchmark against tini, tini-static, dumb-init and catatonit.
#
#   bench/run.sh                     # as root; about 3 minutes
#   BENCH_DRAINIT=/path/to/drainit bench/run.sh   # measure another drainit binary (no build)
#   BENCH_QUICK=1 bench/run.sh       # smoke run: fewer repeats, figures not meaningful
#                                    # (written to bench/.build/, not bench/results.*)
#   BENCH_NICE=0 bench/run.sh        # do not raise the bench's priority (default: nice -20)
#   BENCH_SAMPLER_COST=PATH          # bench/sampler_cost.rs built (set by the build; with
#                                    # BENCH_DRAINIT, set it too or the sampler rows are skipped)
#
# Everything measured (hyperfine, the inits, their apps, the helpers) runs at
# nice -20 by default, so that other work on the machine (builds, tests)
# disturbs it less; it applies to every init alike.
#
# Installs the peers if missing (Debian), builds drainit's static release
# binary, compiles the C helpers of bench/ into bench/.build/, then runs
# bench/bench.py, which measures every init in the same run (each as PID 1 of
# its own PID namespace, except the startup overhead), prints a markdown table
# and writes bench/results.json and bench/results.md. The settings are named
# BENCH_*, never DRAINIT_*: drainit refuses unknown DRAINIT_* variables, and
# every init runs with PATH as its only environment variable anyway.
set -euo pipefail

die() { echo "bench/run.sh: $*" >&2; exit 1; }

bench=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$bench")
build=$bench/.build

[ "$(id -u)" -eq 0 ] || die "must run as root (PID namespaces need unshare --pid --mount-proc)"
command -v unshare >/dev/null || die "unshare is missing (apt-get install util-linux)"
[ -x /usr/bin/python3 ] || die "/usr/bin/python3 is missing (apt-get install python3)"
unshare --pid --fork --mount-proc /bin/true 2>/dev/null \
    || die "cannot create a PID namespace here (unshare --pid --fork --mount-proc /bin/true failed)"

# The peers and tools, from Debian, when missing.
need=()
for tool in tini tini-static dumb-init catatonit hyperfine gcc file; do
    command -v "$tool" >/dev/null || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "bench/run.sh: installing what is missing: ${need[*]}" >&2
    pkgs=()
    for tool in "${need[@]}"; do
        case $tool in
            tini-static) pkgs+=(tini) ;;
            *) pkgs+=("$tool") ;;
        esac
    done
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null \
        || die "apt-get install ${pkgs[*]} failed"
fi

mkdir -p "$build"
# One run at a time: two would measure each other.
exec 9>"$build/run.lock"
flock -n 9 || die "another bench/run.sh is running"

# drainit: the static release binary, or BENCH_DRAINIT.
if [ -n "${BENCH_DRAINIT:-}" ]; then
    drainit=$(realpath "$BENCH_DRAINIT")
    [ -x "$drainit" ] || die "BENCH_DRAINIT=$BENCH_DRAINIT is not an executable file"
    echo "bench/run.sh: measuring $drainit (BENCH_DRAINIT), not building" >&2
else
    command -v cargo >/dev/null || die "cargo is missing (or set BENCH_DRAINIT to a built drainit)"
    echo "bench/run.sh: building drainit (static release)" >&2
    release=$("$repo/scripts/static-build.sh" --bin drainit --example sampler_cost) \
        || die "cargo build failed (set BENCH_DRAINIT to measure an existing binary)"
    drainit=$(cd "$repo" && realpath "$release/drainit")
    export BENCH_SAMPLER_COST=$(cd "$repo" && realpath "$release/examples/sampler_cost")
fi
# The sampler's cost at scale needs network namespaces of the bench's own.
command -v ip >/dev/null || die "ip is missing (apt-get install iproute2)"
env -i "$drainit" --version >/dev/null 2>&1 || die "$drainit does not run"

# The C helpers.
for helper in minit stamp sigsend orphans; do
    gcc -O2 -Wall -Wextra -o "$build/$helper" "$bench/$helper.c" \
        || die "cannot compile bench/$helper.c"
done

# Whatever happens, the bench's namespaces go with it: each unshare has
# --kill-child and dies with bench.py (PR_SET_PDEATHSIG).
nice=${BENCH_NICE:--20}
[[ $nice =~ ^-?[0-9]+$ ]] || die "BENCH_NICE=$nice is not a number"
# A quick run's figures mean nothing: they do not replace the committed results.
results=$bench/results
[ "${BENCH_QUICK:-}" = 1 ] && results=$build/quick-results
exec nice -n "$nice" /usr/bin/python3 "$bench/bench.py" "$drainit" "$build" \
    "$results.json" "$results.md"
