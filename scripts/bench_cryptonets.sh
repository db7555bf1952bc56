#!/usr/bin/env bash
# Issue #24's benchmark: the CryptoNets network (examples/models/cryptonets.onnx)
# on a full batch of 8,192 MNIST digits (the 1,000 test digits repeated),
# batch packing at 128-bit security. Runs `hepack calibrate` first so the
# report's "vs SEAL op by op" uses this machine's op times (and the program
# is compiled again, scheduled with them: `compile --calibrated`), then keygen,
# encrypt, `run` (under /usr/bin/time -v for the process's peak RSS) and
# decrypt, then `infer` on the same digits. Keeps every report under
# docs/curves/cryptonets/ and prints a Markdown row.
#   scripts/bench_cryptonets.sh [LABEL] [FLAGS...]   (after scripts/fetch_data.py; ~3 min on 2 cores)
# FLAGS go to `run` and `infer` (e.g. --no-group to measure what grouping saves).
set -euo pipefail
cd "$(dirname "$0")/.."
LABEL=${1:-current}
shift || true
# HEPACK=path/to/hepack measures another build (e.g. a baseline) instead.
[ -n "${HEPACK:-}" ] || cargo build -q --release
H=${HEPACK:-target/release/hepack}
D=${HEPACK_CACHE:-.cache/hepack}/mnist
OUT=docs/curves/cryptonets
mkdir -p "$OUT"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export HEPACK_OP_TIMES="$T/op_times.json"

python3 scripts/tile_npy.py "$D/mnist_test_x.npy" 8192 "$T/x.npy"
python3 scripts/tile_npy.py "$D/mnist_test_y.npy" 8192 "$T/y.npy"
$H compile examples/models/cryptonets.onnx --calib "$D/mnist_train_x.npy" -o "$T/cn.hep" > /dev/null
$H calibrate "$T/cn.hep" > /dev/null
# Again, scheduled with the op times just measured (deferred rescales and
# relinearizations where they pay on this machine).
$H compile examples/models/cryptonets.onnx --calib "$D/mnist_train_x.npy" --calibrated \
  -o "$T/cn.hep" > /dev/null
$H inspect "$T/cn.hep" --json > "$OUT/${LABEL}_program.json"
$H keygen "$T/cn.hep" --out-dir "$T/keys" > /dev/null
$H encrypt "$T/cn.hep" --keys "$T/keys" --input "$T/x.npy" --output "$T/x.ct" > /dev/null
/usr/bin/time -v -o "$T/run.time" $H run "$T/cn.hep" --eval-keys "$T/keys/eval.keys" \
  --input "$T/x.ct" --output "$T/y.ct" --json "$@" > "$OUT/${LABEL}_run.json"
/usr/bin/time -v -o "$T/infer.time" $H infer "$T/cn.hep" --input "$T/x.npy" --labels "$T/y.npy" \
  --json "$@" > "$OUT/${LABEL}_infer.json"
# Bytes, as a float: mawk's printf %d stops at 2^31 - 1.
rss() { awk -F': ' '/Maximum resident/ {printf "%.0f", $2 * 1024}' "$1"; }
echo "{\"run_peak_rss_bytes\": $(rss "$T/run.time"), \"infer_peak_rss_bytes\": $(rss "$T/infer.time")}" \
  > "$OUT/${LABEL}_rss.json"

python3 - "$OUT" "$LABEL" <<'PY'
import json, sys
out, label = sys.argv[1], sys.argv[2]
run = json.load(open(f"{out}/{label}_run.json"))
infer = json.load(open(f"{out}/{label}_infer.json"))
prog = json.load(open(f"{out}/{label}_program.json"))
rss = json.load(open(f"{out}/{label}_rss.json"))
ops = prog["he"]["total"]
# Thread-seconds per op kind; a linear combination's time is its adds'.
threads = {o["kind"]: o["seconds"] for o in run["ops"] if o["seconds"] > 0}
top = ", ".join(f"{k} {v:.1f}" for k, v in sorted(threads.items(), key=lambda kv: -kv[1])[:5])
print("| build | relinearize ops | run (s) | images/s | vs SEAL op by op | thread-seconds | run peak RSS (GiB) | infer peak RSS (GiB) | accuracy |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
print(f"| {label} | {ops.get('relinearize', 0):,} | {run['wall_seconds']:.1f} | {8192 / run['wall_seconds']:,.0f} "
      f"| {run['seal_floor_ratio']:.2f} | {top} | {rss['run_peak_rss_bytes'] / 2**30:.2f} "
      f"| {rss['infer_peak_rss_bytes'] / 2**30:.2f} | {infer['accuracy']:.3f} |")
PY
