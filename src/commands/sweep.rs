//! `hepack sweep`: layer sparsity vs plaintext accuracy vs HE ops (MOFHEI Fig. 5).

use std::path::Path;

use anyhow::{bail, Context, Result};
use hepack_ir::interp;
use hepack_passes::prune::{
    apply_masks, compress, find_masks_staged, layer_stats, linear_he_ops, linear_params,
    model_sparsity,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::eval::{score, Score};
use super::passes::PassArgs;
use super::prune_args::UnitArgs;
use crate::npy;
use crate::output::write_atomic;
use crate::svg_chart::{two_axis_chart, Series};

/// Layer sparsities to try: `START:STOP:STEP` (inclusive) or a comma list.
pub fn parse_sparsities(spec: &str) -> Result<Vec<f64>> {
    let num = |t: &str| -> Result<f64> {
        let v: f64 = t
            .trim()
            .parse()
            .with_context(|| format!("--sparsity {spec}: '{t}' is not a number"))?;
        if !(0.0..=1.0).contains(&v) {
            bail!("--sparsity {spec}: {v} is outside [0, 1]");
        }
        Ok(v)
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let values = match parts[..] {
        [start, stop, step] => {
            let (start, stop) = (num(start)?, num(stop)?);
            let step: f64 = step
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| *s > 0.0)
                .with_context(|| format!("--sparsity {spec}: the step must be a number > 0"))?;
            let n = ((stop - start) / step + 1e-9).floor();
            if n < 0.0 {
                bail!("--sparsity {spec}: the start is after the stop");
            }
            // Computed from the index, so 0.5:0.95:0.05 ends at 0.95, not 0.9500001.
            (0..=n as usize)
                .map(|i| ((start + step * i as f64) * 1e9).round() / 1e9)
                .collect()
        }
        [_] => spec.split(',').map(num).collect::<Result<Vec<_>>>()?,
        _ => bail!("--sparsity {spec}: expected START:STOP:STEP or a comma-separated list"),
    };
    Ok(values)
}

/// One point of the curve.
#[derive(Serialize)]
struct Point {
    layer_sparsity: f64,
    model_sparsity: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mse: Option<f64>,
    he_ops: u64,
    he_ops_fraction: f64,
    widths: Vec<usize>,
}

impl Point {
    fn metric(&self) -> f64 {
        self.accuracy.or(self.mse).unwrap_or(f64::NAN)
    }
}

/// Sweep options, grouped to keep the signature short.
pub struct SweepArgs<'a> {
    /// `START:STOP:STEP` or a list.
    pub sparsity: &'a str,
    /// Input batch.
    pub input: &'a Path,
    /// Labels for the batch.
    pub labels: &'a Path,
    /// CSV output.
    pub csv: Option<&'a Path>,
    /// SVG output.
    pub svg: Option<&'a Path>,
    /// Print JSON.
    pub json: bool,
}

