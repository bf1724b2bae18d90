#!/usr/bin/env bash
# End-to-end throughput: `volley send` through an authenticated STARTTLS relay (Volley's own
# test SMTP server, in a separate process on 127.0.0.1), 10 KB personalised messages,
# RSA-2048 DKIM. Runs the send RUNS times with a fresh store and prints each run's rate,
# the median, and the sender's peak RSS (from /usr/bin/time -v when available).
#
#   scripts/bench-send.sh [RECIPIENTS=20000] [RUNS=3]
#
# Environment: CONNECTIONS (default 8), KEY (default fixtures/dkim/rsa2048.pem),
# DELAY_MS (the server waits this long before each batch of replies: a simulated round trip,
# default 0), CHUNKING=1 (the server offers CHUNKING, so Volley sends BDAT: one round trip
# per message instead of two).
set -euo pipefail
cd "$(dirname "$0")/.."
recipients=${1:-20000}
runs=${2:-3}
connections=${CONNECTIONS:-8}
sink_flags=(--delay-ms "${DELAY_MS:-0}")
[ "${CHUNKING:-0}" = 1 ] && sink_flags+=(--chunking)
key=${KEY:-$PWD/fixtures/dkim/rsa2048.pem}

cargo build --release -q -p volley-cli
volley=$PWD/target/release/volley
work=$(mktemp -d)
trap 'kill "$sink_pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

port=$((20000 + RANDOM % 20000))
"$volley" sink --bind "127.0.0.1:$port" --tls starttls --auth bench:bench-pw --no-bodies "${sink_flags[@]}" \
    --ca-out "$work/ca.pem" >"$work/sink.log" 2>&1 &
sink_pid=$!
for _ in $(seq 100); do [ -s "$work/ca.pem" ] && break; sleep 0.1; done

python3 - "$work" "$recipients" <<'PY'
import sys
work, n = sys.argv[1], int(sys.argv[2])
para = "Volley delivers every message personalised, signed and on time. " * 80
with open(f"{work}/body.html", "w") as f:
    f.write("<html><body><h1>Hello {{ first_name }}</h1><p>News for {{ city }}.</p><p>" + para + "</p></body></html>\n")
with open(f"{work}/body.txt", "w") as f:
    f.write("Hello {{ first_name }},\nNews for {{ city }}.\n" + para[:4000] + "\n")
with open(f"{work}/list.csv", "w") as f:
    f.write("email,first_name,city\n")
    for i in range(n):
        f.write(f"user{i}@d{i % 100}.example,Name{i},City{i % 37}\n")
PY
printf 'bench-pw' >"$work/pw.txt"
cat >"$work/campaign.toml" <<TOML
[campaign]
id = "bench"
from = "Bench <news@example.com>"
subject = "Hello {{ first_name }}"
text = "body.txt"
html = "body.html"
recipients = "list.csv"
[relay]
host = "127.0.0.1"
port = $port
tls = "starttls"
username = "bench"
password_file = "pw.txt"
ca_file = "ca.pem"
connections = $connections
[[dkim]]
domain = "example.com"
selector = "rsa"
key_file = "$key"
TOML

rates=()
for run in $(seq "$runs"); do
    rm -rf "$work/store"
    timer=()
    [ -x /usr/bin/time ] && timer=(/usr/bin/time -v -o "$work/time.txt")
    out=$("${timer[@]}" "$volley" send "$work/campaign.toml" --store "$work/store" --no-progress 2>"$work/send.log")
    rate=$(sed -n 's/.*(\([0-9]*\) messages\/s).*/\1/p' <<<"$out")
    rss=""
    [ -f "$work/time.txt" ] && rss=$(awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}' "$work/time.txt")
    echo "run $run: $rate messages/s${rss:+, peak RSS ${rss} KB}"
    rates+=("$rate")
done
median=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "median: $median messages/s ($recipients recipients, 10 KB, RSA-2048 DKIM, STARTTLS+AUTH, $connections connections, reply delay ${DELAY_MS:-0} ms, chunking ${CHUNKING:-0})"
