//! Fine-tuning after ReLUs became squares recovers the accuracy the
//! conversion cost (issue #8's CI check).

use std::path::PathBuf;

use hepack_ir::interp;
use hepack_passes::{pipeline, PassOptions};
use hepack_tune::{fit, Data, FitOptions, Target};
use ndarray::{ArrayD, Axis};
use ndarray_npy::ReadNpyExt;

fn mnist_path(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cache = std::env::var_os("HEPACK_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".cache/hepack"));
    cache.join("mnist").join(name)
}

fn open(name: &str) -> std::fs::File {
    let path = mnist_path(name);
    std::fs::File::open(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `python3 scripts/fetch_data.py`",
            path.display()
        )
    })
}

fn pixels(name: &str) -> ArrayD<f64> {
    ArrayD::<f32>::read_npy(open(name)).unwrap().mapv(f64::from)
}

fn labels(name: &str) -> Vec<i64> {
    ArrayD::<i64>::read_npy(open(name))
        .unwrap()
        .into_iter()
        .collect()
}

/// Squares in place of the ReLUs of example `model` (default passes, no
/// calibration), fine-tuned for `epochs` on 3,600 training digits with 400
/// for validation (MOFHEI's MNIST-5k split); test accuracy before and after.
fn square_then_tune(model: &str, flat: bool, epochs: usize) -> (f64, f64) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut g = hepack_frontend::load(&root.join(format!("examples/models/{model}.onnx")))
        .unwrap()
        .graph;
    pipeline("he-friendly", &PassOptions::default())
        .unwrap()
        .run(&mut g, |_, _| {})
        .unwrap();
    let suffix = if flat { "_flat" } else { "" };
    let x = pixels(&format!("mnist_train_x{suffix}.npy"));
    let y = labels("mnist_train_y.npy");
    let test_x = pixels(&format!("mnist_test_x{suffix}.npy"));
    let test_y = labels("mnist_test_y.npy");
    let accuracy = |g: &hepack_ir::Graph| {
        let out = interp::run(g, test_x.view()).unwrap();
        interp::count_correct(&out, &test_y) as f64 / test_y.len() as f64
    };
    let before = accuracy(&g);
    let (train_x, val_x) = x.view().split_at(Axis(0), 3600);
    let (train_y, val_y) = y.split_at(3600);
    let train = Data {
        x: train_x,
        target: Target::Labels(train_y),
    };
    let val = Data {
        x: val_x,
        target: Target::Labels(val_y),
    };
    let options = FitOptions {
        epochs,
        batch_size: 64,
        lr: 1e-3,
        seed: 1,
        ..FitOptions::default()
    };
    let log = fit(&mut g, &train, Some(&val), &options, |_, _| true, |_| {}).unwrap();
    let after = accuracy(&g);
    eprintln!("{model} with squares: test accuracy {before:.3} before, {after:.3} after {log:?}");
    (before, after)
}

#[test]
fn square_lenet_fine_tuned_recovers_accuracy() {
    let (before, after) = square_then_tune("lenet5", false, 4);
    assert!(
        after >= 0.80,
        "accuracy {after} after tuning (before: {before})"
    );
    assert!(
        after > before + 0.25,
        "accuracy {after} after tuning, {before} before"
    );
}

#[test]
fn square_mlp_fine_tuned_keeps_its_accuracy() {
    let (before, after) = square_then_tune("mlp", true, 3);
    assert!(
        after >= 0.92,
        "accuracy {after} after tuning (before: {before})"
    );
}
