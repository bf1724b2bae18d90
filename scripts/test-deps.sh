#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain, from Debian's packages:
#   chromium   the HTML report test renders the report in it (or set VOLLEY_CHROMIUM)
#   openssl    certificate tests make self-signed certificates the way guides show
#   curl       tracking tests fetch tracked links and /metrics with an HTTP client nobody here wrote
#   postfix    interop tests send through a private Postfix relay (scripts/postfix-relay.sh);
#              its smtp-sink and smtp-source are the independent counters of the benchmarks
#   python3    interop tests deliver with Python's smtplib, an SMTP client nobody here wrote
#   python3-aiosmtpd  scripts/picky-relay.py, the picky relay of the replies test, and
#              scripts/tx-sink.py of the transactional latency benchmark (for Debian's
#              /usr/bin/python3)
#   python3-scipy  the conversions test checks the revenue intervals and Welch's test with
#              scipy (scripts/check-revenue.py, for Debian's /usr/bin/python3); the A/B
#              tests check the sequential verdict against an independent mSPRT in Python
#   python3-websocket  the preference-page test drives headless Chromium over the DevTools
#              protocol (cli/tests/cli/preferences_cdp.py, for Debian's /usr/bin/python3)
#   python3-venv the CLI tests build a venv under the target folder with packages from PyPI
#              (cli/tests/cli/support.rs, python_venv): standardwebhooks checks the webhooks'
#              signatures, openapi-spec-validator the API's OpenAPI document, prometheus-client
#              parses /metrics
#   setpriv    (util-linux) the local-access test runs volley as a second user; the
#              throwaway PostgreSQL cluster runs as the system user volley-test through it
#   postgresql the PostgreSQL store's tests start a throwaway cluster (initdb + pg_ctl from
#              /usr/lib/postgresql/*/bin; volley_testkit::postgres::TempCluster)
#   psql       (postgresql-client) the CLI test on PostgreSQL checks the analysts' view with
#              PostgreSQL's own client; setsid (util-linux) stops the tests' cluster after them
# Tests that need one of these fail loudly when it is missing; none is skipped.
set -euo pipefail
missing=()
need() { # command, package
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}
if [[ -z "${VOLLEY_CHROMIUM:-}" ]]; then
    need chromium chromium
fi
need openssl openssl
need curl curl
need postfix postfix
need python3 python3
need setpriv util-linux
need setsid util-linux
need psql postgresql-client
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || missing+=(python3-aiosmtpd)
/usr/bin/python3 -c 'import scipy' >/dev/null 2>&1 || missing+=(python3-scipy)
/usr/bin/python3 -c 'import websocket' >/dev/null 2>&1 || missing+=(python3-websocket)
if command -v dpkg-query >/dev/null 2>&1 &&
    ! dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q 'ok installed'; then
    missing+=(python3-venv)
fi
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi
echo "== installing ${missing[*]}"
if [[ "$(id -u)" != 0 ]]; then
    echo "${missing[*]} missing: run 'sudo apt-get install ${missing[*]}' (or set VOLLEY_CHROMIUM)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
