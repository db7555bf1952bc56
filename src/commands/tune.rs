//! `hepack tune`: MOFHEI's fine-tuning flow on the command line: HE-friendly
//! conversion (step 1), iterative block pruning (step 2), the tuned model
//! written as ONNX, and a CSV log of every epoch.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::prune_args::PackingArg;
use anyhow::{bail, Context, Result};
use clap::Args;
use hepack_backend::diagonal::{DiagonalPacking, DiagonalUnit};
use hepack_backend::Lowering;
use hepack_frontend::to_onnx;
use hepack_ir::Graph;
use hepack_passes::prune::{
    find_masks_staged, linear_params, model_sparsity, LayerKind, Packing, Targets,
};
use hepack_passes::{pipeline, ActChoice, PassOptions};
use hepack_tune::convert::needs_conversion;
use hepack_tune::prune::steps_per_epoch;
use hepack_tune::{
    evaluate, fit, he_friendly, prune_while_training, ConvertOptions, Data, Epoch, FitOptions,
    Lasso, PruneOptions, PruneSchedule, Target,
};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{ArrayD, Axis};
use onnx_protobuf::Message;
use serde::Serialize;

use super::prune_args::UnitArgs;
use crate::npy::{self, Labels};
use crate::output::write_atomic;

/// The options of `hepack tune`.
#[derive(Args, Debug)]
pub struct TuneArgs {
    /// The ONNX model (trained; ReLU and max pools are converted).
    pub model: PathBuf,
    /// Where to write the tuned model (ONNX; `hepack compile` reads it).
    #[arg(long, short, value_name = "TUNED.onnx")]
    pub output: PathBuf,
    /// Training inputs, .npy `[N, ...input shape]`.
    #[arg(long, value_name = "X.npy")]
    pub data: PathBuf,
    /// Training targets, .npy: integer class ids `[N]` (cross-entropy,
    /// accuracy) or floats shaped like the output (mean squared error).
    /// Training takes models with one output.
    #[arg(long, value_name = "Y.npy")]
    pub labels: PathBuf,
    /// Fraction of --data held out, from its end, for validation (early
    /// stopping, step-size halving, best-epoch restore).
    #[arg(
        long,
        value_name = "F",
        default_value_t = 0.1,
        conflicts_with = "val_data"
    )]
    pub val: f64,
    /// A separate validation set instead of --val.
    #[arg(long, value_name = "X.npy", requires = "val_labels")]
    pub val_data: Option<PathBuf>,
    /// Targets of --val-data.
    #[arg(long, value_name = "Y.npy", requires = "val_data")]
    pub val_labels: Option<PathBuf>,
    /// A test set, scored after every step (never trained or validated on).
    #[arg(long, value_name = "X.npy", requires = "test_labels")]
    pub test_data: Option<PathBuf>,
    /// Targets of --test-data.
    #[arg(long, value_name = "Y.npy", requires = "test_data")]
    pub test_labels: Option<PathBuf>,

    #[command(flatten)]
    pub options: TuneOptions,

    /// Write every epoch (phase, losses, validation metric, step size,
    /// sparsity, seconds) to this CSV file.
    #[arg(long, value_name = "LOG.csv")]
    pub log: Option<PathBuf>,
    /// Write float64 tensors instead of float32.
    #[arg(long)]
    pub f64: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `tune` does to a model, apart from where its data and results live
/// (the Python package's `Model.tune` takes these as keyword arguments).
#[derive(Args, Debug)]
pub struct TuneOptions {
    /// What replaces each activation (step 1): square (fine-tuned) or
    /// poly:D / cheb:D (fitted to the activation, then its coefficients are
    /// trained, then the whole model).
    #[arg(long, value_name = "square|poly:D|cheb:D", default_value = "square")]
    pub act: ActChoice,
    /// Training samples the polynomial fits see.
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub calib_samples: usize,

