//! The cost model: per-layer op counts, plaintext operands, peak live
//! ciphertexts, multiplicative depth, and a predicted time from per-op costs.

use serde::{Serialize, Serializer};

use hepack_ir::LayerName;

use crate::fuse::{FusedCounts, Fusion};
use crate::program::{kind_index, HeOp, Program, KINDS};

/// Ops per kind, indexed like [`KINDS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts(pub [u64; KINDS.len()]);

impl OpCounts {
    /// Count of one kind by name.
    pub fn get(&self, kind: &str) -> u64 {
        kind_index(kind).map_or(0, |i| self.0[i])
    }

    /// Homomorphic operations: everything but encryption and output (which
    /// are the client's and free, respectively).
    pub fn he_ops(&self) -> u64 {
        self.0[1..KINDS.len() - 1].iter().sum()
    }

    fn add(&mut self, other: &OpCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }
}

impl Serialize for OpCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        for (k, v) in KINDS.iter().zip(self.0) {
            if v > 0 {
                map.serialize_entry(k, &v)?;
            }
        }
        map.end()
    }
}

/// A linear combination at N = 16384 with 8 levels, top level, on the
/// 2-core development machine, per call and per term, in milliseconds
/// (`hepack calibrate --poly-degree 16384 --levels 8`).
const COMBINATION_MS: (f64, f64) = (1.14, 0.204);

/// A hoisted rotation and a decomposition at N = 16384 with 8 levels, top
/// level, in milliseconds: the default rotation's 15 ms times the ratios
/// `hepack calibrate --poly-degree 16384 --levels 8` measured (19.8 and
/// 22.6 ms against SEAL's 31.4 ms rotation, on a slower day of the same
/// machine).
const HOISTED_MS: (f64, f64) = (15.0 * 19.8 / 31.4, 15.0 * 22.6 / 31.4);

/// Encoding a weight that differs from slot to slot at N = 16384, top
/// level, in milliseconds (`hepack calibrate --poly-degree 16384 --levels
/// 8`, the 2-core development machine: 2.9 ms).
const ENCODE_VECTOR_MS: f64 = 2.9;

/// What a term weighted by a slot diagonal costs beyond a scalar's at
/// N = 16384, top level, in milliseconds: `hepack calibrate --poly-degree
/// 16384 --levels 8` timed a `weighted_term` at 0.278 ms, against
/// [`COMBINATION_MS`]' 0.204 per scalar term.
const WEIGHTED_TERM_EXTRA_MS: f64 = 0.278 - COMBINATION_MS.1;

/// Seconds per term of a combination computed in a group of `members` (1:
/// on its own), from a term's time `alone` and in a `full` group of
/// [`GROUP_OUTPUTS`](crate::fuse::GROUP_OUTPUTS): a term costs
/// `a + b / members`, its product paid per member and its source's load `b`
/// shared by the group.
pub fn term_in_group(alone: f64, full: f64, members: usize) -> f64 {
    if members <= 1 {
        return alone;
    }
    let g = crate::fuse::GROUP_OUTPUTS as f64;
    let members = members.clamp(1, crate::fuse::GROUP_OUTPUTS) as f64;
    let shared = (alone - full) * g / (g - 1.0);
    alone - shared + shared / members
}

/// Single-thread seconds per op kind.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpTimes {
    /// Where the numbers come from.
    pub source: String,
    /// Seconds, indexed like [`KINDS`].
    pub seconds: [f64; KINDS.len()],
    /// Seconds of one linear combination the runtime computes in one call
    /// ([`crate::fuse`]), besides its terms'.
    pub combination: f64,
    /// Seconds per term of a linear combination, on average as the
    /// program's combinations run (alone or in groups): what the floor
    /// prices.
    pub combination_term: f64,
    /// Seconds per term of a combination computed on its own, for
    /// scheduling programs not built yet ([`OpTimes::term_in_group`]).
    pub combination_term_alone: f64,
    /// Seconds per term of a combination computed in a full group of
    /// [`crate::fuse::GROUP_OUTPUTS`], each source loaded once for all of
    /// them.
    pub combination_term_grouped: f64,
    /// Seconds of one hoisted rotation, given its operand's decomposition.
    pub hoisted_rotate: f64,
    /// Seconds of one decomposition for hoisted rotations.
    pub decompose: f64,
    /// Seconds to encode a vector weight (a slot diagonal): part of a
    /// `mul_plain`'s time that a fused product still pays.
    pub encode_vector: f64,
    /// Seconds a term weighted by a slot diagonal costs beyond a scalar's
    /// (`combination_term`): the plaintext it reads too.
    pub vector_term_extra: f64,
}

