//! HE-PEx's neuron permutation (P3) and mostly-zero tile pruning (P4).
//!
//! A hidden neuron between two dense layers (nothing but slot-wise ops in
//! between) can sit anywhere in its layer: moving it moves a column of the
//! first weight matrix and a row of the second, and the model computes the
//! same function. Under tile packing a weight tile costs a `mul_plain`
//! unless it is all zero, so after pruning the neurons are co-permuted so
//! that zeros gather into whole tiles: each neuron's signature is the set of
//! input chunks it reads (first layer) and output chunks it writes (second
//! layer), and neurons are grouped greedily into chunks of the tile's side
//! so that each group's union of signatures, the tiles it keeps, grows
//! least (balanced clustering on the grouped Hamming distance). A
//! permutation that keeps more tiles than none is dropped, so tile sparsity
//! never falls. The model's inputs and outputs keep their order.

use std::collections::{BTreeSet, HashMap};

use hepack_ir::{Graph, NodeId, Op};
use hepack_passes::PassError;
use serde::Serialize;

use super::units::{layer_tiles, LayerTiles};
use super::TileShape;
use crate::packing::diagonal::units::PRUNING_SLOTS;
use crate::packing::runs::compiled_layers;

/// Zero and all weight tiles of one layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TileCount {
    /// Tiles whose weights are all zero.
    pub zero: usize,
    /// Tiles the layer's matrix spans.
    pub total: usize,
}

impl std::ops::AddAssign for TileCount {
    fn add_assign(&mut self, o: TileCount) {
        self.zero += o.zero;
        self.total += o.total;
    }
}

/// One layer's tiles through P3 and P4.
#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    /// The layer.
    pub layer: String,
    /// Before permuting.
    pub before: TileCount,
    /// After permuting.
    pub permuted: TileCount,
    /// After zeroing mostly-zero tiles (P4; as permuted without it).
    pub after_p4: TileCount,
}

/// What [`permute`] did.
#[derive(Clone, Debug, Serialize)]
pub struct PermuteReport {
    /// The tile shape.
    pub tile: String,
    /// Per linear layer.
    pub layers: Vec<LayerReport>,
    /// Hidden dimensions permuted, by the layer that writes them.
    pub permuted: Vec<String>,
    /// All layers.
    pub before: TileCount,
    /// All layers, permuted.
    pub after: TileCount,
    /// All layers after P4.
    pub after_p4: TileCount,
    /// The P4 threshold, if P4 ran.
    pub p4_threshold: Option<f64>,
    /// Weights P4 zeroed.
    pub p4_zeroed_weights: usize,
}

impl std::fmt::Display for PermuteReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let frac = |c: TileCount| format!("{}/{}", c.zero, c.total);
        write!(
            f,
            "zero {} tiles: {} before, {} permuted",
            self.tile,
            frac(self.before),
            frac(self.after)
        )?;
        match self.p4_threshold {
            Some(t) => writeln!(
                f,
                ", {} after P4 at {t} ({} weights zeroed)",
                frac(self.after_p4),
                self.p4_zeroed_weights
            )?,
            None => writeln!(f)?,
        }
        for l in &self.layers {
            write!(
                f,
                "  {}: {} → {}",
                l.layer,
                frac(l.before),
                frac(l.permuted)
            )?;
            match self.p4_threshold {
                Some(_) => writeln!(f, " → {}", frac(l.after_p4))?,
                None => writeln!(f)?,
            }
        }
        if self.permuted.is_empty() {
            writeln!(f, "no hidden dimension could be permuted for the better")?;
        } else {
            writeln!(f, "permuted the neurons of {}", self.permuted.join(", "))?;
        }
        Ok(())
    }
}

/// The layers' tiles as the compiler lays them out, with `graph`'s weights.
fn tiles(graph: &Graph, shape: TileShape) -> Result<Vec<LayerTiles>, PassError> {
    compiled_layers(
        graph,
        "tile",
        |g| layer_tiles(g, shape, PRUNING_SLOTS),
        |l| &mut l.weights,
    )
}

