//! ONNX frontend: reads an ONNX model into hepack's IR.
//!
//! Supports default-domain opsets 7 to 21, initializers, `Constant` nodes,
//! external-data tensors beside the model file and a symbolic batch dimension.
//! [`to_onnx`] writes a (rewritten) graph back to ONNX with standard ops.
//! Every op and attribute is validated; anything hepack cannot compile is
//! rejected with an error naming the node and what to change, never a panic.
//!
//! ```no_run
//! let model = hepack_frontend::load(std::path::Path::new("lenet5.onnx"))?;
//! println!("{}", hepack_ir::dump::to_text(&model.graph));
//! # Ok::<(), hepack_frontend::FrontendError>(())
//! ```

mod error;
pub mod export;
pub mod input;
mod model;
mod ops;
pub mod tensor;

pub use error::{FrontendError, SUPPORTED_OPS};
pub use export::{to_onnx, ExportType};
pub use model::{load, BatchDim, Loader, Model, MAX_MODEL_BYTES, OPSETS};
