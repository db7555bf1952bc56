//! Exact passes leave the interpreter's outputs unchanged, on randomised graphs
//! that contain every op they rewrite.

use hepack_ir::{
    interp, Activation, AvgPool, BatchNorm, Conv, Dense, Graph, NodeId, Op, Polynomial, Pool, Shape,
};
use hepack_passes::prune::compress;
use hepack_passes::{pipeline, PassOptions};
use ndarray::{Array1, Array2, Array4, ArrayD, IxDyn};
use proptest::prelude::*;

/// A small deterministic generator, so a failing case is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn weight(&mut self) -> f64 {
        (self.next() % 2001) as f64 / 1000.0 - 1.0
    }
}

/// Build a graph from a list of op choices; choices that do not fit the current
/// shape are skipped.
fn build(choices: &[u8], seed: u64) -> Graph {
    let mut r = Rng(seed | 1);
    let c = 1 + r.below(3);
    let mut g = Graph::new("x", Shape::new([c, 5 + r.below(3), 5 + r.below(3)]));
    let mut cur = g.input();
    for (i, &choice) in choices.iter().enumerate() {
        let shape = g.node(cur).shape.clone();
        let dims = shape.dims().to_vec();
        let spatial = dims.len() == 3;
        let chans = dims[0];
        let op = match choice % 14 {
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
        }
    }
    g.set_output(cur);
    g.verify().expect("built through add");
    g
}

fn input_for(g: &Graph, seed: u64) -> ArrayD<f64> {
    let mut r = Rng(seed.wrapping_mul(31) | 1);
    let shape = g.node(g.input()).shape.with_batch(3);
    ArrayD::from_shape_fn(IxDyn(&shape), |_| r.weight() * 2.0)
}

fn assert_close(a: &ArrayD<f64>, b: &ArrayD<f64>, context: &str) {
    assert_eq!(a.shape(), b.shape(), "{context}");
    let scale = a.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-9 * scale, "{context}: {x} vs {y}");
    }
}

const EXACT: &[&str] = &[
    "remove-identity",
    "fold-batchnorm",
    "fold-scalings",
    "fuse-linear",
    "conv-to-dense",
    "remove-identity,fold-batchnorm,fold-scalings,fuse-linear,conv-to-dense,fold-scalings",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn exact_passes_keep_outputs(choices in prop::collection::vec(0u8..14, 1..10), seed in any::<u64>()) {
        let g = build(&choices, seed);
        let x = input_for(&g, seed);
        let before = interp::run(&g, x.view()).unwrap();
        let options = PassOptions { fuse_max_growth: f64::INFINITY, ..PassOptions::default() };
        for spec in EXACT {
            let mut h = g.clone();
            pipeline(spec, &options).unwrap().run(&mut h, |_, _| {}).unwrap();
            let after = interp::run(&h, x.view()).unwrap();
            assert_close(&before, &after, &format!("{spec} on\n{}", hepack_ir::dump::to_text(&g)));
        }
    }
}

/// Zero some filters/neurons of every linear layer, and the inputs some layers
/// read from a channel, as pruning does.
fn prune_randomly(g: &mut Graph, seed: u64) {
    let mut r = Rng(seed.wrapping_mul(77) | 1);
    for id in g.topo_order() {
        match &mut g.node_mut(id).op {
            Op::Conv(c) => {
                for f in 0..c.bias.len() {
                    if r.below(2) == 0 {
                        c.weight.index_axis_mut(ndarray::Axis(0), f).fill(0.0);
                    }
                }
                if r.below(3) == 0 {
                    let ch = r.below(c.weight.dim().1);
                    c.weight.index_axis_mut(ndarray::Axis(1), ch).fill(0.0);
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

fn widths(g: &Graph) -> Vec<usize> {
    g.topo_order()
        .into_iter()
        .filter_map(|id| match &g.node(id).op {
            Op::Conv(c) => Some(c.bias.len()),
            Op::Dense(d) => Some(d.bias.len()),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn compression_keeps_outputs(
        // Mostly linear layers, so that most cases have something to remove.
        choices in prop::collection::vec(prop_oneof![Just(0u8), Just(12), 0u8..14], 2..10),
        seed in any::<u64>(),
    ) {
        let mut g = build(&choices, seed);
        prune_randomly(&mut g, seed);
        let x = input_for(&g, seed);
        let before = interp::run(&g, x.view()).unwrap();
        let mut h = g.clone();
        let report = compress(&mut h).unwrap();
        h.verify().unwrap();
        let after = interp::run(&h, x.view()).unwrap();
        assert_close(&before, &after, &format!("compress on\n{}", hepack_ir::dump::to_text(&g)));
        let removed: usize = report.removed.iter().map(|l| l.units_before - l.units_after).sum();
        let (w0, w1) = (widths(&g), widths(&h));
        prop_assert_eq!(w0.iter().sum::<usize>() - w1.iter().sum::<usize>(), removed);
        // A second run finds nothing more to remove.
        let again = compress(&mut h).unwrap();
        prop_assert!(again.removed.is_empty(), "{:?}", again);
    }
}

fn node_named(g: &Graph, name: &str) -> NodeId {
    g.topo_order()
        .into_iter()
        .find(|&id| g.node(id).name.as_str() == name)
        .unwrap()
}

#[test]
fn exact_passes_remove_what_they_promise() {
    // conv → bn → dropout → avgpool → flatten → dense → identity → dense
    let choices = [0, 1, 3, 2, 11, 12, 4, 13];
    let g = build(&choices, 7);
    let mut h = g.clone();
    let options = PassOptions {
        fuse_max_growth: f64::INFINITY,
        ..PassOptions::default()
    };
    let reports = pipeline(
        "remove-identity,fold-batchnorm,fold-scalings,fuse-linear",
        &options,
    )
    .unwrap()
    .run(&mut h, |_, _| {})
    .unwrap();
    let text = hepack_ir::dump::to_text(&h);
    for gone in ["batch_norm", "dropout", "identity"] {
        assert!(!text.contains(gone), "{gone} left in\n{text}");
    }
    assert_eq!(reports[0].changes.len(), 2, "{:?}", reports[0]); // dropout, identity
    assert_eq!(reports[1].changes.len(), 1, "{:?}", reports[1]); // bn into conv
    assert_eq!(reports[3].changes.len(), 1, "{:?}", reports[3]); // two dense layers fused
    assert!(text.matches("dense").count() == 1, "{text}");
    let _ = node_named(&h, "l0");
}