fn count(l: &LayerTiles) -> TileCount {
    let all: BTreeSet<_> = l.cells.iter().flatten().copied().collect();
    let kept = l.kept().len();
    TileCount {
        zero: all.len() - kept,
        total: all.len(),
    }
}

/// A pair of dense layers whose hidden neurons can move: the second reads
/// the first's output through slot-wise ops only.
struct Pair {
    first: NodeId,
    second: NodeId,
}

fn pairs(graph: &Graph) -> Vec<Pair> {
    let mut out = Vec::new();
    for id in graph.topo_order() {
        if !matches!(graph.node(id).op, Op::Dense(_)) || graph.is_output(id) {
            continue;
        }
        let mut cur = id;
        let second = loop {
            let Some(u) = graph.single_user(cur) else {
                break None;
            };
            match graph.node(u).op {
                Op::Dense(_) => break Some(u),
                Op::Polynomial(_) | Op::Activation(_) | Op::Dropout { .. } | Op::Identity
                    if !graph.is_output(u) =>
                {
                    cur = u
                }
                _ => break None,
            }
        };
        if let Some(second) = second {
            out.push(Pair { first: id, second });
        }
    }
    out
}

/// A set of chunks as bits.
pub(super) type Signature = Vec<u64>;

fn bits(sig: &Signature) -> u32 {
    sig.iter().map(|w| w.count_ones()).sum()
}

fn union_growth(union: &Signature, sig: &Signature) -> u32 {
    union
        .iter()
        .zip(sig)
        .map(|(u, s)| (s & !u).count_ones())
        .sum()
}

/// Kept tiles when neurons are grouped as `groups`: per group, the chunks
/// its neurons' signatures cover.
fn kept(groups: &[Vec<usize>], sigs: &[Signature]) -> u32 {
    groups
        .iter()
        .map(|g| {
            let mut u = vec![0u64; sigs[0].len()];
            for &n in g {
                for (w, s) in u.iter_mut().zip(&sigs[n]) {
                    *w |= s;
                }
            }
            bits(&u)
        })
        .sum()
}

/// Greedy balanced clustering: groups of `size` neurons (the last may be
/// smaller), each grown from the remaining neuron with the largest
/// signature by the neuron that adds the fewest chunks to the group's union
/// (ties: the larger overlap, then the seed's order).
fn cluster(sigs: &[Signature], size: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..sigs.len()).collect();
    // SplitMix64 of (seed, neuron) breaks ties in a fixed order per seed.
    let rank = |n: usize| {
        let mut z = seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z ^ (z >> 27)
    };
    order.sort_by_key(|&n| (std::cmp::Reverse(bits(&sigs[n])), rank(n)));
    let mut left = order;
    let mut groups = Vec::new();
    while !left.is_empty() {
        let first = left.remove(0);
        let mut union = sigs[first].clone();
        let mut group = vec![first];
        while group.len() < size && !left.is_empty() {
            let (at, _) = left
                .iter()
                .enumerate()
                .min_by_key(|&(i, &n)| {
                    let overlap = bits(&sigs[n]) - union_growth(&union, &sigs[n]);
                    (
                        union_growth(&union, &sigs[n]),
                        std::cmp::Reverse(overlap),
                        i,
                    )
                })
                .expect("not empty");
            let n = left.remove(at);
            for (w, s) in union.iter_mut().zip(&sigs[n]) {
                *w |= s;
            }
            group.push(n);
        }
        groups.push(group);
    }
    groups
}

