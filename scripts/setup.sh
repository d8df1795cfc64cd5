#!/usr/bin/env bash
# Installs what building agentwatch needs on Debian/Ubuntu: a C/C++ toolchain, libclang
# (RocksDB's bindings are generated with bindgen), pkg-config and OpenSSL headers, and
# valgrind for the performance guard.
# Idempotent: installs only what is missing.
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
# librdkafka's bundled build and the test broker's TLS stack look for these.
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
# The performance guard (scripts/bench.sh --check) counts instructions with callgrind.
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
# scripts/check-deploy.sh installs its validators into a virtualenv.
command -v python3 >/dev/null 2>&1 || need+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
# bindgen needs libclang itself plus clang's builtin headers: the -dev package brings both.
# (Do not mistake libclang-cpp, which many images ship, for libclang.)
if command -v dpkg >/dev/null 2>&1; then
  dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
  dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
elif ! ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1; then
  need+=(libclang-dev)
fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (https://rustup.rs) and re-run" >&2
  exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest" >&2
  cargo install --locked cargo-nextest
fi
