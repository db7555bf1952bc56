//! Packing-aware pruning on the example models: exact kept-unit counts, masks
//! applied and exchanged as files, compression that keeps the function and
//! reaches MOFHEI Table III's widths, HE-op budgets, clear errors.

mod common;

use std::collections::BTreeMap;

use common::{mnist, model, read_f32};
use hepack_frontend::load;
use hepack_ir::{interp, Graph};
use hepack_passes::prune::{
    apply_masks, compress, find_masks, layer_stats, linear_he_ops, linear_layers, linear_params,
    mask_file, masks_for_budget, model_sparsity, units_to_prune, BatchPacking, Block, Criterion,
    Masks, SingleWeights, Targets,
};
use ndarray::{Array2, ArrayD};

const MODELS: [&str; 5] = ["lenet5", "mlp", "ae1", "ae2", "ae3"];

fn targets(sparsity: f64) -> Targets {
    Targets {
        sparsity,
        per_layer: BTreeMap::new(),
        prune_output: false,
    }
}

fn kept_columns(mask: &Array2<bool>) -> usize {
    mask.columns()
        .into_iter()
        .filter(|c| c.iter().any(|&k| k))
        .count()
}

#[test]
fn column_pruning_keeps_exactly_the_specified_units() {
    let packing = BatchPacking {
        block: Block::Column,
    };
    for name in MODELS {
        let graph = load(&model(name)).unwrap().graph;
        let layers = linear_layers(&graph);
        for sparsity in [0.5, 0.75, 0.9, 0.95] {
            for criterion in [
                Criterion::MeanAbs,
                Criterion::L2,
                Criterion::Random { seed: 3 },
            ] {
                let masks = find_masks(&graph, &packing, criterion, &targets(sparsity)).unwrap();
                for (i, layer) in layers.iter().enumerate() {
                    let f = layer.matrix.ncols();
                    let want = if i + 1 == layers.len() {
                        f // the output layer is kept whole
                    } else {
                        f - units_to_prune(sparsity, f)
                    };
                    let mask = &masks[layer.name.as_str()];
                    assert_eq!(
                        kept_columns(mask),
                        want,
                        "{name} {} at {sparsity}",
                        layer.name
                    );
                    // Whole columns only: every column is all kept or all pruned.
                    assert!(mask
                        .columns()
                        .into_iter()
                        .all(|c| c.iter().all(|&k| k == c[0])));
                }
            }
        }
    }
}

#[test]
fn block_pruning_zeroes_whole_blocks_and_counts_them_exactly() {
    let graph = load(&model("lenet5")).unwrap().graph;
    let packing = BatchPacking {
        block: "4x2".parse().unwrap(),
    };
    let masks = find_masks(&graph, &packing, Criterion::MeanAbs, &targets(0.6)).unwrap();
    for layer in linear_layers(&graph).iter().take(4) {
        let units = packing.units(layer);
        let mask = &masks[layer.name.as_str()];
        let pruned = units
            .iter()
            .filter(|u| u.cells.iter().all(|&[r, c]| !mask[[r, c]]))
            .count();
        let partly = units
            .iter()
            .filter(|u| {
                let k = u.cells.iter().filter(|&&[r, c]| mask[[r, c]]).count();
                k != 0 && k != u.cells.len()
            })
            .count();
        assert_eq!(pruned, units_to_prune(0.6, units.len()), "{}", layer.name);
        assert_eq!(partly, 0, "{}", layer.name);
        // Blocks tile W̄: every weight is in exactly one unit.
        let cells: usize = units.iter().map(|u| u.cells.len()).sum();
        assert_eq!(cells, layer.matrix.len());
    }
}

#[test]
fn applied_masks_zero_exactly_the_masked_weights() {
    for name in ["lenet5", "ae3"] {
        let mut graph = load(&model(name)).unwrap().graph;
        let before = linear_layers(&graph);
        let packing = BatchPacking {
            block: Block::Column,
        };
        let masks = find_masks(&graph, &packing, Criterion::MeanAbs, &targets(0.5)).unwrap();
        apply_masks(&mut graph, &masks).unwrap();
        for (old, new) in before.iter().zip(linear_layers(&graph)) {
            let mask = &masks[old.name.as_str()];
            for ((idx, &w_old), &w_new) in old.matrix.indexed_iter().zip(new.matrix.iter()) {
                let expected = if mask[idx] { w_old } else { 0.0 };
                assert_eq!(w_new, expected, "{name} {} {idx:?}", old.name);
            }
        }
    }
}

