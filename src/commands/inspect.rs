//! `hepack inspect`: the per-layer table of a model.

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use hepack_backend::diagonal::gazelle::{paper_counts, LayerPaperCounts};
use hepack_backend::tile::{TilePacking, TileShape};
use hepack_backend::Lowering;
use hepack_frontend::{BatchDim, Model};
use hepack_ir::{Shape, Summary};
use hepack_passes::prune::{layer_stats, linear_params, model_sparsity, LayerStats};
use serde::Serialize;

use super::prune_args::PackingArg;

#[derive(Serialize)]
struct Report<'a> {
    model: String,
    opset: i64,
    producer: &'a str,
    input: InputInfo<'a>,
    #[serde(flatten)]
    summary: Summary,
    pruning: Pruning,
    /// The HE cost, layers with the papers' counts added when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    he: Option<serde_json::Value>,
    #[serde(skip)]
    cost: Option<&'a hepack_backend::Cost>,
    #[serde(skip)]
    papers: Option<Vec<(LayerPaperCounts, String)>>,
    /// The packing the HE costs are for.
    #[serde(skip)]
    packing: &'a str,
}

/// Published counts `--paper-counts` puts beside hepack's.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PaperArg {
    /// Hunter's Table 4 formulas under GAZELLE's packing, and Artemis's
    /// Eq. (6) rotations.
    Gazelle,
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
    paper: Option<PaperArg>,
) -> Result<()> {
    check_paper(packing, he, paper)?;
    let model: Model = super::load_model(path)?;
    let reference = match reference {
        Some(r) => Some((
            r.display().to_string(),
            linear_params(&super::load_model(r)?.graph).0,
        )),
        None => None,
    };
    let cost = he_cost(&model, &path.display().to_string(), packing, he, paper)?;
    let report = build(
        &model,
        path.display().to_string(),
        packing,
        units,
        reference,
        cost.as_ref(),
        paper,
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

/// What `inspect --json` prints for `model` (called `label` in messages).
pub fn report_json(
    model: &Model,
    label: &str,
    packing: &dyn hepack_backend::Lowering,
    units: String,
    he: bool,
    paper: Option<PaperArg>,
) -> Result<serde_json::Value> {
    let cost = he_cost(model, label, packing, he, paper)?;
    let report = build(
        model,
        label.to_string(),
        packing,
        units,
        None,
        cost.as_ref(),
        paper,
    )?;
    Ok(serde_json::to_value(&report)?)
}

fn he_cost(
    model: &Model,
    label: &str,
    packing: &dyn hepack_backend::Lowering,
    he: bool,
    paper: Option<PaperArg>,
) -> Result<Option<hepack_backend::Cost>> {
    check_paper(packing, he, paper)?;
    if !he {
        return Ok(None);
    }
    Ok(Some(
        super::he_report::count(&model.graph, packing)
            .with_context(|| format!("cannot lower {label}"))?,
    ))
}

/// `--paper-counts` needs the diagonal program's counts to stand beside.
fn check_paper(
    packing: &dyn hepack_backend::Lowering,
    he: bool,
    paper: Option<PaperArg>,
) -> Result<()> {
    if paper.is_some() && !(he && packing.name() == "diagonal") {
        bail!("--paper-counts compares with hepack's program under single-sample packing: add --he --packing diagonal");
    }
    Ok(())
}

/// The report on `model`; `reference` is the unpruned model's name and
/// linear-layer parameter count.
fn build<'a>(
    model: &'a Model,
    label: String,
    packing: &'a dyn hepack_backend::Lowering,
    units: String,
    reference: Option<(String, usize)>,
    cost: Option<&'a hepack_backend::Cost>,
    paper: Option<PaperArg>,
) -> Result<Report<'a>> {
    let reference_params = reference
        .as_ref()
        .map_or_else(|| linear_params(&model.graph).0, |r| r.1);
    let (params, nonzero_params) = linear_params(&model.graph);
    let pruning = Pruning {
        units,
        layers: layer_stats(&model.graph, packing)
            .with_context(|| format!("cannot count {label}'s units"))?,
        nonzero_params,
        params,
        model_sparsity: model_sparsity(reference_params, &model.graph),
        reference: reference.map(|r| r.0),
    };
    let mut report = Report {
        model: label,
        opset: model.opset,
        producer: &model.producer,
        input: InputInfo {
            name: &model.input_name,
            shape: &model.graph.node(model.graph.input()).shape,
            batch: batch_text(&model.batch),
        },
        summary: Summary::of(&model.graph),
        pruning,
        he: None,
        cost,
        papers: None,
        packing: packing.name(),
    };
    if let Some(cost) = cost {
        let mut value = serde_json::to_value(cost)?;
        if paper.is_some() {
            let rows = hepack_backend::diagonal::op_rows(&model.graph);
            let papers: Vec<(LayerPaperCounts, String)> = paper_counts(&model.graph)
                .into_iter()
                .map(|p| {
                    let row = rows
                        .get(p.layer.as_str())
                        .cloned()
                        .unwrap_or_else(|| p.layer.to_string());
                    (p, row)
                })
                .collect();
            if let Some(layers) = value["layers"].as_array_mut() {
                for layer in layers {
                    let name = layer["layer"].as_str().unwrap_or_default().to_string();
                    if let Some((p, _)) = papers.iter().find(|(_, row)| *row == name) {
                        layer["gazelle"] = serde_json::to_value(p.gazelle)?;
                        layer["gazelle_per_ct"] = p.per_ct.into();
                        if let Some(a) = &p.artemis {
                            layer["artemis"] = serde_json::to_value(a)?;
                        }
                    }
                }
            }
            report.papers = Some(papers);
        }
        report.he = Some(value);
    }
    Ok(report)
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
    if let Some(cost) = r.cost {
        out.push('\n');
        out.push_str(&super::he_report::table(r.packing, cost));
        if let Some(papers) = &r.papers {
            out.push_str(&papers_table(papers, cost));
        }
    }
    out
}

