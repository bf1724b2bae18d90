#!/bin/sh
# Simulated A/B tests looked at after every delivery: false-winner rate, power and mean stopping
# size of the sequential verdict (and of a fixed z-test peeked at as often, for contrast).
# Usage: scripts/ab-simulate.sh [TESTS] [SEED]   (default 10000 tests per row, seed 21)
set -eu
cd "$(dirname "$0")/.."
exec cargo run --quiet --release -p volley-engine --example ab_simulate -- "${1:-10000}" "${2:-21}"
