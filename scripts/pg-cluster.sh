# A throwaway PostgreSQL cluster for the scripts (`STORE=postgres`), sourced, not run:
#
#   . scripts/pg-cluster.sh
#   pg_store_url            # sets STORE_URL (no password) and exports PGPASSWORD
#   ...                     # volley send campaign.toml --store "$STORE_URL"
#   pg_fresh_database NAME  # STORE_URL := a new empty database NAME (own cluster only)
#   pg_memory_start FILE    # sample the cluster's memory (summed PSS) until pg_memory_stop;
#   pg_memory_stop          #   prints the peak in MB (PSS counts shared buffers once)
#   pg_database_size        # the database's size on disk (pg_database_size), in MB
#   pg_cluster_stop         # (also run it from the script's EXIT trap)
#
# With PGHOST set, the database of the PG* environment is used instead (PGHOST, PGPORT,
# PGUSER, PGDATABASE, PGPASSWORD or ~/.pgpass): nothing is started, and nothing is stopped.
# Otherwise initdb + pg_ctl from Debian's postgresql package start a cluster in a temp folder
# of its own (the cluster's user must reach it; a script's 0700 work folder is root's) on a
# free port of 127.0.0.1 (as the system user volley-test when run as root: PostgreSQL refuses
# root), and pg_cluster_stop stops it (-m immediate) and removes it.

pg_dir=""
pg_as=()

pg_bin() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        echo "STORE=postgres: PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin:" \
            "apt-get install -y postgresql (or set PGHOST to use a running server)" >&2
        return 1
    fi
    echo "$bin"
}

pg_store_url() {
    if [ -n "${PGHOST:-}" ]; then
        STORE_URL="postgresql://${PGUSER:-$USER}@${PGHOST}:${PGPORT:-5432}/${PGDATABASE:-${PGUSER:-$USER}}"
        export STORE_URL
        return 0
    fi
    local bin port pw
    bin=$(pg_bin) || return 1
    pg_dir=$(mktemp -d /tmp/volley-pg.XXXXXX)
    if [ "$(id -u)" = 0 ]; then
        id volley-test >/dev/null 2>&1 ||
            useradd --system --no-create-home --shell /usr/sbin/nologin volley-test
        chown volley-test: "$pg_dir"
        pg_as=(setpriv --reuid="$(id -u volley-test)" --regid="$(id -g volley-test)" --clear-groups --)
    fi
    pw=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
    printf '%s' "$pw" >"$pg_dir/pwfile"
    chmod 600 "$pg_dir/pwfile"
    if [ ${#pg_as[@]} -gt 0 ]; then chown volley-test: "$pg_dir/pwfile"; fi
    "${pg_as[@]}" "$bin/initdb" -D "$pg_dir/data" -U volley --pwfile="$pg_dir/pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C --no-sync >"$pg_dir/initdb.log" 2>&1 || {
        echo "initdb failed:"; tail "$pg_dir/initdb.log"; return 1; } >&2
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${pg_as[@]}" "$bin/pg_ctl" start -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $pg_dir -c max_connections=60 -c shared_buffers=128MB" \
        >/dev/null || { echo "pg_ctl start failed:"; tail "$pg_dir/server.log"; return 1; } >&2
    "${pg_as[@]}" "$bin/createdb" -h "$pg_dir" -p "$port" -U volley volley
    export PGPASSWORD="$pw"
    STORE_URL="postgresql://volley@127.0.0.1:$port/volley"
    export STORE_URL
}

pg_fresh_database() {
    [ -n "$pg_dir" ] || { echo "pg_fresh_database: not on a cluster of our own (PGHOST set)" >&2; return 1; }
    local bin port
    bin=$(pg_bin) || return 1
    port=${STORE_URL##*:}; port=${port%%/*}
    "${pg_as[@]}" "$bin/createdb" -h "$pg_dir" -p "$port" -U volley "$1"
    STORE_URL="postgresql://volley@127.0.0.1:$port/$1"
}

# The cluster's memory now: the PSS (KiB) of the postmaster and its children, summed.
pg_pss_kb() {
    local main total=0 pid pss
    main=$(head -1 "$pg_dir/data/postmaster.pid" 2>/dev/null) || { echo 0; return; }
    for pid in "$main" $(pgrep -P "$main"); do
        pss=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || true)
        total=$((total + ${pss:-0}))
    done
    echo "$total"
}

pg_memory_start() {
    pg_memory_file=$1
    if [ -n "${pg_memory_pid:-}" ]; then kill "$pg_memory_pid" 2>/dev/null || true; fi
    echo 0 >"$pg_memory_file"
    [ -n "$pg_dir" ] || return 0
    (
        peak=0
        while :; do
            now=$(pg_pss_kb)
            if [ "$now" -gt "$peak" ]; then peak=$now; echo "$peak" >"$pg_memory_file"; fi
            sleep 0.2
        done
    ) &
    pg_memory_pid=$!
}

pg_memory_stop() {
    if [ -n "${pg_memory_pid:-}" ]; then
        kill "$pg_memory_pid" 2>/dev/null || true
        wait "$pg_memory_pid" 2>/dev/null || true
    fi
    awk '{printf "%.0f", $1 / 1024}' "$pg_memory_file"
}

pg_database_size() {
    psql -X -At "$STORE_URL" -c "SELECT round(pg_database_size(current_database()) / 1e6, 1)"
}

pg_cluster_stop() {
    # (Under set -e, a failing `a && b` as a function's statement would end the trap here.)
    if [ -n "${pg_memory_pid:-}" ]; then kill "$pg_memory_pid" 2>/dev/null || true; fi
    [ -n "$pg_dir" ] || return 0
    local bin
    bin=$(pg_bin) || return 0
    "${pg_as[@]}" "$bin/pg_ctl" stop -D "$pg_dir/data" -m immediate -w -t 30 >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
    pg_dir=""
}
