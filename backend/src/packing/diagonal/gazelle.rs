//! The op counts Hunter's Table 4 formulas give under GAZELLE's packing,
//! and Artemis's Eq. (6) rotations, for a model's weights as they stand
//! (`../shared/PACKINGS.md` §1), so hepack's own counts can be read beside
//! the papers'.
//!
//! GAZELLE packs `c_n` channels of a convolution's input per ciphertext
//! (hepack follows Hunter's LeNet: `c_n = 1` for the first convolution, 2
//! after it) and a dense layer's padded vector (the longer of its input and
//! output, padded to a power of two) in one ciphertext. A
//! convolution rotates each input ciphertext to every kernel position but
//! one (internal permutations), rotates for every non-zero channel
//! diagonal of every (input, output) ciphertext pair (external
//! permutations), and multiplies each rotated input by one plaintext per
//! output channel and kernel position; a dense layer is Halevi–Shoup's
//! hybrid. A group whose weights are all zero costs nothing, which is how
//! Hunter counts its pruned models.

use hepack_ir::{Graph, LayerName, Op};
use hepack_passes::prune::linear_layers;
use serde::Serialize;

/// Perm / Mult / Add of one layer (Hunter Table 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PaperCounts {
    /// Rotations (permutations).
    pub perm: u64,
    /// Plaintext-ciphertext products.
    pub mult: u64,
    /// Ciphertext additions.
    pub add: u64,
}

/// Artemis Eq. (6) for one convolution: `(α(f² − 1) + β(c_n − 1)c_out/c_n)
/// · c_in/c_n` rotations, with `α` the kept fraction of kernel positions
/// (per input ciphertext, the centre aside) and `β` of channel diagonals,
/// as the paper writes it (`c_in/c_n` and `c_out/c_n` unrounded: with
/// nothing pruned it is GAZELLE's Perm when `c_n` divides both).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ArtemisRotations {
    /// Kept fraction of kernel positions.
    pub alpha: f64,
    /// Kept fraction of channel diagonals (1 when `c_n = 1`: there are none).
    pub beta: f64,
    /// Eq. (6), rounded to the nearest whole rotation.
    pub rotations: u64,
}

/// One linear layer's paper counts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerPaperCounts {
    /// The layer.
    pub layer: LayerName,
    /// Channels per ciphertext (`c_n`; for a dense layer, the slots of its
    /// one ciphertext: the longer side, padded).
    pub per_ct: usize,
    /// Hunter Table 4 under GAZELLE.
    pub gazelle: PaperCounts,
    /// Artemis Eq. (6) (convolutions only).
    pub artemis: Option<ArtemisRotations>,
}

/// The paper counts of every linear layer of `graph`, in order.
pub fn paper_counts(graph: &Graph) -> Vec<LayerPaperCounts> {
    let mut convs = 0;
    linear_layers(graph)
        .into_iter()
        .map(|l| match &graph.node(l.id).op {
            Op::Conv(c) => {
                let per_ct = if convs == 0 { 1 } else { 2 };
                convs += 1;
                let (gazelle, artemis) = conv_counts(&c.weight, per_ct);
                LayerPaperCounts {
                    layer: l.name,
                    per_ct,
                    gazelle,
                    artemis: Some(artemis),
                }
            }
            Op::Dense(d) => {
                let (n_i, n_o) = d.weight.dim();
                let (n_i, n_o) = (n_i.next_power_of_two(), n_o.next_power_of_two());
                let (long, short) = (n_i.max(n_o), n_i.min(n_o));
                // Diagonal k holds the weight of input i into output o
                // (`weight[[i, o]]`) with ((i − o) mod long) mod short = k.
                let mut kept = vec![false; short];
                for ((i, o), &w) in d.weight.indexed_iter() {
                    if w != 0.0 {
                        let k = (i as i64 - o as i64).rem_euclid(long as i64) as usize % short;
                        kept[k] = true;
                    }
                }
                let mult = kept.iter().filter(|&&k| k).count() as u64;
                // The partial sums fold log₂(n/n_o) times into the n_o outputs.
                let folds = if n_i > n_o {
                    (n_i / n_o).trailing_zeros() as u64
                } else {
                    0
                };
                let sum = (mult + folds).saturating_sub(1);
                LayerPaperCounts {
                    layer: l.name,
                    per_ct: long,
                    gazelle: PaperCounts {
                        perm: sum,
                        mult,
                        add: sum,
                    },
                    artemis: None,
                }
            }
            _ => unreachable!("linear_layers returns conv and dense layers only"),
        })
        .collect()
}

/// A convolution's GAZELLE counts with `cn` channels per ciphertext, and
/// Artemis's Eq. (6).
fn conv_counts(weight: &ndarray::Array4<f64>, cn: usize) -> (PaperCounts, ArtemisRotations) {
    let (c_out, c_in, kh, kw) = weight.dim();
    let (ins, outs, taps) = (c_in.div_ceil(cn), c_out.div_ceil(cn), kh * kw);
    let centre = (kh / 2) * kw + kw / 2;
    let nonzero = |co: usize, ci: usize, p: usize| {
        co < c_out && ci < c_in && weight[[co, ci, p / kw, p % kw]] != 0.0
    };
    // Internal: input ciphertext I rotated to position p when a kernel reads it there.
    let mut internal = 0u64;
    for i in 0..ins {
        for p in (0..taps).filter(|&p| p != centre) {
            if (0..c_out).any(|co| (0..cn).any(|j| nonzero(co, i * cn + j, p))) {
                internal += 1;
            }
        }
    }
    // Channel diagonal g of (I, O): kernels (I·c_n + j → O·c_n + (j + g) mod c_n).
    let diagonal = |i: usize, o: usize, g: usize, p: Option<usize>| {
        (0..cn).any(|j| {
            let (ci, co) = (i * cn + j, o * cn + (j + g) % cn);
            match p {
                Some(p) => nonzero(co, ci, p),
                None => (0..taps).any(|p| nonzero(co, ci, p)),
            }
        })
    };
    let mut external = 0u64;
    let mut mult = 0u64;
    // Output ciphertexts with a product: each sums its products once.
    let mut summed = 0u64;
    for o in 0..outs {
        let before = mult;
        for i in 0..ins {
            for g in 0..cn {
                if g > 0 && diagonal(i, o, g, None) {
                    external += 1;
                }
                mult += (0..taps).filter(|&p| diagonal(i, o, g, Some(p))).count() as u64;
            }
        }
        summed += u64::from(mult > before);
    }
    let positions = (ins * (taps - 1)) as f64;
    let diagonals = (ins * outs * (cn - 1)) as f64;
    let alpha = if positions > 0.0 {
        internal as f64 / positions
    } else {
        1.0
    };
    let beta = if diagonals > 0.0 {
        external as f64 / diagonals
    } else {
        1.0
    };
    let (f2, cn_f) = (taps as f64, cn as f64);
    let eq6 = (alpha * (f2 - 1.0) + beta * (cn_f - 1.0) * c_out as f64 / cn_f) * c_in as f64 / cn_f;
    (
        PaperCounts {
            perm: internal + external,
            mult,
            add: mult - summed,
        },
        ArtemisRotations {
            alpha,
            beta,
            rotations: eq6.round() as u64,
        },
    )
}
