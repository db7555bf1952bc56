//! `hepack tune`: the whole flow on the example MLP (squares, then half its
//! hidden neurons pruned), deterministic, with what it writes checked by
//! the other commands; bad input is refused before anything is written.

mod common;

use std::path::Path;

use ndarray_npy::ReadNpyExt;
use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `hepack tune` on the MLP with the MNIST-5k split; extra args appended.
fn tune(out: &Path, extra: &[&str]) -> (bool, String, String) {
    let (x, y) = (
        common::mnist("mnist_train_x_flat.npy"),
        common::mnist("mnist_train_y.npy"),
    );
    let (tx, ty) = (
        common::mnist("mnist_test_x_flat.npy"),
        common::mnist("mnist_test_y.npy"),
    );
    let model = common::model("mlp");
    let mut args = vec![
        "tune",
        s(&model),
        "--data",
        s(&x),
        "--labels",
        s(&y),
        "--test-data",
        s(&tx),
        "--test-labels",
        s(&ty),
        "-o",
        s(out),
    ];
    args.extend_from_slice(extra);
    common::hepack(&args)
}

const FLOW: &[&str] = &[
    "--act",
    "square",
    "--sparsity",
    "0.5",
    "--epochs",
    "2",
    "--head-epochs",
    "1",
    "--prune-epochs",
    "2",
    "--seed",
    "4",
];

#[test]
fn tune_converts_prunes_and_writes_a_model_compile_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (out, log) = (dir.path().join("mlp.onnx"), dir.path().join("log.csv"));
    let mut args = FLOW.to_vec();
    args.extend(["--json", "--log", s(&log)]);
    let (ok, stdout, err) = tune(&out, &args);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let stages: Vec<&str> = report["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["original", "he-friendly", "pruned"]);
    let (hef, pruned) = (&report["checkpoints"][1], &report["checkpoints"][2]);
    assert_eq!(report["train_samples"], 3600);
    assert_eq!(report["val_samples"], 400);
    // Half the 64 hidden neurons go: the hidden layer's ops halve, the
    // output layer loses the matching inputs.
    let (ops_hef, ops_pruned) = (
        hef["he_ops"].as_u64().unwrap(),
        pruned["he_ops"].as_u64().unwrap(),
    );
    assert!(ops_pruned * 2 <= ops_hef + 64, "{ops_hef} -> {ops_pruned}");
    // Recorded: 0.931 after 5 epochs in all (the original MLP has 0.922).
    let accuracy = pruned["test_metric"].as_f64().unwrap();
    assert!(accuracy >= 0.92, "test accuracy {accuracy}");
    assert!((pruned["model_sparsity"].as_f64().unwrap() - 0.5).abs() < 0.01);
    let replaced: Vec<&str> = report["replacements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["layer"].as_str().unwrap())
        .collect();
    assert_eq!(replaced.len(), 1, "{replaced:?}");

    // The log has one line per epoch of the report.
    let csv = std::fs::read_to_string(&log).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("phase,epoch,train_loss,val_loss,val_metric,lr,sparsity,seconds")
    );
    assert_eq!(lines.count(), report["epochs"].as_array().unwrap().len());

    // The written model compiles, to the HE ops tune counted.
    let program = dir.path().join("mlp.hep");
    let (ok, _, err) = common::hepack(&["compile", s(&out), "-o", s(&program)]);
    assert!(ok, "{err}");
    let (ok, stdout, err) = common::hepack(&["inspect", s(&program), "--json"]);
    assert!(ok, "{err}");
    let inspect: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(inspect["he"]["he_ops"].as_u64(), Some(ops_pruned));

    // The same seed gives the same model, byte for byte.
    let again = dir.path().join("again.onnx");
    let (ok, _, err) = tune(&again, FLOW);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
}

