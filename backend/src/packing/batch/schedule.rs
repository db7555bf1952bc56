//! Where batch packing relinearizes and rescales squares: eagerly, once per
//! square, or lazily in the linear layers that read them, once per output,
//! priced with the op times and with the linear layers' terms at the rate
//! the runtime's grouped kernel computes them ([`crate::fuse`]).

use std::collections::{HashMap, HashSet};

use hepack_ir::{Conv, Dense, Graph, NodeId, Op};

use crate::cost::OpTimes;
use crate::fuse::{fits_group, GROUP_OUTPUTS};

/// What a squaring layer leaves to the linear layers that read it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct SquarePlan {
    /// Squares stay at three polynomials; each output of the readers is
    /// relinearized instead ([`Builder::lazy_relinearize`](crate::builder::Builder::lazy_relinearize)).
    pub lazy_relinearize: bool,
    /// Squares stay unrescaled; each output of the readers is rescaled
    /// twice instead ([`Builder::defer_rescale`](crate::builder::Builder::defer_rescale)).
    pub defer_rescale: bool,
}

/// The squaring layers whose relinearization or rescale is better left to
/// the linear layers that read them, once per output instead of once per
/// square. A layer qualifies when its polynomial has degree 2 and
/// everything that reads it, through ops that cost no level (reshapes,
/// pools, constant shifts and scales), is a convolution or a dense layer.
/// Priced with `times`, the readers' terms as the runtime groups them
/// ([`Readers`]):
/// - relinearize lazily when one relinearization per reader output, plus
///   the half again that a three-polynomial operand costs its rescale and
///   each term of the readers' combinations, is cheaper than one per square;
/// - defer the rescale when the rescales saved (squares less reader
///   outputs, at the squares' size) outweigh the prime more that each term
///   of the readers' combinations then reads: a term at `p` primes costs
///   `1/p` more at `p + 1`, with `p` the levels left from the square on
///   (its own among them) plus the first prime.
///
/// The choice depends only on the graph and the times, so counting and
/// building agree.
pub(super) fn square_plans(graph: &Graph, times: &OpTimes) -> HashMap<NodeId, SquarePlan> {
    let seconds = |kind: &str| times.seconds[crate::program::kind_index(kind).expect("a kind")];
    let (relinearize, rescale) = (seconds("relinearize"), seconds("rescale"));
    let levels = levels_to_outputs(graph);
    let mut plans = HashMap::new();
    for id in graph.topo_order() {
        let node = graph.node(id);
        let squares = match &node.op {
            Op::Activation(hepack_ir::Activation::Square) => true,
            Op::Polynomial(p) => p.degree() == 2,
            _ => false,
        };
        if !squares || graph.is_output(id) {
            continue;
        }
        let Some(readers) = linear_readers(graph, id, times) else {
            continue;
        };
        let (terms, outputs) = (readers.term_seconds, readers.outputs);
        let squares = node.shape.numel() as f64;
        let eager = squares * relinearize + terms;
        let deferred = squares * rescale / 2.0 + terms * 1.5 + outputs * relinearize;
        let lazy_relinearize = deferred < eager;
        let size = if lazy_relinearize { 1.5 } else { 1.0 };
        let primes = f64::from(levels[&id].max(1));
        let defer_rescale = (squares - outputs) * rescale * size > terms * size / primes;
        plans.insert(
            id,
            SquarePlan {
                lazy_relinearize,
                defer_rescale,
            },
        );
    }
    plans
}

