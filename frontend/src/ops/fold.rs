//! Constant folding: a node whose inputs are all constants is evaluated here,
//! when it is read, so that the shape arithmetic and constant subgraphs
//! exporters emit (`x.view(x.size(0), -1)` under the legacy exporter,
//! `Transpose` of an initializer, `ConstantOfShape`, `Cast`, `Where(x > 20)`
//! around Softplus) never reach the IR. `Shape` of a data tensor folds too:
//! its per-sample dimensions are known, and the batch dimension is the
//! marker [`BATCH`], which only `Reshape` may consume.

use ndarray::{ArrayD, Axis, IxDyn, Slice};

use super::Ctx;
use crate::error::FrontendError;
use crate::model::Value;
use crate::tensor::Const;

/// The batch dimension inside a shape computed from the data: unknown until
/// run time. `Reshape` accepts it as its first dimension (where it keeps the
/// batch); any arithmetic on it is an error. Its value is one no exporter
/// writes: `i64::MIN + 1`, the obvious choice, is ONNX's "slice to the start".
pub(crate) const BATCH: i64 = i64::MIN + 0x6865_7061_636b;

/// Ops folded when all their inputs are constants.
pub(crate) const FOLDABLE: &[&str] = &[
    "Shape",
    "Size",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Concat",
    "Cast",
    "CastLike",
    "ConstantOfShape",
    "Where",
    "Greater",
    "GreaterOrEqual",
    "Less",
    "LessOrEqual",
    "Equal",
    "Not",
    "And",
    "Or",
    "Transpose",
    "Reshape",
    "Flatten",
    "Slice",
    "Neg",
    "Abs",
    "Sqrt",
    "Reciprocal",
    "Exp",
    "Log",
    "Floor",
    "Ceil",
    "Pow",
    "Erf",
    "Relu",
    "Sigmoid",
    "Tanh",
    "Range",
    "Expand",
];

