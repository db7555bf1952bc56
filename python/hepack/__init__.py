"""hepack: compile trained neural networks into CKKS programs and run them
on encrypted data, from Python.

A thin layer over hepack's Rust crates: every call runs the code the
``hepack`` command line runs, keyword arguments are that command's flags
(``act_layer=`` is ``--act-layer``), errors carry its messages, and keys and
ciphertexts serialise to the bytes of its files, so a Python client and a
CLI server (or the reverse) work together.

    import hepack, numpy as np
    model = hepack.load("examples/mlp.onnx")
    program = model.compile(sparsity=0.5)
    keys = program.keygen()                       # client: keeps keys
    ct = program.encrypt(keys, x)                 # client
    out = program.run(keys.eval_keys, ct)         # server: public keys only
    y = program.decrypt(keys, out)                # client
    np.abs(y - model.eval(x)).max()               # ~1e-4

The CLI's ``--help`` is the reference for every option.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from . import _native
from ._native import (
    CiphertextError,
    CompileError,
    Error,
    InputError,
    KeysError,
    ModelError,
    OptionError,
    ProgramError,
    RunError,
    SecurityError,
)

__version__: str = _native.__version__

__all__ = [
    "Ciphertexts",
    "CiphertextError",
    "CompileError",
    "Error",
    "EvalKeys",
    "InputError",
    "Keys",
    "KeysError",
    "Model",
    "ModelError",
    "OptionError",
    "Program",
    "ProgramError",
    "RunError",
    "SecurityError",
    "from_torch",
    "load",
]

PathLike = Union[str, "os.PathLike[str]"]
#: What the outputs of a model come back as: one array, or a dict of arrays
#: by output name when the model has several outputs.
Outputs = Union[np.ndarray, Dict[str, np.ndarray]]

# A secret key file's first bytes (runtime/src/keys.rs).
_SECRET_MAGIC = b"HPK-SKEY"

# The file names `hepack keygen KEYS/` writes.
SECRET_FILE = "secret.key"
EVAL_FILE = "eval.keys"


# --- arrays, options, files --------------------------------------------------


def _array(x: Any, what: str) -> Tuple[bytes, List[int]]:
    """``x`` as C-ordered float64 bytes and its shape."""
    try:
        a = np.asarray(x)
    except ValueError as e:  # ragged nested lists
        raise InputError(f"{what}: {e}") from None
    if a.dtype == object or not (
        np.issubdtype(a.dtype, np.floating)
        or np.issubdtype(a.dtype, np.integer)
        or a.dtype == np.bool_
    ):
        raise InputError(
            f"{what}: dtype {a.dtype} is not real numbers; give float32 or float64 values"
        )
    a = np.asarray(a, dtype=np.float64, order="C")
    return a.tobytes(), list(a.shape)


def _labels(y: Any, what: str) -> Tuple[bytes, List[int], bool]:
    """Targets: integer class ids (int64 bytes) or float values."""
    try:
        a = np.asarray(y)
    except ValueError as e:
        raise InputError(f"{what}: {e}") from None
    if np.issubdtype(a.dtype, np.integer):
        if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
            raise InputError(f"{what}: class ids above {np.iinfo(np.int64).max}")
        a = np.asarray(a, dtype=np.int64, order="C")
        return a.tobytes(), list(a.shape), True
    data, shape = _array(a, what)
    return data, shape, False


def _set(x: Any, y: Any, what: str) -> Tuple[bytes, List[int], bytes, List[int], bool]:
    xb, xs = _array(x, f"{what} inputs")
    yb, ys, classes = _labels(y, f"{what} labels")
    return xb, xs, yb, ys, classes


def _outputs(items: List[Tuple[str, bytes, List[int]]]) -> Outputs:
    arrays = {
        name: np.frombuffer(data, dtype=np.float64).reshape(shape).copy()
        for name, data, shape in items
    }
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    return arrays


def _argv(options: Mapping[str, Any]) -> List[str]:
    """Keyword arguments as the CLI's flags: ``act_layer={"/1/Relu": "cheb:4"}``
    is ``--act-layer /1/Relu=cheb:4``; True is a bare flag; None and False are
    left out; lists repeat the flag."""
    argv: List[str] = []

    def text(v: Any) -> str:
        if isinstance(v, (bytes, bytearray, memoryview)):
            raise OptionError(f"{name}: expected a number, a string or a path, not bytes")
        return os.fspath(v) if isinstance(v, os.PathLike) else str(v)

    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None:
            continue
        if isinstance(value, (bool, np.bool_)):
            if value:
                argv.append(flag)
            continue
        # `--flag=value`: a value that starts with '-' stays a value.
        if isinstance(value, Mapping):
            argv += [f"{flag}={k}={text(v)}" for k, v in value.items()]
        elif isinstance(value, (list, tuple)):
            argv += [f"{flag}={text(v)}" for v in value]
        else:
            argv.append(f"{flag}={text(value)}")
    return argv


def _calib(calib: Any, options: Dict[str, Any]) -> Optional[Tuple[bytes, List[int]]]:
    """A calibration batch: an array goes across, a path becomes ``--calib``."""
    if calib is None:
        return None
    if isinstance(calib, (str, os.PathLike)):
        options["calib"] = calib
        return None
    return _array(calib, "the calibration batch")


def _write_atomic(path: PathLike, data: bytes, private: bool = False) -> None:
    """Write ``data`` to a new temporary file beside ``path``, then rename it,
    so a failure never leaves half a file; ``private`` makes it mode 0600,
    else the umask gives its mode (as the CLI does)."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    mode = 0o600 if private else 0o666
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            fd = os.open(tmp, flags, mode)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"cannot create a temporary file beside {path}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _read(path: PathLike) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _bytes(data: Any, what: str) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{what}: expected bytes, got {type(data).__name__}")