/// The grouping of elements with signatures `sigs` into chunks of `size`
/// that keeps the fewest tiles, if it keeps fewer than the elements in
/// their order do ([`RESTARTS`] greedy clusterings from `seed`).
pub(super) fn grouping(sigs: &[Signature], size: usize, seed: u64) -> Option<Vec<Vec<usize>>> {
    if sigs.is_empty() {
        return None;
    }
    let identity: Vec<Vec<usize>> = (0..sigs.len())
        .collect::<Vec<_>>()
        .chunks(size)
        .map(<[usize]>::to_vec)
        .collect();
    let best = (0..RESTARTS)
        .map(|r| cluster(sigs, size, seed.wrapping_add(r)))
        .min_by_key(|g| kept(g, sigs))
        .expect("restarts");
    (kept(&best, sigs) < kept(&identity, sigs)).then_some(best)
}

/// Signatures of `n` elements over `chunks` chunks from (element, chunk)
/// pairs.
pub(super) fn signatures_of(
    n: usize,
    chunks: usize,
    pairs: impl IntoIterator<Item = (usize, u32)>,
) -> Vec<Signature> {
    let mut sigs = vec![vec![0u64; chunks.div_ceil(64).max(1)]; n];
    for (e, c) in pairs {
        sigs[e][c as usize / 64] |= 1 << (c % 64);
    }
    sigs
}

/// Each hidden neuron's signature: the first layer's input chunks it reads
/// and the second layer's output chunks it writes, from their tiles.
fn signatures(first: &LayerTiles, second: &LayerTiles) -> Vec<Signature> {
    let (w1, w2) = (&first.weights.matrix, &second.weights.matrix);
    let neurons = w1.ncols();
    let in_chunks = first
        .cells
        .iter()
        .flatten()
        .map(|&(_, a)| a)
        .max()
        .map_or(0, |a| a + 1);
    let out_chunks = second
        .cells
        .iter()
        .flatten()
        .map(|&(b, _)| b)
        .max()
        .map_or(0, |b| b + 1);
    let f2 = w2.ncols();
    let reads = first.cells.iter().enumerate().flat_map(|(cell, keys)| {
        let (i, n) = (cell / neurons, cell % neurons);
        let on = w1[[i, n]] != 0.0;
        keys.iter().filter(move |_| on).map(move |&(_, a)| (n, a))
    });
    let writes = second.cells.iter().enumerate().flat_map(|(cell, keys)| {
        let (n, m) = (cell / f2, cell % f2);
        let on = w2[[n, m]] != 0.0;
        keys.iter()
            .filter(move |_| on)
            .map(move |&(b, _)| (n, in_chunks + b))
    });
    signatures_of(
        neurons,
        (in_chunks + out_chunks) as usize,
        reads.chain(writes),
    )
}

/// Neuron `p` of the first layer's output becomes old neuron `order[p]`.
fn apply(graph: &mut Graph, pair: &Pair, order: &[usize]) {
    if let Op::Dense(d) = &mut graph.node_mut(pair.first).op {
        let (w, b) = (d.weight.clone(), d.bias.clone());
        for (p, &n) in order.iter().enumerate() {
            d.weight.column_mut(p).assign(&w.column(n));
            d.bias[p] = b[n];
        }
    }
    if let Op::Dense(d) = &mut graph.node_mut(pair.second).op {
        let w = d.weight.clone();
        for (p, &n) in order.iter().enumerate() {
            d.weight.row_mut(p).assign(&w.row(n));
        }
    }
}

/// Tiles of a dense layer's matrix `t` that are mostly zero: at most
/// `threshold` of their weights non-zero (and some): zeroed. Returns the
/// weights zeroed.
fn prune_mostly_zero(graph: &mut Graph, t: &LayerTiles, threshold: f64) -> usize {
    let f = t.weights.matrix.ncols();
    let mut by_tile: HashMap<(u32, u32), Vec<usize>> = HashMap::new();
    for (cell, keys) in t.cells.iter().enumerate() {
        if let [key] = keys[..] {
            by_tile.entry(key).or_default().push(cell);
        }
    }
    let Op::Dense(d) = &mut graph.node_mut(t.weights.id).op else {
        return 0;
    };
    let mut zeroed = 0;
    for cells in by_tile.values() {
        let nonzero = cells
            .iter()
            .filter(|&&c| d.weight[[c / f, c % f]] != 0.0)
            .count();
        if nonzero > 0 && nonzero as f64 <= threshold * cells.len() as f64 {
            for &c in cells {
                d.weight[[c / f, c % f]] = 0.0;
            }
            zeroed += nonzero;
        }
    }
    zeroed
}