    /// Layer sparsity to prune to (step 2), e.g. 0.9: the fraction of units
    /// of each linear layer but the output layer.
    #[arg(long, value_name = "S")]
    pub sparsity: Option<f64>,
    /// Per-layer final sparsity, e.g. `--layer /3/Conv=0.5` (repeatable).
    #[arg(long = "layer", value_name = "NAME=S")]
    pub layer: Vec<String>,
    #[command(flatten)]
    pub units: UnitArgs,
    /// Sparsity of the first pruning step, s_i.
    #[arg(long, value_name = "S", default_value_t = 0.0)]
    pub initial_sparsity: f64,
    /// Pruning steps after the first, n.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub prune_steps: usize,
    /// Training step (mini-batch) of the first pruning step, t0.
    #[arg(long, value_name = "T0", default_value_t = 0)]
    pub prune_start: usize,
    /// Training steps between pruning steps, Δt. Default: the schedule ends
    /// halfway through --prune-epochs.
    #[arg(long, value_name = "DT")]
    pub prune_every: Option<usize>,
    /// Artemis-style group-lasso weight λ over the pruned units (`--block`;
    /// under `hunter`, each stage's units on its layers), added to the loss
    /// while pruning (0: off).
    #[arg(long, value_name = "LAMBDA", default_value_t = 0.0)]
    pub group_lasso: f64,
    /// Artemis's position regulariser λ_p: a group lasso over diagonal
    /// packing's position groups (one baby step each), whatever `--block`
    /// prunes (needs --packing diagonal).
    #[arg(long, value_name = "LAMBDA", default_value_t = 0.0)]
    pub group_lasso_position: f64,
    /// Artemis's diagonal regulariser λ_d: a group lasso over diagonal
    /// packing's channel-diagonal groups (one giant step each), whatever
    /// `--block` prunes (needs --packing diagonal).
    #[arg(long, value_name = "LAMBDA", default_value_t = 0.0)]
    pub group_lasso_diagonal: f64,

    /// Most epochs of each fine-tuning of the whole model (early stopping
    /// may end one sooner).
    #[arg(long, value_name = "E", default_value_t = 5)]
    pub epochs: usize,
    /// Most epochs training only the layers after a replaced pool, or only
    /// a polynomial's coefficients.
    #[arg(long, value_name = "E", default_value_t = 2)]
    pub head_epochs: usize,
    /// Epochs of the pruning run (the schedule, then training at s_f).
    #[arg(long, value_name = "E", default_value_t = 10)]
    pub prune_epochs: usize,
    /// Step size while training heads and pruning (MOFHEI: 1e-3).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Step size of the whole-model fine-tuning (MOFHEI: 1e-4).
    #[arg(long, default_value_t = 1e-4)]
    pub fine_lr: f64,
    /// Samples per update.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub batch_size: usize,
    /// Epochs without a better validation loss before the step size is
    /// halved (twice at most), then training stops.
    #[arg(long, value_name = "E", default_value_t = 3)]
    pub patience: usize,
}

/// The model's numbers at one point of the flow.
#[derive(Serialize)]
struct Checkpoint {
    stage: &'static str,
    /// Validation loss and metric (accuracy or MSE).
    val_loss: f64,
    val_metric: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_metric: Option<f64>,
    /// HE ops under the tuned packing (`--packing`), as `hepack compile`
    /// counts them (absent while the model is not HE-friendly).
    #[serde(skip_serializing_if = "Option::is_none")]
    he_ops: Option<u64>,
    /// Rotations of the same program (absent as `he_ops` is).
    #[serde(skip_serializing_if = "Option::is_none")]
    rotations: Option<u64>,
    /// Fraction of the original model's linear-layer parameters gone.
    model_sparsity: f64,
    /// Seconds since tuning started.
    seconds: f64,
}

/// One line of the CSV log.
#[derive(Serialize)]
struct LogLine {
    phase: String,
    #[serde(flatten)]
    epoch: Epoch,
    seconds: f64,
}

/// What tuning did, stage by stage (`tune --json`).
#[derive(Serialize)]
pub struct TuneReport {
    metric: &'static str,
    train_samples: usize,
    val_samples: usize,
    checkpoints: Vec<Checkpoint>,
    replacements: Vec<hepack_tune::Replacement>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pruning: Option<hepack_tune::PruneRun>,
    /// What `--permute` did after pruning (the function is unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    permute: Option<hepack_backend::tile::permute::PermuteReport>,
    epochs: Vec<LogLine>,
}

