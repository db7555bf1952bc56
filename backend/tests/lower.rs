//! Batch-packing lowering: the simulated program agrees with the reference
//! interpreter; dead-ciphertext elimination removes what pruning zeroed.

use hepack_backend::program::kind_index;
use hepack_backend::simulate::{simulate, simulate_outputs};
use hepack_backend::{Cost, Lowering, OpTimes};
use hepack_ir::testing::{
    add_outputs, assert_all_close, prune_randomly, random_graph, CHOICES, CONV, DENSE,
};
use hepack_ir::{interp, Graph};
use hepack_passes::prune::{apply_masks, compress, find_masks, Criterion, Targets};
use proptest::prelude::*;

mod common;

use common::{he_friendly, inputs, model, BATCH};

/// Op times under which every square that feeds only linear layers leaves
/// its rescale to them (terms nearly free), relinearized lazily too unless
/// `relinearize_cheap`.
fn deferring(relinearize_cheap: bool) -> OpTimes {
    let mut t = OpTimes {
        combination_term: 1e-9,
        combination_term_alone: 1e-9,
        combination_term_grouped: 1e-9,
        ..OpTimes::default()
    };
    if relinearize_cheap {
        t.seconds[kind_index("relinearize").unwrap()] = 1e-9;
    }
    t
}

/// The program computes what the interpreter computes, and costing without
/// building it gives the same numbers: under SEAL's op times and under
/// times that defer every square's rescale it can (with and without lazy
/// relinearization), so both schedules are checked on every graph.
fn assert_agree(g: &Graph, context: &str) {
    for times in [OpTimes::default(), deferring(false), deferring(true)] {
        let (program, cost) = BATCH.lower(g, &times).unwrap();
        let counted = BATCH.count(g, &times).unwrap();
        assert_eq!(
            Cost {
                peak_ciphertexts: None,
                peak_bytes: None,
                ..cost
            },
            counted,
            "{context}"
        );
        let x = inputs(g, 4);
        let want = interp::run_outputs(g, x.view()).unwrap();
        let got = simulate_outputs(&program, x.view()).unwrap();
        assert_all_close(&want, &got, context);
    }
}

fn pruned(g: &Graph, sparsity: f64) -> Graph {
    let mut g = g.clone();
    let t = Targets {
        sparsity,
        per_layer: Default::default(),
        prune_output: false,
    };
    let masks = find_masks(&g, &BATCH, Criterion::MeanAbs, &t).unwrap();
    apply_masks(&mut g, &masks).unwrap();
    g
}

#[test]
fn simulated_programs_match_the_interpreter() {
    for name in ["lenet5", "mlp", "ae1", "ae2", "ae3", "cryptonets"] {
        let g = he_friendly(model(name), "");
        assert_agree(&g, name);
        // Masked (zeros left in place) and compressed pruned models.
        let p = pruned(&g, 0.5);
        assert_agree(&p, &format!("{name} masked"));
        let mut c = p.clone();
        compress(&mut c).unwrap();
        assert_agree(&c, &format!("{name} compressed"));
    }
    // The conv-as-dense view lowers to the same function.
    assert_agree(
        &he_friendly(model("lenet5"), ",conv-to-dense"),
        "lenet5 conv-to-dense",
    );
}

