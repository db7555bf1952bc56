#!/usr/bin/env python3
"""Export small PyTorch models that use the ONNX patterns real exports emit.

Each model is exported by both of PyTorch's exporters (`dynamo=True`, the
default, and the legacy `dynamo=False`) at opset 20 with a dynamic batch, and
run by onnxruntime on a fixed input. The files land in `tests/data/exported/`:

    <model>.<exporter>.onnx     the exported model
    <model>.x.npy               the input, float32 [8, ...]
    <model>.<exporter>.y.npy    onnxruntime's output on it (a model with
                                several outputs: y.<name>.npy for each, as
                                `hepack eval --output y.npy` names them)
    manifest.json               torch/onnx/onnxruntime versions, one entry per file

`tests/exported.rs` loads every entry, checks hepack's interpreter against
onnxruntime (1e-5 relative), compiles it through the HE-friendly pipeline and
runs the small ones encrypted. Weights are random (seeded): these files test
the frontend, not accuracy. Needs `torch`, `onnx`, `onnxscript`,
`onnxruntime` (only where you regenerate; CI uses the committed files):

    python3 examples/export_patterns.py
"""

import json
import pathlib

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torch import nn

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "exported"
OPSET = 20
BATCH = 8


class Mlp(nn.Module):
    """16 → 12 → act → 4: one activation between two dense layers."""

    def __init__(self, act, bias=True):
        super().__init__()
        self.fc1 = nn.Linear(16, 12, bias=bias)
        self.act = act
        self.fc2 = nn.Linear(12, 4, bias=bias)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Affine(nn.Module):
    """`x * 0.5 + 1` before a dense layer: constants the chain must hold."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(x * 0.5 + 1)


class SigmoidAe(nn.Module):
    """A small sigmoid autoencoder, 16 → 6 → 16."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(16, 6)
        self.dec = nn.Linear(6, 16)

    def forward(self, x):
        return torch.sigmoid(self.dec(torch.relu(self.enc(x))))


class ConvHead(nn.Module):
    """conv 3×3 → ReLU → a head written one of the ways exporters see it."""

    def __init__(self, head):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.head = head
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 if head not in ("view", "view_sizes") else 4 * 8 * 8, 3)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        if self.head == "adaptive":
            y = torch.flatten(self.pool(y), 1)
        elif self.head == "mean":
            y = y.mean((2, 3))
        elif self.head == "squeeze":
            y = self.pool(y).squeeze(-1).squeeze(-1)
        elif self.head == "view_sizes":
            y = y.view(y.size(0), y.size(1) * y.size(2) * y.size(3))
        else:
            y = y.view(y.size(0), -1)
        return self.fc(y)


class Conv1d(nn.Module):
    """ECG-style: conv1d → ReLU → avgpool1d → conv1d → flatten → dense."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(2, 4, 5, stride=2, padding=2)
        self.pool = nn.AvgPool1d(2)
        self.c2 = nn.Conv1d(4, 4, 3)
        self.fc = nn.Linear(4 * 4, 3)

    def forward(self, x):
        y = self.pool(torch.relu(self.c1(x)))
        return self.fc(torch.flatten(torch.relu(self.c2(y)), 1))


class Depthwise(nn.Module):
    """MobileNet-style block: depthwise 3×3, pointwise 1×1, grouped 3×3."""

    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(2, 2, 3, padding=1, groups=2)
        self.pw = nn.Conv2d(2, 4, 1)
        self.grouped = nn.Conv2d(4, 4, 3, groups=2)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        y = torch.relu(self.pw(torch.relu(self.dw(x))))
        return self.fc(torch.flatten(torch.relu(self.grouped(y)), 1))


class Decoder(nn.Module):
    """A conv autoencoder's decoder: strided conv down, ConvTranspose2d back up."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(2, 4, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x):
        return torch.sigmoid(self.up(torch.relu(self.down(x))))


class Decoder1d(nn.Module):
    """ConvTranspose1d upsampling a time series."""

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose1d(2, 3, 4, stride=2, padding=1)
        self.fc = nn.Linear(3 * 24, 2)

    def forward(self, x):
        return self.fc(torch.flatten(torch.tanh(self.up(x)), 1))


class Upsampled(nn.Module):
    """conv → ReLU → nn.Upsample(×2) → conv (U-Net-style decoder step)."""

    def __init__(self, mode, align_corners=None):
        super().__init__()
        self.c1 = nn.Conv2d(2, 3, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode=mode, align_corners=align_corners)
        self.c2 = nn.Conv2d(3, 2, 3)

    def forward(self, x):
        return self.c2(self.up(torch.relu(self.c1(x))))


class Padded(nn.Module):
    """F.pad before a convolution, in one of its modes."""

    def __init__(self, mode):
        super().__init__()
        self.mode = mode
        self.conv = nn.Conv2d(2, 3, 3)

    def forward(self, x):
        if self.mode == "constant":
            x = F.pad(x, (1, 2, 0, 1), mode="constant", value=0.5)
        else:
            x = F.pad(x, (1, 2, 2, 1), mode=self.mode)
        return self.conv(x)


class Residual(nn.Module):
    """A ResNet basic block: conv-BN-ReLU-conv-BN plus the identity, ReLU."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 3, padding=1)
        self.c1 = nn.Conv2d(4, 4, 3, padding=1)
        self.b1 = nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.b2 = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        y = self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))
        y = torch.relu(x + y)
        return self.fc(y.mean((2, 3)))


class Inception(nn.Module):
    """Two branches joined by torch.cat along channels, and an MLP skip (x - f(x))."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 3, 1)
        self.b = nn.Conv2d(2, 2, 3, padding=1)
        self.fc = nn.Linear(5 * 8 * 8, 4)
        self.fc2 = nn.Linear(4, 4)

    def forward(self, x):
        y = torch.cat([torch.relu(self.a(x)), torch.tanh(self.b(x))], dim=1)
        z = self.fc(torch.flatten(y, 1))
        return z - torch.relu(self.fc2(z))


class LogSoftmaxMlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = Mlp(nn.ReLU())

    def forward(self, x):
        return F.log_softmax(self.body(x), dim=1)


class TwoHeads(nn.Module):
    """A shared trunk, a class head (softmax) and a regression head; the trunk's
    features are an output too, read by both heads."""

    outputs = ["probs", "box", "features"]

    def __init__(self):
        super().__init__()
        self.trunk = nn.Linear(16, 12)
        self.cls = nn.Linear(12, 4)
        self.reg = nn.Linear(12, 2)

    def forward(self, x):
        h = torch.relu(self.trunk(x))
        return torch.softmax(self.cls(h), dim=1), self.reg(h), h


def models():
    """(name, module, input shape) of every exported model."""
    acts = {
        "relu": nn.ReLU(),
        "tanh": nn.Tanh(),
        "softplus": nn.Softplus(),
        "gelu": nn.GELU(),
        "gelu_tanh": nn.GELU(approximate="tanh"),
        "silu": nn.SiLU(),
        "hardswish": nn.Hardswish(),
        "hardsigmoid": nn.Hardsigmoid(),
        "relu6": nn.ReLU6(),
        "elu": nn.ELU(),
        "prelu": nn.PReLU(),
        "leaky_relu": nn.LeakyReLU(0.1),
        "mish": nn.Mish(),
    }
    out = [(f"mlp_{k}", Mlp(v), (16,)) for k, v in acts.items()]
    out += [
        ("mlp_nobias", Mlp(nn.ReLU(), bias=False), (16,)),
        ("affine", Affine(), (16,)),
        ("sigmoid_ae", SigmoidAe(), (16,)),
        ("logsoftmax", LogSoftmaxMlp(), (16,)),
        ("gap_adaptive", ConvHead("adaptive"), (2, 8, 8)),
        ("gap_mean", ConvHead("mean"), (2, 8, 8)),
        ("gap_squeeze", ConvHead("squeeze"), (2, 8, 8)),
        ("view_flatten", ConvHead("view"), (2, 8, 8)),
        ("view_sizes", ConvHead("view_sizes"), (2, 8, 8)),
        ("conv1d", Conv1d(), (2, 24)),
        ("depthwise", Depthwise(), (2, 8, 8)),
        ("conv_transpose", Decoder(), (2, 8, 8)),
        ("conv_transpose1d", Decoder1d(), (2, 12)),
        ("upsample_nearest", Upsampled("nearest"), (2, 6, 6)),
        ("upsample_bilinear", Upsampled("bilinear", align_corners=False), (2, 6, 6)),
        ("upsample_bilinear_corners", Upsampled("bilinear", align_corners=True), (2, 6, 6)),
        ("pad_constant", Padded("constant"), (2, 6, 6)),
        ("pad_reflect", Padded("reflect"), (2, 6, 6)),
        ("pad_replicate", Padded("replicate"), (2, 6, 6)),
        ("residual", Residual(), (2, 6, 6)),
        ("concat", Inception(), (2, 8, 8)),
        ("two_heads", TwoHeads(), (16,)),
    ]
    return out


def output_names(module):
    return getattr(module, "outputs", ["y"])


def export(module, x, path, dynamo):
    names = output_names(module)
    kwargs = dict(input_names=["x"], output_names=names, opset_version=OPSET, dynamo=dynamo)
    if dynamo:
        kwargs["dynamic_shapes"] = {"x": {0: torch.export.Dim("batch", min=2)}}
        kwargs["external_data"] = False
    else:
        kwargs["dynamic_axes"] = {"x": {0: "batch"}, **{n: {0: "batch"} for n in names}}
    torch.onnx.export(module, (x,), str(path), **kwargs)


def main():
    import onnx

    OUT.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (name, module, shape) in enumerate(models()):
        torch.manual_seed(1000 + i)
        for p in module.parameters():
            # PReLU's slope must stay a single negative-side slope.
            nn.init.uniform_(p, -0.6, 0.6)
        module.eval()
        x = torch.randn(BATCH, *shape, generator=torch.Generator().manual_seed(i))
        np.save(OUT / f"{name}.x.npy", x.numpy().astype(np.float32))
        for exporter, dynamo in (("dynamo", True), ("legacy", False)):
            path = OUT / f"{name}.{exporter}.onnx"
            export(module, x, path, dynamo)
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            ys = sess.run(None, {"x": x.numpy()})
            with torch.no_grad():
                refs = module(x)
            refs = refs if isinstance(refs, tuple) else (refs,)
            names = output_names(module)
            for out, y, ref in zip(names, ys, refs, strict=True):
                assert np.allclose(y, ref.numpy(), rtol=1e-4, atol=1e-5), (name, exporter, out)
                suffix = "y" if len(names) == 1 else f"y.{out}"
                np.save(OUT / f"{name}.{exporter}.{suffix}.npy", y.astype(np.float32))
            ops = sorted({n.op_type for n in onnx.load(str(path)).graph.node})
            entries.append(
                {
                    "model": name,
                    "exporter": exporter,
                    "file": path.name,
                    "outputs": names,
                    "ops": ops,
                }
            )
            print(f"{path.name}: {', '.join(ops)}")
    manifest = {
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "opset": OPSET,
        "models": entries,
    }
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
