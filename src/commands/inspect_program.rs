//! `hepack inspect MODEL.hep`: what a program file holds and what running it costs.

use std::path::Path;

use anyhow::Result;
use hepack_backend::{cost, file, CkksParams, Cost, Program};
use serde::Serialize;

use super::he_report;

#[derive(Serialize)]
struct Report<'a> {
    program: String,
    format_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_sha256: Option<String>,
    packing: &'a str,
    input_shape: String,
    /// The outputs' per-sample shapes, `a, b` for a model with several.
    output_shape: String,
    /// Output elements computed encrypted, over all outputs.
    encrypted_outputs: usize,
    /// Output elements that are public constants, over all outputs.
    public_outputs: usize,
    outputs: Vec<OutputInfo<'a>>,
    params: &'a CkksParams,
    /// Levels the chain offers.
    levels: u32,
    /// Galois keys key generation must make.
    rotation_steps: Vec<i32>,
    /// Samples one ciphertext batch holds.
    samples_per_ciphertext: usize,
    /// The most the evaluation keys (public, relinearization, Galois) take.
    eval_key_bytes: u64,
    /// Bytes of one fresh ciphertext (top level, 2 polynomials).
    ciphertext_bytes: u64,
    he: &'a Cost,
}

/// One model output: its name, per-sample shape and element counts.
#[derive(Serialize)]
struct OutputInfo<'a> {
    name: &'a str,
    shape: String,
    encrypted: usize,
    public: usize,
}

/// Print what the program file at `path` holds (or JSON).
pub fn run(path: &Path, json: bool) -> Result<()> {
    let program = super::load_program(path)?;
    he_report::warn_if_insecure(&program.params);
    let cost = cost::cost(&program, &super::runtime_io::op_times(&program)?);
    let report = build(&program, path.display().to_string(), &cost)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report, &program));
    }
    Ok(())
}

/// What `inspect PROGRAM.hep --json` prints for `program`, costed with
/// this machine's calibrated op times where `hepack calibrate` made them.
pub fn report_json(program: &Program, label: &str) -> Result<serde_json::Value> {
    let cost = cost::cost(program, &super::runtime_io::op_times(program)?);
    Ok(serde_json::to_value(build(
        program,
        label.to_string(),
        &cost,
    )?)?)
}

fn build<'a>(program: &'a Program, label: String, cost: &'a Cost) -> Result<Report<'a>> {
    let p = &program.params;
    let outputs: Vec<OutputInfo<'_>> = program
        .outputs
        .iter()
        .map(|o| {
            let encrypted = o
                .elements
                .iter()
                .filter(|e| matches!(e, hepack_backend::OutputElement::Encrypted))
                .count();
            OutputInfo {
                name: &o.name,
                shape: o.shape.to_string(),
                encrypted,
                public: o.elements.len() - encrypted,
            }
        })
        .collect();
    Ok(Report {
        program: label,
        format_version: file::FORMAT_VERSION,
        model_sha256: program.model_sha256.map(|h| file::hex(&h)),
        packing: &program.packing,
        input_shape: program.input_shape.to_string(),
        output_shape: program.output_shapes(),
        encrypted_outputs: outputs.iter().map(|o| o.encrypted).sum(),
        public_outputs: outputs.iter().map(|o| o.public).sum(),
        outputs,
        params: p,
        levels: p.levels(),
        rotation_steps: program.rotation_steps(),
        samples_per_ciphertext: program.samples_per_ct(),
        eval_key_bytes: hepack_runtime::keys::eval_bytes(
            &hepack_runtime::keys::context(&program.params)?,
            program,
        ),
        ciphertext_bytes: p.ciphertext_bytes(0, 2),
        he: cost,
    })
}

fn text(r: &Report<'_>, program: &Program) -> String {
    let mut out = format!(
        "{}: hepack program, format version {}, from model sha256 {}\n",
        r.program,
        r.format_version,
        r.model_sha256.as_deref().unwrap_or("unknown")
    );
    out.push_str(&format!(
        "{} packing: input {} per sample, output {} ({} encrypted, {} public); {} samples per ciphertext\n",
        r.packing,
        r.input_shape,
        r.output_shape,
        r.encrypted_outputs,
        r.public_outputs,
        r.samples_per_ciphertext
    ));
    if let Some(line) = super::he_report::slots_line(program) {
        out.push_str(&line);
        out.push('\n');
    }
    if r.outputs.len() > 1 {
        for o in &r.outputs {
            out.push_str(&format!(
                "  output {:?}: {} ({} encrypted, {} public)\n",
                o.name, o.shape, o.encrypted, o.public
            ));
        }
    }
    out.push_str(&he_report::params_line(program));
    out.push('\n');
    out.push_str(&format!(
        "depth {} of {} levels; rotation steps: {}; evaluation keys up to {}; a fresh ciphertext is {}\n",
        r.he.depth,
        r.levels,
        match r.rotation_steps.len() {
            0 => "none (no Galois keys)".to_string(),
            n if n <= 16 => format!("{:?}", r.rotation_steps),
            n => format!("{n} ({} … {})", r.rotation_steps[0], r.rotation_steps[n - 1]),
        },
        he_report::gib(r.eval_key_bytes),
        he_report::gib(r.ciphertext_bytes)
    ));
    out.push_str(&he_report::table(&program.packing, r.he));
    out
}