impl Ctx<'_> {
    /// The node's value if it can be computed now: `Some` for a foldable op
    /// whose inputs are all constants (and for `Shape` of data), else `None`.
    pub(super) fn fold(
        &self,
        graph: &hepack_ir::Graph,
    ) -> Result<Option<Vec<Value>>, FrontendError> {
        let op = self.node.op_type.as_str();
        if !FOLDABLE.contains(&op) {
            return Ok(None);
        }
        if op == "Shape" {
            if let Some(Value::Data(id)) = self.input(0)? {
                let mut dims = vec![BATCH];
                dims.extend(graph.node(*id).shape.dims().iter().map(|&d| d as i64));
                return Ok(Some(vec![Value::Const(self.shape_slice(dims)?)]));
            }
        }
        if op == "CastLike" {
            // The type comes from input 1, which may be the data (always real).
            if let (Some(Value::Const(c)), Some(Value::Data(_))) = (self.input(0)?, self.input(1)?)
            {
                return Ok(Some(vec![Value::Const(Const::Float(c.to_f64()))]));
            }
        }
        let mut inputs: Vec<Option<&Const>> = Vec::with_capacity(self.node.input.len());
        for i in 0..self.node.input.len() {
            match self.input(i)? {
                Some(Value::Const(c)) => inputs.push(Some(c)),
                None => inputs.push(None),
                Some(_) => return Ok(None),
            }
        }
        if inputs.iter().all(Option::is_none) {
            return Ok(None);
        }
        // The batch marker may only be moved around as data (Concat's inputs,
        // the first input of the other reordering ops), never used as an
        // index, bound, axis or operand of arithmetic.
        let movable = |i: usize| match op {
            "Concat" => true,
            "Gather" | "Unsqueeze" | "Squeeze" | "Cast" | "CastLike" | "Reshape" | "Slice"
            | "Flatten" => i == 0,
            _ => false,
        };
        let misused = inputs
            .iter()
            .enumerate()
            .any(|(i, c)| c.is_some_and(carries_batch) && !movable(i));
        if misused {
            return Err(self.err(
                "computes with the batch size (from Shape of the input); hepack compiles per-sample \
                 shapes: export with a constant shape or nn.Flatten",
            ));
        }
        let value = self.evaluate(op, &inputs)?;
        Ok(Some(vec![Value::Const(value)]))
    }

    fn shape_slice(&self, dims: Vec<i64>) -> Result<Const, FrontendError> {
        let rank = dims.len() as i64;
        let clamp = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
        let start = clamp(self.int("start")?.unwrap_or(0));
        let end = clamp(self.int("end")?.unwrap_or(rank));
        let picked = dims[start..end.max(start)].to_vec();
        Ok(Const::Int(
            ArrayD::from_shape_vec(IxDyn(&[picked.len()]), picked).expect("1-D"),
        ))
    }

    fn operand<'c>(
        &self,
        inputs: &[Option<&'c Const>],
        i: usize,
    ) -> Result<&'c Const, FrontendError> {
        inputs
            .get(i)
            .copied()
            .flatten()
            .ok_or_else(|| self.err(format!("input {i} is missing")))
    }

    /// Integers from a constant input (axes, shapes, indices).
    fn ints_of(&self, c: &Const, what: &str) -> Result<Vec<i64>, FrontendError> {
        match c {
            Const::Int(a) => Ok(a.iter().copied().collect()),
            Const::Float(_) => Err(self.err(format!("{what} must be an integer tensor"))),
        }
    }

    fn axis_of(&self, axis: i64, rank: usize) -> Result<usize, FrontendError> {
        let a = if axis < 0 { axis + rank as i64 } else { axis };
        if a < 0 || a >= rank as i64 {
            return Err(self.err(format!("axis {axis} is out of range for rank {rank}")));
        }
        Ok(a as usize)
    }

    fn evaluate(&self, op: &str, inputs: &[Option<&Const>]) -> Result<Const, FrontendError> {
        let x = self.operand(inputs, 0)?;
        let float = |f: fn(f64) -> f64| Const::Float(x.to_f64().mapv(f));
        let compare = |f: fn(f64, f64) -> bool| -> Result<Const, FrontendError> {
            let (a, b) = self.broadcast2(x, self.operand(inputs, 1)?)?;
            Ok(Const::Int(
                ndarray::Zip::from(&a)
                    .and(&b)
                    .map_collect(|&p, &q| i64::from(f(p, q))),
            ))
        };
        Ok(match op {
            "Shape" => self.shape_slice(x.shape().iter().map(|&d| d as i64).collect())?,
            "Size" => {
                Const::Int(ndarray::arr0(x.shape().iter().product::<usize>() as i64).into_dyn())
            }
            "Gather" => {
                let idx = self.ints_of(self.operand(inputs, 1)?, "indices")?;
                let idx_shape = self.operand(inputs, 1)?.shape().to_vec();
                let axis = self.axis_of(self.int("axis")?.unwrap_or(0), x.shape().len())?;
                let len = x.shape()[axis] as i64;
                let picked: Vec<usize> =
                    idx.iter()
                        .map(|&i| {
                            let j = if i < 0 { i + len } else { i };
                            (0..len).contains(&j).then_some(j as usize).ok_or_else(|| {
                                self.err(format!("index {i} is out of range for {len}"))
                            })
                        })
                        .collect::<Result<_, _>>()?;
                match x {
                    Const::Float(a) => Const::Float(gather(a, axis, &picked, &idx_shape)),
                    Const::Int(a) => Const::Int(gather(a, axis, &picked, &idx_shape)),
                }
            }
            "Unsqueeze" | "Squeeze" => {
                let shape = x.shape();
                let axes = self.axes(1)?;
                let dims = if op == "Unsqueeze" {
                    let axes = axes.ok_or_else(|| self.err("axes are missing"))?;
                    let rank = shape.len() + axes.len();
                    let at = axes
                        .iter()
                        .map(|&a| self.axis_of(a, rank))
                        .collect::<Result<_, _>>()?;
                    unsqueezed(shape, at)
                } else {
                    let drop = match axes {
                        Some(axes) => Some(
                            axes.iter()
                                .map(|&a| self.axis_of(a, shape.len()))
                                .collect::<Result<Vec<_>, _>>()?,
                        ),
                        None => None,
                    };
                    squeezed(shape, drop.as_deref()).map_err(|_| {
                        self.err(format!("squeezes an axis of {shape:?} that is not 1"))
                    })?
                };
                reshaped(x, &dims)
            }
            "Reshape" => {
                let target = self.ints_of(self.operand(inputs, 1)?, "the shape")?;
                let numel: usize = x.shape().iter().product();
                let allowzero = self.int("allowzero")?.unwrap_or(0) != 0;
                let mut dims: Vec<i64> = target
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| {
                        if d == 0 && !allowzero {
                            x.shape().get(i).map_or(0, |&v| v as i64)
                        } else {
                            d
                        }
                    })
                    .collect();
                let known: i64 = dims.iter().filter(|&&d| d >= 0).product();
                if let Some(free) = dims.iter().position(|&d| d == -1) {
                    if known == 0 || numel as i64 % known != 0 {
                        return Err(
                            self.err(format!("cannot reshape {:?} to {target:?}", x.shape()))
                        );
                    }
                    dims[free] = numel as i64 / known;
                }
                if dims.iter().any(|&d| d < 0) || dims.iter().product::<i64>() != numel as i64 {
                    return Err(self.err(format!("cannot reshape {:?} to {target:?}", x.shape())));
                }
                reshaped(x, &dims.iter().map(|&d| d as usize).collect::<Vec<_>>())
            }
            "Flatten" => {
                let rank = x.shape().len();
                let axis = self.int("axis")?.unwrap_or(1);
                let axis =
                    if axis < 0 { axis + rank as i64 } else { axis }.clamp(0, rank as i64) as usize;
                let rows: usize = x.shape()[..axis].iter().product();
                let cols: usize = x.shape()[axis..].iter().product();
                reshaped(x, &[rows, cols])
            }
            "Concat" => {
                let parts: Vec<&Const> = inputs.iter().flatten().copied().collect();
                let rank = parts[0].shape().len();
                let axis = self.axis_of(self.int("axis")?.unwrap_or(0), rank)?;
                let err = |e: ndarray::ShapeError| self.err(format!("cannot concatenate: {e}"));
                if parts.iter().all(|c| c.as_int().is_some()) {
                    let views: Vec<_> = parts
                        .iter()
                        .map(|c| c.as_int().expect("ints").view())
                        .collect();
                    Const::Int(ndarray::concatenate(Axis(axis), &views).map_err(err)?)
                } else {
                    let arrays: Vec<ArrayD<f64>> = parts.iter().map(|c| c.to_f64()).collect();
                    let views: Vec<_> = arrays.iter().map(|a| a.view()).collect();
                    Const::Float(ndarray::concatenate(Axis(axis), &views).map_err(err)?)
                }
            }
            "Cast" => {
                let to = self.int("to")?.ok_or_else(|| self.err("'to' is missing"))?;
                // FLOAT, DOUBLE, FLOAT16, BFLOAT16 stay real; every other type is integral.
                match (to, x) {
                    (1 | 10 | 11 | 16, Const::Int(_)) if carries_batch(x) => x.clone(),
                    (1 | 10 | 11 | 16, _) => Const::Float(x.to_f64()),
                    (_, Const::Int(a)) if to == 9 => Const::Int(a.mapv(|v| i64::from(v != 0))),
                    (_, Const::Int(a)) => Const::Int(a.clone()),
                    (9, Const::Float(a)) => Const::Int(a.mapv(|v| i64::from(v != 0.0))),
                    (_, Const::Float(a)) => Const::Int(a.mapv(|v| v.trunc() as i64)),
                }
            }
            // The constants of expanded function bodies (Gelu's, Elu's): cast to the type of input 1.
            "CastLike" => match self.operand(inputs, 1)? {
                Const::Float(_) => Const::Float(x.to_f64()),
                Const::Int(_) => match x {
                    Const::Int(a) => Const::Int(a.clone()),
                    Const::Float(a) => Const::Int(a.mapv(|v| v.trunc() as i64)),
                },
            },
            "ConstantOfShape" => {
                let dims = self.ints_of(x, "the shape")?;
                if dims.iter().any(|&d| d < 0) {
                    return Err(self.err(format!("shape {dims:?} has a negative dimension")));
                }
                let shape: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
                if shape
                    .iter()
                    .try_fold(1usize, |a, &d| a.checked_mul(d))
                    .is_none_or(|n| n > hepack_ir::shape::MAX_ELEMENTS)
                {
                    return Err(self.err(format!("shape {dims:?} is too large")));
                }
                let fill = match self.attr("value").and_then(|a| a.t.as_ref()) {
                    Some(t) => crate::tensor::decode(t, None)?,
                    None => Const::Float(ndarray::arr1(&[0.0]).into_dyn()),
                };
                match fill {
                    Const::Float(v) => Const::Float(ArrayD::from_elem(
                        IxDyn(&shape),
                        v.iter().next().copied().unwrap_or(0.0),
                    )),
                    Const::Int(v) => Const::Int(ArrayD::from_elem(
                        IxDyn(&shape),
                        v.iter().next().copied().unwrap_or(0),
                    )),
                }
            }
            "Where" => {
                let (a, b) = (self.operand(inputs, 1)?, self.operand(inputs, 2)?);
                let cond = x.to_f64();
                let shape = self.broadcast_shape(&[cond.shape(), a.shape(), b.shape()])?;
                let pick = |c: &ArrayD<f64>, p: &ArrayD<f64>, q: &ArrayD<f64>| -> ArrayD<f64> {
                    let (c, p, q) = (
                        c.broadcast(IxDyn(&shape)).expect("checked"),
                        p.broadcast(IxDyn(&shape)).expect("checked"),
                        q.broadcast(IxDyn(&shape)).expect("checked"),
                    );
                    ndarray::Zip::from(&c)
                        .and(&p)
                        .and(&q)
                        .map_collect(|&c, &p, &q| if c != 0.0 { p } else { q })
                };
                let v = pick(&cond, &a.to_f64(), &b.to_f64());
                match (a, b) {
                    (Const::Int(_), Const::Int(_)) => Const::Int(v.mapv(|v| v as i64)),
                    _ => Const::Float(v),
                }
            }
            "Greater" => compare(|a, b| a > b)?,
            "GreaterOrEqual" => compare(|a, b| a >= b)?,
            "Less" => compare(|a, b| a < b)?,
            "LessOrEqual" => compare(|a, b| a <= b)?,
            "Equal" => compare(|a, b| a == b)?,
            "And" => compare(|a, b| a != 0.0 && b != 0.0)?,
            "Or" => compare(|a, b| a != 0.0 || b != 0.0)?,
            "Not" => Const::Int(x.to_f64().mapv(|v| i64::from(v == 0.0))),
            "Transpose" => {
                let rank = x.shape().len();
                let perm: Vec<usize> = match self.ints("perm")? {
                    Some(p) => p
                        .iter()
                        .map(|&a| self.axis_of(a, rank))
                        .collect::<Result<_, _>>()?,
                    None => (0..rank).rev().collect(),
                };
                let mut seen = perm.clone();
                seen.sort_unstable();
                if seen != (0..rank).collect::<Vec<_>>() {
                    return Err(
                        self.err(format!("perm {perm:?} is not a permutation of {rank} axes"))
                    );
                }
                match x {
                    Const::Float(a) => Const::Float(
                        a.clone()
                            .permuted_axes(perm)
                            .as_standard_layout()
                            .into_owned(),
                    ),
                    Const::Int(a) => Const::Int(
                        a.clone()
                            .permuted_axes(perm)
                            .as_standard_layout()
                            .into_owned(),
                    ),
                }
            }
            "Slice" => self.slice(x, inputs)?,
            "Neg" => match x {
                Const::Int(a) => Const::Int(a.mapv(|v| -v)),
                Const::Float(a) => Const::Float(a.mapv(|v| -v)),
            },
            "Abs" => match x {
                Const::Int(a) => Const::Int(a.mapv(i64::abs)),
                Const::Float(a) => Const::Float(a.mapv(f64::abs)),
            },
            "Sqrt" => float(f64::sqrt),
            "Reciprocal" => float(f64::recip),
            "Exp" => float(f64::exp),
            "Log" => float(f64::ln),
            "Floor" => float(f64::floor),
            "Ceil" => float(f64::ceil),
            "Erf" => float(hepack_ir::op::erf),
            "Relu" => float(|v| v.max(0.0)),
            "Sigmoid" => float(|v| hepack_ir::Activation::Sigmoid.apply(v)),
            "Tanh" => float(f64::tanh),
            "Pow" => {
                let (a, b) = self.broadcast2(x, self.operand(inputs, 1)?)?;
                Const::Float(
                    ndarray::Zip::from(&a)
                        .and(&b)
                        .map_collect(|&p, &q| p.powf(q)),
                )
            }
            "Range" => {
                let scalar = |i: usize| -> Result<f64, FrontendError> {
                    self.operand(inputs, i)?
                        .to_f64()
                        .iter()
                        .next()
                        .copied()
                        .ok_or_else(|| self.err(format!("input {i} is empty")))
                };
                let (start, limit, delta) = (scalar(0)?, scalar(1)?, scalar(2)?);
                let n = ((limit - start) / delta).ceil().max(0.0);
                if !n.is_finite() || n > hepack_ir::shape::MAX_ELEMENTS as f64 {
                    return Err(self.err("the range is empty-stepped or too long"));
                }
                let v: Vec<f64> = (0..n as usize).map(|i| start + i as f64 * delta).collect();
                match x {
                    Const::Int(_) => Const::Int(
                        ArrayD::from_shape_vec(
                            IxDyn(&[v.len()]),
                            v.iter().map(|&f| f as i64).collect(),
                        )
                        .expect("1-D"),
                    ),
                    Const::Float(_) => {
                        Const::Float(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v).expect("1-D"))
                    }
                }
            }
            "Expand" => {
                let dims = self.ints_of(self.operand(inputs, 1)?, "the shape")?;
                let want: Vec<usize> = dims.iter().map(|&d| d.max(0) as usize).collect();
                let shape = self.broadcast_shape(&[x.shape(), &want])?;
                match x {
                    Const::Float(a) => {
                        Const::Float(a.broadcast(IxDyn(&shape)).expect("checked").to_owned())
                    }
                    Const::Int(a) => {
                        Const::Int(a.broadcast(IxDyn(&shape)).expect("checked").to_owned())
                    }
                }
            }
            other => unreachable!("{other} is listed in FOLDABLE"),
        })
    }

    fn slice(&self, x: &Const, inputs: &[Option<&Const>]) -> Result<Const, FrontendError> {
        let rank = x.shape().len();
        let (starts, ends, axes, steps) = if self.opset < 10 {
            (
                self.ints("starts")?.unwrap_or_default(),
                self.ints("ends")?.unwrap_or_default(),
                self.ints("axes")?,
                None,
            )
        } else {
            let get = |i: usize, what: &str| -> Result<Option<Vec<i64>>, FrontendError> {
                inputs
                    .get(i)
                    .copied()
                    .flatten()
                    .map(|c| self.ints_of(c, what))
                    .transpose()
            };
            (
                get(1, "starts")?.unwrap_or_default(),
                get(2, "ends")?.unwrap_or_default(),
                get(3, "axes")?,
                get(4, "steps")?,
            )
        };
        let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err(self.err("starts, ends, axes and steps differ in length"));
        }
        let mut slices: Vec<(usize, Slice)> = Vec::with_capacity(axes.len());
        for k in 0..axes.len() {
            let axis = self.axis_of(axes[k], rank)?;
            let len = x.shape()[axis] as i64;
            let step = steps[k];
            if step == 0 {
                return Err(self.err("a slice step is 0"));
            }
            let clamp = |v: i64, lo: i64, hi: i64| (if v < 0 { v + len } else { v }).clamp(lo, hi);
            let (s, e) = if step > 0 {
                (clamp(starts[k], 0, len), clamp(ends[k], 0, len))
            } else {
                (clamp(starts[k], 0, len - 1), clamp(ends[k], -1, len - 1))
            };
            let slice = if step > 0 {
                Slice::new(s as isize, Some(e.max(s) as isize), step as isize)
            } else {
                // ndarray slices backwards from the end of [e+1, s+1).
                Slice::new(
                    (e + 1) as isize,
                    Some((s + 1).max(e + 1) as isize),
                    step as isize,
                )
            };
            slices.push((axis, slice));
        }
        Ok(match x {
            Const::Float(a) => Const::Float(cut(a, &slices)),
            Const::Int(a) => Const::Int(cut(a, &slices)),
        })
    }

    fn broadcast_shape(&self, shapes: &[&[usize]]) -> Result<Vec<usize>, FrontendError> {
        shapes
            .iter()
            .try_fold(Vec::new(), |acc, s| broadcast_dims(&acc, s))
            .ok_or_else(|| self.err(format!("shapes {shapes:?} do not broadcast")))
    }

    pub(super) fn broadcast2(
        &self,
        a: &Const,
        b: &Const,
    ) -> Result<(ArrayD<f64>, ArrayD<f64>), FrontendError> {
        let shape = self.broadcast_shape(&[a.shape(), b.shape()])?;
        let (a, b) = (a.to_f64(), b.to_f64());
        Ok((
            a.broadcast(IxDyn(&shape)).expect("checked").to_owned(),
            b.broadcast(IxDyn(&shape)).expect("checked").to_owned(),
        ))
    }
}

