//! The pruning units of diagonal packing: groups of generalised diagonals
//! (`../shared/PACKINGS.md` §1, table). A weight of W̄ lands on the
//! diagonals its entries of the run's matrix `M` fall on; a unit is a set
//! of weights that together own whole diagonals, so zeroing it removes
//! their `mul_plain`s and adds, and the rotations no other diagonal needs:
//!
//! - [`DiagonalUnit::Diagonal`] (Hunter's FC weight diagonal): one diagonal
//!   `k` of one (output, input) ciphertext pair;
//! - [`DiagonalUnit::Position`] (Hunter's internal structure, Artemis's
//!   position pruning): every diagonal with one baby step `b = k mod n₁` of
//!   one input ciphertext — its baby rotation goes with it;
//! - [`DiagonalUnit::ChannelDiagonal`] (Hunter's external structure,
//!   Artemis's diagonal pruning): every diagonal with one giant step
//!   `g = ⌊k / n₁⌋` of one output ciphertext — its giant rotation goes.
//!
//! Units are found from the layers' structure (which weights feed which
//! slots), not their values, so they stay the same while training prunes;
//! `n₁` is the split the lowering picks for the unpruned layer. A weight
//! on diagonals of two groups joins them into one unit, so units always
//! partition W̄.

use std::collections::{BTreeSet, HashMap};

use hepack_ir::Graph;
use hepack_passes::prune::{linear_layers, LayerWeights, PackedLayer, Unit};
use hepack_passes::PassError;

use super::{baby_step_count, hybrid_offset, offset, plan};
use crate::cost::OpTimes;
use crate::packing::runs::{compiled_layers, partition, run_cells, run_ends};

/// Slots the pruner lays a sample out in: N = 16384, the ring 128-bit
/// parameters give the example models' depths. A model that compiles to a
/// smaller ring keeps the same layouts when its sample fits (planning
/// shrinks the block to the sample anyway).
pub const PRUNING_SLOTS: usize = 8192;

/// Which group of diagonals is one unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DiagonalUnit {
    /// One diagonal (Hunter's FC weight diagonal).
    #[default]
    Diagonal,
    /// One baby step of one input ciphertext (Hunter internal, Artemis position).
    Position,
    /// One giant step of one output ciphertext (Hunter external, Artemis diagonal).
    ChannelDiagonal,
}

impl DiagonalUnit {
    /// The name used on the command line (`--block`).
    pub fn name(self) -> &'static str {
        match self {
            DiagonalUnit::Diagonal => "diagonal",
            DiagonalUnit::Position => "position",
            DiagonalUnit::ChannelDiagonal => "channel-diagonal",
        }
    }
}

/// A diagonal: (output ciphertext, input ciphertext, slot offset `k`).
pub type DiagonalKey = (u32, u32, i64);

/// One linear layer's diagonals as its weights place them.
#[derive(Clone, Debug)]
pub struct LayerDiagonals {
    /// The layer's weights.
    pub weights: LayerWeights,
    /// Per cell of W̄ (row-major, `r · F + c`), the diagonals it is on.
    pub cells: Vec<Vec<DiagonalKey>>,
    /// The baby-step count of the unpruned layer's split.
    pub n1: i64,
    /// Rotations the layer makes whatever its weights (a hybrid's repeat
    /// and rotate-and-sum steps).
    pub fixed_rotations: u64,
    /// Slots of a ciphertext: a step that is a multiple of it rotates
    /// nothing.
    pub slots: usize,
    /// Slots a sample takes.
    pub block: usize,
}

impl LayerDiagonals {
    /// The unit group a diagonal belongs to under `unit`.
    fn group(&self, unit: DiagonalUnit, (to, from, k): DiagonalKey) -> DiagonalKey {
        match unit {
            DiagonalUnit::Diagonal => (to, from, k),
            DiagonalUnit::Position => (u32::MAX, from, k.rem_euclid(self.n1)),
            DiagonalUnit::ChannelDiagonal => (to, u32::MAX, k.div_euclid(self.n1)),
        }
    }

    /// The diagonals with a non-zero weight on them.
    pub fn kept(&self) -> BTreeSet<DiagonalKey> {
        let f = self.weights.matrix.ncols();
        self.cells
            .iter()
            .enumerate()
            .filter(|(i, _)| self.weights.matrix[[i / f, i % f]] != 0.0)
            .flat_map(|(_, keys)| keys.iter().copied())
            .collect()
    }

    /// The baby-step count the lowering picks for the diagonals `kept`.
    pub fn split(&self, kept: &BTreeSet<DiagonalKey>, times: &OpTimes) -> i64 {
        baby_step_count(times, self.block, kept.iter().copied())
    }

    /// Rotations and `mul_plain`s of the diagonals `kept` under the split
    /// `n1`.
    pub fn ops_at(&self, kept: &BTreeSet<DiagonalKey>, n1: i64) -> DiagonalOps {
        if kept.is_empty() {
            return DiagonalOps::default();
        }
        let rotates = |k: i64| k.rem_euclid(self.slots as i64) != 0;
        let mut babies = BTreeSet::new();
        let mut giants = BTreeSet::new();
        for &(to, from, k) in kept {
            let (g, b) = (k.div_euclid(n1), k.rem_euclid(n1));
            if rotates(b) {
                babies.insert((from, b));
            }
            if rotates(g * n1) {
                giants.insert((to, g));
            }
        }
        DiagonalOps {
            rotations: (babies.len() + giants.len()) as u64 + self.fixed_rotations,
            products: kept.len() as u64,
        }
    }

