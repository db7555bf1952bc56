//! The client/server flow through the CLI: keygen → encrypt → run (server,
//! evaluation keys only) → decrypt agrees with plaintext evaluation; key
//! permissions; bad files fail cleanly and write nothing.

mod common;

use std::path::Path;

use common::{hepack, mnist, model};

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The MLP with 90% of its hidden neurons pruned: a real model that runs
/// encrypted in seconds.
fn compile_small_mlp(dir: &Path) -> std::path::PathBuf {
    let program = dir.join("mlp.hep");
    let (ok, _, err) = hepack(&[
        "compile",
        path(&model("mlp")),
        "--sparsity",
        "0.9",
        "-o",
        path(&program),
    ]);
    assert!(ok, "{err}");
    program
}

/// The first `n` flat test digits as a float32 .npy file.
fn digits(dir: &Path, n: usize) -> std::path::PathBuf {
    let x = common::read_f32(&mnist("mnist_test_x_flat.npy"));
    let x = x
        .slice_axis(ndarray::Axis(0), (0..n).into())
        .mapv(|v| v as f32);
    let out = dir.join("x.npy");
    ndarray_npy::write_npy(&out, &x).unwrap();
    out
}

/// `hepack encrypt` of `x` for `program` with the keys in `keys`, to `out`.
fn encrypt(program: &Path, keys: &Path, x: &Path, out: &Path) {
    let (ok, _, err) = hepack(&[
        "encrypt",
        path(program),
        "--keys",
        path(keys),
        "--input",
        path(x),
        "-o",
        path(out),
    ]);
    assert!(ok, "{err}");
}

/// `hepack decrypt` of `input` to `out`.
fn decrypt(program: &Path, keys: &Path, input: &Path, out: &Path) {
    let (ok, _, err) = hepack(&[
        "decrypt",
        path(program),
        "--keys",
        path(keys),
        "--input",
        path(input),
        "-o",
        path(out),
    ]);
    assert!(ok, "{err}");
}

/// The largest difference between two `.npy` files of one shape.
fn max_difference(a: &Path, b: &Path) -> f64 {
    let (a, b) = (common::read_f64(a), common::read_f64(b));
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max)
}

