//! MOFHEI's two fine-tuning steps on small graphs: HE-friendly conversion
//! replaces latest first and trains after each replacement; block pruning
//! follows its schedule, keeps masked blocks at zero, compresses, and its
//! group lasso has the gradient of its penalty.

use hepack_ir::testing::Rng;
use hepack_ir::{Activation, Conv, Dense, Graph, Op, Pool, Shape};
use hepack_passes::poly::ActToPoly;
use hepack_passes::pool::MaxPoolToAvgPool;
use hepack_passes::prune::{
    linear_layers, units_to_prune, BatchPacking, Block, Criterion, LayerKind, Stage, Targets,
};
use hepack_passes::{ActChoice, Pass};
use hepack_tune::convert::needs_conversion;
use hepack_tune::grad::params;
use hepack_tune::{
    evaluate, he_friendly, prune_while_training, BlockPruning, ConvertOptions, Data, FitOptions,
    Grads, Hooks, Lasso, PruneOptions, PruneSchedule, Target, TuneError,
};
use ndarray::{Array1, Array2, ArrayD, Axis};

mod common;
use common::{sandwich, toy_data, weights};

/// Mean-|w| pruning of every layer but the output to `sparsity`, on
/// `schedule`, then (train, fine-tune).
fn prune_options(
    sparsity: f64,
    schedule: PruneSchedule,
    (train, fine): (FitOptions, FitOptions),
) -> PruneOptions {
    PruneOptions {
        criterion: Criterion::MeanAbs,
        targets: Targets {
            sparsity,
            per_layer: Default::default(),
            prune_output: false,
        },
        schedule,
        train,
        fine,
    }
}

/// conv(3 filters) → relu → max pool → flatten → dense(4) → relu → dense(2),
/// on a 2×6×6 input.
fn relu_net() -> Graph {
    let mut g = Graph::new("x", Shape::new([2, 6, 6]));
    let mut r = Rng(5);
    let conv = Op::Conv(Conv {
        weight: weights((3, 2, 2, 2), 3),
        bias: Array1::from(vec![0.1, -0.2, 0.3]),
        strides: [1, 1],
        pads: [1, 0, 0, 1],
        dilations: [1, 1],
    });
    let pool = Op::MaxPool(Pool {
        kernel: [2, 2],
        strides: [2, 2],
        pads: [0; 4],
        dilations: [1, 1],
        ceil_mode: false,
    });
    let mut dense = |k: usize, n: usize| {
        Op::Dense(Dense {
            weight: Array2::from_shape_fn((k, n), |_| r.weight()),
            bias: Array1::zeros(n),
        })
    };
    let relu = || Op::Activation(Activation::Relu);
    let mut at = g.input();
    for (name, op) in [
        ("conv", conv),
        ("op", relu()),
        ("pool", pool),
        ("flat", Op::Flatten),
        ("dense", dense(27, 4)),
        ("act", relu()),
        ("out", dense(4, 2)),
    ] {
        at = g.add(name, op, &[at]).unwrap();
    }
    g.set_output(at);
    g.verify().unwrap();
    g
}

fn options(epochs: usize, lr: f64) -> FitOptions {
    FitOptions {
        epochs,
        batch_size: 32,
        lr,
        seed: 3,
        patience: 3,
        freeze_zeros: true,
    }
}

/// Owned inputs and labels.
type Set = (ArrayD<f64>, Vec<i64>);

/// The first `n` samples and the rest.
fn split((x, labels): Set, n: usize) -> (Set, Set) {
    let (a, b) = x.view().split_at(Axis(0), n);
    let (la, lb) = labels.split_at(n);
    ((a.to_owned(), la.to_vec()), (b.to_owned(), lb.to_vec()))
}

fn data((x, labels): &Set) -> Data<'_> {
    Data {
        x: x.view(),
        target: Target::Labels(labels),
    }
}

