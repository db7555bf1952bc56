//! Training on hepack's IR, in Rust: the gradients of every IR op, Adam, and
//! mini-batch training with early stopping ([`train`]), and on top of them
//! MOFHEI's two fine-tuning steps (§IV) without a Python stack: HE-friendly
//! conversion ([`convert`]) and iterative block pruning on Zhu & Gupta's
//! schedule ([`prune`], [`schedule`]).
//!
//! What is trained is exactly the [`hepack_ir::Graph`] that is compiled: the
//! forward pass is the reference interpreter, and the backward pass is
//! checked against its finite differences. No deep-learning crate is used:
//! the IR's op set (sum pools, patches, trainable polynomials) is small, and
//! a crate's graph would need an exact round trip to and from the IR.

pub mod convert;
pub mod error;
pub mod grad;
pub mod loss;
pub mod optim;
pub mod prune;
pub mod schedule;
pub mod train;

pub use convert::{he_friendly, ConvertOptions, Replacement};
pub use error::TuneError;
pub use grad::{loss_and_grads, Grads};
pub use loss::Loss;
pub use optim::Adam;
pub use prune::{prune_while_training, BlockPruning, Lasso, PruneOptions, PruneRun};
pub use schedule::PruneSchedule;
pub use train::{evaluate, fit, fit_with, Data, Epoch, FitOptions, Hooks, NoHooks, Target};
