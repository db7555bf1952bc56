//! `hepack encrypt`: the client packs and encrypts an input batch.

use std::path::Path;

use anyhow::Result;

use super::runtime_io::{read_secret, EVAL_FILE, SECRET_FILE};
use crate::output::write_atomic_with;

pub fn run(
    program_path: &Path,
    keys: &Path,
    input: &Path,
    output: &Path,
    insecure: bool,
) -> Result<()> {
    let program = super::load_program(program_path)?;
    super::he_report::check_client_params(&program.params, insecure)?;
    let (secret_file, eval_file) = (keys.join(SECRET_FILE), keys.join(EVAL_FILE));
    crate::output::refuse_overwriting(output, &[program_path, input, &secret_file, &eval_file])?;
    let x = crate::npy::read_batch(input)?;
    let context = hepack_runtime::keys::context(&program.params)?;
    let secret = read_secret(&context, &program, keys)?;
    // Seeded ciphertexts: half the upload.
    let cts = hepack_runtime::client::encrypt(&context, &program, &secret, x.view(), true)?;
    write_atomic_with(output, false, |w| Ok(cts.write(&program.params, w)?))?;
    let what = match program.slots {
        None => "one per input feature the program reads",
        Some(_) => "the sample's slots, several samples side by side where they fit",
    };
    println!(
        "encrypted {} samples into {} batch(es) of {} ciphertexts ({what}) → {}",
        cts.samples,
        cts.batches.len(),
        cts.indices.len(),
        output.display()
    );
    Ok(())
}
