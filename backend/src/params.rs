//! CKKS parameter selection: the polynomial degree N and the modulus chain
//! for a program's depth, scale and value range, within the HomomorphicEncryption.org
//! standard's bounds for 128-bit security (the same table SEAL enforces).
//!
//! The chain is `[first, scale × depth, special]`: each rescale drops one
//! `scale`-bit prime, the `first` prime holds the values left after the last
//! rescale (scale plus the bits of the largest magnitude), and the `special`
//! prime is SEAL's key-switching prime. Primes are generated exactly as SEAL's
//! `CoeffModulus::Create` does, so the runtime can check it got the same chain.

use serde::Serialize;
use thiserror::Error;

/// Polynomial degrees hepack chooses from (SEAL supports these for CKKS).
pub const DEGREES: [u32; 6] = [1024, 2048, 4096, 8192, 16384, 32768];

/// The largest total modulus bits for 128-bit classical security with a
/// ternary secret, per degree (HE standard, SEAL's `SEAL_HE_STD_PARMS_128_TC`).
pub fn max_bits_128(degree: u32) -> Option<u32> {
    match degree {
        1024 => Some(27),
        2048 => Some(54),
        4096 => Some(109),
        8192 => Some(218),
        16384 => Some(438),
        32768 => Some(881),
        _ => None,
    }
}

/// SEAL's largest prime in a chain, in bits.
pub const MAX_PRIME_BITS: u32 = 60;
/// SEAL's smallest prime in a chain, in bits.
pub const MIN_PRIME_BITS: u32 = 20;

/// The most primes SEAL's modulus holds (`SEAL_COEFF_MOD_COUNT_MAX`).
pub const MAX_PRIMES: usize = 64;

/// What the user asks for; `None` fields are chosen.
#[derive(Clone, Debug)]
pub struct ParamRequest {
    /// Pin the polynomial degree.
    pub degree: Option<u32>,
    /// Pin the scale (bits of Δ, and of each rescaling prime).
    pub scale_bits: Option<u32>,
    /// Pin the whole chain's bit sizes (first, rescaling primes, special).
    pub chain_bits: Option<Vec<u32>>,
    /// Largest magnitude of any value the program computes (from a
    /// calibration set); `None` assumes [`DEFAULT_MAX_VALUE`].
    pub max_value: Option<f64>,
    /// Target precision: outputs within this of plaintext.
    pub precision: f64,
    /// Allow parameters below 128-bit security.
    pub insecure: bool,
    /// The smallest first prime, in bits. Compilation raises it when a
    /// constant the program encodes (a bias, a polynomial coefficient
    /// folded with its scalings) needs more room than the value range does.
    pub min_first_bits: Option<u32>,
    /// The most Galois keys (distinct rotation steps) a slot-packed program
    /// may need; steps beyond are composed of others ([`crate::rotations`]).
    /// `None`: as many as fit in [`DEFAULT_EVAL_KEY_BYTES`].
    pub max_galois_keys: Option<usize>,
    /// The smallest degree: a layout that needs more slots than a shallow
    /// program's ring has (a tile of `t1·t2` slots) raises it.
    pub min_degree: Option<u32>,
}

impl Default for ParamRequest {
    fn default() -> Self {
        ParamRequest {
            degree: None,
            scale_bits: None,
            chain_bits: None,
            max_value: None,
            precision: DEFAULT_PRECISION,
            insecure: false,
            min_first_bits: None,
            max_galois_keys: None,
            min_degree: None,
        }
    }
}

