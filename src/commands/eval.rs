//! `hepack eval`: plaintext inference with the reference interpreter.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use hepack_ir::interp;
use serde::Serialize;

use crate::npy::{self, Labels};

#[derive(Serialize)]
struct EvalReport {
    samples: usize,
    output_shape: Vec<usize>,
    seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correct: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mse: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    passes: Vec<hepack_passes::PassReport>,
}

/// Run the model on `input`, report accuracy or MSE against `labels`, write `output`.
pub fn run(
    model: &Path,
    input: &Path,
    labels: Option<&Path>,
    output: Option<&Path>,
    json: bool,
    passes: &super::passes::PassArgs,
) -> Result<()> {
    let mut model = super::load_model(model)?;
    let reports = passes.run(&mut model.graph, None)?;
    if !json {
        for r in &reports {
            print!("{r}");
        }
    }
    let x = npy::read_batch(input)?;
    let labels = labels.map(npy::read_labels).transpose()?;
    let start = Instant::now();
    let y = interp::run(&model.graph, x.view())
        .with_context(|| format!("input {}", input.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    tracing::info!(samples = x.shape()[0], seconds, "evaluated");

    let samples = x.shape()[0];
    let mut report = EvalReport {
        samples,
        output_shape: y.shape().to_vec(),
        seconds,
        accuracy: None,
        correct: None,
        mse: None,
        passes: reports,
    };
    match &labels {
        Some(Labels::Classes(ids)) => {
            if ids.len() != samples {
                bail!("{} labels for {samples} samples", ids.len());
            }
            let correct = interp::count_correct(&y, ids);
            report.accuracy = Some(correct as f64 / samples as f64);
            report.correct = Some(correct);
        }
        Some(Labels::Values(target)) => {
            if target.shape() != y.shape() {
                bail!(
                    "labels have shape {:?} but the outputs have shape {:?}",
                    target.shape(),
                    y.shape()
                );
            }
            report.mse = Some(interp::mean_squared_error(&y, target));
        }
        None => {}
    }
    if let Some(path) = output {
        npy::write_f64(path, &y)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "samples: {samples}, output shape: {:?}, {:.3} s",
            report.output_shape, seconds
        );
        if let (Some(acc), Some(correct)) = (report.accuracy, report.correct) {
            println!("accuracy: {acc:.4} ({correct}/{samples})");
        }
        if let Some(mse) = report.mse {
            println!("mse: {mse:.6}");
        }
        if let Some(path) = output {
            println!("outputs written to {}", path.display());
        }
    }
    Ok(())
}
