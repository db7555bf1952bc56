//! The example models: hepack's interpreter reproduces the metrics PyTorch
//! recorded when `examples/train.py` trained them, and `hepack inspect` reports
//! the MOFHEI LeNet's multiply-accumulates.

mod common;

use common::{hepack, mnist, read_f32, root};
use hepack_frontend::load;
use hepack_ir::{interp, Summary};
use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;
use serde_json::Value;

fn metrics() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/models/metrics.json")).unwrap(),
    )
    .unwrap()
}

#[test]
fn interpreter_reproduces_recorded_pytorch_metrics() {
    let metrics = metrics();
    for name in ["lenet5", "mlp", "ae1", "ae2", "ae3", "cryptonets"] {
        let m = &metrics[name];
        let model = load(&root().join(format!("examples/models/{name}.onnx"))).unwrap();
        let x = read_f32(&mnist(m["input"].as_str().unwrap()));
        let y = interp::run(&model.graph, x.view()).unwrap();
        match m["task"].as_str().unwrap() {
            "classification" => {
                let labels = ArrayD::<i64>::read_npy(
                    std::fs::File::open(mnist(m["labels"].as_str().unwrap())).unwrap(),
                )
                .unwrap();
                let labels: Vec<i64> = labels.iter().copied().collect();
                let correct = interp::count_correct(&y, &labels) as u64;
                assert_eq!(
                    correct,
                    m["torch_correct"].as_u64().unwrap(),
                    "{name}: correct test predictions"
                );
            }
            _ => {
                let mse = interp::mean_squared_error(&y, &x);
                let torch = m["torch_mse"].as_f64().unwrap();
                // PyTorch computed in float32; the interpreter in f64.
                assert!(
                    (mse - torch).abs() <= 1e-5 * torch,
                    "{name}: mse {mse} vs PyTorch {torch}"
                );
            }
        }
    }
}

#[test]
fn lenet_linear_layer_macs_match_mofhei() {
    let model = load(&root().join("examples/models/lenet5.onnx")).unwrap();
    let summary = Summary::of(&model.graph);
    let macs: Vec<u64> = summary
        .layers
        .iter()
        .filter(|l| l.macs > 0)
        .map(|l| l.macs)
        .collect();
    assert_eq!(macs, [117_600, 240_000, 48_000, 10_080, 840]);
}

