//! One module per CLI subcommand.

pub mod calibrate;
pub mod compile;
pub mod decrypt;
pub mod demo;
pub mod dump;
pub mod encrypt;
pub mod eval;
pub mod exec_args;
pub mod export;
pub mod he_report;
pub mod infer;
pub mod inspect;
pub mod inspect_program;
pub mod keygen;
pub mod param_args;
pub mod passes;
pub mod permute;
pub mod prune;
pub mod prune_args;
pub mod run;
pub mod runtime_io;
pub mod sweep;
pub mod tune;

use std::path::Path;

use anyhow::{Context, Result};
use hepack_frontend::Model;

/// Load a model, naming the file in the error.
pub fn load_model(path: &Path) -> Result<Model> {
    use hepack_frontend::FrontendError;
    hepack_frontend::load(path).map_err(|e| match e {
        // These name the file already.
        FrontendError::Io { .. } | FrontendError::Decode { .. } => anyhow::Error::new(e),
        e => anyhow::Error::new(e).context(format!("cannot load model {}", path.display())),
    })
}

/// Whether `path` is a program file (it starts with the program magic).
pub fn is_program_file(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 32];
    let read = hepack_frontend::input::open_regular(path).and_then(|(mut f, _)| f.read(&mut head));
    read.is_ok_and(|n| hepack_backend::file::looks_like_program(&head[..n]))
}

/// Load and validate a program file, naming the file in the error; a file
/// over the size limit is refused before it is read.
pub fn load_program(path: &Path) -> Result<hepack_backend::Program> {
    let bytes = hepack_frontend::input::read_regular(path, hepack_backend::file::MAX_FILE_BYTES)
        .with_context(|| format!("cannot read program file {}", path.display()))?;
    hepack_backend::file::decode(&bytes)
        .with_context(|| format!("cannot load program file {}", path.display()))
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
