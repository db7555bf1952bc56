//! `hepack prune`: prune a model's packed units, compress it, write it as ONNX.

use std::path::Path;

use anyhow::{bail, Context, Result};
use hepack_frontend::{to_onnx, ExportType};
use onnx_protobuf::Message;
use serde::Serialize;

use super::passes::PassArgs;
use super::prune_args::{PruneArgs, PruneOutcome};
use crate::output::write_atomic;

#[derive(Serialize)]
struct Report<'a> {
    passes: &'a [hepack_passes::PassReport],
    pruning: &'a PruneOutcome,
}

/// Run the pipeline (none by default), prune, and write the model and/or masks.
pub fn run(
    model: &Path,
    passes: &PassArgs,
    prune: &PruneArgs,
    output: Option<&Path>,
    dtype: ExportType,
    json: bool,
) -> Result<()> {
    if !prune.is_set() {
        bail!("nothing to prune: give --sparsity S, --layer NAME=S, --he-budget N or --masks-in M.json");
    }
    if output.is_none() && prune.masks_out.is_none() {
        bail!("nothing to write: give -o PRUNED.onnx and/or --masks-out M.json");
    }
    let mut model = super::load_model(model)?;
    let reports = passes.run(&mut model.graph, None)?;
    let outcome = prune
        .apply(&mut model.graph)?
        .expect("a pruning target was given");
    // Encode before writing anything, so a failure leaves no files behind.
    let onnx = match output {
        Some(_) => Some(
            to_onnx(&model.graph, dtype)?
                .write_to_bytes()
                .context("cannot encode the ONNX model")?,
        ),
        None => None,
    };
    prune.write_masks(&outcome)?;
    if let (Some(path), Some(bytes)) = (output, onnx) {
        write_atomic(path, &bytes)?;
    }
    if json {
        let report = Report {
            passes: &reports,
            pruning: &outcome,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    for r in &reports {
        print!("{r}");
    }
    print!("{outcome}");
    if let Some(path) = &prune.masks_out {
        println!("masks written to {}", path.display());
    }
    if let Some(path) = output {
        println!("ONNX written to {}", path.display());
    }
    Ok(())
}
