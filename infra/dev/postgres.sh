# The project's own Postgres cluster: own data folder, own loopback port, run as the `postgres` user
# (the server refuses root). Superuser and database are both `indigo`, password auth on loopback only.

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

# The data folder must be reachable by the postgres user; a checkout under a private home is not.
pg_data_dir() {
  local dir=$INDIGO_STATE_DIR/postgres
  mkdir -p "$dir"
  if runuser -u postgres -- test -x "$dir"; then echo "$dir"; return; fi
  echo "/var/tmp/indigo-postgres-$(printf %s "$INDIGO_STATE_DIR" | md5sum | cut -c1-10)"
}

pg_running() { runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$(pg_data_dir)/data" status >/dev/null 2>&1; }

pg_init() {
  local dir=$1 bin
  bin=$(pg_bin)
  mkdir -p "$dir" && chown postgres:postgres "$dir" && chmod 700 "$dir"
  printf 'indigo\n' >"$dir/pwfile" && chown postgres "$dir/pwfile"
  say "initialising the Postgres cluster in $dir/data"
  # Collation C: text compares by memcmp, the order C.UTF-8 gives (code points) without a strcoll call per
  # comparison, which Postgres makes for any collation it does not know to be C (packages/db/README.md).
  runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U indigo --pwfile="$dir/pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 --lc-collate=C \
    >"$dir/initdb.log" 2>&1 ||
    die "initdb failed: see $dir/initdb.log"
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_buffers = 256MB
synchronous_commit = on
max_connections = 200
CONF
}

pg_start() {
  local dir bin
  dir=$(pg_data_dir)
  bin=$(pg_bin)
  [ -n "$bin" ] || die "postgresql is not installed"
  [ -f "$dir/data/PG_VERSION" ] || pg_init "$dir"
  if ! pg_running; then
    ensure_port_free "$INDIGO_PG_PORT" postgres
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $INDIGO_PG_PORT" start >/dev/null || die "postgres failed to start: see $dir/server.log"
  fi
  if ! runuser -u postgres -- psql -h "$dir" -p "$INDIGO_PG_PORT" -U indigo -d postgres -tAc \
    "select 1 from pg_database where datname='indigo'" | grep -q 1; then
    runuser -u postgres -- psql -h "$dir" -p "$INDIGO_PG_PORT" -U indigo -d postgres -qc "create database indigo" ||
      die "failed to create database indigo"
  fi
}

# Test sandboxes (databases t_*, see packages/projector/src/testing/sandbox.ts) are dropped by the test that
# made them; a killed run leaves its own behind, so each test or bench run starts by dropping what is left.
pg_drop_sandboxes() {
  local dir name
  dir=$(pg_data_dir)
  for name in $(runuser -u postgres -- psql -h "$dir" -p "$INDIGO_PG_PORT" -U indigo -d postgres -tAc \
    "select datname from pg_database where datname like 't\\_%'"); do
    runuser -u postgres -- psql -h "$dir" -p "$INDIGO_PG_PORT" -U indigo -d postgres -qc \
      "drop database if exists \"$name\" with (force)" >/dev/null || say "could not drop stale test database $name"
  done
}

pg_migrate() {
  (cd "$ROOT" && bun packages/db/src/migrate.ts) || die "database migrations failed"
}

pg_stop() {
  local dir
  dir=$(pg_data_dir)
  pg_running || return 0
  runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || die "postgres failed to stop"
}

pg_pid() { head -n 1 "$(pg_data_dir)/data/postmaster.pid" 2>/dev/null || true; }
