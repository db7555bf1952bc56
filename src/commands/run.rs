//! `hepack run`: the server executes a program on encrypted inputs. It reads
//! the program, the evaluation keys and the ciphertexts, never a secret key.

use std::path::Path;

use anyhow::Result;
use hepack_runtime::ciphertexts::Role;
use hepack_runtime::executor::{self, Options};
use hepack_runtime::limits::Limits;

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
    let times = op_times(&program)?;
    let cost = hepack_backend::cost::cost(&program, &times);
    // Before the keys are read: they are part of the memory budgeted.
    limits.check(
        &program,
        &cost,
        inputs.batches.len(),
        options.threads,
        options.plain_cache_bytes + hepack_runtime::keys::eval_bytes(&context, &program),
    )?;
    let keys = read_eval(&context, &program, eval_keys)?;
    let options = &Options {
        max_seconds: Some(limits.max_seconds),
        ..options.clone()
    };
    let bar = progress((inputs.batches.len() * program.instrs.len()) as u64);
    let (outputs, report) =
        executor::run(&context, &program, &keys, inputs, options, &times, &|n| {
            bar.set_position(n)
        })?;
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
