#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain: Debian's chromium, in which the HTML
# report test renders the report (set VOLLEY_CHROMIUM to use another Chromium binary), and the
# openssl command line, with which the relay certificate test makes a self-signed certificate
# the way guides show.
set -euo pipefail
missing=()
if [[ -z "${VOLLEY_CHROMIUM:-}" ]] && ! command -v chromium >/dev/null 2>&1; then
    missing+=(chromium)
fi
if ! command -v openssl >/dev/null 2>&1; then
    missing+=(openssl)
fi
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi
echo "== installing ${missing[*]} (the HTML report test renders in chromium; the relay certificate test runs openssl)"
if [[ "$(id -u)" != 0 ]]; then
    echo "${missing[*]} missing: run 'sudo apt-get install ${missing[*]}' (or set VOLLEY_CHROMIUM)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
