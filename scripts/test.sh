#!/usr/bin/env bash
# hepack's one test command: sets up what a fresh Debian machine lacks, fetches
# the test data, then runs formatting, lint and the whole test suite.
#   scripts/test.sh            # what CI runs (.ci/run calls exactly this)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== fetching test data (MNIST-5k, ONNX backend tests) into ${HEPACK_CACHE:-.cache/hepack}"
python3 scripts/fetch_data.py

echo "== cargo fmt --check"
cargo fmt --all -- --check

# Release, like the tests: it shares their SEAL build, and a dev build of
# SEAL with Intel HEXL clones HEXL's debug logger (easyloggingpp) from GitHub.
echo "== cargo clippy (release)"
cargo clippy --workspace --all-targets --release --locked -- -D warnings

echo "== cargo test (release: sealy builds SEAL unoptimised with debug checks in dev builds)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --release --locked 2>&1 | tee "$log"

# The Python package: its wheel built into a virtual environment (the
# release build above is reused), then its tests against the CLI binary.
venv="${HEPACK_VENV:-.cache/venv}"
echo "== Python package: pip install ./python into $venv, then pytest"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q "./python[test,progress,distributed]"
"$venv/bin/python" -m pytest -q -rs python/tests 2>&1 | tee -a "$log"

# cargo prints one 'test result' line per test binary, the last often a crate
# with no doc tests, and pytest one summary line; close with the totals.
awk '/^test result:/ { p += $4; f += $6 }
     /^[0-9]+ (passed|failed)/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
