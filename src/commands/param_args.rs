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
    /// Default: 25 bits above --precision's (35 for 1e-3), raised into the
    /// room the chosen N's 128-bit bound leaves (up to 52-bit primes).
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
    /// Slot packings: the most Galois keys (distinct rotation steps) the
    /// program may need. Steps beyond are composed of the kept ones (powers
    /// of two and the most used), trading extra rotations for key memory; a
    /// budget that would quadruple the program is refused. Default: as many
    /// as fit in 2 GiB of evaluation keys.
    #[arg(long, value_name = "N")]
    pub max_galois_keys: Option<usize>,
    /// Schedule with this machine's op times (`hepack calibrate`'s file,
    /// $HEPACK_OP_TIMES or ~/.cache/hepack/op_times.json) for the chosen
    /// parameters instead of DESIGN.md's: they decide, per squaring layer,
    /// whether its relinearization and rescale are left to the linear layers
    /// that read it. Without a calibration for those parameters, DESIGN.md's
    /// times are used and a warning says so.
    #[arg(long)]
    pub calibrated: bool,
}

impl ParamArgs {
    /// The request for parameter selection; `max_value` is the largest
    /// magnitude the program computes, if a calibration set measured it.
    pub fn request(&self, max_value: Option<f64>) -> ParamRequest {
        self.warn_if_unreachable();
        ParamRequest {
            degree: self.poly_degree,
            scale_bits: self.scale_bits,
            chain_bits: self.chain.clone(),
            max_value,
            precision: self.precision,
            insecure: self.insecure,
            min_first_bits: None,
            max_galois_keys: self.max_galois_keys,
            min_degree: None,
        }
    }

    /// `--precision` asks for more bits of scale than SEAL's primes have: the
    /// scale is capped, so outputs will not be that close to plaintext.
    fn warn_if_unreachable(&self) {
        if self.scale_bits.is_some()
            || self.chain.is_some()
            || self.precision.is_nan()
            || self.precision <= 0.0
        {
            return;
        }
        let wanted = (1.0 / self.precision).log2().ceil() + 25.0;
        let max = f64::from(hepack_backend::params::MAX_PRIME_BITS);
        if wanted > max {
            eprintln!(
                "warning: --precision {:e} needs a {wanted}-bit scale, but SEAL's primes have at most {max} bits; \
                 expect errors around {:.0e} instead (CKKS keeps about 25 bits of the scale for noise)",
                self.precision,
                2f64.powf(25.0 - max)
            );
        }
    }
}
