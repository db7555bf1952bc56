//! Diagonal-packing lowering: the simulated program (whole slot vectors,
//! samples side by side) agrees with the reference interpreter, and every
//! slot no output element names is exactly zero (the simulator checks it).

use hepack_backend::diagonal::DiagonalPacking;
use hepack_backend::simulate::simulate_outputs;
use hepack_backend::{HeOp, Lowering, OpTimes, Program};
use hepack_ir::testing::{add_outputs, assert_all_close, prune_randomly, random_graph, CHOICES};
use hepack_ir::{interp, Graph};
use proptest::prelude::*;

mod common;

use common::{he_friendly, inputs, model};

fn assert_agree(g: &Graph, samples: usize, context: &str) -> Program {
    let (program, _) = DiagonalPacking::default()
        .lower(g, &OpTimes::default())
        .unwrap_or_else(|e| panic!("{context}: {e}"));
    let x = inputs(g, samples);
    let want = interp::run_outputs(g, x.view()).unwrap();
    let got = simulate_outputs(&program, x.view()).unwrap_or_else(|e| panic!("{context}: {e}"));
    assert_all_close(&want, &got, context);
    program
}

/// The `mul_plain`s the program makes for `layer`.
fn products(program: &Program, layer: &str) -> usize {
    let l = program
        .layers
        .iter()
        .position(|n| n.as_str() == layer)
        .unwrap_or_else(|| panic!("{layer} in {:?}", program.layers));
    program
        .instrs
        .iter()
        .filter(|i| i.layer.0 as usize == l && matches!(i.op, HeOp::MulPlain(..)))
        .count()
}

fn rotations(p: &Program) -> usize {
    p.instrs
        .iter()
        .filter(|i| matches!(i.op, HeOp::Rotate(..)))
        .count()
}

#[test]
fn example_models_simulate_like_the_interpreter() {
    for name in ["mlp", "lenet5", "ae1"] {
        let g = he_friendly(model(name), "");
        let program = assert_agree(&g, 3, name);
        let layout = program.slots.as_ref().expect("a slot layout");
        assert!(rotations(&program) > 0, "{name} rotates");
        assert_eq!(
            program.rotation_steps().is_empty(),
            rotations(&program) == 0
        );
        eprintln!(
            "{name}: {} ops, {} rotations, {} steps, block {} ({} samples per ciphertext)",
            program.instrs.len(),
            rotations(&program),
            program.rotation_steps().len(),
            layout.block,
            layout.samples_per_ct()
        );
    }
}

#[test]
fn several_samples_share_a_ciphertext_when_they_fit() {
    let g = he_friendly(model("mlp"), "");
    let (program, _) = DiagonalPacking::default()
        .lower(&g, &OpTimes::default())
        .unwrap();
    let layout = program.slots.as_ref().unwrap();
    assert!(layout.samples_per_ct() > 1, "{layout:?}");
    // More samples than one ciphertext holds: two groups.
    assert_agree(&g, layout.samples_per_ct() + 1, "mlp, two groups");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn random_graphs_simulate_like_the_interpreter(
        choices in prop::collection::vec(0u8..CHOICES, 1..8),
        seed in any::<u64>(),
    ) {
        let mut g = random_graph(&choices, seed, true);
        if seed % 3 == 0 {
            add_outputs(&mut g, seed);
        }
        if seed % 2 == 0 {
            prune_randomly(&mut g, seed);
        }
        assert_agree(&g, 2, &hepack_ir::dump::to_text(&g));
    }
}

/// The MLP's hidden layer (784 → 64, from the clean input) is a
/// Halevi–Shoup hybrid: one product per output diagonal, 64 instead of
/// 784 + 64 − 1; the output layer, whose partial sums would reach the
/// client, keeps its 64 + 10 − 1 extended diagonals.
#[test]
fn a_dense_layer_inside_the_model_takes_one_product_per_output() {
    let g = he_friendly(model("mlp"), "");
    let program = assert_agree(&g, 3, "mlp");
    assert_eq!(products(&program, "/0/0.0/Gemm"), 64);
    assert_eq!(products(&program, "/0/0.2/Gemm"), 64 + 10 - 1);
}

/// LeNet-5's convolution to 1×1 (with the pool before it) reads a grid
/// whose gaps hold four channels each: as plain diagonals it would keep one
/// per distinct slot offset (2,684); as a hybrid it takes one product per
/// output diagonal, 120 outputs padded to 128, however scattered its input.
/// The dense layer after it then reads a hybrid's partial sums, so it keeps
/// its 120 + 84 − 1 extended diagonals.
#[test]
fn a_convolution_to_one_pixel_takes_one_product_per_output_from_a_grid() {
    let g = he_friendly(model("lenet5"), "");
    let program = assert_agree(&g, 2, "lenet5");
    assert_eq!(products(&program, "/6/Conv"), 128);
    assert_eq!(products(&program, "/9/Gemm"), 120 + 84 - 1);
}

#[test]
fn a_galois_key_budget_composes_the_other_steps() {
    use hepack_backend::ParamRequest;
    let g = he_friendly(model("lenet5"), "");
    let compile = |max_galois_keys| {
        let request = ParamRequest {
            max_galois_keys,
            ..ParamRequest::default()
        };
        DiagonalPacking::default()
            .compile(&g, &OpTimes::default(), &request)
            .unwrap()
            .0
    };
    let free = compile(Some(100_000));
    let steps = free.rotation_steps().len();
    let x = inputs(&g, 2);
    let want = interp::run_outputs(&g, x.view()).unwrap();
    for budget in [steps / 2, 4] {
        let fitted = compile(Some(budget));
        assert!(
            fitted.rotation_steps().len() <= budget,
            "budget {budget}: {} steps",
            fitted.rotation_steps().len()
        );
        // Fewer keys, more rotations, the same function.
        assert!(rotations(&fitted) > rotations(&free), "budget {budget}");
        let got = simulate_outputs(&fitted, x.view()).unwrap();
        assert_all_close(&want, &got, &format!("budget {budget}"));
    }
    // The default keeps the evaluation keys within 2 GiB.
    let default = compile(None);
    let p = &default.params;
    let keys = default.rotation_steps().len() as u64;
    assert!(
        keys * p.switch_key_bytes() <= hepack_backend::params::DEFAULT_EVAL_KEY_BYTES,
        "{keys} keys"
    );
    assert!(
        keys < steps as u64,
        "LeNet-5 needs more than 2 GiB of keys unfitted"
    );
}

#[test]
fn a_budget_of_zero_keys_is_refused_by_name() {
    let g = he_friendly(model("mlp"), "");
    let request = hepack_backend::ParamRequest {
        max_galois_keys: Some(0),
        ..Default::default()
    };
    let err = DiagonalPacking::default()
        .compile(&g, &OpTimes::default(), &request)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--max-galois-keys"), "{err}");
}

#[test]
fn a_budget_that_would_explode_the_program_is_refused_by_name() {
    // One key (rotation by 1) makes LeNet-5's giant steps of thousands of
    // slots into thousands of rotations each.
    let g = he_friendly(model("lenet5"), "");
    let request = hepack_backend::ParamRequest {
        max_galois_keys: Some(1),
        ..Default::default()
    };
    let err = DiagonalPacking::default()
        .compile(&g, &OpTimes::default(), &request)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("allow more keys with --max-galois-keys"),
        "{err}"
    );
}
