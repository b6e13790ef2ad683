#!/usr/bin/env bash
# Starts a private PostgreSQL cluster for the tests: initdb in a temporary
# directory, as a non-root user, listening on 127.0.0.1 only on a free
# port, no Unix socket outside the cluster's own directory. Prints the DSN
# (POSTFACH_TEST_PG_DSN) on stdout and nothing else; the cluster's
# directory and log are named on stderr. Stop it with
#   pg_ctl -D DIR stop -m immediate
# (the directory is printed as PGDATA=DIR on stderr).
#
# Usage: DSN="$(.ci/pg-start.sh)"   (run as root, the cluster runs as the
# user "postgres" or $PG_USER; as another user, it runs as that user).
set -euo pipefail

bindir="${PG_BINDIR:-}"
if [ -z "$bindir" ]; then
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ]; then bindir="$d"; fi
  done
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "pg-start: no initdb found (apt-get install postgresql, or set PG_BINDIR)" >&2
  exit 1
fi

runas=()
owner="$(id -un)"
if [ "$(id -u)" = 0 ]; then
  owner="${PG_USER:-postgres}"
  runas=(runuser -u "$owner" --)
fi

dir="$(mktemp -d /tmp/postfach-pg.XXXXXX)"
chown "$owner" "$dir"
chmod 700 "$dir"
data="$dir/data"

# A free loopback port: let the kernel pick one, then use it. Another
# process could take it in between; pg_ctl then fails and we try again.
freeport() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pw="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
printf '%s\n' "$pw" > "$dir/pwfile"
chown "$owner" "$dir/pwfile"
"${runas[@]}" "$bindir/initdb" -D "$data" -U postfach --pwfile="$dir/pwfile" \
  -A scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
  cat "$dir/initdb.log" >&2
  exit 1
}
rm -f "$dir/pwfile"

# Settings for tests: many short-lived test stores, each with a few
# connections; durability as in production (fsync, synchronous_commit on).
cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 400
shared_buffers = 64MB
fsync = on
synchronous_commit = on
log_min_messages = warning
CONF

for attempt in 1 2 3 4 5; do
  port="$(freeport)"
  if "${runas[@]}" "$bindir/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 \
      -o "-p $port" start >/dev/null 2>&1; then
    cat >"$dir/stop" <<STOP
#!/bin/sh
${runas[*]} "$bindir/pg_ctl" -D "$data" stop -m immediate >/dev/null 2>&1
rm -rf "$dir"
STOP
    chmod 755 "$dir/stop"
    echo "pg-start: PGDATA=$data log=$dir/postgres.log port=$port" >&2
    echo "pg-start: stop=$dir/stop" >&2
    echo "postgres://postfach:$pw@127.0.0.1:$port/postgres?sslmode=disable"
    exit 0
  fi
done
echo "pg-start: postgres did not start; see $dir/postgres.log" >&2
cat "$dir/postgres.log" >&2 || true
exit 1