#[test]
fn mean_abs_prunes_the_weakest_filters() {
    let graph = load(&model("lenet5")).unwrap().graph;
    let layer = &linear_layers(&graph)[1];
    let packing = BatchPacking {
        block: Block::Column,
    };
    let masks = find_masks(&graph, &packing, Criterion::MeanAbs, &targets(0.5)).unwrap();
    let mask = &masks[layer.name.as_str()];
    let mean = |c: usize| layer.matrix.column(c).iter().map(|w| w.abs()).sum::<f64>();
    let kept_min = (0..16)
        .filter(|&c| mask[[0, c]])
        .map(mean)
        .fold(f64::INFINITY, f64::min);
    let pruned_max = (0..16)
        .filter(|&c| !mask[[0, c]])
        .map(mean)
        .fold(0.0, f64::max);
    assert!(pruned_max <= kept_min, "{pruned_max} > {kept_min}");
}

#[test]
fn unstructured_versus_column_pruning_at_the_same_weight_sparsity() {
    // Under batch packing every zero weight saves its multiply-add, but only a
    // whole zero column removes a feature ciphertext (and the next layer's rows).
    let graph = load(&model("lenet5")).unwrap().graph;
    let t = targets(0.75);
    let cols = find_masks(
        &graph,
        &BatchPacking {
            block: Block::Column,
        },
        Criterion::MeanAbs,
        &t,
    )
    .unwrap();
    let single = find_masks(&graph, &SingleWeights, Criterion::MeanAbs, &t).unwrap();
    println!("layer            weights kept (cols / unstructured)   filters kept (cols / unstructured)   feature ciphertexts (cols / unstructured)");
    for layer in linear_layers(&graph) {
        let (c, s) = (&cols[layer.name.as_str()], &single[layer.name.as_str()]);
        let weights = |m: &Array2<bool>| m.iter().filter(|&&k| k).count();
        let cts = |m: &Array2<bool>| kept_columns(m) as u64 * layer.uses;
        println!(
            "{:<16} {:>8} / {:<8} {:>22} / {:<8} {:>26} / {}",
            layer.name.as_str(),
            weights(c),
            weights(s),
            kept_columns(c),
            kept_columns(s),
            cts(c),
            cts(s)
        );
        // Same weight budget, within one column's rounding.
        assert!(weights(c).abs_diff(weights(s)) <= layer.matrix.nrows());
        if layer.name.as_str() != "/11/Gemm" {
            assert!(kept_columns(c) < kept_columns(s), "{}", layer.name);
        }
    }
}

#[test]
fn bad_targets_and_masks_are_clear_errors() {
    let mut graph = load(&model("lenet5")).unwrap().graph;
    let packing = BatchPacking {
        block: Block::Column,
    };
    let mut t = targets(0.5);
    t.per_layer.insert("/1/Relu".into(), 0.5);
    let err = find_masks(&graph, &packing, Criterion::MeanAbs, &t).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pruning: no linear layer named '/1/Relu'; linear layers: /0/Conv, /3/Conv, /6/Conv, /9/Gemm, /11/Gemm"
    );
    let err = find_masks(&graph, &packing, Criterion::MeanAbs, &targets(1.5)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pruning: sparsity 1.5 for (default) is outside [0, 1]"
    );
    let mut masks = Masks::new();
    masks.insert("/0/Conv".into(), Array2::from_elem((6, 25), true));
    let err = apply_masks(&mut graph, &masks).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pruning: the mask for '/0/Conv' is 6x25, but the layer's weight matrix W̄ (inputs x filters) is 25x6"
    );
    assert!("3x".parse::<Block>().is_err());
    assert!("0x4".parse::<Block>().is_err());
    assert_eq!("cols".parse::<Block>(), Ok(Block::Column));
}

const COLUMNS: BatchPacking = BatchPacking {
    block: Block::Column,
};

/// 200 MNIST test samples shaped for the model (images or flat vectors).
fn samples(graph: &Graph) -> ArrayD<f64> {
    let file = if graph.node(graph.input()).shape.rank() == 1 {
        "mnist_test_x_flat.npy"
    } else {
        "mnist_test_x.npy"
    };
    read_f32(&mnist(file))
        .slice_axis(ndarray::Axis(0), (0..200).into())
        .to_owned()
}

