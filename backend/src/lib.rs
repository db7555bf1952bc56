//! hepack's backend: from IR to a CKKS op program.
//!
//! This crate will hold the packing strategies that lower a graph into an HE op
//! program, dead-ciphertext elimination, the cost model, CKKS parameter
//! selection, level/rescale scheduling and the program file (issues #5 and #6).
//! Nothing is implemented yet.
