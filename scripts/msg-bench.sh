#!/usr/bin/env bash
# The messaging benchmark on SQLite and on a throwaway PostgreSQL cluster
# (initdb/pg_ctl; run as the `postgres` user when we are root). Arguments
# go to msg-bench (e.g. --devices 1000 --rate 500 --seconds 15).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/samtale-target}"
cargo build --quiet --release -p samtale -p samtale-messaging --bin samtale --bin msg-bench

PG_BIN="$(dirname "$(command -v pg_ctl || ls /usr/lib/postgresql/*/bin/pg_ctl | tail -1)")"
dir="$(mktemp -d /tmp/samtale-pg-bench-XXXX)"
port=$((20000 + RANDOM % 20000))
as_pg=()
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; as_pg=(runuser -u postgres --); fi
"${as_pg[@]}" "$PG_BIN/initdb" -D "$dir/data" -U samtale --auth=trust >/dev/null
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=127.0.0.1" -w start >/dev/null
trap '"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null; rm -rf "$dir"' EXIT

ulimit -n 20000 2>/dev/null || true
"$CARGO_TARGET_DIR/release/msg-bench" --postgres-url "postgres://samtale@127.0.0.1:$port/postgres" "$@"
