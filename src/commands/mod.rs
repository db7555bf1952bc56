//! One module per CLI subcommand.

pub mod compile;
pub mod dump;
pub mod eval;
pub mod export;
pub mod he_report;
pub mod inspect;
pub mod passes;
pub mod prune;
pub mod prune_args;
pub mod sweep;

use std::path::Path;

use anyhow::{Context, Result};
use hepack_frontend::Model;

/// Load a model, naming the file in the error.
pub fn load_model(path: &Path) -> Result<Model> {
    hepack_frontend::load(path).with_context(|| format!("cannot load model {}", path.display()))
}

/// Lay out rows as aligned columns (the first row is the header); `right[i]`
/// right-aligns column `i`. Lines end without trailing spaces.
pub fn table<R: AsRef<[String]>>(rows: &[R], right: &[bool]) -> String {
    let mut widths = vec![0usize; right.len()];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row.as_ref()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .as_ref()
            .iter()
            .zip(widths.iter().copied())
            .zip(right)
            .map(|((cell, w), &r)| {
                if r {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