impl OpTimes {
    /// Seconds per term of a combination computed in a group of `members`
    /// (1: on its own), by [`term_in_group`].
    pub fn term_in_group(&self, members: usize) -> f64 {
        term_in_group(
            self.combination_term_alone,
            self.combination_term_grouped,
            members,
        )
    }

    /// Single-thread seconds of the server's work: every op but encryption
    /// (the client's) at its time, except the products and sums folded into
    /// linear combinations, which are priced per combination and per term,
    /// and the hoisted rotations, priced per rotation and per decomposition.
    /// With no fusion, this is SEAL's op-by-op floor.
    pub fn server_seconds(&self, counts: &OpCounts, fused: FusedCounts) -> f64 {
        let k = |name: &str| kind_index(name).expect("a kind of KINDS");
        let unfused: f64 = counts
            .0
            .iter()
            .zip(self.seconds)
            .skip(1)
            .map(|(&n, t)| n as f64 * t)
            .sum();
        unfused
            - fused.products as f64 * self.seconds[k("mul_plain")]
            - fused.sums as f64 * self.seconds[k("add")]
            + fused.combinations as f64 * self.combination
            + fused.terms() as f64 * self.combination_term
            - fused.hoisted_rotations as f64 * (self.seconds[k("rotate")] - self.hoisted_rotate)
            + fused.decompositions as f64 * self.decompose
            + fused.vector_products as f64 * (self.encode_vector + self.vector_term_extra)
    }
}

impl Default for OpTimes {
    /// SEAL's single-thread times at N = 16384 with 8 levels on the 2-core
    /// development machine (DESIGN.md §4); a plaintext operand's scalar encode
    /// (31 µs) is included in `add_plain` and `mul_plain`.
    fn default() -> Self {
        let ms = 1e-3;
        OpTimes {
            source: "SEAL 4.0, N=16384, L=8, one thread (DESIGN.md §4)".into(),
            seconds: [
                11.6 * ms,           // encrypt_input
                0.29 * ms,           // add
                0.29 * ms,           // sub
                (0.29 + 0.031) * ms, // add_plain
                (0.63 + 0.031) * ms, // mul_plain
                1.4 * ms,            // mul
                1.4 * ms,            // square
                15.0 * ms,           // relinearize
                2.4 * ms,            // rescale
                2.4 * ms,            // mod_switch
                15.0 * ms,           // rotate
                0.0,                 // output
            ],
            combination: COMBINATION_MS.0 * ms,
            combination_term: COMBINATION_MS.1 * ms,
            combination_term_alone: COMBINATION_MS.1 * ms,
            // Measured before the runtime grouped combinations: a term in a
            // group is priced as one on its own.
            combination_term_grouped: COMBINATION_MS.1 * ms,
            hoisted_rotate: HOISTED_MS.0 * ms,
            decompose: HOISTED_MS.1 * ms,
            encode_vector: ENCODE_VECTOR_MS * ms,
            vector_term_extra: WEIGHTED_TERM_EXTRA_MS * ms,
        }
    }
}

/// One layer's share.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerCost {
    /// The IR layer.
    pub layer: String,
    /// Ops per kind.
    pub ops: OpCounts,
    /// [`OpCounts::he_ops`].
    pub he_ops: u64,
    /// Ops a lowering without abstract values would have emitted that were not:
    /// products with zero weights, arithmetic on public constants, dead values.
    pub removed_by_dce: u64,
}