/// Hunter's GAZELLE counts and Artemis's Eq. (6) beside hepack's program.
fn papers_table(papers: &[(LayerPaperCounts, String)], cost: &hepack_backend::Cost) -> String {
    let kind = |k: &str| hepack_backend::program::kind_index(k).expect("a kind");
    let mut rows = vec![[
        "layer",
        "c_n",
        "Perm",
        "Mult",
        "Add",
        "Eq.6 rot",
        "alpha",
        "beta",
        "rotate",
        "mul_plain",
        "add",
    ]
    .map(String::from)];
    let mut totals = [0u64; 7];
    for (p, row) in papers {
        let ops = cost
            .layers
            .iter()
            .find(|l| l.layer == *row)
            .map(|l| l.ops.0);
        let mine = ops.map_or([0; 3], |o| {
            [o[kind("rotate")], o[kind("mul_plain")], o[kind("add")]]
        });
        let eq6 = p.artemis.map(|a| a.rotations);
        for (t, v) in totals.iter_mut().zip([
            p.gazelle.perm,
            p.gazelle.mult,
            p.gazelle.add,
            eq6.unwrap_or(p.gazelle.perm),
            mine[0],
            mine[1],
            mine[2],
        ]) {
            *t += v;
        }
        let frac = |f: Option<f64>| f.map_or("-".to_string(), |f| format!("{f:.2}"));
        rows.push([
            p.layer.to_string(),
            p.per_ct.to_string(),
            p.gazelle.perm.to_string(),
            p.gazelle.mult.to_string(),
            p.gazelle.add.to_string(),
            eq6.map_or("-".to_string(), |r| r.to_string()),
            frac(p.artemis.map(|a| a.alpha)),
            frac(p.artemis.map(|a| a.beta)),
            mine[0].to_string(),
            mine[1].to_string(),
            mine[2].to_string(),
        ]);
    }
    let t = totals.map(|v| v.to_string());
    rows.push([
        "total".to_string(),
        String::new(),
        t[0].clone(),
        t[1].clone(),
        t[2].clone(),
        t[3].clone(),
        String::new(),
        String::new(),
        t[4].clone(),
        t[5].clone(),
        t[6].clone(),
    ]);
    let right: Vec<bool> = (0..rows[0].len()).map(|i| i > 0).collect();
    format!(
        "\npaper counts (Hunter Table 4 under GAZELLE: Perm / Mult / Add; Artemis Eq. 6 rotations from the kept fractions alpha, beta; dense layers count Perm there) beside hepack's program (rotate / mul_plain / add):\n{}",
        super::table(&rows, &right)
    )
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
        "\npruning ({}; HE ops: {}):\n",
        p.units,
        if p.units.starts_with("diagonal") {
            "a product and an add per non-zero diagonal, a rotation per baby and giant step"
        } else {
            "one multiply and one add per non-zero weight and use"
        }
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

/// `--tile`: one tile shape, or every shape (`all`).
#[derive(Clone, Copy, Debug)]
pub enum TileArg {
    /// One tile shape.
    Shape(TileShape),
    /// Every tile shape that fits the ring.
    All,
}

impl std::str::FromStr for TileArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(TileArg::All),
            _ => s.parse().map(TileArg::Shape),
        }
    }
}

