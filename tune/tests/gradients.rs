//! The backward pass agrees with finite differences of the reference
//! interpreter, for every op training goes through; training is
//! deterministic, lowers the loss and keeps pruned weights at zero.

use hepack_ir::op::Patches;
use hepack_ir::testing::{prune_randomly, random_graph, random_input, Rng, CHOICES};
use hepack_ir::{Activation, AvgPool, Graph, Op, Pool, Shape, Softmax};
use hepack_tune::grad::{params, params_mut};
use hepack_tune::{fit, loss_and_grads, Data, FitOptions, Loss, Target};
use ndarray::{ArrayD, IxDyn};

mod common;
use common::{sandwich, toy_data};

/// Compares every gradient entry (up to 40 per tensor) with a central
/// difference of the loss the interpreter computes.
fn check_gradients(g: &Graph, x: &ArrayD<f64>, loss: &Loss<'_>, context: &str) {
    let (_, grads) = loss_and_grads(g, x.view(), loss, 1.0).unwrap();
    let mut checked = 0;
    for id in g.topo_order() {
        let tensors = params(&g.node(id).op).len();
        for k in 0..tensors {
            let n = params(&g.node(id).op)[k].len();
            for e in (0..n).step_by(n.div_ceil(40).max(1)) {
                let h = 1e-6;
                let at = |delta: f64| {
                    let mut g2 = g.clone();
                    let mut t = params_mut(&mut g2.node_mut(id).op);
                    let flat = t[k].as_slice_mut().expect("standard layout");
                    flat[e] += delta;
                    loss_and_grads(&g2, x.view(), loss, 1.0).unwrap().0
                };
                let numeric = (at(h) - at(-h)) / (2.0 * h);
                let analytic = grads.nodes[id.index()][k].as_slice().unwrap()[e];
                let tol = 1e-5 * (1.0 + numeric.abs().max(analytic.abs()));
                assert!(
                    (numeric - analytic).abs() <= tol,
                    "{context}: node {id} tensor {k} entry {e}: analytic {analytic}, numeric {numeric}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "{context}: nothing trainable");
}

fn mse_targets(g: &Graph, batch: usize, seed: u64) -> ArrayD<f64> {
    let mut r = Rng(seed | 1);
    let shape = g.node(g.output()).shape.with_batch(batch);
    ArrayD::from_shape_fn(IxDyn(&shape), |_| r.weight())
}

#[test]
fn random_graphs_match_finite_differences() {
    for seed in 1..=40u64 {
        let mut r = Rng(seed * 7919);
        let choices: Vec<u8> = (0..6).map(|_| (r.below(CHOICES as usize)) as u8).collect();
        let g = random_graph(&choices, seed, false);
        let x = random_input(&g, seed, 3);
        let t = mse_targets(&g, 3, seed);
        if g.topo_order()
            .iter()
            .all(|&id| params(&g.node(id).op).is_empty())
        {
            continue;
        }
        check_gradients(
            &g,
            &x,
            &Loss::Mse(t.view()),
            &format!("seed {seed}: {choices:?}"),
        );
    }
}

#[test]
fn every_op_matches_finite_differences() {
    let pool = Pool {
        kernel: [2, 2],
        strides: [2, 2],
        pads: [0, 0, 1, 1],
        dilations: [1, 1],
        ceil_mode: true,
    };
    let ops = [
        Op::MaxPool(pool.clone()),
        Op::SumPool(pool.clone()),
        Op::AvgPool(AvgPool {
            pool: pool.clone(),
            count_include_pad: false,
        }),
        Op::Patches(Patches {
            kernel: [2, 3],
            strides: [1, 2],
            pads: [1, 1, 0, 0],
            dilations: [1, 1],
        }),
        Op::Transpose(vec![1, 2, 0]),
        Op::Reshape(Shape::new([12, 9])),
        Op::Activation(Activation::Relu),
        Op::Activation(Activation::LeakyRelu { alpha: 0.1 }),
        Op::Activation(Activation::Sigmoid),
        Op::Activation(Activation::Tanh),
        Op::Activation(Activation::Softplus),
        Op::Activation(Activation::Square),
        Op::Polynomial(hepack_ir::Polynomial::new(vec![0.1, 0.5, 0.25, -0.05])),
        Op::GlobalAvgPool,
    ];
    let x = {
        let mut r = Rng(5);
        ArrayD::from_shape_fn(IxDyn(&[3, 2, 6, 6]), |_| r.weight() * 2.0)
    };
    for op in ops {
        let name = format!("{op:?}");
        let g = sandwich(op);
        let t = mse_targets(&g, 3, 9);
        check_gradients(&g, &x, &Loss::Mse(t.view()), &name);
    }
}

#[test]
fn cross_entropy_through_a_softmax_matches_finite_differences() {
    let mut g = sandwich(Op::Activation(Activation::Square));
    let out = g.output();
    let s = g
        .add(
            "softmax",
            Op::Softmax(Softmax {
                axis: 0,
                flatten_trailing: false,
                log: false,
            }),
            &[out],
        )
        .unwrap();
    g.set_output(s);
    let x = {
        let mut r = Rng(8);
        ArrayD::from_shape_fn(IxDyn(&[3, 2, 6, 6]), |_| r.weight())
    };
    check_gradients(
        &g,
        &x,
        &Loss::CrossEntropy(&[0, 3, 1]),
        "softmax cross-entropy",
    );
}

#[test]
fn training_is_deterministic_lowers_the_loss_and_keeps_pruned_weights_at_zero() {
    let (x, labels) = toy_data(256, 3);
    let data = Data {
        x: x.view(),
        target: Target::Labels(&labels),
    };
    let options = FitOptions {
        epochs: 6,
        batch_size: 32,
        lr: 1e-2,
        seed: 7,
        ..FitOptions::default()
    };
    let mut pruned = sandwich(Op::Activation(Activation::Square));
    prune_randomly(&mut pruned, 4);
    let zeros = |g: &Graph| -> Vec<bool> {
        g.topo_order()
            .into_iter()
            .flat_map(|id| match &g.node(id).op {
                Op::Conv(_) | Op::Dense(_) => params(&g.node(id).op)[0]
                    .iter()
                    .map(|&w| w == 0.0)
                    .collect(),
                _ => Vec::new(),
            })
            .collect()
    };
    let before = zeros(&pruned);
    assert!(before.iter().any(|&z| z) && before.iter().any(|&z| !z));

    let mut a = pruned.clone();
    let log_a = fit(&mut a, &data, None, &options, |_, _| true, |_| {}).unwrap();
    let mut b = pruned.clone();
    let log_b = fit(&mut b, &data, None, &options, |_, _| true, |_| {}).unwrap();
    let losses = |log: &[hepack_tune::Epoch]| log.iter().map(|e| e.train_loss).collect::<Vec<_>>();
    assert_eq!(losses(&log_a), losses(&log_b), "same seed, same run");
    let l = losses(&log_a);
    assert!(
        l.last().unwrap() < &(0.5 * l[0]),
        "loss did not fall: {l:?}"
    );
    // Pruned weights are still exactly zero; the others moved.
    let after = zeros(&a);
    for (z0, z1) in before.iter().zip(&after) {
        if *z0 {
            assert!(*z1);
        }
    }
    assert_ne!(
        format!("{:?}", a.node(a.output()).op),
        format!("{:?}", pruned.node(pruned.output()).op)
    );
}
