#!/usr/bin/env bash
# A private PostgreSQL for tests and local runs: its own cluster, loopback only. The cluster lives outside the
# checkout (in /var/tmp, one per checkout) because the postgres user must reach it even when the checkout sits
# in a folder only root can enter.
#   scripts/postgres.sh start   init (once) and start; prints the database URL
#   scripts/postgres.sh stop
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
PGROOT="${CALLCENTER_PG_DIR:-/var/tmp/callcenter-pg-$(printf '%s' "$HERE" | md5sum | cut -c1-8)}"
PGDATA="$PGROOT/data"
SOCKDIR="$PGROOT/run"
PORT="${CALLCENTER_PG_PORT:-54329}"
DBNAME="${CALLCENTER_PG_DB:-callcenter_test}"
BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "${1:-start}" in
  start)
    mkdir -p "$PGDATA" "$SOCKDIR"
    [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$PGROOT"
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
      as_pg "$BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    if ! as_pg "$BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
      as_pg "$BIN/pg_ctl" -D "$PGDATA" -l "$PGROOT/server.log" -w \
        -o "-h 127.0.0.1 -p $PORT -k $SOCKDIR" start >/dev/null
    fi
    if ! as_pg "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DBNAME'" | grep -q 1; then
      as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DBNAME"
    fi
    echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/$DBNAME"
    ;;
  stop)
    as_pg "$BIN/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
