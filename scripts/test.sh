#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every unit, property and integration test
# (release mode: the quality test replays ~800k simulated events). Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --release --all-targets --quiet -- -D warnings
echo "== detectors and schemas" >&2
cargo run --release --quiet --bin agentwatch -- validate --detectors detectors
cargo run --release --quiet --bin agentwatch -- schemas --check
echo "== tests" >&2
cargo nextest run --release --no-fail-fast "$@"
