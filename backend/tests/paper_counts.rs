//! Hunter's Table 4 counts under GAZELLE and Artemis's Eq. (6): Hunter's
//! LeNet reproduces Table 5's baseline, pruned groups drop out of the
//! counts, hepack's own program for the same model is pinned beside them,
//! and a VGG-16-sized model is counted in well under a second.

use hepack_backend::diagonal::gazelle::{paper_counts, PaperCounts};
use hepack_backend::diagonal::{op_rows, DiagonalPacking};
use hepack_backend::{Lowering, OpTimes};
use hepack_ir::testing::Rng;
use hepack_ir::{Activation, AvgPool, Conv, Dense, Graph, Op, Pool, Shape};
use ndarray::{Array1, Array2, Array4};

fn conv(r: &mut Rng, filters: usize, channels: usize, k: usize, pad: usize) -> Op {
    Op::Conv(Conv {
        weight: Array4::from_shape_fn((filters, channels, k, k), |_| r.weight()),
        bias: Array1::zeros(filters),
        strides: [1, 1],
        pads: [pad; 4],
        dilations: [1, 1],
    })
}

fn dense(r: &mut Rng, k: usize, n: usize) -> Op {
    Op::Dense(Dense {
        weight: Array2::from_shape_fn((k, n), |_| r.weight()),
        bias: Array1::zeros(n),
    })
}

fn pool() -> Op {
    Op::AvgPool(AvgPool {
        pool: Pool {
            kernel: [2, 2],
            strides: [2, 2],
            pads: [0; 4],
            dilations: [1, 1],
            ceil_mode: false,
        },
        count_include_pad: true,
    })
}

fn square() -> Op {
    Op::Activation(Activation::Square)
}

fn chain(input: Shape, ops: Vec<(String, Op)>) -> Graph {
    let mut g = Graph::new("x", input);
    let mut at = g.input();
    for (name, op) in ops {
        at = g.add(&name, op, &[at]).unwrap();
    }
    g.set_output(at);
    g.verify().unwrap();
    g
}

/// Hunter's LeNet (§5): conv 1→6 5×5, pool, conv 6→16 5×5, pool, FC
/// 256→120→84→10, with x² and average pools to be HE-friendly.
fn hunter_lenet() -> Graph {
    let mut r = Rng(3);
    let ops = vec![
        ("conv1", conv(&mut r, 6, 1, 5, 0)),
        ("act1", square()),
        ("pool1", pool()),
        ("conv2", conv(&mut r, 16, 6, 5, 0)),
        ("act2", square()),
        ("pool2", pool()),
        ("flat", Op::Flatten),
        ("fc1", dense(&mut r, 256, 120)),
        ("act3", square()),
        ("fc2", dense(&mut r, 120, 84)),
        ("act4", square()),
        ("fc3", dense(&mut r, 84, 10)),
    ];
    chain(
        Shape::new([1, 28, 28]),
        ops.into_iter().map(|(n, op)| (n.to_string(), op)).collect(),
    )
}

fn counts(perm: u64, mult: u64, add: u64) -> PaperCounts {
    PaperCounts { perm, mult, add }
}

#[test]
fn hunter_lenet_counts_are_table_5_s_baseline() {
    let got: Vec<PaperCounts> = paper_counts(&hunter_lenet())
        .iter()
        .map(|l| l.gazelle)
        .collect();
    // Hunter Table 5, baseline: Perm / Mult / Add.
    let table_5 = [
        counts(24, 150, 144),
        counts(96, 1200, 1192),
        counts(128, 128, 128),
        counts(127, 128, 127),
        counts(18, 16, 18),
    ];
    assert_eq!(got, table_5);
    let total = got.iter().fold(counts(0, 0, 0), |t, c| {
        counts(t.perm + c.perm, t.mult + c.mult, t.add + c.add)
    });
    assert_eq!(total, counts(393, 1622, 1609));
}

