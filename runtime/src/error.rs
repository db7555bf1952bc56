//! The runtime's errors.

use thiserror::Error;

use crate::seal::SealError;

/// Why a runtime step failed.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// A SEAL call failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// A SEAL call failed while executing a program op.
    #[error("op %{index} ({kind}, layer '{layer}'): {source}")]
    Op {
        /// The op's index in the program.
        index: usize,
        /// Its kind.
        kind: &'static str,
        /// Its IR layer.
        layer: String,
        /// What SEAL said.
        source: SealError,
    },
    /// A key or ciphertext file is not what it should be.
    #[error("{what}: {why}")]
    File {
        /// The kind of file (e.g. "eval keys").
        what: &'static str,
        /// What is wrong and what to do.
        why: String,
    },
    /// Inputs, keys or ciphertexts do not match the program.
    #[error("{0}")]
    Mismatch(String),
    /// The program asks for something the runtime refuses.
    #[error("{0}")]
    Refused(String),
    /// An op panicked: a bug in hepack, reported instead of hanging the
    /// other workers or aborting.
    #[error(
        "op %{index} ({kind}) failed inside hepack: {message}; this is a bug, please report it"
    )]
    Internal {
        /// The op's index in the program.
        index: usize,
        /// Its kind.
        kind: &'static str,
        /// The panic's message.
        message: String,
    },
}
