# tests/lib/cluster.sh: a throwaway PostgreSQL cluster for tests (sourced).
#
# Unix socket only (listen_addresses=''), in its own directory, trust auth.
# PostgreSQL refuses to run as root; as root the server runs as `postgres`.
#   cluster_init DIR    initdb into DIR/data (socket in DIR)
#   cluster_start DIR   start it, then export PGHOST/PGPORT/PGUSER
#   cluster_stop DIR [MODE]   pg_ctl stop -m MODE (fast by default)

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cluster_init() {
  local dir=$1
  mkdir -p "$dir"
  chmod 755 "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync \
    -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
}

cluster_start() {
  local dir=$1
  # fsync off: tests kill processes, never the machine; a process crash
  # (even -m immediate) keeps everything in the OS page cache.
  # track_commit_timestamp: tests/system/bench_smoke.sh runs the benchmark,
  # which reads commit times, on this cluster.
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=off -c full_page_writes=off -c max_connections=200 -c log_min_messages=warning -c track_commit_timestamp=on" \
    start >/dev/null || { tail -20 "$dir/server.log" >&2; return 1; }
  export PGHOST=$dir PGPORT=5432 PGUSER=postgres
}

cluster_stop() {
  local dir=$1 mode=${2:-fast}
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null 2>&1 || true
}