#[test]
fn pruned_groups_drop_out_of_the_paper_counts() {
    let mut g = hunter_lenet();
    let id = g.topo_order()[1];
    let full = paper_counts(&g);
    let mut op = g.node(id).op.clone();
    if let Op::Conv(c) = &mut op {
        // Kernel position (0, 0) of every filter: one internal permutation,
        // one product and one addition per output channel.
        for f in 0..6 {
            c.weight[[f, 0, 0, 0]] = 0.0;
        }
    }
    g.replace_op(id, op).unwrap();
    let pruned = paper_counts(&g);
    assert_eq!(pruned[0].gazelle, counts(23, 144, 138));
    let a = pruned[0].artemis.unwrap();
    assert!((a.alpha - 23.0 / 24.0).abs() < 1e-12 && a.beta == 1.0);
    // Eq. (6) with c_n = 1: α(f² − 1)·c_in.
    assert_eq!(a.rotations, 23);
    assert_eq!(full[0].artemis.unwrap().rotations, 24);
    // Conv2 (c_n = 2) has 6/2 · 24 positions and 3 · 8 channel diagonals.
    let a2 = full[1].artemis.unwrap();
    assert_eq!((a2.alpha, a2.beta, a2.rotations), (1.0, 1.0, 96));
}

#[test]
fn hunter_lenet_beside_hepack_s_program() {
    let g = hunter_lenet();
    let cost = DiagonalPacking::default()
        .count(&g, &OpTimes::default())
        .unwrap();
    let rows = op_rows(&g);
    let k = |kind: &str| hepack_backend::program::kind_index(kind).unwrap();
    let mut text = String::from("layer: GAZELLE perm/mult/add | hepack rotate/mul_plain/add\n");
    for p in paper_counts(&g) {
        let row = &rows[p.layer.as_str()];
        let ops = cost.layers.iter().find(|l| &l.layer == row).unwrap().ops.0;
        text.push_str(&format!(
            "{}: {}/{}/{} | {}/{}/{}\n",
            p.layer,
            p.gazelle.perm,
            p.gazelle.mult,
            p.gazelle.add,
            ops[k("rotate")],
            ops[k("mul_plain")],
            ops[k("add")]
        ));
    }
    insta::assert_snapshot!(text);
}

/// VGG-16 on 32×32 CIFAR images: 13 3×3 convolutions in five blocks, then
/// 512 → 4096 → 4096 → 10, all weights non-zero.
fn vgg16() -> Graph {
    let mut ops: Vec<(String, Op)> = Vec::new();
    let mut channels = 3;
    let ones = |f: usize, c: usize| {
        Op::Conv(Conv {
            weight: Array4::from_elem((f, c, 3, 3), 1.0),
            bias: Array1::zeros(f),
            strides: [1, 1],
            pads: [1; 4],
            dilations: [1, 1],
        })
    };
    for (block, (width, convs)) in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
        .into_iter()
        .enumerate()
    {
        for i in 0..convs {
            ops.push((format!("conv{block}_{i}"), ones(width, channels)));
            ops.push((format!("act{block}_{i}"), square()));
            channels = width;
        }
        ops.push((format!("pool{block}"), pool()));
    }
    ops.push(("flat".into(), Op::Flatten));
    for (i, (k, n)) in [(512, 4096), (4096, 4096), (4096, 10)]
        .into_iter()
        .enumerate()
    {
        ops.push((
            format!("fc{i}"),
            Op::Dense(Dense {
                weight: Array2::from_elem((k, n), 1.0),
                bias: Array1::zeros(n),
            }),
        ));
    }
    chain(Shape::new([3, 32, 32]), ops)
}

#[test]
fn a_vgg16_sized_model_is_counted() {
    let g = vgg16();
    let layers = paper_counts(&g);
    assert_eq!(layers.len(), 16);
    // The formulas of Table 4, term by term.
    let conv = |ci: u64, co: u64, cn: u64| {
        let (ins, outs) = (ci.div_ceil(cn), co.div_ceil(cn));
        counts(
            ins * 8 + ins * outs * (cn - 1),
            ins * co * 9,
            outs * (ci * 9 - 1),
        )
    };
    assert_eq!(layers[0].gazelle, conv(3, 64, 1));
    assert_eq!(layers[1].gazelle, conv(64, 64, 2));
    assert_eq!(layers[12].gazelle, conv(512, 512, 2));
    // FC 512 → 4096: n = 4096 (the output is the longer side), 512 diagonals.
    assert_eq!(layers[13].gazelle, counts(511, 512, 511));
    // FC 4096 → 10: 16 diagonals of 4096, folded log₂(4096/16) = 8 times.
    assert_eq!(layers[15].gazelle, counts(23, 16, 23));
    assert!(layers[..13].iter().all(|l| {
        let a = l.artemis.unwrap();
        a.alpha == 1.0 && a.beta == 1.0
    }));
}
