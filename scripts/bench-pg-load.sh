#!/usr/bin/env bash
# List load into the PostgreSQL store: a CSV of ROWS recipients over 1,000 domains loaded RUNS
# times (a new campaign each) into a throwaway cluster on loopback, through the real path:
# CSV reader → bounded channel → binary COPY into a staging table → one INSERT … SELECT that
# drops duplicates and marks suppressed addresses → counters → commit. Prints rows/s per run
# (from the first CSV read to the commit). Needs Debian's `postgresql` (scripts/test-deps.sh).
#
#   scripts/bench-pg-load.sh [ROWS=1000000] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p volley-benches --bin pg-load
"${CARGO_TARGET_DIR:-$PWD/target}/release/pg-load" "${1:-1000000}" "${2:-3}"