#[test]
fn client_server_flow_matches_plaintext_and_never_needs_the_secret_key_on_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let program = compile_small_mlp(dir);
    let keys = dir.join("keys");
    let (ok, out, err) = hepack(&["keygen", path(&program), "--out-dir", path(&keys)]);
    assert!(ok, "{err}");
    assert!(out.contains("secret.key"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keys.join("secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "secret key mode {mode:o}");
    }

    let x = digits(dir, 20);
    let cts = dir.join("x.ct");
    encrypt(&program, &keys, &x, &cts);

    // The server's directory holds the evaluation keys and nothing else.
    let server = dir.join("server");
    std::fs::create_dir(&server).unwrap();
    std::fs::copy(keys.join("eval.keys"), server.join("eval.keys")).unwrap();
    let y_ct = dir.join("y.ct");
    let (ok, out, err) = hepack(&[
        "run",
        path(&program),
        "--eval-keys",
        path(&server.join("eval.keys")),
        "--input",
        path(&cts),
        "-o",
        path(&y_ct),
        "--threads",
        "2",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("floor ratio"), "{out}");

    // The same run, as JSON for a machine: every HE op of the program ran
    // once (the count leaves out picking up inputs and marking outputs).
    let (ok, out, err) = hepack(&[
        "run",
        path(&program),
        "--eval-keys",
        path(&server.join("eval.keys")),
        "--input",
        path(&cts),
        "-o",
        path(&dir.join("y2.ct")),
        "--threads",
        "1",
        "--json",
    ]);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (ok, inspected, err) = hepack(&["inspect", path(&program), "--json"]);
    assert!(ok, "{err}");
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    let ran: u64 = report["ops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["kind"] != "encrypt_input" && k["kind"] != "output")
        .map(|k| k["count"].as_u64().unwrap())
        .sum();
    assert_eq!(Some(ran), inspected["he"]["he_ops"].as_u64(), "{out}");
    assert_eq!(report["threads"], 1);
    assert!(report["wall_seconds"].as_f64().unwrap() > 0.0);
    assert!(report["peak_rss_bytes"].as_u64().unwrap() > 0);

    let y = dir.join("y.npy");
    decrypt(&program, &keys, &y_ct, &y);

    // The same model in plaintext, through the same passes and pruning.
    let plain = dir.join("plain.npy");
    let (ok, _, err) = hepack(&[
        "eval",
        path(&model("mlp")),
        "--passes",
        "he-friendly",
        "--sparsity",
        "0.9",
        "--input",
        path(&x),
        "-o",
        path(&plain),
    ]);
    assert!(ok, "{err}");
    let err = max_difference(&y, &plain);
    assert!(err <= 1e-3, "max |error| {err}");

    // The secret key is not an evaluation key file, and `run` says so.
    let (ok, _, err) = hepack(&[
        "run",
        path(&program),
        "--eval-keys",
        path(&keys.join("secret.key")),
        "--input",
        path(&cts),
        "-o",
        path(&dir.join("never.ct")),
    ]);
    assert!(!ok);
    assert!(err.contains("this is a secret key file"), "{err}");
    assert!(!dir.join("never.ct").exists());
}

#[test]
fn damaged_ciphertexts_and_keys_fail_cleanly_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let program = compile_small_mlp(dir);
    let keys = dir.join("keys");
    assert!(hepack(&["keygen", path(&program), "--out-dir", path(&keys)]).0);
    let x = digits(dir, 3);
    let cts = dir.join("x.ct");
    assert!(
        hepack(&[
            "encrypt",
            path(&program),
            "--keys",
            path(&keys),
            "--input",
            path(&x),
            "-o",
            path(&cts),
        ])
        .0
    );
    let bytes = std::fs::read(&cts).unwrap();
    let truncated = dir.join("truncated.ct");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let out = dir.join("y.ct");
    let eval = keys.join("eval.keys");
    let (ok, _, err) = hepack(&[
        "run",
        path(&program),
        "--eval-keys",
        path(&eval),
        "--input",
        path(&truncated),
        "-o",
        path(&out),
    ]);
    assert!(!ok);
    assert!(
        err.contains("truncated.ct") && err.contains("checksum"),
        "{err}"
    );
    assert!(!out.exists());

    let keys_bytes = std::fs::read(&eval).unwrap();
    let bad_keys = dir.join("bad.keys");
    std::fs::write(&bad_keys, &keys_bytes[..100]).unwrap();
    let (ok, _, err) = hepack(&[
        "run",
        path(&program),
        "--eval-keys",
        path(&bad_keys),
        "--input",
        path(&cts),
        "-o",
        path(&out),
    ]);
    assert!(!ok);
    assert!(err.contains("bad.keys"), "{err}");
    assert!(!out.exists());

    // Inputs of the wrong shape are refused before anything is written.
    let wrong = dir.join("wrong.npy");
    ndarray_npy::write_npy(&wrong, &ndarray::Array2::<f32>::zeros((2, 5))).unwrap();
    let (ok, _, err) = hepack(&[
        "encrypt",
        path(&program),
        "--keys",
        path(&keys),
        "--input",
        path(&wrong),
        "-o",
        path(&dir.join("w.ct")),
    ]);
    assert!(!ok);
    assert!(err.contains("the program takes"), "{err}");
    assert!(!dir.join("w.ct").exists());
}

#[test]
fn infer_prints_accuracy_and_agreement_with_plaintext() {
    let tmp = tempfile::tempdir().unwrap();
    let program = compile_small_mlp(tmp.path());
    let x = digits(tmp.path(), 50);
    let labels = mnist("mnist_test_y.npy");
    // Only the first 50 labels: write them out.
    let y: ndarray::Array1<i64> = ndarray_npy::read_npy(&labels).unwrap();
    let y50 = tmp.path().join("y.npy");
    ndarray_npy::write_npy(&y50, &y.slice(ndarray::s![..50]).to_owned()).unwrap();
    let (ok, out, err) = hepack(&[
        "infer",
        path(&program),
        "--input",
        path(&x),
        "--labels",
        path(&y50),
        "--json",
    ]);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(report["max_abs_error"].as_f64().unwrap() <= 1e-3, "{out}");
    assert_eq!(report["argmax_agreement"].as_f64().unwrap(), 1.0);
    assert_eq!(report["samples"].as_u64().unwrap(), 50);
    // The process's peak covers the run's own and the plaintext check.
    let process = report["peak_rss_bytes"].as_u64().unwrap();
    assert!(
        process >= report["run"]["peak_rss_bytes"].as_u64().unwrap(),
        "{out}"
    );
    // Encrypted accuracy is the plaintext accuracy of the same pruned model.
    let (ok, plain, err) = hepack(&[
        "eval",
        path(&model("mlp")),
        "--passes",
        "he-friendly",
        "--sparsity",
        "0.9",
        "--input",
        path(&x),
        "--labels",
        path(&y50),
        "--json",
    ]);
    assert!(ok, "{err}");
    let plain: serde_json::Value = serde_json::from_str(&plain).unwrap();
    assert_eq!(report["correct"], plain["correct"], "{out}");
}

#[test]
fn calibrate_stores_op_times_that_inspect_then_uses() {
    let tmp = tempfile::tempdir().unwrap();
    let times = tmp.path().join("op_times.json");
    let program = compile_small_mlp(tmp.path());
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hepack"))
            .args(args)
            .env("HEPACK_OP_TIMES", &times)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let before = run(&["inspect", path(&program)]);
    assert!(before.contains("DESIGN.md"), "{before}");
    let table = run(&["calibrate", path(&program), "--reps", "1"]);
    assert!(table.contains("mul_plain"), "{table}");
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&times).unwrap()).unwrap();
    let entry = &stored["entries"]["N=8192,L=3"];
    // One time per level, top to bottom, and deeper levels are cheaper.
    let mul_plain: Vec<f64> = entry["seconds"]["mul_plain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(mul_plain.len(), 4);
    assert!(mul_plain[0] > mul_plain[3], "{mul_plain:?}");
    let after = run(&["inspect", path(&program)]);
    assert!(
        after.contains("hepack calibrate on this machine"),
        "{after}"
    );
}

/// `compile --calibrated` schedules with the machine's op times for the
/// chosen parameters: the MLP's 64 squares leave their rescales to the 10
/// dense outputs under DESIGN.md's times, but not under a calibration where
/// rescales are free and every term of a combination dear.
#[test]
fn compile_calibrated_schedules_with_this_machines_op_times() {
    let tmp = tempfile::tempdir().unwrap();
    let times = tmp.path().join("op_times.json");
    let hepack_with_times = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hepack"))
            .args(args)
            .env("HEPACK_OP_TIMES", &times)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        (String::from_utf8(out.stdout).unwrap(), stderr)
    };
    let square_rescales = |program: &Path| {
        let (json, _) = hepack_with_times(&["inspect", path(program), "--json"]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let layer = v["he"]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["layer"] == "/0/0.1/Relu")
            .cloned()
            .expect("the square layer");
        layer["ops"]["rescale"].as_u64().unwrap_or(0)
    };
    let default = tmp.path().join("default.hep");
    hepack_with_times(&["compile", path(&model("mlp")), "-o", path(&default)]);
    assert_eq!(square_rescales(&default), 0);

    // No calibration yet: a warning, and DESIGN.md's schedule.
    let uncalibrated = tmp.path().join("uncalibrated.hep");
    let (_, warning) = hepack_with_times(&[
        "compile",
        path(&model("mlp")),
        "--calibrated",
        "-o",
        path(&uncalibrated),
    ]);
    assert!(warning.contains("hepack calibrate"), "{warning}");
    assert_eq!(square_rescales(&uncalibrated), 0);

    hepack_with_times(&["calibrate", path(&default), "--reps", "1"]);
    let mut stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&times).unwrap()).unwrap();
    let entry = stored["entries"]
        .as_object_mut()
        .unwrap()
        .values_mut()
        .next()
        .expect("one entry");
    let levels = entry["seconds"]["rescale"].as_array().unwrap().len();
    entry["seconds"]["rescale"] = serde_json::json!(vec![1e-9; levels]);
    for per_term in ["combination_term", "combination_term_grouped"] {
        entry[per_term] = serde_json::json!(vec![1.0; levels]);
    }
    std::fs::write(&times, stored.to_string()).unwrap();
    let calibrated = tmp.path().join("calibrated.hep");
    let (out, _) = hepack_with_times(&[
        "compile",
        path(&model("mlp")),
        "--calibrated",
        "-o",
        path(&calibrated),
    ]);
    assert!(out.contains("hepack calibrate on this machine"), "{out}");
    assert_eq!(square_rescales(&calibrated), 64);
}