/// Prune at each sparsity, compress, evaluate, and report the curve.
pub fn run(model: &Path, args: &SweepArgs<'_>, passes: &PassArgs, units: &UnitArgs) -> Result<()> {
    let sparsities = parse_sparsities(args.sparsity)?;
    let mut model = super::load_model(model)?;
    let reports = passes.run(&mut model.graph, None)?;
    let (packing, stages, criterion) = (units.packing()?, units.stages()?, units.criterion());
    let packing = packing.as_ref();
    let x = npy::read_batch(args.input)?;
    let labels = npy::read_labels(args.labels)?;
    let (params, _) = linear_params(&model.graph);
    let full_ops = linear_he_ops(&model.graph, packing)?;

    let bar = ProgressBar::new(sparsities.len() as u64 + 1).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} sparsity {msg} ({elapsed})")
            .expect("a valid template"),
    );
    let mut points = Vec::new();
    for &s in std::iter::once(&0.0).chain(&sparsities) {
        bar.set_message(format!("{s:.2}"));
        let mut g = model.graph.clone();
        let masks = find_masks_staged(&g, &stages, criterion, &units.targets(s, &[])?)?;
        apply_masks(&mut g, &masks)?;
        compress(&mut g)?;
        let y =
            interp::run(&g, x.view()).with_context(|| format!("input {}", args.input.display()))?;
        let stats = layer_stats(&g, packing)?;
        let he_ops: u64 = stats.iter().map(|l| l.he_ops).sum();
        let (accuracy, mse) = match score(&y, &labels)? {
            Score::Accuracy { accuracy, .. } => (Some(accuracy), None),
            Score::Mse(m) => (None, Some(m)),
        };
        points.push(Point {
            layer_sparsity: s,
            model_sparsity: model_sparsity(params, &g),
            accuracy,
            mse,
            he_ops,
            he_ops_fraction: he_ops as f64 / full_ops.max(1) as f64,
            widths: stats.iter().map(|l| l.width).collect(),
        });
        bar.inc(1);
    }
    bar.finish_and_clear();

    let metric = if points[0].accuracy.is_some() {
        "accuracy"
    } else {
        "mse"
    };
    let mut csv = format!("layer_sparsity,model_sparsity,{metric},he_ops,he_ops_fraction,widths\n");
    for p in &points {
        let widths: Vec<String> = p.widths.iter().map(usize::to_string).collect();
        csv.push_str(&format!(
            "{},{:.6},{:.6},{},{:.6},{}\n",
            p.layer_sparsity,
            p.model_sparsity,
            p.metric(),
            p.he_ops,
            p.he_ops_fraction,
            widths.join(";")
        ));
    }
    let chart = args.svg.map(|_| {
        let xs: Vec<f64> = points.iter().map(|p| p.layer_sparsity).collect();
        let ms: Vec<f64> = points.iter().map(Point::metric).collect();
        let ops: Vec<f64> = points.iter().map(|p| p.he_ops as f64).collect();
        two_axis_chart(
            &format!("{} vs HE ops ({})", metric, units.describe()),
            "layer sparsity",
            &xs,
            &Series {
                label: metric,
                values: &ms,
                colour: "#1f77b4",
            },
            &Series {
                label: "linear-layer HE ops",
                values: &ops,
                colour: "#d62728",
            },
        )
    });
    if let Some(path) = args.csv {
        write_atomic(path, csv.as_bytes())?;
    }
    if let (Some(path), Some(chart)) = (args.svg, chart) {
        write_atomic(path, chart.as_bytes())?;
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&points)?);
        return Ok(());
    }
    let changes: usize = reports.iter().map(|r| r.changes.len()).sum();
    if !reports.is_empty() {
        println!(
            "{} passes ({changes} changes; `hepack compile` lists them)",
            reports.len()
        );
    }
    println!("{} samples; {}", x.shape()[0], units.describe());
    let mut rows = vec![[
        "layer sparsity".to_string(),
        "model sparsity".to_string(),
        metric.to_string(),
        "HE ops".to_string(),
        "of unpruned".to_string(),
        "widths".to_string(),
    ]];
    for p in &points {
        let widths: Vec<String> = p.widths.iter().map(usize::to_string).collect();
        rows.push([
            format!("{:.2}", p.layer_sparsity),
            format!("{:.3}", p.model_sparsity),
            format!("{:.4}", p.metric()),
            p.he_ops.to_string(),
            format!("{:.1}%", 100.0 * p.he_ops_fraction),
            widths.join(" "),
        ]);
    }
    print!(
        "{}",
        super::table(&rows, &[true, true, true, true, true, false])
    );
    for (path, what) in [(args.csv, "CSV"), (args.svg, "SVG")] {
        if let Some(path) = path {
            println!("{what} written to {}", path.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_sparsities;

    #[test]
    fn sparsity_ranges_and_lists() {
        assert_eq!(
            parse_sparsities("0.5:0.95:0.05").unwrap(),
            [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
        );
        assert_eq!(parse_sparsities("0.3, 0.9").unwrap(), [0.3, 0.9]);
        for bad in ["0.5:1.5:0.1", "0.5:0.9:0", "a", "0.1:0.2", "0.9:0.5:0.1"] {
            assert!(parse_sparsities(bad).is_err(), "{bad}");
        }
    }
}
