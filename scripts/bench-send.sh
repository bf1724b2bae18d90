#!/usr/bin/env bash
# End-to-end throughput of `volley send`, against Volley's own test SMTP server in a separate
# process on loopback: 10 KB personalised messages, DKIM-signed. Runs the send RUNS times, each
# with a fresh store and a fresh server, and prints for each run the rate the *receiving
# server* counted (first to last message), the whole command's time (load included), and the
# sender's peak RSS (from /usr/bin/time -v when available); then the medians. A run fails the
# script when the send exits non-zero, or when the server's own count of messages, recipients
# or TLS sessions disagrees with the store's (`volley status --json`).
#
#   scripts/bench-send.sh [RECIPIENTS=20000] [RUNS=3]
#
# Environment:
#   MODE=relay (default)  through an authenticated STARTTLS relay (CONNECTIONS, default 8)
#   MODE=direct           straight to MX: DOMAINS recipient domains (default 1000) on MX_HOSTS
#                         MX host names (default 100), resolved through Volley's loopback DNS
#                         server; opportunistic STARTTLS; [shaping.default] max_connections
#                         PER_DESTINATION (default 10)
#   KEY                   DKIM key (default fixtures/dkim/rsa2048.pem; fixtures/dkim/ed25519.pem
#                         for Ed25519)
#   TLS=starttls|none     what the server offers (default starttls)
#   DELAY_MS              the server waits this long before each batch of replies (a simulated
#                         round trip, default 0)
#   CHUNKING=1            the server offers CHUNKING, so Volley sends BDAT: one round trip per
#                         message instead of two
#   STOP_AFTER=SECONDS    stop each send (SIGTERM) after this long: for peak memory with a huge
#                         list queued, where waiting for the end is not the point
#   TIMINGS=1             print where the time went (per tracing span) after each run
#   CEILING=1             before each run, the reference: Postfix's smtp-source (CONNECTIONS
#                         sessions, 10 KB, no TLS, no login) into the same test server, counted
#                         the same way, and into Postfix's smtp-sink (whole command); the medians
#                         and Volley's ratio to the first are printed at the end
#   STORE=sled|postgres   the store engine (default sled). postgres: a throwaway cluster
#                         started here (a fresh database per run), or the PG* environment's
#                         database when PGHOST is set (a campaign id per run); PostgreSQL's
#                         peak memory (summed PSS of its processes) is shown beside Volley's
set -euo pipefail
cd "$(dirname "$0")/.."
recipients=${1:-20000}
runs=${2:-3}
mode=${MODE:-relay}
connections=${CONNECTIONS:-8}
domains=${DOMAINS:-1000}
mx_hosts=${MX_HOSTS:-100}
tls=${TLS:-starttls}
key=${KEY:-$PWD/fixtures/dkim/rsa2048.pem}
selector=rsa
case "$key" in *ed25519*) selector=ed ;; esac
sink_flags=(--delay-ms "${DELAY_MS:-0}" --tls "$tls")
[ "${CHUNKING:-0}" = 1 ] && sink_flags+=(--chunking)

cargo build --release -q -p volley-cli
volley=${CARGO_TARGET_DIR:-$PWD/target}/release/volley
work=$(mktemp -d)
pids=()
. scripts/pg-cluster.sh
trap 'kill "${pids[@]}" 2>/dev/null || true; pg_cluster_stop; wait 2>/dev/null || true; rm -rf "$work"' EXIT
store=${STORE:-sled}
case "$store" in
    sled) ;;
    postgres) pg_store_url ;;
    *) echo "STORE=$store: use sled or postgres" >&2; exit 2 ;;
esac

port=$((20000 + RANDOM % 20000))
if [ "$mode" = relay ]; then
    sink_flags+=(--auth bench:bench-pw)
    list_domains=100
else
    list_domains=$domains
fi
# One server per run, so that what it counted is that run's alone; it writes its counts on exit.
start_sink() {
    "$volley" sink --bind "127.0.0.1:$port" --no-bodies "${sink_flags[@]}" \
        --ca-out "$work/ca.pem" --stats-json "$work/sink.json" >"$work/sink.log" 2>&1 &
    sink_pid=$!
    pids+=("$sink_pid")
    for _ in $(seq 100); do grep -q listening "$work/sink.log" 2>/dev/null && break; sleep 0.1; done
}
stop_sink() {
    kill -TERM "$sink_pid"
    wait "$sink_pid" || true
}
start_sink