impl ParamRequest {
    /// Refuse pins and targets that no chain could meet, before any work.
    pub fn validate(&self) -> Result<(), ParamError> {
        if let Some(n) = self.degree {
            if max_bits_128(n).is_none() {
                return Err(ParamError::Invalid(format!(
                    "N = {n} is not a supported degree (one of {DEGREES:?})"
                )));
            }
        }
        let bits = self
            .scale_bits
            .iter()
            .chain(self.chain_bits.iter().flatten());
        if let Some(bad) = bits
            .copied()
            .find(|b| !(MIN_PRIME_BITS..=MAX_PRIME_BITS).contains(b))
        {
            return Err(ParamError::Invalid(format!(
                "{bad} bits: scales and primes take {MIN_PRIME_BITS} to {MAX_PRIME_BITS} bits"
            )));
        }
        if self.chain_bits.as_ref().is_some_and(|c| c.len() < 2) {
            return Err(ParamError::Invalid(
                "a chain needs at least the first and the special prime".into(),
            ));
        }
        if !(self.precision > 0.0 && self.precision < 1.0) {
            return Err(ParamError::Invalid(format!(
                "precision {}: expected an error bound between 0 and 1",
                self.precision
            )));
        }
        if let Some(m) = self.max_value {
            if !m.is_finite() {
                return Err(ParamError::Invalid(format!("largest value {m}")));
            }
        }
        if self.max_galois_keys == Some(0) {
            return Err(ParamError::Invalid(
                "0 Galois keys: a program that rotates needs at least one (--max-galois-keys 1 composes every step of rotations by 1)".into(),
            ));
        }
        Ok(())
    }

    /// The scale bits lowering should use before the chain is chosen.
    pub fn scale_bits(&self) -> u32 {
        match (&self.scale_bits, &self.chain_bits) {
            (Some(b), _) => *b,
            (None, Some(c)) if c.len() > 2 => c[1],
            _ => scale_bits_for(self.precision),
        }
    }
}

/// Magnitude assumed for values when no calibration set bounds them.
pub const DEFAULT_MAX_VALUE: f64 = 1024.0;

/// Default precision target (max abs error of an output).
pub const DEFAULT_PRECISION: f64 = 1e-3;

/// The evaluation keys (public, relinearization and Galois keys) a program
/// compiled without `max_galois_keys` may need, in bytes: 2 GiB.
pub const DEFAULT_EVAL_KEY_BYTES: u64 = 2 << 30;

/// Chosen CKKS parameters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CkksParams {
    /// Polynomial degree N; a ciphertext holds N/2 slots (samples, for batch packing).
    pub degree: u32,
    /// Bits of the scale Δ (inputs are encoded at 2^scale_bits).
    pub scale_bits: u32,
    /// Bit size of each prime: first, one per level, then the special prime.
    pub chain_bits: Vec<u32>,
    /// The primes, as SEAL's `CoeffModulus::Create(degree, chain_bits)` makes them.
    pub primes: Vec<u64>,
    /// 128 when the total is within the standard's bound for N, else `None`
    /// (only with `insecure`).
    pub security_bits: Option<u32>,
}

impl CkksParams {
    /// Levels available for rescaling (primes between the first and the special one).
    pub fn levels(&self) -> u32 {
        self.chain_bits.len().saturating_sub(2) as u32
    }

    /// Total modulus bits, special prime included (what the standard bounds).
    pub fn total_bits(&self) -> u32 {
        self.chain_bits.iter().sum()
    }

    /// Bytes SEAL holds for a ciphertext of `size` polynomials after
    /// `depth` levels consumed: `size · N · primes left · 8`.
    pub fn ciphertext_bytes(&self, depth: u32, size: u8) -> u64 {
        u64::from(size) * u64::from(self.degree) * self.primes_left(depth) as u64 * 8
    }

    /// Primes still in a ciphertext after `depth` levels consumed (the first
    /// one included, the special one not).
    fn primes_left(&self, depth: u32) -> usize {
        (self.levels() + 1).saturating_sub(depth) as usize
    }

    /// SEAL's `total_coeff_modulus_bit_count` for a ciphertext after `depth`
    /// levels consumed: the bit count of the product of the primes left
    /// (the special prime excluded). SEAL compares encodings and scales with it.
    pub fn modulus_bit_count(&self, depth: u32) -> u32 {
        let log2: f64 = self.primes[..self.primes_left(depth)]
            .iter()
            .map(|&q| (q as f64).log2())
            .sum();
        log2.floor() as u32 + 1
    }

    /// Bits of the rescaling primes still in a ciphertext after `depth`
    /// levels consumed, by their sizes in the chain (the first prime excluded).
    pub fn rescale_bits_left(&self, depth: u32) -> u32 {
        self.chain_bits[1..self.primes_left(depth).max(1)]
            .iter()
            .sum()
    }

    /// Slots per ciphertext.
    pub fn slots(&self) -> u32 {
        self.degree / 2
    }

