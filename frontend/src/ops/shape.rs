//! Ops that move or combine data without weights: a global average written
//! as `ReduceMean`, `Squeeze`/`Unsqueeze`, casts, residual sums and
//! concatenations of data tensors.

use hepack_ir::{Graph, NodeId, Op, Shape};

use super::Ctx;
use crate::error::FrontendError;
use crate::model::Value;

impl Ctx<'_> {
    /// `ReduceMean` over the spatial axes of `[C, H, W]` (or `[C, L]`): a global
    /// average pool, how exporters write `AdaptiveAvgPool2d(1)` and `x.mean((2, 3))`.
    pub(super) fn reduce_mean(&self, graph: &mut Graph) -> Result<Value, FrontendError> {
        self.allow(&["axes", "keepdims", "noop_with_empty_axes"])?;
        let x = self.data(0)?;
        let sample = self.shape_of(graph, x);
        let full_rank = sample.rank() + 1;
        let axes = self.axes(1)?.unwrap_or_default();
        let mut axes: Vec<usize> = axes
            .iter()
            .map(|&a| self.sample_axis(a, full_rank, false))
            .collect::<Result<_, _>>()?;
        axes.sort_unstable();
        axes.dedup();
        let spatial: Vec<usize> = (1..sample.rank()).collect();
        if sample.rank() < 2 || axes != spatial {
            return Err(self.err(format!(
                "the mean over axes {axes:?} of [batch, {sample}] is supported only over all spatial axes \
                 (a global average pool: AdaptiveAvgPool2d(1), x.mean((2, 3)))"
            )));
        }
        let keepdims = self.int("keepdims")?.unwrap_or(1) != 0;
        let c = sample.dims()[0];
        let mut x = x;
        if sample.rank() != 3 {
            // [C, L] (1-D) and [C, D, H, W]: one spatial axis of their product.
            let spatial: usize = sample.dims()[1..].iter().product();
            x = graph
                .add(
                    format!("{}/as2d", self.name),
                    Op::Reshape(Shape::new(vec![c, 1, spatial])),
                    &[x],
                )
                .map_err(|e| self.err(e.to_string()))?;
        }
        if keepdims && sample.rank() == 3 {
            return self.add(graph, Op::GlobalAvgPool, x);
        }
        let pooled = graph
            .add(format!("{}/pool", self.name), Op::GlobalAvgPool, &[x])
            .map_err(|e| self.err(e.to_string()))?;
        let mut dims = vec![c];
        if keepdims {
            dims.extend(std::iter::repeat_n(1, sample.rank() - 1));
        }
        self.add(graph, Op::Reshape(Shape::new(dims)), pooled)
    }

    /// `Squeeze`/`Unsqueeze` of data: a reshape that keeps the batch axis.
    pub(super) fn squeeze(&self, graph: &mut Graph) -> Result<Value, FrontendError> {
        self.allow(&["axes"])?;
        let x = self.data(0)?;
        let sample = self.shape_of(graph, x);
        let unsqueeze = self.node.op_type == "Unsqueeze";
        let axes = self.axes(1)?;
        let dims = if unsqueeze {
            let axes = axes.ok_or_else(|| self.err("axes are missing"))?;
            let full_rank = sample.rank() + 1 + axes.len();
            let at = axes
                .iter()
                .map(|&a| self.sample_axis(a, full_rank, false))
                .collect::<Result<_, _>>()?;
            super::fold::unsqueezed(sample.dims(), at)
        } else {
            let full_rank = sample.rank() + 1;
            let drop = match axes {
                Some(axes) => Some(
                    axes.iter()
                        .map(|&a| self.sample_axis(a, full_rank, false))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
                None => None,
            };
            super::fold::squeezed(sample.dims(), drop.as_deref()).map_err(|bad| {
                self.err(format!(
                    "axis {} of [batch, {sample}] has size {}, not 1",
                    bad + 1,
                    sample.dims()[bad]
                ))
            })?
        };
        self.add(graph, Op::Reshape(Shape::new(dims)), x)
    }

    /// `a + b` (or `a - b`) of two data tensors of one shape: a residual connection.
    pub(super) fn residual(
        &self,
        graph: &mut Graph,
        a: NodeId,
        b: NodeId,
        subtract: bool,
    ) -> Result<Value, FrontendError> {
        let (sa, sb) = (self.shape_of(graph, a), self.shape_of(graph, b));
        if sa != sb {
            return Err(self.err(format!(
                "adds data tensors of shapes [batch, {sa}] and [batch, {sb}]; a residual \
                 connection needs one shape (broadcasting between data tensors is not supported)"
            )));
        }
        let b = if subtract {
            graph
                .add(
                    format!("{}/neg", self.name),
                    Op::MulConst(ndarray::arr0(-1.0).into_dyn()),
                    &[b],
                )
                .map_err(|e| self.err(e.to_string()))?
        } else {
            b
        };
        graph
            .add(self.name, Op::Add, &[a, b])
            .map(Value::Data)
            .map_err(|e| self.err(e.to_string()))
    }

    /// `Concat` of data tensors along a sample axis (`torch.cat`).
    pub(super) fn concat(&self, graph: &mut Graph) -> Result<Value, FrontendError> {
        self.allow(&["axis"])?;
        let mut parts = Vec::with_capacity(self.node.input.len());
        for i in 0..self.node.input.len() {
            match self.input(i)? {
                Some(Value::Data(id)) => parts.push(*id),
                Some(_) => {
                    let why = "is a constant joined to data; hepack concatenates data tensors only";
                    return Err(self.err(format!("input {i} {why}")));
                }
                None => {}
            }
        }
        let first = *parts.first().ok_or_else(|| self.err("has no inputs"))?;
        let full_rank = self.shape_of(graph, first).rank() + 1;
        let axis = self
            .int("axis")?
            .ok_or_else(|| self.err("axis is required"))?;
        let axis = self.sample_axis(axis, full_rank, false)?;
        graph
            .add(self.name, Op::Concat(axis), &parts)
            .map(Value::Data)
            .map_err(|e| self.err(e.to_string()))
    }

    /// A cast of the data: the identity to float32 or float64 (hepack computes
    /// in f64), or like another data tensor; an error to any other type.
    pub(super) fn cast(&self, graph: &mut Graph) -> Result<Value, FrontendError> {
        self.allow(&["to", "saturate"])?;
        let x = self.data(0)?;
        let real = match self.node.op_type.as_str() {
            "Cast" => matches!(self.int("to")?, Some(1 | 11)),
            // A constant target's precision is not kept (float16 reads as f64).
            _ => matches!(self.input(1)?, Some(Value::Data(_))),
        };
        if !real {
            return Err(self.err(
                "casts the data to a type other than float32/float64 (integers and half precision \
                 would change the values); export the model in float32",
            ));
        }
        self.add(graph, Op::Identity, x)
    }
}
