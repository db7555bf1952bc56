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
    /// A lowering went past [`Builder::depth_cap`](crate::builder::Builder)
    /// at this layer; `compile` reports it with the parameters' reason.
    #[error("layer '{layer}' reaches depth {depth}, more than any parameters allow")]
    DepthCap {
        /// The layer.
        layer: String,
        /// The depth reached there.
        depth: u32,
    },
    /// The model needs more levels than any parameters allow.
    #[error("layer '{layer}' reaches depth {depth}: {source}")]
    TooDeep {
        /// The layer where the lowering stopped.
        layer: String,
        /// The depth reached there.
        depth: u32,
        /// Why no parameters hold that depth.
        source: crate::params::ParamError,
    },
    /// A Galois key budget would make the program too large.
    #[error("Galois key budget: {0}")]
    KeyBudget(String),
    /// The packing cannot lay this model out (the message names the layer
    /// and the packings that can).
    #[error("{0}")]
    Unsupported(String),
    /// A simulated input does not fit the program.
    #[error("simulation input: {0}")]
    Input(String),
}
