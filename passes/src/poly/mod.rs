//! `act-to-poly`: replace activations by polynomials, which CKKS can evaluate.
//!
//! Per layer, one of: `square` (x², CryptoNets), `poly:D` (least squares over
//! the inputs the layer sees on a calibration batch) or `cheb:D` (Chebyshev
//! interpolation on the observed input range, widened by a margin). Each layer's
//! report gives the input range seen and the fit's max and RMS error on the
//! calibration inputs. Not exact.

pub mod fit;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use hepack_ir::{interp, Activation, Graph, NodeId, Op, Polynomial};
use ndarray::ArrayD;
use serde::Serialize;

use crate::error::PassError;
use crate::manager::{Pass, PassReport};
use fit::Range;

/// Highest degree accepted: beyond it the power basis loses precision and the
/// HE depth (⌈log₂ D⌉ + 1 levels) is rarely worth it.
pub const MAX_DEGREE: usize = 31;

/// How one activation is approximated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActChoice {
    /// `x²`, needs no calibration.
    Square,
    /// Least-squares fit of this degree over the calibration inputs.
    LeastSquares(usize),
    /// Chebyshev interpolation of this degree on the calibration range.
    Chebyshev(usize),
}

impl ActChoice {
    fn needs_calibration(self) -> bool {
        !matches!(self, ActChoice::Square)
    }
}

impl FromStr for ActChoice {
    type Err = PassError;

    fn from_str(spec: &str) -> Result<Self, PassError> {
        let bad = |reason: &str| PassError::BadActChoice {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        if spec == "square" {
            return Ok(ActChoice::Square);
        }
        let (kind, degree) = spec.split_once(':').ok_or_else(|| bad("no degree given"))?;
        let degree: usize = degree
            .parse()
            .map_err(|_| bad("the degree is not a whole number"))?;
        if degree < 1 {
            return Err(bad("the degree must be at least 1"));
        }
        if degree > MAX_DEGREE {
            return Err(bad(&format!("the degree must be at most {MAX_DEGREE}")));
        }
        match kind {
            "poly" => Ok(ActChoice::LeastSquares(degree)),
            "cheb" => Ok(ActChoice::Chebyshev(degree)),
            _ => Err(bad(&format!("unknown kind '{kind}'"))),
        }
    }
}

impl fmt::Display for ActChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActChoice::Square => f.write_str("square"),
            ActChoice::LeastSquares(d) => write!(f, "poly:{d}"),
            ActChoice::Chebyshev(d) => write!(f, "cheb:{d}"),
        }
    }
}

/// How well one layer's polynomial matches the activation it replaced.
#[derive(Clone, Debug, Serialize)]
pub struct FitReport {
    /// The layer.
    pub layer: String,
    /// The activation replaced.
    pub activation: &'static str,
    /// The approximation chosen (`square`, `poly:D`, `cheb:D`; `exact` for x²).
    pub choice: String,
    /// Smallest and largest input seen on the calibration batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_range: Option<[f64; 2]>,
    /// Largest |polynomial − activation| over the calibration inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_error: Option<f64>,
    /// Root-mean-square error over the calibration inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rms_error: Option<f64>,
    /// How many input values the errors were measured on.
    pub samples: usize,
    /// The polynomial, constant term first.
    pub coeffs: Vec<f64>,
}

impl fmt::Display for FitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' {} -> {}", self.layer, self.activation, self.choice)?;
        if let (Some([lo, hi]), Some(max), Some(rms)) =
            (self.input_range, self.max_error, self.rms_error)
        {
            write!(
                f,
                ": inputs in [{lo:.4}, {hi:.4}], max error {max:.4e}, rms error {rms:.4e} over {} values",
                self.samples
            )?;
        }
        Ok(())
    }
}

fn is_square(op: &Op) -> bool {
    matches!(op, Op::Activation(Activation::Square))
}

/// Replace activations by polynomials, latest layer first.
#[derive(Clone, Debug)]
pub struct ActToPoly {
    /// The approximation for layers without an override.
    pub default: ActChoice,
    /// Per-layer overrides, keyed by layer name.
    pub per_layer: BTreeMap<String, ActChoice>,
    /// Calibration batch `[B, ...input shape]`, needed by `poly:D` and `cheb:D`.
    pub calib: Option<ArrayD<f64>>,
    /// `cheb:D` fits on the observed range widened by this fraction of its width
    /// on each side, so inputs slightly outside the calibration range stay close.
    pub margin: f64,
    /// Replace at most this many layers (the latest ones not yet replaced).
    pub limit: Option<usize>,
}

impl ActToPoly {
    /// Replace every activation with `default`, without calibration data.
    pub fn new(default: ActChoice) -> Self {
        ActToPoly {
            default,
            per_layer: BTreeMap::new(),
            calib: None,
            margin: 0.05,
            limit: None,
        }
    }
}