python3 scripts/gen-campaign.py "$work" "$recipients" "$list_domains" "$mx_hosts"

{
    cat <<TOML
[campaign]
id = "bench"
from = "Bench <news@example.com>"
subject = "Hello {{ first_name }}"
text = "body.txt"
html = "body.html"
recipients = "list.csv"

[[dkim]]
domain = "example.com"
selector = "$selector"
key_file = "$key"
TOML
    if [ "$mode" = relay ]; then
        printf 'bench-pw' >"$work/pw.txt"
        cat <<TOML

[relay]
host = "127.0.0.1"
port = $port
tls = "$([ "$tls" = none ] && echo none || echo starttls)"
username = "bench"
password_file = "pw.txt"
connections = $connections
$([ "$tls" = none ] || echo 'ca_file = "ca.pem"')
TOML
    else
        dns_port=$((port + 1))
        "$volley" dns --bind "127.0.0.1:$dns_port" --zone "$work/zone.txt" >"$work/dns.log" 2>&1 &
        pids+=($!)
        for _ in $(seq 100); do grep -q listening "$work/dns.log" 2>/dev/null && break; sleep 0.1; done
        cat <<TOML

[mx]
port = $port

[dns]
nameservers = ["127.0.0.1:$dns_port"]

[shaping.default]
max_connections = ${PER_DESTINATION:-10}
TOML
    fi
} >"$work/campaign.toml"

# The reference of one run: smtp-source into a fresh test server without login or TLS (the
# rate it counted, first to last), and into smtp-sink (the whole command's rate).
ceiling_run() {
    local cport=$((port + 2)) cpid start end
    "$volley" sink --bind "127.0.0.1:$cport" --no-bodies --tls none --stats-json "$work/ceiling.json" \
        >"$work/ceiling.log" 2>&1 &
    cpid=$!
    for _ in $(seq 100); do grep -q listening "$work/ceiling.log" 2>/dev/null && break; sleep 0.1; done
    smtp-source -s "$connections" -m "$recipients" -l 10240 -f bench@example.com -t bench@bench.test \
        "127.0.0.1:$cport" >/dev/null
    kill -TERM "$cpid"
    wait "$cpid" || true
    ceiling_counted=$(python3 -c 'import json, sys; print("%.0f" % json.load(open(sys.argv[1]))["messages_per_second"])' "$work/ceiling.json")
    smtp-sink $([ "$(id -u)" = 0 ] && echo -u nobody) "127.0.0.1:$cport" 256 &
    cpid=$!
    sleep 0.2
    start=$(date +%s.%N)
    smtp-source -s "$connections" -m "$recipients" -l 10240 -f bench@example.com -t bench@bench.test \
        "127.0.0.1:$cport" >/dev/null
    end=$(date +%s.%N)
    kill "$cpid"
    wait "$cpid" 2>/dev/null || true
    ceiling_sink=$(awk -v s="$start" -v e="$end" -v n="$recipients" 'BEGIN {printf "%.0f", n / (e - s)}')
    echo "run $run: reference smtp-source → test server counted $ceiling_counted messages/s; smtp-source → smtp-sink $ceiling_sink messages/s (whole command)"
}
ceilings=()
sink_ceilings=()

