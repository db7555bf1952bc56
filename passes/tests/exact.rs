//! Exact passes leave the interpreter's outputs unchanged, on randomised graphs
//! that contain every op they rewrite.

use hepack_ir::testing::{
    add_outputs, assert_all_close, assert_close, prune_randomly, random_graph, random_input,
    CHOICES, CONV, DENSE,
};
use hepack_ir::{interp, Graph, NodeId, Op};
use hepack_passes::prune::compress;
use hepack_passes::{pipeline, PassOptions};
use proptest::prelude::*;

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
    fn exact_passes_keep_outputs(choices in prop::collection::vec(0u8..CHOICES, 1..10), seed in any::<u64>()) {
        let mut g = random_graph(&choices, seed, false);
        // A third of the cases have several outputs, some mid-graph.
        if seed % 3 == 0 {
            add_outputs(&mut g, seed);
        }
        let x = random_input(&g, seed, 3);
        let before = interp::run_outputs(&g, x.view()).unwrap();
        let options = PassOptions { fuse_max_growth: f64::INFINITY, ..PassOptions::default() };
        for spec in EXACT {
            let mut h = g.clone();
            pipeline(spec, &options).unwrap().run(&mut h, |_, _| {}).unwrap();
            let after = interp::run_outputs(&h, x.view()).unwrap();
            assert_all_close(&before, &after, &format!("{spec} on\n{}", hepack_ir::dump::to_text(&g)));
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
        choices in prop::collection::vec(prop_oneof![Just(CONV), Just(DENSE), 0u8..CHOICES], 2..10),
        seed in any::<u64>(),
    ) {
        let mut g = random_graph(&choices, seed, false);
        prune_randomly(&mut g, seed);
        if seed % 3 == 0 {
            add_outputs(&mut g, seed);
        }
        let x = random_input(&g, seed, 3);
        let before = interp::run_outputs(&g, x.view()).unwrap();
        let mut h = g.clone();
        let report = compress(&mut h).unwrap();
        h.verify().unwrap();
        let after = interp::run_outputs(&h, x.view()).unwrap();
        assert_all_close(&before, &after, &format!("compress on\n{}", hepack_ir::dump::to_text(&g)));
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
    let g = random_graph(&choices, 7, false);
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

#[test]
fn a_constant_folded_into_a_polynomial_gives_it_the_value_s_name() {
    // How a Horner-form export reads back: the product is the polynomial,
    // named after a term (`act/t1`), and the last add is the model's `act`.
    use hepack_ir::{Polynomial, Shape};
    let mut g = Graph::new("x", Shape::new(vec![3]));
    let p = g
        .add(
            "act/t1",
            Op::Polynomial(Polynomial::new(vec![0.0, 0.5, 0.25])),
            &[g.input()],
        )
        .unwrap();
    let c = ndarray::arr0(0.125).into_dyn();
    let add = g.add("act", Op::AddConst(c), &[p]).unwrap();
    g.set_output(add);
    let x = ndarray::Array2::from_shape_vec((1, 3), vec![-1.0, 0.0, 2.0])
        .unwrap()
        .into_dyn();
    let before = interp::run(&g, x.view()).unwrap();
    let mut h = g.clone();
    let reports = pipeline("fold-scalings", &PassOptions::default())
        .unwrap()
        .run(&mut h, |_, _| {})
        .unwrap();
    assert_close(
        &before,
        &interp::run(&h, x.view()).unwrap(),
        "fold-scalings",
    );
    let text = hepack_ir::dump::to_text(&h);
    assert!(
        text.contains("polynomial \"act\"")
            && !text.contains("act/t1")
            && !text.contains("add_const"),
        "{text}"
    );
    assert_eq!(
        reports[0].changes,
        ["folded add_const 'act' into 'act/t1', renamed 'act'"]
    );
}

/// Dense, then `n` alternating per-channel multiplies, adds, identities and
/// scalar multiplies.
fn constant_run(n: usize, scalars_first: bool) -> Graph {
    use hepack_ir::{Dense, Shape};
    use ndarray::{Array1, Array2, ArrayD, IxDyn};
    let mut g = Graph::new("x", Shape::new(vec![4]));
    let mut cur = g.input();
    let vector = |v: f64| ArrayD::from_shape_fn(IxDyn(&[4]), |i| v + 0.001 * i[0] as f64);
    let scalar = |v: f64| ArrayD::from_elem(IxDyn(&[]), v);
    let dense = Op::Dense(Dense {
        weight: Array2::from_shape_fn((4, 4), |(i, j)| (i as f64 - j as f64) * 0.3 + 0.1),
        bias: Array1::from_elem(4, 0.2),
    });
    if !scalars_first {
        cur = g.add("d", dense.clone(), &[cur]).unwrap();
    }
    for i in 0..n {
        let op = if scalars_first {
            Op::MulConst(scalar(1.0 + 1e-4 * (i % 7) as f64))
        } else {
            match i % 4 {
                0 => Op::MulConst(vector(1.0001)),
                1 => Op::AddConst(vector(1e-4)),
                2 => Op::Identity,
                _ => Op::MulConst(scalar(0.9999)),
            }
        };
        cur = g.add(format!("c{i}"), op, &[cur]).unwrap();
    }
    if scalars_first {
        cur = g.add("d", dense, &[cur]).unwrap();
    }
    g.set_output(cur);
    g
}

#[test]
fn long_runs_of_constants_fold_into_their_layer_exactly() {
    // Runs of thousands of constants, after a layer (folded backwards into
    // it) and before one (scalars carried forwards into its weights): each
    // pass sweeps once instead of restarting after every fold.
    for scalars_first in [false, true] {
        let g = constant_run(4000, scalars_first);
        let x = random_input(&g, 7, 3);
        let before = interp::run(&g, x.view()).unwrap();
        let mut h = g.clone();
        pipeline("remove-identity,fold-scalings", &PassOptions::default())
            .unwrap()
            .run(&mut h, |_, _| {})
            .unwrap();
        assert_eq!(
            h.len(),
            2,
            "input and the layer:\n{}",
            hepack_ir::dump::to_text(&h)
        );
        let after = interp::run(&h, x.view()).unwrap();
        assert_close(&before, &after, "a folded run of constants");
    }
}