    /// Bytes of one key-switching key in memory (a relinearization key or
    /// the Galois key of one step): a pair of polynomials over the whole key
    /// modulus for each data prime.
    pub fn switch_key_bytes(&self) -> u64 {
        let key_primes = self.primes.len() as u64;
        (key_primes - 1) * 2 * u64::from(self.degree) * key_primes * 8
    }

    /// How many Galois keys fit in `bytes` of evaluation keys beside the
    /// public and relinearization keys (at least one), counted as the
    /// runtime bounds a key file (`hepack inspect`'s `eval_key_bytes`),
    /// which allows one key more than the steps.
    pub fn galois_keys_within(&self, bytes: u64) -> usize {
        let public = 2 * u64::from(self.degree) * self.primes.len() as u64 * 8;
        let rest = bytes.saturating_sub(public + self.switch_key_bytes());
        (rest / self.switch_key_bytes().max(1))
            .saturating_sub(1)
            .max(1) as usize
    }

    /// Prime dropped by the rescale that takes a value from `depth` levels
    /// consumed to `depth + 1` (SEAL drops the last data prime first).
    pub fn rescale_prime(&self, depth: u32) -> Option<u64> {
        let levels = self.levels();
        (depth < levels).then(|| self.primes[(levels - depth) as usize])
    }
}

