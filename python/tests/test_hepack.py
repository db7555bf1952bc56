"""The Python package against the CLI and the plaintext interpreter.

Run by scripts/test.sh after the wheel is built into a virtual environment;
`HEPACK_CLI` names the `hepack` binary (default: the release build)."""

import os
import pickle
import stat
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

import hepack

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "examples" / "models"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
CLI = Path(os.environ.get("HEPACK_CLI", TARGET / "release" / "hepack"))


def cli(*args, **kwargs):
    """Run the hepack CLI; fail the test with its stderr if it fails."""
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: build it with cargo build --release (or set HEPACK_CLI)")
    done = subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, done.stderr
    return done


def batch(model, n, seed=0):
    return np.random.default_rng(seed).random((n, *model.input_shape))


@pytest.fixture(scope="module")
def mlp():
    return hepack.load(MODELS / "mlp.onnx")


@pytest.fixture(scope="module")
def pruned_program(mlp):
    """The MLP at 80 % column sparsity: a few seconds per encrypted run."""
    return mlp.compile(sparsity=0.8)


@pytest.fixture(scope="module")
def plain(mlp):
    """What the pruned program computes, in plaintext: compile runs the
    he-friendly passes (x² for ReLU, softmax stripped), then prunes."""
    return mlp.transform().prune(0.8)


@pytest.fixture(scope="module")
def keys(pruned_program):
    return pruned_program.keygen()


# --- models -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["mlp", "ae1", "ae2", "ae3", "lenet5"])
def test_eval_equals_the_cli(tmp_path, name):
    path = MODELS / f"{name}.onnx"
    model = hepack.load(path)
    x = batch(model, 8, seed=1)
    np.save(tmp_path / "x.npy", x)
    cli("eval", path, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    expected = np.load(tmp_path / "y.npy")
    got = model.eval(x)
    assert got.shape == expected.shape
    # The CLI writes float32 outputs.
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_load_from_bytes_equals_load_from_path(mlp):
    x = batch(mlp, 4)
    again = hepack.load((MODELS / "mlp.onnx").read_bytes())
    np.testing.assert_array_equal(again.eval(x), mlp.eval(x))
    assert again.input_shape == (784,) and again.output_names == mlp.output_names


def test_float32_and_integer_inputs_are_accepted(mlp):
    x = batch(mlp, 3)
    np.testing.assert_allclose(mlp.eval(x.astype(np.float32)), mlp.eval(x.astype(np.float32).astype(np.float64)))
    assert mlp.eval(np.zeros((2, 784), dtype=np.int32)).shape == (2, 10)


def test_inspect_is_the_clis_json(mlp):
    import json

    mine = mlp.inspect()
    theirs = json.loads(cli("inspect", MODELS / "mlp.onnx", "--json").stdout)
    assert mine["layers"] == theirs["layers"]
    assert mine["pruning"]["layers"] == theirs["pruning"]["layers"]
    compiled = json.loads(cli("compile", MODELS / "mlp.onnx", "--json").stdout)
    assert mlp.transform().inspect(he=True)["he"]["he_ops"] == compiled["he"]["he_ops"]


def test_prune_removes_he_ops_and_masks_round_trip(mlp):
    pruned = mlp.prune(0.5)
    ops = lambda m: sum(l["he_ops"] for l in m.inspect()["pruning"]["layers"])
    assert ops(pruned) < ops(mlp)
    assert pruned.report["model_sparsity"] > 0.3
    again = mlp.prune(masks=pruned.masks)
    x = batch(mlp, 4)
    np.testing.assert_array_equal(again.eval(x), pruned.eval(x))


def test_transform_and_export_round_trip(tmp_path, mlp):
    friendly = mlp.transform()
    assert [r["pass"] for r in friendly.report][0] == "remove-identity"
    out = tmp_path / "friendly.onnx"
    friendly.export(out, f64=True)
    x = batch(mlp, 4)
    np.testing.assert_allclose(hepack.load(out).eval(x), friendly.eval(x), atol=1e-12)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(friendly)).eval(x), friendly.eval(x), atol=1e-12)