/// Owned inputs and targets.
pub struct Set {
    x: ArrayD<f64>,
    y: Labels,
}

impl Set {
    fn read(x: &Path, y: &Path) -> Result<Set> {
        let (xs, ys) = (x.display().to_string(), y.display().to_string());
        Set::named(npy::read_batch(x)?, npy::read_labels(y)?, &xs, &ys)
    }

    /// Inputs `[N, ...]` and their targets, which must count `N` too; errors
    /// call them `x_name` and `y_name`.
    pub fn named(x: ArrayD<f64>, y: Labels, x_name: &str, y_name: &str) -> Result<Set> {
        let set = Set { x, y };
        let n = set.x.shape()[0];
        let m = match &set.y {
            Labels::Classes(ids) => ids.len(),
            Labels::Values(v) => v.shape().first().copied().unwrap_or(0),
        };
        if n != m {
            bail!("{x_name} holds {n} samples but {y_name} holds targets for {m}");
        }
        Ok(set)
    }

    fn data(&self) -> Data<'_> {
        Data {
            x: self.x.view(),
            target: match &self.y {
                Labels::Classes(ids) => Target::Labels(ids),
                Labels::Values(v) => Target::Values(v.view()),
            },
        }
    }

    /// The first `n` samples and the rest.
    fn split(self, n: usize) -> (Set, Set) {
        let (a, b) = self.x.view().split_at(Axis(0), n);
        let (ya, yb) = match &self.y {
            Labels::Classes(ids) => (
                Labels::Classes(ids[..n].to_vec()),
                Labels::Classes(ids[n..].to_vec()),
            ),
            Labels::Values(v) => {
                let (va, vb) = v.view().split_at(Axis(0), n);
                (Labels::Values(va.to_owned()), Labels::Values(vb.to_owned()))
            }
        };
        (
            Set {
                x: a.to_owned(),
                y: ya,
            },
            Set {
                x: b.to_owned(),
                y: yb,
            },
        )
    }
}

/// HE ops and rotations of `graph` under `packing`, as `hepack compile`
/// would count them (its he-friendly pipeline runs first; nothing is
/// approximated there once the model is tuned).
fn he_ops(graph: &Graph, packing: &dyn Lowering) -> Option<(u64, u64)> {
    if needs_conversion(graph) {
        return None;
    }
    let count = || -> Result<(u64, u64)> {
        let mut g = graph.clone();
        pipeline("he-friendly", &PassOptions::default())?.run(&mut g, |_, _| {})?;
        let cost = super::he_report::count(&g, packing)?;
        let rotate = hepack_backend::program::kind_index("rotate").expect("a kind");
        Ok((cost.he_ops, cost.total.0[rotate]))
    };
    // The report shows "-" for a model that cannot be lowered; say why.
    count()
        .inspect_err(|e| tracing::warn!("cannot count the tuned model's HE ops: {e:#}"))
        .ok()
}

/// Run the flow and write the tuned model.
pub fn run(args: &TuneArgs) -> Result<()> {
    let graph = super::load_model(&args.model)?.graph;
    let all = Set::read(&args.data, &args.labels)?;
    let val = match (&args.val_data, &args.val_labels) {
        (Some(x), Some(y)) => Some(Set::read(x, y)?),
        _ => None,
    };
    let (train, val) = split(all, val, args.val, &args.data.display().to_string())?;
    let test = match (&args.test_data, &args.test_labels) {
        (Some(x), Some(y)) => Some(Set::read(x, y)?),
        _ => None,
    };
    let (graph, report) = tune(graph, &train, &val, test.as_ref(), &args.options)?;
    // Encode everything before writing, so a failure leaves no files behind.
    let onnx = to_onnx(&graph, crate::export_type(args.f64))?
        .write_to_bytes()
        .context("cannot encode the ONNX model")?;
    let csv = args.log.as_ref().map(|_| csv_log(&report.epochs));
    write_atomic(&args.output, &onnx)?;
    if let (Some(path), Some(text)) = (&args.log, csv) {
        write_atomic(path, text.as_bytes())?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", summary(&report));
        println!("tuned model written to {}", args.output.display());
        if let Some(path) = &args.log {
            println!("epoch log written to {}", path.display());
        }
    }
    Ok(())
}