# --- progress ---------------------------------------------------------------


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except Exception:
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


class _Progress:
    """A bar over the server's HE ops: tqdm's when it is installed and the
    output is a terminal or a notebook (``progress=None``), always
    (``True``), never (``False``), or any callable ``f(done, total)``."""

    def __init__(self, progress: Union[None, bool, Callable[[int, int], Any]], desc: str):
        self.bar: Any = None
        self.callback: Optional[Callable[[int, int], Any]] = None
        if callable(progress):
            self.callback = progress
            return
        show = progress if progress is not None else (sys.stderr.isatty() or _in_notebook())
        if not show:
            return
        try:
            if _in_notebook():
                from tqdm.auto import tqdm
            else:
                from tqdm import tqdm
        except ImportError:
            if progress:
                raise OptionError("progress=True needs tqdm: pip install tqdm") from None
            return
        self.bar = tqdm(total=0, desc=desc, unit="op", leave=False)
        self.callback = self._update

    def _update(self, done: int, total: int) -> None:
        if self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def __enter__(self) -> Optional[Callable[[int, int], Any]]:
        return self.callback

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()


# --- models -----------------------------------------------------------------


def load(source: Union[PathLike, bytes, bytearray, memoryview]) -> "Model":
    """Read an ONNX model from a path or from its bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return Model(_native.Model.load_bytes(bytes(source)))
    if isinstance(source, (str, os.PathLike)):
        return Model(_native.Model.load_path(os.fspath(source)))
    raise TypeError(f"hepack.load takes a path or ONNX bytes, not {type(source).__name__}")


def from_torch(module: Any, example_input: Any, **export_options: Any) -> "Model":
    """Export a PyTorch module with ``torch.onnx.export`` into memory and load
    it. ``example_input`` is a batch (its first dimension is the batch, made
    dynamic); ``export_options`` go to ``torch.onnx.export``."""
    try:
        import torch
    except ImportError:
        raise ModelError("hepack.from_torch needs PyTorch: pip install torch") from None
    buffer = io.BytesIO()
    options: Dict[str, Any] = dict(
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        opset_version=13,
    )
    options.update(export_options)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter writes the plain opset-13 graphs hepack
            # reads; newer releases warn that it is no longer their default.
            warnings.simplefilter("ignore", DeprecationWarning)
            # Releases before the `dynamo` argument export TorchScript anyway.
            if "dynamo" in inspect.signature(torch.onnx.export).parameters:
                options.setdefault("dynamo", False)
            torch.onnx.export(module, (example_input,), buffer, **options)
    finally:
        module.train(was_training)
    return load(buffer.getvalue())


def _model_from_bytes(data: bytes, report: Any, masks: Any) -> "Model":
    model = load(data)
    model.report, model.masks = report, masks
    return model


class Model:
    """An ONNX model in hepack's IR. Steps that change it (``transform``,
    ``prune``, ``tune``) return a new ``Model`` whose ``report`` says what the
    step did."""

    def __init__(self, native: "_native.Model", report: Optional[Dict[str, Any]] = None):
        self._native = native
        #: What the step that made this model did (None for a loaded one).
        self.report: Optional[Dict[str, Any]] = report
        #: The masks pruning applied (``prune``), as a mask file holds them.
        self.masks: Optional[Dict[str, Any]] = None

    @property
    def input_name(self) -> str:
        return self._native.input_name

    @property
    def input_shape(self) -> Tuple[int, ...]:
        """One sample's shape (the batch dimension left out)."""
        return tuple(self._native.input_shape)

    @property
    def output_names(self) -> List[str]:
        return list(self._native.output_names)

    def eval(self, x: Any) -> Outputs:
        """Run the reference interpreter (``hepack eval``) on a batch
        ``[samples, *input_shape]``; the oracle encrypted runs are checked
        against."""
        data, shape = _array(x, "the input")
        return _outputs(self._native.eval(data, shape))

    def inspect(
        self,
        *,
        he: bool = False,
        packing: str = "batch",
        block: Optional[str] = None,
        tile: Optional[str] = None,
        paper_counts: Optional[str] = None,
    ) -> Dict[str, Any]:
        """``hepack inspect --json``: ``["layers"]`` is the per-layer table as
        records (``pandas.DataFrame(model.inspect()["layers"])``),
        ``["pruning"]`` the units per layer, and with ``he=True`` ``["he"]``
        the HE program's op counts under ``packing`` (``tile="16x16"`` with
        ``packing="tile"``)."""
        argv = _argv(
            dict(packing=packing, block=block, tile=tile, he=he, paper_counts=paper_counts)
        )
        return json.loads(self._native.inspect(argv))

    def transform(
        self, passes: str = "he-friendly", *, calib: Any = None, **options: Any
    ) -> "Model":
        """Run passes (``hepack export``'s options: ``passes``, ``act``,
        ``act_layer``, ``calib``); ``report`` lists them."""
        options["passes"] = passes
        batch = _calib(calib, options)
        native, report = self._native.transform(_argv(options), batch)
        return Model(native, json.loads(report))

    def prune(
        self,
        sparsity: Optional[float] = None,
        *,
        masks: Optional[Mapping[str, Any]] = None,
        **options: Any,
    ) -> "Model":
        """Prune whole packed units (``hepack prune``'s options: ``sparsity``,
        ``layer={name: s}``, ``he_budget``, ``packing``, ``block``,
        ``criterion``, ``no_compress``…), or apply ``masks`` (a mask file's
        content, e.g. another model's ``.masks``)."""
        options["sparsity"] = sparsity
        text = json.dumps(masks) if masks is not None else None
        native, report, applied = self._native.prune(_argv(options), text)
        model = Model(native, json.loads(report))
        model.masks = json.loads(applied)
        return model

    def tune(
        self,
        x: Any,
        y: Any,
        *,
        val_data: Any = None,
        val_labels: Any = None,
        test_data: Any = None,
        test_labels: Any = None,
        **options: Any,
    ) -> "Model":
        """MOFHEI's fine-tuning flow (``hepack tune``): HE-friendly conversion,
        then pruning while training (``sparsity``, ``block``, ``epochs``,
        ``lr``, ``group_lasso``…). ``y`` holds class ids (integers) or target
        values; without ``val_data`` the last ``val`` fraction of ``x`` is
        held out. ``report`` has the checkpoints and every epoch."""
        if (val_data is None) != (val_labels is None):
            raise OptionError("tune: give val_data and val_labels together")
        if (test_data is None) != (test_labels is None):
            raise OptionError("tune: give test_data and test_labels together")
        if val_data is not None and "val" in options:
            raise OptionError("tune: val holds part of x out; with val_data there is nothing to hold out")
        train = _set(x, y, "the training set")
        val = None if val_data is None else _set(val_data, val_labels, "the validation set")
        test = None if test_data is None else _set(test_data, test_labels, "the test set")
        native, report = self._native.tune(_argv(options), train, val, test)
        return Model(native, json.loads(report))

    def to_onnx(self, *, f64: bool = False) -> bytes:
        """The model as ONNX bytes (float32 tensors, float64 with ``f64``)."""
        return self._native.to_onnx(f64)

    def export(self, path: PathLike, *, f64: bool = False) -> None:
        """Write the model as ONNX (``hepack compile`` and other tools read it)."""
        _write_atomic(path, self.to_onnx(f64=f64))

    def compile(
        self,
        packing: str = "batch",
        act: Optional[str] = None,
        calib: Any = None,
        sparsity: Optional[float] = None,
        *,
        masks: Optional[Mapping[str, Any]] = None,
        **params: Any,
    ) -> "Program":
        """Compile into a CKKS program (``hepack compile``): the he-friendly
        passes (``act``: square, poly:D or cheb:D fitted on ``calib``), pruning
        (``sparsity``, ``block``, ``layer``…, or ``masks`` as in ``prune``), and
        the program under ``packing``
        (batch, diagonal, or tile with ``tile="T1xT2"``) with 128-bit
        parameters chosen for it
        (``poly_degree``, ``scale_bits``, ``precision``, ``max_galois_keys``…
        pin or steer them). ``Program.report`` says what was done."""
        options = dict(params, packing=packing, act=act, sparsity=sparsity)
        batch = _calib(calib, options)
        text = json.dumps(masks) if masks is not None else None
        native, report = self._native.compile(_argv(options), batch, text)
        return Program(native, json.loads(report))

    def __reduce__(self) -> Tuple[Callable[..., "Model"], Tuple[Any, ...]]:
        return (_model_from_bytes, (self.to_onnx(f64=True), self.report, self.masks))

    def __repr__(self) -> str:
        return repr(self._native)


