//! hepack's intermediate representation.
//!
//! A model is a [`Graph`]: a typed tensor dataflow graph (on `petgraph`) whose
//! nodes are [`Op`]s with static per-sample [`Shape`]s and `f64` constants. The
//! batch dimension is symbolic: graphs describe one sample, and the
//! [reference interpreter](interp::run) runs them on a batch.
//!
//! The interpreter is the oracle of the whole toolchain: every pass and lowering
//! is tested by running a model before and after it.

pub mod dump;
pub mod error;
pub mod graph;
pub mod interp;
pub mod op;
pub mod shape;
pub mod summary;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::IrError;
pub use graph::{Graph, GraphOutput, LayerName, Names, Node, NodeId};
pub use op::{Activation, AvgPool, BatchNorm, Conv, Dense, Op, Patches, Polynomial, Pool, Softmax};
pub use shape::Shape;
pub use summary::{LayerSummary, Summary};
