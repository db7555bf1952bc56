//! The CKKS parameter options of `compile`.

use clap::Args;
use hepack_backend::ParamRequest;

/// Pins and targets for CKKS parameter selection; anything not pinned is
/// chosen for the program at 128-bit security.
#[derive(Args, Debug, Default)]
pub struct ParamArgs {
    /// Pin the polynomial degree N (1024 to 32768, a power of two). Default:
    /// the smallest N whose 128-bit bound holds the modulus chain.
    #[arg(long, value_name = "N")]
    pub poly_degree: Option<u32>,
    /// Pin the scale: bits of Δ and of each rescaling prime (20 to 60).
    /// Default: 25 bits above --precision's (35 for 1e-3).
    #[arg(long, value_name = "BITS")]
    pub scale_bits: Option<u32>,
    /// Pin the whole modulus chain's bit sizes, comma-separated: the first
    /// prime, one per level, then the special prime, e.g. 46,35,35,35,46.
    #[arg(long, value_name = "BITS,...", value_delimiter = ',')]
    pub chain: Option<Vec<u32>>,
    /// Target precision: the largest error of an output against plaintext
    /// that the scale is chosen for.
    #[arg(long, default_value_t = hepack_backend::params::DEFAULT_PRECISION, value_name = "ERR")]
    pub precision: f64,
    /// Accept parameters below 128-bit security. For experiments only: the
    /// program file records it and every command that reads it says so.
    #[arg(long)]
    pub insecure: bool,
}

impl ParamArgs {
    /// The request for parameter selection; `max_value` is the largest
    /// magnitude the program computes, if a calibration set measured it.
    pub fn request(&self, max_value: Option<f64>) -> ParamRequest {
        ParamRequest {
            degree: self.poly_degree,
            scale_bits: self.scale_bits,
            chain_bits: self.chain.clone(),
            max_value,
            precision: self.precision,
            insecure: self.insecure,
        }
    }
}
