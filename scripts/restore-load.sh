#!/usr/bin/env bash
# Changelog restore benchmark (numbers go to BENCHMARKS.md and the README's sizing):
# AGENTS agents, EVENTS_PER_AGENT events each, go through one `agentwatch run` instance,
# which writes every agent's state to the changelog topic as it commits. Then a
# replacement with an empty state directory joins the same group, takes both partitions
# over and restores them from the changelog; the script reports how long that took.
#
#   scripts/restore-load.sh [AGENTS=100000] [EVENTS_PER_AGENT=3]
set -euo pipefail
cd "$(dirname "$0")/.."
agents=${1:-100000}
per_agent=${2:-3}
events=$((agents * per_agent))
work="$(mktemp -d)"
export AGENTWATCH_RUN="$work/broker"
# SQLite storage (the test broker's default), not the memory engine kafka-load.sh uses:
# the memory engine loses records of a restore's long read (about 1 in 1,000 here), which
# the exact check below catches. Set AGENTWATCH_BROKER_STORAGE to try another engine.
export AGENTWATCH_BROKER_STORAGE="${AGENTWATCH_BROKER_STORAGE:-sqlite://tansu.db}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
brokers="127.0.0.1:$port"
replacement_pid=""
cleanup() {
  [ -n "$replacement_pid" ] && kill "$replacement_pid" 2>/dev/null || true
  deploy/local-broker.sh stop
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --quiet --bin agentwatch
bin="${CARGO_TARGET_DIR:-target}/release/agentwatch"
deploy/local-broker.sh start "$port" >/dev/null
"$(deploy/local-broker.sh path)" topic create --broker "tcp://$brokers" --partitions 2 restore-events >/dev/null

config() { # state-dir
  cat <<TOML
[kafka]
brokers = "$brokers"
group_id = "restore"
create_topics = true
[kafka.topics]
events = "restore-events"
[state]
dir = "$1"
[metrics]
listen = "127.0.0.1:0"
[log]
progress_interval = "5s"
TOML
}

echo "== producing $events events ($agents agents)" >&2
"$bin" simulate --agents "$agents" --flat-events "$events" --to-kafka "$brokers" --topic restore-events 2>/dev/null
echo "== first instance: processes them and writes the changelog" >&2
config "$work/state-first" >"$work/first.toml"
"$bin" run --config "$work/first.toml" --max-events "$events" 2>"$work/first.log"
tail -1 "$work/first.log"
echo "== replacement with an empty state directory" >&2
config "$work/state-replacement" >"$work/replacement.toml"
"$bin" run --config "$work/replacement.toml" 2>"$work/replacement.log" &
replacement_pid=$!
for _ in $(seq 1 6000); do
  [ "$(grep -c 'partition restored from the changelog' "$work/replacement.log" || true)" -ge 2 ] && break
  kill -0 "$replacement_pid" 2>/dev/null || { cat "$work/replacement.log" >&2; exit 1; }
  sleep 0.1
done
kill -TERM "$replacement_pid"
wait "$replacement_pid" || true
replacement_pid=""
grep 'partition restored from the changelog' "$work/replacement.log" >&2 || {
  echo "restore-load.sh: the replacement restored nothing" >&2
  cat "$work/replacement.log" >&2
  exit 1
}
# Agents that got at least one event (the flat load picks agents at random): the same
# seed written to stdout instead of Kafka.
with_events=$("$bin" simulate --agents "$agents" --flat-events "$events" --output - 2>/dev/null \
  | python3 -c 'import json, sys; print(len({json.loads(l)["agent_id"] for l in sys.stdin}))')
python3 - "$work/replacement.log" "$with_events" <<'PY'
import re, sys
lines = [l for l in open(sys.argv[1]) if 'partition restored from the changelog' in l]
agents = sum(int(re.search(r'agents=(\d+)', l).group(1)) for l in lines)
seconds = sum(int(re.search(r'elapsed_ms=(\d+)', l).group(1)) for l in lines) / 1000
print(f"restored {agents} agents in {seconds:.2f} s over {len(lines)} partitions "
      f"({agents / max(seconds, 1e-9):.0f} agents/s; {seconds * 1e6 / max(agents, 1):.1f} s per million agents)")
if agents != int(sys.argv[2]):
    sys.exit(f"restore-load.sh: {sys.argv[2]} agents had events, but {agents} were restored")
PY
