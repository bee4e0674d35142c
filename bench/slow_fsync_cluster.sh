#!/bin/bash
# Start a scratch PostgreSQL server whose fsync/fdatasync take SLOW_FSYNC_MS (default 5) ms longer, as on a
# slow disk, for `bench/ledger.py --server`. Usage (as root, which runs the server as the postgres user):
#
#     bench/slow_fsync_cluster.sh start      # prints the --server URL (port 5499)
#     .venv/bin/python bench/ledger.py --server postgres://postgres@127.0.0.1:5499 ...
#     bench/slow_fsync_cluster.sh stop       # stops it and removes its files
set -euo pipefail
dir="${TMPDIR:-/tmp}/tanhui-slow-fsync"
port=5499
bin="${PG_BINDIR:-$(pg_config --bindir)}"  # the server's initdb and pg_ctl
case "${1:-}" in
  start)
    rm -rf "$dir" && mkdir -p "$dir" && chown postgres "$dir"
    gcc -shared -fPIC -O2 -o "$dir/slow_fsync.so" "$(dirname "$0")/slow_fsync.c" -ldl
    su postgres -c "$bin/initdb -D $dir/data -A trust -U postgres >/dev/null"
    su postgres -c "SLOW_FSYNC_MS=${SLOW_FSYNC_MS:-5} LD_PRELOAD=$dir/slow_fsync.so $bin/pg_ctl -D $dir/data \
      -o '-p $port -k $dir -c listen_addresses=127.0.0.1' -l $dir/log -w start >/dev/null"
    echo "postgres://postgres@127.0.0.1:$port"
    ;;
  stop)
    su postgres -c "$bin/pg_ctl -D $dir/data -m fast stop >/dev/null" || true
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
