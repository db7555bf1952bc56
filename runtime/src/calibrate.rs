//! Single-thread SEAL op times on this machine, per level, for the cost
//! model and the executor's floor ratio. `hepack calibrate` measures them
//! for a program's parameters and stores them in a JSON file keyed by N and
//! the number of levels; `hepack inspect` and `hepack run` read it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use hepack_backend::cost::OpTimes;
use hepack_backend::program::{kind_index, HeOp, Plain, KINDS};
use hepack_backend::{CkksParams, Program};
use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::seal::{
    Ciphertext, Encoder, Encryptor, Evaluator, Kernel, KeyGenerator, MemoryPool, Terms, Weight,
};
use hepack_backend::fuse::GROUP_OUTPUTS;

/// Op times for one parameter set: `seconds[kind][depth]`, kinds as
/// [`KINDS`], depth = levels consumed by the operand.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LevelTimes {
    /// Polynomial degree.
    pub degree: u32,
    /// Rescaling levels of the chain.
    pub levels: u32,
    /// Single-thread seconds per kind (by name) per depth.
    pub seconds: BTreeMap<String, Vec<f64>>,
    /// Scalar encode of a weight, per depth (part of add_plain/mul_plain).
    pub encode_scalar: Vec<f64>,
    /// A linear combination `Σ wᵢ·xᵢ` in one kernel call, per depth: the
    /// call, besides its terms (absent from calibrations made before the
    /// runtime computed whole combinations).
    #[serde(default)]
    pub combination: Vec<f64>,
    /// The same, per term.
    #[serde(default)]
    pub combination_term: Vec<f64>,
    /// Per term of a group of [`GROUP_OUTPUTS`] combinations over the same
    /// sources computed in one call, each source loaded once for all of
    /// them, the call's own work included, per depth (absent from
    /// calibrations made before the runtime grouped combinations).
    #[serde(default)]
    pub combination_term_grouped: Vec<f64>,
    /// One decomposition for hoisted rotations, per depth (absent from
    /// calibrations made before the runtime hoisted rotations).
    #[serde(default)]
    pub decompose: Vec<f64>,
    /// One hoisted rotation given the decomposition, per depth.
    #[serde(default)]
    pub hoisted_rotate: Vec<f64>,
    /// Encoding a weight that differs from slot to slot (a diagonal), per
    /// depth: part of a `mul_plain` by one, as `encode_scalar` is of a
    /// scalar's.
    #[serde(default)]
    pub encode_vector: Vec<f64>,
    /// Per term of a sum weighted by slot diagonals (the weighted-sum
    /// kernel, diagonal packing's `Σ_b d_b ⊙ rot(x, b)`), the plaintexts
    /// already encoded, per depth (absent from calibrations made before
    /// the runtime had the kernel: such a term is then priced as a scalar
    /// one).
    #[serde(default)]
    pub weighted_term: Vec<f64>,
}

impl LevelTimes {
    /// The key the file stores this under.
    pub fn key(degree: u32, levels: u32) -> String {
        format!("N={degree},L={levels}")
    }

