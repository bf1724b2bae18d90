#!/usr/bin/env bash
# Transactional latency under bulk load: `volley serve` (release build) runs a BULK-recipient
# campaign through one relay (scripts/tx-sink.py, aiosmtpd: an SMTP server nobody here
# wrote, DELAY_MS at each DATA) while N transactional messages are posted to its API, one
# every GAP_MS, by a small Python client. The relay logs when each message arrived (just
# before its 250); each transactional message carries its own token in its subject, so its
# latency is the relay's arrival time minus the client's time before the request (same
# machine, same clock). Prints p50/p99/max of that and of the HTTP answer (202), how many
# bulk messages arrived meanwhile and after, and the whole command's time.
#
#   scripts/tx-latency.sh [N=200] [BULK=100000] [DELAY_MS=0]
#
# Environment: GAP_MS (default 50), CONNECTIONS (relay connections, default 4), STORE=postgres
# (the server's store is a throwaway PostgreSQL cluster, see scripts/pg-cluster.sh; default
# sled).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s.%N)
n=${1:-200}
bulk=${2:-100000}
delay=${3:-0}
gap=${GAP_MS:-50}
connections=${CONNECTIONS:-4}
command -v /usr/bin/python3 >/dev/null || { echo "needs /usr/bin/python3 (Debian: python3)" >&2; exit 2; }
/usr/bin/python3 -c "import aiosmtpd" 2>/dev/null || { echo "needs python3-aiosmtpd" >&2; exit 2; }
cargo build --release -q -p volley-cli --bin volley
volley=${CARGO_TARGET_DIR:-$PWD/target}/release/volley
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; [ "${STORE:-sled}" != postgres ] || pg_cluster_stop' EXIT
store_toml='store = "store.volley"'
if [ "${STORE:-sled}" = postgres ]; then
    . scripts/pg-cluster.sh
    pg_store_url
    store_toml=""
fi

/usr/bin/python3 scripts/tx-sink.py "$work/arrivals.log" --delay-ms "$delay" >"$work/sink.out" 2>"$work/sink.err" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/sink.out" 2>/dev/null && break; sleep 0.1; done
sink_port=$(awk '/listening/ {print $2}' "$work/sink.out")

cp fixtures/dkim/rsa2048.pem "$work/rsa.pem"
python3 scripts/gen-campaign.py "$work" "$bulk" 50 1 --size 1k >/dev/null
relay="[relay]
host = \"127.0.0.1\"
port = $sink_port
tls = \"none\"
connections = $connections"
cat >"$work/bulk.toml" <<TOML
[campaign]
id = "bulk"
from = "News <news@example.com>"
subject = "Bulk news for {{ first_name }}"
text = "body.txt"
recipients = "list.csv"
priority = 3

$relay

[[dkim]]
domain = "example.com"
selector = "rsa"
key_file = "rsa.pem"
TOML
printf 'Your code is {{ code }}.\n' >"$work/tx.txt"
printf 'email\n' >"$work/none.csv"
cat >"$work/tx.toml" <<TOML
[campaign]
id = "tx"
from = "Shop <shop@example.com>"
subject = "Your code {{ code }}"
text = "tx.txt"
recipients = "none.csv"

$relay

[[dkim]]
domain = "example.com"
selector = "rsa"
key_file = "rsa.pem"
TOML
secret="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
hash=$(printf '%s' "$secret" | sha256sum | cut -d' ' -f1)
printf '[[token]]\nname = "bench"\nscopes = ["send", "read"]\nsha256 = "%s"\n' "$hash" >"$work/tokens.toml"
api_port=$((20000 + RANDOM % 20000))
cat >"$work/serve.toml" <<TOML
$store_toml
campaigns = ["bulk.toml"]
TOML
if [ "${STORE:-sled}" = postgres ]; then
    printf '\n[store]\nurl = "%s"\nlocal_dir = "local"\n' "$STORE_URL" >>"$work/serve.toml"
fi
cat >>"$work/serve.toml" <<TOML

[api]
bind = "127.0.0.1:$api_port"
tokens_file = "tokens.toml"
transactional = "tx.toml"
TOML
chmod 600 "$work/tokens.toml"
"$volley" serve --config "$work/serve.toml" >"$work/serve.log" 2>&1 &
server=$!
pids+=("$server")

echo "waiting for the bulk campaign ($bulk recipients) to be loaded and under way…"
for _ in $(seq 3000); do
    [ "$(wc -l <"$work/arrivals.log" 2>/dev/null || echo 0)" -ge 1000 ] && break
    kill -0 "$server" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
    sleep 0.1
done

/usr/bin/python3 - "$api_port" "$secret" "$n" "$gap" "$work" <<'PY'
import json, sys, time, urllib.request
port, secret, n, gap, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
sent, answers = {}, []
for i in range(n):
    body = json.dumps({"to": f"tx{i}@tx.example", "data": {"code": f"TX-{i:06d}"}}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/messages", data=body, method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {secret}"})
    t0 = time.time()
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202, response.status
        json.load(response)
    answers.append(time.time() - t0)
    sent[f"TX-{i:06d}"] = t0
    time.sleep(gap / 1000)
deadline = time.time() + 600
arrived = {}
while len(arrived) < n and time.time() < deadline:
    with open(f"{work}/arrivals.log") as log:
        lines = log.read().splitlines()
    for line in lines:
        at, _, subject = line.partition(" ")
        if subject.startswith("Your code TX-"):
            arrived.setdefault(subject.split()[-1], float(at))
    time.sleep(0.2)
bulk_before_last = sum(1 for l in lines if l.partition(" ")[2].startswith("Bulk")
                       and float(l.split()[0]) <= max(arrived.values(), default=0))
latency = sorted(arrived[k] - sent[k] for k in arrived)
answers.sort()
def pct(xs, p):
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000 if xs else float("nan")
print(f"transactional messages: {len(arrived)}/{n} arrived")
print(f"request to the relay's 250: p50 {pct(latency, 50):.1f} ms, p99 {pct(latency, 99):.1f} ms, max {pct(latency, 100):.1f} ms")
print(f"HTTP 202 answer:            p50 {pct(answers, 50):.1f} ms, p99 {pct(answers, 99):.1f} ms")
print(f"bulk messages at the relay by the last transactional one: {bulk_before_last}")
PY
total=$(wc -l <"$work/arrivals.log")
echo "relay log: $total messages so far (bulk still running: $((total < bulk + n)) )"
kill -TERM "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
ended=$(date +%s.%N)
echo "($n transactional during a $bulk-recipient bulk send, relay delay ${delay} ms, $connections connections, gap ${gap} ms; whole command $(echo "$ended - $started" | bc) s; $(nproc) cores; commit $(git rev-parse --short HEAD))"
