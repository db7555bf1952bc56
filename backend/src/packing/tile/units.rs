//! The pruning unit of tile packing (HE-PEx's P2T): a weight tile. A weight
//! of W̄ lands on the tiles (output chunk, input chunk) its entries of the
//! run's matrix fall on; a dense layer's weight on exactly one, so its
//! units are its `t1 × t2` tiles (transposed where the layer reads its
//! input along columns). A convolution's weight is on many tiles
//! (conv-to-dense repeats it), and weights that share a tile join into one
//! unit, so units always partition W̄. Zeroing a unit removes one
//! `mul_plain` and one addition per tile it owns, and the rotate-and-sum of
//! an output chunk all of whose tiles it owns.

use std::collections::{BTreeSet, HashMap};

use hepack_ir::Graph;
use hepack_passes::prune::{linear_layers, LayerWeights, PackedLayer, Unit};
use hepack_passes::PassError;

use super::{plan, TileShape};
use crate::packing::diagonal::units::PRUNING_SLOTS;
use crate::packing::runs::{compiled_layers, partition, run_cells, run_ends};

/// A weight tile: (output chunk, input chunk).
pub type TileKey = (u32, u32);

/// One linear layer's weight tiles as its weights place them.
#[derive(Clone, Debug)]
pub struct LayerTiles {
    /// The layer's weights.
    pub weights: LayerWeights,
    /// Per cell of W̄ (row-major, `r · F + c`), the tiles it is on.
    pub cells: Vec<Vec<TileKey>>,
    /// Rotations of one output chunk's rotate-and-sum.
    pub sum_rotations: u64,
}

/// Products and rotations of a tile layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TileOps {
    /// One `mul_plain` (and one addition) per non-zero tile.
    pub products: u64,
    /// The rotate-and-sum of every output chunk with a tile.
    pub rotations: u64,
}

impl TileOps {
    /// The pruner's count: a product and an addition per tile, a rotation
    /// and an addition per rotate-and-sum step.
    pub fn he_ops(self) -> u64 {
        2 * self.products + 2 * self.rotations
    }
}

impl LayerTiles {
    /// The tiles with a non-zero weight on them.
    pub fn kept(&self) -> BTreeSet<TileKey> {
        let f = self.weights.matrix.ncols();
        self.cells
            .iter()
            .enumerate()
            .filter(|(i, _)| self.weights.matrix[[i / f, i % f]] != 0.0)
            .flat_map(|(_, keys)| keys.iter().copied())
            .collect()
    }

    /// Products and rotations of the tiles `kept`.
    pub fn ops(&self, kept: &BTreeSet<TileKey>) -> TileOps {
        let outputs: BTreeSet<u32> = kept.iter().map(|&(b, _)| b).collect();
        TileOps {
            products: kept.len() as u64,
            rotations: outputs.len() as u64 * self.sum_rotations,
        }
    }

    /// The layer's weights grouped into units: cells that share a tile.
    pub fn units(&self) -> Vec<Unit> {
        let f = self.weights.matrix.ncols();
        let members = partition(&self.cells, |k| k);
        let mut unit_of: HashMap<TileKey, usize> = HashMap::new();
        for (u, cells) in members.iter().enumerate() {
            for &c in cells {
                for &key in &self.cells[c] {
                    unit_of.insert(key, u);
                }
            }
        }
        let mut tiles = vec![0u64; members.len()];
        let mut output_owner: HashMap<u32, Option<usize>> = HashMap::new();
        for (&(b, _), &u) in &unit_of {
            tiles[u] += 1;
            let owner = output_owner.entry(b).or_insert(Some(u));
            if *owner != Some(u) {
                *owner = None;
            }
        }
        let mut owned_sums = vec![0u64; members.len()];
        for u in output_owner.into_values().flatten() {
            owned_sums[u] += 1;
        }
        members
            .into_iter()
            .enumerate()
            .map(|(u, cells)| Unit {
                cells: cells.into_iter().map(|c| [c / f, c % f]).collect(),
                he_ops: TileOps {
                    products: tiles[u],
                    rotations: owned_sums[u] * self.sum_rotations,
                }
                .he_ops(),
            })
            .collect()
    }
}

/// Every linear layer's weight tiles under tile packing with `shape`, in
/// [`linear_layers`] order.
pub fn layer_tiles(
    graph: &Graph,
    shape: TileShape,
    slots: usize,
) -> Result<Vec<LayerTiles>, PassError> {
    let plan = plan(graph, shape, slots).map_err(|e| {
        PassError::Prune(format!(
            "tile packing's units need the model's tile layout, which cannot be planned: {e}"
        ))
    })?;
    let run_of = run_ends(&plan.runs);
    let mut out = Vec::new();
    for weights in linear_layers(graph) {
        let end = run_of[&weights.id];
        let (in_l, out_l) = plan.run_forms(graph, end);
        let cells = run_cells(graph, &plan.runs[&end], &weights, |o, i| {
            (out_l.at[o].ct, in_l.at[i].ct)
        });
        out.push(LayerTiles {
            weights,
            cells,
            sum_rotations: plan.geo.sum_steps(in_l.form).len() as u64,
        });
    }
    Ok(out)
}

/// [`hepack_passes::prune::Packing::layers`] for tile packing with `shape`.
pub fn packed_layers(graph: &Graph, shape: TileShape) -> Result<Vec<PackedLayer>, PassError> {
    let layers = compiled_layers(
        graph,
        "tile",
        |g| layer_tiles(g, shape, PRUNING_SLOTS),
        |l| &mut l.weights,
    )?;
    Ok(layers
        .into_iter()
        .map(|l| PackedLayer {
            units: l.units(),
            he_ops: l.ops(&l.kept()).he_ops(),
            weights: l.weights,
        })
        .collect())
}