fn assert_close(a: &ArrayD<f64>, b: &ArrayD<f64>, context: &str) {
    assert_eq!(a.shape(), b.shape(), "{context}");
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= 1e-9 * x.abs().max(1.0),
            "{context}: {x} vs {y}"
        );
    }
}

fn widths(graph: &Graph) -> Vec<usize> {
    linear_layers(graph)
        .iter()
        .map(|l| l.matrix.ncols())
        .collect()
}

#[test]
fn compression_is_exact_on_every_example_model() {
    for name in MODELS {
        let original = load(&model(name)).unwrap().graph;
        let x = samples(&original);
        for (packing, sparsity) in [
            (COLUMNS, 0.5),
            (COLUMNS, 0.9),
            (
                BatchPacking {
                    block: "8x1".parse().unwrap(),
                },
                0.7,
            ),
        ] {
            let mut masked = original.clone();
            let masks =
                find_masks(&masked, &packing, Criterion::MeanAbs, &targets(sparsity)).unwrap();
            apply_masks(&mut masked, &masks).unwrap();
            let mut compressed = masked.clone();
            let report = compress(&mut compressed).unwrap();
            let context = format!("{name} {:?} at {sparsity}", packing.block);
            assert_close(
                &interp::run(&masked, x.view()).unwrap(),
                &interp::run(&compressed, x.view()).unwrap(),
                &context,
            );
            // Every layer but the output lost exactly its all-zero columns.
            let stats = layer_stats(&masked, &COLUMNS).unwrap();
            let after = widths(&compressed);
            for (i, l) in stats.iter().enumerate() {
                let want = if i + 1 == stats.len() {
                    l.width
                } else {
                    l.units_kept
                };
                assert_eq!(after[i], want, "{context}: {}", l.layer);
            }
            // The next layers' rows reading removed channels cost no more ops.
            let (ops_masked, ops_compressed) = (
                linear_he_ops(&masked, &packing).unwrap(),
                linear_he_ops(&compressed, &packing).unwrap(),
            );
            assert!(
                ops_compressed < ops_masked,
                "{context}: {ops_compressed} vs {ops_masked}"
            );
            if packing.block == Block::Column {
                assert!(
                    report.kept.iter().all(|k| k.reason.contains("output")),
                    "{context}: {report:?}"
                );
            }
        }
    }
}

/// MOFHEI Table III, MNIST-LeNet: kept filters/neurons of conv0, conv1, conv2,
/// dense0 at the 50/60/80/90 % columns, the model sparsity it reports, and the
/// per-layer HE ops it gives (2 × MACs of the kept weights).
const TABLE_III: [([usize; 4], &str, [u64; 4]); 4] = [
    ([3, 8, 61, 48], "0.73", [117_600, 120_000, 24_400, 5856]),
    ([3, 7, 51, 39], "0.81", [117_600, 105_000, 17_850, 3978]),
    ([1, 3, 25, 18], "0.96", [39_200, 15_000, 3750, 900]),
    ([1, 2, 16, 9], "0.98", [39_200, 10_000, 1600, 288]),
];

#[test]
fn mofhei_table_iii_lenet_widths_after_compression() {
    let original = load(&model("lenet5")).unwrap().graph;
    let (reference_params, _) = linear_params(&original);
    for (kept, sparsity, he_ops) in TABLE_III {
        let g = common::pruned_to_widths(&original, &kept);
        assert_eq!(widths(&g), [&kept[..], &[10]].concat());
        assert_eq!(
            format!("{:.2}", model_sparsity(reference_params, &g)),
            sparsity
        );
        let ops: Vec<u64> = layer_stats(&g, &COLUMNS)
            .unwrap()
            .iter()
            .map(|l| l.he_ops)
            .collect();
        assert_eq!(&ops[..4], &he_ops, "{kept:?}");
    }
}

#[test]
fn masks_round_trip_through_the_mask_file() {
    let graph = load(&model("lenet5")).unwrap().graph;
    let packing = BatchPacking {
        block: "5x2".parse().unwrap(),
    };
    let masks = find_masks(&graph, &packing, Criterion::L2, &targets(0.6)).unwrap();
    let text = mask_file::to_json(&masks);
    let back = mask_file::from_json(&text, "m.json").unwrap();
    assert_eq!(back, masks);
    // The file is plain JSON with one mask row per line.
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        value["layers"]["/3/Conv"]["shape"],
        serde_json::json!([150, 16])
    );
    assert!(text.contains("\n        [1,1,"), "{}", &text[..300]);
    let mut a = graph.clone();
    let mut b = graph.clone();
    apply_masks(&mut a, &masks).unwrap();
    apply_masks(&mut b, &back).unwrap();
    assert_eq!(linear_layers(&a)[1].matrix, linear_layers(&b)[1].matrix);
}