/// One row of `inspect --he --packing tile --tile all`.
#[derive(Serialize)]
struct TileRow {
    tile: String,
    /// Samples per ciphertext, `t3`.
    samples: usize,
    degree: u32,
    he_ops: u64,
    rotations: u64,
    mul_plain: u64,
    /// Ciphertexts the client encrypts per batch of `t3`.
    input_ciphertexts: usize,
    /// Most ciphertexts alive at once on the server, and their bytes.
    peak_ciphertexts: Option<usize>,
    peak_bytes: Option<u64>,
    /// Predicted server seconds for one batch (one thread, `inspect`'s op
    /// times), and samples per second at that.
    predicted_seconds: f64,
    samples_per_second: f64,
}

/// The smallest side `--tile all` tries: below it a tile holds too little
/// of a layer for the shape to matter.
const MIN_TILE_SIDE: usize = 4;

/// `inspect --he --packing tile --tile all`: every tile shape that fits the
/// ring the model's depth needs (both sides at least [`MIN_TILE_SIDE`]),
/// compiled, one row each.
pub fn tile_shapes(path: &Path, json: bool, packing: PackingArg, he: bool) -> Result<()> {
    if !matches!(packing, PackingArg::Tile) || !he {
        bail!("--tile all compares tile shapes' programs: add --he --packing tile");
    }
    let model: Model = super::load_model(path)?;
    let times = hepack_backend::OpTimes::default();
    let compile = |shape: TileShape| {
        TilePacking { shape }
            .lower(&model.graph, &times)
            .with_context(|| format!("cannot lower {} with {shape} tiles", path.display()))
    };
    let smallest = TileShape {
        rows: MIN_TILE_SIDE,
        cols: MIN_TILE_SIDE,
    };
    let slots = compile(smallest)?.0.params.slots() as usize;
    let mut rows = Vec::new();
    for shape in TileShape::all(slots, MIN_TILE_SIDE) {
        let (program, cost) = compile(shape)?;
        let samples = program.samples_per_ct();
        let inputs = program
            .instrs
            .iter()
            .filter(|i| matches!(i.op, hepack_backend::HeOp::EncryptInput { .. }))
            .count();
        rows.push(TileRow {
            tile: shape.to_string(),
            samples,
            degree: program.params.degree,
            he_ops: cost.he_ops,
            rotations: cost.total.get("rotate"),
            mul_plain: cost.total.get("mul_plain"),
            input_ciphertexts: inputs,
            peak_ciphertexts: cost.peak_ciphertexts,
            peak_bytes: cost.peak_bytes,
            predicted_seconds: cost.predicted_seconds,
            samples_per_second: samples as f64 / cost.predicted_seconds.max(f64::MIN_POSITIVE),
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let mut table = vec![[
        "tile",
        "samples",
        "N",
        "HE ops",
        "rotate",
        "mul_plain",
        "inputs",
        "peak cts",
        "peak memory",
        "predicted s",
        "samples/s",
    ]
    .map(String::from)
    .to_vec()];
    for r in &rows {
        table.push(vec![
            r.tile.clone(),
            r.samples.to_string(),
            r.degree.to_string(),
            r.he_ops.to_string(),
            r.rotations.to_string(),
            r.mul_plain.to_string(),
            r.input_ciphertexts.to_string(),
            r.peak_ciphertexts.map_or("-".into(), |p| p.to_string()),
            r.peak_bytes.map_or("-".into(), super::he_report::gib),
            format!("{:.2}", r.predicted_seconds),
            format!("{:.1}", r.samples_per_second),
        ]);
    }
    println!(
        "{}: tile shapes with both sides at least {MIN_TILE_SIDE} in {slots} slots (one thread, {} op times); a batch of B samples takes ⌈B / samples⌉ runs",
        path.display(),
        times.source
    );
    let right: Vec<bool> = (0..table[0].len()).map(|i| i > 0).collect();
    print!("{}", super::table(&table, &right));
    Ok(())
}
