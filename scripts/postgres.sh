#!/usr/bin/env bash
# A throwaway PostgreSQL 15 + PostGIS cluster for the tests of the PostGIS workspace backend.
#   scripts/postgres.sh          start it when needed (idempotent) and print its URL
#   scripts/postgres.sh stop     stop it
#   scripts/postgres.sh status   exit 0 when it is running
# - installs the Debian packages postgresql and postgresql-15-postgis-3 when missing (as root)
# - the cluster lives in <repo>/.pg (git-ignored): data/, run/ (unix socket), postgres.log
# - listens on 127.0.0.1:${GRIDS_PG_PORT:-54329} only, trust authentication (test data only, never real data)
# - database grids_test with the postgis extension
# Only the URL goes to stdout, so `url=$(scripts/postgres.sh)` works; progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PGDIR="$ROOT/.pg"
DATA="$PGDIR/data"
SOCK="$PGDIR/run"
LOG="$PGDIR/postgres.log"
BIN=/usr/lib/postgresql/15/bin
DB=grids_test
# the port: GRIDS_PG_PORT, else the one this cluster used before (.pg/port), else the first free one from 54329
# (another checkout's test cluster may hold 54329 on the same machine)
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -n "${GRIDS_PG_PORT:-}" ]; then
  PORT=$GRIDS_PG_PORT
elif [ -f "$PGDIR/port" ]; then
  PORT=$(cat "$PGDIR/port")
else
  PORT=54329
  while ! port_free "$PORT" && [ "$PORT" -lt 54429 ]; do PORT=$((PORT + 1)); done
fi
URL="postgresql://postgres@127.0.0.1:$PORT/$DB"
cmd=${1:-start}

say() { echo "[postgres] $*" >&2; }

# run a command as the owner of the cluster (initdb and postgres refuse to run as root)
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

running() { [ -f "$DATA/PG_VERSION" ] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

case "$cmd" in
  stop)
    if running; then
      as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2 9>&-
    else
      say "not running"
    fi
    exit 0
    ;;
  status)
    running && { echo "postgresql://postgres@127.0.0.1:$(sed -n 4p "$DATA/postmaster.pid")/$DB"; exit 0; }
    exit 1
    ;;
  start | url) ;;
  *)
    echo "usage: scripts/postgres.sh [start|stop|status]" >&2
    exit 64
    ;;
esac

mkdir -p "$PGDIR"
# one starter at a time (pytest-xdist workers may all call this script at once)
exec 9>"$PGDIR/.lock"
flock 9

if running; then
  PORT=$(sed -n 4p "$DATA/postmaster.pid")  # the port the running cluster really listens on
  echo "postgresql://postgres@127.0.0.1:$PORT/$DB"
  exit 0
fi
if ! port_free "$PORT" && [ -z "${GRIDS_PG_PORT:-}" ]; then
  while ! port_free "$PORT" && [ "$PORT" -lt 54429 ]; do PORT=$((PORT + 1)); done
  URL="postgresql://postgres@127.0.0.1:$PORT/$DB"
fi

missing=()
for p in postgresql postgresql-15-postgis-3; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "apt-get install ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "缺少系统软件包 / missing system packages: ${missing[*]} (run as root or: sudo apt-get install ${missing[*]})"
    exit 1
  fi
fi

if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$PGDIR"
fi
if [ ! -f "$DATA/PG_VERSION" ]; then
  say "initdb $DATA"
  rm -rf "$DATA"
  as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
fi
as_owner mkdir -p "$SOCK"

say "start on 127.0.0.1:$PORT"
echo "$PORT" > "$PGDIR/port"
# a test cluster: durability traded for speed (fsync off), small memory footprint
as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $SOCK -c fsync=off -c synchronous_commit=off \
-c full_page_writes=off -c shared_buffers=64MB -c max_connections=100" start >/dev/null 9>&-

psql_() { PGOPTIONS="-c client_min_messages=warning" "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"; }
if [ -z "$(psql_ -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
  psql_ -d postgres -c "CREATE DATABASE $DB" >/dev/null
fi
psql_ -d "$DB" -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
echo "$URL"
