//! MOFHEI step 2, iterative block pruning (§IV-B): while the model trains,
//! the packing's units (blocks of W̄, the pruning engine's [`Packing`]) are
//! ranked by mean |w| and the weakest masked to zero, at the sparsities of a
//! [`PruneSchedule`]; masked blocks are frozen in the backward pass. Then
//! the dead filters/neurons are removed ([`compress`]) and the smaller model
//! is fine-tuned. Optional Artemis-style group-lasso terms ([`Lasso`]) over
//! the same or other units push whole groups towards zero before they are
//! cut.

use hepack_ir::{Graph, NodeId, Op};
use hepack_passes::prune::{
    apply_masks, compress, find_masks_staged, output_layers, CompressReport, Criterion, LayerKind,
    Packing, Stage, Targets,
};
use ndarray::IxDyn;
use serde::Serialize;

use crate::error::TuneError;
use crate::grad::Grads;
use crate::schedule::PruneSchedule;
use crate::train::{fit_with, Data, Epoch, FitOptions, Hooks, NoHooks};

/// A group-lasso term `λ · Σ_units ‖w_unit‖₂` over a packing's units
/// (Artemis's `R_g`; several terms over different units may overlap, as
/// Artemis's position and diagonal regularisers do).
pub struct Lasso<'a> {
    /// The weight λ.
    pub lambda: f64,
    /// Whose units are the groups.
    pub packing: &'a dyn Packing,
    /// The layers it regularises (of those with a pruning target).
    pub layers: LayerKind,
}

/// A [`Hooks`] that prunes on a schedule and adds group-lasso gradients.
pub struct BlockPruning<'a> {
    stages: &'a [Stage],
    criterion: Criterion,
    targets: Targets,
    schedule: PruneSchedule,
    lasso: Vec<Lasso<'a>>,
    /// Per lasso term, each prunable layer's units as weight-tensor
    /// indices.
    groups: Option<Vec<Groups>>,
    reached: Option<f64>,
}

/// One layer's units as indices into its weight tensor.
type LayerGroups = (NodeId, Vec<Vec<IxDyn>>);

/// One lasso term's groups: λ, and each prunable layer's units.
type Groups = (f64, Vec<LayerGroups>);

impl<'a> BlockPruning<'a> {
    /// Prune the units of `stages` ([`find_masks_staged`]) ranked by
    /// `criterion` up to `targets` (the final sparsities; `targets.sparsity`
    /// is the schedule's `s_f`) along `schedule`, adding each `lasso` term
    /// to the loss.
    pub fn new(
        stages: &'a [Stage],
        criterion: Criterion,
        targets: Targets,
        schedule: PruneSchedule,
        lasso: Vec<Lasso<'a>>,
    ) -> Self {
        BlockPruning {
            stages,
            criterion,
            targets,
            schedule,
            lasso,
            groups: None,
            reached: None,
        }
    }

    /// The per-layer targets at pruning step `t`.
    fn targets_at(&self, t: usize) -> Option<Targets> {
        let sparsity = self.schedule.sparsity_at(t, self.targets.sparsity)?;
        let per_layer = self
            .targets
            .per_layer
            .iter()
            .map(|(name, &s)| (name.clone(), self.schedule.sparsity_at(t, s).unwrap_or(s)))
            .collect();
        Some(Targets {
            sparsity,
            per_layer,
            prune_output: self.targets.prune_output,
        })
    }

    /// The lasso term's units of every layer of its kind with a target
    /// above zero, as indices into the layer's weight tensor.
    fn groups(&self, graph: &Graph, term: &Lasso<'_>) -> Result<Vec<LayerGroups>, TuneError> {
        let outputs = output_layers(graph);
        Ok(term
            .packing
            .layers(graph)?
            .into_iter()
            .filter(|p| {
                let l = &p.weights;
                term.layers.holds(graph, l.id)
                    && self
                        .targets
                        .sparsity_for(l.name.as_str(), outputs.contains(&l.id))
                        > 0.0
            })
            .map(|p| {
                let op = &graph.node(p.weights.id).op;
                let units = p
                    .units
                    .iter()
                    .map(|u| u.cells.iter().map(|&c| weight_index(op, c)).collect())
                    .collect();
                (p.weights.id, units)
            })
            .collect())
    }
}

/// Where cell `[m, f]` of a layer's W̄ lives in its weight tensor: a conv's
/// filter `f` at `(channel, ky, kx)` = `m` row-major, a dense layer's `[m, f]`.
fn weight_index(op: &Op, [m, f]: [usize; 2]) -> IxDyn {
    match op {
        Op::Conv(c) => {
            let (_, _, kh, kw) = c.weight.dim();
            IxDyn(&[f, m / (kh * kw), (m / kw) % kh, m % kw])
        }
        _ => IxDyn(&[m, f]),
    }
}

