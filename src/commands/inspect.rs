//! `hepack inspect`: the per-layer table of a model.

use std::path::Path;

use anyhow::{Context, Result};
use hepack_frontend::{BatchDim, Model};
use hepack_ir::{Shape, Summary};
use hepack_passes::prune::{layer_stats, linear_params, model_sparsity, LayerStats};
use serde::Serialize;

#[derive(Serialize)]
struct Report<'a> {
    model: String,
    opset: i64,
    producer: &'a str,
    input: InputInfo<'a>,
    #[serde(flatten)]
    summary: Summary,
    pruning: Pruning,
    #[serde(skip_serializing_if = "Option::is_none")]
    he: Option<&'a hepack_backend::Cost>,
    /// The packing the HE costs are for.
    #[serde(skip)]
    packing: &'a str,
}

/// Pruning state: units with a non-zero weight per layer, and sparsity.
#[derive(Serialize)]
struct Pruning {
    units: String,
    layers: Vec<LayerStats>,
    /// Non-zero linear-layer parameters (weights and biases).
    nonzero_params: usize,
    /// All linear-layer parameters.
    params: usize,
    /// Fraction of the reference model's linear-layer parameters gone (MOFHEI
    /// Table III's model sparsity); without a reference, of this model's own.
    model_sparsity: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
}

#[derive(Serialize)]
struct InputInfo<'a> {
    name: &'a str,
    shape: &'a Shape,
    batch: String,
}

fn batch_text(b: &BatchDim) -> String {
    match b {
        BatchDim::Symbolic(s) => s.clone(),
        BatchDim::Fixed(n) => n.to_string(),
        BatchDim::Unknown => "?".into(),
    }
}

/// Print the layer table and the pruning table (or JSON).
pub fn run(
    path: &Path,
    json: bool,
    packing: &dyn hepack_backend::Lowering,
    units: String,
    reference: Option<&Path>,
    he: bool,
) -> Result<()> {
    let model: Model = super::load_model(path)?;
    let he = if he {
        Some(
            super::he_report::count(&model.graph, packing)
                .with_context(|| format!("cannot lower {}", path.display()))?,
        )
    } else {
        None
    };
    let reference_params = match reference {
        Some(r) => linear_params(&super::load_model(r)?.graph).0,
        None => linear_params(&model.graph).0,
    };
    let (params, nonzero_params) = linear_params(&model.graph);
    let pruning = Pruning {
        units,
        layers: layer_stats(&model.graph, packing).with_context(|| {
            format!(
                "cannot count {}'s units (an ONNX model with ReLU or max pooling needs `hepack export` first for diagonal packing)",
                path.display()
            )
        })?,
        nonzero_params,
        params,
        model_sparsity: model_sparsity(reference_params, &model.graph),
        reference: reference.map(|r| r.display().to_string()),
    };
    let report = Report {
        model: path.display().to_string(),
        opset: model.opset,
        producer: &model.producer,
        input: InputInfo {
            name: &model.input_name,
            shape: &model.graph.node(model.graph.input()).shape,
            batch: batch_text(&model.batch),
        },
        summary: Summary::of(&model.graph),
        pruning,
        he: he.as_ref(),
        packing: packing.name(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

fn table(r: &Report<'_>) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "layer".into(),
        "op".into(),
        "input".into(),
        "output".into(),
        "params".into(),
        "MACs".into(),
    ]];
    for l in &r.summary.layers {
        let inputs: Vec<String> = l.inputs.iter().map(Shape::to_string).collect();
        rows.push([
            l.name.to_string(),
            l.op.to_string(),
            if inputs.is_empty() {
                "-".into()
            } else {
                inputs.join(", ")
            },
            l.output.to_string(),
            l.params.to_string(),
            l.macs.to_string(),
        ]);
    }
    rows.push([
        "total".into(),
        String::new(),
        String::new(),
        String::new(),
        r.summary.total_params.to_string(),
        r.summary.total_macs.to_string(),
    ]);
    let mut out = format!(
        "{}: opset {}, {}, input '{}' [{}, {}]\n",
        r.model,
        r.opset,
        if r.producer.is_empty() {
            "unknown producer"
        } else {
            r.producer
        },
        r.input.name,
        r.input.batch,
        r.input.shape
    );
    out.push_str(&super::table(
        &rows,
        &[false, false, false, false, true, true],
    ));
    out.push_str(&pruning_table(&r.pruning));
    if let Some(cost) = r.he {
        out.push('\n');
        out.push_str(&super::he_report::table(r.packing, cost));
    }
    out
}

fn pruning_table(p: &Pruning) -> String {
    if p.layers.is_empty() {
        return String::new();
    }
    let mut rows = vec![[
        "layer".to_string(),
        "units kept".to_string(),
        "non-zero weights".to_string(),
        "HE ops".to_string(),
    ]];
    for l in &p.layers {
        rows.push([
            l.layer.to_string(),
            format!("{}/{}", l.units_kept, l.units_total),
            format!("{}/{}", l.nonzero, l.weights),
            l.he_ops.to_string(),
        ]);
    }
    rows.push([
        "total".into(),
        String::new(),
        String::new(),
        p.layers.iter().map(|l| l.he_ops).sum::<u64>().to_string(),
    ]);
    let mut out = format!(
        "\npruning ({}; HE ops: one multiply and one add per non-zero weight and use):\n",
        p.units
    );
    out.push_str(&super::table(&rows, &[false, true, true, true]));
    out.push_str(&match &p.reference {
        Some(r) => format!(
            "model sparsity {:.3} against {r} ({} non-zero linear-layer parameters)\n",
            p.model_sparsity, p.nonzero_params
        ),
        None => format!(
            "model sparsity {:.3} ({} of {} linear-layer parameters non-zero; --reference ORIGINAL.onnx counts removed ones too)\n",
            p.model_sparsity, p.nonzero_params, p.params
        ),
    });
    out
}
