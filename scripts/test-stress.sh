#!/usr/bin/env bash
# The test suite as a slow, busy machine runs it: every test binary pinned to one core, then
# two copies of the whole suite at once on that same core. A test that passes only on an idle
# machine with cores to spare (a sleep standing in for an event, a bound too tight for a slow
# core, a fixed port or file name two copies share) fails here. CI does not run it (it takes
# several minutes); run it after touching tests, timing, clocks or shutdown.
#
#   scripts/test-stress.sh                 both conditions
#   scripts/test-stress.sh one             one core, one copy
#   scripts/test-stress.sh two             one core, two copies at once
#   STRESS_CORE=1 scripts/test-stress.sh   pin to another core (default 0)
#   STRESS_FILTER=serve scripts/test-stress.sh   only tests whose name contains "serve"
#
# Exit code 0 when every copy passed; the logs of each binary stay in the folder it prints.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-both}
core=${STRESS_CORE:-0}
case $mode in one | two | both) ;; *)
    echo "usage: $0 [one|two|both]" >&2
    exit 2
    ;;
esac
for tool in taskset python3; do
    command -v "$tool" >/dev/null || {
        echo "$tool is needed (taskset: util-linux)" >&2
        exit 2
    }
done
logs=$(mktemp -d "${TMPDIR:-/tmp}/volley-stress.XXXXXX")

echo "== building the test binaries (cargo test --workspace --locked --no-run)"
binaries="$logs/binaries"
# Each test executable with the package folder it runs in (cargo runs tests there).
if ! cargo test --workspace --locked --no-run --message-format=json 2>"$logs/build.log" |
    python3 -c '
import json, os, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(os.path.dirname(m["manifest_path"]) + "\t" + m["executable"])
' >"$binaries"; then
    cat "$logs/build.log"
    exit 2
fi
echo "   $(wc -l <"$binaries") test binaries"

# Runs every test binary in turn on the core; logs go to $logs/<copy>-<binary>.log.
run_copy() {
    local copy=$1 failed=0 dir exe name log started
    while IFS=$'\t' read -r dir exe; do
        name=$(basename "$exe")
        log="$logs/$copy-$name.log"
        started=$SECONDS
        if (cd "$dir" && taskset -c "$core" "$exe" ${STRESS_FILTER:+"$STRESS_FILTER"}) >"$log" 2>&1; then
            echo "   $copy: $name ok ($((SECONDS - started)) s)"
        else
            echo "   $copy: $name FAILED ($((SECONDS - started)) s, log: $log)"
            grep -E '^test .* FAILED$' "$log" | sed 's/^/      /' || true
            failed=1
        fi
    done <"$binaries"
    return "$failed"
}

status=0
if [[ $mode == one || $mode == both ]]; then
    echo "== one core ($core), one copy"
    run_copy one || status=1
fi
if [[ $mode == two || $mode == both ]]; then
    echo "== one core ($core), two copies at once"
    run_copy first &
    first=$!
    run_copy second &
    second=$!
    wait "$first" || status=1
    wait "$second" || status=1
fi
if [[ $status == 0 ]]; then
    echo "== all passed (logs: $logs)"
else
    echo "== some tests failed (logs: $logs)"
fi
exit "$status"
