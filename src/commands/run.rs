//! `hepack run`: the server executes a program on encrypted inputs. It reads
//! the program, the evaluation keys and the ciphertexts, never a secret key.

use std::path::Path;

use anyhow::Result;
use hepack_backend::Program;
use hepack_runtime::ciphertexts::{Ciphertexts, Role};
use hepack_runtime::executor::{self, Options, Report};
use hepack_runtime::keys::EvalKeys;
use hepack_runtime::limits::Limits;
use hepack_runtime::seal::Context as SealContext;

use super::runtime_io::{op_times, progress, read_ciphertexts, read_eval, report_text};
use crate::output::write_atomic_with;

pub fn run(
    program_path: &Path,
    eval_keys: &Path,
    input: &Path,
    output: &Path,
    options: &Options,
    limits: &Limits,
    json: bool,
) -> Result<()> {
    let program = super::load_program(program_path)?;
    super::he_report::warn_if_insecure(&program.params);
    crate::output::refuse_overwriting(output, &[program_path, eval_keys, input])?;
    let context = hepack_runtime::keys::context(&program.params)?;
    let inputs = read_ciphertexts(&context, &program, Role::Input, input)?;
    let samples = inputs.samples;
    let bar = progress((inputs.batches.len() * program.instrs.len()) as u64);
    let (outputs, report) = serve(
        &context,
        &program,
        inputs,
        || read_eval(&context, &program, eval_keys),
        options,
        limits,
        &|n| bar.set_position(n),
    )?;
    bar.finish_and_clear();
    write_atomic_with(output, false, |w| Ok(outputs.write(&program.params, w)?))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report_text(&report, &program, samples));
        println!("wrote {}", output.display());
    }
    Ok(())
}

/// The server's work on `inputs`: check the run against `limits` (before
/// `read_keys` loads the evaluation keys, which count in the memory
/// budget), then execute the program. `progress` gets the ops done so far.
pub fn serve(
    context: &SealContext,
    program: &Program,
    inputs: Ciphertexts,
    read_keys: impl FnOnce() -> Result<EvalKeys>,
    options: &Options,
    limits: &Limits,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(Ciphertexts, Report)> {
    let times = op_times(program)?;
    let cost = hepack_backend::cost::cost(program, &times);
    limits.check(
        program,
        &cost,
        inputs.batches.len(),
        options.threads,
        options.plain_cache_bytes + hepack_runtime::keys::eval_bytes(context, program),
    )?;
    let keys = read_keys()?;
    let options = &Options {
        max_seconds: Some(limits.max_seconds),
        ..options.clone()
    };
    Ok(executor::run(
        context, program, &keys, inputs, options, &times, progress,
    )?)
}
