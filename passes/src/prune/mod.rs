//! Packing-aware pruning (DESIGN.md §2): a packing partitions each linear
//! layer's weights into units ([`units`]), the pruner ranks them and masks the
//! weakest up to a per-layer sparsity ([`find_masks`]) or an HE-op budget
//! ([`masks_for_budget`]), masks are applied ([`apply_masks`]) or exchanged as
//! files ([`mask_file`]), and [`compress`] removes what became dead.

pub mod compress;
pub mod mask_file;
pub mod units;

use std::collections::BTreeMap;

use hepack_ir::{Graph, Op};
use ndarray::{Array2, Axis};

use crate::error::PassError;
pub use compress::{compress, Compress, CompressReport};
pub use units::{
    linear_layers, output_layers, BatchPacking, Block, LayerWeights, PackedLayer, Packing,
    SingleWeights, Unit,
};

/// How units are ranked; the lowest-ranked are pruned first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Criterion {
    /// Mean |w| over the unit (MOFHEI).
    MeanAbs,
    /// L2 norm of the unit (Artemis).
    L2,
    /// Largest |w| in the unit (HE-PEx's T-Max).
    MaxAbs,
    /// Smallest |w| in the unit (HE-PEx's T-Min).
    MinAbs,
    /// A seeded random order (baseline).
    Random {
        /// The seed.
        seed: u64,
    },
}

/// Per-layer sparsity targets.
#[derive(Clone, Debug)]
pub struct Targets {
    /// Fraction of units to prune in each layer without an override.
    pub sparsity: f64,
    /// Per-layer overrides, keyed by layer name.
    pub per_layer: BTreeMap<String, f64>,
    /// Prune the output layer too (MOFHEI leaves it whole; so does the default).
    pub prune_output: bool,
}

impl Targets {
    /// The target of layer `name`: its override, else none for the output
    /// layer unless `prune_output`, else the default.
    pub fn sparsity_for(&self, name: &str, is_output: bool) -> f64 {
        match self.per_layer.get(name) {
            Some(&s) => s,
            None if is_output && !self.prune_output => 0.0,
            None => self.sparsity,
        }
    }
}

/// Keep masks per layer, shaped like W̄ (`M × F`); `true` keeps the weight.
pub type Masks = BTreeMap<String, Array2<bool>>;

/// Units pruned out of `total` at `sparsity`: `floor(sparsity · total)`, so the
/// kept count `total − floor(sparsity · total)` never falls below the target
/// density (50% of 5 filters keeps 3).
pub fn units_to_prune(sparsity: f64, total: usize) -> usize {
    ((sparsity * total as f64) + 1e-9).floor() as usize
}

/// Rank each layer's units and mask the weakest up to its target.
pub fn find_masks(
    graph: &Graph,
    packing: &dyn Packing,
    criterion: Criterion,
    targets: &Targets,
) -> Result<Masks, PassError> {
    let layers = packing.layers(graph)?;
    let weights: Vec<LayerWeights> = layers.iter().map(|p| p.weights.clone()).collect();
    check_layer_names(targets.per_layer.keys(), &weights)?;
    for (name, &s) in
        std::iter::once((&"(default)".to_string(), &targets.sparsity)).chain(&targets.per_layer)
    {
        if !(0.0..=1.0).contains(&s) {
            return Err(PassError::Prune(format!(
                "sparsity {s} for {name} is outside [0, 1]"
            )));
        }
    }
    let output_layers = output_layers(graph);
    let mut masks = Masks::new();
    for PackedLayer {
        weights: layer,
        units,
        ..
    } in &layers
    {
        let name = layer.name.as_str();
        let sparsity = targets.sparsity_for(name, output_layers.contains(&layer.id));
        let mut order: Vec<(f64, usize)> = units
            .iter()
            .enumerate()
            .map(|(i, u)| (score(criterion, &layer.matrix, u, i), i))
            .collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut mask = Array2::from_elem(layer.matrix.dim(), true);
        for &(_, i) in order.iter().take(units_to_prune(sparsity, units.len())) {
            for &[r, c] in &units[i].cells {
                mask[[r, c]] = false;
            }
        }
        masks.insert(name.to_string(), mask);
    }
    Ok(masks)
}

/// Which linear layers a pruning stage touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// Every linear layer.
    All,
    /// Convolutions only.
    Conv,
    /// Dense layers only.
    Dense,
}

impl LayerKind {
    /// Whether the layer `id` of `graph` is of this kind.
    pub fn holds(self, graph: &Graph, id: hepack_ir::NodeId) -> bool {
        match self {
            LayerKind::All => true,
            LayerKind::Conv => matches!(graph.node(id).op, Op::Conv(_)),
            LayerKind::Dense => matches!(graph.node(id).op, Op::Dense(_)),
        }
    }
}

