//! Prunable units: how a packing partitions each linear layer's weights.
//!
//! An HE operation disappears only when a whole packed unit of weights is zero,
//! and which weights form a unit depends on the packing (DESIGN.md §2). A
//! [`Packing`] lists the units of a layer, each as the cells of the layer's
//! `M × F` matrix W̄ (conv-to-dense view: rows are inputs, columns are
//! filters/neurons) plus the HE ops it costs. The pruner only ranks and zeroes
//! units, so a diagonal or tile packing plugs in without changing it.

use std::collections::{HashMap, HashSet};

use hepack_ir::{Graph, LayerName, NodeId, Op};
use ndarray::Array2;

use crate::error::PassError;

/// One linear layer as the pruner sees it.
#[derive(Clone, Debug)]
pub struct LayerWeights {
    /// The layer's node.
    pub id: NodeId,
    /// The layer's name.
    pub name: LayerName,
    /// W̄, `M × F`: rows are inputs (a conv's patch entries), columns filters/neurons.
    pub matrix: Array2<f64>,
    /// How many times each weight is applied per sample: the `N = U·V` output
    /// positions of a conv, the rows of a dense layer's input.
    pub uses: u64,
}

/// The linear layers of a graph (Conv and Dense), in topological order.
pub fn linear_layers(graph: &Graph) -> Vec<LayerWeights> {
    graph
        .topo_order()
        .into_iter()
        .filter_map(|id| {
            let node = graph.node(id);
            let (matrix, uses) = match &node.op {
                Op::Conv(c) => {
                    let filters = c.bias.len();
                    (c.filter_matrix(), (node.shape.numel() / filters) as u64)
                }
                Op::Dense(d) => {
                    let input = &graph.node(graph.operands(id)[0]).shape;
                    (d.weight.clone(), (input.numel() / d.weight.nrows()) as u64)
                }
                _ => return None,
            };
            Some(LayerWeights {
                id,
                name: node.name.clone(),
                matrix,
                uses,
            })
        })
        .collect()
}

/// The output layers: per model output, the last linear layer it depends
/// on (MOFHEI leaves them whole unless asked). A model with one output has
/// one, its last linear layer.
pub fn output_layers(graph: &Graph) -> HashSet<NodeId> {
    let order: HashMap<NodeId, usize> = graph
        .topo_order()
        .into_iter()
        .enumerate()
        .map(|(i, id)| (id, i))
        .collect();
    let mut found = HashSet::new();
    for out in graph.outputs() {
        let mut seen = HashSet::from([out.node]);
        let mut stack = vec![out.node];
        let mut last: Option<NodeId> = None;
        while let Some(id) = stack.pop() {
            if matches!(graph.node(id).op, Op::Conv(_) | Op::Dense(_))
                && last.is_none_or(|l| order[&id] > order[&l])
            {
                last = Some(id);
            }
            for o in graph.operands(id) {
                if seen.insert(o) {
                    stack.push(o);
                }
            }
        }
        found.extend(last);
    }
    found
}

/// A set of weights that must all be zero for their HE ops to vanish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    /// `[row, column]` cells of W̄.
    pub cells: Vec<[usize; 2]>,
    /// HE ops per sample batch that disappear when the unit is zero.
    pub he_ops: u64,
}

impl Unit {
    /// Whether any of the unit's weights in `matrix` (the layer's W̄) is non-zero.
    pub fn is_kept(&self, matrix: &Array2<f64>) -> bool {
        self.cells.iter().any(|&[r, c]| matrix[[r, c]] != 0.0)
    }
}

/// A linear layer with its units under a packing.
#[derive(Clone, Debug)]
pub struct PackedLayer {
    /// The layer's weights.
    pub weights: LayerWeights,
    /// Its units: every cell of W̄ in exactly one.
    pub units: Vec<Unit>,
    /// HE ops the layer costs as its weights stand.
    pub he_ops: u64,
}

/// A packing strategy, as far as pruning is concerned.
pub trait Packing {
    /// The name used on the command line.
    fn name(&self) -> &'static str;

    /// Every linear layer of `graph` ([`linear_layers`] order) with its units
    /// and HE ops. A graph-wide call, because under a slot packing a
    /// layer's units depend on where its inputs and outputs sit.
    fn layers(&self, graph: &Graph) -> Result<Vec<PackedLayer>, PassError>;
}

