#!/bin/bash
# CI STAND-IN entrypoint for the official postgres image (see ../README.md).
# Honours POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required),
# POSTGRES_DB (default $POSTGRES_USER) and PGDATA; on an empty data directory
# it runs initdb, then /docker-entrypoint-initdb.d/*.sql and *.sh against a
# temporary server that listens on the Unix socket only (so that a TCP health
# check turns healthy only after the init scripts), then starts PostgreSQL.
set -Eeuo pipefail

if [ "${1:-postgres}" != postgres ]; then exec "$@"; fi
[ "$#" -gt 0 ] && shift

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${PGDATA:=/var/lib/postgresql/data}"
export POSTGRES_USER POSTGRES_DB PGDATA

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "stand-in postgres: POSTGRES_PASSWORD must be set" >&2
        exit 1
    fi
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb -D "$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8
    rm -f "$pwfile"
    printf '\nhost all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=/var/run/postgresql" start
    psql_init=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER")
    if [ "$POSTGRES_DB" != postgres ]; then
        "${psql_init[@]}" --dbname postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sql) echo "stand-in postgres: running $f"; "${psql_init[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
            *.sh) echo "stand-in postgres: running $f"; . "$f" ;;
            *) ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop
    echo "stand-in postgres: init process complete"
fi

exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/var/run/postgresql "$@"