/// CryptoNets' squares feed linear layers. Priced with SEAL's op times, a
/// relinearization per output of the layers that read them is cheaper than
/// one per square: 845 + 100 relinearizations become 100 + 10, in the dense
/// layers. When relinearizing is cheap the squares are relinearized where
/// they are. Either way the program is what the interpreter computes, and
/// the choice is the same every time.
#[test]
fn squares_are_relinearized_where_the_op_times_say() {
    let g = he_friendly(model("cryptonets"), "");
    let relinearizations = |cost: &Cost| -> Vec<(String, u64)> {
        cost.layers
            .iter()
            .map(|l| (l.layer.clone(), l.ops.get("relinearize")))
            .filter(|&(_, n)| n > 0)
            .collect()
    };
    let seal = OpTimes::default();
    let (lazy, cost) = BATCH.lower(&g, &seal).unwrap();
    assert_eq!(cost.total.get("relinearize"), 110);
    assert_eq!(
        relinearizations(&cost),
        [("/3/Gemm".to_string(), 100), ("/5/Gemm".to_string(), 10)]
    );
    assert_eq!(BATCH.lower(&g, &seal).unwrap().0, lazy, "deterministic");

    let mut cheap = OpTimes::default();
    cheap.seconds[hepack_backend::program::kind_index("relinearize").unwrap()] = 1e-5;
    let (eager, cost) = BATCH.lower(&g, &cheap).unwrap();
    assert_eq!(cost.total.get("relinearize"), 945);
    assert_eq!(
        relinearizations(&cost),
        [("/1/Pow".to_string(), 845), ("/4/Pow".to_string(), 100)]
    );
    assert_eq!(BATCH.count(&g, &cheap).unwrap().total, cost.total);

    let x = inputs(&g, 4);
    let want = interp::run_outputs(&g, x.view()).unwrap();
    for program in [&lazy, &eager] {
        let got = simulate_outputs(program, x.view()).unwrap();
        assert_all_close(&want, &got, "cryptonets");
    }
}

/// CryptoNets' squares feed linear layers: 845 squares read by 100 dense
/// outputs, 100 by 10. Where the readers' terms are cheap enough (as the
/// grouped kernel makes them) each square's rescale is left to the
/// readers, two rescales per output: 1,900 rescales become 845 + 200 + 20,
/// the depth unchanged. Under SEAL's ungrouped term time only the second
/// layer's pays (its readers' terms sit at two primes, so the prime more
/// costs them half again; the first's, at four, a quarter).
#[test]
fn square_rescales_are_deferred_where_the_op_times_say() {
    let g = he_friendly(model("cryptonets"), "");
    let rescales = |cost: &Cost| -> Vec<(String, u64)> {
        cost.layers
            .iter()
            .map(|l| (l.layer.clone(), l.ops.get("rescale")))
            .filter(|&(_, n)| n > 0)
            .collect()
    };
    let (seal, cost) = BATCH.lower(&g, &OpTimes::default()).unwrap();
    assert_eq!(
        rescales(&cost),
        [
            ("/0/Conv".to_string(), 845),
            ("/1/Pow".to_string(), 845),
            ("/3/Gemm".to_string(), 100),
            ("/5/Gemm".to_string(), 20),
        ]
    );
    // A term in a full group at a quarter of one alone's time.
    let mut grouped = OpTimes::default();
    grouped.combination_term_grouped = grouped.combination_term_alone / 4.0;
    let (deferred, cost) = BATCH.lower(&g, &grouped).unwrap();
    assert_eq!(
        rescales(&cost),
        [
            ("/0/Conv".to_string(), 845),
            ("/3/Gemm".to_string(), 200),
            ("/5/Gemm".to_string(), 20),
        ]
    );
    assert_eq!(cost.total.get("relinearize"), 110);
    assert_eq!(cost.depth, 5);
    assert_eq!(BATCH.count(&g, &grouped).unwrap().total, cost.total);
    assert_eq!(
        BATCH.lower(&g, &grouped).unwrap().0,
        deferred,
        "deterministic"
    );
    // The squares are left at Δ², one level up, and their readers' terms
    // multiply there.
    let text = deferred.to_text();
    let unrescaled = format!(
        "level 4, scale 2^{}.00, size 3",
        2 * deferred.params.scale_bits
    );
    assert!(
        text.lines()
            .any(|l| l.contains("= square") && l.contains(&unrescaled)),
        "{unrescaled}\n{text}"
    );
    let x = inputs(&g, 4);
    let want = interp::run_outputs(&g, x.view()).unwrap();
    for program in [&seal, &deferred] {
        hepack_backend::levels::check(program).unwrap();
        let got = simulate_outputs(program, x.view()).unwrap();
        assert_all_close(&want, &got, "cryptonets");
    }
}