    /// Rotations and `mul_plain`s of the diagonals `kept`, split as the
    /// lowering would split them.
    pub fn ops(&self, kept: &BTreeSet<DiagonalKey>, times: &OpTimes) -> DiagonalOps {
        self.ops_at(kept, self.split(kept, times))
    }

    /// The diagonals of a unit's cells.
    pub fn diagonals_of(&self, unit: &Unit) -> BTreeSet<DiagonalKey> {
        let f = self.weights.matrix.ncols();
        unit.cells
            .iter()
            .flat_map(|&[r, c]| self.cells[r * f + c].iter().copied())
            .collect()
    }

    /// The layer's weights grouped into units of kind `unit`.
    pub fn units(&self, unit: DiagonalUnit) -> Vec<Unit> {
        let f = self.weights.matrix.ncols();
        let members = partition(&self.cells, |key| self.group(unit, key));
        // What a unit owns: its diagonals, and the baby and giant steps of
        // the unpruned split that no diagonal outside it uses.
        let mut unit_of_key: HashMap<DiagonalKey, usize> = HashMap::new();
        for (u, cells) in members.iter().enumerate() {
            for &c in cells {
                for &key in &self.cells[c] {
                    unit_of_key.insert(key, u);
                }
            }
        }
        let mut step_owner: HashMap<(bool, u32, i64), Option<usize>> = HashMap::new();
        let slots = self.slots as i64;
        for (&(to, from, k), &u) in &unit_of_key {
            let (g, b) = (k.div_euclid(self.n1), k.rem_euclid(self.n1));
            for (step, rotates) in [
                ((true, from, b), b % slots != 0),
                ((false, to, g), (g * self.n1) % slots != 0),
            ] {
                if rotates {
                    let owner = step_owner.entry(step).or_insert(Some(u));
                    if *owner != Some(u) {
                        *owner = None;
                    }
                }
            }
        }
        let mut owned_steps = vec![0u64; members.len()];
        for u in step_owner.into_values().flatten() {
            owned_steps[u] += 1;
        }
        let mut diagonals = vec![0u64; members.len()];
        for &u in unit_of_key.values() {
            diagonals[u] += 1;
        }
        members
            .into_iter()
            .enumerate()
            .map(|(u, cells)| Unit {
                cells: cells.into_iter().map(|c| [c / f, c % f]).collect(),
                he_ops: 2 * diagonals[u] + owned_steps[u],
            })
            .collect()
    }
}

/// Rotations, products and additions of a diagonal layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiagonalOps {
    /// Baby, giant and fixed rotations.
    pub rotations: u64,
    /// One `mul_plain` (and one addition) per diagonal.
    pub products: u64,
}

impl DiagonalOps {
    /// The pruner's count: a product and an addition per diagonal, and the
    /// rotations.
    pub fn he_ops(self) -> u64 {
        2 * self.products + self.rotations
    }
}

/// Every linear layer's diagonals under diagonal packing with `slots`
/// slots, in [`linear_layers`] order.
pub fn layer_diagonals(graph: &Graph, slots: usize) -> Result<Vec<LayerDiagonals>, PassError> {
    let plan = plan(graph, slots).map_err(|e| {
        PassError::Prune(format!(
            "diagonal packing's units need the model's slot layout, which cannot be planned: {e}"
        ))
    })?;
    let run_of = run_ends(&plan.runs);
    let mut out = Vec::new();
    for weights in linear_layers(graph) {
        let end = run_of[&weights.id];
        let run = &plan.runs[&end];
        let source = graph.operands(run[0])[0];
        let (in_l, out_l) = (&plan.layouts[&source], &plan.layouts[&end]);
        let hybrid = plan.hybrid.get(&end).copied();
        let key = |o: usize, i: usize| -> DiagonalKey {
            match hybrid {
                Some((span, p)) => (0, 0, (hybrid_offset(in_l, i, o, span) % p) as i64),
                None => {
                    let (from, to) = (in_l.at[i], out_l.at[o]);
                    (to.ct, from.ct, offset(from, to, slots))
                }
            }
        };
        let cells = run_cells(graph, run, &weights, key);
        let all: BTreeSet<DiagonalKey> = cells.iter().flatten().copied().collect();
        let n1 = baby_step_count(&OpTimes::default(), plan.block, all.iter().copied());
        let fixed_rotations = match hybrid {
            Some((span, p)) => 1 + (span / p).trailing_zeros() as u64,
            None => 0,
        };
        out.push(LayerDiagonals {
            weights,
            cells,
            n1,
            fixed_rotations,
            slots,
            block: plan.block,
        });
    }
    Ok(out)
}

/// The diagonals of `graph`'s layers as the compiler will lay them out
/// ([`compiled_layers`]).
fn compiled_diagonals(graph: &Graph) -> Result<Vec<LayerDiagonals>, PassError> {
    compiled_layers(
        graph,
        "diagonal",
        |g| layer_diagonals(g, PRUNING_SLOTS),
        |l| &mut l.weights,
    )
}

/// [`hepack_passes::prune::Packing::layers`] for diagonal packing with units `unit`.
pub fn packed_layers(graph: &Graph, unit: DiagonalUnit) -> Result<Vec<PackedLayer>, PassError> {
    let times = OpTimes::default();
    Ok(compiled_diagonals(graph)?
        .into_iter()
        .map(|l| {
            let he_ops = l.ops(&l.kept(), &times).he_ops();
            PackedLayer {
                units: l.units(unit),
                he_ops,
                weights: l.weights,
            }
        })
        .collect())
}
