//! Errors the ONNX frontend reports. Each names the thing at fault and, where
//! there is one, the fix.

use std::path::PathBuf;

use hepack_ir::IrError;
use thiserror::Error;

/// The ops hepack reads, listed in "unsupported op" errors.
pub const SUPPORTED_OPS: &str = "Add (also of two data tensors), AveragePool, BatchNormalization, Cast (to float), Clip, \
Concat, Constant, Conv (1-D, 2-D, grouped), ConvTranspose, Div, Dropout, Elu, Erf, Flatten, Gelu, Gemm, \
GlobalAveragePool, HardSigmoid, HardSwish, Identity, LeakyRelu, LogSoftmax (last op only), \
MatMul, MaxPool, Mish, Mul, Pad, Pow (exponent 2), PRelu (one slope), ReduceMean (spatial axes), \
Relu, Reshape, Resize (nearest, linear), Sigmoid, Softmax (last op only), Softplus, Squeeze, Sub, Tanh, Transpose, \
Unsqueeze; any op whose inputs are all constants (Shape, Gather, Concat, ConstantOfShape, \
Where, Slice, ...) is evaluated when the model is read";

/// One node hepack cannot read, located for a user who has only the export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The node's name (its first output's when it has none).
    pub node: String,
    /// The op type (with its domain if not the default one).
    pub op: String,
    /// Its position in the graph, 1-based.
    pub position: usize,
    /// How many nodes the graph has.
    pub nodes: usize,
    /// Its input tensors' names.
    pub inputs: Vec<String>,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} '{}' (node {} of {}, reading {})",
            self.op,
            self.node,
            self.position,
            self.nodes,
            self.inputs.join(", ")
        )?;
        if let Some(hint) = torch_construct(&self.op) {
            write!(f, " — {hint}")?;
        }
        Ok(())
    }
}

/// The PyTorch construct that usually exports as `op`, for ops hepack lacks.
fn torch_construct(op: &str) -> Option<&'static str> {
    Some(match op {
        "LayerNormalization" => "nn.LayerNorm (needs a division by the data's deviation)",
        "InstanceNormalization" | "GroupNormalization" => {
            "nn.InstanceNorm / nn.GroupNorm (needs a division by the data's deviation)"
        }
        "ReduceMax" | "ArgMax" | "TopK" => {
            "torch.max / argmax / topk (comparisons CKKS cannot compute)"
        }
        "ReduceSum" | "ReduceMean" => "a sum or mean over non-spatial axes",
        "Split" | "Slice" => "torch.split / chunk or slicing x[:, a:b] of the data",
        "Gather" => "indexing the data with a tensor (x[:, idx])",
        "Einsum" => "torch.einsum",
        "Sqrt" | "Reciprocal" | "Exp" | "Log" => {
            "an element-wise function hepack has no activation for"
        }
        "LSTM" | "GRU" | "RNN" => "nn.LSTM / nn.GRU / nn.RNN",
        "Attention" | "MultiHeadAttention" => "nn.MultiheadAttention",
        _ => return None,
    })
}

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
    /// Every node of the model whose op hepack does not support.
    #[error("{} unsupported: {}; supported ops: {SUPPORTED_OPS}",
        if .0.len() == 1 { "1 node is".to_string() } else { format!("{} nodes are", .0.len()) },
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Unsupported(Vec<Unsupported>),
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
