#!/usr/bin/env python3
"""Encrypted batches of one program spread over dask.distributed workers,
checked against a run in this process.

    pip install "./python[distributed]"
    python3 examples/python/distributed_batches.py [--batches 3] [--workers 2]

The client compiles a model, makes the keys and encrypts several batches;
the program, the public evaluation keys and each batch's ciphertexts are
bytes that pickle, so dask ships them to workers, and `Program.run` releases
the GIL while it computes. The secret key never leaves this process (a
`hepack.Keys` refuses to be pickled). Each batch's decrypted outputs must
equal those of the same ciphertexts run here (CKKS evaluation is exact
modular arithmetic, so they match bit for bit) and the plaintext model
within 1e-3.

On a real cluster, start `dask scheduler` and `dask worker tcp://HOST:8786`
on the machines (each with `pip install ./python`), and pass
`--scheduler tcp://HOST:8786`; nothing else changes.
"""

import argparse
import time
from pathlib import Path

import numpy as np

import hepack

ROOT = Path(__file__).resolve().parents[2]


def serve(program, eval_keys, ciphertexts, threads):
    """What a worker runs: public inputs only."""
    return program.run(eval_keys, ciphertexts, threads=threads, progress=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "examples" / "models" / "mlp.onnx"))
    parser.add_argument("--sparsity", type=float, default=0.8, help="layer sparsity to compile at")
    parser.add_argument("--batches", type=int, default=3, help="ciphertext batches to run")
    parser.add_argument("--samples", type=int, default=32, help="samples per batch")
    parser.add_argument("--workers", type=int, default=2, help="local workers (ignored with --scheduler)")
    parser.add_argument("--scheduler", help="address of a running dask scheduler")
    args = parser.parse_args()

    from dask.distributed import Client, LocalCluster

    model = hepack.load(args.model)
    program = model.compile(sparsity=args.sparsity)
    keys = program.keygen()
    rng = np.random.default_rng(0)
    xs = [rng.random((args.samples, *model.input_shape)) for _ in range(args.batches)]
    cts = [program.encrypt(keys, x) for x in xs]
    plain = model.transform().prune(args.sparsity)

    t = time.perf_counter()
    local = [program.decrypt(keys, serve(program, keys.eval_keys, ct, None)) for ct in cts]
    t_local = time.perf_counter() - t

    cluster = None
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True)
        client = Client(cluster)
    try:
        # The program and the evaluation keys go to every worker once.
        shared_program, shared_keys = client.scatter([program, keys.eval_keys], broadcast=True)
        workers = len(client.scheduler_info()["workers"])
        threads = max(1, (client.nthreads() and sum(client.nthreads().values())) // workers)
        t = time.perf_counter()
        # Each batch's ciphertexts go to one worker, as data rather than in the task graph.
        futures = [
            client.submit(serve, shared_program, shared_keys, shared, threads, pure=False)
            for shared in client.scatter(cts)
        ]
        remote = [program.decrypt(keys, f.result()) for f in futures]
        t_remote = time.perf_counter() - t
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

    for i, (x, a, b) in enumerate(zip(xs, local, remote)):
        if not np.array_equal(a, b):
            raise SystemExit(f"batch {i}: the workers' outputs differ from this process's")
        err = np.abs(b - plain.eval(x)).max()
        if err > 1e-3:
            raise SystemExit(f"batch {i}: {err:.1e} from plaintext")
    print(
        f"{args.batches} batches of {args.samples} samples: in this process {t_local:.1f} s, "
        f"on {workers} dask worker(s) {t_remote:.1f} s; outputs equal bit for bit, within 1e-3 of plaintext"
    )


if __name__ == "__main__":
    main()