#[test]
fn tune_refuses_bad_input_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never.onnx");
    let test_labels = common::mnist("mnist_test_y.npy");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--val", "1.5"],
            "the validation fraction must be in (0, 1)",
        ),
        (
            vec![
                "--val-data",
                s(&test_labels),
                "--val-labels",
                s(&test_labels),
            ],
            "is not a float32/float64 .npy array",
        ),
        (
            vec!["--sparsity", "0.5", "--prune-every", "100000"],
            "pruning schedule",
        ),
        (
            vec!["--sparsity", "0.5", "--layer", "/nope=0.5"],
            "no linear layer named '/nope'",
        ),
        (vec!["--act", "poly:0"], "the degree must be at least 1"),
        (vec!["--batch-size", "0"], "must be at least 1"),
    ];
    for (extra, expected) in cases {
        let (ok, _, err) = tune(&out, &extra);
        assert!(!ok, "{extra:?} succeeded");
        assert!(err.contains(expected), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{extra:?}: {err}");
        assert!(!out.exists(), "{extra:?} wrote the model");
    }

    // Training inputs and labels of different lengths.
    let x = common::mnist("mnist_train_x_flat.npy");
    let model = common::model("mlp");
    let (ok, _, err) = common::hepack(&[
        "tune",
        s(&model),
        "--data",
        s(&x),
        "--labels",
        s(&test_labels),
        "-o",
        s(&out),
    ]);
    assert!(!ok);
    assert!(
        err.contains("holds 4000 samples") && err.contains("targets for 1000"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn the_bundled_tuned_lenet_reproduces_its_recorded_accuracy() {
    let metrics: Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("examples/models/metrics.json")).unwrap(),
    )
    .unwrap();
    let m = &metrics["lenet5_tuned"];
    let graph = hepack_frontend::load(&common::model("lenet5_tuned"))
        .unwrap()
        .graph;
    assert!(!hepack_tune::convert::needs_conversion(&graph));
    let widths: Vec<u64> = hepack_passes::prune::linear_layers(&graph)
        .iter()
        .map(|l| l.matrix.ncols() as u64)
        .collect();
    let recorded: Vec<u64> = m["widths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_u64().unwrap())
        .collect();
    assert_eq!(widths, recorded);
    let x = common::read_f32(&common::mnist("mnist_test_x.npy"));
    let labels: Vec<i64> = ndarray::ArrayD::<i64>::read_npy(
        std::fs::File::open(common::mnist("mnist_test_y.npy")).unwrap(),
    )
    .unwrap()
    .iter()
    .copied()
    .collect();
    let y = hepack_ir::interp::run(&graph, x.view()).unwrap();
    assert_eq!(
        hepack_ir::interp::count_correct(&y, &labels) as u64,
        m["hepack_correct"].as_u64().unwrap()
    );
}

/// `tune --packing diagonal` with each of Hunter's and Artemis's units on
/// the MLP: the pruned units stay zero through fine-tuning, the program
/// rotates less, and it runs encrypted like plaintext.
#[test]
fn tune_prunes_diagonal_units_and_the_program_runs_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.npy");
    let digits = common::read_f32(&common::mnist("mnist_test_x_flat.npy"));
    let digits = digits
        .slice_axis(ndarray::Axis(0), (0..4).into())
        .mapv(|v| v as f32);
    ndarray_npy::write_npy(&x, &digits).unwrap();
    for block in ["diagonal", "position", "channel-diagonal", "hunter"] {
        let out = dir.path().join(format!("{block}.onnx"));
        let mut args = FLOW.to_vec();
        args.extend([
            "--packing",
            "diagonal",
            "--block",
            block,
            "--group-lasso-position",
            "1e-4",
            "--group-lasso-diagonal",
            "1e-4",
            "--json",
        ]);
        let (ok, stdout, err) = tune(&out, &args);
        assert!(ok, "{block}: {err}");
        let report: Value = serde_json::from_str(&stdout).unwrap();
        let (hef, pruned) = (&report["checkpoints"][1], &report["checkpoints"][2]);
        let rotations = |c: &Value| c["rotations"].as_u64().unwrap();
        // A position or channel diagonal takes its rotation with it; single
        // diagonals (Hunter's order on a model without convolutions) only
        // free a step when all of its diagonals go.
        let fewer = if block == "diagonal" || block == "hunter" {
            rotations(pruned) <= rotations(hef)
        } else {
            rotations(pruned) < rotations(hef)
        };
        assert!(
            fewer,
            "{block}: {} -> {} rotations",
            rotations(hef),
            rotations(pruned)
        );
        assert!(
            pruned["he_ops"].as_u64() < hef["he_ops"].as_u64(),
            "{block}"
        );

        // Half the hidden layer's units are zero in the written model.
        let unit = if block == "hunter" { "diagonal" } else { block };
        let (ok, stdout, err) = common::hepack(&[
            "inspect",
            s(&out),
            "--packing",
            "diagonal",
            "--block",
            unit,
            "--json",
        ]);
        assert!(ok, "{block}: {err}");
        let inspect: Value = serde_json::from_str(&stdout).unwrap();
        // The hidden layer (the output layer is kept whole).
        let layer = &inspect["pruning"]["layers"][0];
        let (kept, total) = (
            layer["units_kept"].as_u64().unwrap(),
            layer["units_total"].as_u64().unwrap(),
        );
        assert!(
            total > 1 && kept <= total - total / 2,
            "{block}: {kept}/{total}"
        );

        // The program runs encrypted within 1e-3 of plaintext.
        let program = dir.path().join(format!("{block}.hep"));
        let (ok, _, err) = common::hepack(&[
            "compile",
            s(&out),
            "--packing",
            "diagonal",
            "-o",
            s(&program),
        ]);
        assert!(ok, "{block}: {err}");
        let (ok, stdout, err) = common::hepack(&["infer", s(&program), "--input", s(&x), "--json"]);
        assert!(ok, "{block}: {err}");
        let run: Value = serde_json::from_str(&stdout).unwrap();
        assert!(
            run["max_abs_error"].as_f64().unwrap() <= 1e-3,
            "{block}: {stdout}"
        );
        assert_eq!(run["argmax_agreement"].as_f64().unwrap(), 1.0, "{block}");
    }
}
