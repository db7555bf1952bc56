//! Helpers shared by the backend's integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;

use hepack_ir::Graph;
use hepack_passes::prune::{BatchPacking, Block};

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
