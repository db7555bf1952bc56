//! `hepack compile`: run the pass pipeline and write the resulting IR.

use std::path::Path;

use anyhow::{bail, Result};
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
    #[serde(skip_serializing_if = "Option::is_none")]
    he: Option<&'a hepack_backend::Cost>,
    /// The CKKS parameters chosen for the program.
    #[serde(skip_serializing_if = "Option::is_none")]
    ckks: Option<&'a hepack_backend::CkksParams>,
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
    emit_he: Option<&Path>,
    json: bool,
) -> Result<()> {
    let mut model = super::load_model(model)?;
    let reports = args.run(&mut model.graph, Some("he-friendly"))?;
    let pruning = prune.apply(&mut model.graph)?;
    if let Some(outcome) = &pruning {
        prune.write_masks(outcome)?;
    }
    // Lower when the graph is HE-friendly (the default pipeline makes it so).
    let violations = hepack_passes::check::violations(&model.graph);
    let lowered = if violations.is_empty() {
        Some(super::he_report::lower(
            &model.graph,
            &prune.units.batch_packing(),
        )?)
    } else if emit_he.is_some() {
        bail!(
            "--emit-he needs an HE-friendly graph, but {}; run the he-friendly passes",
            violations.join(", ")
        );
    } else {
        None
    };
    if let Some(path) = emit_ir {
        write_atomic(path, dump::to_text(&model.graph).as_bytes())?;
    }
    if let (Some(path), Some((program, _))) = (emit_he, &lowered) {
        write_atomic(path, program.to_text().as_bytes())?;
    }
    let summary = Summary::of(&model.graph);
    if json {
        let report = CompileReport {
            passes: &reports,
            pruning: pruning.as_ref(),
            he: lowered.as_ref().map(|(_, c)| c),
            ckks: lowered.as_ref().map(|(p, _)| &p.params),
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
        if let Some((program, cost)) = &lowered {
            let p = &program.params;
            println!(
                "CKKS parameters: N = {} ({} samples per ciphertext), scale 2^{}, chain {:?} = {} bits, {}",
                p.degree,
                p.slots(),
                p.scale_bits,
                p.chain_bits,
                p.total_bits(),
                p.security_bits
                    .map_or("INSECURE".to_string(), |b| format!("{b}-bit security"))
            );
            print!("{}", super::he_report::table(&program.packing, cost));
        }
        if let Some(path) = emit_ir {
            println!("IR written to {}", path.display());
        }
        if let Some(path) = emit_he {
            println!("HE program written to {}", path.display());
        }
    }
    Ok(())
}
