#!/usr/bin/env python3
"""Train hepack's example models on MNIST-5k and export them to ONNX.

Needs `torch`, `numpy`, `onnx` and `onnxruntime` (only where you train; CI
never runs this script, it uses the committed `.onnx` files). Data comes from
`scripts/fetch_data.py`. Usage:

    python3 scripts/fetch_data.py
    python3 examples/train.py            # writes examples/models/*.onnx + metrics.json

Models (MOFHEI Fig. 3 LeNet, HE-PEx/MOFHEI autoencoders, one small MLP):
  lenet5  conv5x5(6, pad 2)-relu-maxpool2, conv5x5(16)-relu-maxpool2,
          conv5x5(120)-relu, dense 84-relu, dense 10          input [B,1,28,28]
  ae1     784-32-784    relu hidden, sigmoid output         input [B,784]
  ae2     784-64-784
  ae3     784-64-32-64-784
  mlp     784-64-10 with relu, softmax output               input [B,784]

Each model's test metric is measured twice, by PyTorch and by onnxruntime on the
exported file, and written to examples/models/metrics.json, which the Rust tests
compare against hepack's reference interpreter.
"""

import json
import os
import pathlib
import sys

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = pathlib.Path(os.environ.get("HEPACK_CACHE", ROOT / ".cache" / "hepack")) / "mnist"
OUT = ROOT / "examples" / "models"
SEED = 0
OPSET = 13


def lenet5() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def autoencoder(widths) -> nn.Module:
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b))
        layers.append(nn.Sigmoid() if i == len(widths) - 2 else nn.ReLU())
    return nn.Sequential(*layers)


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))


def load(split: str, flat: bool):
    x = np.load(DATA / f"mnist_{split}_x{'_flat' if flat else ''}.npy")
    y = np.load(DATA / f"mnist_{split}_y.npy")
    return torch.from_numpy(x), torch.from_numpy(y)


def train(model, x, target, loss_fn, epochs, lr):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), 64):
            idx = order[i:i + 64]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), target[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        print(f"  epoch {epoch + 1:2d}  loss {total / len(x):.4f}", flush=True)


def export(model, example, path: pathlib.Path):
    model.eval()
    tmp = path.with_suffix(".onnx.tmp")
    torch.onnx.export(
        model, (example,), str(tmp), dynamo=False, opset_version=OPSET,
        input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
    )
    os.replace(tmp, path)


def ort_run(path: pathlib.Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def classifier(name, model, flat, epochs, softmax_output=False):
    print(f"{name}: training", flush=True)
    x, y = load("train", flat)
    xt, yt = load("test", flat)
    train(model, x, y, nn.CrossEntropyLoss(), epochs, 1e-3)
    exported = nn.Sequential(model, nn.Softmax(dim=1)) if softmax_output else model
    exported.eval()
    with torch.no_grad():
        correct = int((exported(xt).argmax(1) == yt).sum())
    path = OUT / f"{name}.onnx"
    export(exported, xt[:1], path)
    ort_correct = int((ort_run(path, xt.numpy()).argmax(1) == yt.numpy()).sum())
    return {"task": "classification", "input": f"mnist_test_x{'_flat' if flat else ''}.npy",
            "labels": "mnist_test_y.npy", "test_samples": len(yt),
            "torch_correct": correct, "torch_accuracy": correct / len(yt),
            "onnxruntime_correct": ort_correct}


def reconstruction(name, widths, epochs):
    print(f"{name}: training", flush=True)
    model = autoencoder(widths)
    x, _ = load("train", True)
    xt, _ = load("test", True)
    train(model, x, x, nn.MSELoss(), epochs, 1e-3)
    model.eval()
    with torch.no_grad():
        mse = float(((model(xt).double() - xt.double()) ** 2).mean())
    path = OUT / f"{name}.onnx"
    export(model, xt[:1], path)
    ort_mse = float(((ort_run(path, xt.numpy()).astype(np.float64) - xt.numpy()) ** 2).mean())
    return {"task": "reconstruction", "input": "mnist_test_x_flat.npy",
            "labels": "mnist_test_x_flat.npy", "test_samples": len(xt),
            "torch_mse": mse, "onnxruntime_mse": ort_mse}


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    OUT.mkdir(parents=True, exist_ok=True)
    metrics = {
        "lenet5": classifier("lenet5", lenet5(), flat=False, epochs=15),
        "mlp": classifier("mlp", mlp(), flat=True, epochs=15, softmax_output=True),
        "ae1": reconstruction("ae1", [784, 32, 784], epochs=30),
        "ae2": reconstruction("ae2", [784, 64, 784], epochs=30),
        "ae3": reconstruction("ae3", [784, 64, 32, 64, 784], epochs=30),
    }
    metrics["_about"] = {"torch": torch.__version__, "opset": OPSET, "seed": SEED,
                         "train_samples": 4000, "script": "examples/train.py"}
    (OUT / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    print(json.dumps(metrics, indent=2, sort_keys=True))


if __name__ == "__main__":
    sys.exit(main())