#[test]
fn cli_inspect_json_lists_the_linear_layers() {
    let (ok, stdout, stderr) = hepack(&["inspect", "examples/models/lenet5.onnx", "--json"]);
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let linear: Vec<(String, u64)> = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["op"] == "conv" || l["op"] == "dense")
        .map(|l| {
            (
                l["op"].as_str().unwrap().to_string(),
                l["macs"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, u64)> = [
        ("conv", 117_600),
        ("conv", 240_000),
        ("conv", 48_000),
        ("dense", 10_080),
        ("dense", 840),
    ]
    .iter()
    .map(|(o, m)| (o.to_string(), *m))
    .collect();
    assert_eq!(linear, expected);
    assert_eq!(report["total_macs"], 416_520);
    assert_eq!(report["input"]["shape"], serde_json::json!([1, 28, 28]));
}

#[test]
fn cli_inspect_table_snapshot() {
    let (ok, stdout, stderr) = hepack(&["inspect", "examples/models/lenet5.onnx"]);
    assert!(ok, "{stderr}");
    insta::assert_snapshot!("lenet5_inspect", stdout);
}

#[test]
fn cli_eval_prints_accuracy_and_writes_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("y.npy");
    let x = mnist("mnist_test_x.npy");
    let y = mnist("mnist_test_y.npy");
    let (ok, stdout, stderr) = hepack(&[
        "eval",
        "examples/models/lenet5.onnx",
        "--input",
        x.to_str().unwrap(),
        "--labels",
        y.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["correct"], metrics()["lenet5"]["torch_correct"]);
    let written = ArrayD::<f64>::read_npy(std::fs::File::open(&out).unwrap()).unwrap();
    assert_eq!(written.shape(), [1000, 10]);
}

#[test]
fn cli_eval_reports_mse_for_float_labels() {
    let x = mnist("mnist_test_x_flat.npy");
    let (ok, stdout, stderr) = hepack(&[
        "eval",
        "examples/models/ae1.onnx",
        "--input",
        x.to_str().unwrap(),
        "--labels",
        x.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("mse: 0.0246"), "{stdout}");
}

#[test]
fn cli_bad_input_fails_cleanly_without_writing_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("y.npy");
    // LeNet wants [N, 1, 28, 28]; the flat MNIST file is [N, 784].
    let x = mnist("mnist_test_x_flat.npy");
    let (ok, _, stderr) = hepack(&[
        "eval",
        "examples/models/lenet5.onnx",
        "--input",
        x.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(stderr.contains("expects [batch, 1x28x28]"), "{stderr}");
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temporary file left behind"
    );

    let bogus = dir.path().join("bogus.onnx");
    std::fs::write(&bogus, b"definitely not a protobuf").unwrap();
    let (ok, _, stderr) = hepack(&["inspect", bogus.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.starts_with(&format!(
            "error: {} is not a valid ONNX protobuf",
            bogus.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn cli_dump_dot_is_graphviz() {
    let (ok, stdout, stderr) = hepack(&["dump", "examples/models/mlp.onnx", "--dot"]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("digraph hepack {") && stdout.trim_end().ends_with('}'));
    assert_eq!(
        stdout.matches(" -> ").count(),
        4,
        "mlp is a chain of 5 nodes:\n{stdout}"
    );
}

#[cfg(unix)]
#[test]
fn cli_output_into_a_closed_pipe_ends_quietly() {
    // `hepack dump … | head -0`: the reader is gone before hepack writes.
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_hepack"))
        .args(["dump", "examples/models/mlp.onnx"])
        .current_dir(root())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{stderr}");
}

/// Every example model compiles with its calibration set (the chain sized for
/// every constant the program encodes) and runs encrypted close to plaintext.
/// LeNet-5 takes minutes encrypted; `hepack demo` and `tests/encrypted_cli.rs`
/// run its fine-tuned version.
#[test]
fn example_models_compiled_with_calibration_run_encrypted() {
    let tmp = tempfile::tempdir().unwrap();
    let x = read_f32(&mnist("mnist_test_x_flat.npy"));
    let batch = tmp.path().join("x.npy");
    ndarray_npy::write_npy(
        &batch,
        &x.slice_axis(ndarray::Axis(0), (0..8).into())
            .mapv(|v| v as f32),
    )
    .unwrap();
    // CryptoNets reads images: its squares are relinearized lazily.
    let images = tmp.path().join("images.npy");
    ndarray_npy::write_npy(
        &images,
        &read_f32(&mnist("mnist_test_x.npy"))
            .slice_axis(ndarray::Axis(0), (0..8).into())
            .mapv(|v| v as f32),
    )
    .unwrap();
    for name in ["mlp", "ae1", "ae2", "ae3", "cryptonets"] {
        let (calib, batch) = if name == "cryptonets" {
            (mnist("mnist_train_x.npy"), &images)
        } else {
            (mnist("mnist_train_x_flat.npy"), &batch)
        };
        let program = tmp.path().join(format!("{name}.hep"));
        let model = root().join(format!("examples/models/{name}.onnx"));
        let (ok, _, err) = hepack(&[
            "compile",
            model.to_str().unwrap(),
            "--calib",
            calib.to_str().unwrap(),
            "-o",
            program.to_str().unwrap(),
        ]);
        assert!(ok, "{name}: {err}");
        let (ok, out, err) = hepack(&[
            "infer",
            program.to_str().unwrap(),
            "--input",
            batch.to_str().unwrap(),
            "--json",
        ]);
        assert!(ok, "{name}: {err}");
        let report: Value = serde_json::from_str(&out).unwrap();
        let error = report["max_abs_error"].as_f64().unwrap();
        assert!(
            error <= 1e-3,
            "{name}: encrypted output {error:e} from plaintext"
        );
        if name == "cryptonets" {
            assert_eq!(report["argmax_agreement"], 1.0, "{name}");
        }
    }
}
