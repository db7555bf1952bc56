//! Errors raised while training.

use thiserror::Error;

/// Why training could not run.
#[derive(Debug, Error)]
pub enum TuneError {
    /// The graph or a batch is malformed.
    #[error(transparent)]
    Ir(#[from] hepack_ir::IrError),
    /// An array did not have the shape an op needs.
    #[error("shape mismatch in a gradient: {0}")]
    Shape(#[from] ndarray::ShapeError),
    /// Labels or targets that do not fit the model's output.
    #[error("{0}")]
    Targets(String),
    /// Something training does not support yet.
    #[error("cannot train through {0}")]
    Unsupported(String),
    /// A pruning schedule that does not fit the training run.
    #[error("pruning schedule: {0}")]
    Schedule(String),
    /// A pruning step failed.
    #[error(transparent)]
    Pass(#[from] hepack_passes::PassError),
}
