//! Activations that exporters write other than as one ONNX op of their own:
//! `Clip` (ReLU6), `PRelu` with one slope, SiLU, Mish and GELU written as
//! products, and the default exporter's `Where(x > 20, x, Softplus(x))`.

use hepack_ir::{Activation, Graph, NodeId, Op};
use ndarray::ArrayD;

use super::Ctx;
use crate::error::FrontendError;
use crate::model::Value;

impl Ctx<'_> {
    pub(super) fn clip(&self, graph: &mut Graph) -> Result<Value, FrontendError> {
        let (min, max) = if self.opset < 11 {
            self.allow(&["min", "max", "consumed_inputs"])?;
            (
                self.float("min")?.map_or(f64::NEG_INFINITY, f64::from),
                self.float("max")?.map_or(f64::INFINITY, f64::from),
            )
        } else {
            self.allow(&[])?;
            let bound = |i: usize, what: &str, none: f64| -> Result<f64, FrontendError> {
                match self.constant_input(i, what)? {
                    None => Ok(none),
                    Some(c) => c
                        .to_f64()
                        .iter()
                        .next()
                        .copied()
                        .ok_or_else(|| self.err(format!("{what} is empty"))),
                }
            };
            (
                bound(1, "min", f64::NEG_INFINITY)?,
                bound(2, "max", f64::INFINITY)?,
            )
        };
        if min > max {
            return Err(self.err(format!("min {min} is above max {max}")));
        }
        let act = if min == 0.0 && max == f64::INFINITY {
            Activation::Relu
        } else {
            Activation::Clip { min, max }
        };
        self.unary(graph, Op::Activation(act))
    }

    /// PReLU with one slope (`nn.PReLU()`), or per-channel slopes that are all
    /// equal: a leaky ReLU. Distinct slopes per channel would need one
    /// polynomial per channel, which act-to-poly does not fit.
    pub(super) fn prelu(&self, graph: &mut Graph) -> Result<Value, FrontendError> {
        self.allow(&[])?;
        let slope = self.required_constant(1, "slope")?.to_f64();
        let first = slope
            .iter()
            .next()
            .copied()
            .ok_or_else(|| self.err("the slope is empty"))?;
        if slope.iter().any(|&v| v != first) {
            return Err(self.err(
                "per-channel slopes (nn.PReLU(num_parameters=C)) that differ are not supported; use nn.PReLU() with one slope",
            ));
        }
        self.unary(
            graph,
            Op::Activation(Activation::LeakyRelu { alpha: first }),
        )
    }

    /// A comparison of the data with a constant, kept for the `Where` that reads it.
    pub(super) fn compare(&self) -> Result<Value, FrontendError> {
        self.allow(&[])?;
        let x = self.data(0)?;
        let c = self.required_constant(1, "threshold")?.to_f64();
        let threshold = match c.iter().collect::<Vec<_>>().as_slice() {
            [t] => **t,
            _ => {
                return Err(self
                    .err("comparisons of the data are supported only with one scalar threshold"))
            }
        };
        Ok(Value::Compare {
            x,
            op: self.node.op_type.clone(),
            threshold,
        })
    }

    /// `Where(x > t, x, softplus(x))`: how the default exporter writes
    /// `nn.Softplus` (its `threshold`). For t ≥ 15 the two branches differ by
    /// less than e⁻¹⁵ ≈ 3e-7 where the condition holds, so this is Softplus.
    pub(super) fn select(&self, graph: &Graph) -> Result<Value, FrontendError> {
        self.allow(&[])?;
        let unsupported = || {
            self.err(
                "Where on the data selects by a comparison, which CKKS cannot compute; only \
                 Softplus's Where(x > threshold, x, softplus(x)) with threshold ≥ 15 is supported",
            )
        };
        let Some(Value::Compare { x, op, threshold }) = self.input(0)? else {
            return Err(unsupported());
        };
        let (Some(Value::Data(a)), Some(Value::Data(b))) = (self.input(1)?, self.input(2)?) else {
            return Err(unsupported());
        };
        let softplus_of_x = matches!(graph.node(*b).op, Op::Activation(Activation::Softplus))
            && graph.operands(*b).first() == Some(x);
        if matches!(op.as_str(), "Greater" | "GreaterOrEqual")
            && *threshold >= 15.0
            && a == x
            && softplus_of_x
        {
            return Ok(Value::Data(*b));
        }
        Err(unsupported())
    }
}

/// `x · g` as one activation of `x` times a constant, when `g` is the gate of
/// an activation that exporters write as a product: `x·σ(x)` (SiLU),
/// `x·tanh(softplus(x))` (Mish), `x·(1 + erf(x/√2))` (twice GELU, as older
/// exporters decompose `nn.GELU`).
pub(super) fn gate(graph: &Graph, x: NodeId, g: NodeId) -> Option<(NodeId, Activation, f64)> {
    let scalar = |c: &ArrayD<f64>| (c.len() == 1).then(|| c.iter().copied().next()).flatten();
    let operand = |id: NodeId| graph.operands(id).first().copied();
    match &graph.node(g).op {
        Op::Activation(Activation::Sigmoid) if operand(g) == Some(x) => {
            Some((x, Activation::Silu, 1.0))
        }
        Op::Activation(Activation::Tanh) => {
            let inner = operand(g)?;
            (matches!(graph.node(inner).op, Op::Activation(Activation::Softplus))
                && operand(inner) == Some(x))
            .then_some((x, Activation::Mish, 1.0))
        }
        Op::AddConst(one) if scalar(one) == Some(1.0) => {
            let erf = operand(g)?;
            if !matches!(graph.node(erf).op, Op::Activation(Activation::Erf)) {
                return None;
            }
            let scaled = operand(erf)?;
            match &graph.node(scaled).op {
                Op::MulConst(c)
                    if operand(scaled) == Some(x)
                        && scalar(c).is_some_and(|c| {
                            (c - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-6
                        }) =>
                {
                    Some((x, Activation::Gelu, 2.0))
                }
                _ => None,
            }
        }
        _ => None,
    }
}