/// The scheduler prices a linear layer's terms at the groups the runtime
/// forms (`schedule.rs`): CryptoNets' first dense layer, 100 neurons that
/// read every input, runs as 12 groups of 8 and one of 4, and its 5×5
/// stride-2 convolution in groups of 3 neighbours, as the window overlap
/// predicts (a row's end, or a filter's, breaks some).
#[test]
fn linear_layers_run_in_the_groups_the_scheduler_prices() {
    let g = he_friendly(model("cryptonets"), "");
    let (program, _) = BATCH.lower(&g, &OpTimes::default()).unwrap();
    let metas = hepack_backend::levels::check(&program).unwrap();
    let fusion = hepack_backend::fuse::Fusion::of(&program, &metas);
    let sizes = |layer: &str| -> Vec<usize> {
        let idx = program
            .layers
            .iter()
            .position(|l| l.as_str() == layer)
            .unwrap();
        fusion
            .groups
            .iter()
            .filter(|m| program.instrs[m[0] as usize].layer.0 as usize == idx)
            .map(Vec::len)
            .collect()
    };
    let dense = sizes("/3/Gemm");
    assert_eq!(dense.len(), 13, "{dense:?}");
    assert_eq!(dense.iter().filter(|&&n| n == 8).count(), 12, "{dense:?}");
    let conv = sizes("/0/Conv");
    assert!(conv.len() > 100, "{conv:?}");
    let threes = conv.iter().filter(|&&n| n == 3).count();
    assert!(conv.iter().all(|&n| n <= 3), "{conv:?}");
    assert!(
        threes * 10 >= conv.len() * 8,
        "mostly groups of 3: {conv:?}"
    );
}

/// Under SEAL with Intel HEXL (`hepack calibrate` on the development
/// machine: relinearize 3.487 ms, rescale 0.358, a term 0.093 alone and
/// 0.048 in a group of 8), CryptoNets' first squares are relinearized by
/// the dense layer that reads them, which groups its outputs: 110
/// relinearizations, the run measured fastest. Priced at a lone term's
/// time, the same squares would be relinearized one by one (845 + 10).
#[test]
fn squares_feeding_grouped_outputs_are_relinearized_by_them() {
    let g = he_friendly(model("cryptonets"), "");
    let mut hexl = OpTimes::default();
    hexl.seconds[kind_index("relinearize").unwrap()] = 3.487e-3;
    hexl.seconds[kind_index("rescale").unwrap()] = 0.358e-3;
    hexl.combination_term_alone = 0.093e-3;
    hexl.combination_term_grouped = 0.048e-3;
    let relinearizations = |t: &OpTimes| BATCH.count(&g, t).unwrap().total.get("relinearize");
    assert_eq!(relinearizations(&hexl), 110);
    let alone = OpTimes {
        combination_term_grouped: hexl.combination_term_alone,
        ..hexl.clone()
    };
    assert_eq!(relinearizations(&alone), 855);
}

#[test]
fn masked_and_compressed_models_cost_the_same() {
    // DCE on the masked model finds what compression removes structurally.
    let g = he_friendly(model("lenet5"), "");
    let masked = pruned(&g, 0.5);
    let mut compressed = masked.clone();
    compress(&mut compressed).unwrap();
    let (_, a) = BATCH.lower(&masked, &OpTimes::default()).unwrap();
    let (_, b) = BATCH.lower(&compressed, &OpTimes::default()).unwrap();
    assert_eq!(a.he_ops, b.he_ops);
    assert!(a.removed_by_dce > b.removed_by_dce);
    let (_, full) = BATCH.lower(&g, &OpTimes::default()).unwrap();
    assert!(
        a.he_ops < full.he_ops / 2,
        "{} vs {}",
        a.he_ops,
        full.he_ops
    );
}

