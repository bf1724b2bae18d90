#!/usr/bin/env bash
# Crash safety, measured: a campaign of RECIPIENTS (default 50,000) through Volley's test SMTP
# server (a separate process, STARTTLS + AUTH), with KILLS (default 20) SIGKILLs of
# `volley send` at random moments, each followed by a re-run, and a last run to completion.
# Then every address the server accepted is counted. The last line reads
#   lost N, duplicates M
# lost = recipients never received; duplicates = extra copies received.
#
#   scripts/crash-test.sh [RECIPIENTS=50000] [KILLS=20]
#   STORE=postgres scripts/crash-test.sh ...   # on a throwaway PostgreSQL cluster (or PG* env)
set -euo pipefail
cd "$(dirname "$0")/.."
recipients=${1:-50000}
kills=${2:-20}
store=${STORE:-sled}
. scripts/pg-cluster.sh

cargo build --release -q -p volley-cli
volley=${CARGO_TARGET_DIR:-$PWD/target}/release/volley
work=$(mktemp -d)
sink_pid=""
trap '[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; wait 2>/dev/null || true; pg_cluster_stop; rm -rf "$work"' EXIT
case "$store" in
    sled) store_args=() ;;
    postgres)
        pg_store_url
        store_args=(--store "$STORE_URL")
        echo "store: $STORE_URL"
        ;;
    *) echo "STORE=$store: use sled or postgres" >&2; exit 2 ;;
esac

port=$((20000 + RANDOM % 20000))
# A 2 ms reply delay stands for a relay on the network and spreads the send over the kills.
"$volley" sink --bind "127.0.0.1:$port" --tls starttls --auth crash:crash-pw --no-bodies --delay-ms 2 \
    --ca-out "$work/ca.pem" --log-recipients "$work/received.txt" >"$work/sink.log" 2>&1 &
sink_pid=$!
for _ in $(seq 100); do [ -s "$work/ca.pem" ] && break; sleep 0.1; done

{
    echo "email,name"
    for i in $(seq 0 $((recipients - 1))); do echo "user$i@d$((i % 100)).example,Name$i"; done
} >"$work/list.csv"
printf 'Hello {{ name }}, this is the crash test.\n' >"$work/body.txt"
printf 'crash-pw' >"$work/pw.txt"
cat >"$work/campaign.toml" <<TOML
[campaign]
id = "crash"
from = "Crash <news@example.com>"
subject = "Hi {{ name }}"
text = "body.txt"
recipients = "list.csv"
[relay]
host = "127.0.0.1"
port = $port
tls = "starttls"
username = "crash"
password_file = "pw.txt"
ca_file = "ca.pem"
connections = 8
[[dkim]]
domain = "example.com"
selector = "ed"
key_file = "$PWD/fixtures/dkim/ed25519.pem"
TOML

# The campaign's delivered count, empty before the list is loaded.
delivered_so_far() {
    "$volley" status "$work/campaign.toml" "${store_args[@]}" --json 2>/dev/null | tr -d ' \n' |
        sed -n 's/.*"delivered":\([0-9]*\).*/\1/p' || true
}

for k in $(seq "$kills"); do
    "$volley" send "$work/campaign.toml" "${store_args[@]}" --no-progress >/dev/null 2>"$work/send.log" &
    pid=$!
    if (( k % 4 == 1 )); then
        # A random moment 0.2 to 3 s in: often while the list loads (about 2.5 s for 50,000
        # here; an interrupted load starts over).
        sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.2 + (r % 280) / 100 }')"
    else
        # Wait until this run is sending (on sled, status is answered by the running process;
        # on PostgreSQL, read from the database: the delivered count moves), then a random
        # moment up to 1 s later.
        before=$(delivered_so_far)
        for _ in $(seq 400); do
            kill -0 "$pid" 2>/dev/null || break # done already: nothing left to send
            if [ "$store" = sled ]; then
                "$volley" status "$work/campaign.toml" --json 2>/dev/null | grep -q '"running_pid": [0-9]' && break
            else
                now=$(delivered_so_far)
                [ -n "$now" ] && [ "$now" != "$before" ] && break
            fi
            sleep 0.05
        done
        sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", (r % 100) / 100 }')"
    fi
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    delivered=$(delivered_so_far)
    echo "kill $k: ${delivered:-list not loaded yet}${delivered:+ delivered so far}"
done
"$volley" send "$work/campaign.toml" "${store_args[@]}" --no-progress >/dev/null 2>"$work/send.log" || {
    echo "the final run failed:"; cat "$work/send.log"; exit 1; }

kill -TERM "$sink_pid"; wait "$sink_pid" 2>/dev/null || true; sink_pid=""
received=$(wc -l <"$work/received.txt")
unique=$(sort -u "$work/received.txt" | wc -l)
lost=$((recipients - unique))
duplicates=$((received - unique))
echo "$recipients recipients, $kills kills: the server accepted $received messages for $unique addresses"
echo "lost $lost, duplicates $duplicates"
