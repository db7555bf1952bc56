//! `hepack compile`: run the pass pipeline and write the resulting IR.

use std::path::Path;

use anyhow::Result;
use hepack_ir::{dump, Summary};
use serde::Serialize;

use super::passes::PassArgs;
use super::prune_args::{PruneArgs, PruneOutcome};
use crate::output::write_atomic;

#[derive(Serialize)]
struct CompileReport<'a> {
    passes: &'a [hepack_passes::PassReport],
    #[serde(skip_serializing_if = "Option::is_none")]
    pruning: Option<&'a PruneOutcome>,
    layers: usize,
    params: usize,
    macs: u64,
}

/// Compile `model` with the pipeline in `args` (default: he-friendly).
pub fn run(
    model: &Path,
    args: &PassArgs,
    prune: &PruneArgs,
    emit_ir: Option<&Path>,
    json: bool,
) -> Result<()> {
    let mut model = super::load_model(model)?;
    let reports = args.run(&mut model.graph, Some("he-friendly"))?;
    let pruning = prune.apply(&mut model.graph)?;
    if let Some(outcome) = &pruning {
        prune.write_masks(outcome)?;
    }
    if let Some(path) = emit_ir {
        write_atomic(path, dump::to_text(&model.graph).as_bytes())?;
    }
    let summary = Summary::of(&model.graph);
    if json {
        let report = CompileReport {
            passes: &reports,
            pruning: pruning.as_ref(),
            layers: summary.layers.len(),
            params: summary.total_params,
            macs: summary.total_macs,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for r in &reports {
            print!("{r}");
        }
        if let Some(outcome) = &pruning {
            print!("{outcome}");
        }
        println!(
            "result: {} layers, {} params, {} MACs per sample",
            summary.layers.len(),
            summary.total_params,
            summary.total_macs
        );
        if let Some(path) = emit_ir {
            println!("IR written to {}", path.display());
        }
    }
    Ok(())
}