#[test]
fn models_that_are_not_he_friendly_are_refused() {
    let err = BATCH
        .lower(&model("lenet5"), &OpTimes::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("layer '/1/Relu' (relu) cannot be evaluated under CKKS"),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Random HE-friendly graphs, whole and randomly pruned: the simulated
    /// program matches the interpreter and counting matches lowering.
    #[test]
    fn random_graphs_lower_correctly(
        choices in prop::collection::vec(prop_oneof![Just(CONV), Just(DENSE), 0u8..CHOICES], 1..9),
        seed in any::<u64>(),
    ) {
        let mut g = random_graph(&choices, seed, true);
        // A third of the cases have several outputs, some mid-graph.
        if seed % 3 == 0 {
            add_outputs(&mut g, seed);
        }
        let context = hepack_ir::dump::to_text(&g);
        assert_agree(&g, &context);
        // Rewritten: sum pools, folded scalings, patches + dense.
        let rewritten = he_friendly(g.clone(), ",conv-to-dense");
        assert_agree(&rewritten, &format!("rewritten\n{context}"));
        prune_randomly(&mut g, seed);
        assert_agree(&g, &format!("pruned\n{context}"));
    }
}

/// conv (2 filters, 3×3, no padding) → square → flatten → dense (8 → 2), all
/// weights non-zero and ≠ 1 so every product costs a `mul_plain`.
fn small_conv_net() -> Graph {
    use hepack_ir::{Activation, Conv, Dense, Op, Shape};
    use ndarray::{Array1, Array2, Array4};
    let mut g = Graph::new("x", Shape::new([1, 4, 4]));
    let mut w = 0.0;
    let mut next = move || {
        w += 0.01;
        0.1 + w
    };
    let conv = Op::Conv(Conv {
        weight: Array4::from_shape_fn((2, 1, 3, 3), |_| next()),
        bias: Array1::from_vec(vec![0.2, 0.3]),
        strides: [1, 1],
        pads: [0; 4],
        dilations: [1, 1],
    });
    let c = g.add("conv", conv, &[g.input()]).unwrap();
    let s = g
        .add("square", Op::Activation(Activation::Square), &[c])
        .unwrap();
    let f = g.add("flatten", Op::Flatten, &[s]).unwrap();
    let dense = Op::Dense(Dense {
        weight: Array2::from_shape_fn((8, 2), |_| next()),
        bias: Array1::from_vec(vec![0.4, 0.5]),
    });
    let d = g.add("dense", dense, &[f]).unwrap();
    g.set_output(d);
    g
}

fn layer_ops(cost: &Cost, layer: &str) -> u64 {
    cost.layers
        .iter()
        .find(|l| l.layer == layer)
        .map_or(0, |l| l.he_ops)
}

#[test]
fn hand_zeroed_weights_lose_exactly_the_ops_predicted_by_hand() {
    use hepack_backend::OutputElement;
    use hepack_ir::Op;
    let g = small_conv_net();
    let (_, full) = BATCH.lower(&g, &OpTimes::default()).unwrap();
    // conv: 2 filters × 4 positions × (9 mul_plain + 8 add + 1 add_plain + 1 rescale).
    assert_eq!(layer_ops(&full, "conv"), 152);
    // square: 8 features × one square, left unrelinearized and unrescaled:
    // with SEAL's op times 2 relinearizations and 4 rescales in the dense
    // layer are cheaper than 8 of each here.
    assert_eq!(layer_ops(&full, "square"), 8);
    // dense: 2 neurons × (8 mul_plain + 7 add + 1 add_plain + 1
    // relinearize + 2 rescales).
    assert_eq!(layer_ops(&full, "dense"), 38);
    assert_eq!(full.he_ops, 198);
    assert_eq!(full.depth, 3);

    let mut p = g.clone();
    for id in p.topo_order() {
        match &mut p.node_mut(id).op {
            Op::Conv(c) => {
                // Filter 1 zeroed (its bias 0.3 stays), one weight of filter 0 zeroed.
                c.weight.index_axis_mut(ndarray::Axis(0), 1).fill(0.0);
                c.weight[[0, 0, 0, 0]] = 0.0;
            }
            Op::Dense(d) => d.weight.column_mut(1).fill(0.0), // neuron 1 zeroed
            _ => {}
        }
    }
    assert_agree(&p, "hand-pruned");
    let (program, cost) = BATCH.lower(&p, &OpTimes::default()).unwrap();
    // conv: filter 0 only, 4 × (8 mul_plain + 7 add + 1 add_plain + 1
    // rescale); filter 1 is the public constant 0.3 and is never encrypted.
    assert_eq!(layer_ops(&cost, "conv"), 68);
    // square: filter 0's 4 features; filter 1's square, 0.09, is folded.
    assert_eq!(layer_ops(&cost, "square"), 4);
    // dense neuron 0: 4 encrypted inputs (4 mul_plain + 3 add), one
    // add_plain for its bias plus 0.09 × the weights of the public inputs,
    // one relinearize, two rescales.
    assert_eq!(layer_ops(&cost, "dense"), 11);
    assert_eq!(cost.he_ops, 83);
    // Against a lowering that encrypts everything and multiplies by zeros:
    // 84 conv ops, 4 square ops, 27 dense ops, one output, and one input pixel.
    assert_eq!(cost.removed_by_dce, 84 + 4 + 27 + 1 + 1);
    // Neuron 1 is its bias, a public output.
    assert_eq!(program.outputs[0].elements[0], OutputElement::Encrypted);
    assert_eq!(program.outputs[0].elements[1], OutputElement::Public(0.5));
    // Pixel (0, 0) was read only by the zeroed weight: it is not even encrypted.
    assert_eq!(cost.total.get("encrypt_input"), 15);
    assert_eq!(cost.total.get("output"), 1);
}

#[test]
fn text_form_of_a_small_pruned_program() {
    use hepack_ir::{Dense, Op, Polynomial, Shape};
    use ndarray::{arr1, arr2};
    // x[3] → dense 3→2 (one weight pruned) → 0.5 + x + 0.25x² → dense 2→2,
    // whose neuron 1 reads nothing but a weight of 1 on feature 0.
    let mut g = Graph::new("x", Shape::new([3]));
    let d0 = Op::Dense(Dense {
        weight: arr2(&[[0.5, -1.5], [0.0, 2.0], [0.75, 0.25]]),
        bias: arr1(&[0.0, 0.125]),
    });
    let d0 = g.add("dense0", d0, &[g.input()]).unwrap();
    let poly = Op::Polynomial(Polynomial::new(vec![0.5, 1.0, 0.25]));
    let p = g.add("act", poly, &[d0]).unwrap();
    let d1 = Op::Dense(Dense {
        weight: arr2(&[[3.0, 1.0], [-2.0, 0.0]]),
        bias: arr1(&[0.0, 0.0]),
    });
    let d1 = g.add("dense1", d1, &[p]).unwrap();
    g.set_output(d1);
    assert_agree(&g, "small program");
    let (program, cost) = BATCH.lower(&g, &OpTimes::default()).unwrap();
    // Minimal: each dense layer and the square need a product and a rescale
    // of their own; the quadratic's other coefficients fold into a shift
    // before the square and into dense1's weights and bias after it.
    assert_eq!(cost.depth, 3);
    insta::assert_snapshot!(program.to_text());
    level_checks_reject_what_seal_would(&program);
}

/// Break the schedule in the ways SEAL notices; the simulator must refuse each.
fn level_checks_reject_what_seal_would(program: &hepack_backend::Program) {
    use hepack_backend::levels::check;
    use hepack_backend::{HeOp, Plain};
    assert!(check(program).is_ok());
    let first = |want: fn(&HeOp) -> bool| program.instrs.iter().position(|i| want(&i.op)).unwrap();
    // A rescale turned into a modulus switch: the next sum meets a wrong scale.
    let mut p = program.clone();
    let i = first(|op| matches!(op, HeOp::Rescale(_)));
    if let HeOp::Rescale(v) = p.instrs[i].op {
        p.instrs[i].op = HeOp::ModSwitch(v);
    }
    let err = check(&p).unwrap_err().to_string();
    assert!(err.contains("scale"), "{err}");
    // A bias encoded at the wrong scale.
    let mut p = program.clone();
    let i = first(|op| matches!(op, HeOp::AddPlain(..)));
    if let HeOp::AddPlain(_, id) = p.instrs[i].op {
        let Plain::Scalar { scale, .. } = &mut p.plains[id.0 as usize] else {
            panic!("batch weights are scalars")
        };
        *scale *= 2.0;
    }
    let err = check(&p).unwrap_err().to_string();
    assert!(err.contains("plaintext at scale"), "{err}");
    // A weight encoded for another level.
    let mut p = program.clone();
    let i = first(|op| matches!(op, HeOp::MulPlain(..)));
    if let HeOp::MulPlain(_, id) = p.instrs[i].op {
        let Plain::Scalar { depth, .. } = &mut p.plains[id.0 as usize] else {
            panic!("batch weights are scalars")
        };
        *depth += 1;
    }
    let err = check(&p).unwrap_err().to_string();
    assert!(err.contains("plaintext for level"), "{err}");
    // One level fewer than the program needs.
    let mut p = program.clone();
    p.params.chain_bits.remove(1);
    p.params.primes.remove(1);
    let err = check(&p).unwrap_err().to_string();
    // The last product no longer fits the modulus (SEAL's "scale out of bounds").
    assert!(err.contains("out of bounds"), "{err}");
    // Adding values from different levels.
    let mut p = program.clone();
    let (a, b) = (
        first(|op| matches!(op, HeOp::EncryptInput { .. })),
        first(|op| matches!(op, HeOp::Rescale(_))),
    );
    let i = program
        .instrs
        .iter()
        .rposition(|i| matches!(i.op, HeOp::Add(..)))
        .unwrap();
    p.instrs[i].op = HeOp::Add(
        hepack_backend::program::ValueId(a as u32),
        hepack_backend::program::ValueId(b as u32),
    );
    let err = check(&p).unwrap_err().to_string();
    assert!(err.contains("operands on levels"), "{err}");
    // A bias too large for the modulus of its level: SEAL's encoder refuses it.
    let mut p = program.clone();
    let i = first(|op| matches!(op, HeOp::AddPlain(..)));
    if let HeOp::AddPlain(_, id) = p.instrs[i].op {
        let Plain::Scalar { value, .. } = &mut p.plains[id.0 as usize] else {
            panic!("batch weights are scalars")
        };
        *value = 2f64.powi(100);
    }
    let err = check(&p).unwrap_err().to_string();
    assert!(err.contains("too large for the"), "{err}");
}

/// `x → dense → c + x/2 + x²/4` with a large `c`: the builder encodes `c` at
/// scale Δ² one level above the last, where the modulus is tightest, so the
/// first prime must grow beyond what the value range asks for (SEAL refused
/// such plaintexts mid-run), and the grown program still computes what the
/// interpreter does.
#[test]
fn the_first_prime_holds_every_encoded_constant() {
    use hepack_backend::{levels, params, ParamRequest, Plain};
    use hepack_ir::{Dense, Op, Polynomial, Shape};
    let mut g = Graph::new("x", Shape::new(vec![3]));
    let weight = ndarray::Array2::from_shape_fn((3, 2), |(i, j)| 0.1 * (i + 2 * j) as f64 - 0.2);
    let bias = ndarray::arr1(&[0.05, -0.1]);
    let d = g
        .add("fc", Op::Dense(Dense { weight, bias }), &[g.input()])
        .unwrap();
    let big = 3.0e4;
    let y = g
        .add(
            "act",
            Op::Polynomial(Polynomial::new(vec![big, 0.5, 0.25])),
            &[d],
        )
        .unwrap();
    g.set_output(y);
    let x = inputs(&g, 4);
    let want = interp::run(&g, x.view()).unwrap();
    // As compile does: twice the largest value seen.
    let max_value = 2.0 * want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let request = ParamRequest {
        max_value: Some(max_value),
        ..Default::default()
    };
    let rule = request.scale_bits() + 1 + max_value.log2().ceil() as u32;
    let (program, _) = BATCH.compile(&g, &OpTimes::default(), &request).unwrap();
    assert!(levels::check(&program).is_ok());
    let first = program.params.chain_bits[0];
    let largest = program
        .plains
        .iter()
        .map(|p| {
            let Plain::Scalar { value, scale, .. } = p else {
                panic!("batch weights are scalars")
            };
            (value * scale).abs().log2()
        })
        .fold(0.0, f64::max);
    assert!(
        first > rule,
        "first prime {first} bits, the value rule alone gives {rule}"
    );
    assert!(first <= params::MAX_PRIME_BITS);
    assert!(
        largest + 3.0 > f64::from(rule + request.scale_bits()),
        "the constant is not large"
    );
    let got = simulate(&program, x.view()).unwrap();
    for (a, b) in want.iter().zip(&got) {
        assert!((a - b).abs() <= 1e-9 * big, "{a} vs {b}");
    }
    // A pinned chain cannot grow: refused at compile time, naming the constant.
    // (The chosen prime keeps one bit of margin over SEAL's own bound.)
    let mut pinned = program.params.chain_bits.clone();
    pinned[0] = first - 2;
    let err = BATCH
        .compile(
            &g,
            &OpTimes::default(),
            &ParamRequest {
                chain_bits: Some(pinned),
                ..request
            },
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("too large") && err.contains("pinned chain"),
        "{err}"
    );
}

/// Residual sums and channel concatenations lower like the rest: the
/// program matches the interpreter, pruned or not.
#[test]
fn branching_graphs_lower_correctly() {
    let mut seen = (false, false);
    for seed in 0..40u64 {
        let g = random_graph(&[CONV, 8, 14, 6, 15, 9, 14, 11, DENSE], seed, true);
        let ops: Vec<&str> = g
            .topo_order()
            .into_iter()
            .map(|id| g.node(id).op.name())
            .collect();
        seen.0 |= ops.contains(&"add");
        seen.1 |= ops.contains(&"concat");
        let g = he_friendly(g, "");
        assert_agree(&g, &format!("seed {seed}"));
        let mut p = g.clone();
        prune_randomly(&mut p, seed);
        assert_agree(&p, &format!("seed {seed}, pruned"));
    }
    assert!(
        seen.0 && seen.1,
        "the generator made no residual sum or concatenation"
    );
}

#[test]
fn a_model_too_deep_for_any_chain_is_refused_where_it_overflows() {
    use hepack_backend::{params, BackendError, ParamRequest};
    use hepack_ir::{Activation, Dense, Op, Shape};
    // 2,000 layers of dense and square: depth 2,000, refused at the layer
    // past the deepest 128-bit chain, before the rest is lowered.
    let mut g = Graph::new("x", Shape::new(vec![4]));
    let mut cur = g.input();
    for i in 0..1000 {
        let weight =
            ndarray::Array2::from_shape_fn((4, 4), |(r, c)| 0.1 * (r + 2 * c) as f64 - 0.3);
        let dense = Op::Dense(Dense {
            weight,
            bias: ndarray::Array1::zeros(4),
        });
        cur = g.add(format!("fc{i}"), dense, &[cur]).unwrap();
        cur = g
            .add(format!("sq{i}"), Op::Activation(Activation::Square), &[cur])
            .unwrap();
    }
    g.set_output(cur);
    let request = ParamRequest::default();
    let cap = params::max_depth(&request).unwrap();
    let err = BATCH
        .compile(&g, &OpTimes::default(), &request)
        .unwrap_err();
    let BackendError::TooDeep { layer, depth, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(*depth, cap + 1, "{err}");
    // Depth d is reached by the d-th layer: fc0 is 1, sq0 2, ….
    let nth = (cap / 2) as usize;
    let want = if cap % 2 == 0 {
        format!("fc{nth}")
    } else {
        format!("sq{nth}")
    };
    assert_eq!(layer, &want, "{err}");
    assert!(err.to_string().contains("128-bit security"), "{err}");
}