#[test]
fn conversion_replaces_pools_then_activations_latest_first_and_training_helps() {
    let (train, val) = split(toy_data(384, 9), 320);
    let (train, val) = (data(&train), data(&val));
    let mut g = relu_net();
    // Train the original a little so the conversion has something to lose.
    hepack_tune::fit(&mut g, &train, None, &options(8, 1e-2), |_, _| true, |_| {}).unwrap();

    // The same replacements with no training after them.
    let mut untrained = g.clone();
    MaxPoolToAvgPool::default().run(&mut untrained).unwrap();
    ActToPoly {
        calib: Some(train.x.to_owned()),
        ..ActToPoly::new(ActChoice::LeastSquares(2))
    }
    .run(&mut untrained)
    .unwrap();

    let opts = ConvertOptions {
        act: ActChoice::LeastSquares(2),
        head: options(3, 1e-2),
        fine: options(3, 1e-3),
        calib_samples: 320,
    };
    let mut phases = Vec::new();
    let done = he_friendly(&mut g, &train, Some(&val), &opts, |phase, _| {
        if phases.last() != Some(&phase.to_string()) {
            phases.push(phase.to_string());
        }
    })
    .unwrap();
    let layers: Vec<&str> = done.iter().map(|r| r.layer.as_str()).collect();
    assert_eq!(
        layers,
        ["pool", "act", "op"],
        "latest first, pools before activations"
    );
    assert_eq!(
        phases,
        [
            "pool: layers after",
            "pool: whole model",
            "act: coefficients",
            "act: whole model",
            "op: coefficients",
            "op: whole model",
        ]
    );
    assert!(!needs_conversion(&g));
    assert!(g
        .topo_order()
        .iter()
        .all(|&id| !matches!(g.node(id).op, Op::MaxPool(_) | Op::Activation(_))));
    let (tuned, _) = evaluate(&g, &val).unwrap();
    let (raw, _) = evaluate(&untrained, &val).unwrap();
    assert!(
        tuned < raw,
        "validation loss {tuned} after tuning, {raw} without"
    );
}

#[test]
fn square_needs_only_fine_tuning() {
    let (train, val) = split(toy_data(128, 4), 96);
    let (train, val) = (data(&train), data(&val));
    let mut g = relu_net();
    let opts = ConvertOptions {
        act: ActChoice::Square,
        head: options(1, 1e-2),
        fine: options(1, 1e-3),
        calib_samples: 64,
    };
    let done = he_friendly(&mut g, &train, Some(&val), &opts, |_, _| {}).unwrap();
    for r in &done[1..] {
        assert!(
            r.head.is_empty(),
            "{}: no coefficient phase for x²",
            r.layer
        );
        assert_eq!(r.fine.len(), 1);
    }
    for id in g.topo_order() {
        if let Op::Polynomial(p) = &g.node(id).op {
            // Fine-tuning trains the polynomial too, but from x².
            assert_eq!(p.degree(), 2);
        }
    }
}

/// Zero units (blocks with every weight zero) of each linear layer.
fn zero_units(g: &Graph, packing: &BatchPacking) -> Vec<Vec<bool>> {
    linear_layers(g)
        .iter()
        .map(|l| {
            packing
                .units(l)
                .iter()
                .map(|u| !u.is_kept(&l.matrix))
                .collect()
        })
        .collect()
}

