#!/usr/bin/env bash
# Issue #8's results: MOFHEI's two fine-tuning steps run by `hepack tune` on
# MNIST-5k (3,600 training digits, the last 400 of the 4,000 for validation,
# the 1,000 test digits scored). Step 1 (HE-friendly conversion) once per
# model, then step 2 (block pruning on the gradual schedule, compression,
# fine-tuning) from the HE-friendly model at MOFHEI's 50/60/80/90 % layer
# sparsities. Prints a Markdown table (docs/BENCHMARKS.md holds its output);
# every `--json` report, with its epoch log, is kept in docs/curves/tune/,
# and the tuned models in target/tune/.
#   scripts/tune_results.sh          (after scripts/fetch_data.py; ~25 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release
H=target/release/hepack
D=${HEPACK_CACHE:-.cache/hepack}/mnist
OUT=docs/curves/tune
MODELS=target/tune
mkdir -p "$OUT" "$MODELS"

# name, input suffix, targets of the training and test digits
run_model() {
  local name=$1 suffix=$2 train_y=$3 test_y=$4
  local data=(--data "$D/mnist_train_x$suffix.npy" --labels "$D/$train_y"
    --test-data "$D/mnist_test_x$suffix.npy" --test-labels "$D/$test_y")
  $H tune "examples/models/$name.onnx" "${data[@]}" --act poly:2 --epochs 5 --head-epochs 2 \
    --json -o "$MODELS/${name}_hef.onnx" > "$OUT/${name}_hef.json"
  for s in 0.5 0.6 0.8 0.9; do
    $H tune "$MODELS/${name}_hef.onnx" "${data[@]}" --sparsity "$s" --prune-epochs 20 \
      --epochs 10 --f64 --json -o "$MODELS/${name}_$s.onnx" > "$OUT/${name}_$s.json"
  done
}

run_model lenet5 "" mnist_train_y.npy mnist_test_y.npy
for ae in ae1 ae2 ae3; do
  run_model "$ae" _flat mnist_train_x_flat.npy mnist_test_x_flat.npy
done

python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
print("| model | stage | test metric | model sparsity | HE ops | tuning time (s) |")
print("| --- | --- | --- | --- | --- | --- |")
for name in ["lenet5", "ae1", "ae2", "ae3"]:
    hef = json.load(open(f"{out}/{name}_hef.json"))
    metric = hef["metric"]
    fmt = (lambda v: f"{v:.3f}") if metric == "accuracy" else (lambda v: f"{v:.4f}")
    orig, conv = hef["checkpoints"][0], hef["checkpoints"][-1]
    print(f"| {name} | original | {metric} {fmt(orig['test_metric'])} | 0 | - | - |")
    print(f"| {name} | HE-friendly | {metric} {fmt(conv['test_metric'])} | 0 | {conv['he_ops']:,} | {conv['seconds']:.0f} |")
    for s in ["0.5", "0.6", "0.8", "0.9"]:
        r = json.load(open(f"{out}/{name}_{s}.json"))["checkpoints"][-1]
        print(f"| {name} | {float(s):.0%} layer sparsity | {metric} {fmt(r['test_metric'])} | "
              f"{r['model_sparsity']:.2f} | {r['he_ops']:,} | {r['seconds']:.0f} |")
PY

# The encrypted check: the tuned, pruned LeNets compiled (scales sized on the
# training digits) and run encrypted on the 1,000 test digits.
echo
echo "| LeNet-5 tuned | HE ops | encrypted accuracy | plaintext accuracy | argmax agreement | max abs error | run (s) | peak RSS (GiB) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for s in 0.8 0.9; do
  $H compile "$MODELS/lenet5_$s.onnx" --calib "$D/mnist_train_x.npy" -o "$MODELS/lenet5_$s.hep" > /dev/null
  $H infer "$MODELS/lenet5_$s.hep" --input "$D/mnist_test_x.npy" --labels "$D/mnist_test_y.npy" \
    --json > "$OUT/encrypted_lenet5_$s.json"
  python3 - "$OUT" "$s" <<'PY'
import json, sys
out, s = sys.argv[1:]
r = json.load(open(f"{out}/encrypted_lenet5_{s}.json"))
plain = json.load(open(f"{out}/lenet5_{s}.json"))["checkpoints"][-1]
run = r["run"]
print(f"| {float(s):.0%} layer sparsity | {plain['he_ops']:,} | {r['accuracy']:.3f} | {plain['test_metric']:.3f} | "
      f"{r['argmax_agreement']:.3f} | {r['max_abs_error']:.1e} | {run['wall_seconds']:.1f} | {run['peak_rss_bytes'] / 2**30:.2f} |")
PY
done