def test_tune_trains_and_prunes(mlp):
    rng = np.random.default_rng(3)
    x = rng.random((96, 784))
    y = mlp.eval(x).argmax(axis=1)
    tuned = mlp.tune(x, y, sparsity=0.5, epochs=1, head_epochs=1, prune_epochs=1, prune_steps=1, batch_size=32)
    stages = [c["stage"] for c in tuned.report["checkpoints"]]
    assert stages[0] == "original" and "pruned" in stages
    assert tuned.report["train_samples"] + tuned.report["val_samples"] == 96
    pruned = tuned.report["checkpoints"][-1]
    assert pruned["model_sparsity"] > 0.3
    # Compressed: the pruned neurons are gone from the model itself.
    assert tuned.inspect()["total_params"] < mlp.inspect()["total_params"]


# --- encrypted inference -----------------------------------------------------


def test_client_server_round_trip_is_within_1e3_of_plaintext(mlp, pruned_program, keys, plain):
    x = batch(mlp, 12, seed=2)
    ct = pruned_program.encrypt(keys, x)
    out = pruned_program.run(keys.eval_keys, ct, threads=2)
    y = pruned_program.decrypt(keys, out)
    expected = plain.eval(x)
    assert y.shape == expected.shape == (12, 10)
    assert np.abs(y - expected).max() < 1e-3
    assert (y.argmax(1) == expected.argmax(1)).all()
    assert out.report["batches"] == 1 and out.report["ops"]


def test_infer_matches_plaintext_and_reports(mlp, pruned_program, plain):
    x = batch(mlp, 5, seed=4)
    y, report = pruned_program.infer(x, report=True)
    assert np.abs(y - plain.eval(x)).max() < 1e-3
    assert report["samples"] == 5 and report["max_abs_error"] < 1e-3


def test_program_cost_and_file_round_trip(tmp_path, pruned_program):
    cost = pruned_program.cost
    assert cost["he_ops"] == pruned_program.report["he"]["he_ops"] > 0
    assert [l["layer"] for l in cost["layers"]]
    path = tmp_path / "p.hep"
    pruned_program.save(path)
    theirs = cli("inspect", path, "--json").stdout
    import json

    assert json.loads(theirs)["he"]["he_ops"] == cost["he_ops"]
    assert hepack.Program.load(path).to_bytes() == pruned_program.to_bytes()


def test_compile_applies_masks_like_sparsity(mlp, pruned_program, plain):
    again = mlp.compile(masks=plain.masks)
    assert again.cost["he_ops"] == pruned_program.cost["he_ops"]


def test_single_sample_packing_runs_encrypted(mlp):
    program = mlp.compile(packing="diagonal", sparsity=0.5, block="channel-diagonal")
    assert program.packing == "diagonal"
    assert program.inspect()["rotation_steps"], "diagonal programs rotate"
    x = batch(mlp, 1, seed=6)
    y = program.infer(x, progress=False)
    assert np.abs(y - mlp.transform().prune(0.5, packing="diagonal", block="channel-diagonal").eval(x)).max() < 1e-3


def test_tile_packing_runs_encrypted_and_reports_its_tiles(mlp):
    program = mlp.compile(packing="tile", tile="16x16", sparsity=0.5, permute=True)
    assert program.packing == "tile"
    report = program.inspect()
    assert report["samples_per_ciphertext"] * 256 * 2 == report["params"]["degree"]
    x = batch(mlp, 5, seed=7)
    y = program.infer(x, progress=False)
    pruned = mlp.transform().prune(0.5, packing="tile", tile="16x16")
    assert np.abs(y - pruned.eval(x)).max() < 1e-3
    counts = mlp.transform().inspect(he=True, packing="tile", tile="16x16")
    # 49·4 weight tiles for fc1, 4 for fc2, and the mask that clears fc2's
    # partial sums from its column-0 output.
    assert counts["he"]["total"]["mul_plain"] == 49 * 4 + 4 + 1