/// Why no parameters fit.
#[derive(Debug, Error, PartialEq)]
pub enum ParamError {
    /// Nothing within 128-bit security holds the chain.
    #[error("depth {depth} at {scale_bits}-bit scale needs {bits} modulus bits, more than the {max} that 128-bit security allows at N = {degree}; prune or use lower-degree activations to need fewer levels, lower the scale (--scale-bits), or pass --insecure for experiments")]
    TooDeep {
        /// Levels needed.
        depth: u32,
        /// Scale bits.
        scale_bits: u32,
        /// Total bits needed.
        bits: u32,
        /// Largest N tried.
        degree: u32,
        /// Its bound.
        max: u32,
    },
    /// A pinned setting is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// Bits of Δ for a precision target: 25 bits above the target's own, which
/// leaves room for encoding and encryption noise (about √N·σ), the growth
/// of errors through sums and squares, and rounding at every rescale. A
/// heuristic until issue #7 measures errors on SEAL.
pub fn scale_bits_for(precision: f64) -> u32 {
    let bits = (1.0 / precision).log2().ceil().max(0.0) as u32 + 25;
    bits.clamp(MIN_PRIME_BITS, MAX_PRIME_BITS)
}

/// Primes of at most this many bits keep the runtime's vector kernel for
/// linear combinations (AVX-512 IFMA multiplies 52-bit lanes): the scale is
/// raised into free modulus room only while every prime stays within it.
pub const FAST_PRIME_BITS: u32 = 52;

impl ParamRequest {
    /// This request with the scale raised into the room that the degree
    /// chosen for `depth` leaves unused, and the bits it was raised by.
    ///
    /// [`select`] picks the smallest N whose 128-bit bound holds the chain at
    /// the precision's scale; what that bound leaves over is free: a larger
    /// prime costs the same word operations as a smaller one while the
    /// number of primes stays, and every extra bit of Δ halves the error.
    /// The precision heuristic is short of what squares of large values
    /// amplify (CryptoNets at 2^35 missed 1e-3), so the room is taken, as
    /// many bits on every prime as fit, none beyond [`FAST_PRIME_BITS`].
    /// A pinned scale or chain is kept, and so is the degree; a raised
    /// request that SEAL's primes cannot fill is not taken.
    pub fn raised(&self, depth: u32) -> Result<(ParamRequest, u32), ParamError> {
        let base = select(depth, self)?;
        if self.scale_bits.is_some() || self.chain_bits.is_some() {
            return Ok((self.clone(), 0));
        }
        let Some(bound) = max_bits_128(base.degree) else {
            return Ok((self.clone(), 0));
        };
        let primes = base.chain_bits.len() as u32;
        let widest = base.chain_bits.iter().copied().max().unwrap_or(0);
        let extra = (bound.saturating_sub(base.total_bits()) / primes)
            .min(FAST_PRIME_BITS.saturating_sub(widest));
        if extra == 0 {
            return Ok((self.clone(), 0));
        }
        let raised = ParamRequest {
            degree: Some(base.degree),
            scale_bits: Some(base.scale_bits + extra),
            min_first_bits: self.min_first_bits.map(|b| b + extra),
            ..self.clone()
        };
        match select(depth, &raised) {
            Ok(_) => Ok((raised, extra)),
            Err(_) => Ok((self.clone(), 0)),
        }
    }
}

/// The most levels any parameters `req` allows hold: the largest depth
/// [`select`] accepts, or why it accepts none.
pub fn max_depth(req: &ParamRequest) -> Result<u32, ParamError> {
    if let Some(c) = &req.chain_bits {
        let depth = c.len().saturating_sub(2) as u32;
        return select(depth, req).map(|_| depth);
    }
    select(0, req)?;
    // What fits only shrinks as the depth grows: bisect.
    let (mut lo, mut hi) = (0u32, MAX_PRIMES as u32 - 2);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if select(mid, req).is_ok() {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(lo)
}

/// Choose parameters for a program that consumes `depth` levels.
pub fn select(depth: u32, req: &ParamRequest) -> Result<CkksParams, ParamError> {
    let chain_bits = match &req.chain_bits {
        Some(c) => {
            if c.len() != depth as usize + 2 {
                return Err(ParamError::Invalid(format!(
                    "the pinned chain has {} primes; a program of depth {depth} needs {} (first, {depth} rescaling primes, special)",
                    c.len(),
                    depth + 2
                )));
            }
            c.clone()
        }
        None => {
            let scale = req.scale_bits();
            let magnitude = req.max_value.unwrap_or(DEFAULT_MAX_VALUE).abs().max(1.0);
            // Sign bit plus the integer part of the largest value, above Δ.
            let wanted = scale + 1 + magnitude.log2().ceil() as u32;
            if wanted > MAX_PRIME_BITS {
                return Err(ParamError::Invalid(format!(
                    "values up to {magnitude:.4e} at scale 2^{scale} need a {wanted}-bit first prime, \
                     but SEAL's primes have at most {MAX_PRIME_BITS} bits; lower the scale \
                     (--scale-bits, or a looser --precision) or bound the values with --calib"
                )));
            }
            let first = wanted
                .max(req.min_first_bits.unwrap_or(0))
                .min(MAX_PRIME_BITS);
            let special = first.max(scale);
            let mut c = vec![first];
            c.extend(std::iter::repeat_n(scale, depth as usize));
            c.push(special);
            c
        }
    };
    if chain_bits.len() > MAX_PRIMES {
        return Err(ParamError::Invalid(format!(
            "depth {depth} needs {} primes, more than the {MAX_PRIMES} SEAL's modulus holds; \
             prune or use lower-degree activations to need fewer levels",
            chain_bits.len()
        )));
    }
    if let Some(&bad) = chain_bits
        .iter()
        .find(|&&b| !(MIN_PRIME_BITS..=MAX_PRIME_BITS).contains(&b))
    {
        return Err(ParamError::Invalid(format!(
            "a {bad}-bit prime is outside SEAL's {MIN_PRIME_BITS}..={MAX_PRIME_BITS} bits"
        )));
    }
    let scale_bits = req.scale_bits();
    let total: u32 = chain_bits.iter().sum();
    let min_degree = req.min_degree.unwrap_or(0);
    let degree = match req.degree {
        Some(n) => {
            let Some(max) = max_bits_128(n) else {
                return Err(ParamError::Invalid(format!(
                    "N = {n} is not a supported degree (one of {DEGREES:?})"
                )));
            };
            if n < min_degree {
                return Err(ParamError::Invalid(format!(
                    "N = {n} has {} slots, fewer than the packing's layout needs ({}): \
                     pin N = {min_degree} or more, or choose a smaller tile",
                    n / 2,
                    min_degree / 2
                )));
            }
            if total > max && !req.insecure {
                return Err(ParamError::TooDeep {
                    depth,
                    scale_bits,
                    bits: total,
                    degree: n,
                    max,
                });
            }
            n
        }
        None => match DEGREES
            .iter()
            .find(|&&n| n >= min_degree && max_bits_128(n) >= Some(total))
        {
            Some(&n) => n,
            None if req.insecure => 32768,
            None => {
                return Err(ParamError::TooDeep {
                    depth,
                    scale_bits,
                    bits: total,
                    degree: 32768,
                    max: 881,
                })
            }
        },
    };
    let primes = coeff_modulus(degree, &chain_bits).ok_or_else(|| {
        ParamError::Invalid(format!(
            "not enough {chain_bits:?}-bit primes ≡ 1 mod {} exist",
            2 * degree
        ))
    })?;
    let secure = max_bits_128(degree).is_some_and(|max| total <= max);
    Ok(CkksParams {
        degree,
        scale_bits,
        chain_bits,
        primes,
        security_bits: secure.then_some(128),
    })
}

/// The primes SEAL's `CoeffModulus::Create(degree, bits)` returns: for each
/// bit size, the largest primes ≡ 1 mod 2N below 2^bits, handed out
/// smallest-first to the positions that ask for that size.
pub fn coeff_modulus(degree: u32, bits: &[u32]) -> Option<Vec<u64>> {
    let factor = 2 * u64::from(degree);
    let mut pools: std::collections::BTreeMap<u32, Vec<u64>> = Default::default();
    for &b in bits {
        *pools.entry(b).or_default() = Vec::new();
    }
    for (&b, pool) in pools.iter_mut() {
        let count = bits.iter().filter(|&&x| x == b).count();
        let lower = 1u64 << (b - 1);
        let mut value = (1u64 << b) - factor + 1;
        while pool.len() < count && value > lower {
            if is_prime(value) {
                pool.push(value);
            }
            value -= factor;
        }
        if pool.len() < count {
            return None;
        }
    }
    Some(
        bits.iter()
            .map(|b| pools.get_mut(b).and_then(Vec::pop).expect("counted"))
            .collect(),
    )
}

/// Deterministic Miller–Rabin for 64-bit integers.
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for p in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        if n % p == 0 {
            return n == p;
        }
    }
    let (mut d, mut s) = (n - 1, 0);
    while d % 2 == 0 {
        d /= 2;
        s += 1;
    }
    let mul = |a: u64, b: u64| ((a as u128 * b as u128) % n as u128) as u64;
    let pow = |mut a: u64, mut e: u64| {
        let mut r = 1u64;
        while e > 0 {
            if e & 1 == 1 {
                r = mul(r, a);
            }
            a = mul(a, a);
            e >>= 1;
        }
        r
    };
    'witness: for a in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        let mut x = pow(a, d);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul(x, x);
            if x == n - 1 {
                continue 'witness;
            }
        }
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes_are_ntt_friendly_and_of_the_asked_size() {
        let bits = [60, 40, 40, 40, 60];
        let primes = coeff_modulus(8192, &bits).unwrap();
        for (&p, &b) in primes.iter().zip(&bits) {
            assert!(is_prime(p));
            assert_eq!(p % (2 * 8192), 1);
            assert_eq!(64 - p.leading_zeros(), b);
        }
        // Distinct, and handed out smallest-first per size, as SEAL does.
        assert!(primes[1] < primes[2] && primes[2] < primes[3]);
        assert!(primes[0] < primes[4]);
    }

    #[test]
    fn miller_rabin_agrees_with_trial_division() {
        let slow = |n: u64| n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0);
        for n in 0..20_000u64 {
            assert_eq!(is_prime(n), slow(n), "{n}");
        }
        assert!(is_prime((1 << 61) - 1));
        assert!(!is_prime(3_215_031_751)); // a strong pseudoprime to bases 2, 3, 5, 7
    }

    #[test]
    fn pinned_insecure_choices_are_refused_unless_asked() {
        let req = ParamRequest {
            degree: Some(4096),
            ..Default::default()
        };
        let err = select(5, &req).unwrap_err();
        assert!(err.to_string().contains("128-bit security"), "{err}");
        let p = select(
            5,
            &ParamRequest {
                insecure: true,
                ..req
            },
        )
        .unwrap();
        assert_eq!(p.security_bits, None);
        assert_eq!(p.degree, 4096);
    }

    #[test]
    fn pinned_scales_and_chains_are_not_raised() {
        let free = ParamRequest::default();
        let (raised, extra) = free.raised(5).unwrap();
        // CryptoNets' depth at 2^35 leaves 169 of N = 16384's 438 bits.
        assert!(extra > 0);
        assert_eq!(raised.degree, Some(16384));
        for req in [
            ParamRequest {
                scale_bits: Some(30),
                ..Default::default()
            },
            ParamRequest {
                chain_bits: Some(vec![40, 30, 30, 40]),
                ..Default::default()
            },
        ] {
            let (raised, extra) = req.raised(2).unwrap();
            assert_eq!(extra, 0);
            assert_eq!(select(2, &raised).unwrap(), select(2, &req).unwrap());
        }
    }

    #[test]
    fn max_depth_is_the_deepest_chain_select_accepts() {
        for req in [
            ParamRequest::default(),
            ParamRequest {
                degree: Some(8192),
                ..Default::default()
            },
            ParamRequest {
                insecure: true,
                ..Default::default()
            },
        ] {
            let d = max_depth(&req).unwrap();
            assert!(select(d, &req).is_ok(), "{d}");
            assert!(select(d + 1, &req).is_err(), "{d}");
        }
        // Insecure chains stop at SEAL's prime count.
        let insecure = ParamRequest {
            insecure: true,
            ..Default::default()
        };
        assert_eq!(max_depth(&insecure).unwrap(), MAX_PRIMES as u32 - 2);
        let err = select(MAX_PRIMES as u32, &insecure).unwrap_err();
        assert!(err.to_string().contains("64 SEAL's modulus holds"), "{err}");
    }
}

