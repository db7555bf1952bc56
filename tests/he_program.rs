//! HE op counts under batch packing, pinned with insta and checked against
//! MOFHEI Table III (HEF column and the pruned LeNet widths).

mod common;

use common::model;
use hepack_backend::{Cost, Lowering, OpTimes};
use hepack_frontend::load;
use hepack_ir::Graph;
use hepack_passes::prune::{BatchPacking, Block};
use hepack_passes::{pipeline, PassOptions};

const BATCH: BatchPacking = BatchPacking {
    block: Block::Column,
};

fn he_friendly(name: &str) -> Graph {
    let mut g = load(&model(name)).unwrap().graph;
    pipeline("he-friendly", &PassOptions::default())
        .unwrap()
        .run(&mut g, |_, _| {})
        .unwrap();
    g
}

/// A layer's ops the way MOFHEI Table III counts them: one multiplication and
/// one addition per weight (`mul_plain`, `add`, the bias's `add_plain`). The
/// one rescale per output that the CKKS schedule adds is not in the table.
fn he_ops(cost: &Cost, layer: &str) -> u64 {
    let ops = cost.layers.iter().find(|l| l.layer == layer).unwrap().ops;
    ops.get("mul_plain") + ops.get("add") + ops.get("add_plain")
}

/// One line per layer: HE ops and the op kinds, for snapshots.
fn summary(cost: &Cost) -> String {
    let mut out = String::new();
    for l in &cost.layers {
        out.push_str(&format!(
            "{:<10} {:>7} {}\n",
            l.layer,
            l.he_ops,
            serde_json::to_string(&l.ops).unwrap()
        ));
    }
    out.push_str(&format!(
        "total {} HE ops, depth {}, {} plaintexts, peak {} ciphertexts ({} MiB), {} removed by DCE\n",
        cost.he_ops,
        cost.depth,
        cost.plaintexts,
        cost.peak_ciphertexts.map_or("-".into(), |p| p.to_string()),
        cost.peak_bytes.map_or("-".into(), |b| (b >> 20).to_string()),
        cost.removed_by_dce
    ));
    out
}

#[test]
fn lenet5_unpruned_matches_mofhei_hef_column() {
    let g = he_friendly("lenet5");
    let (_, cost) = BATCH.lower(&g, &OpTimes::default()).unwrap();
    // Unpadded linear layers: one mul_plain and one add per weight and use
    // (the first add of each sum is the bias's add_plain): exactly 2 × MACs,
    // plus one rescale per output feature (in the snapshot).
    assert_eq!(he_ops(&cost, "/3/Conv"), 480_000); // Table III 4.8e5
    assert_eq!(he_ops(&cost, "/6/Conv"), 96_000); // 9.6e4
    assert_eq!(he_ops(&cost, "/9/Gemm"), 20_160); // 2.0e4
                                                  // conv0 pads its 28×28 input by 2: taps on the padding multiply a known
                                                  // zero and are not emitted, so 2 × MACs (235200, Table III 2.4e5) is an
                                                  // upper bound.
    assert!(he_ops(&cost, "/0/Conv") < 235_200);
    insta::with_settings!({description => "LeNet-5, HE-friendly (square activations), batch packing. \
    MOFHEI Table III HEF: conv0 2.4e5, conv1 4.8e5, conv2 9.6e4, dense0 2.0e4, total 8.8e5. \
    conv1/conv2/dense0 are exactly 2 x MACs; conv0 is lower because padding taps are not emitted. \
    The per-layer checks count mul_plain + add + add_plain as Table III does; the rows below add \
    one rescale per linear-layer output. The total also counts what Table III leaves out of the \
    per-layer rows: activations (square + rescale each; the next linear layer relinearizes its sums), sum pools (additions), the output layer."}, {
        insta::assert_snapshot!(summary(&cost));
    });
}

/// MOFHEI Table III, MNIST-LeNet widths (conv0, conv1, conv2, dense0) per column.
const WIDTHS: [(&str, [usize; 4]); 4] = [
    ("50", [3, 8, 61, 48]),
    ("60", [3, 7, 51, 39]),
    ("80", [1, 3, 25, 18]),
    ("90", [1, 2, 16, 9]),
];