impl Pass for ActToPoly {
    fn name(&self) -> &'static str {
        "act-to-poly"
    }

    fn run(&mut self, graph: &mut Graph) -> Result<PassReport, PassError> {
        let all: Vec<NodeId> = graph
            .topo_order()
            .into_iter()
            .rev()
            .filter(|&id| matches!(graph.node(id).op, Op::Activation(_)))
            .collect();
        for layer in self.per_layer.keys() {
            if !all.iter().any(|&id| graph.node(id).name.as_str() == layer) {
                let known: Vec<&str> = all.iter().map(|&id| graph.node(id).name.as_str()).collect();
                return Err(PassError::UnknownLayer {
                    option: "--act-layer",
                    layer: layer.clone(),
                    known: known.join(", "),
                });
            }
        }
        let todo: Vec<NodeId> = all
            .into_iter()
            .take(self.limit.unwrap_or(usize::MAX))
            .collect();
        let choices: Vec<ActChoice> = todo
            .iter()
            .map(|&id| {
                *self
                    .per_layer
                    .get(graph.node(id).name.as_str())
                    .unwrap_or(&self.default)
            })
            .collect();

        // One calibration run taps the input of every layer to replace; later
        // layers are replaced first, so each sees exact activations upstream.
        let inputs: Vec<NodeId> = todo.iter().map(|&id| graph.operands(id)[0]).collect();
        let tapped = match &self.calib {
            Some(x) => Some(
                interp::run_with_taps(graph, x.view(), &inputs)
                    .map_err(PassError::Calibration)?
                    .1,
            ),
            None => {
                let needs = |&(id, c): &(&NodeId, &ActChoice)| {
                    c.needs_calibration() && !is_square(&graph.node(*id).op)
                };
                if let Some((&id, choice)) = todo.iter().zip(&choices).find(needs) {
                    return Err(PassError::NeedsCalibration {
                        layer: graph.node(id).name.to_string(),
                        choice: choice.to_string(),
                    });
                }
                None
            }
        };

        let mut report = PassReport::default();
        for (i, &id) in todo.iter().enumerate() {
            let Op::Activation(act) = graph.node(id).op else {
                unreachable!("filtered above");
            };
            let layer = graph.node(id).name.to_string();
            let choice = choices[i];
            // Fits and errors do not depend on the order of the values, so a
            // contiguous tap is read in place instead of copied.
            let xs: Option<Cow<'_, [f64]>> = tapped.as_ref().map(|t| {
                t[i].as_slice_memory_order()
                    .map(Cow::Borrowed)
                    .unwrap_or_else(|| Cow::Owned(t[i].iter().copied().collect()))
            });
            let observed = match &xs {
                Some(xs) => Some(Range::of(xs).ok_or_else(|| PassError::Fit {
                    layer: layer.clone(),
                    reason: "its calibration inputs include NaN or infinity".into(),
                })?),
                None => None,
            };
            if let Some(r) = observed.filter(|r| r.lo == r.hi) {
                if choice.needs_calibration() && act != Activation::Square {
                    return Err(PassError::Fit {
                        layer: layer.clone(),
                        reason: format!(
                            "every calibration input of this {} is {} (a constant calibration \
                             batch, or a layer whose output does not depend on it); a fit needs \
                             varied inputs: pass real samples with --calib",
                            act.torch_name(),
                            r.lo
                        ),
                    });
                }
            }
            let f = |x: f64| act.apply(x);
            let (coeffs, label) = match (act, choice) {
                (Activation::Square, _) => (vec![0.0, 0.0, 1.0], "exact".to_string()),
                (_, ActChoice::Square) => (vec![0.0, 0.0, 1.0], choice.to_string()),
                (_, ActChoice::LeastSquares(d)) => {
                    let (xs, range) = (xs.as_deref().expect("checked"), observed.expect("checked"));
                    let c =
                        fit::least_squares(f, xs, range, d).map_err(|reason| PassError::Fit {
                            layer: layer.clone(),
                            reason,
                        })?;
                    (c, choice.to_string())
                }
                (_, ActChoice::Chebyshev(d)) => {
                    let range = observed.expect("checked").widened(self.margin);
                    (fit::chebyshev(f, range, d), choice.to_string())
                }
            };
            let poly = Polynomial::new(coeffs);
            let (mut max_error, mut sq) = (0.0f64, 0.0);
            for &x in xs.as_deref().unwrap_or(&[]) {
                let e = poly.eval(x) - f(x);
                max_error = max_error.max(e.abs());
                sq += e * e;
            }
            let samples = xs.as_ref().map_or(0, |xs| xs.len());
            report.fits.push(FitReport {
                layer: layer.clone(),
                activation: graph.node(id).op.name(),
                choice: label,
                input_range: observed.map(|r| [r.lo, r.hi]),
                max_error: xs.as_ref().map(|_| max_error),
                rms_error: xs.as_ref().map(|_| (sq / samples.max(1) as f64).sqrt()),
                samples,
                coeffs: poly.coeffs.clone(),
            });
            report.change(format!(
                "'{layer}': {} -> degree-{} polynomial",
                graph.node(id).op.name(),
                poly.degree()
            ));
            graph.replace_op(id, Op::Polynomial(poly))?;
        }
        Ok(report)
    }
}
