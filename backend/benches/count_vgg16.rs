//! How long costing a VGG-16-sized model takes, without building its program.
//!
//! Run: `cargo bench -p hepack-backend --bench count_vgg16`
//!
//! The model is VGG-16 for CIFAR-10 (3×32×32 input, 13 convolutions, three
//! dense layers) made HE-friendly by hand (square activations, average
//! pools), with deterministic random weights; half the filters of every
//! layer are then zeroed to show the cost of a pruned model. Its program
//! would hold about 6·10⁸ ops, which the counting path never builds.

use std::time::Instant;

use hepack_backend::{Lowering, OpTimes};
use hepack_ir::{Activation, AvgPool, Conv, Dense, Graph, Op, Pool, Shape};
use hepack_passes::prune::{BatchPacking, Block};
use ndarray::{Array1, Array2, Array4, Axis};

fn vgg16(prune_half: bool) -> Graph {
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut weight = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 2001) as f64 / 1000.0 - 1.0
    };
    let mut g = Graph::new("x", Shape::new([3, 32, 32]));
    let mut cur = g.input();
    let mut chans = 3;
    let stages: [&[usize]; 5] = [&[64, 64], &[128, 128], &[256; 3], &[512; 3], &[512; 3]];
    for (s, widths) in stages.iter().enumerate() {
        for (i, &f) in widths.iter().enumerate() {
            let mut w = Array4::from_shape_fn((f, chans, 3, 3), |_| weight());
            if prune_half {
                for fi in (0..f).step_by(2) {
                    w.index_axis_mut(Axis(0), fi).fill(0.0);
                }
            }
            let conv = Op::Conv(Conv {
                weight: w,
                bias: Array1::from_shape_fn(f, |_| weight()),
                strides: [1, 1],
                pads: [1, 1, 1, 1],
                dilations: [1, 1],
            });
            cur = g.add(format!("conv{s}_{i}"), conv, &[cur]).unwrap();
            let act = Op::Activation(Activation::Square);
            cur = g.add(format!("act{s}_{i}"), act, &[cur]).unwrap();
            chans = f;
        }
        let pool = Op::AvgPool(AvgPool {
            pool: Pool {
                kernel: [2, 2],
                strides: [2, 2],
                pads: [0; 4],
                dilations: [1, 1],
                ceil_mode: false,
            },
            count_include_pad: true,
        });
        cur = g.add(format!("pool{s}"), pool, &[cur]).unwrap();
    }
    cur = g.add("flatten", Op::Flatten, &[cur]).unwrap();
    let mut k = 512;
    for (i, n) in [512, 512, 10].into_iter().enumerate() {
        let dense = Op::Dense(Dense {
            weight: Array2::from_shape_fn((k, n), |_| weight()),
            bias: Array1::from_shape_fn(n, |_| weight()),
        });
        cur = g.add(format!("dense{i}"), dense, &[cur]).unwrap();
        if n != 10 {
            let act = Op::Activation(Activation::Square);
            cur = g.add(format!("dense_act{i}"), act, &[cur]).unwrap();
        }
        k = n;
    }
    g.set_output(cur);
    g
}

fn main() {
    let packing = BatchPacking {
        block: Block::Column,
    };
    for (label, prune_half) in [("unpruned", false), ("half the filters zeroed", true)] {
        let g = vgg16(prune_half);
        let start = Instant::now();
        let cost = packing.count(&g, &OpTimes::default()).unwrap();
        println!(
            "VGG-16 (CIFAR-10 shape, {label}): {} HE ops ({} mul_plain, {} add, {} removed by DCE), depth {}, {} plaintexts; costed in {:.2} s",
            cost.he_ops,
            cost.total.get("mul_plain"),
            cost.total.get("add"),
            cost.removed_by_dce,
            cost.depth,
            cost.plaintexts,
            start.elapsed().as_secs_f64()
        );
    }
}