/// A diagonal-packed program through every client and server command: one
/// digit, as a single query costs under this packing.
#[test]
fn diagonal_packing_runs_one_digit_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let program = dir.join("mlp.hep");
    let (ok, out, err) = hepack(&[
        "compile",
        path(&model("mlp")),
        "--packing",
        "diagonal",
        "-o",
        path(&program),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("diagonal packing"), "{out}");
    let (ok, inspected, err) = hepack(&["inspect", path(&program), "--json"]);
    assert!(ok, "{err}");
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(inspected["packing"], "diagonal");
    assert!(inspected["samples_per_ciphertext"].as_u64().unwrap() > 1);
    let steps = inspected["rotation_steps"].as_array().unwrap().len();
    assert!(steps > 0);
    assert!(inspected["eval_key_bytes"].as_u64().unwrap() > 0);

    let keys = dir.join("keys");
    let (ok, out, err) = hepack(&["keygen", path(&program), "--out-dir", path(&keys)]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("{steps} rotation step")), "{out}");
    let x = digits(dir, 1);
    let cts = dir.join("x.ct");
    encrypt(&program, &keys, &x, &cts);
    let y_ct = dir.join("y.ct");
    let (ok, _, err) = hepack(&[
        "run",
        path(&program),
        "--eval-keys",
        path(&keys.join("eval.keys")),
        "--input",
        path(&cts),
        "-o",
        path(&y_ct),
    ]);
    assert!(ok, "{err}");

    // The same model under a budget of 4 Galois keys rotates by other steps:
    // the first program's keys do not match, and the run says so.
    let fewer = dir.join("mlp4.hep");
    let (ok, _, err) = hepack(&[
        "compile",
        path(&model("mlp")),
        "--packing",
        "diagonal",
        "--max-galois-keys",
        "4",
        "-o",
        path(&fewer),
    ]);
    assert!(ok, "{err}");
    let (ok, inspected, err) = hepack(&["inspect", path(&fewer), "--json"]);
    assert!(ok, "{err}");
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert!(inspected["rotation_steps"].as_array().unwrap().len() <= 4);
    let refused = dir.join("refused.ct");
    let (ok, _, err) = hepack(&[
        "run",
        path(&fewer),
        "--eval-keys",
        path(&keys.join("eval.keys")),
        "--input",
        path(&cts),
        "-o",
        path(&refused),
    ]);
    assert!(!ok);
    assert!(
        err.contains("do not match the program's rotations") && err.contains("hepack keygen"),
        "{err}"
    );
    assert!(!refused.exists());

    let y = dir.join("y.npy");
    decrypt(&program, &keys, &y_ct, &y);
    let plain = dir.join("plain.npy");
    let (ok, _, err) = hepack(&[
        "eval",
        path(&model("mlp")),
        "--passes",
        "he-friendly",
        "--input",
        path(&x),
        "-o",
        path(&plain),
    ]);
    assert!(ok, "{err}");
    assert_eq!(common::read_f64(&y).shape(), &[1, 10]);
    let err = max_difference(&y, &plain);
    assert!(err <= 1e-3, "max |error| {err}");
}
