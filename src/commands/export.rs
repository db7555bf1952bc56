//! `hepack export`: the rewritten graph as ONNX.

use std::path::Path;

use anyhow::{Context, Result};
use hepack_frontend::{to_onnx, ExportType};
use onnx_protobuf::Message;

use super::passes::PassArgs;
use crate::output::write_atomic;

/// Run the pipeline (default: he-friendly) and write the graph as ONNX.
pub fn run(model: &Path, args: &PassArgs, output: &Path, dtype: ExportType) -> Result<()> {
    let mut model = super::load_model(model)?;
    let reports = args.run(&mut model.graph, Some("he-friendly"))?;
    for r in &reports {
        print!("{r}");
    }
    let proto = to_onnx(&model.graph, dtype)?;
    let bytes = proto
        .write_to_bytes()
        .context("cannot encode the ONNX model")?;
    write_atomic(output, &bytes)?;
    println!("ONNX written to {}", output.display());
    Ok(())
}
