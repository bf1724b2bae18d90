#!/usr/bin/env bash
# Volley at a million recipients: load time, send rate, peak RSS, store size on disk, and the
# latency of status, report and events; then `volley gc` and the same figures after it.
#
#   scripts/scale.sh [RECIPIENTS=1000000]
#
# The campaign goes direct to MX over 1,000 loopback domains (Volley's test DNS and SMTP
# servers in separate processes), Ed25519-signed, without TLS, so the store rather than
# signing is what is measured. Bodies are about 10 KB (SIZE=1k for about 1 KB). Each figure
# comes with the peak RSS of the command that produced it (from /usr/bin/time -v); the send's
# rate is also given as the receiving server counted it, first to last message. A step that
# fails (non-zero exit) or a receiver count that disagrees with the store stops the script.
# Needs python3 and GNU time.
#
# LOAD_ONLY=1: only `volley load` (CSV to durable), the store's size and `status`; no send.
#
# STORE=postgres: the store is a throwaway PostgreSQL cluster started here (or the PG*
# environment's database when PGHOST is set); its size is pg_database_size, and its peak
# memory (summed PSS of its processes) is shown beside Volley's peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
store=${STORE:-sled}
recipients=${1:-1000000}
body_size=${SIZE:-10k}
domains=1000
mx_hosts=100

cargo build --release -q -p volley-cli
volley=${CARGO_TARGET_DIR:-$PWD/target}/release/volley

work=$(mktemp -d)
pids=()
. scripts/pg-cluster.sh
trap 'kill "${pids[@]}" 2>/dev/null || true; pg_cluster_stop; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
case "$store" in
    sled) store_line='path = "store"' ;;
    postgres) pg_store_url; store_line="url = \"$STORE_URL\"" ;;
    *) echo "STORE=$store: use sled or postgres" >&2; exit 2 ;;
esac

port=$((20000 + RANDOM % 20000))
dns_port=$((port + 1))
"$volley" sink --bind "127.0.0.1:$port" --no-bodies --tls none --ca-out "$work/ca.pem" \
    --stats-json "$work/sink.json" >"$work/sink.log" 2>&1 &
pids+=($!)
python3 scripts/gen-campaign.py "$work" "$recipients" "$domains" "$mx_hosts" --suffix scale.test --size "$body_size"
"$volley" dns --bind "127.0.0.1:$dns_port" --zone "$work/zone.txt" >"$work/dns.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    grep -q listening "$work/sink.log" 2>/dev/null && grep -q listening "$work/dns.log" 2>/dev/null && break
    sleep 0.1
done
cat >"$work/campaign.toml" <<TOML
[campaign]
id = "scale"
from = "Scale <news@example.com>"
subject = "Hello {{ first_name }}"
text = "body.txt"
$([ "$body_size" = 10k ] && echo 'html = "body.html"')
recipients = "list.csv"

[[dkim]]
domain = "example.com"
selector = "ed"
key_file = "$PWD/fixtures/dkim/ed25519.pem"

[mx]
port = $port

[dns]
nameservers = ["127.0.0.1:$dns_port"]

[store]
$store_line
TOML

# Runs a volley command under /usr/bin/time; prints "<seconds> s, peak RSS <MB> MB".
timed() {
    local label=$1
    shift
    local status=0
    /usr/bin/time -v -o "$work/time.txt" "$volley" "$@" >"$work/out.txt" 2>"$work/err-${label// /_}.txt" || status=$?
    if [ "$status" != 0 ]; then
        echo "$label: volley $1 exited $status" >&2
        tail -5 "$work/out.txt" "$work/err-${label// /_}.txt" >&2
        exit 1
    fi
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt" |
        awk -F: '{ if (NF == 3) print $1 * 3600 + $2 * 60 + $3; else print $1 * 60 + $2 }')
    rss=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2 / 1024}' "$work/time.txt")
    printf '%-28s %8.2f s   peak RSS %5s MB\n' "$label" "$wall" "$rss"
}
size() {
    if [ "$store" = postgres ]; then echo "$(pg_database_size) MB (pg_database_size)"
    else du -sb "$work/store" | awk '{printf "%.1f MB", $1 / 1e6}'; fi
}

if [ -n "${LOAD_ONLY:-}" ]; then
    echo "== load only: $recipients recipients over $domains domains (store $store; $(nproc) cores; commit $(git rev-parse --short HEAD))"
    [ "$store" = postgres ] && pg_memory_start "$work/pg-memory.txt"
    timed "load (CSV to durable)" load "$work/campaign.toml"
    [ "$store" = postgres ] && echo "  PostgreSQL peak memory during the load: $(pg_memory_stop) MB (summed PSS of its processes)"
    sed 's/^/  /' "$work/out.txt"
    echo "  store on disk: $(size) ($(du -sb "$work/list.csv" | awk '{printf "%.0f MB", $1 / 1e6}') of CSV)"
    timed "status" status "$work/campaign.toml"
    exit 0
fi
echo "== $recipients recipients over $domains domains (direct to MX, Ed25519, no TLS, $body_size bodies; store $store; $(nproc) cores; commit $(git rev-parse --short HEAD))"
[ "$store" = postgres ] && pg_memory_start "$work/pg-memory.txt"
VOLLEY_LOG=info timed "send (load + deliver)" send "$work/campaign.toml" --no-progress --linger 0s
[ "$store" = postgres ] && echo "  PostgreSQL peak memory during the send: $(pg_memory_stop) MB (summed PSS of its processes)"
sed -n 's/.*list loaded.* seconds="\([0-9.]*\)".*/\1/p' "$work/err-send_(load_+_deliver).txt" | head -1 |
    awk -v n="$recipients" '{printf "  list loaded in %s s: %.0f rows/s\n", $1, n / $1}'
sed -n 's/^ *\(this run: .*\)/  \1/p' "$work/out.txt"
grep -E '^ *delivered' "$work/out.txt" | sed 's/^ */  /'
# What the receiving server counted, against the store.
kill -TERM "${pids[0]}"
wait "${pids[0]}" || true
"$volley" status "$work/campaign.toml" --json >"$work/status.json"
python3 - "$work/sink.json" "$work/status.json" <<'PY' || exit 1
import json, sys
sink, status = (json.load(open(p)) for p in sys.argv[1:3])
if sink["recipients"] != status["delivered"] or status["pending"] + status["deferred"]:
    print(f"MISMATCH: the server took {sink['recipients']} recipients; the store says "
          f"{status['delivered']} delivered, {status['pending']} pending, {status['deferred']} deferred")
    sys.exit(1)
print(f"  the server counted {sink['messages']} messages, first to last {sink['first_to_last_seconds']:.1f} s: "
      f"{sink['messages_per_second']:.0f} messages/s")
PY
echo "  store on disk: $(size)"
timed "status" status "$work/campaign.toml"
timed "report (json)" report "$work/campaign.toml" --format json --out "$work/report.json"
timed "events (jsonl, all)" events "$work/campaign.toml" --out "$work/events.jsonl"
echo "  events exported: $(wc -l <"$work/events.jsonl")"
timed "gc" gc "$work/campaign.toml"
sed 's/^/  /' "$work/out.txt"
echo "  store on disk after gc: $(size)"
timed "status after gc" status "$work/campaign.toml"
timed "report after gc" report "$work/campaign.toml" --format json --out "$work/report-after.json"
if python3 - "$work/report.json" "$work/report-after.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
a.pop("generated_at"); b.pop("generated_at")
sys.exit(0 if a == b else 1)
PY
then echo "  report after gc: identical"; else echo "  report after gc: DIFFERS"; fi
