//! Tile-packing lowering: the simulated program (whole slot vectors, `t3`
//! samples interleaved) agrees with the reference interpreter at several
//! tile shapes, unnamed slots are zero where the layout says they are, and
//! the op counts follow the tiles (HE-PEx's invariant, one product per
//! weight tile).

use hepack_backend::simulate::simulate_outputs;
use hepack_backend::tile::{TilePacking, TileShape};
use hepack_backend::{HeOp, Lowering, OpTimes, Program};
use hepack_ir::testing::{add_outputs, assert_all_close, prune_randomly, random_graph};
use hepack_ir::{interp, Graph, NodeId, Op};
use proptest::prelude::*;

mod common;

use common::{he_friendly, inputs, model};

fn tile(s: &str) -> TilePacking {
    TilePacking {
        shape: s.parse().unwrap(),
    }
}

fn assert_agree(g: &Graph, shape: &str, samples: usize, context: &str) -> Program {
    let (program, _) = tile(shape)
        .lower(g, &OpTimes::default())
        .unwrap_or_else(|e| panic!("{context} ({shape}): {e}"));
    let x = inputs(g, samples);
    let want = interp::run_outputs(g, x.view()).unwrap();
    let got =
        simulate_outputs(&program, x.view()).unwrap_or_else(|e| panic!("{context} ({shape}): {e}"));
    assert_all_close(&want, &got, &format!("{context} ({shape})"));
    program
}

fn count(p: &Program, f: impl Fn(&HeOp) -> bool) -> usize {
    p.instrs.iter().filter(|i| f(&i.op)).count()
}

fn products(p: &Program) -> usize {
    count(p, |op| matches!(op, HeOp::MulPlain(..)))
}

/// The `mul_plain`s of layer `name`.
fn products_in(p: &Program, name: &str) -> usize {
    let l = p.layers.iter().position(|n| n.as_str() == name).unwrap();
    p.instrs
        .iter()
        .filter(|i| i.layer.0 as usize == l && matches!(i.op, HeOp::MulPlain(..)))
        .count()
}

/// Padded weight area of a chain of dense layers under alternating
/// orientation: the first reads its input along rows (chunks of `t1`),
/// writes along columns (chunks of `t2`), the next the other way round.
fn padded_area(dims: &[(usize, usize)], t1: usize, t2: usize) -> usize {
    let pad = |n: usize, t: usize| n.div_ceil(t) * t;
    dims.iter()
        .enumerate()
        .map(|(l, &(n_in, n_out))| {
            if l % 2 == 0 {
                pad(n_in, t1) * pad(n_out, t2)
            } else {
                pad(n_in, t2) * pad(n_out, t1)
            }
        })
        .sum()
}

/// The masks that clean a chain's column-0 sums: one per output chunk of
/// every layer that reads along columns, when a tile has more than one.
fn masks(dims: &[(usize, usize)], t1: usize, t2: usize) -> usize {
    if t2 == 1 {
        return 0;
    }
    dims.iter()
        .skip(1)
        .step_by(2)
        .map(|&(_, n_out)| n_out.div_ceil(t1))
        .sum()
}

/// The dense layers' (inputs, outputs), in order.
fn dense_dims(g: &Graph) -> Vec<(usize, usize)> {
    g.topo_order()
        .into_iter()
        .filter_map(|id| match &g.node(id).op {
            Op::Dense(d) => Some(d.weight.dim()),
            _ => None,
        })
        .collect()
}

#[test]
fn example_models_simulate_like_the_interpreter_at_several_tile_shapes() {
    for name in ["mlp", "ae1"] {
        let g = he_friendly(model(name), "");
        for shape in ["8x8", "16x4", "4x16", "32x32", "1x64", "64x1"] {
            let program = assert_agree(&g, shape, 3, name);
            let layout = program.slots.as_ref().expect("a slot layout");
            let t: TileShape = shape.parse().unwrap();
            assert_eq!(
                layout.samples_per_ct(),
                layout.slots as usize / (t.rows * t.cols)
            );
        }
    }
    // LeNet-5's convolutions go through their affine maps (conv-to-dense).
    let g = he_friendly(model("lenet5"), "");
    assert_agree(&g, "64x64", 2, "lenet5");
}

