//! hepack's runtime on Microsoft SEAL.
//!
//! - [`seal`]: the safe binding over SEAL's C API (the crate's only `unsafe`).
//! - [`keys`]: key generation and the key files (`secret.key`, `eval.keys`).
//! - [`client`]: packing, encryption and decryption per a program's layout.
//! - [`ciphertexts`]: the ciphertext file the client and the server exchange.
//! - [`executor`]: the threaded server-side executor of a program.
//! - [`calibrate`]: single-thread SEAL op times for the cost model.
//!
//! The server side ([`executor`]) takes evaluation keys only; nothing in it
//! can accept a secret key.

#![deny(unsafe_code)]

// sealy builds SEAL and its C API and links them; hepack calls the C API
// through its own declarations in `seal`.
use sealy as _;

pub mod calibrate;
pub mod ciphertexts;
pub mod client;
pub mod error;
pub mod executor;
mod framing;
pub mod keys;
pub mod limits;
#[allow(unsafe_code)]
pub mod seal;

pub use error::RuntimeError;
pub use framing::KeySet;