def test_python_client_and_cli_server(tmp_path, mlp, pruned_program, keys, plain):
    """Bytes from Python are read by the CLI, and the CLI's by Python."""
    x = batch(mlp, 6, seed=5)
    program = tmp_path / "p.hep"
    pruned_program.save(program)
    keys.save(tmp_path / "keys")
    assert stat.S_IMODE(os.stat(tmp_path / "keys" / "secret.key").st_mode) == 0o600
    pruned_program.encrypt(keys, x).save(tmp_path / "x.ct")
    cli("run", program, "--eval-keys", tmp_path / "keys" / "eval.keys", "--input", tmp_path / "x.ct", "-o", tmp_path / "y.ct")
    y = pruned_program.decrypt(keys, hepack.Ciphertexts.load(tmp_path / "y.ct"))
    expected = plain.eval(x)
    assert np.abs(y - expected).max() < 1e-3

    # The reverse: CLI keys and encryption, a Python server, CLI decryption.
    np.save(tmp_path / "x.npy", x)
    cli("keygen", program, "--out-dir", tmp_path / "cli_keys")
    cli("encrypt", program, "--keys", tmp_path / "cli_keys", "--input", tmp_path / "x.npy", "-o", tmp_path / "x2.ct")
    loaded = hepack.Program.load(program)
    out = loaded.run(hepack.EvalKeys.load(tmp_path / "cli_keys" / "eval.keys"), hepack.Ciphertexts.load(tmp_path / "x2.ct"))
    out.save(tmp_path / "y2.ct")
    cli("decrypt", program, "--keys", tmp_path / "cli_keys", "--input", tmp_path / "y2.ct", "-o", tmp_path / "y2.npy")
    assert np.abs(np.load(tmp_path / "y2.npy") - expected).max() < 1e-3
    # And Python reads the CLI's key directory.
    assert np.abs(loaded.decrypt(hepack.Keys.load(tmp_path / "cli_keys"), out) - expected).max() < 1e-3


def test_the_server_refuses_a_secret_key(mlp, pruned_program, keys):
    ct = pruned_program.encrypt(keys, batch(mlp, 1))
    with pytest.raises(hepack.SecurityError, match="evaluation keys"):
        pruned_program.run(keys, ct)
    with pytest.raises(hepack.SecurityError, match="secret key"):
        pruned_program.run(keys.secret_bytes(), ct)


def test_pickling_ships_programs_keys_and_ciphertexts_but_never_the_secret_key(mlp, pruned_program, keys, plain):
    x = batch(mlp, 2)
    ct = pickle.loads(pickle.dumps(pruned_program.encrypt(keys, x)))
    program = pickle.loads(pickle.dumps(pruned_program))
    out = program.run(pickle.loads(pickle.dumps(keys.eval_keys)), ct)
    assert np.abs(program.decrypt(keys, out) - plain.eval(x)).max() < 1e-3
    with pytest.raises(hepack.SecurityError):
        pickle.dumps(keys)


def test_run_releases_the_gil_and_reports_progress(mlp, pruned_program, keys):
    ct = pruned_program.encrypt(keys, batch(mlp, 1))
    seen = []
    ticks = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks[0] += 1
            stop.wait(0.001)

    t = threading.Thread(target=count)
    t.start()
    before = ticks[0]
    try:
        pruned_program.run(keys.eval_keys, ct, progress=lambda done, total: seen.append((done, total)))
    finally:
        stop.set()
        t.join()
    assert ticks[0] - before > 50, "another Python thread ran while the program ran"
    assert seen and all(0 <= d <= t and t > 0 for d, t in seen)
    assert max(d for d, _ in seen) > seen[0][0], "progress advanced"