#[test]
fn a_full_tile_batch_and_more_than_one_simulate() {
    let g = he_friendly(model("mlp"), "");
    let (program, _) = tile("32x16").lower(&g, &OpTimes::default()).unwrap();
    let t3 = program.slots.as_ref().unwrap().samples_per_ct();
    assert!(t3 >= 8, "{t3}");
    for n in [1, t3 - 1, t3, t3 + 1] {
        assert_agree(&g, "32x16", n, &format!("mlp, {n} samples"));
    }
}

/// HE-PEx's invariant: the unpruned model's Mul · t1 · t2, less the masks
/// that clean column-0 sums, is the padded
/// weight area, at every tile shape.
#[test]
fn products_times_tile_area_is_the_padded_weight_area() {
    for name in ["mlp", "ae1", "ae2"] {
        let g = he_friendly(model(name), "");
        let dims = dense_dims(&g);
        for shape in TileShape::all(8192, 4) {
            if shape.rows > 256 || shape.cols > 256 {
                continue;
            }
            let packing = TilePacking { shape };
            let cost = packing.count(&g, &OpTimes::default()).unwrap();
            let muls = cost.total.get("mul_plain") as usize;
            let weights = muls - masks(&dims, shape.rows, shape.cols);
            assert_eq!(
                weights * shape.rows * shape.cols,
                padded_area(&dims, shape.rows, shape.cols),
                "{name} at {shape}"
            );
        }
    }
}

/// Zeroing every weight of one tile removes exactly its product and the
/// addition that summed it.
#[test]
fn a_zero_weight_tile_costs_nothing() {
    let g = he_friendly(model("mlp"), "");
    let (whole, _) = tile("16x16").lower(&g, &OpTimes::default()).unwrap();
    let mut pruned = g.clone();
    let first = pruned
        .topo_order()
        .into_iter()
        .find(|&id| matches!(pruned.node(id).op, Op::Dense(_)))
        .unwrap();
    // The first layer reads along rows: tile (a = 1, b = 2) holds inputs
    // 16..32 and outputs 32..48 (the weight is [inputs, outputs]).
    if let Op::Dense(d) = &mut pruned.node_mut(first).op {
        d.weight.slice_mut(ndarray::s![16..32, 32..48]).fill(0.0);
    }
    let got = assert_agree(&pruned, "16x16", 2, "mlp, one tile zeroed");
    let adds = |p: &Program| count(p, |op| matches!(op, HeOp::Add(..)));
    assert_eq!(products(&got), products(&whole) - 1);
    assert_eq!(adds(&got), adds(&whole) - 1);
    // A weight outside the tile keeps it.
    if let Op::Dense(d) = &mut pruned.node_mut(first).op {
        d.weight[[20, 40]] = 0.5;
    }
    let (back, _) = tile("16x16").lower(&pruned, &OpTimes::default()).unwrap();
    assert_eq!(products(&back), products(&whole));
}

