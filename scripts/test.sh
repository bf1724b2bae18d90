#!/usr/bin/env bash
# The test command: installs what the tests need (scripts/test-deps.sh), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-deps.sh
cargo test --workspace --locked "$@"
