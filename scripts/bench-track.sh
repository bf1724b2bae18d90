#!/usr/bin/env bash
# Tracking server throughput: `volley track serve` in its own process on loopback, with a
# store holding a tracked campaign of RECIPIENTS recipients; the load generator (benches'
# track-load) fires HTTP/1.1 keep-alive GETs at the open pixel and at tracked links over
# CONNECTIONS connections for SECONDS, RUNS times, and prints requests/s and latency
# percentiles, then the server's peak RSS. Every answer waits for its event to be flushed
# (group commit). The load repeats each path many times, so the server runs with
# de-duplication off and no practical daily cap: every request writes its event, as it did
# before those limits existed (a repeat the limits absorb is answered without a write).
#
#   scripts/bench-track.sh [RECIPIENTS=10000] [SECONDS=10] [RUNS=3]
#
# Environment: CONNECTIONS (default 64); ROUTES, the routes in the order run (default "o c").
set -euo pipefail
cd "$(dirname "$0")/.."
recipients=${1:-10000}
seconds=${2:-10}
runs=${3:-3}
connections=${CONNECTIONS:-64}
cargo build --release -q -p volley-cli -p volley-benches --bin volley --bin track-load
volley=${CARGO_TARGET_DIR:-$PWD/target}/release/volley
load=${CARGO_TARGET_DIR:-$PWD/target}/release/track-load
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
key="bench tracking key, long enough to sign"
"$load" prepare "$work/store" "$key" "$recipients" "$work/paths.txt"
port=$((20000 + RANDOM % 20000))
timer=()
[ -x /usr/bin/time ] && timer=(/usr/bin/time -v -o "$work/time.txt")
VOLLEY_TRACKING_KEY="$key" "${timer[@]}" "$volley" track serve --store "$work/store" \
    --bind "127.0.0.1:$port" --dedupe-window 0 --daily-cap 4294967295 \
    >"$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "tracking server" "$work/server.log" 2>/dev/null && break; sleep 0.1; done
for route in ${ROUTES:-o c}; do
    for run in $(seq "$runs"); do
        echo -n "/$route/ run $run: "
        "$load" run "127.0.0.1:$port" "$work/paths.txt" "$connections" "$seconds" "$route"
    done
done
pkill -TERM -P "${pids[0]}" 2>/dev/null || kill -TERM "${pids[0]}" 2>/dev/null || true
wait "${pids[0]}" 2>/dev/null || true
[ -f "$work/time.txt" ] && awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print "server peak RSS " $2 " KB"}' "$work/time.txt"
