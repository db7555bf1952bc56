//! The packings: how a sample's values are laid out in ciphertext slots,
//! and how each op lowers under that layout. Each implements
//! [`Lowering`](crate::Lowering) and the pruner's `Packing`; the shared
//! machinery (builder, levels, DCE, order, file) knows none of them.

pub mod batch;
pub mod diagonal;
pub(crate) mod runs;
pub(crate) mod slotwise;
pub mod tile;
