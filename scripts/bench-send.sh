#!/usr/bin/env bash
# End-to-end throughput of `volley send`, against Volley's own test SMTP server in a separate
# process on loopback: 10 KB personalised messages, DKIM-signed. Runs the send RUNS times with
# a fresh store and prints each run's rate, the median, and the sender's peak RSS (from
# /usr/bin/time -v when available).
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
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

port=$((20000 + RANDOM % 20000))
if [ "$mode" = relay ]; then
    sink_flags+=(--auth bench:bench-pw)
    list_domains=100
else
    list_domains=$domains
fi
"$volley" sink --bind "127.0.0.1:$port" --no-bodies "${sink_flags[@]}" \
    --ca-out "$work/ca.pem" >"$work/sink.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/sink.log" 2>/dev/null && break; sleep 0.1; done

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

timings=()
[ "${TIMINGS:-0}" = 1 ] && timings=(--timings)
rates=()
for run in $(seq "$runs"); do
    rm -rf "$work/store"
    timer=()
    [ -x /usr/bin/time ] && timer=(/usr/bin/time -v -o "$work/time.txt")
    "${timer[@]}" "$volley" "${timings[@]}" send "$work/campaign.toml" --store "$work/store" --no-progress \
        >"$work/out.txt" 2>"$work/send.log" &
    send_pid=$!
    if [ -n "${STOP_AFTER:-}" ]; then
        (sleep "$STOP_AFTER"; pkill -TERM -P "$send_pid" 2>/dev/null || kill -TERM "$send_pid" 2>/dev/null) &
    fi
    wait "$send_pid" || true
    out=$(cat "$work/out.txt")
    rate=$(sed -n 's/.*(\([0-9]*\) messages\/s.*/\1/p' <<<"$out")
    rss=""
    [ -f "$work/time.txt" ] && rss=$(awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}' "$work/time.txt")
    echo "run $run: ${rate:-?} messages/s${rss:+, peak RSS ${rss} KB}"
    [ "${TIMINGS:-0}" = 1 ] && sed -n '/where the time went/,$p' <<<"$out"
    rates+=("${rate:-0}")
done
median=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
if [ "$mode" = relay ]; then
    shape="relay, STARTTLS+AUTH, $connections connections"
else
    shape="direct to MX, $domains domains on $mx_hosts MX hosts via loopback DNS, up to ${PER_DESTINATION:-10} connections per destination"
fi
echo "median: $median messages/s ($recipients recipients, 10 KB, DKIM $selector, TLS $tls, $shape, reply delay ${DELAY_MS:-0} ms, chunking ${CHUNKING:-0})"