/// The whole program's cost.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cost {
    /// Per layer, in program order (layers with no ops left out).
    pub layers: Vec<LayerCost>,
    /// All layers.
    pub total: OpCounts,
    /// [`OpCounts::he_ops`] of the total.
    pub he_ops: u64,
    /// Ops removed by dead-ciphertext elimination, all layers.
    pub removed_by_dce: u64,
    /// Distinct plaintext operands the ops read.
    pub plaintexts: usize,
    /// Most ciphertexts alive at once, running the ops in program order and
    /// freeing each after its last use (`None` when costed without building
    /// the program).
    pub peak_ciphertexts: Option<usize>,
    /// Bytes those live ciphertexts hold at the peak, each at its own level
    /// (`None` when costed without building the program).
    pub peak_bytes: Option<u64>,
    /// Levels the program consumes: the most rescales and modulus switches
    /// on a path from an input to an output (each product on the path is
    /// followed by one rescale, so this is also its multiplicative depth).
    pub depth: u32,
    /// `mul_plain`s the runtime computes inside the linear combinations
    /// that read them.
    pub fused_products: u64,
    /// `add`s the runtime folds into linear combinations.
    pub fused_sums: u64,
    /// Linear combinations the runtime computes, one kernel call each.
    pub combinations: u64,
    /// Rotations the runtime computes from a decomposition shared with
    /// other rotations of their operand (hoisting).
    pub hoisted_rotations: u64,
    /// Decompositions those rotations share.
    pub decompositions: u64,
    /// Σ count × single-thread op time, server side (encryption excluded),
    /// as the runtime executes the ops ([`OpTimes::server_seconds`]).
    pub predicted_seconds: f64,
    /// The same ops priced one by one at SEAL's times, nothing fused: the
    /// floor of an op-by-op executor.
    pub seal_seconds: f64,
    /// The per-op times used.
    pub op_times: OpTimes,
}

/// Ops per layer (indexed like [`Program::layers`]).
pub fn per_layer(program: &Program) -> Vec<OpCounts> {
    let mut counts = vec![OpCounts::default(); program.layers.len()];
    for instr in &program.instrs {
        counts[instr.layer.0 as usize].0[instr.op.kind_index()] += 1;
    }
    counts
}

/// Per layer, how many fewer ops `counts` has than `naive` (what a lowering
/// without abstract values or dead-ciphertext elimination emits).
pub fn removed_ops(counts: &[OpCounts], naive: &[OpCounts]) -> Vec<u64> {
    counts
        .iter()
        .enumerate()
        .map(|(l, c)| {
            let naive: u64 = naive.get(l).map_or(0, |n| n.0.iter().sum());
            naive.saturating_sub(c.0.iter().sum())
        })
        .collect()
}

