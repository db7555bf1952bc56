//! `hepack eval`: plaintext inference with the reference interpreter.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use hepack_ir::interp;
use ndarray::ArrayD;
use serde::Serialize;

use super::prune_args::{PruneArgs, PruneOutcome};
use crate::npy::{self, Labels};

/// One model output as `eval --json` reports it.
#[derive(Serialize)]
struct OutputInfo {
    name: String,
    /// `[samples, ...per-sample shape]`.
    shape: Vec<usize>,
    /// Where `--output` wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
}

#[derive(Serialize)]
struct EvalReport {
    samples: usize,
    /// The first output's shape (the one labels score).
    output_shape: Vec<usize>,
    outputs: Vec<OutputInfo>,
    seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correct: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mse: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    passes: Vec<hepack_passes::PassReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pruning: Option<PruneOutcome>,
}

/// Run the model on `input`, report accuracy or MSE against `labels`, write `output`.
pub fn run(
    model_path: &Path,
    input: &Path,
    labels: Option<&Path>,
    output: Option<&Path>,
    json: bool,
    passes: &super::passes::PassArgs,
    prune: &PruneArgs,
) -> Result<()> {
    let mut model = super::load_model(model_path)?;
    let names: Vec<String> = model
        .graph
        .outputs()
        .iter()
        .map(|o| o.name.clone())
        .collect();
    if let Some(path) = output {
        let mut inputs = vec![model_path, input];
        inputs.extend(labels);
        npy::refuse_overwriting_outputs(path, &names, &inputs)?;
    }
    let reports = passes.run(&mut model.graph, None)?;
    let pruning = prune.apply(&mut model.graph)?;
    if let Some(outcome) = &pruning {
        prune.write_masks(outcome)?;
    }
    if !json {
        for r in &reports {
            print!("{r}");
        }
        if let Some(outcome) = &pruning {
            print!("{outcome}");
        }
    }
    let x = npy::read_batch(input)?;
    let labels = labels.map(npy::read_labels).transpose()?;
    let start = Instant::now();
    let ys = interp::run_outputs(&model.graph, x.view())
        .with_context(|| format!("input {}", input.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    tracing::info!(samples = x.shape()[0], seconds, "evaluated");

    let samples = x.shape()[0];
    let written = match output {
        Some(path) => npy::write_outputs(path, &names, &ys, false)?,
        None => Vec::new(),
    };
    let mut report = EvalReport {
        samples,
        output_shape: ys[0].shape().to_vec(),
        outputs: names
            .iter()
            .zip(&ys)
            .enumerate()
            .map(|(i, (name, y))| OutputInfo {
                name: name.clone(),
                shape: y.shape().to_vec(),
                path: written.get(i).map(|p| p.display().to_string()),
            })
            .collect(),
        seconds,
        accuracy: None,
        correct: None,
        mse: None,
        passes: reports,
        pruning,
    };
    match labels.as_ref().map(|l| score(&ys[0], l)).transpose()? {
        Some(Score::Accuracy { accuracy, correct }) => {
            report.accuracy = Some(accuracy);
            report.correct = Some(correct);
        }
        Some(Score::Mse(mse)) => report.mse = Some(mse),
        None => {}
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        match report.outputs.as_slice() {
            [one] => println!(
                "samples: {samples}, output shape: {:?}, {:.3} s",
                one.shape, seconds
            ),
            many => {
                println!("samples: {samples}, {} outputs, {seconds:.3} s", many.len());
                for o in many {
                    println!("  output {:?}: shape {:?}", o.name, o.shape);
                }
            }
        }
        if let (Some(acc), Some(correct)) = (report.accuracy, report.correct) {
            println!("accuracy: {acc:.4} ({correct}/{samples})");
        }
        if let Some(mse) = report.mse {
            println!("mse: {mse:.6}");
        }
        for path in &written {
            println!("outputs written to {}", path.display());
        }
    }
    Ok(())
}

/// How well outputs match their labels.
#[derive(Clone, Copy, Debug)]
pub enum Score {
    /// Class ids: the fraction (and count) whose top score is the label.
    Accuracy {
        /// Fraction correct.
        accuracy: f64,
        /// Number correct.
        correct: usize,
    },
    /// Values: mean squared error.
    Mse(f64),
}

/// Score outputs `y` (`[N, ...]`) against labels.
pub fn score(y: &ArrayD<f64>, labels: &Labels) -> Result<Score> {
    let samples = y.shape()[0];
    match labels {
        Labels::Classes(ids) => {
            if ids.len() != samples {
                bail!("{} labels for {samples} samples", ids.len());
            }
            let classes = y.len() / samples.max(1);
            if let Some((i, bad)) = ids
                .iter()
                .enumerate()
                .find(|(_, &c)| c < 0 || c as usize >= classes)
            {
                bail!(
                    "label {bad} (sample {i}) is outside the model's {classes} classes (0 to {}); \
                     are these the labels for this model?",
                    classes.saturating_sub(1)
                );
            }
            let correct = interp::count_correct(y, ids);
            Ok(Score::Accuracy {
                accuracy: correct as f64 / samples as f64,
                correct,
            })
        }
        Labels::Values(target) => {
            if target.shape() != y.shape() {
                bail!(
                    "labels have shape {:?} but the outputs have shape {:?}",
                    target.shape(),
                    y.shape()
                );
            }
            Ok(Score::Mse(interp::mean_squared_error(y, target)))
        }
    }
}