def test_a_failing_progress_callback_fails_the_call_without_killing_python(mlp, pruned_program, keys):
    ct = pruned_program.encrypt(keys, batch(mlp, 1))
    calls = []

    def fail(done, total):
        calls.append(done)
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        pruned_program.run(keys.eval_keys, ct, progress=fail)
    assert len(calls) == 1, "no call after the first exception"
    seen = []
    pruned_program.run(keys.eval_keys, ct, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1], "the end is always reported"
    assert [d for d, _ in seen] == sorted(set(d for d, _ in seen)), "in order, each once"


def test_server_limits_are_the_clis(mlp, pruned_program, keys):
    ct = pruned_program.encrypt(keys, batch(mlp, 1))
    with pytest.raises(hepack.RunError, match="max.ops"):
        pruned_program.run(keys.eval_keys, ct, max_ops=10)
    with pytest.raises(hepack.OptionError, match="threads"):
        pruned_program.run(keys.eval_keys, ct, threads=-1)
    out = pruned_program.run(keys.eval_keys, ct, no_hoist=True, plain_cache_mib=0, max_seconds=600)
    assert out.report["threads"] >= 1
    # Grouping off: every combination on its own, and the same result.
    alone = pruned_program.run(keys.eval_keys, ct, no_group=True)
    assert alone.report["combination_groups"] == 0
    assert np.array_equal(
        pruned_program.decrypt(keys, alone), pruned_program.decrypt(keys, out)
    )


def test_keyword_values_pass_as_given(mlp):
    # A negative value stays a value (and the CLI's own check refuses it).
    with pytest.raises(hepack.Error, match="precision"):
        mlp.compile(precision=-1e-3)
    # numpy booleans are flags; 0 is a value, not a missing option.
    pruning = mlp.compile(sparsity=0, no_compress=np.True_).report["pruning"]
    assert pruning["masks"] == "layer sparsity 0" and "compress" not in pruning
    with pytest.raises(hepack.OptionError, match="bytes"):
        mlp.compile(act=b"square")


def test_files_written_from_python_are_atomic_and_private_where_secret(tmp_path, pruned_program, keys):
    keys.save(tmp_path / "k")
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)
    assert mode(tmp_path / "k" / "secret.key") == 0o600
    umask = os.umask(0o022)
    os.umask(umask)
    assert mode(tmp_path / "k" / "eval.keys") == 0o666 & ~umask
    with pytest.raises(hepack.KeysError, match="force"):
        keys.save(tmp_path / "k")
    keys.save(tmp_path / "k", force=True)
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["eval.keys", "secret.key"], "no temporary files left"


def test_secret_key_bytes_are_never_wrapped_as_public_data(keys, pruned_program):
    with pytest.raises(hepack.SecurityError):
        hepack.EvalKeys(keys.secret_bytes())
    with pytest.raises(hepack.SecurityError):
        hepack.Ciphertexts(keys.secret_bytes())
    with pytest.raises(hepack.SecurityError):
        pruned_program.run(keys.eval_keys, keys.secret_bytes())


def test_reports_survive_pickling(mlp, pruned_program, keys):
    out = pruned_program.run(keys.eval_keys, pruned_program.encrypt(keys, batch(mlp, 1)))
    assert pickle.loads(pickle.dumps(out)).report == out.report
    assert pickle.loads(pickle.dumps(pruned_program)).report == pruned_program.report
    pruned = mlp.prune(0.5)
    again = pickle.loads(pickle.dumps(pruned))
    assert again.report == pruned.report and again.masks == pruned.masks


# --- bad input ----------------------------------------------------------------


