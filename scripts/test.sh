#!/usr/bin/env bash
# hepack's one test command: sets up what a fresh Debian machine lacks, fetches
# the test data, then runs formatting, lint and the whole test suite.
#   scripts/test.sh            # what CI runs (.ci/run calls exactly this)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
command -v gcc >/dev/null || need_apt+=(gcc)
command -v g++ >/dev/null || need_apt+=(g++)
# SEAL (built from source by the sealy crate) needs CMake, and bindgen libclang.
command -v cmake >/dev/null || need_apt+=(cmake)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need_apt+=(libclang-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  $sudo_cmd apt-get install -y -q "${need_apt[@]}"
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust stable (rustup) first" >&2; exit 1; }

echo "== fetching test data (MNIST-5k, ONNX backend tests) into ${HEPACK_CACHE:-.cache/hepack}"
python3 scripts/fetch_data.py

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test (release: sealy builds SEAL unoptimised with debug checks in dev builds)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --release --locked 2>&1 | tee "$log"
# cargo prints one 'test result' line per test binary, the last often a crate
# with no doc tests; close with the totals over all of them.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
