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
        // Predictions must not depend on a `hepack calibrate` run on this machine.
        .env("HEPACK_OP_TIMES", root().join("target/no-calibration.json"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `graph` with its first linear layers pruned (mean |w|, whole columns) and
/// compressed to `kept` filters/neurons each, as MOFHEI Table III lists them.
pub fn pruned_to_widths(graph: &hepack_ir::Graph, kept: &[usize]) -> hepack_ir::Graph {
    use hepack_passes::prune::{
        apply_masks, compress, find_masks, linear_layers, BatchPacking, Block, Criterion, Targets,
    };
    let mut t = Targets {
        sparsity: 0.0,
        per_layer: Default::default(),
        prune_output: false,
    };
    for (layer, &k) in linear_layers(graph).iter().zip(kept) {
        let f = layer.matrix.ncols();
        t.per_layer
            .insert(layer.name.to_string(), (f - k) as f64 / f as f64);
    }
    let packing = BatchPacking {
        block: Block::Column,
    };
    let mut g = graph.clone();
    let masks = find_masks(&g, &packing, Criterion::MeanAbs, &t).unwrap();
    apply_masks(&mut g, &masks).unwrap();
    compress(&mut g).unwrap();
    g
}

/// A float64 `.npy` file.
pub fn read_f64(path: &Path) -> ArrayD<f64> {
    ArrayD::<f64>::read_npy(std::fs::File::open(path).unwrap()).unwrap()
}
