//! Models exported from PyTorch by both of its exporters (`dynamo=True` and the
//! legacy one, opset 20), made by `examples/export_patterns.py`: global-average
//! heads written as `ReduceMean`, `x.view(x.size(0), -1)` shape arithmetic,
//! `Linear(bias=False)`, the default exporter's `Where(x > 20)` Softplus, GELU,
//! SiLU, Mish, hard activations, ReLU6, ELU, PReLU, 1-D and grouped convolutions,
//! LogSoftmax. Every one must load, match onnxruntime, compile through the
//! HE-friendly pipeline with `--calib`, and run encrypted close to plaintext.

mod common;

use std::path::{Path, PathBuf};

use common::{hepack, read_f32, root};
use hepack_ir::interp;
use serde_json::Value;

fn dir() -> PathBuf {
    root().join("tests/data/exported")
}

/// `(model, exporter, file)` of every export in the manifest.
fn exports() -> Vec<(String, String, PathBuf)> {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("manifest.json")).unwrap())
            .unwrap();
    let models = manifest["models"].as_array().unwrap();
    assert!(
        models.len() >= 40,
        "the manifest lists {} exports",
        models.len()
    );
    models
        .iter()
        .map(|m| {
            (
                m["model"].as_str().unwrap().to_string(),
                m["exporter"].as_str().unwrap().to_string(),
                dir().join(m["file"].as_str().unwrap()),
            )
        })
        .collect()
}

fn input(model: &str) -> PathBuf {
    dir().join(format!("{model}.x.npy"))
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn every_export_matches_onnxruntime() {
    for (model, exporter, file) in exports() {
        let loaded = hepack_frontend::load(&file)
            .unwrap_or_else(|e| panic!("{model} ({exporter}) does not load: {e}"));
        let x = read_f32(&input(&model));
        let y = interp::run(&loaded.graph, x.view()).unwrap();
        let expected = read_f32(&dir().join(format!("{model}.{exporter}.y.npy")));
        assert_eq!(y.shape(), expected.shape(), "{model} ({exporter})");
        // onnxruntime computes in float32, the interpreter in f64.
        let scale = expected.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let err = y
            .iter()
            .zip(&expected)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            err <= 1e-5 * scale,
            "{model} ({exporter}): max error {err:e} against onnxruntime"
        );
    }
}

#[test]
fn both_exporters_read_to_the_same_ops() {
    let all = exports();
    for (model, exporter, file) in all.iter().filter(|e| e.1 == "dynamo") {
        let legacy = all
            .iter()
            .find(|e| &e.0 == model && e.1 == "legacy")
            .expect("a legacy export of every model");
        let ops = |f: &Path| -> Vec<&'static str> {
            let g = hepack_frontend::load(f).unwrap().graph;
            let mut names: Vec<&'static str> = g
                .topo_order()
                .into_iter()
                .map(|id| g.node(id).op.name())
                // Exporters differ in how they spell flattening.
                .filter(|n| !matches!(*n, "reshape" | "flatten"))
                .collect();
            names.dedup();
            names
        };
        assert_eq!(ops(file), ops(&legacy.2), "{model}: {exporter} vs legacy");
    }
}

#[test]
fn every_export_compiles_with_calibration_and_runs_encrypted() {
    let tmp = tempfile::tempdir().unwrap();
    for (model, exporter, file) in exports() {
        let program = tmp.path().join(format!("{model}.{exporter}.hep"));
        let x = input(&model);
        let (ok, _, err) = hepack(&[
            "compile",
            arg(&file),
            "--calib",
            arg(&x),
            "-o",
            arg(&program),
        ]);
        assert!(ok, "{model} ({exporter}) does not compile: {err}");
        let (ok, out, err) = hepack(&["infer", arg(&program), "--input", arg(&x), "--json"]);
        assert!(ok, "{model} ({exporter}) fails encrypted: {err}");
        let report: Value = serde_json::from_str(&out).unwrap();
        let error = report["max_abs_error"].as_f64().unwrap();
        assert!(
            error <= 1e-3,
            "{model} ({exporter}): encrypted output {error:e} from plaintext"
        );
    }
}
