#!/usr/bin/env bash
# Issue #22's benchmark: Hunter's and Artemis's pruning units on the
# single-sample (diagonal) packing. The MLP and LeNet-5 are made HE-friendly
# once (`hepack tune`, squares for the MLP, fitted quadratics for LeNet-5),
# then pruned while training with each unit kind at increasing layer
# sparsity (`tune --packing diagonal --block K --sparsity S`; the output
# layer stays whole). Each row: plaintext test accuracy on the 1,000 MNIST-5k
# test digits, what the diagonal program keeps (rotations / mul_plain / add,
# `inspect --he --packing diagonal --paper-counts gazelle`) beside the
# GAZELLE formulas (Hunter Table 4) and Artemis Eq. (6), and one digit's
# encrypted latency (`infer --threads 2`, server run). Prints Markdown
# (docs/BENCHMARKS.md holds its output); reports are kept in
# docs/curves/diagonal_pruning/.
#   scripts/bench_diagonal_pruning.sh [MODEL ...]   (after scripts/fetch_data.py; default: mlp lenet5)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release
H=target/release/hepack
D=${HEPACK_CACHE:-.cache/hepack}/mnist
OUT=docs/curves/diagonal_pruning
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$OUT"
export HEPACK_OP_TIMES="$T/op_times.json"
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(mlp lenet5)
KINDS=(position channel-diagonal diagonal hunter)
SPARSITIES=(0.5 0.75 0.9)

# The first test digit as a one-sample .npy file.
python3 scripts/first_sample.py "$D/mnist_test_x.npy" "$T/x.npy" "$D/mnist_test_x_flat.npy" "$T/x_flat.npy"

# model, tag: export, count, compile and run one digit.
measure() {
  local m=$1 tag=$2 x=$3
  $H export "$T/$tag.onnx" -o "$T/$tag.he.onnx" > /dev/null
  $H inspect "$T/$tag.he.onnx" --he --packing diagonal --paper-counts gazelle --json > "$OUT/$tag.counts.json"
  $H compile "$T/$tag.onnx" --packing diagonal -o "$T/$tag.hep" > /dev/null
  [ -s "$HEPACK_OP_TIMES" ] || $H calibrate "$T/$tag.hep" > /dev/null
  $H infer "$T/$tag.hep" --input "$x" --threads 2 --json > "$OUT/$tag.infer.json"
}

for m in "${MODELS[@]}"; do
  case $m in
    mlp) act=(--act square); suffix=_flat; x="$T/x_flat.npy" ;;
    *) act=(--act poly:2); suffix=; x="$T/x.npy" ;;
  esac
  data=(--data "$D/mnist_train_x$suffix.npy" --labels "$D/mnist_train_y.npy"
    --test-data "$D/mnist_test_x$suffix.npy" --test-labels "$D/mnist_test_y.npy")
  $H tune "examples/models/$m.onnx" "${data[@]}" "${act[@]}" --epochs 3 --head-epochs 1 \
    --json -o "$T/$m.hef.onnx" > "$OUT/$m.hef.tune.json"
  measure "$m" "$m.hef" "$x"
  # The MLP ends in a softmax, which training cannot pass through once it is
  # no longer the last op: its runs start from the original each time.
  case $m in
    mlp) from=("examples/models/$m.onnx" "${act[@]}" --head-epochs 1) ;;
    *) from=("$T/$m.hef.onnx") ;;
  esac
  for k in "${KINDS[@]}"; do
    for s in "${SPARSITIES[@]}"; do
      $H tune "${from[@]}" "${data[@]}" --packing diagonal --block "$k" --sparsity "$s" \
        --prune-epochs 6 --epochs 3 --f64 --json -o "$T/$m.$k.$s.onnx" > "$OUT/$m.$k.$s.tune.json"
      measure "$m" "$m.$k.$s" "$x"
    done
  done
done

python3 - "$OUT" "${#KINDS[@]}" "${KINDS[@]}" "${SPARSITIES[@]}" -- "${MODELS[@]}" <<'PY'
import json, sys
out, nk = sys.argv[1], int(sys.argv[2])
kinds = sys.argv[3:3 + nk]
rest = sys.argv[3 + nk:]
sep = rest.index("--")
sparsities, models = rest[:sep], rest[sep + 1:]
print("| model | units | layer sparsity | test accuracy | rotations | mul_plain | add | GAZELLE Perm / Mult / Add | Artemis Eq. 6 rotations (convs) | rotations removed | one digit, server (s) | max abs error |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
def row(m, tag, units, s, base_rot):
    tune = json.load(open(f"{out}/{tag}.tune.json"))["checkpoints"][-1]
    he = json.load(open(f"{out}/{tag}.counts.json"))["he"]
    inf = json.load(open(f"{out}/{tag}.infer.json"))
    t = he["total"]
    g = [l["gazelle"] for l in he["layers"] if "gazelle" in l]
    eq6 = sum(l["artemis"]["rotations"] for l in he["layers"] if "artemis" in l)
    gp, gm, ga = (sum(x[k] for x in g) for k in ("perm", "mult", "add"))
    rot = t.get("rotate", 0)
    removed = "-" if base_rot is None else f"{1 - rot / base_rot:.0%}"
    print(f"| {m} | {units} | {s} | {tune['test_metric']:.3f} | {rot:,} | {t.get('mul_plain', 0):,} | {t.get('add', 0):,} "
          f"| {gp:,} / {gm:,} / {ga:,} | {eq6 if any('artemis' in l for l in he['layers']) else '-'} | {removed} "
          f"| {inf['run']['wall_seconds']:.2f} | {inf['max_abs_error']:.1e} |")
    return rot
for m in models:
    base = row(m, f"{m}.hef", "(HE-friendly, unpruned)", "0", None)
    for k in kinds:
        for s in sparsities:
            row(m, f"{m}.{k}.{s}", k, s, base)
PY
