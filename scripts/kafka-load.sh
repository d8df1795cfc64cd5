#!/usr/bin/env bash
# End-to-end load benchmark on the local Tansu broker (numbers go to BENCHMARKS.md):
#  1. throughput: RECORDS flat-load events across 10k agents are produced to a topic, then
#     read by a bare rdkafka consumer (examples/raw_consume.rs, same client settings) and
#     by `agentwatch run --max-events`, each timed from its first record to its last;
#  2. latency: the service runs while `simulate --to-kafka --rate 20000` streams
#     LATENCY_RECORDS events; the service reports record-timestamp-to-decision latency
#     percentiles from an HDR histogram.
#
#   scripts/kafka-load.sh [RECORDS=2000000] [LATENCY_RECORDS=600000]
#
# QUIX=1 also runs the same per-agent baseline job on Quix Streams against the same
# topic (scripts/quix_baseline.py; installs quixstreams into a virtualenv under
# ~/.cache/agentwatch the first time): the peer comparison.
#
# LATENCY_RECORDS=0 measures throughput only (scripts/bench.sh does, for its guard).
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-2000000}
latency_records=${2:-600000}
work="$(mktemp -d)"
export AGENTWATCH_RUN="$work/broker"
# Memory storage: the SQLite engine tops out near 18k records/s on this machine and would
# measure the broker, not agentwatch. Every consumer here starts at offset 0 in a fresh
# group, so the memory engine's flaw (skipping records when resuming mid-batch) cannot
# occur; the run checks the counts anyway.
export AGENTWATCH_BROKER_STORAGE="memory://tansu/"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
metrics_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
brokers="127.0.0.1:$port"
cleanup() { deploy/local-broker.sh stop; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release --quiet --bin agentwatch --example raw_consume
target="${CARGO_TARGET_DIR:-target}/release"
bin="$target/agentwatch"
deploy/local-broker.sh start "$port" >/dev/null
tansu="$(deploy/local-broker.sh path)"
# retention.ms is set explicitly because Tansu describes only the configs a topic was
# created with, and Quix Streams (QUIX=1) reads it to configure its changelog topics.
"$tansu" topic create --broker "tcp://$brokers" --partitions 2 --config retention.ms=-1 load-events >/dev/null
"$tansu" topic create --broker "tcp://$brokers" --partitions 2 latency-events >/dev/null
"$tansu" topic create --broker "tcp://$brokers" --partitions 2 raw-latency-events >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

config() { # topic group state [metrics port]
  cat <<TOML
[kafka]
brokers = "$brokers"
group_id = "$2"
create_topics = true
[kafka.topics]
events = "$1"
[state]
dir = "$3"

[metrics]
listen = "127.0.0.1:${4:-0}"
[log]
progress_interval = "5s"
TOML
}

echo "== producing $records flat-load events (10k agents)" >&2
"$bin" simulate --agents 10000 --flat-events "$records" --to-kafka "$brokers" --topic load-events
echo "== bare consumer" >&2
"$target/examples/raw_consume" "$brokers" load-events "$records" | tee "$work/raw.txt"
echo "== agentwatch run" >&2
config load-events load-service "$work/state-load" >"$work/load.toml"
"$bin" run --config "$work/load.toml" --max-events "$records" 2>"$work/run.log"
tail -1 "$work/run.log" | tee "$work/service.txt"
raw=$(sed -E 's/.* = ([0-9]+) records\/s.*/\1/' "$work/raw.txt")
service=$(sed -E 's/.*s \(([0-9]+)\/s\).*/\1/' "$work/service.txt")
python3 -c "print(f'throughput ratio: service {int($service)}/s vs bare consumer {int($raw)}/s = {$service/$raw:.3f}')"
if [ "${QUIX:-0}" = 1 ]; then
  # The peer: the naive per-agent job on Quix Streams (scripts/quix_baseline.py), same
  # topic, its own consumer group, RocksDB state and changelog topics.
  venv="${XDG_CACHE_HOME:-$HOME/.cache}/agentwatch/quix-venv"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import quixstreams' 2>/dev/null; then
    echo "== installing quixstreams into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "quixstreams==3.28.1"
  fi
  echo "== quix streams" >&2
  timeout --kill-after=10 600 "$venv/bin/python" scripts/quix_baseline.py "$brokers" load-events "$records" "$work/state-quix" | tee "$work/quix.txt"
  quix=$(sed -E 's/.*= ([0-9]+) records\/s.*/\1/' "$work/quix.txt")
  python3 -c "print(f'quix ratio: quix streams {int($quix)}/s vs bare consumer {int($raw)}/s = {$quix/$raw:.3f}; service / quix streams = {$service/$quix:.2f}')"
fi
[ "$latency_records" -gt 0 ] || exit 0

echo "== bare consumer latency at 20000 events/s ($latency_records events)" >&2
"$target/examples/raw_consume" "$brokers" raw-latency-events "$latency_records" >"$work/raw-latency.txt" &
raw_pid=$!
sleep 3
"$bin" simulate --agents 10000 --flat-events "$latency_records" --rate 20000 --to-kafka "$brokers" --topic raw-latency-events
wait "$raw_pid"
cat "$work/raw-latency.txt"

echo "== agentwatch latency at 20000 events/s ($latency_records events)" >&2
config latency-events latency-service "$work/state-latency" "$metrics_port" >"$work/latency.toml"
"$bin" run --config "$work/latency.toml" --max-events "$((latency_records + 1))" 2>"$work/latency.log" &
service_pid=$!
# Steady state only: one warm-up record must have reached a decision (group joined,
# partitions fetched) before the paced stream starts.
"$bin" simulate --agents 1 --flat-events 1 --to-kafka "$brokers" --topic latency-events 2>/dev/null
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$metrics_port/metrics" | grep -q '^agentwatch_events_total{result="processed"} 1$' && break
  sleep 0.1
done
"$bin" simulate --agents 10000 --flat-events "$latency_records" --rate 20000 --to-kafka "$brokers" --topic latency-events
wait "$service_pid"
tail -1 "$work/latency.log"
