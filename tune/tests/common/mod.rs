//! Graphs and data shared by the training tests.
#![allow(dead_code)] // each test binary uses its own subset

use hepack_ir::testing::Rng;
use hepack_ir::{Conv, Dense, Graph, Op, Shape};
use ndarray::{Array1, Array2, Array4, ArrayD, IxDyn};

/// Seeded weights in [-1, 1].
pub fn weights(shape: (usize, usize, usize, usize), seed: u64) -> Array4<f64> {
    let mut r = Rng(seed | 1);
    Array4::from_shape_fn(shape, |_| r.weight())
}

/// conv → `op` → flatten → dense, on a 2×6×6 input: the conv's gradient
/// passes through `op`'s backward.
pub fn sandwich(op: Op) -> Graph {
    let mut g = Graph::new("x", Shape::new([2, 6, 6]));
    let c = g
        .add(
            "conv",
            Op::Conv(Conv {
                weight: weights((3, 2, 2, 2), 3),
                bias: Array1::from(vec![0.1, -0.2, 0.3]),
                strides: [1, 1],
                pads: [1, 0, 0, 1],
                dilations: [1, 1],
            }),
            &[g.input()],
        )
        .unwrap();
    let o = g.add("op", op, &[c]).unwrap();
    let f = g.add("flat", Op::Flatten, &[o]).unwrap();
    let k = g.node(f).shape.numel();
    let mut r = Rng(11);
    let d = g
        .add(
            "dense",
            Op::Dense(Dense {
                weight: Array2::from_shape_fn((k, 4), |_| r.weight()),
                bias: Array1::from(vec![0.0, 0.1, 0.2, 0.3]),
            }),
            &[f],
        )
        .unwrap();
    g.set_output(d);
    g.verify().unwrap();
    g
}

/// A two-class problem a small conv net can learn: is the left half of the
/// image brighter than the right?
pub fn toy_data(n: usize, seed: u64) -> (ArrayD<f64>, Vec<i64>) {
    let mut r = Rng(seed | 1);
    let x = ArrayD::from_shape_fn(IxDyn(&[n, 2, 6, 6]), |_| r.weight());
    let labels = (0..n)
        .map(|i| {
            let left: f64 = (0..6)
                .flat_map(|y| (0..3).map(move |c| (y, c)))
                .map(|(y, c)| x[[i, 0, y, c]])
                .sum();
            let right: f64 = (0..6)
                .flat_map(|y| (3..6).map(move |c| (y, c)))
                .map(|(y, c)| x[[i, 0, y, c]])
                .sum();
            i64::from(left > right)
        })
        .collect();
    (x, labels)
}
