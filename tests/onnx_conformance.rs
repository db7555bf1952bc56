//! The reference interpreter against ONNX's own backend test data.
//!
//! `scripts/fetch_data.py` unpacks `onnx/backend/test/data/{node,pytorch-converted}`
//! from the pinned `onnx` wheel into the cache. Every case is loaded with its first
//! graph input as the data and the other inputs bound as constants (weights are
//! public in HE inference, so that is how hepack sees them). Then:
//!
//! * every case that loads must reproduce the expected output to 1e-5 relative
//!   (plus 1e-6 absolute for values near zero);
//! * every case listed in `tests/onnx_node_cases.txt` must load (the list pins
//!   what hepack supports, so a regression fails loudly);
//! * every supported op has at least one passing case.
//!
//! Cases that do not load are counted with the reason, and the counts printed;
//! `HEPACK_CASE_VERBOSE=substring` prints the reason for each matching case.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hepack_frontend::tensor::{decode, Const};
use hepack_frontend::Loader;
use ndarray::ArrayD;
use onnx_protobuf::{Message, ModelProto, TensorProto};

const RTOL: f64 = 1e-5;
const ATOL: f64 = 1e-6;

fn cache_dir() -> PathBuf {
    std::env::var_os("HEPACK_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/hepack"))
}

fn read_tensor(path: &Path) -> Option<Const> {
    let t = TensorProto::parse_from_bytes(&std::fs::read(path).ok()?).ok()?;
    decode(&t, None).ok()
}

enum Outcome {
    Pass,
    Unsupported(String),
    Mismatch(String),
}

fn run_case(dir: &Path) -> Outcome {
    let model_path = dir.join("model.onnx");
    let Ok(bytes) = std::fs::read(&model_path) else {
        return Outcome::Unsupported("no model.onnx".into());
    };
    let Ok(mut proto) = ModelProto::parse_from_bytes(&bytes) else {
        return Outcome::Unsupported("model does not parse".into());
    };
    restamp_single_version_ops(&mut proto);
    let graph = proto.graph.as_ref().cloned().unwrap_or_default();
    let initialized: BTreeSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&str> = graph
        .input
        .iter()
        .map(|i| i.name.as_str())
        .filter(|n| !initialized.contains(n))
        .collect();
    let data_set = dir.join("test_data_set_0");
    let mut loader = Loader::default();
    let mut data = None;
    for (i, name) in inputs.iter().enumerate() {
        let Some(value) = read_tensor(&data_set.join(format!("input_{i}.pb"))) else {
            return Outcome::Unsupported(format!("input {i} is not a supported tensor"));
        };
        if i == 0 {
            match value {
                Const::Float(a) => data = Some(a),
                Const::Int(_) => return Outcome::Unsupported("integer data input".into()),
            }
        } else {
            loader = loader.bind(*name, value);
        }
    }
    let Some(x) = data else {
        return Outcome::Unsupported("no data input".into());
    };
    let model = match loader.load_proto(&proto, Some(dir)) {
        Ok(m) => m,
        Err(e) => return Outcome::Unsupported(e.to_string()),
    };
    let Some(Const::Float(expected)) = read_tensor(&data_set.join("output_0.pb")) else {
        return Outcome::Unsupported("expected output is not a float tensor".into());
    };
    let got = match hepack_ir::interp::run(&model.graph, x.view()) {
        Ok(y) => y,
        Err(e) => return Outcome::Mismatch(format!("interpreter error: {e}")),
    };
    compare(&got, &expected)
}

/// Ops whose ONNX schema in force at opset 7 already held at an earlier opset
/// (the op and that opset): a model at that opset or later, using only such
/// ops, means the same at opset 7. ONNX's node tests for these exist only at
/// opsets below 7, the lowest hepack reads; they are re-stamped to opset 7 so
/// the interpreter is checked on them.
const UNCHANGED_UNTIL_7: [(&str, i64); 5] = [
    ("GlobalAveragePool", 1),
    ("Softplus", 1),
    ("Conv", 1),
    ("Elu", 6),
    ("HardSigmoid", 6),
];

fn restamp_single_version_ops(proto: &mut ModelProto) {
    let Some(opset) = proto
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
    else {
        return;
    };
    let unchanged = proto.graph.node.iter().all(|n| {
        UNCHANGED_UNTIL_7
            .iter()
            .any(|&(op, since)| n.op_type == op && opset >= since)
    });
    for o in &mut proto.opset_import {
        if (o.domain.is_empty() || o.domain == "ai.onnx") && o.version < 7 && unchanged {
            o.version = 7;
        }
    }
}

fn compare(got: &ArrayD<f64>, expected: &ArrayD<f64>) -> Outcome {
    if got.shape() != expected.shape() {
        return Outcome::Mismatch(format!(
            "shape {:?}, expected {:?}",
            got.shape(),
            expected.shape()
        ));
    }
    for (i, (&g, &e)) in got.iter().zip(expected.iter()).enumerate() {
        // Exact equality covers infinities; NaN is expected only where ONNX has NaN.
        let close = g == e || (e.is_nan() && g.is_nan()) || (g - e).abs() <= RTOL * e.abs() + ATOL;
        if !close {
            return Outcome::Mismatch(format!("element {i}: {g} vs expected {e}"));
        }
    }
    Outcome::Pass
}

