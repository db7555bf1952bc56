#!/usr/bin/env python3
"""The Python package's overhead on `infer` against the CLI, and its wheel's
size (README, "Python").

    .cache/venv/bin/python scripts/bench_python.py [--samples 1000] [--reps 3]

Both sides run the same program file on the same inputs, each as a whole
process (start-up, reading the program and inputs, keys, encryption, the
run, decryption), alternating, `--reps` times; the medians are compared.
Needs the `hepack` binary (target/release, or $HEPACK_CLI) and the package
installed in the Python that runs this script.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(os.environ.get("HEPACK_CLI", ROOT / "target" / "release" / "hepack"))

PYTHON_INFER = """
import sys, numpy as np, hepack
program = hepack.Program.load(sys.argv[1])
y = program.infer(np.load(sys.argv[2]), progress=False)
"""


def wall(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "examples" / "models" / "mlp.onnx"))
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        program = tmp / "p.hep"
        subprocess.run([str(CLI), "compile", args.model, "-o", str(program)], check=True, capture_output=True)
        x = np.random.default_rng(0).random((args.samples, 784))
        np.save(tmp / "x.npy", x)
        cli, py = [], []
        for _ in range(args.reps):
            cli.append(wall([str(CLI), "infer", str(program), "--input", str(tmp / "x.npy")]))
            py.append(wall([sys.executable, "-c", PYTHON_INFER, str(program), str(tmp / "x.npy")]))
        c, p = statistics.median(cli), statistics.median(py)
        print(f"infer, {Path(args.model).name}, {args.samples} samples, median of {args.reps}:")
        print(f"  CLI    {c:.2f} s  ({', '.join(f'{t:.2f}' for t in cli)})")
        print(f"  Python {p:.2f} s  ({', '.join(f'{t:.2f}' for t in py)})")
        print(f"  overhead {100 * (p - c) / c:+.1f} %")
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT / "python"), "-w", str(tmp / "wheel")],
            check=True,
            capture_output=True,
        )
        for w in (tmp / "wheel").glob("*.whl"):
            print(f"wheel {w.name}: {w.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
