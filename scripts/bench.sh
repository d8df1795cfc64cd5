#!/usr/bin/env bash
# Headline performance figures, each printed with the command that reproduces it, and the
# regression guard that CI runs.
#
#   scripts/bench.sh            # measure and print the figures (BENCHMARKS.md is made from them)
#   scripts/bench.sh --check    # the guard: fail if a ratio or the instruction count regressed
#   scripts/bench.sh --no-kafka # either of the above without the Kafka figure
#
# The guard never compares absolute times: this machine is shared and noisy. It compares
#  1. replay with all built-in detectors against a decode-only pass over the same file
#     (examples/decode_only.rs), alternating, best of three each;
#  2. replay against the naive per-agent z-score script in Python (scripts/zscore_naive.py);
#  3. instructions per event under callgrind (nearly deterministic: the same binary and
#     input give the same count within ~0.1%, the decoding thread's hand-offs spinning a
#     varying while before they park), by differencing a run of N events and one of 2N,
#     so start-up costs cancel;
#  4. the Kafka service against a bare consumer on the same topic (scripts/kafka-load.sh),
#     best of two runs.
# Each floor or ceiling sits between today's figure and what the 7x matcher regression of
# issue 10 gave (replay/decode 0.06, replay/python 1.0, ~9x the instructions, Kafka 0.17),
# with room for the noise seen across runs. The Kafka ratio is the exception: with the
# co-located broker its single runs range from 0.19 to 0.51 for one build, so its floor
# only catches a collapse of the Kafka path; the instruction count is what catches an
# engine regression there (the matcher's would now also take the service below 0.1, as
# the engine is no longer what limits it).
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
kafka=true
for arg in "$@"; do
  case "$arg" in
    --check) check=true ;;
    --no-kafka) kafka=false ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

# Floors (ratios) and the ceiling (instructions per event). Raise the ceiling only in the
# commit that makes detection do more work per event, and say why there.
# replay/decode: 0.15. The decode-only pass shares the event scanner, which got ~10%
# faster in session 10, so the ratio moved down with no engine change (0.24-0.27 in
# fresh-clone runs, once 0.172 on a loaded machine with the instruction count unchanged);
# the matcher regression gave 0.06. Since session 22 replay decodes on a second thread,
# which lifted the ratio (0.29-0.42 in single runs); the floor is left where it was.
min_replay_vs_decode=0.15
min_replay_vs_python=2.5
max_instructions_per_event=18000
min_kafka_vs_bare=0.15

