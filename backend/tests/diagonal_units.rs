//! Diagonal packing's pruning units (Hunter's and Artemis's groups of
//! diagonals): they partition every layer's weights, and zeroing one
//! removes exactly its `mul_plain`s and the rotations it owns from the
//! lowered program.

use std::collections::BTreeSet;

use hepack_backend::diagonal::units::{layer_diagonals, DiagonalUnit, LayerDiagonals};
use hepack_backend::diagonal::DiagonalPacking;
use hepack_backend::{cost, Lowering, OpTimes};
use hepack_ir::testing::Rng;
use hepack_ir::{Activation, Conv, Dense, Graph, Op, Shape};
use hepack_passes::prune::{apply_masks, Masks, Unit};
use ndarray::{Array1, Array2, Array4};

mod common;

use common::{he_friendly, model};

const KINDS: [DiagonalUnit; 3] = [
    DiagonalUnit::Diagonal,
    DiagonalUnit::Position,
    DiagonalUnit::ChannelDiagonal,
];

/// Slots the pruner plans with.
const SLOTS: usize = hepack_backend::diagonal::units::PRUNING_SLOTS;

fn conv(r: &mut Rng, filters: usize, channels: usize, k: usize, stride: usize, pad: usize) -> Op {
    Op::Conv(Conv {
        weight: Array4::from_shape_fn((filters, channels, k, k), |_| r.weight()),
        bias: Array1::from_shape_fn(filters, |_| r.weight()),
        strides: [stride, stride],
        pads: [pad; 4],
        dilations: [1, 1],
    })
}

fn dense(r: &mut Rng, k: usize, n: usize) -> Op {
    Op::Dense(Dense {
        weight: Array2::from_shape_fn((k, n), |_| r.weight()),
        bias: Array1::from_shape_fn(n, |_| r.weight()),
    })
}

fn chain(input: Shape, ops: Vec<(&str, Op)>) -> Graph {
    let mut g = Graph::new("x", input);
    let mut at = g.input();
    for (name, op) in ops {
        at = g.add(name, op, &[at]).unwrap();
    }
    g.set_output(at);
    g.verify().unwrap();
    g
}

/// Hand-made layers: a 3×3 conv on a 6×6 grid (channel diagonals shared
/// by two kernels), a stride-2 conv (output channels multiplexed into the
/// stride's gaps), and a dense layer lowered as Halevi–Shoup's hybrid.
fn hand_made() -> Vec<(&'static str, Graph)> {
    let mut r = Rng(5);
    let sq = || Op::Activation(Activation::Square);
    vec![
        (
            "conv",
            chain(
                Shape::new([2, 6, 6]),
                vec![("conv", conv(&mut r, 3, 2, 3, 1, 1))],
            ),
        ),
        (
            "strided",
            chain(
                Shape::new([1, 8, 8]),
                vec![("conv", conv(&mut r, 4, 1, 3, 2, 0))],
            ),
        ),
        (
            "dense",
            chain(
                Shape::new([12]),
                vec![
                    ("conv", dense(&mut r, 12, 5)),
                    ("sq", sq()),
                    ("out", dense(&mut r, 5, 3)),
                ],
            ),
        ),
    ]
}

/// `mul_plain`s and rotations the lowered program spends in layer `name`,
/// and its slot count.
fn lowered(g: &Graph, name: &str) -> ((u64, u64), usize) {
    let times = OpTimes::default();
    let (program, _) = DiagonalPacking::default().lower(g, &times).unwrap();
    let slots = program.slots.as_ref().unwrap().slots as usize;
    let c = cost(&program, &times);
    let k = |kind: &str| hepack_backend::program::kind_index(kind).unwrap();
    let ops = c
        .layers
        .iter()
        .find(|l| l.layer == name)
        .map_or((0, 0), |l| (l.ops.0[k("mul_plain")], l.ops.0[k("rotate")]));
    (ops, slots)
}

/// `g` with `unit`'s weights of layer `layer` zeroed.
fn without(g: &Graph, layer: &LayerDiagonals, unit: &Unit) -> Graph {
    let mut mask = Array2::from_elem(layer.weights.matrix.dim(), true);
    for &[r, c] in &unit.cells {
        mask[[r, c]] = false;
    }
    let masks = Masks::from([(layer.weights.name.to_string(), mask)]);
    let mut g = g.clone();
    apply_masks(&mut g, &masks).unwrap();
    g
}

