//! Mini-batch training of a graph: Adam, gradients computed in parallel over
//! parts of each mini-batch, early stopping on a validation set and the
//! learning rate halved on a plateau (MOFHEI §V).

use hepack_ir::{interp, Graph, NodeId, Op};
use ndarray::{ArrayD, ArrayViewD, Axis};
use rayon::prelude::*;
use serde::Serialize;

use crate::error::TuneError;
use crate::grad::{loss_and_grads, Grads};
use crate::loss::Loss;
use crate::optim::Adam;

/// What the model should output for its samples.
#[derive(Clone, Debug)]
pub enum Target<'a> {
    /// A class id per sample (cross-entropy; accuracy is reported).
    Labels(&'a [i64]),
    /// Output values per sample (mean squared error).
    Values(ArrayViewD<'a, f64>),
}

/// Samples `[N, ...input shape]` and their targets.
#[derive(Clone, Debug)]
pub struct Data<'a> {
    /// The inputs.
    pub x: ArrayViewD<'a, f64>,
    /// What the model should output.
    pub target: Target<'a>,
}

impl Data<'_> {
    fn len(&self) -> usize {
        self.x.shape()[0]
    }
}

/// How to train.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Passes over the training data at most.
    pub epochs: usize,
    /// Samples per update.
    pub batch_size: usize,
    /// Adam's initial step size.
    pub lr: f64,
    /// Seed of the shuffling; training is deterministic given it.
    pub seed: u64,
    /// Epochs without a better validation loss before the step size is
    /// halved (twice at most) and then training stops.
    pub patience: usize,
    /// Keep weights that are zero now at zero (pruned blocks).
    pub freeze_zeros: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 10,
            batch_size: 64,
            lr: 1e-3,
            seed: 0,
            patience: 3,
            freeze_zeros: true,
        }
    }
}

/// One epoch's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct Epoch {
    /// 1-based.
    pub epoch: usize,
    /// Mean training loss over the epoch's mini-batches.
    pub train_loss: f64,
    /// Validation loss after the epoch.
    pub val_loss: Option<f64>,
    /// Validation accuracy (labels) or MSE (values).
    pub val_metric: Option<f64>,
    /// The step size used.
    pub lr: f64,
    /// The layer sparsity the pruning schedule had reached (when pruning).
    pub sparsity: Option<f64>,
}

/// What a training run does around its optimiser steps besides descending
/// the loss: a pruning schedule, a regulariser. Every method has a default
/// that does nothing, so plain training is `fit_with(.., &mut NoHooks, ..)`.
pub trait Hooks {
    /// Called before optimiser step `step` (0-based, counted over the whole
    /// run). Returns `true` when it changed the model's structure (new
    /// masks): the optimiser then holds the new zeros at zero.
    fn before_step(&mut self, step: usize, graph: &mut Graph) -> Result<bool, TuneError> {
        let _ = (step, graph);
        Ok(false)
    }

    /// Adds a regulariser's gradient to `grads` (already divided by the batch).
    fn regularise(&mut self, graph: &Graph, grads: &mut Grads) {
        let _ = (graph, grads);
    }

    /// Whether the model is final in structure at `step`. Until it is, no
    /// epoch counts as the best and early stopping waits: the best
    /// validation loss of a less pruned model says nothing about this one.
    fn settled(&self, step: usize) -> bool {
        let _ = step;
        true
    }

    /// The layer sparsity reached, for the log.
    fn sparsity(&self) -> Option<f64> {
        None
    }
}

/// Plain training: no schedule, no regulariser.
pub struct NoHooks;

impl Hooks for NoHooks {}

/// The loss and metric (accuracy or MSE) of `graph` on `data`.
pub fn evaluate(graph: &Graph, data: &Data<'_>) -> Result<(f64, f64), TuneError> {
    crate::grad::check_one_output(graph)?;
    let out = interp::run(graph, data.x.view())?;
    let logits = logits(graph, data.x.view(), &out)?;
    let n = data.len().max(1) as f64;
    match &data.target {
        Target::Labels(labels) => {
            let (loss, _) = Loss::CrossEntropy(labels).value_and_grad(&logits, n)?;
            Ok((loss, interp::count_correct(&out, labels) as f64 / n))
        }
        Target::Values(t) => {
            let (loss, _) = Loss::Mse(t.view()).value_and_grad(&logits, n)?;
            Ok((loss, interp::mean_squared_error(&out, &t.to_owned())))
        }
    }
}

