//! One module per CLI subcommand.

pub mod compile;
pub mod dump;
pub mod eval;
pub mod export;
pub mod inspect;
pub mod passes;

use std::path::Path;

use anyhow::{Context, Result};
use hepack_frontend::Model;

/// Load a model, naming the file in the error.
pub fn load_model(path: &Path) -> Result<Model> {
    hepack_frontend::load(path).with_context(|| format!("cannot load model {}", path.display()))
}