#[cfg(test)]
mod bounds {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever is asked, a secure choice never exceeds the standard's bound.
        #[test]
        fn chosen_chains_stay_within_128_bit_bounds(
            depth in 0u32..40,
            precision_exp in 1i32..9,
            max_value in 1e-3f64..1e6,
            degree in prop::option::of(prop::sample::select(DEGREES.to_vec())),
        ) {
            let req = ParamRequest {
                degree,
                max_value: Some(max_value),
                precision: 10f64.powi(-precision_exp),
                ..Default::default()
            };
            match select(depth, &req) {
                Ok(p) => {
                    prop_assert!(p.total_bits() <= max_bits_128(p.degree).unwrap());
                    prop_assert_eq!(p.security_bits, Some(128));
                    prop_assert_eq!(p.levels(), depth);
                    prop_assert_eq!(p.primes.len(), p.chain_bits.len());
                }
                Err(ParamError::TooDeep { bits, max, .. }) => prop_assert!(bits > max),
                // Values too large for the scale: only when no prime could hold them.
                Err(ParamError::Invalid(why)) if why.contains("first prime") => {
                    let wanted = req.scale_bits() + 1 + max_value.max(1.0).log2().ceil() as u32;
                    prop_assert!(wanted > MAX_PRIME_BITS, "{why}");
                }
                Err(e) => prop_assert!(false, "{e}"),
            }
        }