/// The logits when the model ends in a softmax, else the output itself.
fn logits(
    graph: &Graph,
    x: ArrayViewD<'_, f64>,
    out: &ArrayD<f64>,
) -> Result<ArrayD<f64>, TuneError> {
    let node = crate::grad::logits_node(graph);
    if node == graph.output() {
        return Ok(out.clone());
    }
    let (_, taps) = interp::run_with_taps(graph, x, &[node])?;
    Ok(taps.into_iter().next().expect("one tap"))
}

/// Trains the nodes of `graph` that `trains` selects on `train`; with `val`,
/// keeps the weights of the epoch with the lowest validation loss. Calls
/// `on_epoch` after every epoch.
pub fn fit(
    graph: &mut Graph,
    train: &Data<'_>,
    val: Option<&Data<'_>>,
    options: &FitOptions,
    trains: impl Fn(NodeId, &Op) -> bool,
    on_epoch: impl FnMut(&Epoch),
) -> Result<Vec<Epoch>, TuneError> {
    fit_with(graph, train, val, options, trains, &mut NoHooks, on_epoch)
}

/// [`fit`] with `hooks` called around every optimiser step.
pub fn fit_with(
    graph: &mut Graph,
    train: &Data<'_>,
    val: Option<&Data<'_>>,
    options: &FitOptions,
    trains: impl Fn(NodeId, &Op) -> bool,
    hooks: &mut dyn Hooks,
    mut on_epoch: impl FnMut(&Epoch),
) -> Result<Vec<Epoch>, TuneError> {
    let mut adam = Adam::new(graph, options.lr, options.freeze_zeros, trains);
    let mut step = 0;
    let mut rng = SplitMix(options.seed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut log = Vec::new();
    let mut best: Option<(f64, Graph)> = None;
    let (mut stale, mut halvings) = (0, 0);
    for epoch in 1..=options.epochs {
        rng.shuffle(&mut order);
        let mut total = 0.0;
        let mut batches = 0;
        for idx in order.chunks(options.batch_size.max(1)) {
            if hooks.before_step(step, graph)? {
                adam.freeze_zeros(graph);
            }
            let (loss, mut grads) = batch_grads(graph, train, idx)?;
            hooks.regularise(graph, &mut grads);
            adam.step(graph, &grads);
            step += 1;
            total += loss;
            batches += 1;
        }
        let (val_loss, val_metric) = match val {
            Some(v) => {
                let (l, m) = evaluate(graph, v)?;
                (Some(l), Some(m))
            }
            None => (None, None),
        };
        let entry = Epoch {
            epoch,
            train_loss: total / batches.max(1) as f64,
            val_loss,
            val_metric,
            lr: adam.lr,
            sparsity: hooks.sparsity(),
        };
        on_epoch(&entry);
        log.push(entry);
        let Some(loss) = val_loss else { continue };
        if !hooks.settled(step) {
            continue;
        }
        if best.as_ref().is_none_or(|(b, _)| loss < *b) {
            best = Some((loss, graph.clone()));
            stale = 0;
        } else {
            stale += 1;
            if stale >= options.patience.max(1) {
                if halvings == 2 {
                    break;
                }
                halvings += 1;
                adam.lr /= 2.0;
                stale = 0;
            }
        }
    }
    if let Some((_, g)) = best {
        *graph = g;
    }
    Ok(log)
}

/// Samples per part of a mini-batch whose gradients one thread computes. A
/// fixed size (not one part per thread) keeps the order of the float sums,
/// and so the trained weights, the same on every machine.
const PART: usize = 16;

/// The mean loss of the samples `idx` and its gradients, computed in parts
/// on rayon's threads.
fn batch_grads(graph: &Graph, data: &Data<'_>, idx: &[usize]) -> Result<(f64, Grads), TuneError> {
    let n = idx.len() as f64;
    let parts = idx
        .par_chunks(PART)
        .map(|ids| {
            let x = data.x.select(Axis(0), ids);
            match &data.target {
                Target::Labels(labels) => {
                    let picked: Vec<i64> = ids.iter().map(|&i| labels[i]).collect();
                    loss_and_grads(graph, x.view(), &Loss::CrossEntropy(&picked), n)
                }
                Target::Values(t) => {
                    let picked = t.select(Axis(0), ids);
                    loss_and_grads(graph, x.view(), &Loss::Mse(picked.view()), n)
                }
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut loss = 0.0;
    let mut grads = Grads::default();
    for (l, g) in &parts {
        loss += l;
        grads.add(g);
    }
    Ok((loss, grads))
}

/// SplitMix64: a small, seedable generator for shuffling.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fisher–Yates.
    fn shuffle(&mut self, v: &mut [usize]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}
