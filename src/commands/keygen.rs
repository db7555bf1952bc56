//! `hepack keygen`: the client makes a key set for a program.

use std::path::Path;

use anyhow::{Context, Result};

use super::runtime_io::{EVAL_FILE, SECRET_FILE};
use crate::output::write_atomic_with;

pub fn run(program_path: &Path, out_dir: &Path) -> Result<()> {
    let program = super::load_program(program_path)?;
    super::he_report::warn_if_insecure(&program.params);
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create key directory {}", out_dir.display()))?;
    let context = hepack_runtime::keys::context(&program.params)?;
    let (secret, eval) = hepack_runtime::keys::generate_files(&context, &program)?;
    let secret_path = out_dir.join(SECRET_FILE);
    let eval_path = out_dir.join(EVAL_FILE);
    write_atomic_with(&secret_path, true, |w| {
        Ok(std::io::Write::write_all(w, &secret)?)
    })?;
    write_atomic_with(&eval_path, false, |w| {
        Ok(std::io::Write::write_all(w, &eval)?)
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