#[test]
fn lenet5_pruned_to_table_iii_widths() {
    let g = he_friendly("lenet5");
    let mut snap = String::new();
    for (column, kept) in WIDTHS {
        let p = common::pruned_to_widths(&g, &kept);
        let (_, cost) = BATCH.lower(&p, &OpTimes::default()).unwrap();
        let [_, c1, c2, d0] = kept;
        // Table III: conv1 2·(10·10)·(25·c0)·c1, conv2 2·(25·c1)·c2, dense0 2·c2·d0.
        assert_eq!(
            he_ops(&cost, "/3/Conv"),
            2 * 100 * 25 * kept[0] as u64 * c1 as u64
        );
        assert_eq!(he_ops(&cost, "/6/Conv"), 2 * 25 * c1 as u64 * c2 as u64);
        assert_eq!(he_ops(&cost, "/9/Gemm"), 2 * c2 as u64 * d0 as u64);
        snap.push_str(&format!("== {column}% {kept:?}\n{}", summary(&cost)));
    }
    insta::with_settings!({description => "LeNet-5 pruned to MOFHEI Table III's widths and compressed. \
    Table III HE ops (conv0/conv1/conv2/dense0): 50%: 1.2e5/1.2e5/2.4e4/5856, 60%: 1.2e5/1.1e5/1.8e4/3978, \
    80%: 3.9e4/1.5e4/3750/900, 90%: 3.9e4/1.0e4/1600/288; totals 2.9e5, 2.7e5, 6.7e4, 5.8e4."}, {
        insta::assert_snapshot!(snap);
    });
}

#[test]
fn autoencoders_per_layer_counts() {
    let mut snap = String::new();
    for name in ["ae1", "ae2", "ae3"] {
        let (_, cost) = BATCH
            .lower(&he_friendly(name), &OpTimes::default())
            .unwrap();
        snap.push_str(&format!("== {name}\n{}", summary(&cost)));
    }
    let (_, ae1) = BATCH
        .lower(&he_friendly("ae1"), &OpTimes::default())
        .unwrap();
    let dense0 = ae1
        .layers
        .iter()
        .find(|l| l.ops.get("mul_plain") > 0)
        .unwrap();
    assert_eq!(he_ops(&ae1, &dense0.layer), 2 * 784 * 32); // Table III AE1 dense0 5.0e4
    insta::with_settings!({description => "AE1-AE3 HE-friendly (square), batch packing. Table III: AE1 dense0 5.0e4, HEF total 1.0e5."}, {
        insta::assert_snapshot!(snap);
    });
}

