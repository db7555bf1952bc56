//! Level and scale bookkeeping over a scheduled program, with the checks
//! SEAL's evaluator makes: operands of an addition on the same level and at
//! the same scale, plaintexts encoded for the level and scale they meet, a
//! rescale only while a prime is left, products whose scale fits the modulus.
//! The simulator runs this before it computes anything, so a program that
//! SEAL would reject never passes a test.

use crate::error::BackendError;
use crate::program::{HeOp, Plain, Program, ValueId};

/// What SEAL would know about one ciphertext.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Meta {
    /// Levels consumed (SEAL's level is the chain's levels minus this).
    pub depth: u32,
    /// The scale.
    pub scale: f64,
    /// Polynomials: 2, or 3 after a product until relinearized.
    pub size: u8,
}

/// SEAL's `util::are_close`: equal up to one unit in the last place.
pub fn are_close(a: f64, b: f64) -> bool {
    let factor = a.abs().max(b.abs()).max(1.0);
    (a - b).abs() < f64::EPSILON * factor
}

/// Why SEAL's `CKKSEncoder::encode` would refuse this plaintext for a
/// modulus of `bits` bits, in its own words and arithmetic (`ckks.cpp`):
/// the scale must have fewer bits, and the scaled value two fewer.
fn unencodable(p: &Plain, bits: u32) -> Option<String> {
    let bits = bits as i64;
    if (p.scale().log2() as i64) >= bits {
        return Some(format!(
            "is encoded at scale 2^{:.1}, out of bounds for the {bits}-bit modulus left",
            p.scale().log2()
        ));
    }
    let scaled = p.max_abs() * p.scale();
    if scaled > 0.0 && (scaled.log2() as i64) + 2 >= bits {
        return Some(format!(
            "at scale 2^{:.1} needs {} bits, too large for the {bits}-bit modulus left",
            p.scale().log2(),
            scaled.log2() as i64 + 2
        ));
    }
    None
}

/// The smallest first prime, in bits, that holds every plaintext the
/// program encodes (as SEAL's encoder checks, [`check`]) and every
/// ciphertext value of magnitude up to `max_value` at its scale, given the
/// rest of the chain. `metas` is what [`scales`] returned.
pub fn first_prime_bits_needed(program: &Program, metas: &[Option<Meta>], max_value: f64) -> u32 {
    let params = &program.params;
    let rest = |depth: u32| i64::from(params.rescale_bits_left(depth));
    // The product of the primes may have one bit fewer than their sizes add to.
    let mut need: i64 = 0;
    for p in &program.plains {
        let scaled = p.max_abs() * p.scale();
        if scaled > 0.0 {
            need = need.max(scaled.log2() as i64 + 3 + 1 - rest(p.depth()));
        }
    }
    let magnitude = max_value.abs().max(1.0).log2();
    for m in metas.iter().flatten() {
        // A sign bit above the largest scaled value. The scale is rounded to
        // whole bits: after a rescale it is Δ·(1 ± ε), not a power of two.
        let bits = magnitude.ceil() as i64 + m.scale.log2().round() as i64 + 1;
        need = need.max(bits - rest(m.depth));
    }
    need.max(0) as u32
}

/// The meta of every value (`None` for outputs), or the first op SEAL would reject.
pub fn check(program: &Program) -> Result<Vec<Option<Meta>>, BackendError> {
    walk(program, true)
}

/// The meta of every value, as [`check`] but without SEAL's encoder checks
/// on plaintexts: what sizing the chain for those plaintexts starts from.
pub fn scales(program: &Program) -> Result<Vec<Option<Meta>>, BackendError> {
    walk(program, false)
}

