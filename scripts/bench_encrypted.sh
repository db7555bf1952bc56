#!/usr/bin/env bash
# Issue #7's benchmark: LeNet-5 on the 1,000 MNIST test digits, encrypted
# under batch packing at 128-bit security, HE-friendly (poly:2, fitted on the
# training digits) unpruned and at MOFHEI's 50/60/80/90 % layer sparsities,
# without retraining. Each row is one `hepack infer --json` (keys,
# encryption, the server run, decryption) on an otherwise idle machine.
# Prints a Markdown table (docs/BENCHMARKS.md holds its output) and keeps
# every JSON report under docs/curves/encrypted_lenet5/.
#   scripts/bench_encrypted.sh          (after scripts/fetch_data.py; ~15 min on 2 cores)
#   SPARSITIES="0 0.8" LABEL=grouped scripts/bench_encrypted.sh [FLAGS...]
# runs only those rows, keeps the reports as LABEL_sparsity_*.json, and passes
# FLAGS to `infer` (e.g. --no-group).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release
H=target/release/hepack
D=${HEPACK_CACHE:-.cache/hepack}/mnist
OUT=docs/curves/encrypted_lenet5
mkdir -p "$OUT"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# The floor ratio needs this machine's single-thread op times.
export HEPACK_OP_TIMES="$T/op_times.json"

SPARSITIES=${SPARSITIES:-"0 0.5 0.6 0.8 0.9"}
PREFIX=${LABEL:+${LABEL}_}
for s in $SPARSITIES; do
  $H compile examples/models/lenet5.onnx --act poly:2 --calib "$D/mnist_train_x.npy" \
    --sparsity "$s" -o "$T/lenet5_$s.hep" > /dev/null
  [ -s "$HEPACK_OP_TIMES" ] || $H calibrate "$T/lenet5_$s.hep" > /dev/null
  # Scheduled with this machine's op times (keyed by N and levels: one calibration serves every sparsity).
  $H compile examples/models/lenet5.onnx --act poly:2 --calib "$D/mnist_train_x.npy" \
    --sparsity "$s" --calibrated -o "$T/lenet5_$s.hep" > /dev/null
  $H infer "$T/lenet5_$s.hep" --input "$D/mnist_test_x.npy" --labels "$D/mnist_test_y.npy" \
    --json "$@" > "$OUT/${PREFIX}sparsity_$s.json"
  $H inspect "$T/lenet5_$s.hep" --json > "$OUT/${PREFIX}sparsity_${s}_program.json"
done

python3 - "$OUT" "$PREFIX" $SPARSITIES <<'PY'
import json, sys
out, prefix, sparsities = sys.argv[1], sys.argv[2], sys.argv[3:]
print("| layer sparsity | N | HE ops | run (s) | digits/s | peak RSS (GiB) | peak live ciphertexts (GiB) | accuracy | max abs error | floor ratio | vs SEAL op by op |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for s in sparsities:
    r = json.load(open(f"{out}/{prefix}sparsity_{s}.json"))
    p = json.load(open(f"{out}/{prefix}sparsity_{s}_program.json"))
    run = r["run"]
    print(f"| {float(s):.0%} | {p['params']['degree']} | {p['he']['he_ops']:,} | {run['wall_seconds']:.1f} "
          f"| {r['samples'] / run['wall_seconds']:.1f} | {run['peak_rss_bytes'] / 2**30:.2f} "
          f"| {run['peak_ciphertext_bytes'] / 2**30:.2f} | {r['accuracy']:.3f} "
          f"| {r['max_abs_error']:.1e} | {run['floor_ratio']:.2f} | {run['seal_floor_ratio']:.2f} |")
PY
