//! `hepack decrypt`: the client decrypts the server's outputs.

use std::path::Path;

use anyhow::Result;
use hepack_runtime::ciphertexts::Role;

use super::runtime_io::{read_ciphertexts, read_secret};

pub fn run(program_path: &Path, keys: &Path, input: &Path, output: &Path) -> Result<()> {
    let program = super::load_program(program_path)?;
    super::he_report::warn_if_insecure(&program.params);
    let context = hepack_runtime::keys::context(&program.params)?;
    let secret = read_secret(&context, &program, keys)?;
    let cts = read_ciphertexts(&context, &program, Role::Output, input)?;
    let y = hepack_runtime::client::decrypt(&context, &program, &secret, &cts)?;
    crate::npy::write_f64(output, &y)?;
    println!(
        "decrypted {} samples, output {:?} → {}",
        cts.samples,
        y.shape(),
        output.display()
    );
    Ok(())
}