/// The training and validation sets: `val` when given, else the last
/// `fraction` of `all` (named `what` in errors).
pub fn split(all: Set, val: Option<Set>, fraction: f64, what: &str) -> Result<(Set, Set)> {
    if let Some(val) = val {
        return Ok((all, val));
    }
    if !(0.0..1.0).contains(&fraction) || fraction == 0.0 {
        bail!("--val {fraction}: the validation fraction must be in (0, 1)");
    }
    let n = all.x.shape()[0];
    if n < 2 {
        bail!(
            "{what} holds {n} sample: --val needs at least 2 to hold some out (or give --val-data)"
        );
    }
    let keep = n - ((n as f64 * fraction).round() as usize).clamp(1, n - 1);
    Ok(all.split(keep))
}

/// MOFHEI's flow on `graph`: HE-friendly conversion, then pruning while
/// training, as `options` ask. Returns the tuned graph and the report.
pub fn tune(
    mut graph: Graph,
    train: &Set,
    val: &Set,
    test: Option<&Set>,
    args: &TuneOptions,
) -> Result<(Graph, TuneReport)> {
    let start = Instant::now();
    let (train_data, val_data) = (train.data(), val.data());
    let test_data = test.map(Set::data);
    let metric = match train.y {
        Labels::Classes(_) => "accuracy",
        Labels::Values(_) => "mse",
    };
    if args.epochs == 0 || args.batch_size == 0 {
        bail!("--epochs and --batch-size must be at least 1");
    }

    let (params_before, _) = linear_params(&graph);
    let lowering = args.units.lowering()?;
    let checkpoint = |stage, graph: &Graph| -> Result<Checkpoint> {
        let counted = he_ops(graph, lowering.as_ref());
        let (val_loss, val_metric) = evaluate(graph, &val_data)
            .context("cannot evaluate the model on the validation set")?;
        let test_metric = match &test_data {
            Some(t) => Some(
                evaluate(graph, t)
                    .context("cannot evaluate the model on the test set")?
                    .1,
            ),
            None => None,
        };
        Ok(Checkpoint {
            stage,
            val_loss,
            val_metric,
            test_metric,
            he_ops: counted.map(|c| c.0),
            rotations: counted.map(|c| c.1),
            model_sparsity: model_sparsity(params_before, graph),
            seconds: start.elapsed().as_secs_f64(),
        })
    };
    let mut checkpoints = vec![checkpoint("original", &graph)?];

    let head = FitOptions {
        epochs: args.head_epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        seed: args.units.seed,
        patience: args.patience,
        freeze_zeros: true,
    };
    let fine = FitOptions {
        epochs: args.epochs,
        lr: args.fine_lr,
        ..head.clone()
    };
    // Pruning options are checked before any training, so a typo in a
    // layer name or a schedule that cannot fit fails at once.
    let prune = if args.sparsity.is_some() || !args.layer.is_empty() {
        let (stages, criterion) = (args.units.stages()?, args.units.criterion());
        let targets: Targets = args
            .units
            .targets(args.sparsity.unwrap_or(0.0), &args.layer)?;
        // Diagonal units are read off the compiled layout, which a model
        // not yet HE-friendly gets from the compiler's pipeline: a layer they
        // cannot be found for fails here, before any training.
        find_masks_staged(&graph, &stages, criterion, &targets)?;
        let mut lasso: Vec<(f64, Box<dyn Packing>)> = Vec::new();
        for (lambda, unit, flag) in [
            (
                args.group_lasso_position,
                DiagonalUnit::Position,
                "position",
            ),
            (
                args.group_lasso_diagonal,
                DiagonalUnit::ChannelDiagonal,
                "diagonal",
            ),
        ] {
            if lambda == 0.0 {
                continue;
            }
            if !matches!(args.units.packing, PackingArg::Diagonal) {
                bail!("--group-lasso-{flag} regularises diagonal packing's groups: add --packing diagonal");
            }
            let packing = DiagonalPacking { unit };
            packing.layers(&graph)?;
            lasso.push((lambda, Box::new(DiagonalPacking { unit })));
        }
        let spe = steps_per_epoch(train.x.shape()[0], args.batch_size);
        let every = args.prune_every.unwrap_or_else(|| {
            (args.prune_epochs * spe / 2).saturating_sub(args.prune_start) / args.prune_steps.max(1)
        });
        if args.prune_steps == 0 || every == 0 {
            bail!("--prune-steps and --prune-every must be at least 1 (raise --prune-epochs for the default --prune-every)");
        }
        let options = PruneOptions {
            criterion,
            targets,
            schedule: PruneSchedule {
                initial: args.initial_sparsity,
                target: args.sparsity.unwrap_or(0.0),
                steps: args.prune_steps,
                start: args.prune_start,
                every,
            },
            train: FitOptions {
                epochs: args.prune_epochs,
                ..head.clone()
            },
            fine: fine.clone(),
        };
        options.check(train.x.shape()[0])?;
        Some((stages, lasso, options))
    } else {
        None
    };

    let mut plan = Plan::new(&graph, args);
    let bar = ProgressBar::new(plan.total as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} epochs, {elapsed} | {msg}")
            .expect("valid template"),
    );
    let mut log: Vec<LogLine> = Vec::new();
    let mut on_epoch = |phase: &str, e: &Epoch| {
        plan.advance(&bar, phase, e.epoch);
        let mut msg = format!("{phase}: epoch {}, loss {:.4}", e.epoch, e.train_loss);
        if let Some(m) = e.val_metric {
            let _ = write!(msg, ", val {metric} {m:.4}");
        }
        if let Some(s) = e.sparsity {
            let _ = write!(msg, ", sparsity {s:.3}");
        }
        bar.set_message(msg);
        tracing::info!(
            phase,
            epoch = e.epoch,
            loss = e.train_loss,
            val = e.val_metric,
            "epoch"
        );
        log.push(LogLine {
            phase: phase.to_string(),
            epoch: e.clone(),
            seconds: start.elapsed().as_secs_f64(),
        });
    };

    let replacements = if needs_conversion(&graph) {
        let options = ConvertOptions {
            act: args.act,
            head: head.clone(),
            fine: fine.clone(),
            calib_samples: args.calib_samples,
        };
        let done = he_friendly(
            &mut graph,
            &train_data,
            Some(&val_data),
            &options,
            &mut on_epoch,
        )?;
        checkpoints.push(checkpoint("he-friendly", &graph)?);
        done
    } else {
        Vec::new()
    };

    let pruning = match &prune {
        Some((stages, lasso, options)) => {
            // `--group-lasso` over each stage's units on its layers, then
            // Artemis's two terms on every layer.
            let lasso = stages
                .iter()
                .filter(|_| args.group_lasso != 0.0)
                .map(|st| Lasso {
                    lambda: args.group_lasso,
                    packing: st.packing.as_ref(),
                    layers: st.layers,
                })
                .chain(lasso.iter().map(|(lambda, packing)| Lasso {
                    lambda: *lambda,
                    packing: packing.as_ref(),
                    layers: LayerKind::All,
                }))
                .collect();
            let run = prune_while_training(
                &mut graph,
                stages,
                lasso,
                &train_data,
                Some(&val_data),
                options,
                &mut on_epoch,
            )?;
            checkpoints.push(checkpoint("pruned", &graph)?);
            Some(run)
        }
        None => None,
    };
    if replacements.is_empty() && pruning.is_none() {
        fit(
            &mut graph,
            &train_data,
            Some(&val_data),
            &fine,
            |_, _| true,
            |e| on_epoch("fine-tune", e),
        )?;
        checkpoints.push(checkpoint("fine-tuned", &graph)?);
    }
    bar.finish_and_clear();
    let permute = args.units.permute(&mut graph)?;

    let report = TuneReport {
        metric,
        train_samples: train.x.shape()[0],
        val_samples: val.x.shape()[0],
        checkpoints,
        replacements,
        pruning,
        permute,
        epochs: log,
    };
    Ok((graph, report))
}

