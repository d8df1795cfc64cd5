#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every unit, property and integration test
# (release mode: the quality test replays ~800k simulated events), including the Kafka
# tests against a real broker, and the performance guard (scripts/bench.sh --check).
# Installs what it needs: libclang, valgrind, cargo-nextest, the broker, and the
# deployment-file validators (scripts/check-deploy.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The Kafka tests need a real broker (Tansu). Building it (once, ~15 min) runs alongside
# the checks below; a cached binary makes this instant.
broker_log="$(mktemp)"
deploy/local-broker.sh install >"$broker_log" 2>&1 &
broker_install=$!
echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --release --all-targets --quiet -- -D warnings
echo "== detectors and schemas" >&2
cargo run --release --quiet --bin agentwatch -- validate --detectors detectors
cargo run --release --quiet --bin agentwatch -- schemas --check
echo "== deployment files" >&2
scripts/check-deploy.sh
echo "== test broker" >&2
if ! wait "$broker_install"; then
  cat "$broker_log" >&2
  echo "test.sh: installing the test broker failed (deploy/local-broker.sh install)" >&2
  exit 1
fi
echo "== performance guard" >&2
scripts/bench.sh --check
echo "== tests" >&2
cargo nextest run --release --no-fail-fast "$@"
