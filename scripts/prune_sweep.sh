#!/usr/bin/env bash
# Layer sparsity vs plaintext accuracy (or MSE) vs linear-layer HE ops for the
# example models, pruned with whole-column units (MOFHEI) and without
# retraining. Writes docs/curves/NAME.csv and NAME.svg and prints the tables;
# the numbers in README.md come from this script.
#   scripts/prune_sweep.sh            (after scripts/fetch_data.py)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release
H=target/release/hepack
D=${HEPACK_CACHE:-.cache/hepack}/mnist
OUT=docs/curves
mkdir -p $OUT

echo "== lenet5, he-friendly (poly:2), column units"
$H sweep examples/models/lenet5.onnx --passes he-friendly --act poly:2 --calib $D/mnist_train_x.npy \
  --input $D/mnist_test_x.npy --labels $D/mnist_test_y.npy \
  --csv $OUT/lenet5.csv --svg $OUT/lenet5.svg
echo "== lenet5, he-friendly (poly:2), unstructured (single weights)"
$H sweep examples/models/lenet5.onnx --passes he-friendly --act poly:2 --calib $D/mnist_train_x.npy \
  --input $D/mnist_test_x.npy --labels $D/mnist_test_y.npy --criterion unstructured \
  --sparsity 0.5,0.7,0.9 | tail -5
echo "== mlp, he-friendly (poly:2), column units"
$H sweep examples/models/mlp.onnx --passes he-friendly --act poly:2 --calib $D/mnist_train_x_flat.npy \
  --input $D/mnist_test_x_flat.npy --labels $D/mnist_test_y.npy \
  --csv $OUT/mlp.csv --svg $OUT/mlp.svg | tail -12
for ae in ae1 ae2 ae3; do
  echo "== $ae, he-friendly (poly:2), column units"
  $H sweep examples/models/$ae.onnx --passes he-friendly --act poly:2 --calib $D/mnist_train_x_flat.npy \
    --input $D/mnist_test_x_flat.npy --labels $D/mnist_test_x_flat.npy \
    --csv $OUT/$ae.csv --svg $OUT/$ae.svg | tail -12
done
echo "== lenet5, he-friendly (poly:2), 0.5 layer sparsity with the first convs kept whole"
for keep in "" "--layer /0/Conv=0" "--layer /0/Conv=0 --layer /3/Conv=0"; do
  # shellcheck disable=SC2086 # $keep is a list of options
  echo "keep [${keep}]: $($H eval examples/models/lenet5.onnx --passes he-friendly --act poly:2 \
    --calib $D/mnist_train_x.npy --input $D/mnist_test_x.npy --labels $D/mnist_test_y.npy \
    --sparsity 0.5 $keep | grep -E '^(total|accuracy)' | tr -s ' ' | tr '\n' ' ')"
done
