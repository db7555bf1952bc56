#!/usr/bin/env bash
# One-query latency: the MLP and LeNet-5 (HE-friendly: squares for the MLP,
# fitted quadratics for LeNet-5; unpruned) classifying one MNIST test digit
# under batch packing and under diagonal packing, 128-bit, 2 threads. Each
# row is one `hepack infer --json` (keys, encryption, the server run,
# decryption) and the program's `inspect --json`; then four digits one after
# another in one diagonal run, whose weight cache holds every diagonal, so
# that the queries after the first skip encoding them: a server that keeps
# the model encoded. Prints Markdown tables (docs/BENCHMARKS.md holds their
# output).
#   scripts/bench_single_sample.sh [MODEL ...]   (after scripts/fetch_data.py; default: mlp lenet5)
set -euo pipefail
cd "$(dirname "$0")/.."
# HEPACK=path/to/hepack measures another build (e.g. a baseline) instead.
[ -n "${HEPACK:-}" ] || cargo build -q --release
H=${HEPACK:-target/release/hepack}
D=${HEPACK_CACHE:-.cache/hepack}/mnist
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export HEPACK_OP_TIMES="$T/op_times.json"
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(mlp lenet5)

# The first test digit (and its label) as .npy files of one sample.
python3 scripts/first_sample.py "$D/mnist_test_x.npy" "$T/mnist_test_x_1.npy" \
  "$D/mnist_test_x_flat.npy" "$T/mnist_test_x_flat_1.npy" "$D/mnist_test_y.npy" "$T/y_1.npy"
python3 scripts/first_sample.py -n 4 "$D/mnist_test_x.npy" "$T/mnist_test_x_4.npy" \
  "$D/mnist_test_x_flat.npy" "$T/mnist_test_x_flat_4.npy" "$D/mnist_test_y.npy" "$T/y_4.npy"

for m in "${MODELS[@]}"; do
  case $m in
    mlp) act=(--act square); x="$T/mnist_test_x_flat_1.npy" ;;
    *) act=(--act poly:2 --calib "$D/mnist_train_x.npy"); x="$T/mnist_test_x_1.npy" ;;
  esac
  for p in batch diagonal; do
    $H compile "examples/models/$m.onnx" "${act[@]}" --packing "$p" -o "$T/$m.$p.hep" > /dev/null
    [ -s "$HEPACK_OP_TIMES" ] || $H calibrate "$T/$m.$p.hep" > /dev/null
    $H infer "$T/$m.$p.hep" --input "$x" --labels "$T/y_1.npy" --threads 2 --json > "$T/$m.$p.json"
    $H inspect "$T/$m.$p.hep" --json > "$T/$m.$p.program.json"
  done
  # The same diagonal program and keys' worth, every rotation SEAL's own.
  $H infer "$T/$m.diagonal.hep" --input "$x" --labels "$T/y_1.npy" --threads 2 --json --no-hoist > "$T/$m.nohoist.json"
  # Four digits, a batch each where one fills the slots; every weight cached.
  $H infer "$T/$m.diagonal.hep" --input "${x%_1.npy}_4.npy" --labels "$T/y_4.npy" --threads 2 --json \
    --plain-cache-mib 4096 > "$T/$m.warm.json"

done

python3 - "$T" "${MODELS[@]}" <<'PY'
import json, sys
t, models = sys.argv[1], sys.argv[2:]
print("| model | packing | N | samples per ciphertext | HE ops | rotations (hoisted) | mul_plain | rotation steps | eval keys (MiB) | server (s) | end to end (s) | peak RSS (GiB) | max abs error |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for m in models:
    for p in ["batch", "diagonal"]:
        r = json.load(open(f"{t}/{m}.{p}.json"))
        g = json.load(open(f"{t}/{m}.{p}.program.json"))
        run = r["run"]
        ops = {k["kind"]: k["count"] for k in run["ops"]}
        total = r["keygen_seconds"] + r["encrypt_seconds"] + run["wall_seconds"] + r["decrypt_seconds"]
        print(f"| {m} | {p} | {g['params']['degree']} | {g['samples_per_ciphertext']} | {g['he']['he_ops']:,} "
              f"| {ops.get('rotate', 0):,} ({run['hoisted_rotations']:,}) | {ops.get('mul_plain', 0):,} | {len(g['rotation_steps'])} "
              f"| {g['eval_key_bytes'] / 2**20:.0f} | {run['wall_seconds']:.2f} | {total:.2f} "
              f"| {run['peak_rss_bytes'] / 2**30:.2f} | {r['max_abs_error']:.1e} |")

# Where a diagonal run's time goes: thread-seconds per op kind (a mul_plain's
# includes encoding its diagonal), with hoisting and without.
print()
print("| model | hoisting | server (s) | rotate (thread-s) | mul_plain (thread-s) | add (thread-s) | rescale (thread-s) | hoisted rotations | decompositions |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for m in models:
    for label, f in [("on", f"{t}/{m}.diagonal.json"), ("off", f"{t}/{m}.nohoist.json")]:
        run = json.load(open(f))["run"]
        sec = {k["kind"]: k["seconds"] for k in run["ops"]}
        print(f"| {m} | {label} | {run['wall_seconds']:.2f} | {sec.get('rotate', 0):.2f} | {sec.get('mul_plain', 0):.2f} "
              f"| {sec.get('add', 0):.2f} | {sec.get('rescale', 0):.2f} | {run['hoisted_rotations']} | {run['decompositions']} |")

# Queries after the first, the model's diagonals already encoded.
print()
print("| model | digits | batches | first batch (s) | later batches, median (s) | weights encoded | served from the cache | max abs error |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for m in models:
    r = json.load(open(f"{t}/{m}.warm.json"))
    run = r["run"]
    b = run["batch_seconds"]
    later = sorted(b[1:])
    median = f"{later[len(later) // 2]:.2f}" if later else "—"
    print(f"| {m} | 4 | {len(b)} | {b[0]:.2f} | {median} | {run['plain_encodings']:,} | {run['plain_cache_hits']:,} | {r['max_abs_error']:.1e} |")
PY