[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --quiet --bin agentwatch --example decode_only --example raw_consume
bin="${CARGO_TARGET_DIR:-target}/release/agentwatch"
decode="${CARGO_TARGET_DIR:-target}/release/examples/decode_only"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=()

# ratio NAME VALUE FLOOR: records a failure when VALUE < FLOOR.
floor() {
  if python3 -c "import sys; sys.exit(0 if $2 >= $3 else 1)"; then
    echo "  ok   $1 = $2 (floor $3)"
  else
    echo "  FAIL $1 = $2 is below its floor $3"
    failures+=("$1")
  fi
}
rate_of() { sed -nE 's/.*\(([0-9.]+) events\/s.*/\1/p' | head -1; }
best() { sort -g | tail -1; }

echo "== inputs"
"$bin" simulate --agents 200 --days 14 --seed 42 --output "$work/sim.jsonl" --labels "$work/labels.json" 2>/dev/null
"$bin" simulate --agents 50 --days 7 --seed 7 --output "$work/small.jsonl" 2>/dev/null
events=$(wc -l <"$work/sim.jsonl")
echo "  realistic: agentwatch simulate --agents 200 --days 14 --seed 42 --output sim.jsonl ($events events)"

echo "== replay vs decode-only vs naive python (same file, alternating, best of 3)"
replay_runs=(); decode_runs=()
for _ in 1 2 3; do
  rm -rf "$work/state"
  replay_runs+=("$("$bin" replay --input "$work/sim.jsonl" --state "$work/state" --output /dev/null 2>&1 | rate_of)")
  decode_runs+=("$("$decode" "$work/sim.jsonl" | rate_of)")
done
python_rate=$(python3 scripts/zscore_naive.py "$work/sim.jsonl" | rate_of)
replay=$(printf '%s\n' "${replay_runs[@]}" | best)
decoded=$(printf '%s\n' "${decode_runs[@]}" | best)
replay_vs_decode=$(python3 -c "print(f'{$replay/$decoded:.3f}')")
replay_vs_python=$(python3 -c "print(f'{$replay/$python_rate:.2f}')")
printf '  replay, all built-in detectors, RocksDB state: %.0f events/s (runs: %s)\n' "$replay" "${replay_runs[*]}"
echo "    agentwatch replay --input sim.jsonl --state st --output /dev/null"
printf '  decode only: %.0f events/s (runs: %s)\n' "$decoded" "${decode_runs[*]}"
echo "    cargo run --release --example decode_only -- sim.jsonl"
printf '  naive python z-score: %.0f events/s\n' "$python_rate"
echo "    python3 scripts/zscore_naive.py sim.jsonl"
floor "replay/decode" "$replay_vs_decode" "$min_replay_vs_decode"
floor "replay/python" "$replay_vs_python" "$min_replay_vs_python"

echo "== instructions per event (callgrind, deterministic)"
if ! command -v valgrind >/dev/null 2>&1; then
  echo "bench.sh: valgrind is missing (scripts/setup.sh installs it)" >&2
  exit 1
fi
instructions() { # LINES
  rm -rf "$work/cg-state"
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
    "$bin" replay --input "$work/small.jsonl" --max-lines "$1" --state "$work/cg-state" --output /dev/null 2>&1 \
    | sed -nE 's/.*Collected : ([0-9]+).*/\1/p'
}
n=20000
one=$(instructions "$n")
two=$(instructions "$((2 * n))")
per_event=$(( (two - one) / n ))
echo "  $per_event instructions per event (events $n..$((2 * n)) of simulate --agents 50 --days 7 --seed 7)"
echo "    valgrind --tool=callgrind agentwatch replay --input small.jsonl --max-lines N (N = $n and $((2 * n)); the difference / $n)"
if [ "$per_event" -le "$max_instructions_per_event" ]; then
  echo "  ok   instructions/event = $per_event (ceiling $max_instructions_per_event)"
else
  echo "  FAIL instructions/event = $per_event is above its ceiling $max_instructions_per_event"
  failures+=("instructions/event")
fi

if $kafka; then
  echo "== Kafka service vs bare consumer (same topic, same run)"
  records=400000
  if ! deploy/local-broker.sh install; then
    echo "bench.sh: the test broker could not be installed (deploy/local-broker.sh install)" >&2
    exit 1
  fi
  # Best of two runs, like the other ratios: the co-located broker makes single runs
  # swing between 0.19 and 0.51 on this machine for the same build. Each run is bounded
  # (a healthy one takes under 15 s); a run that fails or overruns is reported with its
  # log and one more is allowed, so a broker hiccup cannot hang CI nor, once, fail it.
  best_ratio=0
  good=0
  for attempt in 1 2 3; do
    [ "$good" -lt 2 ] || break
    line=$(timeout --kill-after=10 180 scripts/kafka-load.sh "$records" 0 2>"$work/kafka.log" | grep '^throughput ratio' || true)
    if [ -z "$line" ]; then
      tail -40 "$work/kafka.log" >&2
      echo "  attempt $attempt: the Kafka load run failed or overran 180 s (log above)"
      continue
    fi
    good=$((good + 1))
    echo "  run $good: $line"
    best_ratio=$(python3 -c "print(max($best_ratio, ${line##*= }))")
  done
  if [ "$good" -lt 2 ]; then
    echo "bench.sh: the Kafka load run failed twice (scripts/kafka-load.sh $records 0)" >&2
    exit 1
  fi
  echo "    scripts/kafka-load.sh $records 0 (best of 2)"
  floor "kafka/bare" "$best_ratio" "$min_kafka_vs_bare"
fi

if $check; then
  if [ "${#failures[@]}" -gt 0 ]; then
    echo "bench.sh: performance regressed: ${failures[*]}" >&2
    exit 1
  fi
  echo "bench.sh: performance guard passed"
fi
