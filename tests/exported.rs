//! Models exported from PyTorch by both of its exporters (`dynamo=True` and the
//! legacy one, opset 20), made by `examples/export_patterns.py`: global-average
//! heads written as `ReduceMean`, `x.view(x.size(0), -1)` shape arithmetic,
//! `Linear(bias=False)`, the default exporter's `Where(x > 20)` Softplus, GELU,
//! SiLU, Mish, hard activations, ReLU6, ELU, PReLU, 1-D and grouped convolutions,
//! LogSoftmax, several outputs. Every one must load, match onnxruntime, compile through the
//! HE-friendly pipeline with `--calib`, and run encrypted close to plaintext.

mod common;

use std::path::{Path, PathBuf};

use common::{hepack, read_f32, root};
use hepack_ir::interp;
use serde_json::Value;

fn dir() -> PathBuf {
    root().join("tests/data/exported")
}

/// One export in the manifest.
struct Export {
    model: String,
    exporter: String,
    file: PathBuf,
    /// The model's output names, in order.
    outputs: Vec<String>,
}

impl Export {
    /// onnxruntime's output `i`, as the script saved it.
    fn expected(&self, i: usize) -> PathBuf {
        let (model, exporter) = (&self.model, &self.exporter);
        match self.outputs.as_slice() {
            [_] => dir().join(format!("{model}.{exporter}.y.npy")),
            names => dir().join(format!("{model}.{exporter}.y.{}.npy", names[i])),
        }
    }
}

/// Every export in the manifest.
fn exports() -> Vec<Export> {
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
        .map(|m| Export {
            model: m["model"].as_str().unwrap().to_string(),
            exporter: m["exporter"].as_str().unwrap().to_string(),
            file: dir().join(m["file"].as_str().unwrap()),
            outputs: m["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o.as_str().unwrap().to_string())
                .collect(),
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
    let mut several = 0;
    for e in exports() {
        let (model, exporter) = (&e.model, &e.exporter);
        let loaded = hepack_frontend::load(&e.file)
            .unwrap_or_else(|err| panic!("{model} ({exporter}) does not load: {err}"));
        assert_eq!(loaded.output_names, e.outputs, "{model} ({exporter})");
        several += usize::from(e.outputs.len() > 1);
        let x = read_f32(&input(model));
        let ys = interp::run_outputs(&loaded.graph, x.view()).unwrap();
        for (i, (y, name)) in ys.iter().zip(&e.outputs).enumerate() {
            let expected = read_f32(&e.expected(i));
            assert_eq!(y.shape(), expected.shape(), "{model} ({exporter}) {name}");
            // onnxruntime computes in float32, the interpreter in f64.
            let scale = expected.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            let err = y
                .iter()
                .zip(&expected)
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                err <= 1e-5 * scale,
                "{model} ({exporter}) {name}: max error {err:e} against onnxruntime"
            );
        }
    }
    assert!(several >= 2, "no export has several outputs");
}

#[test]
fn both_exporters_read_to_the_same_ops() {
    let all = exports();
    for e in all.iter().filter(|e| e.exporter == "dynamo") {
        let legacy = all
            .iter()
            .find(|l| l.model == e.model && l.exporter == "legacy")
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
        assert_eq!(
            ops(&e.file),
            ops(&legacy.file),
            "{}: dynamo vs legacy",
            e.model
        );
    }
}

#[test]
fn every_export_compiles_with_calibration_and_runs_encrypted() {
    let tmp = tempfile::tempdir().unwrap();
    for Export {
        model,
        exporter,
        file,
        ..
    } in exports()
    {
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

/// A model with three outputs (softmax class scores, a regression head, and
/// the trunk's features both heads read): `eval`, `infer` and the client–server
/// commands write one `.npy` per output, named after it, and the encrypted
/// outputs match the HE-friendly model's (the class head as logits).
#[test]
fn several_outputs_each_get_a_file_through_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = dir_file("two_heads.dynamo.onnx");
    let x = input("two_heads");
    let names = ["probs", "box", "features"];
    let file = |stem: &str, name: &str| dir.join(format!("{stem}.{name}.npy"));

    let (ok, out, err) = hepack(&[
        "eval",
        arg(&model),
        "--input",
        arg(&x),
        "--output",
        arg(&dir.join("plain.npy")),
        "--json",
    ]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let listed: Vec<&str> = report["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, names);
    assert!(!dir.join("plain.npy").exists());
    for (i, name) in names.iter().enumerate() {
        let y = common::read_f64(&file("plain", name));
        let want = read_f32(&dir_file(&format!("two_heads.dynamo.y.{name}.npy")));
        assert_eq!(y.shape(), want.shape(), "{name}");
        assert_eq!(
            report["outputs"][i]["shape"].as_array().unwrap().len(),
            y.ndim()
        );
    }

    // What the program computes: the model after the HE-friendly pipeline
    // (logits for the softmax head, ReLU as its polynomial).
    let (ok, _, err) = hepack(&[
        "eval",
        arg(&model),
        "--input",
        arg(&x),
        "--passes",
        "he-friendly",
        "--output",
        arg(&dir.join("he.npy")),
    ]);
    assert!(ok, "{err}");

    let program = dir.join("two_heads.hep");
    let (ok, _, err) = hepack(&["compile", arg(&model), "-o", arg(&program)]);
    assert!(ok, "{err}");
    let (ok, out, err) = hepack(&["inspect", arg(&program)]);
    assert!(ok, "{err}");
    for name in names {
        assert!(out.contains(&format!("output \"{name}\"")), "{out}");
    }

    let keys = dir.join("keys");
    let (ok, _, err) = hepack(&["keygen", arg(&program), "--out-dir", arg(&keys)]);
    assert!(ok, "{err}");
    let cts = dir.join("x.ct");
    let (ok, _, err) = hepack(&[
        "encrypt",
        arg(&program),
        "--keys",
        arg(&keys),
        "--input",
        arg(&x),
        "-o",
        arg(&cts),
    ]);
    assert!(ok, "{err}");
    let y_ct = dir.join("y.ct");
    let (ok, _, err) = hepack(&[
        "run",
        arg(&program),
        "--eval-keys",
        arg(&keys.join("eval.keys")),
        "--input",
        arg(&cts),
        "-o",
        arg(&y_ct),
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = hepack(&[
        "decrypt",
        arg(&program),
        "--keys",
        arg(&keys),
        "--input",
        arg(&y_ct),
        "-o",
        arg(&dir.join("enc.npy")),
    ]);
    assert!(ok, "{err}");
    for name in names {
        assert!(out.contains(name), "{out}");
        let (enc, he) = (
            common::read_f64(&file("enc", name)),
            common::read_f64(&file("he", name)),
        );
        assert_eq!(enc.shape(), he.shape(), "{name}");
        let err = enc
            .iter()
            .zip(&he)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(err <= 1e-3, "{name}: encrypted {err:e} from plaintext");
    }

    let (ok, _, err) = hepack(&[
        "infer",
        arg(&program),
        "--input",
        arg(&x),
        "--output",
        arg(&dir.join("inf.npy")),
    ]);
    assert!(ok, "{err}");
    for name in names {
        assert!(file("inf", name).exists(), "infer wrote no {name}");
    }
}

fn dir_file(name: &str) -> PathBuf {
    dir().join(name)
}
