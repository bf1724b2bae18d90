#!/usr/bin/env bash
# A private Postfix (Debian's package) on a loopback port that accepts mail from 127.0.0.0/8
# and parks every message in its hold queue (nothing is ever delivered onwards), for interop
# tests and benchmarks against a real MTA. Runs in the foreground until killed (SIGTERM stops
# Postfix cleanly); its log goes to standard output.
#
#   scripts/postfix-relay.sh DIR PORT [--no-chunking] [--tls CERT KEY]
#
# DIR holds the instance (conf/, queue/, data/); it must not be under /tmp (Postfix refuses a
# queue in a world-writable, sticky folder's tree) and must be new or empty. The messages
# received are the files under DIR/queue/hold; `postcat -c DIR/conf -q ID` prints one.
# Stops by itself after LIFETIME seconds (default 900).
# Needs root (Postfix's master starts as root and drops to the postfix user), like CI.
set -euo pipefail
dir=${1:?usage: postfix-relay.sh DIR PORT [--no-chunking] [--tls CERT KEY]}
port=${2:?usage: postfix-relay.sh DIR PORT [--no-chunking] [--tls CERT KEY]}
shift 2
discard=""
cert=""
key=""
while [ $# -gt 0 ]; do
    case "$1" in
        --no-chunking) discard="chunking"; shift ;;
        --tls) cert=$2; key=$3; shift 3 ;;
        *) echo "postfix-relay.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
for tool in postfix postconf; do
    command -v "$tool" >/dev/null || { echo "postfix-relay.sh: $tool is missing: apt-get install postfix" >&2; exit 2; }
done
daemons=$(postconf -h daemon_directory 2>/dev/null || echo /usr/lib/postfix/sbin)
mkdir -p "$dir/conf" "$dir/queue" "$dir/data"
dir=$(cd "$dir" && pwd)
chmod 755 "$dir"
chown postfix "$dir/data"

cat >"$dir/conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
daemon_directory = $daemons
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = relay.test
mydestination =
mynetworks = 127.0.0.0/8
smtpd_client_restrictions = check_client_access static:HOLD
smtpd_relay_restrictions = permit_mynetworks, reject
default_transport = discard
relay_transport = discard
local_transport = discard
maillog_file = /dev/stdout
message_size_limit = 52428800
smtpd_discard_ehlo_keywords = $discard
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
EOF
if [ -n "$cert" ]; then
    cat >>"$dir/conf/main.cf" <<EOF
smtpd_tls_cert_file = $cert
smtpd_tls_key_file = $key
smtpd_tls_security_level = may
EOF
fi

cat >"$dir/conf/master.cf" <<EOF
127.0.0.1:$port inet n - n - 100 smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF

# start-fg keeps master in the foreground; stop it cleanly when told to, or after LIFETIME
# seconds (default 900) so that a test killed before it could stop us leaves nothing behind.
trap 'postfix -c "$dir/conf" stop >/dev/null 2>&1 || true' TERM INT
postfix -c "$dir/conf" start-fg &
master=$!
(sleep "${LIFETIME:-900}" && kill -TERM $$ 2>/dev/null) &
watchdog=$!
wait "$master" || true
wait "$master" 2>/dev/null || true
kill "$watchdog" 2>/dev/null || true