#[test]
fn pruning_steps_follow_the_schedule_and_never_revive_a_block() {
    let mut g = relu_net();
    let packing = BatchPacking {
        block: Block::Rect { h: 2, w: 1 },
    };
    let schedule = PruneSchedule {
        initial: 0.0,
        target: 0.75,
        steps: 3,
        start: 2,
        every: 4,
    };
    let targets = Targets {
        sparsity: 0.75,
        per_layer: Default::default(),
        prune_output: false,
    };
    let stages = [Stage::all(Box::new(packing))];
    let mut hooks = BlockPruning::new(&stages, Criterion::MeanAbs, targets, schedule, Vec::new());
    let mut r = Rng(17);
    let mut before = zero_units(&g, &packing);
    for step in 0..20 {
        let changed = hooks.before_step(step, &mut g).unwrap();
        assert_eq!(changed, schedule.progress_at(step).is_some(), "step {step}");
        let now = zero_units(&g, &packing);
        for (layer, (b, a)) in before.iter().zip(&now).enumerate() {
            for (unit, (&was, &is)) in b.iter().zip(a).enumerate() {
                assert!(
                    !was || is,
                    "step {step}: unit {unit} of layer {layer} revived"
                );
            }
            let expected = match (layer, schedule.sparsity_at(step, 0.75)) {
                (2, _) => 0, // the output layer is kept whole
                (_, Some(s)) => units_to_prune(s, a.len()),
                (_, None) => b.iter().filter(|&&z| z).count(),
            };
            assert_eq!(
                a.iter().filter(|&&z| z).count(),
                expected,
                "step {step}, layer {layer}"
            );
        }
        // Training moves the kept weights (and would move the pruned ones,
        // but the optimiser holds them; here nothing does, so move all).
        for id in g.topo_order() {
            if let Op::Dense(d) = &mut g.node_mut(id).op {
                d.weight
                    .mapv_inplace(|w| if w == 0.0 { 0.0 } else { w + 0.3 * r.weight() });
            }
        }
        before = zero_units(&g, &packing);
    }
    assert_eq!(hooks.sparsity(), Some(0.75));
    assert!(!hooks.settled(schedule.end()) && hooks.settled(schedule.end() + 1));
}

#[test]
fn pruning_while_training_compresses_and_keeps_accuracy() {
    let (train, val) = split(toy_data(384, 9), 320);
    let (train, val) = (data(&train), data(&val));
    let mut g = sandwich(Op::Activation(Activation::Square));
    hepack_tune::fit(
        &mut g,
        &train,
        None,
        &options(10, 1e-2),
        |_, _| true,
        |_| {},
    )
    .unwrap();
    let (_, acc_before) = evaluate(&g, &val).unwrap();
    let packing = BatchPacking {
        block: Block::Column,
    };
    let options = prune_options(
        0.67,
        PruneSchedule {
            initial: 0.0,
            target: 0.0,
            steps: 4,
            start: 0,
            every: 5,
        },
        (options(6, 1e-2), options(4, 1e-3)),
    );
    let mut seen = Vec::new();
    let lasso = vec![Lasso {
        lambda: 1e-3,
        packing: &packing,
        layers: LayerKind::All,
    }];
    let stages = [Stage::all(Box::new(packing))];
    let run = prune_while_training(
        &mut g,
        &stages,
        lasso,
        &train,
        Some(&val),
        &options,
        |p, e| seen.push((p.to_string(), e.sparsity)),
    )
    .unwrap();
    // 3 filters at 0.67 keep 1 (floor(0.67 · 3) = 2 pruned); the output stays.
    let convs: Vec<usize> = linear_layers(&g).iter().map(|l| l.matrix.ncols()).collect();
    assert_eq!(convs, [1, 4]);
    assert_eq!(run.compress.removed.len(), 1);
    let sparsities: Vec<f64> = run.pruning.iter().filter_map(|e| e.sparsity).collect();
    assert!(
        sparsities.windows(2).all(|w| w[0] <= w[1]),
        "{sparsities:?}"
    );
    assert!((sparsities.last().unwrap() - 0.67).abs() < 1e-12);
    assert_eq!(seen.len(), run.pruning.len() + run.fine.len());
    let (_, acc_after) = evaluate(&g, &val).unwrap();
    assert!(
        acc_after >= acc_before - 0.1,
        "accuracy {acc_before} before pruning, {acc_after} after"
    );
}