#[test]
fn cli_inspect_he_json_uses_the_ir_layer_names_and_matches_compile() {
    let dir = tempfile::tempdir().unwrap();
    let (friendly, text) = (dir.path().join("f.onnx"), dir.path().join("p.txt"));
    let lenet = model("lenet5");
    let (ok, _, err) = common::hepack(&[
        "export",
        lenet.to_str().unwrap(),
        "--f64",
        "-o",
        friendly.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = common::hepack(&["inspect", friendly.to_str().unwrap(), "--he", "--json"]);
    assert!(ok, "{err}");
    let inspect: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ir_names: Vec<&str> = inspect["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    let he_layers = inspect["he"]["layers"].as_array().unwrap();
    assert!(he_layers.len() >= 8, "{he_layers:?}");
    for l in he_layers {
        let name = l["layer"].as_str().unwrap();
        assert!(ir_names.contains(&name), "{name} not in {ir_names:?}");
    }
    // compile builds the program (and writes its text); inspect only counts.
    let (ok, out, err) = common::hepack(&[
        "compile",
        friendly.to_str().unwrap(),
        "--passes",
        "check-he-friendly",
        "--emit-he",
        text.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{err}");
    let compile: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(compile["he"]["he_ops"], inspect["he"]["he_ops"]);
    assert_eq!(compile["he"]["layers"], inspect["he"]["layers"]);
    assert!(compile["he"]["peak_ciphertexts"].as_u64().unwrap() > 0);
    assert!(inspect["he"]["peak_ciphertexts"].is_null());
    let program = std::fs::read_to_string(&text).unwrap();
    assert!(program.starts_with("; hepack HE program, batch packing"));
    let ops = program.lines().filter(|l| l.starts_with('%')).count() as u64;
    let encrypts = compile["he"]["total"]["encrypt_input"].as_u64().unwrap();
    assert_eq!(ops, compile["he"]["he_ops"].as_u64().unwrap() + encrypts);
}

#[test]
fn parameters_chosen_for_the_example_models() {
    use hepack_backend::params::max_bits_128;
    let mut snap = String::new();
    for name in ["mlp", "lenet5", "ae1", "ae2", "ae3"] {
        let (program, cost) = BATCH
            .lower(&he_friendly(name), &OpTimes::default())
            .unwrap();
        let p = &program.params;
        assert_eq!(p.levels(), cost.depth, "{name}: one level per rescale");
        assert!(p.total_bits() <= max_bits_128(p.degree).unwrap(), "{name}");
        assert_eq!(p.security_bits, Some(128));
        snap.push_str(&format!(
            "{name:<7} depth {:>2}  N {:>5}  scale 2^{}  chain {:?} = {} bits (max {})\n",
            cost.depth,
            p.degree,
            p.scale_bits,
            p.chain_bits,
            p.total_bits(),
            max_bits_128(p.degree).unwrap()
        ));
    }
    insta::with_settings!({description => "Default parameters (precision 1e-3, no calibration: values assumed within ±1024) \
    for the HE-friendly example models (square activations)."}, {
        insta::assert_snapshot!(snap);
    });
}

/// Issue #6's memory target: LeNet-5 unpruned at N = 16384, run in the
/// memory-aware order, needs well under 16 GB of live ciphertexts (program
/// order, layer by layer, peaked at 4787 ciphertexts).
#[test]
fn lenet5_peak_memory_is_well_under_16_gb() {
    let g = he_friendly("lenet5");
    let (program, cost) = BATCH.lower(&g, &OpTimes::default()).unwrap();
    assert_eq!(program.params.degree, 16384);
    let bytes = cost.peak_bytes.unwrap();
    assert!(bytes < 4 << 30, "peak {bytes} bytes");
    assert!(cost.peak_ciphertexts.unwrap() < 1000);
    // Every ciphertext is at most 3 · N · (levels + 1) words (a square
    // left for its readers to relinearize has three polynomials).
    let largest = 3 * 16384 * u64::from(program.params.levels() + 1) * 8;
    assert!(bytes <= cost.peak_ciphertexts.unwrap() as u64 * largest);
}

/// Fitted quadratics (`c₀ + c₁x + c₂x²`, all non-zero) cost one level each,
/// like a bare square: the square is completed and its outer constants fold
/// into the next layer. LeNet-5 then needs depth 9 = 5 linear layers + 4
/// activations on its longest path, each a product that must be rescaled —
/// the least any schedule can do (without folding it took 13 levels and
/// N = 32768).
#[test]
fn lenet5_with_fitted_quadratics_needs_one_level_per_activation() {
    let mut g = load(&model("lenet5")).unwrap().graph;
    let options = PassOptions {
        act: Some("poly:2".parse().unwrap()),
        calib: Some(common::read_f32(&common::mnist("mnist_train_x.npy"))),
        ..PassOptions::default()
    };
    pipeline("he-friendly", &options)
        .unwrap()
        .run(&mut g, |_, _| {})
        .unwrap();
    let quadratics = g
        .topo_order()
        .into_iter()
        .filter(|&id| match &g.node(id).op {
            hepack_ir::Op::Polynomial(p) => {
                p.coeffs.len() == 3 && p.coeffs.iter().all(|&c| c != 0.0)
            }
            _ => false,
        })
        .count();
    assert_eq!(quadratics, 4);
    let (program, cost) = BATCH.lower(&g, &OpTimes::default()).unwrap();
    assert_eq!(cost.depth, 9);
    assert_eq!(program.params.degree, 16384);
}
