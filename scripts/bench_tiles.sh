#!/usr/bin/env bash
# Tile packing (#23, HE-PEx): the MLP and AE1–AE3 (squares for the MLP,
# fitted quadratics for the autoencoders) at tile shapes 8x8 … 64x64.
#  1. The unpruned program at each shape: Mul / Add as HE-PEx's op table
#     counts them (mul_plain, add), rotations, input ciphertexts, and an
#     encrypted run of a full tile batch (t3 samples), 2 threads, 128-bit:
#     server seconds, samples per second, peak RSS.
#  2. Pruning at each shape, every layer (`--prune-output`), each pruned
#     model scored on the 1,000 test digits (accuracy; MSE for the
#     autoencoders): tile pruning while training (P2T, `tune --block tile`)
#     at several sparsities, against weight pruning while training (P1,
#     `tune --criterion unstructured`) followed by neuron permutation (P3)
#     and mostly-zero tile pruning (P4, `hepack permute --p4-threshold`),
#     with zero tiles before and after the permutation.
#  3. A batch of 64 digits for each model under batch, diagonal and tile
#     packing (the shape with the least latency × peak RSS): latency, peak
#     RSS and their product.
# Prints Markdown tables (docs/BENCHMARKS.md holds their output).
#   scripts/bench_tiles.sh [MODEL ...]   (after scripts/fetch_data.py; default: mlp ae1 ae2 ae3)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release
H=target/release/hepack
D=${HEPACK_CACHE:-.cache/hepack}/mnist
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export HEPACK_OP_TIMES="$T/op_times.json"
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(mlp ae1 ae2 ae3)
SHAPES=(8x8 16x16 32x32 64x64)
P2T=(0.25 0.5 0.75)
P1=(0.8 0.9 0.95)
P4=0.05
TRAIN="$D/mnist_train_x_flat.npy"
TEST="$D/mnist_test_x_flat.npy"

for m in "${MODELS[@]}"; do
  case $m in
    mlp) act=(--act square); y="$D/mnist_train_y.npy"; ty="$D/mnist_test_y.npy" ;;
    *) act=(--act poly:2); y="$TRAIN"; ty="$TEST" ;;
  esac
  calib=(--calib "$TRAIN")
  [ "$m" = mlp ] && calib=()
  $H export "examples/models/$m.onnx" "${act[@]}" "${calib[@]}" -o "$T/$m.he.onnx" > /dev/null
  for s in "${SHAPES[@]}"; do
    # 1. The unpruned program, and a full tile batch through it.
    $H compile "examples/models/$m.onnx" "${act[@]}" "${calib[@]}" --packing tile --tile "$s" \
      -o "$T/$m.$s.hep" > /dev/null
    [ -s "$HEPACK_OP_TIMES" ] || $H calibrate "$T/$m.$s.hep" > /dev/null
    $H inspect "$T/$m.$s.hep" --json > "$T/$m.$s.program.json"
    t3=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['samples_per_ciphertext'])" "$T/$m.$s.program.json")
    python3 scripts/tile_npy.py "$TEST" "$t3" "$T/x.$t3.npy"
    $H infer "$T/$m.$s.hep" --input "$T/x.$t3.npy" --threads 2 --json > "$T/$m.$s.run.json"
    # 2. P2T, and P1 + P3 + P4.
    for sp in "${P2T[@]}"; do
      $H tune "examples/models/$m.onnx" "${act[@]}" --data "$TRAIN" --labels "$y" --packing tile \
        --tile "$s" --sparsity "$sp" --prune-output -o "$T/$m.$s.p2t.$sp.onnx" > /dev/null
    done
    for sp in "${P1[@]}"; do
      $H tune "examples/models/$m.onnx" "${act[@]}" --data "$TRAIN" --labels "$y" --packing tile \
        --tile "$s" --criterion unstructured --sparsity "$sp" --prune-output \
        -o "$T/$m.$s.p1.$sp.onnx" > /dev/null
      $H permute "$T/$m.$s.p1.$sp.onnx" --tile "$s" --p4-threshold "$P4" --json \
        -o "$T/$m.$s.p4.$sp.onnx" > "$T/$m.$s.p4.$sp.json"
    done
    for f in "$T/$m.$s".p2t.*.onnx "$T/$m.$s".p1.*.onnx "$T/$m.$s".p4.*.onnx; do
      $H eval "$f" --input "$TEST" --labels "$ty" --json > "${f%.onnx}.eval.json"
      $H compile "$f" --packing tile --tile "$s" -o "${f%.onnx}.hep" > /dev/null
      $H inspect "${f%.onnx}.hep" --json > "${f%.onnx}.ops.json"
    done
  done
  # 3. A batch of 64 under every packing.
  python3 scripts/tile_npy.py "$TEST" 64 "$T/x.64.npy"
  for p in batch diagonal; do
    $H compile "examples/models/$m.onnx" "${act[@]}" "${calib[@]}" --packing "$p" -o "$T/$m.$p.hep" > /dev/null
    $H infer "$T/$m.$p.hep" --input "$T/x.64.npy" --threads 2 --json > "$T/$m.$p.64.json"
  done
  for s in "${SHAPES[@]}"; do
    $H infer "$T/$m.$s.hep" --input "$T/x.64.npy" --threads 2 --json > "$T/$m.$s.64.json"
  done
