//! `hepack inspect`: the per-layer table of a model.

use std::path::Path;

use anyhow::Result;
use hepack_frontend::{BatchDim, Model};
use hepack_ir::{Shape, Summary};
use serde::Serialize;

#[derive(Serialize)]
struct Report<'a> {
    model: String,
    opset: i64,
    producer: &'a str,
    input: InputInfo<'a>,
    #[serde(flatten)]
    summary: Summary,
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

/// Print the layer table (or JSON).
pub fn run(path: &Path, json: bool) -> Result<()> {
    let model: Model = super::load_model(path)?;
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
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
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
    for row in &rows {
        // Text columns left-aligned, numbers right-aligned.
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {:>w4$}  {:>w5$}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
            w5 = widths[5]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
