#!/usr/bin/env bash
# What a cluster costs on one machine (issue 19): one published campaign of RECIPIENTS
# recipients (10 KB, DKIM Ed25519) sent by N `volley serve --node` processes on one
# throwaway PostgreSQL, through Volley's test SMTP server in its own process as the relay (no
# TLS, no login, 8 connections split between the nodes). For each N in NODES it prints:
#   - messages/s as the server counted them (first to last message),
#   - the whole time, from starting the nodes to every recipient delivered (with the nodes'
#     start, their first heartbeat and lease claims),
#   - PostgreSQL's share of the CPU: the utime+stime of its processes (from /proc, before and
#     after) over the wall time, as % of one core,
#   - queries per message (pg_stat_statements in the throwaway cluster, all statements of the
#     database, including the status polls of this script) and commits per message
#     (xact_commit of pg_stat_database).
# The list is loaded (`volley load`) before the clock starts. Every run checks that the server
# received each recipient once (duplicates and losses are errors). Needs Debian's postgresql
# (scripts/test-deps.sh).
#
#   scripts/cluster-bench.sh [RECIPIENTS=20000] [NODES="1 2 3"]
#
# Environment: CONNECTIONS (the relay's, default 8); VOLLEY (a volley binary to use instead
# of building the release one).
set -euo pipefail
cd "$(dirname "$0")/.."
recipients=${1:-20000}
nodes_list=${2:-"1 2 3"}
connections=${CONNECTIONS:-8}

if [ -z "${VOLLEY:-}" ]; then
    cargo build --release -q --locked -p volley-cli
