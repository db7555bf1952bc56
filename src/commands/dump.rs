//! `hepack dump`: the IR as text or Graphviz dot.

use std::path::Path;

use anyhow::Result;
use hepack_ir::dump;

/// Print the model's IR.
pub fn run(model: &Path, dot: bool) -> Result<()> {
    let model = super::load_model(model)?;
    if dot {
        print!("{}", dump::to_dot(&model.graph));
    } else {
        print!("{}", dump::to_text(&model.graph));
    }
    Ok(())
}