/// Per node, the most levels a path from it (itself included) to an output
/// consumes, counting a level for each convolution and dense layer and
/// ⌈log₂ d⌉ for a polynomial of degree d: what the op times of the values it
/// feeds scale with, known before the chain is.
fn levels_to_outputs(graph: &Graph) -> HashMap<NodeId, u32> {
    let mut levels: HashMap<NodeId, u32> = HashMap::new();
    for id in graph.topo_order().into_iter().rev() {
        let own = match &graph.node(id).op {
            Op::Conv(_) | Op::Dense(_) | Op::Activation(_) => 1,
            Op::Polynomial(p) => (p.degree().max(1) as f64).log2().ceil() as u32,
            _ => 0,
        };
        let after = graph
            .users(id)
            .iter()
            .map(|u| levels.get(u).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        levels.insert(id, own + after);
    }
    levels
}

/// The linear layers that read a squaring layer.
#[derive(Debug, Default, PartialEq)]
struct Readers {
    /// Single-thread seconds of their combinations' terms at two
    /// polynomials, each term at its group's rate
    /// ([`OpTimes::term_in_group`]).
    term_seconds: f64,
    /// Their outputs: combinations, one relinearization each when lazy.
    outputs: f64,
}

/// The linear layers that read `id`'s values through level-free ops, or
/// `None` if anything else reads them (a polynomial, a residual sum, a
/// model output).
fn linear_readers(graph: &Graph, id: NodeId, times: &OpTimes) -> Option<Readers> {
    let mut readers = Readers::default();
    let mut seen = HashSet::new();
    let mut stack = graph.users(id);
    while let Some(u) = stack.pop() {
        if !seen.insert(u) {
            continue;
        }
        let node = graph.node(u);
        let numel = node.shape.numel();
        match &node.op {
            Op::Conv(c) => {
                readers.term_seconds += conv_term_seconds(c, numel, times);
                readers.outputs += numel as f64;
            }
            Op::Dense(d) => {
                readers.term_seconds += dense_term_seconds(d, numel, times);
                readers.outputs += numel as f64;
            }
            Op::Flatten
            | Op::Reshape(_)
            | Op::Transpose(_)
            | Op::Dropout { .. }
            | Op::Identity
            | Op::AvgPool(_)
            | Op::SumPool(_)
            | Op::GlobalAvgPool
            | Op::AddConst(_)
            | Op::MulConst(_)
            | Op::BatchNorm(_)
            | Op::Patches(_)
            | Op::Concat(_)
                if !graph.is_output(u) =>
            {
                stack.extend(graph.users(u));
            }
            _ => return None,
        }
    }
    Some(readers)
}

/// Seconds of the terms of `members` outputs of `terms` terms each, split
/// into consecutive groups of `group` and a last smaller one.
fn stream_seconds(members: usize, group: usize, terms: f64, times: &OpTimes) -> f64 {
    let group = group.max(1);
    let (full, rest) = (members / group, members % group);
    terms
        * ((full * group) as f64 * times.term_in_group(group)
            + rest as f64 * times.term_in_group(rest))
}

/// A dense layer's terms as the runtime groups its outputs. Outputs run
/// row by row (`numel / N` rows, each reading its own row of inputs), and
/// a neuron whose non-zero weights are all equal (one weight among them)
/// is a sum of its inputs, not a combination. The combinations join a
/// group while [`fits_group`] holds, as [`crate::fuse`] groups them (its
/// other conditions, on sources and span, hold for a layer whose inputs
/// are at one level).
fn dense_term_seconds(d: &Dense, numel: usize, times: &OpTimes) -> f64 {
    let (k, n) = d.weight.dim();
    let rows = numel / n.max(1);
    let mut nonzero = vec![0usize; n];
    let mut first = vec![None; n];
    let mut uniform = vec![true; n];
    for row in d.weight.rows() {
        for (j, &w) in row.iter().enumerate() {
            if w == 0.0 {
                continue;
            }
            nonzero[j] += 1;
            match first[j] {
                None => first[j] = Some(w),
                Some(f) if f != w => uniform[j] = false,
                Some(_) => {}
            }
        }
    }
    let neurons: Vec<usize> = (0..n).filter(|&j| !uniform[j]).collect();
    let outputs: Vec<(usize, usize)> = (0..rows)
        .flat_map(|r| neurons.iter().map(move |&j| (r, j)))
        .collect();
    if neurons.iter().all(|&j| nonzero[j] == k) && (rows == 1 || neurons.len() >= GROUP_OUTPUTS) {
        // Every combination reads its row's k inputs, and a group spans at
        // most two rows: every group is full.
        return stream_seconds(outputs.len(), GROUP_OUTPUTS, k as f64, times);
    }
    let mut seconds = 0.0;
    let mut start = 0;
    while start < outputs.len() {
        let block = &outputs[start..outputs.len().min(start + GROUP_OUTPUTS)];
        // union[m]: inputs the block's m-th output reads that none before it
        // does; outputs of different rows share none.
        let mut union = [0usize; GROUP_OUTPUTS];
        for w in d.weight.rows() {
            let mut from = 0;
            while from < block.len() {
                let r = block[from].0;
                let to = from + block[from..].iter().take_while(|o| o.0 == r).count();
                if let Some(p) = block[from..to].iter().position(|&(_, j)| w[j] != 0.0) {
                    union[from + p] += 1;
                }
                from = to;
            }
        }
        let (mut members, mut covered, mut terms) = (1, union[0], nonzero[block[0].1]);
        while members < block.len() {
            let (u, t) = (covered + union[members], terms + nonzero[block[members].1]);
            if !fits_group(members + 1, u, t) {
                break;
            }
            (members, covered, terms) = (members + 1, u, t);
        }
        seconds += terms as f64 * times.term_in_group(members);
        start += members;
    }
    seconds
}

/// A convolution's terms as the runtime groups its outputs, estimated: the
/// outputs run filter by filter along rows, and neighbours share the
/// inputs their windows overlap on. Each filter's group size is the most
/// neighbours of an interior output that [`fits_group`] lets in one after
/// another (windows clipped by padding, and groups across row ends, are
/// priced as interior ones). A filter whose non-zero weights are all equal
/// is a sum, not a combination.
fn conv_term_seconds(c: &Conv, numel: usize, times: &OpTimes) -> f64 {
    let (filters, ch, kh, kw) = c.weight.dim();
    let positions = numel / filters.max(1);
    let (stride, dilation) = (c.strides[1], c.dilations[1]);
    let width = kw.saturating_sub(1) * dilation + (GROUP_OUTPUTS - 1) * stride + 1;
    let mut seconds = 0.0;
    let mut seen = vec![false; width];
    let mut taps = Vec::with_capacity(kw);
    for f in 0..filters {
        let filter = c.weight.index_axis(ndarray::Axis(0), f);
        let mut weights = filter.iter().filter(|&&w| w != 0.0);
        let first = weights.next();
        if weights.all(|w| Some(w) == first) {
            // A sum of its inputs (or nothing), not a combination.
            continue;
        }
        // fresh[t]: inputs the t-th neighbour reads that none before it does.
        let mut fresh = [0usize; GROUP_OUTPUTS];
        let mut terms = 0;
        for ci in 0..ch {
            for ky in 0..kh {
                taps.clear();
                taps.extend(
                    (0..kw)
                        .filter(|&kx| c.weight[[f, ci, ky, kx]] != 0.0)
                        .map(|kx| kx * dilation),
                );
                terms += taps.len();
                seen.fill(false);
                for (t, fresh) in fresh.iter_mut().enumerate() {
                    for &x in &taps {
                        let at = x + t * stride;
                        if !seen[at] {
                            seen[at] = true;
                            *fresh += 1;
                        }
                    }
                }
            }
        }
        let mut group = 1;
        let mut union = fresh[0];
        while group < GROUP_OUTPUTS
            && fits_group(group + 1, union + fresh[group], (group + 1) * terms)
        {
            union += fresh[group];
            group += 1;
        }
        seconds += stream_seconds(positions, group, terms as f64, times);
    }
    seconds
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2, Array4};

    /// Times where a term alone costs 8 and in a full group 1.
    fn times() -> OpTimes {
        OpTimes {
            combination_term_alone: 8.0,
            combination_term_grouped: 1.0,
            ..OpTimes::default()
        }
    }

    /// A `[k, n]` dense layer with distinct non-zero weights.
    fn dense(k: usize, n: usize) -> Dense {
        Dense {
            weight: Array2::from_shape_fn((k, n), |(i, j)| 1.0 + (i * n + j) as f64),
            bias: Array1::zeros(n),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_full_dense_layer_runs_in_full_groups_and_a_last_smaller_one() {
        let t = times();
        let want = 5.0 * (8.0 * t.term_in_group(8) + 2.0 * t.term_in_group(2));
        assert!(close(dense_term_seconds(&dense(5, 10), 10, &t), want));
    }

    #[test]
    fn dense_neurons_that_share_no_input_group_in_pairs_only() {
        // Neuron j reads inputs 2j and 2j + 1 alone: two such make a group
        // (work 4 × 2 = twice their 4 terms), a third would not (6 × 3 > 12).
        let mut d = dense(12, 6);
        d.weight.indexed_iter_mut().for_each(|((i, j), w)| {
            if i / 2 != j {
                *w = 0.0;
            }
        });
        let t = times();
        assert!(close(
            dense_term_seconds(&d, 6, &t),
            12.0 * t.term_in_group(2)
        ));
    }

    #[test]
    fn rows_of_a_dense_layer_read_their_own_inputs() {
        // 4 rows of 2 neurons over 3 inputs: each row adds 3 sources, so 4
        // outputs (6 sources, 12 terms) fit a group and 5 (9, 15) do not.
        let t = times();
        assert!(close(
            dense_term_seconds(&dense(3, 2), 8, &t),
            24.0 * t.term_in_group(4)
        ));
    }

    #[test]
    fn neurons_that_are_sums_are_not_combinations() {
        // Neuron 3 has no weight, neuron 5 one, neuron 7 four equal ones.
        let mut d = dense(4, 11);
        d.weight.column_mut(3).fill(0.0);
        d.weight.column_mut(5).fill(0.0);
        d.weight[[2, 5]] = 3.0;
        d.weight.column_mut(7).fill(0.5);
        let t = times();
        // Eight neurons read all four inputs: one full group.
        assert!(close(
            dense_term_seconds(&d, 11, &t),
            4.0 * 8.0 * t.term_in_group(8)
        ));
    }

    #[test]
    fn conv_neighbours_group_while_their_windows_overlap_enough() {
        // A 1×5 filter at stride 2: m neighbours read 5 + 2(m − 1) inputs
        // of 5m terms; 3 fit (9 × 3 ≤ 30), 4 do not (11 × 4 > 40). A second
        // filter of equal weights is a sum.
        let mut weight = Array4::from_shape_fn((2, 1, 1, 5), |(_, _, _, x)| 1.0 + x as f64);
        weight.index_axis_mut(ndarray::Axis(0), 1).fill(2.0);
        let c = Conv {
            weight,
            bias: Array1::zeros(2),
            strides: [1, 2],
            pads: [0; 4],
            dilations: [1, 1],
        };
        let t = times();
        let want = 5.0 * (9.0 * t.term_in_group(3) + t.term_in_group(1));
        assert!(close(conv_term_seconds(&c, 20, &t), want));
    }

    #[test]
    fn a_term_in_a_group_costs_between_alone_and_full() {
        let t = times();
        assert_eq!(t.term_in_group(1), 8.0);
        assert!((t.term_in_group(8) - 1.0).abs() < 1e-12);
        assert!(t.term_in_group(2) < 8.0 && t.term_in_group(2) > t.term_in_group(3));
    }
}
