//! Passes over hepack's IR.
//!
//! This crate will hold the pass manager and the passes that make a graph
//! HE-friendly and cheap: batch-norm folding, max-pool → average-pool,
//! activation → polynomial, linear fusion, conv-to-dense, and packing-aware
//! pruning with structural compression (issues #3 and #4). It depends only on
//! `hepack-ir`; nothing is implemented yet.
