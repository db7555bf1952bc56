//! `hepack compile -o MODEL.hep` and `hepack inspect MODEL.hep` through the
//! CLI: the file reports what compile reported, recompiling gives the same
//! bytes, parameters can be pinned, insecure ones are refused unless asked
//! for and then flagged, and a damaged file is a clear error.

mod common;

use common::{hepack, mnist, model};
use serde_json::Value;

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap()
}

#[test]
fn compile_writes_a_program_that_inspect_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.hep"), dir.path().join("b.hep"));
    let mlp = model("mlp");
    let mlp = mlp.to_str().unwrap();
    let (ok, out, err) = hepack(&["compile", mlp, "-o", a.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let compiled = json(&out);
    let (ok, _, err) = hepack(&["compile", mlp, "-o", b.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "recompiling changed the file"
    );
    let (ok, out, err) = hepack(&["inspect", a.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let inspected = json(&out);
    assert_eq!(inspected["params"], compiled["ckks"]);
    for key in [
        "he_ops",
        "layers",
        "depth",
        "peak_ciphertexts",
        "peak_bytes",
        "plaintexts",
    ] {
        assert_eq!(inspected["he"][key], compiled["he"][key], "{key}");
    }
    assert_eq!(
        inspected["model_sha256"],
        compiled["program_file"]["model_sha256"]
    );
    assert_eq!(inspected["rotation_steps"], serde_json::json!([]));
    assert!(inspected["he"]["predicted_seconds"].as_f64().unwrap() > 0.0);
    let (ok, text, err) = hepack(&["inspect", a.to_str().unwrap()]);
    assert!(ok, "{err}");
    for want in [
        "128-bit security",
        "depth 3 of 3 levels",
        "rotation steps: none",
        "peak",
    ] {
        assert!(text.contains(want), "{want:?} not in {text}");
    }
}

#[test]
fn pinned_parameters_are_used_and_insecure_ones_need_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.hep");
    let out = out.to_str().unwrap();
    let mlp = model("mlp");
    let mlp = mlp.to_str().unwrap();
    let (ok, _, err) = hepack(&["compile", mlp, "--poly-degree", "2048", "-o", out]);
    assert!(!ok && err.contains("--insecure"), "{err}");
    assert!(
        !std::path::Path::new(out).exists(),
        "a refused compile wrote a file"
    );
    let (ok, _, err) = hepack(&[
        "compile",
        mlp,
        "--poly-degree",
        "2048",
        "--insecure",
        "-o",
        out,
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("WARNING: INSECURE"), "{err}");
    let (ok, text, err) = hepack(&["inspect", out]);
    assert!(ok, "{err}");
    assert!(
        err.contains("WARNING: INSECURE") && text.contains("INSECURE"),
        "{err}"
    );

    let chain = "40,30,30,30,40";
    let (ok, out, err) = hepack(&["compile", mlp, "--chain", chain, "--json"]);
    assert!(ok, "{err}");
    let ckks = &json(&out)["ckks"];
    assert_eq!(ckks["chain_bits"], serde_json::json!([40, 30, 30, 30, 40]));
    assert_eq!(ckks["scale_bits"], 30);
    assert_eq!(ckks["degree"], 8192);
    let (ok, _, err) = hepack(&["compile", mlp, "--chain", "40,30,40"]);
    assert!(!ok && err.contains("depth 3 needs 5"), "{err}");
    let (ok, _, err) = hepack(&["compile", mlp, "--scale-bits", "80"]);
    assert!(!ok && err.contains("80 bits"), "{err}");
    let (ok, _, err) = hepack(&["compile", mlp, "--precision", "2"]);
    assert!(!ok && err.contains("precision 2"), "{err}");
    let (ok, out, err) = hepack(&["compile", mlp, "--precision", "1e-5", "--json"]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["ckks"]["scale_bits"], 42);
}

#[test]
fn calibration_sizes_the_first_prime() {
    let x = mnist("mnist_train_x_flat.npy");
    let mlp = model("mlp");
    let (ok, out, err) = hepack(&[
        "compile",
        mlp.to_str().unwrap(),
        "--calib",
        x.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{err}");
    let report = json(&out);
    let max = report["calibrated_max_abs"].as_f64().unwrap();
    assert!(max > 1.0 && max < 1024.0, "{max}");
    // Sign bit and the integer bits of twice the largest value, above Δ
    // (the precision's 35 bits, raised into the degree's free room).
    let scale = report["ckks"]["scale_bits"].as_u64().unwrap();
    assert!(scale > 35, "{scale}");
    let first = scale + 1 + (2.0 * max).log2().ceil() as u64;
    assert_eq!(report["ckks"]["chain_bits"][0].as_u64().unwrap(), first);
}

#[test]
fn damaged_program_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.hep");
    let mlp = model("mlp");
    let (ok, _, err) = hepack(&[
        "compile",
        mlp.to_str().unwrap(),
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, _, err) = hepack(&["inspect", path.to_str().unwrap()]);
    assert!(!ok && err.contains("corrupt or truncated"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
