//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the MNIST-5k cache written by `scripts/fetch_data.py`.
pub fn mnist(file: &str) -> PathBuf {
    let cache = std::env::var_os("HEPACK_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".cache/hepack"));
    let path = cache.join("mnist").join(file);
    assert!(
        path.exists(),
        "{} missing: run `python3 scripts/fetch_data.py`",
        path.display()
    );
    path
}

/// A float32 `.npy` file as f64.
pub fn read_f32(path: &Path) -> ArrayD<f64> {
    ArrayD::<f32>::read_npy(std::fs::File::open(path).unwrap())
        .unwrap()
        .mapv(f64::from)
}

/// An example model's path.
pub fn model(name: &str) -> PathBuf {
    root().join("examples/models").join(format!("{name}.onnx"))
}

/// Run the CLI from the repository root: (success, stdout, stderr).
pub fn hepack(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hepack"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}