/// Cost a lowered program (its [`Program::removed_by_dce`] says what
/// elimination removed per layer).
pub fn cost(program: &Program, times: &OpTimes) -> Cost {
    let per_layer = per_layer(program);
    let mut depth = vec![0u32; program.instrs.len()];
    let mut plain_used = vec![false; program.plains.len()];
    for (i, instr) in program.instrs.iter().enumerate() {
        let d = instr
            .op
            .operands()
            .map(|v| depth[v.0 as usize])
            .max()
            .unwrap_or(0);
        let drops_level = matches!(instr.op, HeOp::Rescale(_) | HeOp::ModSwitch(_));
        depth[i] = d + u32::from(drops_level);
        if let Some(p) = instr.op.plain() {
            plain_used[p.0 as usize] = true;
        }
    }
    let (peak, peak_bytes) = peak_memory(program);
    let out_depth = program
        .instrs
        .iter()
        .filter_map(|instr| match instr.op {
            HeOp::Output { value, .. } => Some(depth[value.0 as usize]),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let plaintexts = plain_used.iter().filter(|&&u| u).count();
    // What the runtime fuses (nothing when the levels do not check).
    let fused = crate::levels::check(program)
        .map(|metas| Fusion::of(program, &metas).counts())
        .unwrap_or_default();
    Cost::from_counts(
        &program.layers,
        &per_layer,
        &program.removed_by_dce,
        plaintexts,
        Some(peak),
        out_depth,
        times,
    )
    .with_peak_bytes(peak_bytes)
    .with_fused(fused, times)
}

/// Most ciphertexts alive at once running the ops in program order, each
/// freed after its last use, and the most bytes they hold at once: a
/// ciphertext of size `s` at a level with `k` primes left holds `s · N · k`
/// 64-bit words, as in SEAL. `None` bytes when the levels do not check.
fn peak_memory(program: &Program) -> (usize, Option<u64>) {
    let metas = crate::levels::check(program).ok();
    let p = &program.params;
    let bytes = |i: usize| -> u64 {
        metas
            .as_ref()
            .and_then(|m| m[i])
            .map_or(0, |m| p.ciphertext_bytes(m.depth, m.size))
    };
    let last = crate::order::last_uses(program);
    let (mut alive, mut peak) = (0usize, 0usize);
    let (mut held, mut peak_bytes) = (0u64, 0u64);
    for (i, instr) in program.instrs.iter().enumerate() {
        if instr.op.defines_value() {
            alive += 1;
            held += bytes(i);
            peak = peak.max(alive);
            peak_bytes = peak_bytes.max(held);
        }
        for v in crate::order::freed_by(program, &last, i) {
            alive -= 1;
            held -= bytes(v.0 as usize);
        }
        // A value nothing reads is freed at once.
        if instr.op.defines_value() && last[i].is_none() {
            alive -= 1;
            held -= bytes(i);
        }
    }
    (peak, metas.map(|_| peak_bytes))
}

impl Cost {
    fn with_peak_bytes(mut self, bytes: Option<u64>) -> Cost {
        self.peak_bytes = bytes;
        self
    }

    /// The same cost with `fused` products and sums priced as the runtime
    /// executes them.
    pub fn with_fused(mut self, fused: FusedCounts, times: &OpTimes) -> Cost {
        self.fused_products = fused.products;
        self.fused_sums = fused.sums;
        self.combinations = fused.combinations;
        self.hoisted_rotations = fused.hoisted_rotations;
        self.decompositions = fused.decompositions;
        self.predicted_seconds = times.server_seconds(&self.total, fused);
        self
    }

    /// Put a cost together from per-layer counts and ops removed (indexed like `layers`).
    pub fn from_counts(
        layers: &[LayerName],
        per_layer: &[OpCounts],
        removed: &[u64],
        plaintexts: usize,
        peak_ciphertexts: Option<usize>,
        depth: u32,
        times: &OpTimes,
    ) -> Cost {
        let mut total = OpCounts::default();
        let mut rows = Vec::new();
        let mut removed_total = 0;
        for (l, counts) in per_layer.iter().enumerate() {
            total.add(counts);
            let removed = removed.get(l).copied().unwrap_or(0);
            removed_total += removed;
            if counts.0.iter().sum::<u64>() == 0 && removed == 0 {
                continue;
            }
            rows.push(LayerCost {
                layer: layers[l].to_string(),
                ops: *counts,
                he_ops: counts.he_ops(),
                removed_by_dce: removed,
            });
        }
        let predicted_seconds = times.server_seconds(&total, FusedCounts::default());
        Cost {
            layers: rows,
            he_ops: total.he_ops(),
            total,
            removed_by_dce: removed_total,
            plaintexts,
            peak_ciphertexts,
            peak_bytes: None,
            depth,
            fused_products: 0,
            hoisted_rotations: 0,
            decompositions: 0,
            fused_sums: 0,
            combinations: 0,
            predicted_seconds,
            seal_seconds: predicted_seconds,
            op_times: times.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fused_product_by_a_diagonal_still_pays_its_encoding_and_its_plaintext_read() {
        let times = OpTimes {
            encode_vector: 3e-3,
            vector_term_extra: 1e-4,
            ..OpTimes::default()
        };
        let mut counts = OpCounts::default();
        counts.0[kind_index("mul_plain").unwrap()] = 2;
        counts.0[kind_index("add").unwrap()] = 1;
        let scalar = FusedCounts {
            products: 2,
            sums: 1,
            combinations: 1,
            ..FusedCounts::default()
        };
        let vector = FusedCounts {
            vector_products: 2,
            ..scalar
        };
        let more = times.server_seconds(&counts, vector) - times.server_seconds(&counts, scalar);
        assert!((more - 2.0 * (3e-3 + 1e-4)).abs() < 1e-12, "{more}");
    }
}