#[test]
fn units_partition_every_layer_s_weights() {
    let mut graphs = hand_made();
    graphs.push(("lenet5", he_friendly(model("lenet5"), "")));
    graphs.push(("mlp", he_friendly(model("mlp"), "")));
    for (name, g) in &graphs {
        for layer in layer_diagonals(g, SLOTS).unwrap() {
            assert!(layer.cells.iter().all(|keys| !keys.is_empty()));
            for kind in KINDS {
                let units = layer.units(kind);
                let mut seen = vec![0u8; layer.weights.matrix.len()];
                let f = layer.weights.matrix.ncols();
                for u in &units {
                    for &[r, c] in &u.cells {
                        seen[r * f + c] += 1;
                    }
                }
                assert!(
                    seen.iter().all(|&n| n == 1),
                    "{name} {} {kind:?}",
                    layer.weights.name
                );
                // Units own disjoint diagonals.
                let owned: usize = units.iter().map(|u| layer.diagonals_of(u).len()).sum();
                let all: BTreeSet<_> = layer.cells.iter().flatten().collect();
                assert_eq!(owned, all.len(), "{name} {} {kind:?}", layer.weights.name);
            }
        }
    }
}

#[test]
fn coarser_units_group_finer_ones() {
    for (name, g) in hand_made() {
        let layer = &layer_diagonals(&g, SLOTS).unwrap()[0];
        let count = |kind| layer.units(kind).len();
        let (d, p, c) = (
            count(DiagonalUnit::Diagonal),
            count(DiagonalUnit::Position),
            count(DiagonalUnit::ChannelDiagonal),
        );
        assert!(d >= p && d >= c && p > 1 && c > 1, "{name}: {d} {p} {c}");
    }
}

#[test]
fn zeroing_a_unit_removes_exactly_its_ops() {
    let times = OpTimes::default();
    let mut same_split = 0;
    for (name, g) in hand_made() {
        // These small layers compile to N = 8192; the pruner's units (at
        // N = 16384) are the same.
        let (ops, slots) = lowered(&g, "conv");
        assert_eq!(slots, SLOTS / 2);
        let layer = layer_diagonals(&g, slots).unwrap().remove(0);
        let wide = layer_diagonals(&g, SLOTS).unwrap().remove(0);
        for kind in KINDS {
            assert_eq!(layer.units(kind), wide.units(kind), "{name} {kind:?}");
        }
        let kept = layer.kept();
        let before = layer.ops(&kept, &times);
        assert_eq!(
            ops,
            (before.products, before.rotations),
            "{name}: counting = lowering"
        );
        for kind in KINDS {
            for unit in layer.units(kind) {
                let gone = layer.diagonals_of(&unit);
                let left: BTreeSet<_> = kept.difference(&gone).copied().collect();
                let at_split = |k: &BTreeSet<_>| layer.ops_at(k, layer.n1);
                let owned = at_split(&kept).rotations - at_split(&left).rotations;
                // The unit's diagonals and the steps only it uses, as listed.
                assert_eq!(
                    unit.he_ops,
                    2 * gone.len() as u64 + owned,
                    "{name} {kind:?}"
                );
                if kind != DiagonalUnit::Diagonal {
                    // A position or channel diagonal is one baby or giant step.
                    let steps: BTreeSet<i64> = gone
                        .iter()
                        .map(|&(_, _, k)| match kind {
                            DiagonalUnit::Position => k.rem_euclid(layer.n1),
                            _ => k.div_euclid(layer.n1),
                        })
                        .collect();
                    assert!(
                        owned >= 1 || steps.contains(&0),
                        "{name} {kind:?} {steps:?}"
                    );
                }
                // The program without the unit has exactly what is left.
                let after = layer.ops(&left, &times);
                let (got, _) = lowered(&without(&g, &layer, &unit), "conv");
                assert_eq!(got, (after.products, after.rotations), "{name} {kind:?}");
                assert_eq!(got.0, before.products - gone.len() as u64);
                if layer.split(&left, &times) == layer.n1 && !left.is_empty() {
                    assert_eq!(got.1, before.rotations - owned, "{name} {kind:?}");
                    same_split += 1;
                }
            }
        }
    }
    assert!(same_split > 20, "{same_split}");
}
