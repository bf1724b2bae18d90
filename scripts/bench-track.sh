#!/usr/bin/env bash
# Tracking server throughput: `volley track serve` in its own process on loopback, with a
# store holding a tracked campaign of RECIPIENTS recipients; the load generator (benches'
# track-load) fires HTTP/1.1 keep-alive GETs at the open pixel and at tracked links over
# CONNECTIONS connections for SECONDS, RUNS times, and prints requests/s and latency
# percentiles, then the server's peak RSS. Every answer waits for its event to be flushed
# (group commit). The load repeats each path many times, so the server runs with
# de-duplication off and no practical daily cap: every request writes its event, as it did
# before those limits existed (a repeat the limits absorb is answered without a write).
# Every recipient of the prepared campaign is recorded as delivered first, as after a real
# send, so the server's cache of delivered recipients is in play: each route starts on a
# freshly started server (run 1: cold cache) and runs RUNS-1 more times on it (warm).
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
start_server() {
    timer=()
    [ -x /usr/bin/time ] && timer=(/usr/bin/time -v -o "$work/time-$1.txt")
    VOLLEY_TRACKING_KEY="$key" "${timer[@]}" "$volley" track serve --store "$work/store" \
        --bind "127.0.0.1:$port" --dedupe-window 0 --daily-cap 4294967295 \
        >"$work/server.log" 2>&1 &
    server=$!
    pids+=("$server")
    for _ in $(seq 100); do grep -q "tracking server" "$work/server.log" 2>/dev/null && break; sleep 0.1; done
}
stop_server() {
    pkill -TERM -P "$server" 2>/dev/null || kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    [ -f "$work/time-$1.txt" ] && awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print "  server peak RSS " $2 " KB"}' "$work/time-$1.txt"
    return 0
}
for route in ${ROUTES:-o c}; do
    start_server "$route"
    for run in $(seq "$runs"); do
        cache=warm
        [ "$run" = 1 ] && cache=cold
        echo -n "/$route/ run $run ($cache cache): "
        "$load" run "127.0.0.1:$port" "$work/paths.txt" "$connections" "$seconds" "$route"
    done
    stop_server "$route"
done
echo "($recipients delivered recipients, $connections connections, ${seconds} s a run; $(nproc) cores; commit $(git rev-parse --short HEAD))"
