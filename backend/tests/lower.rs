//! Batch-packing lowering: the simulated program agrees with the reference
//! interpreter; dead-ciphertext elimination removes what pruning zeroed.

use std::path::PathBuf;

use hepack_backend::simulate::simulate;
use hepack_backend::{Lowering, OpTimes};
use hepack_ir::{interp, Graph};
use hepack_passes::prune::{
    apply_masks, compress, find_masks, BatchPacking, Block, Criterion, Targets,
};
use hepack_passes::{pipeline, PassOptions};
use ndarray::{ArrayD, IxDyn};

const BATCH: BatchPacking = BatchPacking {
    block: Block::Column,
};

fn model(name: &str) -> Graph {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/models")
        .join(format!("{name}.onnx"));
    hepack_frontend::load(&path).unwrap().graph
}

fn he_friendly(mut g: Graph, extra: &str) -> Graph {
    let spec = format!("he-friendly{extra}");
    pipeline(&spec, &PassOptions::default())
        .unwrap()
        .run(&mut g, |_, _| {})
        .unwrap();
    g
}

/// Deterministic inputs in [-1, 1].
fn inputs(g: &Graph, n: usize) -> ArrayD<f64> {
    let shape = g.node(g.input()).shape.with_batch(n);
    let mut s = 12345u64;
    ArrayD::from_shape_simple_fn(IxDyn(&shape), || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    })
}

fn assert_agree(g: &Graph, context: &str) {
    let (program, _) = BATCH.lower(g, &OpTimes::default()).unwrap();
    let x = inputs(g, 4);
    let want = interp::run(g, x.view()).unwrap();
    let got = simulate(&program, x.view()).unwrap();
    assert_eq!(want.shape(), got.shape(), "{context}");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (a, b) in want.iter().zip(&got) {
        assert!((a - b).abs() <= 1e-9 * scale, "{context}: {a} vs {b}");
    }
}

fn pruned(g: &Graph, sparsity: f64) -> Graph {
    let mut g = g.clone();
    let t = Targets {
        sparsity,
        per_layer: Default::default(),
        prune_output: false,
    };
    let masks = find_masks(&g, &BATCH, Criterion::MeanAbs, &t).unwrap();
    apply_masks(&mut g, &masks).unwrap();
    g
}

#[test]
fn simulated_programs_match_the_interpreter() {
    for name in ["lenet5", "mlp", "ae1", "ae2", "ae3"] {
        let g = he_friendly(model(name), "");
        assert_agree(&g, name);
        // Masked (zeros left in place) and compressed pruned models.
        let p = pruned(&g, 0.5);
        assert_agree(&p, &format!("{name} masked"));
        let mut c = p.clone();
        compress(&mut c).unwrap();
        assert_agree(&c, &format!("{name} compressed"));
    }
    // The conv-as-dense view lowers to the same function.
    assert_agree(
        &he_friendly(model("lenet5"), ",conv-to-dense"),
        "lenet5 conv-to-dense",
    );
}

#[test]
fn masked_and_compressed_models_cost_the_same() {
    // DCE on the masked model finds what compression removes structurally.
    let g = he_friendly(model("lenet5"), "");
    let masked = pruned(&g, 0.5);
    let mut compressed = masked.clone();
    compress(&mut compressed).unwrap();
    let (_, a) = BATCH.lower(&masked, &OpTimes::default()).unwrap();
    let (_, b) = BATCH.lower(&compressed, &OpTimes::default()).unwrap();
    assert_eq!(a.he_ops, b.he_ops);
    assert!(a.removed_by_dce > b.removed_by_dce);
    let (_, full) = BATCH.lower(&g, &OpTimes::default()).unwrap();
    assert!(
        a.he_ops < full.he_ops / 2,
        "{} vs {}",
        a.he_ops,
        full.he_ops
    );
}

#[test]
fn models_that_are_not_he_friendly_are_refused() {
    let err = BATCH
        .lower(&model("lenet5"), &OpTimes::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("layer '/1/Relu' (relu) cannot be evaluated under CKKS"),
        "{err}"
    );
}
