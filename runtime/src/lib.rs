//! hepack's runtime on Microsoft SEAL.
//!
//! This crate will hold the safe SEAL binding, key generation, client-side
//! encryption and decryption, and the threaded server-side executor of a program
//! (issue #7). Nothing is implemented yet.
