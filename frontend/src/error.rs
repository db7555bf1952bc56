//! Errors the ONNX frontend reports. Each names the thing at fault and, where
//! there is one, the fix.

use std::path::PathBuf;

use hepack_ir::IrError;
use thiserror::Error;

/// The ops hepack reads, listed in "unsupported op" errors.
pub const SUPPORTED_OPS: &str = "AveragePool, BatchNormalization, Constant, Conv, Div, Dropout, \
Flatten, Gemm, GlobalAveragePool, Identity, LeakyRelu, MatMul, MaxPool, Mul, Pow (exponent 2), \
Relu, Reshape (constant shape), Sigmoid, Softmax (last op only), Softplus, Sub, Tanh, Transpose, Add";

/// Everything that can go wrong while reading an ONNX model.
#[derive(Debug, Error)]
pub enum FrontendError {
    /// The model (or one of its external-data files) could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The bytes are not a valid ONNX protobuf message.
    #[error("{what} is not a valid ONNX protobuf ({detail}); is the file truncated or not ONNX?")]
    Decode {
        /// What was being decoded.
        what: String,
        /// The protobuf parser's message.
        detail: String,
    },
    /// The model's default-domain opset is outside the supported range.
    #[error("the model uses ONNX opset {found}; hepack reads opsets 7 to 21 (re-export the model with opset_version in that range)")]
    Opset {
        /// The opset found (0 when none was declared).
        found: i64,
    },
    /// An op hepack does not support.
    #[error("node '{node}': op {op} is not supported; supported ops: {SUPPORTED_OPS}")]
    UnsupportedOp {
        /// The node's name.
        node: String,
        /// The op type (with its domain if not the default one).
        op: String,
    },
    /// A supported op used in a way hepack does not support, or with bad attributes or operands.
    #[error("node '{node}' ({op}): {message}")]
    Node {
        /// The node's name.
        node: String,
        /// The op type.
        op: String,
        /// What is wrong, and how to fix it when possible.
        message: String,
    },
    /// A tensor (initializer, constant or external data) that cannot be used.
    #[error("tensor '{name}': {message}")]
    Tensor {
        /// The tensor's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The graph's inputs, outputs or wiring are not what hepack can compile.
    #[error("model graph: {0}")]
    Graph(String),
    /// The IR rejected the graph built from the model.
    #[error(transparent)]
    Ir(#[from] IrError),
}