/// Sweeps over the hidden dimensions at most.
const SWEEPS: usize = 4;

/// Groupings tried per hidden dimension, each from its own tie order.
const RESTARTS: u64 = 8;

/// Permute the neurons between `pair`'s layers if some grouping keeps fewer
/// tiles than theirs; whether it did.
fn permute_pair(
    graph: &mut Graph,
    shape: TileShape,
    pair: &Pair,
    seed: u64,
) -> Result<bool, PassError> {
    let layers = tiles(graph, shape)?;
    let at = |id: NodeId| layers.iter().position(|l| l.weights.id == id);
    let (Some(i), Some(j)) = (at(pair.first), at(pair.second)) else {
        return Ok(false);
    };
    let (first, second) = (&layers[i], &layers[j]);
    let neurons = first.weights.matrix.ncols();
    // The hidden chunk size: neurons in the first layer's first output chunk.
    let mut chunk_of = vec![0u32; neurons];
    for (cell, keys) in first.cells.iter().enumerate() {
        if let Some(&(b, _)) = keys.first() {
            chunk_of[cell % neurons] = b;
        }
    }
    let size = (0..neurons).filter(|&n| chunk_of[n] == 0).count().max(1);
    let sigs = signatures(first, second);
    let Some(best) = grouping(&sigs, size, seed) else {
        return Ok(false);
    };
    let order: Vec<usize> = best.into_iter().flatten().collect();
    apply(graph, pair, &order);
    Ok(true)
}

/// Permute `graph`'s hidden neurons so that zero weights gather into
/// `shape` tiles (P3), then, with `p4`, zero every dense tile with at most
/// that fraction of non-zero weights (P4). Deterministic for `seed`.
pub fn permute(
    graph: &mut Graph,
    shape: TileShape,
    p4: Option<f64>,
    seed: u64,
) -> Result<PermuteReport, PassError> {
    if let Some(t) = p4.filter(|t| !(0.0..=1.0).contains(t)) {
        return Err(PassError::Prune(format!(
            "a P4 threshold of {t}: give the largest fraction of non-zero weights a zeroed tile may hold, in [0, 1]"
        )));
    }
    let before = tiles(graph, shape)?;
    let mut permuted = Vec::new();
    // Permuting one hidden dimension changes the chunks its neighbours'
    // signatures read: sweep until no permutation keeps fewer tiles.
    for _ in 0..SWEEPS {
        let mut changed = false;
        for pair in pairs(graph) {
            if permute_pair(graph, shape, &pair, seed)? {
                changed = true;
                let name = graph.node(pair.first).name.to_string();
                if !permuted.contains(&name) {
                    permuted.push(name);
                }
            }
        }
        if !changed {
            break;
        }
    }
    let after = tiles(graph, shape)?;
    let mut p4_zeroed_weights = 0;
    if let Some(t) = p4 {
        for l in &after {
            p4_zeroed_weights += prune_mostly_zero(graph, l, t);
        }
    }
    let last = tiles(graph, shape)?;
    let mut report = PermuteReport {
        tile: shape.to_string(),
        layers: Vec::new(),
        permuted,
        before: TileCount::default(),
        after: TileCount::default(),
        after_p4: TileCount::default(),
        p4_threshold: p4,
        p4_zeroed_weights,
    };
    for ((b, a), l) in before.iter().zip(&after).zip(&last) {
        let (b, a, l4) = (count(b), count(a), count(l));
        report.before += b;
        report.after += a;
        report.after_p4 += l4;
        report.layers.push(LayerReport {
            layer: l.weights.name.to_string(),
            before: b,
            permuted: a,
            after_p4: l4,
        });
    }
    Ok(report)
}
