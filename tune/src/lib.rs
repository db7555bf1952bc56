//! Training on hepack's IR, in Rust: the gradients of every IR op, Adam, and
//! mini-batch training with early stopping, so that HE-friendly conversion
//! and block pruning can be fine-tuned (MOFHEI §IV) without a Python stack.
//!
//! What is trained is exactly the [`hepack_ir::Graph`] that is compiled: the
//! forward pass is the reference interpreter, and the backward pass is
//! checked against its finite differences. No deep-learning crate is used:
//! the IR's op set (sum pools, patches, trainable polynomials) is small, and
//! a crate's graph would need an exact round trip to and from the IR.

pub mod error;
pub mod grad;
pub mod loss;
pub mod optim;
pub mod train;

pub use error::TuneError;
pub use grad::{loss_and_grads, Grads};
pub use loss::Loss;
pub use optim::Adam;
pub use train::{evaluate, fit, Data, Epoch, FitOptions, Target};