done

python3 - "$T" "$P4" "${MODELS[@]}" <<'PY'
import json, sys
t, p4, models = sys.argv[1], sys.argv[2], sys.argv[3:]
shapes = ["8x8", "16x16", "32x32", "64x64"]
load = lambda f: json.load(open(f))

print("| model | tile | samples (t3) | N | Mul | Add | rotate | input cts | server (s) | samples/s | peak RSS (GiB) | max abs error |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for m in models:
    for s in shapes:
        g = load(f"{t}/{m}.{s}.program.json")
        r = load(f"{t}/{m}.{s}.run.json")
        run = r["run"]
        k = {o["kind"]: o["count"] for o in run["ops"]}
        t3 = g["samples_per_ciphertext"]
        print(f"| {m} | {s} | {t3} | {g['params']['degree']} | {k.get('mul_plain', 0):,} | {k.get('add', 0):,} "
              f"| {k.get('rotate', 0):,} | {k.get('encrypt_input', 0):,} | {run['wall_seconds']:.2f} "
              f"| {t3 / run['wall_seconds']:.1f} | {run['peak_rss_bytes'] / 2**30:.2f} | {r['max_abs_error']:.1e} |")

def metric(f):
    e = load(f)
    return f"{e['accuracy']:.4f}" if e.get("accuracy") is not None else f"{e['mse']:.5f}"

def muls(f):
    j = load(f)
    return j["he"]["total"]["mul_plain"]

print()
print(f"| model | tile | pruning | sparsity | test accuracy / MSE | Mul | zero tiles (before → permuted → P4 at {p4}) |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for m in models:
    for s in shapes:
        for sp in ["0.25", "0.5", "0.75"]:
            b = f"{t}/{m}.{s}.p2t.{sp}"
            print(f"| {m} | {s} | P2T | {sp} | {metric(b + '.eval.json')} | {muls(b + '.ops.json'):,} | |")
        for sp in ["0.8", "0.9", "0.95"]:
            a, b = f"{t}/{m}.{s}.p1.{sp}", f"{t}/{m}.{s}.p4.{sp}"
            rep = load(b + ".json")
            z = lambda k: f"{rep[k]['zero']}/{rep[k]['total']}"
            print(f"| {m} | {s} | P1 | {sp} | {metric(a + '.eval.json')} | {muls(a + '.ops.json'):,} | |")
            print(f"| {m} | {s} | P1 + P3 + P4 | {sp} | {metric(b + '.eval.json')} | {muls(b + '.ops.json'):,} "
                  f"| {z('before')} → {z('after')} → {z('after_p4')} |")

print()
print("| model | packing | batches | latency (s) | peak RSS (GiB) | latency × RSS (s·GiB) |")
print("| --- | --- | --- | --- | --- | --- |")
for m in models:
    rows = []
    for p in ["batch", "diagonal"] + shapes:
        r = load(f"{t}/{m}.{p}.64.json")
        run = r["run"]
        lat = run["wall_seconds"]
        rss = run["peak_rss_bytes"] / 2**30
        rows.append((p if p in ("batch", "diagonal") else f"tile {p}", run["batches"], lat, rss))
    for p, b, lat, rss in rows:
        print(f"| {m} | {p} | {b} | {lat:.2f} | {rss:.2f} | {lat * rss:.2f} |")
PY
