#!/usr/bin/env python3
"""Compile time against node count: writes ONNX chains of N nodes and times
`hepack compile` (or `hepack eval`) on each.

    python3 -m venv /tmp/onnxenv && /tmp/onnxenv/bin/pip install onnx numpy
    /tmp/onnxenv/bin/python scripts/bench_compile_scale.py [--sizes 5000,20000,100000]

Shapes of chain (each after one Gemm 16 -> 16, so the model is HE-friendly):
  identity  N Identity nodes (remove-identity bypasses them one by one)
  affine    N alternating Mul/Add by a constant vector (fold-scalings and
            fuse-linear fold them into the Gemm)
  deep      N alternating x*x and Gemm: multiplicative depth about N, which
            no 128-bit CKKS chain holds; hepack must refuse it quickly
Prints one CSV row per run: chain,nodes,seconds,exit status.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WIDTH = 16


def chain(kind: str, n: int) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(WIDTH, WIDTH)).astype(np.float32) * 0.1, "W"),
        numpy_helper.from_array(np.zeros(WIDTH, np.float32), "B"),
        numpy_helper.from_array(np.full(WIDTH, 1.0001, np.float32), "S"),
        numpy_helper.from_array(np.full(WIDTH, 1e-4, np.float32), "T"),
    ]
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["h0"], transB=1, name="gemm")]
    for i in range(n):
        a, b = f"h{i}", f"h{i + 1}"
        if kind == "identity":
            nodes.append(helper.make_node("Identity", [a], [b], name=f"id{i}"))
        elif kind == "affine":
            op, c = ("Mul", "S") if i % 2 == 0 else ("Add", "T")
            nodes.append(helper.make_node(op, [a, c], [b], name=f"{op.lower()}{i}"))
        elif kind == "deep":
            if i % 2 == 0:
                nodes.append(helper.make_node("Mul", [a, a], [b], name=f"sq{i}"))
            else:
                nodes.append(helper.make_node("Gemm", [a, "W", "B"], [b], transB=1, name=f"g{i}"))
        else:
            raise ValueError(kind)
    graph = helper.make_graph(
        nodes,
        f"{kind}{n}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, WIDTH])],
        [helper.make_tensor_value_info(f"h{n}", TensorProto.FLOAT, [1, WIDTH])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="5000,20000,100000")
    p.add_argument("--chains", default="identity,affine,deep")
    p.add_argument("--hepack", default="target/release/hepack")
    p.add_argument("--timeout", type=float, default=300)
    args = p.parse_args()
    print("chain,nodes,seconds,status")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.chains.split(","):
            for n in map(int, args.sizes.split(",")):
                model = os.path.join(tmp, f"{kind}{n}.onnx")
                onnx.save(chain(kind, n), model)
                cmd = [args.hepack, "compile", model, "-o", os.path.join(tmp, "out.hep")]
                start = time.perf_counter()
                try:
                    r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                    status = str(r.returncode)
                    if r.returncode != 0:
                        last = (r.stderr.strip().splitlines() or [""])[-1]
                        print(f"# {kind}{n}: {last[:200]}", file=sys.stderr)
                except subprocess.TimeoutExpired:
                    status = "timeout"
                print(f"{kind},{n},{time.perf_counter() - start:.2f},{status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
