//! The pass options shared by `compile`, `eval` and `export`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use hepack_ir::{dump, Graph};
use hepack_passes::{pass_names, ActChoice, PassOptions, PassReport};

use crate::npy;

/// Options choosing and tuning the passes run on the model.
#[derive(Args, Debug, Default)]
pub struct PassArgs {
    /// Comma-separated passes to run, in order. `he-friendly` is the default
    /// pipeline: remove-identity, fold-batchnorm, strip-softmax,
    /// maxpool-to-avgpool, act-to-poly, fold-scalings, fuse-linear,
    /// check-he-friendly. Also available: conv-to-dense.
    #[arg(long, value_name = "PASS,...")]
    pub passes: Option<String>,
    /// How act-to-poly approximates activations: square (x²), poly:D (least
    /// squares over the calibration inputs) or cheb:D (Chebyshev on their range).
    /// Default: poly:2 with --calib, square without.
    #[arg(long, value_name = "CHOICE")]
    pub act: Option<String>,
    /// Per-layer override of --act, e.g. `--act-layer /1/Relu=cheb:4` (repeatable).
    #[arg(long = "act-layer", value_name = "LAYER=CHOICE")]
    pub act_layer: Vec<String>,
    /// Calibration batch (.npy, [N, ...input shape]): act-to-poly fits each
    /// activation to the inputs it sees when this batch runs through the model.
    #[arg(long, value_name = "X.npy")]
    pub calib: Option<PathBuf>,
    /// The calibration batch itself, when it comes from memory (Python's
    /// `calib=` array) rather than from `--calib`'s file.
    #[arg(skip)]
    pub calib_batch: Option<ndarray::ArrayD<f64>>,
    /// Print the IR after this pass (a name from --passes, or `all`).
    #[arg(long, value_name = "PASS|all")]
    pub print_after: Option<String>,
}

impl PassArgs {
    /// The pipeline to run: `--passes`, else `default` (`None`: run nothing).
    pub fn spec<'a>(&'a self, default: Option<&'a str>) -> Option<&'a str> {
        self.passes.as_deref().or(default)
    }

    fn options(&self) -> Result<PassOptions> {
        let mut options = PassOptions::default();
        if let Some(act) = &self.act {
            options.act = Some(act.parse::<ActChoice>()?);
        }
        for item in &self.act_layer {
            let Some((layer, choice)) = item.rsplit_once('=') else {
                bail!("--act-layer {item}: expected LAYER=CHOICE, e.g. /1/Relu=poly:3");
            };
            options
                .act_layers
                .insert(layer.to_string(), choice.parse::<ActChoice>()?);
        }
        options.calib = self.calibration()?;
        Ok(options)
    }

    /// The calibration batch, if `--calib` names one.
    pub fn calibration(&self) -> Result<Option<ndarray::ArrayD<f64>>> {
        if let Some(x) = &self.calib_batch {
            if x.ndim() == 0 || x.shape()[0] == 0 {
                bail!("the calibration batch holds no samples");
            }
            return Ok(Some(x.clone()));
        }
        self.calib
            .as_ref()
            .map(|path| npy::read_batch(path).context("calibration batch (--calib)"))
            .transpose()
    }

    /// Run the chosen pipeline on `graph`, printing the IR after the passes
    /// `--print-after` names. Returns the reports (empty when no pipeline).
    pub fn run(&self, graph: &mut Graph, default: Option<&str>) -> Result<Vec<PassReport>> {
        let Some(spec) = self.spec(default) else {
            let tuned = self.print_after.is_some()
                || self.calib.is_some()
                || self.calib_batch.is_some()
                || self.act.is_some()
                || !self.act_layer.is_empty();
            if tuned {
                bail!("--print-after, --calib, --act and --act-layer need a pipeline: add --passes he-friendly");
            }
            return Ok(Vec::new());
        };
        let options = self.options()?;
        let mut pipeline = hepack_passes::pipeline(spec, &options)?;
        if let Some(after) = &self.print_after {
            if after != "all" && !pipeline.names().contains(&after.as_str()) {
                bail!(
                    "--print-after {after}: that pass is not in the pipeline ({}); known passes: {}",
                    pipeline.names().join(", "),
                    pass_names().join(", ")
                );
            }
        }
        let print_after = self.print_after.as_deref();
        let reports = pipeline
            .run(graph, |report, g| {
                if print_after == Some("all") || print_after == Some(report.pass) {
                    println!("; IR after {}", report.pass);
                    print!("{}", dump::to_text(g));
                }
            })
            .context("pass pipeline failed")?;
        Ok(reports)
    }
}
