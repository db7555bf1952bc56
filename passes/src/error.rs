//! Errors raised by passes and by the pass manager.

use hepack_ir::IrError;
use thiserror::Error;

/// Why a pipeline could not be built or a pass could not run.
#[derive(Debug, Error)]
pub enum PassError {
    /// A pass name in `--passes` that does not exist.
    #[error("unknown pass '{name}'; known passes: {known}")]
    UnknownPass {
        /// The name given.
        name: String,
        /// The names that exist, comma-separated.
        known: String,
    },
    /// An activation choice that does not parse.
    #[error(
        "bad activation choice '{spec}': {reason} (expected square, poly:D or cheb:D with D >= 1)"
    )]
    BadActChoice {
        /// The text given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A per-layer option names a layer the graph does not have.
    #[error("{option} names layer '{layer}', which is not an activation of this model; activations: {known}")]
    UnknownLayer {
        /// The option (e.g. `--act-layer`).
        option: &'static str,
        /// The layer name given.
        layer: String,
        /// The activation layers that exist.
        known: String,
    },
    /// A fitted activation needs calibration inputs and none were given.
    #[error("layer '{layer}' uses {choice}, which fits the activation to the inputs it sees: pass a calibration batch with --calib X.npy, or use --act square")]
    NeedsCalibration {
        /// The activation layer.
        layer: String,
        /// The choice that needs data.
        choice: String,
    },
    /// The calibration batch does not fit the model.
    #[error("calibration set: {0}")]
    Calibration(IrError),
    /// A fit could not be computed.
    #[error("cannot fit layer '{layer}': {reason}")]
    Fit {
        /// The activation layer.
        layer: String,
        /// Why.
        reason: String,
    },
    /// The graph still holds ops CKKS cannot evaluate after the pipeline.
    #[error("the graph is not HE-friendly: {0}; add the passes that remove them (see `--passes he-friendly`)")]
    NotHeFriendly(String),
    /// A pruning target, mask or layer name is wrong.
    #[error("pruning: {0}")]
    Prune(String),
    /// A pass produced an invalid graph (a bug in hepack).
    #[error("pass '{pass}' broke the graph (please report this): {source}")]
    Broke {
        /// The pass.
        pass: &'static str,
        /// What `verify` found.
        source: IrError,
    },
    /// An IR operation failed inside a pass.
    #[error(transparent)]
    Ir(#[from] IrError),
}
