//! Passes over hepack's IR.
//!
//! A [`Pass`] rewrites an [`ir::Graph`](hepack_ir::Graph) in place and reports
//! what it changed; a [`Pipeline`] runs passes in order and verifies the graph
//! after each. [`pipeline`] builds one from the names used on the command line.
//!
//! Exact passes (the reference interpreter gives the same outputs before and
//! after, to rounding): `remove-identity`, `fold-batchnorm`, `fold-scalings`,
//! `fuse-linear`, `conv-to-dense`, `compress` (removes all-zero filters/neurons). Approximating passes: `strip-softmax`
//! (same argmax), `maxpool-to-avgpool`, `act-to-poly`. The `he-friendly` alias
//! runs the default pipeline that leaves only linear layers, average/sum pools
//! and polynomials, and checks that it did.

pub mod batchnorm;
pub mod check;
pub mod cleanup;
pub mod conv_dense;
pub mod error;
pub mod fold;
pub mod fuse;
pub mod manager;
pub mod poly;
pub mod pool;
pub mod prune;

use std::collections::BTreeMap;

use ndarray::ArrayD;

pub use error::PassError;
pub use manager::{Pass, PassReport, Pipeline};
pub use poly::{ActChoice, FitReport};

/// What the `he-friendly` alias expands to.
pub const HE_FRIENDLY: &[&str] = &[
    "remove-identity",
    "fold-batchnorm",
    "strip-softmax",
    "maxpool-to-avgpool",
    "act-to-poly",
    "fold-scalings",
    "fuse-linear",
    "check-he-friendly",
];

/// Passes that exist but are not part of `he-friendly`.
pub const OTHER_PASSES: &[&str] = &["conv-to-dense", "compress"];

/// Every pass name: the `he-friendly` ones in pipeline order, then the others.
pub fn pass_names() -> Vec<&'static str> {
    HE_FRIENDLY.iter().chain(OTHER_PASSES).copied().collect()
}

/// Options of the passes that take any.
#[derive(Clone, Debug)]
pub struct PassOptions {
    /// Activation approximation for layers without an override. `None` means
    /// `poly:2` when a calibration batch is given and `square` otherwise.
    pub act: Option<ActChoice>,
    /// Per-layer activation overrides.
    pub act_layers: BTreeMap<String, ActChoice>,
    /// Calibration batch for fitted activations.
    pub calib: Option<ArrayD<f64>>,
    /// Fraction of the observed range added on each side for `cheb:D` fits.
    pub cheb_margin: f64,
    /// `fuse-linear` skips fusions that grow the weight count more than this.
    pub fuse_max_growth: f64,
}

impl Default for PassOptions {
    fn default() -> Self {
        PassOptions {
            act: None,
            act_layers: BTreeMap::new(),
            calib: None,
            cheb_margin: 0.05,
            fuse_max_growth: 1.0,
        }
    }
}

impl PassOptions {
    /// The activation approximation used where no layer override applies.
    pub fn default_act(&self) -> ActChoice {
        self.act.unwrap_or(if self.calib.is_some() {
            ActChoice::LeastSquares(2)
        } else {
            ActChoice::Square
        })
    }
}

/// Build a pipeline from comma-separated pass names (aliases: `he-friendly`).
pub fn pipeline(spec: &str, options: &PassOptions) -> Result<Pipeline, PassError> {
    let mut p = Pipeline::new();
    for name in spec.split(',').map(str::trim) {
        if name == "he-friendly" {
            for &n in HE_FRIENDLY {
                add_pass(&mut p, n, options)?;
            }
        } else {
            add_pass(&mut p, name, options)?;
        }
    }
    Ok(p)
}

fn add_pass(p: &mut Pipeline, name: &str, options: &PassOptions) -> Result<(), PassError> {
    match name {
        "remove-identity" => p.push(cleanup::RemoveIdentity),
        "strip-softmax" => p.push(cleanup::StripSoftmax),
        "fold-batchnorm" => p.push(batchnorm::FoldBatchNorm),
        "maxpool-to-avgpool" => p.push(pool::MaxPoolToAvgPool::default()),
        "act-to-poly" => p.push(poly::ActToPoly {
            default: options.default_act(),
            per_layer: options.act_layers.clone(),
            calib: options.calib.clone(),
            margin: options.cheb_margin,
            limit: None,
        }),
        "fold-scalings" => p.push(fold::FoldScalings),
        "fuse-linear" => p.push(fuse::FuseLinear {
            max_growth: options.fuse_max_growth,
        }),
        "check-he-friendly" => p.push(check::CheckHeFriendly),
        "conv-to-dense" => p.push(conv_dense::ConvToDense),
        "compress" => p.push(prune::Compress),
        _ => {
            return Err(PassError::UnknownPass {
                name: name.to_string(),
                known: format!("{}, and the alias he-friendly", pass_names().join(", ")),
            })
        }
    };
    Ok(())
}