        /// Raising the scale keeps the degree, the depth and the bound, lifts
        /// every prime by the same bits (none past the fast kernel's width
        /// unless it was already), and leaves no room for one bit more.
        #[test]
        fn raised_scales_fill_the_degree_they_were_given(
            depth in 0u32..30,
            precision_exp in 1i32..7,
            max_value in 1e-3f64..1e4,
            min_first in prop::option::of(30u32..58),
        ) {
            let req = ParamRequest {
                max_value: Some(max_value),
                precision: 10f64.powi(-precision_exp),
                min_first_bits: min_first,
                ..Default::default()
            };
            let Ok(base) = select(depth, &req) else { return Ok(()) };
            let (raised, extra) = req.raised(depth).unwrap();
            let p = select(depth, &raised).unwrap();
            prop_assert_eq!(p.degree, base.degree);
            prop_assert_eq!(p.levels(), depth);
            prop_assert_eq!(p.scale_bits, base.scale_bits + extra);
            prop_assert!(p.total_bits() <= max_bits_128(p.degree).unwrap());
            for (b, r) in base.chain_bits.iter().zip(&p.chain_bits) {
                prop_assert_eq!(b + extra, *r);
            }
            let widest = *base.chain_bits.iter().max().unwrap();
            if extra > 0 {
                prop_assert!(widest + extra <= FAST_PRIME_BITS);
            }
            let room = max_bits_128(p.degree).unwrap() - p.total_bits();
            prop_assert!(
                room < p.chain_bits.len() as u32 || widest + extra == FAST_PRIME_BITS
                    || widest >= FAST_PRIME_BITS,
                "{} bits left over", room
            );
        }
    }
}
