#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain: Debian's chromium, in which the HTML
# report test renders the report (set VOLLEY_CHROMIUM to use another Chromium binary).
set -euo pipefail
if [[ -n "${VOLLEY_CHROMIUM:-}" ]] || command -v chromium >/dev/null 2>&1; then
    exit 0
fi
echo "== installing chromium (the HTML report test renders in it)"
if [[ "$(id -u)" != 0 ]]; then
    echo "chromium is missing: run 'sudo apt-get install chromium' (or set VOLLEY_CHROMIUM)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
