//! Random graphs for property tests of passes and lowerings (feature
//! `testing`). Deterministic: a failing case is reproducible from its seed.

use ndarray::{Array1, Array2, Array4, ArrayD, Axis, IxDyn};

use crate::{
    Activation, AvgPool, BatchNorm, Conv, Dense, Graph, GraphOutput, Op, Polynomial, Pool, Shape,
};

/// A small xorshift generator.
pub struct Rng(pub u64);

impl Rng {
    /// The next raw value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform on a grid of step 0.001 in [-1, 1].
    pub fn weight(&mut self) -> f64 {
        (self.next_u64() % 2001) as f64 / 1000.0 - 1.0
    }
}

/// How many op choices [`random_graph`] knows.
pub const CHOICES: u8 = 16;

/// Which choice values pick a conv and a dense layer (to bias generators
/// toward linear layers).
pub const CONV: u8 = 0;
/// See [`CONV`].
pub const DENSE: u8 = 12;

/// Build a graph from a list of op choices (`0..CHOICES`); choices that do not
/// fit the current shape are skipped. Choices 14 and 15 branch: a residual sum
/// with, or a channel concatenation of, an earlier tensor of a fitting shape. With `he_friendly`, the activation choice
/// is a square instead of a tanh, so every op can be evaluated under CKKS.
pub fn random_graph(choices: &[u8], seed: u64, he_friendly: bool) -> Graph {
    let mut r = Rng(seed | 1);
    let c = 1 + r.below(3);
    let mut g = Graph::new("x", Shape::new([c, 5 + r.below(3), 5 + r.below(3)]));
    let mut cur = g.input();
    let mut earlier = vec![cur];
    for (i, &choice) in choices.iter().enumerate() {
        let dims = g.node(cur).shape.dims().to_vec();
        if choice % CHOICES >= 14 {
            let residual = choice % CHOICES == 14;
            let fits = |s: &Shape| {
                s.rank() == dims.len()
                    && (0..dims.len()).all(|a| (a == 0 && !residual) || s.dims()[a] == dims[a])
            };
            let found = earlier
                .iter()
                .rev()
                .find(|&&e| e != cur && fits(&g.node(e).shape))
                .copied();
            if let Some(other) = found {
                let op = if residual { Op::Add } else { Op::Concat(0) };
                let operands = if r.below(2) == 0 {
                    [cur, other]
                } else {
                    [other, cur]
                };
                if let Ok(id) = g.add(format!("l{i}"), op, &operands) {
                    cur = id;
                    earlier.push(cur);
                }
            }
            continue;
        }
        let spatial = dims.len() == 3;
        let chans = dims[0];
        let op = match choice % CHOICES {
            0 if spatial => {
                let k = 1 + r.below(3);
                let f = 1 + r.below(4);
                let pad = r.below(2);
                Op::Conv(Conv {
                    weight: Array4::from_shape_fn((f, chans, k, k), |_| r.weight()),
                    bias: Array1::from_shape_fn(f, |_| r.weight()),
                    strides: [1 + r.below(2), 1],
                    pads: [pad, pad, r.below(2), pad],
                    dilations: [1, 1],
                })
            }
            1 => Op::BatchNorm(BatchNorm {
                scale: Array1::from_shape_fn(chans, |_| r.weight()),
                bias: Array1::from_shape_fn(chans, |_| r.weight()),
                mean: Array1::from_shape_fn(chans, |_| r.weight()),
                var: Array1::from_shape_fn(chans, |_| 0.5 + r.weight().abs()),
                epsilon: 1e-5,
            }),
            2 if spatial => Op::AvgPool(AvgPool {
                pool: Pool {
                    kernel: [2, 1 + r.below(2)],
                    strides: [1 + r.below(2), 1 + r.below(2)],
                    pads: [r.below(2), 0, 0, 0],
                    dilations: [1, 1],
                    ceil_mode: false,
                },
                count_include_pad: r.below(2) == 0,
            }),
            3 => Op::Dropout { ratio: 0.5 },
            4 => Op::Identity,
            5 => Op::MulConst(ArrayD::from_elem(IxDyn(&[]), r.weight())),
            6 => Op::AddConst(ArrayD::from_elem(IxDyn(&[]), r.weight())),
            7 => {
                // Per channel (axis 0) constants, broadcast over the rest.
                let mut d = vec![1; dims.len()];
                d[0] = chans;
                if r.below(2) == 0 {
                    Op::MulConst(ArrayD::from_shape_fn(IxDyn(&d), |_| r.weight()))
                } else {
                    Op::AddConst(ArrayD::from_shape_fn(IxDyn(&d), |_| r.weight()))
                }
            }
            8 if he_friendly => Op::Activation(Activation::Square),
            8 => Op::Activation(Activation::Tanh),
            9 => Op::Polynomial(Polynomial::new(vec![r.weight(), r.weight(), r.weight()])),
            10 if spatial => Op::GlobalAvgPool,
            11 if spatial => Op::Flatten,
            12 | 13 => {
                let k = *dims.last().expect("rank >= 1");
                let n = 1 + r.below(6);
                Op::Dense(Dense {
                    weight: Array2::from_shape_fn((k, n), |_| r.weight()),
                    bias: Array1::from_shape_fn(n, |_| r.weight()),
                })
            }
            _ => continue,
        };
        if let Ok(id) = g.add(format!("l{i}"), op, &[cur]) {
            cur = id;
            earlier.push(cur);
        }
    }
    g.set_output(cur);
    g.verify().expect("built through add");
    g
}

