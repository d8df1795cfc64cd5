#!/usr/bin/env bash
# A Kafka-protocol broker on 127.0.0.1 for trying agentwatch without a cluster, and for
# tests: Tansu (crates.io `tansu` 0.6.0, SQLite storage). The binary is built once with
# cargo and cached, so later runs start instantly. Records persist in the run directory
# across restarts until `reset`.
#
#   deploy/local-broker.sh install          build and cache the broker (about 15 min once)
#   deploy/local-broker.sh start [PORT]     start it on 127.0.0.1:PORT (default 9092)
#   deploy/local-broker.sh stop             stop the broker this script started
#   deploy/local-broker.sh reset            stop it and delete its records
#   deploy/local-broker.sh path             print the cached binary's path
#   deploy/local-broker.sh index DB         index the record headers of a running broker's
#                                           SQLite file DB (start does this itself)
#
# Why SQLite and not memory storage: Tansu 0.6's memory engine answers a fetch that
# starts inside a record batch with the next batch, so a consumer resuming from a
# committed offset silently skips records. (The SQLite engine's own limit: it does not
# serve records larger than about 5 MB, and it is slow: about 18k records/s here.)
# AGENTWATCH_BROKER_STORAGE=memory://tansu/ selects the memory engine (load tests).
# Tansu 0.6's SQLite schema has no index on record headers, so every record fetched
# scans every header stored: with the rekey router's two headers per record, a few
# thousand records stalled the broker. `index` adds the index once the broker has
# created its tables.
set -euo pipefail

TANSU_VERSION=0.6.0
tools="${AGENTWATCH_TOOLS:-$HOME/.cache/agentwatch/tools}"
binary="$tools/bin/tansu"
run_dir="${AGENTWATCH_RUN:-$tools/run}"

install() {
  if [ -x "$binary" ] && "$binary" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    return 0
  fi
  echo "local-broker: building tansu $TANSU_VERSION into $tools (once; about 15 minutes on 2 cores)" >&2
  # Its own build directory (not the caller's CARGO_TARGET_DIR, whose lock a parallel
  # agentwatch build holds), removed afterwards: only the binary is kept.
  CARGO_TARGET_DIR="$tools/build" cargo install --locked tansu --version "$TANSU_VERSION" \
    --features dynostore,libsql --root "$tools" >&2
  rm -rf "$tools/build"
}

wait_for_port() {
  local port=$1
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "local-broker: nothing listens on 127.0.0.1:$port after 10 s; see $run_dir/tansu.log" >&2
  return 1
}

start() {
  local port=${1:-9092}
  install
  mkdir -p "$run_dir"
  if [ -f "$run_dir/tansu.pid" ] && kill -0 "$(cat "$run_dir/tansu.pid")" 2>/dev/null; then
    echo "local-broker: already running (pid $(cat "$run_dir/tansu.pid"))" >&2
    return 0
  fi
  # Tansu resolves the SQLite path relative to its working directory.
  (cd "$run_dir" && exec "$binary" broker \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine "${AGENTWATCH_BROKER_STORAGE:-sqlite://tansu.db}" >"$run_dir/tansu.log" 2>&1) &
  echo $! >"$run_dir/tansu.pid"
  wait_for_port "$port"
  case "${AGENTWATCH_BROKER_STORAGE:-sqlite://tansu.db}" in
    sqlite://tansu.db) index "$run_dir/tansu.db" ;;
  esac
  echo "127.0.0.1:$port"
}

index() {
  local db=$1
  python3 - "$db" <<'PY'
import sqlite3, sys, time
deadline = time.time() + 10
while True:
    try:
        db = sqlite3.connect(sys.argv[1], timeout=10)
        db.execute("create index if not exists header_record on header (topition, offset_id)")
        db.commit()
        break
    except sqlite3.OperationalError as error:
        # the broker creates its tables just after it starts listening
        if time.time() > deadline:
            sys.exit(f"local-broker: cannot index {sys.argv[1]}: {error}")
        time.sleep(0.05)
PY
}

stop() {
  if [ -f "$run_dir/tansu.pid" ]; then
    kill "$(cat "$run_dir/tansu.pid")" 2>/dev/null || true
    rm -f "$run_dir/tansu.pid"
  fi
}

case "${1:-}" in
  install) install ;;
  start) start "${2:-9092}" ;;
  stop) stop ;;
  reset) stop && rm -f "$run_dir"/tansu.db* ;;
  path) install && echo "$binary" ;;
  index) index "${2:?usage: local-broker.sh index DB}" ;;
  *) sed -n '2,22p' "$0" >&2; exit 2 ;;
esac