# --- programs, keys, ciphertexts --------------------------------------------


class _Blob:
    """Bytes in one of the CLI's file formats: read, written and pickled as
    they are."""

    def __init__(self, data: bytes):
        self._data = _bytes(data, type(self).__name__)
        if self._data.startswith(_SECRET_MAGIC):
            raise SecurityError(
                f"these bytes are a secret key, not {type(self).__name__}: the secret key stays in Keys, on the client"
            )

    @classmethod
    def from_bytes(cls, data: bytes) -> Any:
        return cls(data)

    @classmethod
    def load(cls, path: PathLike) -> Any:
        return cls(_read(path))

    def to_bytes(self) -> bytes:
        return self._data

    def __bytes__(self) -> bytes:
        return self._data

    def save(self, path: PathLike) -> None:
        _write_atomic(path, self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __reduce__(self) -> Tuple[type, Tuple[bytes]]:
        return (type(self), (self._data,))

    def __repr__(self) -> str:
        return f"<hepack.{type(self).__name__} {len(self._data)} bytes>"


class EvalKeys(_Blob):
    """The public evaluation keys (public key, relinearization and Galois
    keys): what the server gets. Bytes as ``hepack keygen`` writes
    ``eval.keys``; safe to pickle and send."""


class Keys:
    """A key set: the secret key, which stays with the client, and
    ``eval_keys``, the public evaluation keys for the server. Refuses to be
    pickled (it would carry the secret key); ``save`` writes the key
    directory ``hepack keygen`` writes (``secret.key`` mode 0600)."""

    def __init__(self, secret: bytes, eval_keys: Union[EvalKeys, bytes]):
        self._secret = _bytes(secret, "the secret key")
        self.eval_keys: EvalKeys = (
            eval_keys if isinstance(eval_keys, EvalKeys) else EvalKeys(eval_keys)
        )

    @classmethod
    def load(cls, directory: PathLike) -> "Keys":
        """Read a key directory (``hepack keygen``'s ``secret.key`` and ``eval.keys``)."""
        d = Path(directory)
        return cls(_read(d / SECRET_FILE), _read(d / EVAL_FILE))

    def save(self, directory: PathLike, *, force: bool = False) -> None:
        """Write ``secret.key`` (0600) and ``eval.keys`` into ``directory``;
        an existing key set is replaced only with ``force``."""
        d = Path(directory)
        secret, public = d / SECRET_FILE, d / EVAL_FILE
        if not force:
            for p in (secret, public):
                if p.exists():
                    raise KeysError(
                        f"{p} already exists: new keys would make every ciphertext made with it undecryptable; pass force=True to replace the key set"
                    )
        d.mkdir(parents=True, exist_ok=True)
        _write_atomic(public, self.eval_keys.to_bytes())
        _write_atomic(secret, self._secret, private=True)

    def secret_bytes(self) -> bytes:
        """The secret key's bytes (``secret.key``): keep them on the client."""
        return self._secret

    def __reduce__(self) -> Any:
        raise SecurityError(
            "a Keys holds the secret key and is not pickled; send keys.eval_keys to the server"
        )

    def __repr__(self) -> str:
        return f"<hepack.Keys secret key + {self.eval_keys!r}>"


class Ciphertexts(_Blob):
    """Encrypted inputs or outputs: bytes as ``hepack encrypt``/``run``
    write them. Outputs of ``Program.run`` carry the run's ``report``."""

    def __init__(self, data: bytes, report: Optional[Dict[str, Any]] = None):
        super().__init__(data)
        #: The server's run report (for outputs of ``Program.run``).
        self.report: Optional[Dict[str, Any]] = report

    def __reduce__(self) -> Tuple[type, Tuple[bytes, Any]]:
        return (Ciphertexts, (self._data, self.report))


def _ciphertext_bytes(ct: Any) -> bytes:
    if isinstance(ct, Ciphertexts):
        return ct.to_bytes()
    if isinstance(ct, (bytes, bytearray, memoryview)):
        return bytes(ct)
    raise TypeError(f"expected Ciphertexts or bytes, got {type(ct).__name__}")


def _secret(keys: Any) -> bytes:
    if isinstance(keys, Keys):
        return keys.secret_bytes()
    if isinstance(keys, EvalKeys):
        raise KeysError(
            "the evaluation keys cannot encrypt or decrypt here: give the Keys that keygen returned"
        )
    raise TypeError(f"expected the Keys that keygen returned, got {type(keys).__name__}")


def _program_from_bytes(data: bytes, report: Any) -> "Program":
    program = Program.from_bytes(data)
    program.report = report
    return program


class Program:
    """A compiled CKKS program. The client calls ``keygen``, ``encrypt`` and
    ``decrypt``; the server calls ``run`` with the public evaluation keys
    only; ``infer`` does all four in one process (demos, checks)."""

    def __init__(self, native: "_native.Program", report: Optional[Dict[str, Any]] = None):
        self._native = native
        #: What compiling did (passes, pruning, op counts, parameters); None
        #: for a program read from a file.
        self.report: Optional[Dict[str, Any]] = report

    @staticmethod
    def load(path: PathLike) -> "Program":
        """Read a program file (``hepack compile -o``'s)."""
        return Program.from_bytes(_read(path))

    @staticmethod
    def from_bytes(data: bytes) -> "Program":
        return Program(_native.Program.from_bytes(_bytes(data, "Program")))

    def to_bytes(self) -> bytes:
        return self._native.to_bytes()

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    def save(self, path: PathLike) -> None:
        """Write the program file (the CLI's ``keygen``/``run``/… read it)."""
        _write_atomic(path, self.to_bytes())

    def __reduce__(self) -> Tuple[Callable[..., "Program"], Tuple[bytes, Any]]:
        return (_program_from_bytes, (self.to_bytes(), self.report))

    @property
    def cost(self) -> Dict[str, Any]:
        """The op table as data (``hepack inspect PROGRAM.hep --json``'s
        ``he``): ``["layers"]`` per layer, ``["total"]``, ``["he_ops"]``,
        ``["depth"]``, predicted seconds (with this machine's calibrated op
        times when ``hepack calibrate`` made them)."""
        return self.inspect()["he"]

    def inspect(self) -> Dict[str, Any]:
        """``hepack inspect PROGRAM.hep --json``: parameters, security,
        rotation steps, key and ciphertext sizes, and the op table."""
        return json.loads(self._native.report())

    @property
    def text(self) -> str:
        """The program's text form (``hepack compile --emit-he``)."""
        return self._native.text()

    @property
    def input_shape(self) -> Tuple[int, ...]:
        return tuple(self._native.input_shape)

    @property
    def output_names(self) -> List[str]:
        return list(self._native.output_names)

    @property
    def packing(self) -> str:
        return self._native.packing

    @property
    def samples_per_ciphertext(self) -> int:
        return self._native.samples_per_ciphertext

    def keygen(self, *, insecure: bool = False) -> Keys:
        """A fresh key set for this program (client side)."""
        secret, public = self._native.keygen(insecure)
        return Keys(secret, EvalKeys(public))

    def encrypt(self, keys: Keys, x: Any, *, insecure: bool = False) -> Ciphertexts:
        """Encrypt a batch ``[samples, *input_shape]`` (client side)."""
        data, shape = _array(x, "the input")
        return Ciphertexts(self._native.encrypt(_secret(keys), data, shape, insecure))

    def run(
        self,
        eval_keys: Union[EvalKeys, bytes],
        ciphertexts: Union[Ciphertexts, bytes],
        *,
        threads: Optional[int] = None,
        progress: Union[None, bool, Callable[[int, int], Any]] = None,
        **options: Any,
    ) -> Ciphertexts:
        """Run the program on encrypted inputs (server side). Takes only the
        public evaluation keys and refuses a secret key. ``options`` are
        ``hepack run``'s: ``plain_cache_mib``, ``no_hoist``, ``no_group`` and the limits a
        server agrees to (``max_memory`` GiB, ``max_ops``, ``max_seconds``).
        Releases the GIL, so threads or a ``dask.distributed`` cluster can run
        batches side by side; the result's ``report`` has the run's op times."""
        if isinstance(eval_keys, Keys):
            raise SecurityError(
                "run takes the public evaluation keys (keys.eval_keys), not Keys: it holds the secret key, which stays with the client"
            )
        if isinstance(eval_keys, EvalKeys):
            public = eval_keys.to_bytes()
        else:
            public = _bytes(eval_keys, "the evaluation keys")
        argv = _argv(dict(options, threads=threads))
        with _Progress(progress, "hepack run") as callback:
            data, report = self._native.run(public, _ciphertext_bytes(ciphertexts), argv, callback)
        return Ciphertexts(data, json.loads(report))

    def decrypt(self, keys: Keys, ciphertexts: Union[Ciphertexts, bytes], *, insecure: bool = False) -> Outputs:
        """Decrypt the server's outputs (client side): one array
        ``[samples, *output_shape]``, or a dict by name for several outputs."""
        return _outputs(self._native.decrypt(_secret(keys), _ciphertext_bytes(ciphertexts), insecure))

    def infer(
        self,
        x: Any,
        *,
        threads: Optional[int] = None,
        insecure: bool = False,
        progress: Union[None, bool, Callable[[int, int], Any]] = None,
        report: bool = False,
        **options: Any,
    ) -> Union[Outputs, Tuple[Outputs, Dict[str, Any]]]:
        """Keys, encryption, the encrypted run and decryption in one call
        (``hepack infer``). With ``report=True`` returns ``(outputs,
        report)``; the report has the timings and the largest error against
        the program simulated in plaintext. ``options`` are ``hepack
        infer``'s (``plain_cache_mib``, ``no_hoist``, ``no_group``)."""
        data, shape = _array(x, "the input")
        argv = _argv(dict(options, threads=threads))
        with _Progress(progress, "hepack infer") as callback:
            items, text = self._native.infer(data, shape, argv, insecure, callback)
        ys = _outputs(items)
        return (ys, json.loads(text)) if report else ys

    def __repr__(self) -> str:
        return repr(self._native)
