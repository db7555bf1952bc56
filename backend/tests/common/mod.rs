//! Helpers shared by the backend's integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;

use hepack_ir::Graph;
use hepack_passes::prune::{BatchPacking, Block};
use hepack_passes::{pipeline, PassOptions};
use ndarray::{ArrayD, IxDyn};

/// Batch packing with filter/neuron units.
pub const BATCH: BatchPacking = BatchPacking {
    block: Block::Column,
};

/// An example model from `examples/models`, as loaded.
pub fn model(name: &str) -> Graph {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/models")
        .join(format!("{name}.onnx"));
    hepack_frontend::load(&path).unwrap().graph
}

/// `g` through the he-friendly pipeline, then the passes in `extra`
/// (`",conv-to-dense"` or empty).
pub fn he_friendly(mut g: Graph, extra: &str) -> Graph {
    let spec = format!("he-friendly{extra}");
    pipeline(&spec, &PassOptions::default())
        .unwrap()
        .run(&mut g, |_, _| {})
        .unwrap();
    g
}

/// Deterministic inputs in [-1, 1], `n` samples for `g`.
pub fn inputs(g: &Graph, n: usize) -> ArrayD<f64> {
    let shape = g.node(g.input()).shape.with_batch(n);
    let mut s = 12345u64;
    ArrayD::from_shape_simple_fn(IxDyn(&shape), || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    })
}
