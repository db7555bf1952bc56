//! The `hepack` command line as a library: each subcommand's options and
//! steps, so that the CLI (`src/main.rs`) and the Python package
//! (`python/`) drive the same code and report the same errors.

pub mod commands;
pub mod npy;
pub mod output;
pub mod svg_chart;

/// The error and its causes on one line, as `{:#}` prints them, but skipping
/// a cause whose text its parent already ends with (library errors often
/// print their source, which the chain would then repeat). The CLI prints
/// it after `error:`; Python raises it.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut last = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if last.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
        last = text;
    }
    line
}

/// The element type `--f64` chooses for an exported model.
pub fn export_type(f64: bool) -> hepack_frontend::ExportType {
    if f64 {
        hepack_frontend::ExportType::F64
    } else {
        hepack_frontend::ExportType::F32
    }
}