/// The op types a case's model uses.
fn ops_of(dir: &Path) -> BTreeSet<String> {
    std::fs::read(dir.join("model.onnx"))
        .ok()
        .and_then(|b| ModelProto::parse_from_bytes(&b).ok())
        .map(|m| {
            m.graph
                .node
                .iter()
                .map(|n| n.op_type.clone())
                .collect::<BTreeSet<_>>()
        })
        .unwrap_or_default()
}

#[test]
fn interpreter_matches_onnx_backend_test_data() {
    let root = cache_dir().join("onnx-backend");
    assert!(
        root.join(".complete").exists(),
        "ONNX backend test data missing under {}: run `python3 scripts/fetch_data.py` (scripts/test.sh does)",
        root.display()
    );
    let mut cases: Vec<PathBuf> = ["node", "pytorch-converted"]
        .iter()
        .flat_map(|suite| std::fs::read_dir(root.join(suite)).expect("suite directory"))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.join("model.onnx").exists())
        .collect();
    cases.sort();

    let mut passed = BTreeSet::new();
    let mut mismatches = Vec::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut passing_ops: BTreeSet<String> = BTreeSet::new();
    for dir in &cases {
        let name = format!(
            "{}/{}",
            dir.parent().unwrap().file_name().unwrap().to_string_lossy(),
            dir.file_name().unwrap().to_string_lossy()
        );
        match run_case(dir) {
            Outcome::Pass => {
                passing_ops.extend(ops_of(dir));
                passed.insert(name);
            }
            Outcome::Mismatch(m) => mismatches.push(format!("{name}: {m}")),
            Outcome::Unsupported(reason) => {
                if let Some(filter) = std::env::var_os("HEPACK_CASE_VERBOSE") {
                    if name.contains(&*filter.to_string_lossy()) {
                        println!("  {name}: {reason}");
                    }
                }
                // Group reasons by their kind, not their node-specific details.
                let kind = reason
                    .split_once("): ")
                    .map(|(_, r)| r)
                    .unwrap_or(&reason)
                    .chars()
                    .take(70)
                    .collect::<String>();
                *reasons.entry(kind).or_default() += 1;
            }
        }
    }

    let unsupported: usize = reasons.values().sum();
    println!(
        "ONNX backend cases: {} total, {} passed, {} mismatched, {} unsupported",
        cases.len(),
        passed.len(),
        mismatches.len(),
        unsupported
    );
    let mut top: Vec<(&String, &usize)> = reasons.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1));
    for (reason, n) in top.iter().take(15) {
        println!("  {n:4} unsupported: {reason}");
    }
    if std::env::var_os("HEPACK_WRITE_CASES").is_some() {
        let list: String = passed.iter().map(|c| format!("{c}\n")).collect();
        std::fs::write(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnx_node_cases.txt"),
            list,
        )
        .unwrap();
    }

    assert!(
        mismatches.is_empty(),
        "cases that load but compute the wrong values:\n{}",
        mismatches.join("\n")
    );

    let listed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnx_node_cases.txt"),
    )
    .expect("tests/onnx_node_cases.txt");
    let missing: Vec<&str> = listed
        .lines()
        .filter(|c| !c.is_empty() && !passed.contains(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "listed cases that no longer pass:\n{}",
        missing.join("\n")
    );
    let unlisted: Vec<&String> = passed
        .iter()
        .filter(|c| !listed.lines().any(|l| l == c.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "cases now pass but are not listed (rerun with HEPACK_WRITE_CASES=1): {unlisted:?}"
    );

    // Pow is absent: ONNX has no node test with the exponent 2, the only one hepack
    // accepts; `tests/frontend.rs` checks it instead.
    let required = [
        "AveragePool",
        "BatchNormalization",
        "Conv",
        "Div",
        "Dropout",
        "Flatten",
        "Gemm",
        "GlobalAveragePool",
        "Identity",
        "LeakyRelu",
        "MatMul",
        "MaxPool",
        "Mul",
        "Relu",
        "Reshape",
        "Sigmoid",
        "Softmax",
        "Softplus",
        "Sub",
        "Tanh",
        "Transpose",
        "Add",
        "Constant",
        "Clip",
        "Elu",
        "Erf",
        "Gelu",
        "HardSigmoid",
        "HardSwish",
        "LogSoftmax",
        "Mish",
        "Squeeze",
        "Unsqueeze",
        "Cast",
        "ConvTranspose",
        "Resize",
        "Pad",
    ];
    let uncovered: Vec<&str> = required
        .iter()
        .copied()
        .filter(|op| !passing_ops.contains(*op))
        .collect();
    assert!(
        uncovered.is_empty(),
        "supported ops with no passing conformance case: {uncovered:?}"
    );
}
