//! `hepack permute`: HE-PEx's neuron permutation (P3) and mostly-zero tile
//! pruning (P4) for tile packing, written as ONNX.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use hepack_backend::tile::permute::permute;
use hepack_backend::tile::TileShape;
use hepack_frontend::to_onnx;
use hepack_passes::prune::{apply_masks, mask_file};
use onnx_protobuf::Message;

use crate::output::write_atomic;

/// `hepack permute`'s options.
#[derive(Args, Debug)]
pub struct PermuteArgs {
    /// The ONNX model, pruned (or pruned here by --masks-in).
    pub model: PathBuf,
    /// The tile shape the program will use, T1xT2.
    #[arg(long, value_name = "T1xT2")]
    pub tile: TileShape,
    /// Zero these weights first (a mask file from `prune --masks-out` or
    /// `tune`).
    #[arg(long, value_name = "M.json")]
    pub masks_in: Option<PathBuf>,
    /// After permuting, zero every weight tile with at most this fraction
    /// of non-zero weights (HE-PEx's P4), e.g. 0.25. This changes the
    /// model: fine-tune or check its accuracy after.
    #[arg(long, value_name = "F")]
    pub p4_threshold: Option<f64>,
    /// Seed of the tie order (the result is deterministic given it).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The permuted ONNX model to write.
    #[arg(long, short, value_name = "OUT.onnx")]
    pub output: PathBuf,
    /// Write float64 tensors instead of float32.
    #[arg(long)]
    pub f64: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

fn read_masks(path: &Path) -> Result<hepack_passes::prune::Masks> {
    let bytes = hepack_frontend::input::read_regular(path, 1 << 30)
        .with_context(|| format!("cannot read mask file {}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("mask file {} is not UTF-8 text", path.display()))?;
    Ok(mask_file::from_json(&text, &path.display().to_string())?)
}

/// Apply the masks, permute, prune mostly-zero tiles, write the model.
pub fn run(args: &PermuteArgs) -> Result<()> {
    let mut model = super::load_model(&args.model)?;
    if let Some(path) = &args.masks_in {
        apply_masks(&mut model.graph, &read_masks(path)?)?;
    }
    let report = permute(&mut model.graph, args.tile, args.p4_threshold, args.seed)
        .with_context(|| format!("cannot permute {}", args.model.display()))?;
    let bytes = to_onnx(&model.graph, crate::export_type(args.f64))?
        .write_to_bytes()
        .context("cannot encode the ONNX model")?;
    write_atomic(&args.output, &bytes)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
        println!("ONNX written to {}", args.output.display());
    }
    Ok(())
}
