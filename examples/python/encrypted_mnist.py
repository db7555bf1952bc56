#!/usr/bin/env python3
"""Encrypted MNIST from Python: a LeNet-5 compiled by hepack and run on
encrypted test digits, then the MOFHEI-style curve of sparsity, accuracy and
HE ops.

    python3 scripts/fetch_data.py            # MNIST-5k into .cache/hepack/mnist
    pip install ./python                     # hepack for Python
    python3 examples/python/encrypted_mnist.py [--samples 200] [--train]

Without --train it loads the LeNet-5 hepack fine-tuned and pruned
(examples/models/lenet5_tuned.onnx). With --train (needs PyTorch) it trains
a LeNet-5 in PyTorch, loads it with `hepack.from_torch`, and lets hepack's
`Model.tune` make it HE-friendly and prune it. Either way the model is
compiled to a batch-packed CKKS program at 128-bit security, and the test
digits are encrypted, classified on ciphertexts and decrypted. The curve
needs matplotlib for its plot (a table is printed either way).
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

import hepack

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "examples" / "models"
DATA = Path(os.environ.get("HEPACK_CACHE", ROOT / ".cache" / "hepack")) / "mnist"


def digits(split):
    """MNIST-5k digits in [0, 1], [N, 1, 28, 28], and their labels."""
    x, y = DATA / f"mnist_{split}_x.npy", DATA / f"mnist_{split}_y.npy"
    if x.exists() and y.exists():
        return np.load(x).astype(np.float64), np.load(y)
    if split == "test":
        # The 500 digits `hepack demo` bundles.
        d = ROOT / "examples" / "data"
        return np.load(d / "demo_test_x.npy") / 255.0, np.load(d / "demo_test_y.npy").astype(np.int64)
    sys.exit(f"{x} is missing: run python3 scripts/fetch_data.py")


def trained_in_torch(train_x, train_y):
    """A LeNet-5 trained for two epochs in PyTorch, then made HE-friendly and
    pruned by hepack."""
    try:
        import torch
        from torch import nn
    except ImportError:
        sys.exit("--train needs PyTorch: pip install torch")
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = torch.tensor(train_x, dtype=torch.float32), torch.tensor(train_y)
    for epoch in range(2):
        for i in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[i]), y[i]).backward()
            opt.step()
    print("trained LeNet-5 in PyTorch (2 epochs)")
    model = hepack.from_torch(net, x[:8])
    # hepack's own fine-tuning: fitted quadratics, average pools, then 80 %
    # of the filters and neurons pruned while training.
    tuned = model.tune(train_x, train_y, act="poly:2", sparsity=0.8, epochs=2, prune_epochs=4)
    for c in tuned.report["checkpoints"]:
        print(f"  tune {c['stage']:<12} val accuracy {c['val_metric']:.3f}")
    return tuned


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200, help="test digits to classify encrypted")
    parser.add_argument("--train", action="store_true", help="train the model in PyTorch first")
    parser.add_argument("--curve", default="sparsity_curve.png", help="where to plot the curve (PNG)")
    parser.add_argument("--no-curve", action="store_true", help="skip the sparsity curve")
    args = parser.parse_args()

    test_x, test_y = digits("test")
    test_x, test_y = test_x[: args.samples], test_y[: args.samples]
    calib = digits("train")[0][:500] if (DATA / "mnist_train_x.npy").exists() else test_x
    if args.train:
        train_x, train_y = digits("train")
        model = trained_in_torch(train_x, train_y)
    else:
        model = hepack.load(MODELS / "lenet5_tuned.onnx")
    print(model)

    t = time.perf_counter()
    program = model.compile(calib=calib)
    cost = program.cost
    print(
        f"compiled in {time.perf_counter() - t:.1f} s: {cost['he_ops']} HE ops, depth {cost['depth']}, "
        f"N = {program.report['ckks']['degree']}, {program.samples_per_ciphertext} digits per ciphertext"
    )

    t = time.perf_counter()
    keys = program.keygen()  # client
    ct = program.encrypt(keys, test_x)  # client
    t_client = time.perf_counter() - t
    t = time.perf_counter()
    out = program.run(keys.eval_keys, ct)  # server: public keys only
    t_server = time.perf_counter() - t
    t = time.perf_counter()
    scores = program.decrypt(keys, out)  # client
    t_client += time.perf_counter() - t
    accuracy = float((scores.argmax(axis=1) == test_y).mean())
    plain = model.transform().eval(test_x)
    agree = float((plain.argmax(axis=1) == scores.argmax(axis=1)).mean())
    print(
        f"encrypted: accuracy {accuracy:.3f} on {len(test_y)} digits, argmax equal to plaintext on "
        f"{100 * agree:.1f} %, max |error| {np.abs(plain - scores).max():.1e}"
    )
    print(
        f"latency: server {t_server:.1f} s for the batch ({len(test_y) / t_server:.1f} digits/s), "
        f"client keys + encryption + decryption {t_client:.1f} s"
    )

    if not args.no_curve:
        curve(test_x, test_y, calib, args.curve)


def curve(x, y, calib, path):
    """MOFHEI's trade-off on the unpruned LeNet-5, pruned without fine-tuning
    (whole filters and neurons, mean |w|): accuracy and HE ops per sparsity."""
    base = hepack.load(MODELS / "lenet5.onnx").transform(act="poly:2", calib=calib)
    rows = []
    for s in [0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9]:
        m = base.prune(s) if s > 0 else base
        ops = sum(layer["he_ops"] for layer in m.inspect()["pruning"]["layers"])
        acc = float((m.eval(x).argmax(axis=1) == y).mean())
        rows.append((s, acc, ops))
    print("\nlayer sparsity  accuracy (no fine-tuning)  linear-layer HE ops")
    for s, acc, ops in rows:
        print(f"{s:>14.2f}  {acc:>24.3f}  {ops:>19}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(pip install matplotlib to plot the curve)")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    (a,) = ax.plot([r[0] for r in rows], [r[1] for r in rows], "o-", label="accuracy")
    ax.set_xlabel("layer sparsity")
    ax.set_ylabel("plaintext accuracy (no fine-tuning)")
    ax2 = ax.twinx()
    (b,) = ax2.plot([r[0] for r in rows], [r[2] for r in rows], "s--", color="C1", label="HE ops")
    ax2.set_ylabel("linear-layer HE ops")
    ax.legend(handles=[a, b], loc="upper right")
    ax.set_title("LeNet-5, whole filters and neurons pruned")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"curve plotted to {path}")


if __name__ == "__main__":
    main()