#[test]
fn a_schedule_longer_than_the_run_is_refused() {
    let set = toy_data(64, 2);
    let train = data(&set);
    let mut g = sandwich(Op::Activation(Activation::Square));
    let packing = BatchPacking {
        block: Block::Column,
    };
    let options = prune_options(
        0.5,
        PruneSchedule {
            initial: 0.0,
            target: 0.5,
            steps: 8,
            start: 0,
            every: 1,
        },
        // 2 epochs of 2 steps: 4 < 8
        (options(2, 1e-2), options(1, 1e-3)),
    );
    let stages = [Stage::all(Box::new(packing))];
    let err = prune_while_training(
        &mut g,
        &stages,
        Vec::new(),
        &train,
        None,
        &options,
        |_, _| {},
    )
    .unwrap_err();
    assert!(matches!(err, TuneError::Schedule(_)), "{err}");
    assert!(err.to_string().contains("pruning epochs"), "{err}");
}

/// λ Σ_units ‖w_unit‖₂, computed on W̄ (the pruner's view), independently of
/// the hook's mapping to weight tensors.
fn penalty(g: &Graph, packing: &BatchPacking, lambda: f64, layers: usize) -> f64 {
    linear_layers(g)
        .iter()
        .take(layers)
        .flat_map(|l| {
            packing.units(l).into_iter().map(|u| {
                let sq: f64 = u.cells.iter().map(|&[r, c]| l.matrix[[r, c]].powi(2)).sum();
                lambda * sq.sqrt()
            })
        })
        .sum()
}

#[test]
fn group_lasso_adds_the_gradient_of_its_penalty() {
    let g = relu_net();
    let packing = BatchPacking {
        block: Block::Rect { h: 3, w: 2 },
    };
    let lambda = 0.7;
    let targets = Targets {
        sparsity: 0.5,
        per_layer: Default::default(),
        prune_output: false,
    };
    let schedule = PruneSchedule {
        initial: 0.0,
        target: 0.5,
        steps: 1,
        start: 1,
        every: 1,
    };
    let stages = [Stage::all(Box::new(packing))];
    let lasso = vec![Lasso {
        lambda,
        packing: &packing,
        layers: LayerKind::All,
    }];
    let mut hooks = BlockPruning::new(&stages, Criterion::MeanAbs, targets, schedule, lasso);
    // The groups are found before the first step (step 0 prunes nothing here).
    let mut g = g;
    assert!(!hooks.before_step(0, &mut g).unwrap());
    // Zero gradients shaped like the parameters, then the hook's addition.
    let bound = g.topo_order().iter().map(|n| n.index() + 1).max().unwrap();
    let mut grads = Grads {
        nodes: vec![Vec::new(); bound],
    };
    for id in g.topo_order() {
        grads.nodes[id.index()] = params(&g.node(id).op)
            .iter()
            .map(|t| ArrayD::zeros(t.raw_dim()))
            .collect();
    }
    hooks.regularise(&g, &mut grads);
    // The conv and the hidden dense layer are pruned; the output layer is not.
    let prunable = 2;
    let h = 1e-6;
    let mut checked = 0;
    for id in g.topo_order() {
        if !matches!(g.node(id).op, Op::Conv(_) | Op::Dense(_)) {
            continue;
        }
        let n = params(&g.node(id).op)[0].len();
        for i in (0..n).step_by(3) {
            let at = |delta: f64| {
                let mut g2 = g.clone();
                let mut t = hepack_tune::grad::params_mut(&mut g2.node_mut(id).op);
                let w = t[0].iter_mut().nth(i).unwrap();
                *w += delta;
                penalty(&g2, &packing, lambda, prunable)
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            let analytic = *grads.nodes[id.index()][0].iter().nth(i).unwrap();
            assert!(
                (numeric - analytic).abs() < 1e-5,
                "{} weight {i}: numeric {numeric}, hook {analytic}",
                g.node(id).name
            );
            checked += 1;
        }
    }
    assert!(checked > 20);
    let out = g.output();
    assert!(grads.nodes[out.index()][0].iter().all(|&v| v == 0.0));
}