    /// Per-kind times weighted by the depths `program`'s ops actually run
    /// at, so that Σ count × time is the level-aware single-thread floor.
    pub fn op_times_for(&self, program: &Program) -> OpTimes {
        let metas = hepack_backend::levels::check(program).ok();
        let fusion = metas
            .as_ref()
            .map(|m| hepack_backend::fuse::Fusion::of(program, m))
            .unwrap_or_default();
        let mut total = [0.0f64; KINDS.len()];
        let mut count = [0u64; KINDS.len()];
        // Combinations: (seconds, count) of their calls and of their terms;
        // hoisted rotations: of one and of a decomposition (counted per
        // rotation: a decomposition's depth is its rotations').
        let (mut calls, mut terms) = ((0.0, 0u64), (0.0, 0u64));
        // The same terms alone and in a full group, for scheduling.
        let (mut alone, mut full) = (0.0, 0.0);
        // Each fused sum's group size: a lazy sum's is its combination's,
        // and a reader comes after what it reads.
        let mut outputs = vec![1usize; program.instrs.len()];
        for (i, instr) in program.instrs.iter().enumerate().rev() {
            if fusion.sum.get(i) != Some(&true) {
                continue;
            }
            if !fusion.lazy[i] {
                let g = fusion.group[i];
                if g != hepack_backend::fuse::NO_GROUP {
                    outputs[i] = fusion.groups[g as usize].len();
                }
            }
            for v in instr.op.operands() {
                if fusion.lazy[v.0 as usize] {
                    outputs[v.0 as usize] = outputs[i];
                }
            }
        }
        let (mut hoisted, mut split_off) = ((0.0, 0u64), (0.0, 0u64));
        let (mut encodes, mut weighted) = ((0.0, 0u64), (0.0, 0u64));
        for (i, instr) in program.instrs.iter().enumerate() {
            let k = instr.op.kind_index();
            // The operand's depth decides the cost; a fresh input is at 0.
            let depth = instr
                .op
                .operands()
                .next()
                .and_then(|v| metas.as_ref().and_then(|m| m[v.0 as usize]))
                .map_or(0, |m| m.depth as usize);
            total[k] += match instr.op {
                HeOp::MulPlain(_, p) | HeOp::AddPlain(_, p)
                    if matches!(program.plains[p.0 as usize], Plain::Vector { .. }) =>
                {
                    self.time(k, depth) - at(&self.encode_scalar, depth)
                        + at(&self.encode_vector, depth)
                }
                _ => self.time(k, depth),
            };
            count[k] += 1;
            if fusion.vector_product.get(i) == Some(&true) {
                encodes.0 += at(&self.encode_vector, depth);
                encodes.1 += 1;
                // What a diagonal's term costs beyond a scalar's.
                let scalar_term = self.combination_time(depth, 1).1;
                let term = self.weighted_term.get(depth).or(self.weighted_term.last());
                weighted.0 += term.map_or(0.0, |t| t - scalar_term);
                weighted.1 += 1;
            }
            if fusion.hoisted.get(i) == Some(&true) {
                let (one, split) = self.hoisted_time(depth);
                hoisted.0 += one;
                hoisted.1 += 1;
                split_off.0 += split;
                split_off.1 += 1;
            }
            if fusion.sum.get(i) == Some(&true) {
                let (call, term) = self.combination_time(depth, outputs[i]);
                // Each fused sum adds a term; a combination has one more.
                let own = if fusion.lazy[i] { 1 } else { 2 };
                // Calibrated at two polynomials; a sum of unrelinearized
                // squares streams three.
                let polys = metas
                    .as_ref()
                    .and_then(|m| m[i])
                    .map_or(2.0, |m| f64::from(m.size));
                terms.0 += own as f64 * term * polys / 2.0;
                terms.1 += own;
                alone += own as f64 * self.combination_time(depth, 1).1;
                full += own as f64 * self.combination_time(depth, GROUP_OUTPUTS).1;
                if !fusion.lazy[i] {
                    calls.0 += call;
                    calls.1 += 1;
                }
            }
        }
        let mut seconds = [0.0; KINDS.len()];
        for k in 0..KINDS.len() {
            seconds[k] = if count[k] > 0 {
                total[k] / count[k] as f64
            } else {
                self.time(k, 0)
            };
        }
        let mean = |(t, n): (f64, u64), at_top: f64| if n > 0 { t / n as f64 } else { at_top };
        let (call, term) = self.combination_time(0, 1);
        let (one, split) = self.hoisted_time(0);
        OpTimes {
            source: format!(
                "hepack calibrate on this machine, N={}, L={}, one thread, level-weighted",
                self.degree, self.levels
            ),
            seconds,
            combination: mean(calls, call),
            combination_term: mean(terms, term),
            combination_term_alone: mean((alone, terms.1), term),
            combination_term_grouped: mean(
                (full, terms.1),
                self.combination_time(0, GROUP_OUTPUTS).1,
            ),
            hoisted_rotate: mean(hoisted, one),
            decompose: mean(split_off, split),
            encode_vector: mean(encodes, at(&self.encode_vector, 0)),
            vector_term_extra: mean(
                weighted,
                self.weighted_term
                    .first()
                    .map_or(0.0, |t| t - self.combination_time(0, 1).1),
            ),
        }
    }

    /// A hoisted rotation at `depth`: (one rotation, one decomposition). A
    /// calibration without them prices a rotation as SEAL's and the
    /// decomposition as free, the runtime's work before hoisting.
    fn hoisted_time(&self, depth: usize) -> (f64, f64) {
        let rotate = self.time(kind_index("rotate").expect("a kind"), depth);
        match (
            self.hoisted_rotate
                .get(depth)
                .or(self.hoisted_rotate.last()),
            self.decompose.get(depth).or(self.decompose.last()),
        ) {
            (Some(&one), Some(&split)) => (one, split),
            _ => (rotate, 0.0),
        }
    }