impl Hooks for BlockPruning<'_> {
    fn before_step(&mut self, step: usize, graph: &mut Graph) -> Result<bool, TuneError> {
        if self.groups.is_none() {
            let mut groups = Vec::new();
            for term in self.lasso.iter().filter(|t| t.lambda != 0.0) {
                groups.push((term.lambda, self.groups(graph, term)?));
            }
            self.groups = Some(groups);
        }
        let Some(targets) = self.targets_at(step) else {
            return Ok(false);
        };
        let masks = find_masks_staged(graph, self.stages, self.criterion, &targets)?;
        apply_masks(graph, &masks)?;
        self.reached = Some(targets.sparsity);
        tracing::debug!(step, sparsity = targets.sparsity, "pruning step");
        Ok(true)
    }

    fn regularise(&mut self, graph: &Graph, grads: &mut Grads) {
        // Groups are found in `before_step`, which can fail; it runs first.
        let Some(groups) = &self.groups else { return };
        for (lambda, layers) in groups {
            let lambda = *lambda;
            for (id, units) in layers {
                let op = &graph.node(*id).op;
                let weight = &crate::grad::params(op)[0];
                let grad = &mut grads.nodes[id.index()][0];
                for unit in units {
                    let norm = unit
                        .iter()
                        .map(|i| weight[i] * weight[i])
                        .sum::<f64>()
                        .sqrt();
                    // ‖w‖₂ has no gradient at 0; a zeroed unit stays where it is.
                    if norm > 0.0 {
                        for i in unit {
                            grad[i] += lambda * weight[i] / norm;
                        }
                    }
                }
            }
        }
    }

    fn settled(&self, step: usize) -> bool {
        step > self.schedule.end()
    }

    fn sparsity(&self) -> Option<f64> {
        self.reached
    }
}

/// How to prune while training.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Units ranked by this; the weakest go first.
    pub criterion: Criterion,
    /// Final sparsities (`sparsity` is `s_f`; per-layer overrides follow the
    /// same curve to their own targets).
    pub targets: Targets,
    /// When to prune; its `target` is replaced by `targets.sparsity`.
    pub schedule: PruneSchedule,
    /// The pruning run: its epochs must cover the schedule.
    pub train: FitOptions,
    /// The fine-tuning of the compressed model.
    pub fine: FitOptions,
}

impl PruneOptions {
    /// The schedule, ending at `targets.sparsity`.
    fn schedule(&self) -> PruneSchedule {
        PruneSchedule {
            target: self.targets.sparsity,
            ..self.schedule
        }
    }

    /// Refuses a schedule that does not end within the pruning run on
    /// `samples` training samples, before any training.
    pub fn check(&self, samples: usize) -> Result<(), TuneError> {
        let schedule = self.schedule();
        let steps = self.train.epochs * steps_per_epoch(samples, self.train.batch_size);
        if schedule.end() >= steps {
            return Err(TuneError::Schedule(format!(
                "the last pruning step is training step {} (t0 {} + {} steps x every {}), but {} epochs make only {steps} steps: raise the pruning epochs or prune more often",
                schedule.end(),
                schedule.start,
                schedule.steps,
                schedule.every,
                self.train.epochs
            )));
        }
        Ok(())
    }
}

/// What pruning did.
#[derive(Clone, Debug, Serialize)]
pub struct PruneRun {
    /// Epochs of the pruning run.
    pub pruning: Vec<Epoch>,
    /// What compression removed.
    pub compress: CompressReport,
    /// Epochs of the final fine-tuning.
    pub fine: Vec<Epoch>,
}

/// Training steps (mini-batches) per epoch on `samples` samples.
pub fn steps_per_epoch(samples: usize, batch_size: usize) -> usize {
    samples.div_ceil(batch_size.max(1))
}

/// Prunes `graph` while training it (MOFHEI step 2) with the units of
/// `stages` and the `lasso` terms, compresses it and fine-tunes what is left. `on_epoch` gets `"prune"` or `"fine-tune"` and
/// each epoch's numbers.
pub fn prune_while_training(
    graph: &mut Graph,
    stages: &[Stage],
    lasso: Vec<Lasso<'_>>,
    train: &Data<'_>,
    val: Option<&Data<'_>>,
    options: &PruneOptions,
    mut on_epoch: impl FnMut(&str, &Epoch),
) -> Result<PruneRun, TuneError> {
    options.check(train.x.shape()[0])?;
    let schedule = options.schedule();
    let mut hooks = BlockPruning::new(
        stages,
        options.criterion,
        options.targets.clone(),
        schedule,
        lasso,
    );
    let pruning = fit_with(
        graph,
        train,
        val,
        &options.train,
        |_, _| true,
        &mut hooks,
        |e| on_epoch("prune", e),
    )?;
    let compress = compress(graph)?;
    let fine_options = FitOptions {
        freeze_zeros: true,
        ..options.fine.clone()
    };
    let fine = fit_with(
        graph,
        train,
        val,
        &fine_options,
        |_, _| true,
        &mut NoHooks,
        |e| on_epoch("fine-tune", e),
    )?;
    Ok(PruneRun {
        pruning,
        compress,
        fine,
    })
}
