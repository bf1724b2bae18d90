#!/usr/bin/env bash
# The test command: the whole workspace on the embedded store (sled), then the `volley`
# binary's end-to-end tests again on PostgreSQL (every campaign's store a database of a
# throwaway cluster started by the tests; see testkit/src/store.rs). The tests about the sled
# folder itself say so and return at once on PostgreSQL (cli/tests/cli/support.rs, SLED_ONLY).
#
#   scripts/test.sh            # what CI runs (after scripts/test-deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== cargo test --workspace (sled)"
cargo test --workspace --locked
echo "== cargo test -p volley-cli --test cli (PostgreSQL)"
VOLLEY_TEST_STORE=postgres cargo test -p volley-cli --test cli --locked
