#!/usr/bin/env bash
# Volley against a real Postfix relay (Debian's package, scripts/postfix-relay.sh): the same
# 10 KB RSA-signed campaign with CHUNKING offered (Volley sends BDAT) and without it (DATA),
# over STARTTLS with an `openssl req -x509` certificate pinned in ca_file, and Postfix's own
# load generator (smtp-source, no TLS) as the ceiling. Every rate is what Postfix counted: the
# messages in its hold queue, first to last (queue file times); the whole command's time is
# printed beside it. Needs root and Debian's postfix package.
#
#   scripts/bench-postfix.sh [RECIPIENTS=3000] [RUNS=3]
#
# Environment: CONNECTIONS (default 8), KEY (default fixtures/dkim/rsa2048.pem).
set -euo pipefail
cd "$(dirname "$0")/.."
recipients=${1:-3000}
runs=${2:-3}
connections=${CONNECTIONS:-8}
key=${KEY:-$PWD/fixtures/dkim/rsa2048.pem}

cargo build --release -q -p volley-cli
volley=${CARGO_TARGET_DIR:-$PWD/target}/release/volley
base=${CARGO_TARGET_DIR:-$PWD/target}/bench-postfix
rm -rf "$base"
mkdir -p "$base"
work=$(mktemp -d)
relay_pid=""
stop_relay() {
    [ -n "$relay_pid" ] && kill -TERM "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null || true
    relay_pid=""
}
trap 'stop_relay; rm -rf "$work" "$base"' EXIT

openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=relay.test \
    -addext subjectAltName=DNS:relay.test,IP:127.0.0.1 \
    -keyout "$base/key.pem" -out "$base/cert.pem" 2>/dev/null
cp "$base/cert.pem" "$work/cert.pem"
python3 scripts/gen-campaign.py "$work" "$recipients" 100 10 >/dev/null
port=$((20000 + RANDOM % 20000))
cat >"$work/campaign.toml" <<TOML
[campaign]
id = "bench"
from = "Bench <news@example.com>"
subject = "Hello {{ first_name }}"
text = "body.txt"
html = "body.html"
recipients = "list.csv"

[[dkim]]
domain = "example.com"
selector = "rsa"
key_file = "$key"

[relay]
host = "127.0.0.1"
port = $port
tls = "starttls"
ca_file = "cert.pem"
connections = $connections
TOML

start_relay() { # $1: instance folder, then postfix-relay.sh options
    local dir=$1
    shift
    scripts/postfix-relay.sh "$dir" "$port" --tls "$base/cert.pem" "$base/key.pem" "$@" \
        >"$dir.log" 2>&1 &
    relay_pid=$!
    for _ in $(seq 200); do
        grep -q "daemon started" "$dir.log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "Postfix did not start:" >&2
    cat "$dir.log" >&2
    exit 1
}

# Rate Postfix counted: held messages over first-to-last queue file time.
held_rate() { # $1: hold folder, $2: expected count
    local n
    for _ in $(seq 600); do
        n=$(find "$1" -type f | wc -l)
        [ "$n" -ge "$2" ] && break
        sleep 0.1
    done
    find "$1" -type f -printf '%T@\n' | sort -n | awk -v want="$2" '
        NR == 1 {first = $1} {last = $1} END {
            if (NR != want) {printf "MISMATCH: %d held, %d expected\n", NR, want; exit 1}
            printf "%.0f", (NR - 1) / (last - first)
        }'
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

run_volley() { # $1: label, $2: run number, then postfix-relay.sh options; prints the rate
    local label=$1 run=$2
    shift 2
    local dir="$base/$label-$run"
    start_relay "$dir" "$@"
    rm -rf "$work/store"
    local start end
    start=$(date +%s.%N)
    "$volley" send "$work/campaign.toml" --store "$work/store" --no-progress >"$work/out.txt" 2>"$work/send.log" || {
        echo "volley send failed:" >&2
        tail -n 5 "$work/out.txt" "$work/send.log" >&2
        exit 1
    }
    end=$(date +%s.%N)
    local rate
    rate=$(held_rate "$dir/queue/hold" "$recipients") || { echo "$label run $run: $rate" >&2; exit 1; }
    grep -q "delivered $recipients " "$work/out.txt" || { echo "the store does not say $recipients delivered" >&2; exit 1; }
    echo "$label run $run: Postfix counted $rate messages/s; whole command $(awk -v s="$start" -v e="$end" 'BEGIN {printf "%.2f", e - s}') s" >&2
    stop_relay
    echo "$rate"
}

# The ceiling: Postfix's own lock-step generator, CONNECTIONS sessions, no TLS, 10 KB.
run_source() { # $1: run number; prints the rate
    local dir="$base/source-$1"
    start_relay "$dir"
    smtp-source -c -s "$connections" -m "$recipients" -l 10240 -f bench@example.com \
        -t user@d0.bench.test "127.0.0.1:$port" >/dev/null
    local rate
    rate=$(held_rate "$dir/queue/hold" "$recipients")
    echo "smtp-source run $1: Postfix counted $rate messages/s" >&2
    stop_relay
    echo "$rate"
}

# The three are run in turn within each round, so a busy spell on the shared machine falls
# on all of them alike; the BDAT/DATA ratio of each round is printed with the medians.
chunking=() data=() source=() ratios=()
for run in $(seq "$runs"); do
    c=$(run_volley chunking "$run")
    d=$(run_volley data "$run" --no-chunking)
    s=$(run_source "$run")
    chunking+=("$c") data+=("$d") source+=("$s")
    ratios+=("$(awk -v c="$c" -v d="$d" 'BEGIN {printf "%.2f", c / d}')")
done
echo "chunking median: $(printf '%s\n' "${chunking[@]}" | median) messages/s"
echo "data median: $(printf '%s\n' "${data[@]}" | median) messages/s"
echo "chunking/data per round: ${ratios[*]}; median $(printf '%s\n' "${ratios[@]}" | median)"
echo "smtp-source median: $(printf '%s\n' "${source[@]}" | median) messages/s ($connections sessions, no TLS)"
echo "($recipients messages of 10 KB, RSA-2048 DKIM, STARTTLS, $connections connections; $(nproc) cores)"
