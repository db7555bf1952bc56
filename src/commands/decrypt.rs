//! `hepack decrypt`: the client decrypts the server's outputs.

use std::path::Path;

use anyhow::Result;
use hepack_runtime::ciphertexts::Role;

use super::runtime_io::{read_ciphertexts, read_secret, EVAL_FILE, SECRET_FILE};

pub fn run(
    program_path: &Path,
    keys: &Path,
    input: &Path,
    output: &Path,
    insecure: bool,
) -> Result<()> {
    let program = super::load_program(program_path)?;
    super::he_report::check_client_params(&program.params, insecure)?;
    let names = program.output_names();
    let (secret_file, eval_file) = (keys.join(SECRET_FILE), keys.join(EVAL_FILE));
    let inputs = [program_path, input, &secret_file, &eval_file];
    crate::npy::refuse_overwriting_outputs(output, &names, &inputs)?;
    let context = hepack_runtime::keys::context(&program.params)?;
    let secret = read_secret(&context, &program, keys)?;
    let cts = read_ciphertexts(&context, &program, Role::Output, input)?;
    let ys = hepack_runtime::client::decrypt(&context, &program, &secret, &cts)?;
    let paths = crate::npy::write_outputs(output, &names, &ys, true)?;
    println!("decrypted {} samples", cts.samples);
    for ((name, y), path) in names.iter().zip(&ys).zip(&paths) {
        println!("  output {name:?} {:?} → {}", y.shape(), path.display());
    }
    Ok(())
}
