//! Per-layer facts about a graph: shapes, parameters and multiply-accumulates.

use serde::Serialize;

use crate::graph::{Graph, LayerName};
use crate::shape::Shape;

/// One row of the layer table.
#[derive(Clone, Debug, Serialize)]
pub struct LayerSummary {
    /// Layer name.
    pub name: LayerName,
    /// Op name.
    pub op: &'static str,
    /// Per-sample shapes of the operands.
    pub inputs: Vec<Shape>,
    /// Per-sample shape of the output.
    pub output: Shape,
    /// Stored constants.
    pub params: usize,
    /// Multiply-accumulates per sample (linear layers only).
    pub macs: u64,
}

/// The layer table of a graph plus totals.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// One entry per node, in topological order (the input first).
    pub layers: Vec<LayerSummary>,
    /// Sum of `params`.
    pub total_params: usize,
    /// Sum of `macs`.
    pub total_macs: u64,
}

impl Summary {
    /// Summarise a graph.
    pub fn of(graph: &Graph) -> Summary {
        let layers: Vec<LayerSummary> = graph
            .topo_order()
            .into_iter()
            .map(|id| {
                let node = graph.node(id);
                let inputs: Vec<Shape> = graph
                    .operands(id)
                    .into_iter()
                    .map(|o| graph.node(o).shape.clone())
                    .collect();
                let macs = inputs.first().map_or(0, |x| node.op.macs(x, &node.shape));
                LayerSummary {
                    name: node.name.clone(),
                    op: node.op.name(),
                    inputs,
                    output: node.shape.clone(),
                    params: node.op.params(),
                    macs,
                }
            })
            .collect();
        Summary {
            total_params: layers.iter().map(|l| l.params).sum(),
            total_macs: layers.iter().map(|l| l.macs).sum(),
            layers,
        }
    }
}
