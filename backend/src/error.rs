//! Errors raised while lowering a graph.

use thiserror::Error;

/// Why a graph could not be lowered.
#[derive(Debug, Error)]
pub enum BackendError {
    /// An op CKKS cannot evaluate is still in the graph.
    #[error("layer '{layer}' ({op}) cannot be evaluated under CKKS: run the HE-friendly passes first (`--passes he-friendly`, the default of `hepack compile`)")]
    NotHeFriendly {
        /// The layer.
        layer: String,
        /// Its op.
        op: &'static str,
    },
    /// The program breaks a CKKS level or scale rule.
    #[error("scheduling error: {0}")]
    Schedule(String),
    /// No CKKS parameters fit the program.
    #[error(transparent)]
    Params(#[from] crate::params::ParamError),
    /// A simulated input does not fit the program.
    #[error("simulation input: {0}")]
    Input(String),
}