fn walk(program: &Program, encodable: bool) -> Result<Vec<Option<Meta>>, BackendError> {
    let params = &program.params;
    let levels = params.levels();
    let delta = 2f64.powi(params.scale_bits as i32);
    let mut metas: Vec<Option<Meta>> = Vec::with_capacity(program.instrs.len());
    for (i, instr) in program.instrs.iter().enumerate() {
        let fail = |why: String| {
            BackendError::Schedule(format!(
                "op %{i} ({}, layer {}): {why}",
                instr.op.kind(),
                program.layers[instr.layer.0 as usize]
            ))
        };
        let get = |v: ValueId| -> Result<Meta, BackendError> {
            metas.get(v.0 as usize).copied().flatten().ok_or_else(|| {
                fail(format!(
                    "reads %{}, which is not a ciphertext defined before it",
                    v.0
                ))
            })
        };
        let plain = |p: crate::program::PlainId| {
            program
                .plains
                .get(p.0 as usize)
                .ok_or_else(|| fail(format!("reads @{}, which is not in the weight table", p.0)))
        };
        let same_level = |a: Meta, b: Meta| {
            if a.depth == b.depth {
                Ok((a, b))
            } else {
                Err(fail(format!(
                    "operands on levels {} and {}",
                    levels - a.depth,
                    levels - b.depth
                )))
            }
        };
        let meta = match instr.op {
            HeOp::EncryptInput { .. } => Some(Meta {
                depth: 0,
                scale: delta,
                size: 2,
            }),
            HeOp::Add(a, b) | HeOp::Sub(a, b) => {
                let (a, b) = same_level(get(a)?, get(b)?)?;
                if !are_close(a.scale, b.scale) {
                    return Err(fail(format!(
                        "operands at scales {} and {}",
                        a.scale, b.scale
                    )));
                }
                Some(Meta {
                    size: a.size.max(b.size),
                    ..a
                })
            }
            HeOp::AddPlain(a, p) | HeOp::MulPlain(a, p) => {
                let (a, id, p) = (get(a)?, p, plain(p)?);
                if p.depth() != a.depth {
                    return Err(fail(format!(
                        "plaintext for level {}, ciphertext on level {}",
                        levels - p.depth(),
                        levels - a.depth
                    )));
                }
                let bits = params.modulus_bit_count(p.depth());
                if let Some(why) = unencodable(p, bits).filter(|_| encodable) {
                    return Err(fail(format!(
                        "@{} = {} {why}; recompile it without a pinned chain \
                         (the first prime is sized for every constant) or with a smaller scale",
                        id.0,
                        p.max_abs()
                    )));
                }
                if matches!(instr.op, HeOp::AddPlain(..)) {
                    if !are_close(a.scale, p.scale()) {
                        return Err(fail(format!(
                            "plaintext at scale {}, ciphertext at {}",
                            p.scale(),
                            a.scale
                        )));
                    }
                    Some(a)
                } else {
                    Some(Meta {
                        scale: a.scale * p.scale(),
                        ..a
                    })
                }
            }
            HeOp::Mul(a, b) | HeOp::Square(a @ b) => {
                let (a, b) = same_level(get(a)?, get(b)?)?;
                if a.size != 2 || b.size != 2 {
                    return Err(fail("an operand is not relinearized".into()));
                }
                Some(Meta {
                    scale: a.scale * b.scale,
                    size: 3,
                    ..a
                })
            }
            HeOp::Relinearize(a) => {
                let a = get(a)?;
                if a.size != 3 {
                    return Err(fail("nothing to relinearize (size 2)".into()));
                }
                Some(Meta { size: 2, ..a })
            }
            HeOp::Rescale(a) | HeOp::ModSwitch(a) => {
                let a = get(a)?;
                let Some(q) = params.rescale_prime(a.depth) else {
                    return Err(fail("no level left".into()));
                };
                let scale = if matches!(instr.op, HeOp::Rescale(_)) {
                    a.scale / q as f64
                } else {
                    a.scale
                };
                Some(Meta {
                    depth: a.depth + 1,
                    scale,
                    ..a
                })
            }
            HeOp::Rotate(a, _) => {
                let a = get(a)?;
                if a.size != 2 {
                    return Err(fail("rotating a size-3 ciphertext".into()));
                }
                Some(a)
            }
            HeOp::Output { value, .. } => {
                if get(value)?.size != 2 {
                    return Err(fail("an output is not relinearized".into()));
                }
                None
            }
        };
        if let Some(m) = meta {
            // SEAL refuses a scale that no longer fits the modulus.
            if m.scale.log2() >= f64::from(params.modulus_bit_count(m.depth)) {
                return Err(fail(format!(
                    "scale 2^{:.1} out of bounds for the {}-bit modulus left",
                    m.scale.log2(),
                    params.modulus_bit_count(m.depth)
                )));
            }
        }
        metas.push(meta);
    }
    Ok(metas)
}