/// `dims` with a 1 inserted at each of `at` (positions in the result).
pub(super) fn unsqueezed(dims: &[usize], mut at: Vec<usize>) -> Vec<usize> {
    let mut out = dims.to_vec();
    at.sort_unstable();
    for a in at {
        out.insert(a, 1);
    }
    out
}

/// `dims` without the axes `drop` (every axis of size 1 when `None`), or the
/// first axis to drop whose size is not 1.
pub(super) fn squeezed(dims: &[usize], drop: Option<&[usize]>) -> Result<Vec<usize>, usize> {
    let gone = |a: usize| drop.map_or(dims[a] == 1, |d| d.contains(&a));
    if let Some(bad) = (0..dims.len()).find(|&a| gone(a) && dims[a] != 1) {
        return Err(bad);
    }
    Ok((0..dims.len())
        .filter(|&a| !gone(a))
        .map(|a| dims[a])
        .collect())
}

/// `a` at `picked` along `axis`, the index tensor's shape in that axis's place.
fn gather<T: Clone>(
    a: &ArrayD<T>,
    axis: usize,
    picked: &[usize],
    idx_shape: &[usize],
) -> ArrayD<T> {
    let g = a.select(Axis(axis), picked);
    let mut shape = a.shape()[..axis].to_vec();
    shape.extend(idx_shape);
    shape.extend(&a.shape()[axis + 1..]);
    // `select` may return a non-standard layout, which reshaping refuses.
    g.as_standard_layout()
        .into_owned()
        .into_shape_with_order(IxDyn(&shape))
        .expect("same element count")
}

fn cut<T: Clone>(a: &ArrayD<T>, slices: &[(usize, Slice)]) -> ArrayD<T> {
    let mut v = a.view();
    for &(axis, s) in slices {
        v.slice_axis_inplace(Axis(axis), s);
    }
    v.to_owned()
}

/// The shape `a` and `b` broadcast to (numpy rules), if they do.
pub(crate) fn broadcast_dims(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| (i + s.len()).checked_sub(rank).map_or(1, |j| s[j]);
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y || y == 1 => Some(x),
            (1, y) => Some(y),
            _ => None,
        })
        .collect()
}

/// Whether a constant holds the batch marker.
pub(crate) fn carries_batch(c: &Const) -> bool {
    c.as_int().is_some_and(|a| a.iter().any(|&v| v == BATCH))
}

fn reshaped(x: &Const, shape: &[usize]) -> Const {
    match x {
        Const::Float(a) => Const::Float(
            a.as_standard_layout()
                .into_owned()
                .into_shape_with_order(IxDyn(shape))
                .expect("same element count"),
        ),
        Const::Int(a) => Const::Int(
            a.as_standard_layout()
                .into_owned()
                .into_shape_with_order(IxDyn(shape))
                .expect("same element count"),
        ),
    }
}
