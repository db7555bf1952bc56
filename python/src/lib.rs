//! `hepack._native`: the Rust side of hepack's Python package. It is a thin
//! layer over the CLI's library (`hepack::commands`): keyword arguments are
//! parsed by the same clap definitions as the CLI's flags, the same steps
//! run, and errors carry the CLI's messages. Arrays cross as raw float64
//! bytes and a shape (the Python side makes them numpy arrays), keys and
//! ciphertexts as the bytes of the CLI's files.

mod arrays;
mod errors;
mod model;
mod options;
mod program;

use pyo3::prelude::*;

/// The native module; `hepack/__init__.py` wraps it.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<model::Model>()?;
    m.add_class::<program::Program>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    Ok(())
}