#[test]
fn an_add_of_differently_laid_out_branches_is_refused_by_name() {
    let g = he_friendly(model("mlp"), "");
    let mut g2 = g.clone();
    let input = g2.input();
    let last = g2.outputs()[0].node;
    // out + a linear map of the input: one branch has a layer more.
    let n = g2.node(input).shape.numel();
    let out_n = g2.node(last).shape.numel();
    let flat = g2.add("flat", Op::Flatten, &[input]).unwrap();
    let dense = g2
        .add(
            "side",
            Op::Dense(hepack_ir::Dense {
                weight: ndarray::Array2::from_elem((n, out_n), 0.01),
                bias: ndarray::Array1::zeros(out_n),
            }),
            &[flat],
        )
        .unwrap();
    let sum = g2.add("sum", Op::Add, &[last, dense]).unwrap();
    g2.set_output(sum);
    let err = tile("8x8")
        .lower(&g2, &OpTimes::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sum") && err.contains("--packing diagonal"),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// Chains of convolutions, pools, dense layers and activations (the
    /// branch choices, 14 and up, are left out: tile packing adds only
    /// tensors laid out alike).
    #[test]
    fn random_chains_simulate_like_the_interpreter(
        choices in prop::collection::vec(0u8..14, 1..8),
        seed in any::<u64>(),
        shape in prop::sample::select(vec!["4x4", "8x2", "2x8", "16x16", "1x8"]),
    ) {
        let mut g = random_graph(&choices, seed, true);
        if seed % 3 == 0 {
            add_outputs(&mut g, seed);
        }
        if seed % 2 == 0 {
            prune_randomly(&mut g, seed);
        }
        assert_agree(&g, shape, 3, &hepack_ir::dump::to_text(&g));
    }
}

/// The MLP's layers as the pruner sees them under `shape`, and the graph.
fn mlp_layers(shape: &str) -> (Graph, Vec<hepack_passes::prune::PackedLayer>) {
    use hepack_passes::prune::Packing;
    let g = he_friendly(model("mlp"), "");
    let layers = tile(shape).layers(&g).unwrap();
    (g, layers)
}

/// A dense layer's units are its weight tiles (`t1` inputs × `t2` outputs
/// where it reads along rows, transposed where it reads along columns),
/// they partition W̄, and the layer's count is the program's.
#[test]
fn a_dense_layer_s_units_are_its_tiles() {
    let (g, layers) = mlp_layers("16x8");
    // 784 → 64 along rows: ⌈784/16⌉ · ⌈64/8⌉; 64 → 10 along columns: ⌈64/8⌉ · ⌈10/16⌉.
    let counts: Vec<usize> = layers.iter().map(|l| l.units.len()).collect();
    assert_eq!(counts, vec![49 * 8, 8]);
    for l in &layers {
        let mut seen = ndarray::Array2::from_elem(l.weights.matrix.dim(), 0u8);
        for u in &l.units {
            for &[r, c] in &u.cells {
                seen[[r, c]] += 1;
            }
        }
        assert!(
            seen.iter().all(|&n| n == 1),
            "{}: units partition W̄",
            l.weights.name
        );
    }
    // A full first-layer tile: 16 inputs × 8 outputs.
    assert!(layers[0].units.iter().all(|u| u.cells.len() == 128));
    let (program, _) = tile("16x8").lower(&g, &OpTimes::default()).unwrap();
    assert_eq!(
        (products(&program) - masks(&dense_dims(&g), 16, 8)) as u64,
        layers.iter().map(|l| l.units.len() as u64).sum::<u64>()
    );
}

/// Zeroing any one unit removes exactly one `mul_plain` from its layer (and,
/// where no tile reads a hidden chunk any more, dead-ciphertext elimination
/// removes what computed it).
#[test]
fn zeroing_a_tile_unit_removes_one_product() {
    use hepack_passes::prune::{apply_masks, Masks};
    let (g, layers) = mlp_layers("16x16");
    let (whole, _) = tile("16x16").lower(&g, &OpTimes::default()).unwrap();
    for l in &layers {
        for u in [
            &l.units[0],
            &l.units[l.units.len() / 2],
            l.units.last().unwrap(),
        ] {
            let mut mask = ndarray::Array2::from_elem(l.weights.matrix.dim(), true);
            for &[r, c] in &u.cells {
                mask[[r, c]] = false;
            }
            let mut pruned = g.clone();
            apply_masks(
                &mut pruned,
                &Masks::from([(l.weights.name.to_string(), mask)]),
            )
            .unwrap();
            let program = assert_agree(&pruned, "16x16", 2, "mlp, one unit zeroed");
            let name = l.weights.name.as_str();
            assert_eq!(
                products_in(&program, name),
                products_in(&whole, name) - 1,
                "{name}"
            );
        }
    }
}

/// `find_masks` with tile units and each of HE-PEx's criteria prunes whole
/// tiles, `floor(0.5 · units)` of the hidden layer, and the program loses
/// exactly those products.
#[test]
fn tile_pruning_with_each_criterion_removes_its_tiles() {
    use hepack_passes::prune::{apply_masks, find_masks, Criterion, Targets};
    let (g, layers) = mlp_layers("16x16");
    let hidden = layers[0].units.len();
    let (whole, _) = tile("16x16").lower(&g, &OpTimes::default()).unwrap();
    for criterion in [Criterion::MeanAbs, Criterion::MaxAbs, Criterion::MinAbs] {
        let targets = Targets {
            sparsity: 0.5,
            per_layer: Default::default(),
            prune_output: false,
        };
        let masks = find_masks(&g, &tile("16x16"), criterion, &targets).unwrap();
        let mut pruned = g.clone();
        apply_masks(&mut pruned, &masks).unwrap();
        let program = assert_agree(&pruned, "16x16", 2, "mlp, half its tiles");
        let name = layers[0].weights.name.as_str();
        assert_eq!(
            products_in(&program, name),
            products_in(&whole, name) - hidden / 2,
            "{criterion:?}"
        );
    }
}

/// A chain of dense layers `dims[0] → dims[1] → …` with squares between,
/// seeded weights, and the fraction `pruned` of its weights zeroed.
fn dense_chain(dims: &[usize], pruned: f64, seed: u64) -> Graph {
    let mut r = hepack_ir::testing::Rng(seed | 1);
    let mut g = Graph::new("x", hepack_ir::Shape::new([dims[0]]));
    let mut cur = g.input();
    for (l, w) in dims.windows(2).enumerate() {
        let weight = ndarray::Array2::from_shape_fn((w[0], w[1]), |_| {
            let v = r.weight();
            if (r.next_u64() % 1000) as f64 / 1000.0 < pruned {
                0.0
            } else {
                v
            }
        });
        let bias = ndarray::Array1::from_shape_fn(w[1], |_| r.weight());
        cur = g
            .add(
                format!("fc{l}"),
                Op::Dense(hepack_ir::Dense { weight, bias }),
                &[cur],
            )
            .unwrap();
        if l + 2 < dims.len() {
            let sq = Op::Activation(hepack_ir::Activation::Square);
            cur = g.add(format!("sq{l}"), sq, &[cur]).unwrap();
        }
    }
    g.set_output(cur);
    g
}

/// HE-PEx's toy example in spirit: a 4-layer MLP, 2×2 tiles (22 of them),
/// 61 % of the weights pruned at random. Permutation never loses a zero
/// tile, keeps the function, is deterministic for a seed, and P4 zeroes
/// more; the numbers this run gets are in docs/BENCHMARKS.md.
#[test]
fn permutation_gathers_zeros_into_tiles_and_keeps_the_function() {
    use hepack_backend::tile::permute::permute;
    let shape: TileShape = "2x2".parse().unwrap();
    let g = dense_chain(&[4, 4, 8, 4, 2], 0.61, 7);
    let x = inputs(&g, 5);
    let want = interp::run_outputs(&g, x.view()).unwrap();
    let mut p = g.clone();
    let report = permute(&mut p, shape, None, 1).unwrap();
    eprintln!("{report}");
    assert_eq!(report.before.total, 22);
    assert!(report.after.zero >= report.before.zero);
    assert_all_close(
        &want,
        &interp::run_outputs(&p, x.view()).unwrap(),
        "permuted",
    );
    let mut again = g.clone();
    permute(&mut again, shape, None, 1).unwrap();
    assert_eq!(
        hepack_ir::dump::to_text(&again),
        hepack_ir::dump::to_text(&p)
    );
    // P4 at a quarter zeroes every tile left with one weight of its four.
    let mut p4 = g.clone();
    let r4 = permute(&mut p4, shape, Some(0.25), 1).unwrap();
    eprintln!("{r4}");
    assert!(r4.after_p4.zero > r4.after.zero && r4.p4_zeroed_weights > 0);
    // The compiler multiplies at most the kept tiles (fewer where a whole
    // chunk no longer reaches an output).
    let (program, _) = TilePacking { shape }
        .lower(&p4, &OpTimes::default())
        .unwrap();
    assert!(products(&program) <= r4.after_p4.total - r4.after_p4.zero);
}

/// Neurons 0 and 2 read inputs 0–1, neurons 1 and 3 inputs 2–3: in their
/// order they touch all four 2×2 tiles of the first layer, grouped as
/// {0, 2}, {1, 3} only two.
#[test]
fn permutation_finds_the_grouping_a_hand_made_mask_hides() {
    use hepack_backend::tile::permute::permute;
    let mut g = dense_chain(&[4, 4, 2], 0.0, 3);
    let first = g.topo_order()[1];
    if let Op::Dense(d) = &mut g.node_mut(first).op {
        for i in 0..4 {
            for n in 0..4 {
                if (i < 2) != (n % 2 == 0) {
                    d.weight[[i, n]] = 0.0;
                }
            }
        }
    }
    let x = inputs(&g, 3);
    let want = interp::run_outputs(&g, x.view()).unwrap();
    let report = permute(&mut g, "2x2".parse().unwrap(), None, 0).unwrap();
    assert_eq!(report.layers[0].before.zero, 0);
    assert_eq!(report.layers[0].permuted.zero, 2);
    assert_eq!(report.permuted, vec!["fc0".to_string()]);
    assert_all_close(
        &want,
        &interp::run_outputs(&g, x.view()).unwrap(),
        "permuted",
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(30))]

    /// On random pruned dense chains: the function is exact and no layer
    /// loses zero tiles overall.
    #[test]
    fn permutation_is_exact_and_never_loses_zero_tiles(
        dims in prop::collection::vec(2usize..20, 3..6),
        pruned in 0.0f64..0.9,
        seed in any::<u64>(),
        shape in prop::sample::select(vec!["2x2", "4x2", "2x4", "4x4"]),
    ) {
        use hepack_backend::tile::permute::permute;
        let g = dense_chain(&dims, pruned, seed);
        let x = inputs(&g, 3);
        let want = interp::run_outputs(&g, x.view()).unwrap();
        let mut p = g.clone();
        let report = permute(&mut p, shape.parse().unwrap(), None, seed).unwrap();
        prop_assert!(report.after.zero >= report.before.zero, "{report}");
        assert_all_close(&want, &interp::run_outputs(&p, x.view()).unwrap(), "permuted");
    }
}

