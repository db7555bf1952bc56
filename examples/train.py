#!/usr/bin/env python3
"""Train hepack's example models on MNIST-5k and export them to ONNX.

Needs `torch`, `numpy`, `onnx` and `onnxruntime` (only where you train; CI
never runs this script, it uses the committed `.onnx` files). Data comes from
`scripts/fetch_data.py`. Usage:

    python3 scripts/fetch_data.py
    python3 examples/train.py            # writes examples/models/*.onnx + metrics.json
    python3 examples/train.py cryptonets # retrains only the models named

Models (MOFHEI Fig. 3 LeNet, HE-PEx/MOFHEI autoencoders, one small MLP):
  lenet5  conv5x5(6, pad 2)-relu-maxpool2, conv5x5(16)-relu-maxpool2,
          conv5x5(120)-relu, dense 84-relu, dense 10          input [B,1,28,28]
  ae1     784-32-784    relu hidden, sigmoid output         input [B,784]
  ae2     784-64-784
  ae3     784-64-32-64-784
  mlp     784-64-10 with relu, softmax output               input [B,784]
  cryptonets  conv5x5(5, stride 2, pad 1)-x², dense 100-x², dense 10
          (the CryptoNets network, Gilad-Bachrach et al. 2016)  input [B,1,28,28]

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


class Square(nn.Module):
    """`x²`, exported as ONNX `Pow(x, 2)`: CryptoNets' activation."""

    def forward(self, x):
        return torch.pow(x, 2)


def cryptonets() -> nn.Module:
    # 28x28 padded by 1, 5x5 taps at stride 2: 5 maps of 13x13 = 845 features.
    return nn.Sequential(
        nn.Conv2d(1, 5, 5, stride=2, padding=1), Square(), nn.Flatten(),
        nn.Linear(845, 100), Square(), nn.Linear(100, 10),
    )


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


def classifier(name, model, flat, epochs, softmax_output=False, lr=1e-3):
    print(f"{name}: training", flush=True)
    x, y = load("train", flat)
    xt, yt = load("test", flat)
    train(model, x, y, nn.CrossEntropyLoss(), epochs, lr)
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


MODELS = {
    "lenet5": lambda: classifier("lenet5", lenet5(), flat=False, epochs=15),
    "mlp": lambda: classifier("mlp", mlp(), flat=True, epochs=15, softmax_output=True),
    "ae1": lambda: reconstruction("ae1", [784, 32, 784], epochs=30),
    "ae2": lambda: reconstruction("ae2", [784, 64, 784], epochs=30),
    "ae3": lambda: reconstruction("ae3", [784, 64, 32, 64, 784], epochs=30),
    "cryptonets": lambda: classifier("cryptonets", seeded(cryptonets), flat=False, epochs=30, lr=1e-3),
}


def seeded(make):
    """`make()` from a fresh seed, so a model added later trains the same
    alone or after the others (the first five share one seed, as they were
    trained)."""
    torch.manual_seed(SEED)
    return make()


def main():
    names = sys.argv[1:] or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        sys.exit(f"unknown model {unknown[0]!r}: choose from {', '.join(MODELS)}")
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "metrics.json"
    # Models not retrained keep their entries (lenet5_tuned is made by hepack).
    metrics = json.loads(path.read_text()) if path.exists() else {}
    for name in names:
        metrics[name] = MODELS[name]()
    metrics["_about"] = {"torch": torch.__version__, "opset": OPSET, "seed": SEED,
                         "train_samples": 4000, "script": "examples/train.py"}
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    print(json.dumps(metrics, indent=2, sort_keys=True))


if __name__ == "__main__":
    sys.exit(main())
