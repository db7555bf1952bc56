//! Packing-aware pruning on the example models (issue #4, first part): exact
//! kept-unit counts, masks applied to the weights, clear errors.

mod common;

use std::collections::BTreeMap;

use common::model;
use hepack_frontend::load;
use hepack_passes::prune::{
    apply_masks, find_masks, linear_layers, units_to_prune, BatchPacking, Block, Criterion, Masks,
    Packing, SingleWeights, Targets,
};
use ndarray::Array2;

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