def test_bad_inputs_raise_hepack_errors(tmp_path, mlp, pruned_program, keys):
    x = batch(mlp, 2)
    with pytest.raises(hepack.InputError, match="takes"):
        pruned_program.encrypt(keys, x[:, :100])
    with pytest.raises(hepack.InputError, match="takes"):
        mlp.eval(np.zeros((2, 3)))
    bad = x.copy()
    bad[1, 7] = np.nan
    with pytest.raises(hepack.InputError, match="finite"):
        pruned_program.encrypt(keys, bad)
    with pytest.raises(hepack.InputError, match="finite"):
        pruned_program.infer(bad)
    with pytest.raises(hepack.InputError, match="dtype"):
        pruned_program.encrypt(keys, np.array([["a"] * 784]))
    with pytest.raises(hepack.InputError, match="dtype"):
        mlp.eval(np.zeros((1, 784), dtype=complex))
    with pytest.raises(hepack.InputError):
        mlp.eval([[1.0, 2.0], [3.0]])
    with pytest.raises(hepack.InputError, match=r"shape \[\]"):
        mlp.eval(np.float64(1.0))
    with pytest.raises(hepack.InputError, match="calibration"):
        mlp.compile(calib=np.zeros((4, 3)))
    with pytest.raises(hepack.InputError, match="finite"):
        mlp.compile(calib=np.full((4, 784), np.nan))
    with pytest.raises(hepack.InputError, match="training set"):
        mlp.tune(np.zeros((8, 3)), np.zeros(8, dtype=np.int64), epochs=1)
    with pytest.raises(hepack.InputError, match="targets for 7"):
        mlp.tune(np.zeros((8, 784)), np.zeros(7, dtype=np.int64), epochs=1)
    with pytest.raises(hepack.CompileError, match="masks_in"):
        mlp.prune(masks=mlp.prune(0.5).masks, masks_in="m.json")
    with pytest.raises(hepack.ModelError, match="ONNX"):
        hepack.load(b"not a model")
    with pytest.raises(hepack.ModelError, match="cannot read"):
        hepack.load(tmp_path / "missing.onnx")
    with pytest.raises(hepack.ProgramError):
        hepack.Program.from_bytes(b"HPK-PROG" + bytes(40))
    with pytest.raises(hepack.OptionError, match="no_such_flag"):
        mlp.compile(no_such_flag=1)
    with pytest.raises(hepack.OptionError, match="sparsity"):
        mlp.compile(sparsity="lots")
    with pytest.raises(hepack.CompileError, match="block"):
        mlp.prune(0.5, block="hunter")
    # A program with other parameters refuses these ciphertexts and keys.
    other = mlp.compile(sparsity=0.8, poly_degree=16384)
    ct = pruned_program.encrypt(keys, x)
    with pytest.raises(hepack.CiphertextError):
        other.run(other.keygen().eval_keys, ct)
    with pytest.raises(hepack.KeysError):
        other.encrypt(keys, x)
    # Inputs where outputs belong, and keys of another key set.
    with pytest.raises(hepack.CiphertextError, match="expected"):
        pruned_program.decrypt(keys, ct)
    with pytest.raises(hepack.KeysError, match="key set"):
        pruned_program.run(pruned_program.keygen().eval_keys, ct)
    # Another program with the same parameters reads other input features.
    narrow = mlp.compile(sparsity=0.8, block="1x64")
    with pytest.raises(hepack.CiphertextError, match="features"):
        narrow.run(keys.eval_keys, ct)


def test_errors_have_the_clis_messages(tmp_path, mlp):
    x = batch(mlp, 1)
    np.save(tmp_path / "x.npy", x)
    done = subprocess.run(
        [str(CLI), "compile", MODELS / "mlp.onnx", "--sparsity", "0.5", "--block", "hunter"],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    with pytest.raises(hepack.CompileError) as raised:
        mlp.compile(sparsity=0.5, block="hunter")
    assert str(raised.value) == done.stderr.strip().removeprefix("error: ")


# --- PyTorch --------------------------------------------------------------------


def test_from_torch_equals_the_module():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch)")
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(20, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)
    ).double()
    x = torch.rand(5, 20, dtype=torch.float64)
    model = hepack.from_torch(module, x)
    np.testing.assert_allclose(model.eval(x.numpy()), module(x).detach().numpy(), atol=1e-5)