timings=()
[ "${TIMINGS:-0}" = 1 ] && timings=(--timings)
rates=()
walls=()
for run in $(seq "$runs"); do
    rm -rf "$work/store" "$work/sink.json"
    store_arg="$work/store"
    if [ "$store" = postgres ]; then
        if [ -n "${PGHOST:-}" ]; then
            sed -i "s/^id = .*/id = \"bench-$run-$$\"/" "$work/campaign.toml"
        else
            pg_fresh_database "run$run"
        fi
        store_arg=$STORE_URL
        pg_memory_start "$work/pg-memory.txt"
    fi
    if [ "${CEILING:-0}" = 1 ]; then
        ceiling_run
        ceilings+=("$ceiling_counted")
        sink_ceilings+=("$ceiling_sink")
    fi
    [ "$run" = 1 ] || start_sink
    timer=()
    [ -x /usr/bin/time ] && timer=(/usr/bin/time -v -o "$work/time.txt")
    start=$(date +%s.%N)
    "${timer[@]}" "$volley" "${timings[@]}" send "$work/campaign.toml" --store "$store_arg" --no-progress \
        >"$work/out.txt" 2>"$work/send.log" &
    send_pid=$!
    if [ -n "${STOP_AFTER:-}" ]; then
        (sleep "$STOP_AFTER"; pkill -TERM -P "$send_pid" 2>/dev/null || kill -TERM "$send_pid" 2>/dev/null) &
    fi
    status=0
    wait "$send_pid" || status=$?
    end=$(date +%s.%N)
    pg_memory=""
    [ "$store" = postgres ] && pg_memory=$(pg_memory_stop)
    stop_sink
    if [ "$status" != 0 ] && [ -z "${STOP_AFTER:-}" ]; then
        echo "run $run: volley send exited $status" >&2
        tail -n 5 "$work/out.txt" "$work/send.log" >&2
        exit 1
    fi
    "$volley" status "$work/campaign.toml" --store "$store_arg" --json >"$work/status.json"
    # The server's count against the store's: every delivered recipient arrived once, every
    # message that arrived is recorded as delivered, and (with TLS) every connection was TLS.
    check=$(python3 - "$work/sink.json" "$work/status.json" "$tls" "${STOP_AFTER:-}" <<'PY'
import json, sys
sink, status = (json.load(open(p)) for p in sys.argv[1:3])
tls, stopped = sys.argv[3], sys.argv[4]
problems = []
if sink["recipients"] != status["delivered"]:
    problems.append(f"the server took {sink['recipients']} recipients, the store says {status['delivered']} delivered")
if sink["messages"] != sink["recipients"]:
    problems.append(f"{sink['messages']} messages for {sink['recipients']} recipients")
if not stopped and status["pending"] + status["deferred"] != 0:
    problems.append(f"{status['pending']} pending and {status['deferred']} deferred left")
if tls != "none" and sink["tls_connections"] != sink["connections"]:
    problems.append(f"{sink['tls_connections']} of {sink['connections']} connections carried mail over TLS")
if problems:
    print("MISMATCH: " + "; ".join(problems))
    sys.exit(1)
print(f"{sink['messages_per_second']:.0f} {sink['messages']} {sink['connections']} {sink['tls_connections']} {sink['first_to_last_seconds']:.2f}")
PY
    ) || { echo "run $run: $check" >&2; exit 1; }
    read -r rate messages sink_connections tls_connections span <<<"$check"
    wall=$(awk -v s="$start" -v e="$end" 'BEGIN {printf "%.2f", e - s}')
    rss=""
    [ -f "$work/time.txt" ] && rss=$(awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}' "$work/time.txt")
    volley_rate=$(sed -n 's/.*(\([0-9]*\) messages\/s.*/\1/p' "$work/out.txt")
    echo "run $run: server counted $messages messages in $span s: $rate messages/s ($sink_connections connections, $tls_connections TLS); whole command $wall s; volley's own figure ${volley_rate:-?}/s${rss:+; peak RSS ${rss} KB}${pg_memory:+; PostgreSQL peak ${pg_memory} MB (PSS)}"
    [ "${TIMINGS:-0}" = 1 ] && sed -n '/where the time went/,$p' "$work/out.txt"
    rates+=("$rate")
    walls+=("$wall")
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
if [ "$mode" = relay ]; then
    shape="relay, STARTTLS+AUTH, $connections connections"
else
    shape="direct to MX, $domains domains on $mx_hosts MX hosts via loopback DNS, up to ${PER_DESTINATION:-10} connections per destination"
fi
echo "median: $(printf '%s\n' "${rates[@]}" | median) messages/s as the server counted them, whole command $(printf '%s\n' "${walls[@]}" | median) s ($recipients recipients, 10 KB, DKIM $selector, TLS $tls, $shape, reply delay ${DELAY_MS:-0} ms, chunking ${CHUNKING:-0}, store $store; $(nproc) cores; commit $(git rev-parse --short HEAD))"
if [ "${CEILING:-0}" = 1 ]; then
    reference=$(printf '%s\n' "${ceilings[@]}" | median)
    echo "reference: smtp-source → test server median $reference messages/s (smtp-source → smtp-sink $(printf '%s\n' "${sink_ceilings[@]}" | median)/s); volley / reference = $(awk -v v="$(printf '%s\n' "${rates[@]}" | median)" -v r="$reference" 'BEGIN {printf "%.2f", v / r}')"
fi
