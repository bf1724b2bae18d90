#!/usr/bin/env bash
# Checks the book (docs/) and README.md (run by .ci/run): every page in docs/src/SUMMARY.md
# exists, every page in docs/src/ is listed, and every relative link (and #anchor) in README.md
# and the book resolves. Python 3's standard library only (scripts/check_docs.py).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v python3 > /dev/null; then
    echo "check-docs: python3 is required (apt-get install -y python3)" >&2
    exit 1
fi
exec python3 scripts/check_docs.py "$PWD"
