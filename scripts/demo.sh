#!/usr/bin/env bash
# The embedded default: simulated agents with labelled attacks through the full engine.
# No Kafka needed. Extra arguments go to `agentwatch demo` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet --bin agentwatch
exec "${CARGO_TARGET_DIR:-target}/release/agentwatch" demo "$@"