    /// A linear combination at `depth` in a group of `outputs`: (per call,
    /// per term). A term costs `a + b/outputs` (the loads shared, the
    /// products not) through the ungrouped and the full group's times; a
    /// calibration without it prices a term as the `mul_plain` and `add` it
    /// replaces.
    fn combination_time(&self, depth: usize, outputs: usize) -> (f64, f64) {
        let at = |v: &Vec<f64>| v.get(depth).or(v.last()).copied();
        match (at(&self.combination), at(&self.combination_term)) {
            (Some(call), Some(term)) => {
                let term = match at(&self.combination_term_grouped) {
                    Some(full) => hepack_backend::cost::term_in_group(term, full, outputs),
                    None => term,
                };
                (call, term)
            }
            _ => {
                let k = |name| kind_index(name).expect("a kind");
                (
                    0.0,
                    self.time(k("mul_plain"), depth) + self.time(k("add"), depth),
                )
            }
        }
    }

    fn time(&self, kind: usize, depth: usize) -> f64 {
        let base = self.seconds.get(KINDS[kind]).map_or(0.0, |v| at(v, depth));
        match KINDS[kind] {
            "add_plain" | "mul_plain" => base + at(&self.encode_scalar, depth),
            _ => base,
        }
    }
}

/// `times[depth]`, the deepest measured for a deeper one, 0 if none.
fn at(times: &[f64], depth: usize) -> f64 {
    times.get(depth).or(times.last()).copied().unwrap_or(0.0)
}

/// The calibration file: entries by [`LevelTimes::key`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Calibration {
    /// Measured parameter sets.
    pub entries: BTreeMap<String, LevelTimes>,
}

impl Calibration {
    /// Reads `path`; a missing file is an empty calibration.
    pub fn load(path: &Path) -> Result<Calibration, RuntimeError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| RuntimeError::File {
                what: "calibration file",
                why: format!(
                    "{}: {e}; delete it and run `hepack calibrate` again",
                    path.display()
                ),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Calibration::default()),
            Err(e) => Err(RuntimeError::File {
                what: "calibration file",
                why: format!("{}: {e}", path.display()),
            }),
        }
    }

    /// The entry for `params`, if measured.
    pub fn get(&self, params: &CkksParams) -> Option<&LevelTimes> {
        self.entries
            .get(&LevelTimes::key(params.degree, params.levels()))
    }
}

/// The weight of timed products (SEAL's times do not depend on it).
const WEIGHT: f64 = 1.0;

/// Terms of the long linear combination timed: 32 ciphertexts at N = 16384
/// and the top level are 80 MiB, far more than a cache.
const COMBINATION_TERMS: usize = 32;