/// Planned epochs per phase, for the progress bar: a phase that stops
/// early skips the bar ahead to where the next one starts.
struct Plan {
    total: usize,
    head: usize,
    fine: usize,
    prune: usize,
    /// Bar position where the current phase started.
    base: usize,
    phase: String,
}

impl Plan {
    fn new(graph: &Graph, args: &TuneOptions) -> Plan {
        use hepack_ir::{Activation, Op};
        let mut total = 0;
        let trained_coeffs = args.act != ActChoice::Square;
        for id in graph.topo_order() {
            total += match graph.node(id).op {
                Op::MaxPool(_) => args.head_epochs + args.epochs,
                Op::Activation(Activation::Square) => 0,
                Op::Activation(_) if trained_coeffs => args.head_epochs + args.epochs,
                Op::Activation(_) => args.epochs,
                _ => 0,
            };
        }
        if args.sparsity.is_some() || !args.layer.is_empty() {
            total += args.prune_epochs + args.epochs;
        }
        if total == 0 {
            total = args.epochs;
        }
        Plan {
            total,
            head: args.head_epochs,
            fine: args.epochs,
            prune: args.prune_epochs,
            base: 0,
            phase: String::new(),
        }
    }

    fn planned(&self, phase: &str) -> usize {
        if phase == "prune" {
            self.prune
        } else if phase.ends_with("layers after") || phase.ends_with("coefficients") {
            self.head
        } else {
            self.fine
        }
    }