/// Make one or two earlier tensors of `g` outputs too (after its own), as
/// models with several heads have: an output in the middle of the graph is
/// read by later layers as well.
pub fn add_outputs(g: &mut Graph, seed: u64) {
    let mut r = Rng(seed.wrapping_mul(53) | 1);
    let order = g.topo_order();
    let mut outputs = g.outputs().to_vec();
    for k in 0..1 + r.below(2) {
        let node = order[r.below(order.len())];
        outputs.push(GraphOutput {
            name: format!("extra{k}"),
            node,
        });
    }
    g.set_outputs(outputs);
    g.verify().expect("outputs of existing nodes");
}

/// A batch of `batch` inputs for `g`, values in [-2, 2].
pub fn random_input(g: &Graph, seed: u64, batch: usize) -> ArrayD<f64> {
    let mut r = Rng(seed.wrapping_mul(31) | 1);
    let shape = g.node(g.input()).shape.with_batch(batch);
    ArrayD::from_shape_fn(IxDyn(&shape), |_| r.weight() * 2.0)
}

/// Zero some filters/neurons of every linear layer, and the inputs some layers
/// read from a channel, as pruning does.
pub fn prune_randomly(g: &mut Graph, seed: u64) {
    let mut r = Rng(seed.wrapping_mul(77) | 1);
    for id in g.topo_order() {
        match &mut g.node_mut(id).op {
            Op::Conv(c) => {
                for f in 0..c.bias.len() {
                    if r.below(2) == 0 {
                        c.weight.index_axis_mut(Axis(0), f).fill(0.0);
                    }
                }
                if r.below(3) == 0 {
                    let ch = r.below(c.weight.dim().1);
                    c.weight.index_axis_mut(Axis(1), ch).fill(0.0);
                }
            }
            Op::Dense(d) => {
                for n in 0..d.bias.len() {
                    if r.below(2) == 0 {
                        d.weight.column_mut(n).fill(0.0);
                    }
                }
                if r.below(3) == 0 {
                    let row = r.below(d.weight.nrows());
                    d.weight.row_mut(row).fill(0.0);
                }
            }
            _ => {}
        }
    }
}

/// [`assert_close`] for each output of two runs.
pub fn assert_all_close(a: &[ArrayD<f64>], b: &[ArrayD<f64>], context: &str) {
    assert_eq!(a.len(), b.len(), "{context}: number of outputs");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_close(x, y, &format!("{context}, output {i}"));
    }
}

/// Assert `a` and `b` agree to 1e-9 relative to `a`'s largest magnitude.
pub fn assert_close(a: &ArrayD<f64>, b: &ArrayD<f64>, context: &str) {
    assert_eq!(a.shape(), b.shape(), "{context}");
    let scale = a.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-9 * scale, "{context}: {x} vs {y}");
    }
}