#[test]
fn bad_mask_files_are_clear_errors() {
    let err = |text: &str| {
        mask_file::from_json(text, "m.json")
            .unwrap_err()
            .to_string()
    };
    let file =
        |layers: &str| format!(r#"{{"format":"hepack-masks","version":1,"layers":{{{layers}}}}}"#);
    assert_eq!(
        err(&file(r#""/0/Conv":{"shape":[2,2],"keep":[[1,0],[1]]}"#)),
        "pruning: mask file m.json: layer '/0/Conv': row 1 has 1 entries, shape says 2"
    );
    assert_eq!(
        err(&file(r#""/0/Conv":{"shape":[2,1],"keep":[[1],[2]]}"#)),
        "pruning: mask file m.json: layer '/0/Conv': entry [1][0] is 2; entries are 0 (prune) or 1 (keep)"
    );
    assert_eq!(
        err(&file(r#""/0/Conv":{"shape":[3,1],"keep":[[1],[0]]}"#)),
        "pruning: mask file m.json: layer '/0/Conv': shape says 3 rows but 'keep' has 2"
    );
    assert!(err(r#"{"format":"hepack-masks","version":7,"layers":{}}"#)
        .contains("version 7 is not supported"));
    assert!(err(r#"{"format":"other","version":1,"layers":{}}"#).contains("format is 'other'"));
    assert!(err("[1, 2").starts_with("pruning: mask file m.json: "));
    // Parsed but wrong for the model: an unknown layer, a wrong shape.
    let mut graph = load(&model("lenet5")).unwrap().graph;
    let masks =
        mask_file::from_json(&file(r#""conv9":{"shape":[1,1],"keep":[[1]]}"#), "m.json").unwrap();
    assert!(apply_masks(&mut graph, &masks)
        .unwrap_err()
        .to_string()
        .contains("no linear layer named 'conv9'; linear layers: /0/Conv, /3/Conv"));
    let masks =
        mask_file::from_json(&file(r#""/0/Conv":{"shape":[1,1],"keep":[[1]]}"#), "m.json").unwrap();
    assert!(apply_masks(&mut graph, &masks)
        .unwrap_err()
        .to_string()
        .contains("the mask for '/0/Conv' is 1x1"));
}

#[test]
fn an_he_op_budget_is_met_with_the_least_pruning() {
    let graph = load(&model("lenet5")).unwrap().graph;
    let full = linear_he_ops(&graph, &COLUMNS).unwrap();
    for fraction in [0.5, 0.2, 0.05] {
        let budget = (full as f64 * fraction) as u64;
        let found =
            masks_for_budget(&graph, &COLUMNS, Criterion::MeanAbs, &targets(0.0), budget).unwrap();
        let mut g = graph.clone();
        apply_masks(&mut g, &found.masks).unwrap();
        compress(&mut g).unwrap();
        let ops = linear_he_ops(&g, &COLUMNS).unwrap();
        assert_eq!(ops, found.he_ops);
        assert!(ops <= budget, "{ops} > {budget}");
        // One filter less pruned per layer (a slightly lower sparsity) misses it.
        let less = find_masks(
            &graph,
            &COLUMNS,
            Criterion::MeanAbs,
            &targets(found.sparsity - 0.01),
        )
        .unwrap();
        let mut h = graph.clone();
        apply_masks(&mut h, &less).unwrap();
        compress(&mut h).unwrap();
        assert!(
            linear_he_ops(&h, &COLUMNS).unwrap() > budget,
            "budget {budget} at sparsity {}",
            found.sparsity
        );
    }
    let err =
        masks_for_budget(&graph, &COLUMNS, Criterion::MeanAbs, &targets(0.0), 10).unwrap_err();
    assert!(
        err.to_string()
            .contains("an HE-op budget of 10 cannot be met"),
        "{err}"
    );
}

// The command line: prune, masks in and out, inspect, sweep.

fn path_str(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn cli_prune_writes_the_compressed_model_and_its_masks() {
    let dir = tempfile::tempdir().unwrap();
    let (onnx, masks) = (dir.path().join("p.onnx"), dir.path().join("m.json"));
    let lenet = model("lenet5");
    let (ok, out, err) = common::hepack(&[
        "prune",
        path_str(&lenet),
        "--sparsity",
        "0.5",
        "--layer",
        "/6/Conv=0.25",
        "--f64",
        "--masks-out",
        path_str(&masks),
        "-o",
        path_str(&onnx),
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("/6/Conv       90/120        120 -> 90"),
        "{out}"
    );
    // The written model is the library's masked model, compressed.
    let original = load(&lenet).unwrap().graph;
    let written = load(&onnx).unwrap().graph;
    assert_eq!(widths(&written), [3, 8, 90, 42, 10]);
    let mask_set = mask_file::from_json(&std::fs::read_to_string(&masks).unwrap(), "m").unwrap();
    let mut masked = original.clone();
    apply_masks(&mut masked, &mask_set).unwrap();
    let x = samples(&original);
    assert_close(
        &interp::run(&masked, x.view()).unwrap(),
        &interp::run(&written, x.view()).unwrap(),
        "CLI-pruned model",
    );
    // The masks drive another run: same widths, same outputs.
    let again = dir.path().join("again.onnx");
    let (ok, _, err) = common::hepack(&[
        "prune",
        path_str(&lenet),
        "--masks-in",
        path_str(&masks),
        "--f64",
        "-o",
        path_str(&again),
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        interp::run(&load(&again).unwrap().graph, x.view()).unwrap(),
        interp::run(&written, x.view()).unwrap()
    );
    // inspect shows kept units and the model sparsity against the original.
    let (ok, out, err) = common::hepack(&[
        "inspect",
        path_str(&onnx),
        "--reference",
        path_str(&lenet),
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sparsity = v["pruning"]["model_sparsity"].as_f64().unwrap();
    let (params, _) = linear_params(&original);
    assert!((sparsity - model_sparsity(params, &written)).abs() < 1e-12);
    assert_eq!(v["pruning"]["layers"][2]["units_kept"], 90);
}

#[test]
fn cli_prune_on_compile_and_eval_with_a_budget() {
    let lenet = model("lenet5");
    let full = linear_he_ops(&load(&lenet).unwrap().graph, &COLUMNS).unwrap();
    let budget = (full / 4).to_string();
    let (ok, out, err) = common::hepack(&[
        "compile",
        path_str(&lenet),
        "--passes",
        "remove-identity",
        "--he-budget",
        &budget,
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let after: u64 = v["pruning"]["after"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["he_ops"].as_u64().unwrap())
        .sum();
    assert!(after <= full / 4 && after > 0, "{after}");
    let (ok, out, err) = common::hepack(&[
        "eval",
        path_str(&lenet),
        "--input",
        path_str(&mnist("mnist_test_x.npy")),
        "--labels",
        path_str(&mnist("mnist_test_y.npy")),
        "--criterion",
        "unstructured",
        "--sparsity",
        "0.5",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("single-weight units"), "{out}");
    assert!(out.contains("accuracy: "), "{out}");
}

#[test]
fn cli_prune_errors_are_clear_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("p.onnx");
    let lenet = model("lenet5");
    let run = |extra: &[&str]| {
        let mut args = vec!["prune", path_str(&lenet)];
        args.extend_from_slice(extra);
        common::hepack(&args)
    };
    let (ok, _, err) = run(&["-o", path_str(&onnx)]);
    assert!(
        !ok && err.contains("nothing to prune: give --sparsity S"),
        "{err}"
    );
    let (ok, _, err) = run(&["--sparsity", "0.5"]);
    assert!(!ok && err.contains("nothing to write"), "{err}");
    let (ok, _, err) = run(&[
        "--sparsity",
        "0.5",
        "--layer",
        "/2/MaxPool=0.1",
        "-o",
        path_str(&onnx),
    ]);
    assert!(
        !ok && err.contains("no linear layer named '/2/MaxPool'"),
        "{err}"
    );
    let (ok, _, err) = run(&["--sparsity", "0.5", "--block", "4x", "-o", path_str(&onnx)]);
    assert!(!ok && err.contains("block '4x'"), "{err}");
    let (ok, _, err) = run(&[
        "--sparsity",
        "0.5",
        "--criterion",
        "unstructured",
        "--block",
        "4x1",
        "-o",
        path_str(&onnx),
    ]);
    assert!(!ok && err.contains("leave out --block"), "{err}");
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"format":"hepack-masks","version":1,"layers":{"/0/Conv":{"shape":[6,25],"keep":[]}}}"#,
    )
    .unwrap();
    let (ok, _, err) = run(&["--masks-in", path_str(&bad), "-o", path_str(&onnx)]);
    assert!(
        !ok && err.contains("shape says 6 rows but 'keep' has 0"),
        "{err}"
    );
    let (ok, _, err) = run(&[
        "--sparsity",
        "0.5",
        "--masks-in",
        path_str(&bad),
        "-o",
        path_str(&onnx),
    ]);
    assert!(!ok && err.contains("cannot be used with"), "{err}");
    assert!(!onnx.exists());
}

#[test]
fn cli_sweep_prints_and_writes_the_curve() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, svg) = (dir.path().join("c.csv"), dir.path().join("c.svg"));
    let (ok, out, err) = common::hepack(&[
        "sweep",
        path_str(&model("ae1")),
        "--sparsity",
        "0.5:0.9:0.2",
        "--input",
        path_str(&mnist("mnist_test_x_flat.npy")),
        "--labels",
        path_str(&mnist("mnist_test_x_flat.npy")),
        "--csv",
        path_str(&csv),
        "--svg",
        path_str(&svg),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("layer sparsity  model sparsity"), "{out}");
    let csv = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "layer_sparsity,model_sparsity,mse,he_ops,he_ops_fraction,widths"
    );
    let firsts: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(firsts, ["0", "0.5", "0.7", "0.9"]);
    // HE ops fall and MSE rises as units go.
    let col = |i: usize| -> Vec<f64> {
        lines[1..]
            .iter()
            .map(|l| l.split(',').nth(i).unwrap().parse().unwrap())
            .collect()
    };
    assert!(col(3).windows(2).all(|w| w[1] < w[0]), "{csv}");
    assert!(col(2)[3] > col(2)[0], "{csv}");
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 2);
    let (ok, _, err) = common::hepack(&[
        "sweep",
        path_str(&model("ae1")),
        "--sparsity",
        "0.9:0.5:0.1",
        "--input",
        "x.npy",
        "--labels",
        "y.npy",
    ]);
    assert!(!ok && err.contains("the start is after the stop"), "{err}");
}

/// `prune --packing diagonal` with each of Hunter's and Artemis's units:
/// whole units go, the mask file drives the same pruning again, and
/// compression keeps the masked model's function.
#[test]
fn cli_prune_diagonal_units_round_trip_through_the_mask_file() {
    use hepack_backend::diagonal::{DiagonalPacking, DiagonalUnit};
    use hepack_passes::prune::Packing;
    let dir = tempfile::tempdir().unwrap();
    let lenet = model("lenet5");
    let original = load(&lenet).unwrap().graph;
    let x = samples(&original);
    for (block, unit) in [
        ("diagonal", Some(DiagonalUnit::Diagonal)),
        ("position", Some(DiagonalUnit::Position)),
        ("channel-diagonal", Some(DiagonalUnit::ChannelDiagonal)),
        ("hunter", None),
    ] {
        let onnx = dir.path().join(format!("{block}.onnx"));
        let masks = dir.path().join(format!("{block}.json"));
        let (ok, out, err) = common::hepack(&[
            "prune",
            path_str(&lenet),
            "--packing",
            "diagonal",
            "--block",
            block,
            "--sparsity",
            "0.5",
            "--f64",
            "--masks-out",
            path_str(&masks),
            "-o",
            path_str(&onnx),
        ]);
        assert!(ok, "{block}: {err}");
        assert!(
            out.contains(&format!("diagonal packing, {block} units")),
            "{out}"
        );
        let mask_set =
            mask_file::from_json(&std::fs::read_to_string(&masks).unwrap(), "m").unwrap();
        let mut masked = original.clone();
        apply_masks(&mut masked, &mask_set).unwrap();
        let written = load(&onnx).unwrap().graph;
        assert_close(
            &interp::run(&masked, x.view()).unwrap(),
            &interp::run(&written, x.view()).unwrap(),
            block,
        );
        if let Some(unit) = unit {
            // Every unit is whole or gone, and half of each pruned layer's go.
            let layers = DiagonalPacking { unit }.layers(&original).unwrap();
            for l in layers.iter().take(layers.len() - 1) {
                let mask = &mask_set[l.weights.name.as_str()];
                let gone = l
                    .units
                    .iter()
                    .filter(|u| u.cells.iter().all(|&[r, c]| !mask[[r, c]]))
                    .count();
                assert!(l
                    .units
                    .iter()
                    .all(|u| u.cells.iter().all(|&[r, c]| mask[[r, c]])
                        || u.cells.iter().all(|&[r, c]| !mask[[r, c]])));
                assert_eq!(
                    gone,
                    units_to_prune(0.5, l.units.len()),
                    "{block} {}",
                    l.weights.name
                );
            }
        }
        let again = dir.path().join("again.onnx");
        let (ok, _, err) = common::hepack(&[
            "prune",
            path_str(&lenet),
            "--masks-in",
            path_str(&masks),
            "--packing",
            "diagonal",
            "--block",
            block,
            "--f64",
            "-o",
            path_str(&again),
        ]);
        assert!(ok, "{block}: {err}");
        assert_eq!(
            std::fs::read(&again).unwrap(),
            std::fs::read(&onnx).unwrap(),
            "{block}"
        );
    }
    // A budget cannot search Hunter's three stages at once.
    let (ok, _, err) = common::hepack(&[
        "prune",
        path_str(&lenet),
        "--packing",
        "diagonal",
        "--block",
        "hunter",
        "--he-budget",
        "1000",
        "--masks-out",
        path_str(&dir.path().join("no.json")),
    ]);
    assert!(!ok && err.contains("--block hunter"), "{err}");
    // Units name their packing.
    let (ok, _, err) = common::hepack(&[
        "prune",
        path_str(&lenet),
        "--block",
        "position",
        "--sparsity",
        "0.5",
        "--masks-out",
        path_str(&dir.path().join("no.json")),
    ]);
    assert!(!ok && err.contains("--packing diagonal"), "{err}");
}

/// `prune --packing tile` with each of HE-PEx's criteria zeroes whole tiles,
/// half of the hidden layer's; the masks drive the same model again; the
/// pruned model compiles with fewer products; `inspect --tile all` lists
/// every shape; a tile packing without a shape, or a shape without it, is
/// a clear error.
#[test]
fn cli_prune_tile_units_and_inspect_every_tile_shape() {
    use hepack_backend::tile::TilePacking;
    use hepack_passes::prune::Packing;
    let dir = tempfile::tempdir().unwrap();
    let mlp = model("mlp");
    let original = load(&mlp).unwrap().graph;
    let packing = TilePacking {
        shape: "16x16".parse().unwrap(),
    };
    let layers = packing.layers(&original).unwrap();
    for criterion in ["tile-mean", "tile-max", "tile-min"] {
        let onnx = dir.path().join(format!("{criterion}.onnx"));
        let masks = dir.path().join(format!("{criterion}.json"));
        let (ok, out, err) = common::hepack(&[
            "prune",
            path_str(&mlp),
            "--packing",
            "tile",
            "--tile",
            "16x16",
            "--criterion",
            criterion,
            "--sparsity",
            "0.5",
            "--f64",
            "--masks-out",
            path_str(&masks),
            "-o",
            path_str(&onnx),
        ]);
        assert!(ok, "{criterion}: {err}");
        assert!(out.contains("tile 16x16 packing, tile units"), "{out}");
        let mask_set =
            mask_file::from_json(&std::fs::read_to_string(&masks).unwrap(), "m").unwrap();
        let hidden = &layers[0];
        let mask = &mask_set[hidden.weights.name.as_str()];
        let whole = |u: &hepack_passes::prune::Unit, keep: bool| {
            u.cells.iter().all(|&[r, c]| mask[[r, c]] == keep)
        };
        assert!(hidden
            .units
            .iter()
            .all(|u| whole(u, true) || whole(u, false)));
        let gone = hidden.units.iter().filter(|u| whole(u, false)).count();
        assert_eq!(gone, units_to_prune(0.5, hidden.units.len()), "{criterion}");
        let again = dir.path().join("again.onnx");
        let (ok, _, err) = common::hepack(&[
            "prune",
            path_str(&mlp),
            "--masks-in",
            path_str(&masks),
            "--packing",
            "tile",
            "--tile",
            "16x16",
            "--f64",
            "-o",
            path_str(&again),
        ]);
        assert!(ok, "{criterion}: {err}");
        assert_eq!(
            std::fs::read(&again).unwrap(),
            std::fs::read(&onnx).unwrap()
        );
    }
    let program = dir.path().join("p.hep");
    let (ok, out, err) = common::hepack(&[
        "compile",
        path_str(&dir.path().join("tile-max.onnx")),
        "--packing",
        "tile",
        "--tile",
        "16x16",
        "-o",
        path_str(&program),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("samples per ciphertext"), "{out}");
    // The exported model is HE-friendly, so every tile shape lowers.
    let he = dir.path().join("he.onnx");
    let (ok, _, err) = common::hepack(&["export", path_str(&mlp), "-o", path_str(&he)]);
    assert!(ok, "{err}");
    let (ok, out, err) = common::hepack(&[
        "inspect",
        path_str(&he),
        "--he",
        "--packing",
        "tile",
        "--tile",
        "all",
        "--json",
    ]);
    assert!(ok, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = rows.as_array().unwrap();
    assert!(rows.len() > 20, "{}", rows.len());
    for r in rows {
        let tile = r["tile"].as_str().unwrap();
        let (t1, t2) = tile.split_once('x').unwrap();
        let area: u64 = t1.parse::<u64>().unwrap() * t2.parse::<u64>().unwrap();
        let slots = r["degree"].as_u64().unwrap() / 2;
        assert_eq!(r["samples"].as_u64().unwrap() * area, slots, "{tile}");
        assert!(r["mul_plain"].as_u64().unwrap() > 0);
    }
    for (args, want) in [
        (vec!["--packing", "tile"], "--tile T1xT2"),
        (
            vec!["--packing", "diagonal", "--tile", "8x8"],
            "add --packing tile",
        ),
        (vec!["--packing", "tile", "--tile", "12x8"], "powers of two"),
        (
            vec!["--packing", "tile", "--tile", "8x8", "--block", "cols"],
            "a unit of another packing",
        ),
    ] {
        let mut argv = vec!["compile", path_str(&mlp)];
        argv.extend(args);
        let (ok, _, err) = common::hepack(&argv);
        assert!(!ok && err.contains(want), "{argv:?}: {err}");
    }
}

/// `prune --permute` and `hepack permute` keep the pruned model's function
/// (P3) and never lose zero tiles; P4 zeroes more; bad thresholds and a
/// permutation without tiles are clear errors.
#[test]
fn cli_permute_keeps_the_function_and_gathers_zero_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let mlp = model("mlp");
    let pruned = dir.path().join("pruned.onnx");
    let permuted = dir.path().join("permuted.onnx");
    let prune = |extra: &[&str], out: &std::path::Path| {
        let mut argv = vec![
            "prune",
            path_str(&mlp),
            "--packing",
            "tile",
            "--tile",
            "8x8",
            "--criterion",
            "unstructured",
            "--sparsity",
            "0.9",
            "--f64",
            "-o",
            path_str(out),
        ];
        argv.extend_from_slice(extra);
        common::hepack(&argv)
    };
    let (ok, _, err) = prune(&[], &pruned);
    assert!(ok, "{err}");
    let (ok, out, err) = prune(&["--permute"], &permuted);
    assert!(ok, "{err}");
    assert!(out.contains("zero 8x8 tiles"), "{out}");
    let x = samples(&load(&mlp).unwrap().graph);
    let run = |p: &std::path::Path| interp::run(&load(p).unwrap().graph, x.view()).unwrap();
    assert_close(&run(&pruned), &run(&permuted), "prune --permute");
    let p4 = dir.path().join("p4.onnx");
    let (ok, out, err) = common::hepack(&[
        "permute",
        path_str(&pruned),
        "--tile",
        "8x8",
        "--p4-threshold",
        "0.2",
        "--f64",
        "--json",
        "-o",
        path_str(&p4),
    ]);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let zero = |k: &str| report[k]["zero"].as_u64().unwrap();
    assert!(
        zero("after") >= zero("before") && zero("after_p4") >= zero("after"),
        "{report}"
    );
    for (args, want) in [
        (
            vec!["--tile", "8x8", "--p4-threshold", "1.5"],
            "a P4 threshold of 1.5",
        ),
        (vec!["--tile", "8"], "powers of two"),
    ] {
        let mut argv = vec!["permute", path_str(&pruned), "-o", path_str(&p4)];
        argv.extend(args);
        let (ok, _, err) = common::hepack(&argv);
        assert!(!ok && err.contains(want), "{argv:?}: {err}");
    }
    let (ok, _, err) = common::hepack(&[
        "prune",
        path_str(&mlp),
        "--sparsity",
        "0.5",
        "--permute",
        "-o",
        path_str(&p4),
    ]);
    assert!(!ok && err.contains("--packing tile --tile"), "{err}");
}
