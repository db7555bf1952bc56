//! `hepack keygen`: the client makes a key set for a program.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::runtime_io::{EVAL_FILE, SECRET_FILE};
use crate::output::write_atomic_with;

pub fn run(program_path: &Path, out_dir: &Path, force: bool, insecure: bool) -> Result<()> {
    let program = super::load_program(program_path)?;
    super::he_report::check_client_params(&program.params, insecure)?;
    let secret_path = out_dir.join(SECRET_FILE);
    let eval_path = out_dir.join(EVAL_FILE);
    if !force {
        if let Some(existing) = [&secret_path, &eval_path].into_iter().find(|p| p.exists()) {
            bail!(
                "{} already exists: new keys would make every ciphertext made with it undecryptable; pass --force to replace the key set",
                existing.display()
            );
        }
    }
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create key directory {}", out_dir.display()))?;
    let context = hepack_runtime::keys::context(&program.params)?;
    let (secret, eval) = hepack_runtime::keys::generate_files(&context, &program)?;
    // The evaluation keys first: a failure in between leaves new evaluation
    // keys beside the old secret key, never a secret key without its
    // evaluation keys (a secret key is what the user keeps).
    write_atomic_with(&eval_path, false, |w| {
        Ok(std::io::Write::write_all(w, &eval)?)
    })?;
    write_atomic_with(&secret_path, true, |w| {
        Ok(std::io::Write::write_all(w, &secret)?)
    })?;
    let steps = program.rotation_steps();
    println!(
        "wrote {} (keep it on the client; mode 0600) and {} ({}, Galois keys for {} rotation step(s)) for N = {}, {} levels",
        secret_path.display(),
        eval_path.display(),
        super::he_report::gib(eval.len() as u64),
        steps.len(),
        program.params.degree,
        program.params.levels()
    );
    Ok(())
}