fi
volley=${VOLLEY:-${CARGO_TARGET_DIR:-$PWD/target}/release/volley}
work=$(mktemp -d)
pids=()
. scripts/pg-cluster.sh
trap 'kill "${pids[@]}" 2>/dev/null || true; pg_cluster_stop; wait 2>/dev/null || true; rm -rf "$work"' EXIT
unset PGHOST
pg_store_url
port_of_db=${STORE_URL##*:}
port_of_db=${port_of_db%%/*}
pg_sql() { psql -X -At -h 127.0.0.1 -p "$port_of_db" -U volley -d "$1" -c "$2"; }

# pg_stat_statements: preloaded, then the cluster restarted (pg_ctl reuses its options).
statements=0
bin=$(pg_bin)
if [ -f "$(ls -d /usr/share/postgresql/*/extension 2>/dev/null | sort -V | tail -1)/pg_stat_statements.control" ]; then
    {
        echo "shared_preload_libraries = 'pg_stat_statements'"
        echo "pg_stat_statements.track = all"
    } >>"$pg_dir/data/postgresql.conf"
    "${pg_as[@]}" "$bin/pg_ctl" restart -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 -m fast >/dev/null
    statements=1
fi

# The CPU time (clock ticks) of the postmaster and its children now.
pg_ticks() {
    local main total=0 pid t
    main=$(head -1 "$pg_dir/data/postmaster.pid")
    for pid in "$main" $(pgrep -P "$main"); do
        t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}
hz=$(getconf CLK_TCK)

port=$((20000 + RANDOM % 20000))
python3 scripts/gen-campaign.py "$work" "$recipients" 100 10 >/dev/null

echo "N  messages  messages/s (server)  whole time  PostgreSQL CPU  queries/message  commits/message"
for n in $nodes_list; do
    db="nodes$n"
    pg_fresh_database "$db"
    run="$work/run$n"
    mkdir -p "$run"
    cp "$work/list.csv" "$work/body.txt" "$work/body.html" "$run/"
    cat >"$run/campaign.toml" <<TOML
[campaign]
id = "bench$n"
from = "Bench <news@example.com>"
subject = "Hello {{ first_name }}"
text = "body.txt"
html = "body.html"
recipients = "list.csv"

[[dkim]]
domain = "example.com"
selector = "ed"
key_file = "$PWD/fixtures/dkim/ed25519.pem"

[relay]
host = "127.0.0.1"
port = $port
tls = "none"
connections = $connections

[store]
url = "$STORE_URL"
local_dir = "local"
TOML
    "$volley" sink --bind "127.0.0.1:$port" --no-bodies --tls none \
        --stats-json "$run/sink.json" >"$run/sink.log" 2>&1 &
    sink_pid=$!
    pids+=("$sink_pid")
    for _ in $(seq 100); do grep -q listening "$run/sink.log" 2>/dev/null && break; sleep 0.1; done
    "$volley" load "$run/campaign.toml" >"$run/load.log" 2>&1
    if [ "$statements" = 1 ]; then
        pg_sql "$db" "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
        pg_sql "$db" "SELECT pg_stat_statements_reset()" >/dev/null
    fi
    commits_before=$(pg_sql "$db" "SELECT xact_commit FROM pg_stat_database WHERE datname = '$db'")
    ticks_before=$(pg_ticks)
    start=$(date +%s.%N)
    node_pids=()
    for i in $(seq "$n"); do
        mkdir -p "$run/node$i"
        cat >"$run/node$i/serve.toml" <<TOML
campaigns = ["$run/campaign.toml"]

[store]
url = "$STORE_URL"
local_dir = "local"

[cluster]
node = "bench-$i"
TOML
        "$volley" serve --config "$run/node$i/serve.toml" --tick 1 >"$run/node$i/log" 2>&1 &
        node_pids+=($!)
        pids+=($!)
    done
    # Every recipient delivered, as the store says (read by campaign id, as from anywhere).
    deadline=$((SECONDS + 900))
    while :; do
        delivered=$("$volley" status "bench$n" --store "$STORE_URL" --json 2>/dev/null |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["delivered"])' 2>/dev/null || echo 0)
        [ "$delivered" -ge "$recipients" ] && break
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "N=$n: only $delivered of $recipients delivered after 900 s" >&2
            tail -n 5 "$run"/node*/log >&2
            exit 1
        fi
        sleep 0.5
    done
    end=$(date +%s.%N)
    ticks_after=$(pg_ticks)
    commits_after=$(pg_sql "$db" "SELECT xact_commit FROM pg_stat_database WHERE datname = '$db'")
    queries="-"
    if [ "$statements" = 1 ]; then
        queries=$(pg_sql "$db" "SELECT sum(calls) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '$db')")
    fi
    kill -TERM "${node_pids[@]}"
    for pid in "${node_pids[@]}"; do wait "$pid" || { echo "N=$n: a node exited $?" >&2; exit 1; }; done
    kill -TERM "$sink_pid"
    wait "$sink_pid" || true
    python3 - "$run/sink.json" "$recipients" "$n" "$start" "$end" "$ticks_before" "$ticks_after" "$hz" \
        "$queries" "$commits_before" "$commits_after" <<'PY'
import json, sys
sink = json.load(open(sys.argv[1]))
recipients, n = int(sys.argv[2]), int(sys.argv[3])
start, end = float(sys.argv[4]), float(sys.argv[5])
ticks = (int(sys.argv[7]) - int(sys.argv[6])) / int(sys.argv[8])
queries, commits = sys.argv[9], int(sys.argv[11]) - int(sys.argv[10])
wall = end - start
if sink["recipients"] != recipients or sink["messages"] != recipients:
    sys.exit(f"N={n}: the server took {sink['messages']} messages for {sink['recipients']} recipients, not {recipients} once each")
per_message = "-" if queries == "-" else f"{int(queries) / recipients:.1f}"
print(f"{n:<2} {sink['messages']:>9} {sink['messages_per_second']:>21.0f} {wall:>9.1f} s {100 * ticks / wall:>13.0f} % "
      f"{per_message:>16} {commits / recipients:>16.2f}")
PY
done
echo "($recipients recipients, 10 KB, DKIM Ed25519, relay without TLS, $connections connections split between the nodes; $(nproc) cores; commit $(git rev-parse --short HEAD))"
