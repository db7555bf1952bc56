//! `hepack compile`: run the pass pipeline, prune, lower into a scheduled CKKS
//! program with parameters chosen for it, and write the program file.

use std::path::Path;

use anyhow::{bail, Context, Result};
use hepack_ir::{dump, Summary};
use serde::Serialize;

use super::param_args::ParamArgs;
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
    /// Largest magnitude measured on the calibration batch (`--calib`).
    #[serde(skip_serializing_if = "Option::is_none")]
    calibrated_max_abs: Option<f64>,
    /// The program file written (`-o`).
    #[serde(skip_serializing_if = "Option::is_none")]
    program_file: Option<ProgramFile>,
    layers: usize,
    params: usize,
    macs: u64,
}

#[derive(Serialize)]
struct ProgramFile {
    path: String,
    bytes: usize,
    model_sha256: String,
}

/// Where `compile` writes what.
pub struct Outputs<'a> {
    /// The program file (`-o`).
    pub program: Option<&'a Path>,
    /// The IR text (`--emit-ir`).
    pub ir: Option<&'a Path>,
    /// The program's text form (`--emit-he`).
    pub he: Option<&'a Path>,
}

/// What compiling a model made.
pub struct Compiled {
    /// The passes run.
    pub reports: Vec<hepack_passes::PassReport>,
    /// What pruning did, if asked.
    pub pruning: Option<PruneOutcome>,
    /// The program and its cost (`None` when the graph is not HE-friendly
    /// and no program was asked for).
    pub lowered: Option<(hepack_backend::Program, hepack_backend::Cost)>,
    /// Largest magnitude measured on the calibration batch.
    pub calibrated_max_abs: Option<f64>,
}

/// Run the pipeline in `args` (default: he-friendly) and the pruning in
/// `prune` on `model`, then lower it with the parameters `params` ask for.
/// `model_bytes` is the ONNX file the program records the hash of; with
/// `need_program` a graph that cannot be lowered is an error.
pub fn compile_model(
    model: &mut hepack_frontend::Model,
    model_bytes: &[u8],
    args: &PassArgs,
    prune: &PruneArgs,
    params: &ParamArgs,
    need_program: bool,
) -> Result<Compiled> {
    let reports = args.run(&mut model.graph, Some("he-friendly"))?;
    let pruning = prune.apply(&mut model.graph)?;
    if let Some(outcome) = &pruning {
        prune.write_masks(outcome)?;
    }
    // Lower when the graph is HE-friendly (the default pipeline makes it so).
    let violations = hepack_passes::check::violations(&model.graph);
    let calibrated_max_abs = match args.calibration()? {
        Some(x) if violations.is_empty() => Some(
            hepack_ir::interp::max_abs(&model.graph, x.view())
                .context("running the calibration batch (--calib) through the compiled model")?,
        ),
        _ => None,
    };
    let lowered = if violations.is_empty() {
        // Twice the calibrated magnitude: room for inputs beyond the calibration set.
        let request = params.request(calibrated_max_abs.map(|m| 2.0 * m));
        let packing = prune.units.lowering()?;
        let (program, cost) = super::he_report::compile(&model.graph, packing.as_ref(), &request)?;
        // The calibration is per N and level count, which the first compile
        // chooses; what the times decide never changes the depth, so the
        // second compile keeps the levels the times were measured for.
        let (mut program, cost) = if params.calibrated {
            match super::runtime_io::calibrated_op_times(&program) {
                Some(times) => packing.compile(&model.graph, &times, &request)?,
                None => {
                    tracing::warn!(
                        "--calibrated: no op times for N = {} and {} levels in {}; scheduling with DESIGN.md's (run `hepack calibrate` on a program with these parameters first)",
                        program.params.degree,
                        program.params.levels(),
                        super::runtime_io::calibration_path().display()
                    );
                    (program, cost)
                }
            }
        } else {
            (program, cost)
        };
        program.model_sha256 = Some(hepack_backend::file::model_hash(model_bytes));
        super::he_report::warn_if_insecure(&program.params);
        Some((program, cost))
    } else if need_program {
        bail!(
            "writing the HE program needs an HE-friendly graph, but {}; run the he-friendly passes",
            violations.join(", ")
        );
    } else {
        None
    };
    Ok(Compiled {
        reports,
        pruning,
        lowered,
        calibrated_max_abs,
    })
}

/// Compile `model` with the pipeline in `args` (default: he-friendly).
pub fn run(
    path: &Path,
    args: &PassArgs,
    prune: &PruneArgs,
    params: &ParamArgs,
    outputs: &Outputs<'_>,
    json: bool,
) -> Result<()> {
    let (emit_ir, emit_he) = (outputs.ir, outputs.he);
    let model_bytes = hepack_frontend::input::read_regular(path, hepack_frontend::MAX_MODEL_BYTES)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut model = super::load_model(path)?;
    let Compiled {
        reports,
        pruning,
        lowered,
        calibrated_max_abs,
    } = compile_model(
        &mut model,
        &model_bytes,
        args,
        prune,
        params,
        emit_he.is_some() || outputs.program.is_some(),
    )?;
    let program_file = match (outputs.program, &lowered) {
        (Some(out), Some((program, _))) => {
            let bytes = hepack_backend::file::encode(program)?;
            write_atomic(out, &bytes)?;
            Some(ProgramFile {
                path: out.display().to_string(),
                bytes: bytes.len(),
                model_sha256: hepack_backend::file::hex(&program.model_sha256.unwrap_or_default()),
            })
        }
        _ => None,
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
            calibrated_max_abs,
            program_file,
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
        if let Some(m) = calibrated_max_abs {
            println!("calibration: largest magnitude {m:.4} (the first prime holds twice that)");
        }
        if let Some((program, cost)) = &lowered {
            println!("{}", super::he_report::params_line(program));
            if let Some(line) = super::he_report::slots_line(program) {
                println!("{line}");
            }
            print!("{}", super::he_report::table(&program.packing, cost));
        }
        if let Some(f) = &program_file {
            println!(
                "program written to {} ({} bytes, model sha256 {})",
                f.path, f.bytes, f.model_sha256
            );
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