/// The compiler places the model's inputs and outputs (the client applies
/// the places): inputs 0 and 2 feed only the first two neurons, 1 and 3
/// the last two, so grouped as {0, 2}, {1, 3} the first layer keeps two
/// 2×2 tiles of four; outputs likewise for the last layer.
#[test]
fn inputs_and_outputs_are_placed_to_gather_zero_tiles() {
    let mut g = dense_chain(&[4, 4, 4], 0.0, 5);
    let order = g.topo_order();
    let dense: Vec<NodeId> = order
        .into_iter()
        .filter(|&id| matches!(g.node(id).op, Op::Dense(_)))
        .collect();
    if let Op::Dense(d) = &mut g.node_mut(dense[0]).op {
        for i in 0..4 {
            for n in 0..4 {
                if (i % 2 == 0) != (n < 2) {
                    d.weight[[i, n]] = 0.0;
                }
            }
        }
    }
    if let Op::Dense(d) = &mut g.node_mut(dense[1]).op {
        for n in 0..4 {
            for m in 0..4 {
                if (m % 2 == 0) != (n < 2) {
                    d.weight[[n, m]] = 0.0;
                }
            }
        }
    }
    let program = assert_agree(&g, "2x2", 3, "placed inputs and outputs");
    assert_eq!(products_in(&program, "fc0"), 2);
    // Two weight tiles, and a mask for each of the two output chunks.
    assert_eq!(products_in(&program, "fc1"), 2 + 2);
    let layout = program.slots.as_ref().unwrap();
    assert_eq!(layout.input[0].ct, layout.input[2].ct);
    assert_ne!(layout.input[0].ct, layout.input[1].ct);
}

/// The client sees no partial sums: a last layer reading along columns
/// writes its sums in column 0, masked, with every other slot zero (the
/// simulator checks each unnamed slot). Outputs in different forms (one a
/// layer earlier, replicated over rows) are masked to their places alike.
#[test]
fn outputs_hold_their_values_and_zeros_only() {
    let g = dense_chain(&[12, 10, 6], 0.0, 9);
    let program = assert_agree(&g, "4x4", 3, "column-0 output");
    assert_eq!(program.slots.as_ref().unwrap().output_replicas, vec![0]);
    let mut g = g;
    let first = g.topo_order()[1];
    let mut outputs = g.outputs().to_vec();
    outputs.push(hepack_ir::GraphOutput {
        name: "hidden".into(),
        node: first,
    });
    g.set_outputs(outputs);
    let program = assert_agree(&g, "4x4", 3, "mixed outputs");
    assert_eq!(program.slots.as_ref().unwrap().output_replicas, vec![0]);
}