/// One stage of a pruning: a packing's units, on the layers of one kind.
pub struct Stage {
    /// Whose units are ranked and zeroed.
    pub packing: Box<dyn Packing>,
    /// The layers it prunes.
    pub layers: LayerKind,
}

impl Stage {
    /// A stage pruning `packing`'s units in every layer.
    pub fn all(packing: Box<dyn Packing>) -> Stage {
        Stage {
            packing,
            layers: LayerKind::All,
        }
    }
}

/// Masks found stage after stage (Hunter's progressive order: a kernel's
/// positions, then its channel diagonals, then the dense layers'
/// diagonals): each stage ranks its units on the graph the earlier stages
/// masked and brings the layers of its kind to their targets in its own
/// units; the masks keep what every stage kept.
pub fn find_masks_staged(
    graph: &Graph,
    stages: &[Stage],
    criterion: Criterion,
    targets: &Targets,
) -> Result<Masks, PassError> {
    let mut g = graph.clone();
    let mut all = Masks::new();
    for stage in stages {
        let mut t = targets.clone();
        for l in linear_layers(&g) {
            if !stage.layers.holds(&g, l.id) {
                t.per_layer.insert(l.name.to_string(), 0.0);
            }
        }
        let masks = find_masks(&g, stage.packing.as_ref(), criterion, &t)?;
        apply_masks(&mut g, &masks)?;
        for (name, mask) in masks {
            match all.get_mut(&name) {
                Some(kept) => kept.zip_mut_with(&mask, |a, &b| *a &= b),
                None => {
                    all.insert(name, mask);
                }
            }
        }
    }
    Ok(all)
}

fn score(criterion: Criterion, w: &Array2<f64>, unit: &Unit, index: usize) -> f64 {
    let n = unit.cells.len().max(1) as f64;
    match criterion {
        Criterion::MeanAbs => {
            unit.cells
                .iter()
                .map(|&[r, c]| w[[r, c]].abs())
                .sum::<f64>()
                / n
        }
        Criterion::MaxAbs => unit
            .cells
            .iter()
            .map(|&[r, c]| w[[r, c]].abs())
            .fold(0.0, f64::max),
        Criterion::MinAbs => unit
            .cells
            .iter()
            .map(|&[r, c]| w[[r, c]].abs())
            .fold(f64::INFINITY, f64::min),
        Criterion::L2 => unit
            .cells
            .iter()
            .map(|&[r, c]| w[[r, c]] * w[[r, c]])
            .sum::<f64>()
            .sqrt(),
        Criterion::Random { seed } => {
            // SplitMix64 of (seed, index): a fixed random order per seed.
            let mut z = seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as f64
        }
    }
}