/// Measures every op kind at every depth of `params`' chain, each the median
/// of `reps` single-thread runs.
pub fn measure(params: &CkksParams, reps: usize) -> Result<LevelTimes, RuntimeError> {
    let reps = reps.max(1);
    let context = crate::keys::context(params)?;
    let keygen = KeyGenerator::new(&context)?;
    let relin = keygen.relin_keys(false)?;
    let galois = keygen.galois_keys(&[1], false)?;
    let secret = keygen.secret_key()?;
    let encoder = Encoder::new(&context)?;
    let encryptor = Encryptor::with_secret(&context, &secret)?;
    let evaluator = Evaluator::new(&context)?;
    let pool = MemoryPool::new()?;
    let mem = Some(&pool);
    let slots = context.slots();
    let values: Vec<f64> = (0..slots).map(|i| (i % 17) as f64 / 17.0 - 0.5).collect();
    let scale = 2f64.powi(params.scale_bits as i32);
    let levels = params.levels();
    let mut seconds: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut encode_scalar = Vec::new();
    let mut combination = Vec::new();
    let mut combination_term = Vec::new();
    let mut combination_term_grouped = Vec::new();
    let mut decompose = Vec::new();
    let mut hoisted_rotate = Vec::new();
    let mut encode_vector = Vec::new();
    let mut weighted_term = Vec::new();
    let mut record = |kind: &str, t: f64| seconds.entry(kind.to_string()).or_default().push(t);
    for depth in 0..=levels {
        let id = context.parms_id(depth).expect("within the chain");
        let top = context.parms_id(0).expect("within the chain");
        let plain = encoder.encode(&values, &top, scale, mem)?;
        let fresh = || -> Result<Ciphertext, RuntimeError> {
            let mut c = encryptor.encrypt_symmetric(&plain, false, mem)?;
            for _ in 0..depth {
                evaluator.mod_switch_to_next_inplace(&mut c, mem)?;
            }
            Ok(c)
        };
        let x = fresh()?;
        // A second encryption of the same values: `x − y` is not the
        // transparent zero that SEAL refuses to return.
        let y = fresh()?;
        // Modulus bits left here (the special prime is not part of a
        // ciphertext's): SEAL refuses a product whose scale does not fit,
        // so the weight's scale is cut where Δ² would not, and a product of
        // two ciphertexts, which never fits on the last level, costs nothing
        // there (a program cannot contain one).
        let chain = &params.chain_bits[..params.chain_bits.len() - 1];
        let bits_left: u32 = chain[..chain.len() - depth as usize].iter().sum();
        let weight_bits = params
            .scale_bits
            .min(bits_left.saturating_sub(params.scale_bits + 1));
        let products_fit = 2 * params.scale_bits < bits_left;
        // 1, not a fraction: a weight's scale can be cut to 2^0 on the last
        // level of a chain whose first prime barely exceeds Δ, where a
        // fraction would round to the zero SEAL refuses to multiply by.
        let weight = encoder.encode_scalar(WEIGHT, &id, 2f64.powi(weight_bits as i32), mem)?;
        let same_scale = encoder.encode_scalar(0.37, &id, x.scale(), mem)?;
        // A diagonal's encoding, at a weight's scale.
        encode_vector.push(median(reps, || {
            let t = Instant::now();
            encoder.encode(&values, &id, 2f64.powi(weight_bits as i32), mem)?;
            Ok(t.elapsed().as_secs_f64())
        })?);
        let copy = |c: &Ciphertext| context.copy(c);
        // Inputs are only ever encrypted on the top level.
        let encrypt = if depth == 0 {
            median(reps, || {
                let t = Instant::now();
                encryptor.encrypt_symmetric(&plain, false, mem)?;
                Ok(t.elapsed().as_secs_f64())
            })?
        } else {
            0.0
        };
        record("encrypt_input", encrypt);
        encode_scalar.push(median(reps, || {
            let t = Instant::now();
            encoder.encode_scalar(0.37, &id, scale, mem)?;
            Ok(t.elapsed().as_secs_f64())
        })?);

        let timed = |op: &dyn Fn(&mut Ciphertext) -> Result<(), crate::seal::SealError>| {
            median(reps, || {
                let mut c = copy(&x)?;
                let t = Instant::now();
                op(&mut c)?;
                Ok(t.elapsed().as_secs_f64())
            })
        };
        let add = timed(&|c| evaluator.add_inplace(c, &x))?;
        record("add", add);
        // Σ wᵢ·xᵢ over distinct ciphertexts, as many as the operand cache
        // cannot hold at the top level, and over two; the weight is the
        // executor's cached scalar, so its encoding is not part of the op.
        let scalar = encoder.scalar(WEIGHT, &id, 2f64.powi(weight_bits as i32), mem)?;
        let many = (0..COMBINATION_TERMS)
            .map(|_| fresh())
            .collect::<Result<Vec<_>, _>>()?;
        let combine = |n: usize| {
            let terms: Vec<_> = many[..n].iter().map(|x| (x, Some(&scalar))).collect();
            median(reps, || {
                let t = Instant::now();
                context.linear_combination(&terms)?;
                Ok(t.elapsed().as_secs_f64())
            })
        };
        // A term's time: the difference of a long and a short call, per term.
        let per_term = |two: f64, all: f64| ((all - two) / (COMBINATION_TERMS - 2) as f64).max(0.0);
        let (two, all) = (combine(2)?, combine(COMBINATION_TERMS)?);
        let term = per_term(two, all);
        combination.push((two - 2.0 * term).max(0.0));
        combination_term.push(term);
        // The same terms for a full group of outputs in one call, per
        // output's term, the call's own work shared among its 256 terms (a
        // difference of two such calls is mostly noise at one repetition).
        let refs: Vec<&Ciphertext> = many.iter().collect();
        let outputs: Vec<Terms> = (0..GROUP_OUTPUTS)
            .map(|_| (0..COMBINATION_TERMS).map(|i| (i, Some(&scalar))).collect())
            .collect();
        let group = median(reps, || {
            let t = Instant::now();
            context.linear_combinations(&refs, &outputs, Kernel::Fastest)?;
            Ok(t.elapsed().as_secs_f64())
        })?;
        combination_term_grouped.push(group / (COMBINATION_TERMS * GROUP_OUTPUTS) as f64);
        drop(outputs);
        drop(refs);
        // The same ciphertexts weighted by distinct diagonals, as the
        // executor sums them (encoded beforehand, as a warm cache holds them).
        let diagonals = (0..COMBINATION_TERMS)
            .map(|t| {
                let d: Vec<f64> = values.iter().map(|v| v * (t + 1) as f64 / 64.0).collect();
                encoder.encode(&d, &id, 2f64.powi(weight_bits as i32), mem)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let weigh = |n: usize| {
            let terms: Vec<_> = many[..n]
                .iter()
                .zip(&diagonals)
                .map(|(x, d)| (x, Weight::Plain(d)))
                .collect();
            median(reps, || {
                let t = Instant::now();
                context.weighted_sum(&terms, Kernel::Fastest)?;
                Ok(t.elapsed().as_secs_f64())
            })
        };
        let (two, all) = (weigh(2)?, weigh(COMBINATION_TERMS)?);
        weighted_term.push(per_term(two, all));
        drop(diagonals);
        drop(many);
        record("sub", timed(&|c| evaluator.sub_inplace(c, &y))?);
        record(
            "add_plain",
            timed(&|c| evaluator.add_plain_inplace(c, &same_scale))?,
        );
        record(
            "mul_plain",
            timed(&|c| evaluator.multiply_plain_inplace(c, &weight, mem))?,
        );
        let (mul, square, relin_t) = if products_fit {
            (
                timed(&|c| evaluator.multiply_inplace(c, &x, mem))?,
                timed(&|c| evaluator.square_inplace(c, mem))?,
                median(reps, || {
                    let mut c = copy(&x)?;
                    evaluator.square_inplace(&mut c, mem)?;
                    let t = Instant::now();
                    evaluator.relinearize_inplace(&mut c, &relin, mem)?;
                    Ok(t.elapsed().as_secs_f64())
                })?,
            )
        } else {
            (0.0, 0.0, 0.0)
        };
        record("mul", mul);
        record("square", square);
        record("relinearize", relin_t);
        let last = depth == levels;
        record(
            "rescale",
            if last {
                0.0
            } else {
                median(reps, || {
                    let mut c = copy(&x)?;
                    evaluator.multiply_plain_inplace(&mut c, &weight, mem)?;
                    let t = Instant::now();
                    evaluator.rescale_to_next_inplace(&mut c, mem)?;
                    Ok(t.elapsed().as_secs_f64())
                })?
            },
        );
        record(
            "mod_switch",
            if last {
                0.0
            } else {
                timed(&|c| evaluator.mod_switch_to_next_inplace(c, mem))?
            },
        );
        record(
            "rotate",
            timed(&|c| evaluator.rotate_vector_inplace(c, 1, &galois, mem))?,
        );
        decompose.push(median(reps, || {
            let t = Instant::now();
            context.decompose(&x)?;
            Ok(t.elapsed().as_secs_f64())
        })?);
        let digits = context.decompose(&x)?;
        hoisted_rotate.push(median(reps, || {
            let t = Instant::now();
            context.rotate_hoisted(&x, &digits, 1, &galois)?;
            Ok(t.elapsed().as_secs_f64())
        })?);
        record("output", 0.0);
    }
    Ok(LevelTimes {
        degree: params.degree,
        levels,
        seconds,
        encode_scalar,
        combination,
        combination_term,
        combination_term_grouped,
        decompose,
        hoisted_rotate,
        encode_vector,
        weighted_term,
    })
}

fn median(
    reps: usize,
    mut f: impl FnMut() -> Result<f64, crate::seal::SealError>,
) -> Result<f64, RuntimeError> {
    let mut t = (0..reps).map(|_| f()).collect::<Result<Vec<_>, _>>()?;
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grouped_term_costs_between_its_two_calibrated_ends() {
        let times = LevelTimes {
            degree: 8192,
            levels: 1,
            seconds: BTreeMap::new(),
            encode_scalar: vec![],
            combination: vec![1e-3, 1e-3],
            combination_term: vec![8e-5, 4e-5],
            combination_term_grouped: vec![1e-5, 1e-5],
            decompose: vec![],
            hoisted_rotate: vec![],
            encode_vector: vec![],
            weighted_term: vec![],
        };
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(times.combination_time(0, 1).1, 8e-5));
        assert!(close(times.combination_time(0, GROUP_OUTPUTS).1, 1e-5));
        assert!(close(times.combination_time(1, GROUP_OUTPUTS).1, 1e-5));
        let half = times.combination_time(0, 4).1;
        assert!(1e-5 < half && half < 8e-5, "{half}");
        // Without a grouped calibration, a term costs the same in a group.
        let old = LevelTimes {
            combination_term_grouped: vec![],
            ..times
        };
        assert!(close(old.combination_time(0, 4).1, 8e-5));
    }
}
