#!/usr/bin/env bash
# Plaintext accuracy of the example models after the HE-friendly rewrites, without
# retraining, for several activation approximations. Prints one line per run;
# the numbers in README.md come from this script.
#   scripts/he_friendly_accuracy.sh            (after scripts/fetch_data.py)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release
H=target/release/hepack
D=${HEPACK_CACHE:-.cache/hepack}/mnist
metric() { grep -E "^(accuracy|mse)"; }

echo "lenet5 original: $($H eval examples/models/lenet5.onnx --input $D/mnist_test_x.npy --labels $D/mnist_test_y.npy | metric)"
echo "lenet5 maxpool-to-avgpool only: $($H eval examples/models/lenet5.onnx --passes maxpool-to-avgpool --input $D/mnist_test_x.npy --labels $D/mnist_test_y.npy | metric)"
for act in square poly:2 poly:3 poly:4 cheb:2 cheb:4; do
  echo "lenet5 he-friendly --act $act: $($H eval examples/models/lenet5.onnx --passes he-friendly --act $act \
    --calib $D/mnist_train_x.npy --input $D/mnist_test_x.npy --labels $D/mnist_test_y.npy | metric)"
done
for act in poly:2 poly:4; do
  echo "mlp he-friendly --act $act: $($H eval examples/models/mlp.onnx --passes he-friendly --act $act \
    --calib $D/mnist_train_x_flat.npy --input $D/mnist_test_x_flat.npy --labels $D/mnist_test_y.npy | metric)"
  for ae in ae1 ae2 ae3; do
    echo "$ae he-friendly --act $act: $($H eval examples/models/$ae.onnx --passes he-friendly --act $act \
      --calib $D/mnist_train_x_flat.npy --input $D/mnist_test_x_flat.npy --labels $D/mnist_test_x_flat.npy | metric)"
  done
done
