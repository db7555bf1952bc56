//! Errors raised while building, verifying or interpreting a graph.

use thiserror::Error;

/// An error in the IR: a shape that does not fit an op, a malformed graph, or a
/// batch that does not match the graph's input.
#[derive(Debug, Error, PartialEq)]
pub enum IrError {
    /// An op cannot accept its operand's shape.
    #[error("layer '{layer}' ({op}): {message}")]
    Shape {
        /// The layer being built.
        layer: String,
        /// The op's name.
        op: &'static str,
        /// What does not fit.
        message: String,
    },
    /// The graph's structure is wrong (caught by [`crate::Graph::verify`]).
    #[error("malformed graph: {0}")]
    Malformed(String),
    /// The interpreter's input does not have the graph's input shape.
    #[error("input batch has shape {got:?}, but the model expects [batch, {expected}]")]
    InputShape {
        /// The shape given.
        got: Vec<usize>,
        /// The per-sample shape the graph wants.
        expected: String,
    },
}
