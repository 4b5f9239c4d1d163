#!/usr/bin/env bash
# A throw-away PostgreSQL server for the database tests: private port, unix socket in a temp dir.
#   eval "$(bash .ci/postgres.sh start)"   # prints export lines (CUSTSCORE_TEST_POSTGRES_URL, PGDIR_CUSTSCORE)
#   bash .ci/postgres.sh stop              # stops the server and removes its folder
# Installs the Debian package `postgresql` when no server binaries are found and we are root.
# PostgreSQL refuses to run as root: as root the server runs as the `postgres` user (created by
# the package). Env: CUSTSCORE_PG_PORT (default: a free port).
set -euo pipefail
PASSWORD=custscore-test-secret  # a test server's only: reachable from this machine only

find_bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

as_owner() {  # run a command as the unprivileged server owner
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  local bindir port dir
  if ! bindir=$(find_bindir); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) >&2
      bindir=$(find_bindir)
    else
      echo "postgres.sh: no PostgreSQL server binaries (install the Debian package postgresql)" >&2
      return 1
    fi
  fi
  port=${CUSTSCORE_PG_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
  dir=$(mktemp -d /tmp/custscore-pg.XXXXXX)
  chmod 755 "$dir"
  mkdir "$dir/data" "$dir/socket"
  [ "$(id -u)" = 0 ] && chown postgres "$dir/data" "$dir/socket"
  as_owner "$bindir/initdb" -D "$dir/data" -U custscore --auth-local=trust --auth-host=scram-sha-256 --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 \
    -o "-p $port -k $dir/socket -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" start >&2 \
    || { cat "$dir/data/server.log" >&2; return 1; }
  as_owner "$bindir/createdb" -h "$dir/socket" -p "$port" -U custscore custscore >&2
  # TCP logins need the password (so the tests exercise credentials); the socket is trusted.
  as_owner "$bindir/psql" -q -h "$dir/socket" -p "$port" -U custscore -d custscore \
    -c "ALTER USER custscore PASSWORD '$PASSWORD'" >&2
  echo "export PGDIR_CUSTSCORE=$dir"
  echo "export CUSTSCORE_TEST_POSTGRES_URL=postgresql://custscore:$PASSWORD@127.0.0.1:$port/custscore"
}

stop() {
  local bindir dir=${1:-${PGDIR_CUSTSCORE:-}}
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  bindir=$(find_bindir) || return 0
  as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: postgres.sh start|stop [DIR]" >&2; exit 2 ;;
esac