fn check_layer_names<'a>(
    names: impl Iterator<Item = &'a String>,
    layers: &[LayerWeights],
) -> Result<(), PassError> {
    for name in names {
        if !layers.iter().any(|l| l.name.as_str() == name) {
            let known: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
            return Err(PassError::Prune(format!(
                "no linear layer named '{name}'; linear layers: {}",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// Zero the masked weights of each named layer. Every mask must name a linear
/// layer and have its W̄ shape (`M × F`).
pub fn apply_masks(graph: &mut Graph, masks: &Masks) -> Result<(), PassError> {
    let layers = linear_layers(graph);
    check_layer_names(masks.keys(), &layers)?;
    for layer in layers {
        let Some(mask) = masks.get(layer.name.as_str()) else {
            continue;
        };
        if mask.dim() != layer.matrix.dim() {
            return Err(PassError::Prune(format!(
                "the mask for '{}' is {}x{}, but the layer's weight matrix W̄ (inputs x filters) is {}x{}",
                layer.name,
                mask.nrows(),
                mask.ncols(),
                layer.matrix.nrows(),
                layer.matrix.ncols()
            )));
        }
        let mut op = graph.node(layer.id).op.clone();
        match &mut op {
            Op::Conv(c) => {
                // W̄ row m = (channel, ky, kx) of filter f, row-major.
                for (f, mut filter) in c.weight.axis_iter_mut(Axis(0)).enumerate() {
                    for (m, w) in filter.iter_mut().enumerate() {
                        if !mask[[m, f]] {
                            *w = 0.0;
                        }
                    }
                }
            }
            Op::Dense(d) => d.weight.zip_mut_with(mask, |w, &keep| {
                if !keep {
                    *w = 0.0;
                }
            }),
            _ => unreachable!("linear_layers returns conv and dense layers only"),
        }
        graph.replace_op(layer.id, op)?;
    }
    Ok(())
}

/// One linear layer's pruning state under a packing.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LayerStats {
    /// The layer.
    pub layer: hepack_ir::LayerName,
    /// Units with at least one non-zero weight.
    pub units_kept: usize,
    /// All units.
    pub units_total: usize,
    /// Filters/neurons (columns of W̄).
    pub width: usize,
    /// Non-zero weights.
    pub nonzero: usize,
    /// All weights (`M × F`).
    pub weights: usize,
    /// HE ops of the layer as it stands, under the packing.
    pub he_ops: u64,
}

/// Per-layer units, weights and HE ops of every linear layer.
pub fn layer_stats(graph: &Graph, packing: &dyn Packing) -> Result<Vec<LayerStats>, PassError> {
    Ok(packing
        .layers(graph)?
        .into_iter()
        .map(|p| {
            let l = &p.weights;
            LayerStats {
                layer: l.name.clone(),
                units_kept: p.units.iter().filter(|u| u.is_kept(&l.matrix)).count(),
                units_total: p.units.len(),
                width: l.matrix.ncols(),
                nonzero: l.matrix.iter().filter(|&&w| w != 0.0).count(),
                weights: l.matrix.len(),
                he_ops: p.he_ops,
            }
        })
        .collect())
}

/// HE ops of all linear layers under the packing.
pub fn linear_he_ops(graph: &Graph, packing: &dyn Packing) -> Result<u64, PassError> {
    Ok(packing.layers(graph)?.iter().map(|p| p.he_ops).sum())
}

/// Parameters (weights and biases) of all linear layers, and how many are non-zero.
pub fn linear_params(graph: &Graph) -> (usize, usize) {
    let mut total = 0;
    let mut nonzero = 0;
    for id in graph.topo_order() {
        let params: Vec<f64> = match &graph.node(id).op {
            Op::Conv(c) => c.weight.iter().chain(&c.bias).copied().collect(),
            Op::Dense(d) => d.weight.iter().chain(&d.bias).copied().collect(),
            _ => continue,
        };
        total += params.len();
        nonzero += params.iter().filter(|&&v| v != 0.0).count();
    }
    (total, nonzero)
}

/// The model sparsity MOFHEI Table III reports: the fraction of the reference
/// (unpruned) model's linear-layer parameters, weights and biases, that are
/// gone from `graph`, pruned to zero or removed by compression.
pub fn model_sparsity(reference_params: usize, graph: &Graph) -> f64 {
    let (_, nonzero) = linear_params(graph);
    if reference_params == 0 {
        return 0.0;
    }
    1.0 - nonzero as f64 / reference_params as f64
}

/// Masks meeting an HE-op budget, and what they reach.
#[derive(Clone, Debug)]
pub struct BudgetMasks {
    /// The masks.
    pub masks: Masks,
    /// The uniform layer sparsity chosen.
    pub sparsity: f64,
    /// Linear-layer HE ops after pruning and compression.
    pub he_ops: u64,
}

/// The smallest uniform layer sparsity (bisection; overrides in `targets` stay
/// as set, its `sparsity` is ignored) whose pruned and compressed model costs at
/// most `budget` linear-layer HE ops under the packing.
pub fn masks_for_budget(
    graph: &Graph,
    packing: &dyn Packing,
    criterion: Criterion,
    targets: &Targets,
    budget: u64,
) -> Result<BudgetMasks, PassError> {
    let cost = |sparsity: f64| -> Result<(Masks, u64), PassError> {
        let t = Targets {
            sparsity,
            ..targets.clone()
        };
        let masks = find_masks(graph, packing, criterion, &t)?;
        let mut g = graph.clone();
        apply_masks(&mut g, &masks)?;
        compress(&mut g)?;
        Ok((masks, linear_he_ops(&g, packing)?))
    };
    let (masks, ops) = cost(0.0)?;
    if ops <= budget {
        return Ok(BudgetMasks {
            masks,
            sparsity: 0.0,
            he_ops: ops,
        });
    }
    let (mut best, mut best_ops) = cost(1.0)?;
    if best_ops > budget {
        return Err(PassError::Prune(format!(
            "an HE-op budget of {budget} cannot be met: pruning every prunable unit still leaves {best_ops} ops (the output layer and --layer overrides keep theirs); raise the budget or add --prune-output"
        )));
    }
    // Kept counts change in steps of 1/width, so 30 halvings resolve every layer.
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..30 {
        let mid = 0.5 * (lo + hi);
        let (masks, ops) = cost(mid)?;
        if ops <= budget {
            (hi, best, best_ops) = (mid, masks, ops);
        } else {
            lo = mid;
        }
    }
    Ok(BudgetMasks {
        masks: best,
        sparsity: hi,
        he_ops: best_ops,
    })
}