    fn advance(&mut self, bar: &ProgressBar, phase: &str, epoch: usize) {
        if self.phase != phase {
            if !self.phase.is_empty() {
                self.base += self.planned(&self.phase);
            }
            self.phase = phase.to_string();
        }
        bar.set_position((self.base + epoch) as u64);
    }
}

fn csv_log(log: &[LogLine]) -> String {
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
    let mut out = String::from("phase,epoch,train_loss,val_loss,val_metric,lr,sparsity,seconds\n");
    for l in log {
        let e = &l.epoch;
        let _ = writeln!(
            out,
            "\"{}\",{},{},{},{},{},{},{:.3}",
            l.phase.replace('"', "\"\""),
            e.epoch,
            e.train_loss,
            opt(e.val_loss),
            opt(e.val_metric),
            e.lr,
            opt(e.sparsity),
            l.seconds
        );
    }
    out
}

fn summary(report: &TuneReport) -> String {
    let mut out = String::new();
    for r in &report.replacements {
        let _ = writeln!(
            out,
            "'{}': {} ({} + {} epochs)",
            r.layer,
            r.change,
            r.head.len(),
            r.fine.len()
        );
    }
    if let Some(p) = &report.pruning {
        for l in &p.compress.removed {
            let _ = writeln!(
                out,
                "compressed '{}': {} -> {} filters/neurons",
                l.layer, l.units_before, l.units_after
            );
        }
        let _ = writeln!(
            out,
            "pruning: {} epochs on the schedule, {} fine-tuning the compressed model",
            p.pruning.len(),
            p.fine.len()
        );
    }
    if let Some(p) = &report.permute {
        let _ = write!(out, "{p}");
    }
    let mut rows = vec![vec![
        "stage".to_string(),
        format!("val {}", report.metric),
        format!("test {}", report.metric),
        "HE ops".into(),
        "rotations".into(),
        "model sparsity".into(),
        "seconds".into(),
    ]];
    for c in &report.checkpoints {
        rows.push(vec![
            c.stage.to_string(),
            format!("{:.4}", c.val_metric),
            c.test_metric.map_or("-".into(), |m| format!("{m:.4}")),
            c.he_ops.map_or("-".into(), |o| o.to_string()),
            c.rotations.map_or("-".into(), |o| o.to_string()),
            format!("{:.3}", c.model_sparsity),
            format!("{:.1}", c.seconds),
        ]);
    }
    let _ = writeln!(
        out,
        "{} training and {} validation samples:",
        report.train_samples, report.val_samples
    );
    out.push_str(&super::table(
        &rows,
        &[false, true, true, true, true, true, true],
    ));
    out
}