/// [`Packing::layers`] for a packing whose units and ops follow from each
/// layer's own weights.
fn layer_by_layer(
    graph: &Graph,
    units: impl Fn(&LayerWeights) -> Vec<Unit>,
    he_ops: impl Fn(&LayerWeights) -> u64,
) -> Vec<PackedLayer> {
    linear_layers(graph)
        .into_iter()
        .map(|weights| PackedLayer {
            units: units(&weights),
            he_ops: he_ops(&weights),
            weights,
        })
        .collect()
}

/// The block shape for batch packing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// A whole column of W̄: one filter/neuron (MOFHEI's default).
    Column,
    /// `h × w` blocks tiling W̄ from the top left, cut at the edges (MOFHEI
    /// Algorithm 1 zero-pads instead; padding cells are not weights).
    Rect {
        /// Rows per block.
        h: usize,
        /// Columns per block.
        w: usize,
    },
}

impl std::str::FromStr for Block {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "cols" || s == "columns" {
            return Ok(Block::Column);
        }
        let parse = |t: &str| t.parse::<usize>().ok().filter(|&v| v > 0);
        match s.split_once(['x', '×']) {
            Some((h, w)) => match (parse(h), parse(w)) {
                (Some(h), Some(w)) => Ok(Block::Rect { h, w }),
                _ => Err(format!("block '{s}': sizes must be whole numbers >= 1")),
            },
            None => Err(format!("block '{s}': expected cols or HxW, e.g. 4x1")),
        }
    }
}

/// Batch packing (CryptoNets, MOFHEI): slot = sample, one ciphertext per
/// feature, so every weight is one scalar multiply and one addition per use,
/// with no rotations.
#[derive(Clone, Copy, Debug)]
pub struct BatchPacking {
    /// The unit shape.
    pub block: Block,
}

impl BatchPacking {
    /// The layer's `h × w` blocks (whole columns for [`Block::Column`]).
    pub fn units(&self, layer: &LayerWeights) -> Vec<Unit> {
        let (m, f) = layer.matrix.dim();
        let (h, w) = match self.block {
            Block::Column => (m, 1),
            Block::Rect { h, w } => (h.min(m), w.min(f)),
        };
        let mut units = Vec::with_capacity(m.div_ceil(h) * f.div_ceil(w));
        for c0 in (0..f).step_by(w) {
            for r0 in (0..m).step_by(h) {
                let cells: Vec<[usize; 2]> = (c0..(c0 + w).min(f))
                    .flat_map(|c| (r0..(r0 + h).min(m)).map(move |r| [r, c]))
                    .collect();
                // One multiply and one add per weight per use.
                let he_ops = 2 * cells.len() as u64 * layer.uses;
                units.push(Unit { cells, he_ops });
            }
        }
        units
    }

    /// Every non-zero weight is one multiply and one add per use, whatever the
    /// block shape: blocks decide what is pruned together, not what ops cost.
    pub fn he_ops(layer: &LayerWeights) -> u64 {
        let nonzero = layer.matrix.iter().filter(|&&w| w != 0.0).count() as u64;
        2 * nonzero * layer.uses
    }
}

impl Packing for BatchPacking {
    fn name(&self) -> &'static str {
        "batch"
    }

    fn layers(&self, graph: &Graph) -> Result<Vec<PackedLayer>, PassError> {
        Ok(layer_by_layer(
            graph,
            |l| self.units(l),
            BatchPacking::he_ops,
        ))
    }
}

/// Every weight on its own: plain unstructured magnitude pruning's units.
#[derive(Clone, Copy, Debug)]
pub struct SingleWeights;

impl SingleWeights {
    /// One unit per weight.
    pub fn units(&self, layer: &LayerWeights) -> Vec<Unit> {
        BatchPacking {
            block: Block::Rect { h: 1, w: 1 },
        }
        .units(layer)
    }
}

impl Packing for SingleWeights {
    fn name(&self) -> &'static str {
        "unstructured"
    }

    fn layers(&self, graph: &Graph) -> Result<Vec<PackedLayer>, PassError> {
        Ok(layer_by_layer(
            graph,
            |l| self.units(l),
            BatchPacking::he_ops,
        ))
    }
}
