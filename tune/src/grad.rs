//! Gradients of a loss with respect to a graph's weights.
//!
//! The forward pass is the reference interpreter itself (every node's value
//! tapped), so what is trained is exactly what `hepack compile` compiles and
//! `hepack eval` runs. The backward pass is one vector-Jacobian product per
//! op, written as directly as the interpreter's loops and checked against
//! finite differences of the interpreter.

use hepack_ir::interp::{pool_window, run_with_taps, tap, to_shape};
use hepack_ir::op::{Activation, Conv, Op, Patches, Pool};
use hepack_ir::{Graph, NodeId};
use ndarray::{Array1, Array2, Array4, ArrayD, ArrayViewD, ArrayViewMutD, Axis, Ix2, IxDyn, Zip};

use crate::error::TuneError;
use crate::loss::Loss;

/// One gradient tensor per trainable tensor of each node (see [`params`]),
/// indexed by node.
#[derive(Clone, Debug, Default)]
pub struct Grads {
    /// `nodes[id][k]`: the gradient of the `k`-th tensor [`params`] lists.
    pub nodes: Vec<Vec<ArrayD<f64>>>,
}

impl Grads {
    /// Adds `other` into `self` (gradients of two parts of a batch).
    pub fn add(&mut self, other: &Grads) {
        if self.nodes.is_empty() {
            self.nodes = other.nodes.clone();
            return;
        }
        for (mine, theirs) in self.nodes.iter_mut().zip(&other.nodes) {
            for (a, b) in mine.iter_mut().zip(theirs) {
                *a += b;
            }
        }
    }
}

/// The trainable tensors of `op`, in a fixed order: a convolution's filters
/// and bias, a dense layer's weight and bias, a polynomial's coefficients.
pub fn params(op: &Op) -> Vec<ArrayViewD<'_, f64>> {
    match op {
        Op::Conv(c) => vec![c.weight.view().into_dyn(), c.bias.view().into_dyn()],
        Op::Dense(d) => vec![d.weight.view().into_dyn(), d.bias.view().into_dyn()],
        Op::Polynomial(p) => {
            vec![ArrayViewD::from_shape(IxDyn(&[p.coeffs.len()]), &p.coeffs).expect("a vector")]
        }
        _ => Vec::new(),
    }
}

/// Mutable views of the tensors [`params`] lists.
pub fn params_mut(op: &mut Op) -> Vec<ArrayViewMutD<'_, f64>> {
    match op {
        Op::Conv(c) => vec![c.weight.view_mut().into_dyn(), c.bias.view_mut().into_dyn()],
        Op::Dense(d) => vec![d.weight.view_mut().into_dyn(), d.bias.view_mut().into_dyn()],
        Op::Polynomial(p) => {
            let n = p.coeffs.len();
            vec![ArrayViewMutD::from_shape(IxDyn(&[n]), &mut p.coeffs).expect("a vector")]
        }
        _ => Vec::new(),
    }
}

/// Training compares one output with its labels: refuse a model with several.
pub fn check_one_output(graph: &Graph) -> Result<(), TuneError> {
    match graph.outputs() {
        [_] => Ok(()),
        many => Err(TuneError::Unsupported(format!(
            "a model with {} outputs ({}); training takes one loss on one output",
            many.len(),
            many.iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The node whose values the loss reads: the output, or its operand when
/// the output is a softmax (cross-entropy is taken on the logits).
pub fn logits_node(graph: &Graph) -> NodeId {
    let out = graph.output();
    match graph.node(out).op {
        Op::Softmax(_) => graph.operands(out)[0],
        _ => out,
    }
}

/// The loss on batch `x` and its gradient with respect to every trainable
/// tensor. `scale` divides the loss and the gradients (pass the size of the
/// whole mini-batch when `x` is a part of it).
pub fn loss_and_grads(
    graph: &Graph,
    x: ArrayViewD<'_, f64>,
    loss: &Loss<'_>,
    scale: f64,
) -> Result<(f64, Grads), TuneError> {
    check_one_output(graph)?;
    let order = graph.topo_order();
    let bound = order.iter().map(|n| n.index() + 1).max().unwrap_or(0);
    let (_, values) = run_with_taps(graph, x, &order)?;
    let mut value_of: Vec<Option<&ArrayD<f64>>> = vec![None; bound];
    for (&id, v) in order.iter().zip(&values) {
        value_of[id.index()] = Some(v);
    }
    let logits = logits_node(graph);
    let out = value_of[logits.index()].expect("the logits node is in the graph");
    let (value, dout) = loss.value_and_grad(out, scale)?;

    let mut dvalues: Vec<Option<ArrayD<f64>>> = vec![None; bound];
    dvalues[logits.index()] = Some(dout);
    let mut grads = Grads {
        nodes: vec![Vec::new(); bound],
    };
    for &id in &order {
        grads.nodes[id.index()] = params(&graph.node(id).op)
            .iter()
            .map(|p| ArrayD::zeros(p.raw_dim()))
            .collect();
    }
    for &id in order.iter().rev() {
        let Some(dy) = dvalues[id.index()].take() else {
            continue;
        };
        let node = graph.node(id);
        if matches!(node.op, Op::Input) {
            continue;
        }
        let operands = graph.operands(id);
        // A sum passes its gradient to both operands, a concatenation a block
        // of it to each; what reaches a node from several users adds up.
        let split: Option<Vec<ArrayD<f64>>> = match node.op {
            Op::Add => Some(vec![dy.clone(), dy.clone()]),
            Op::Concat(axis) => {
                let mut offset = 0;
                Some(
                    operands
                        .iter()
                        .map(|&o| {
                            let len = graph.node(o).shape.dims()[axis];
                            let block = dy
                                .slice_axis(Axis(axis + 1), (offset..offset + len).into())
                                .to_owned();
                            offset += len;
                            block
                        })
                        .collect(),
                )
            }
            _ => None,
        };
        if let Some(parts) = split {
            for (&o, d) in operands.iter().zip(parts) {
                match &mut dvalues[o.index()] {
                    Some(acc) => *acc += &d,
                    slot => *slot = Some(d),
                }
            }
            continue;
        }
        let operand = operands[0];
        let x = value_of[operand.index()].expect("operands are evaluated");
        // The input needs no gradient.
        let need_dx = !matches!(graph.node(operand).op, Op::Input);
        let (dx, dparams) = backward(&node.op, x, dy, need_dx)?;
        for (g, d) in grads.nodes[id.index()].iter_mut().zip(dparams) {
            *g += &d;
        }
        let Some(dx) = dx else {
            continue;
        };
        match &mut dvalues[operand.index()] {
            Some(acc) => *acc += &dx,
            slot => *slot = Some(dx),
        }
    }
    Ok((value, grads))
}

/// An op's gradients: with respect to its input (if asked for), and to each
/// of its trainable tensors.
pub type Vjp = (Option<ArrayD<f64>>, Vec<ArrayD<f64>>);

/// The vector-Jacobian product of one op at input `x`: the gradient with
/// respect to `x` (`None` unless `need_dx`: a linear layer on the input skips
/// it, the costliest part of its product), and to each of its trainable
/// tensors.
pub fn backward(
    op: &Op,
    x: &ArrayD<f64>,
    dy: ArrayD<f64>,
    need_dx: bool,
) -> Result<Vjp, TuneError> {
    let (dx, params) = match op {
        Op::Input => (dy, Vec::new()),
        Op::Add | Op::Concat(_) => unreachable!("ops of several operands are split by the caller"),
        Op::Conv(c) => return Ok(conv(c, x, &dy, need_dx)),
        Op::Dense(d) => {
            let k = d.weight.nrows();
            let rows = x.len() / k;
            let x2 = to_shape(x.clone(), &[rows, k]).into_dimensionality::<Ix2>()?;
            let n = d.weight.ncols();
            let dy2 = to_shape(dy, &[rows, n]).into_dimensionality::<Ix2>()?;
            let dw: Array2<f64> = x2.t().dot(&dy2);
            let db: Array1<f64> = dy2.sum_axis(Axis(0));
            let dx = need_dx.then(|| to_shape(dy2.dot(&d.weight.t()).into_dyn(), x.shape()));
            return Ok((dx, vec![dw.into_dyn(), db.into_dyn()]));
        }
        Op::AddConst(_) | Op::Dropout { .. } | Op::Identity => (dy, Vec::new()),
        Op::MulConst(c) => (dy * c, Vec::new()),
        Op::Activation(a) => {
            let mut dx = dy;
            Zip::from(&mut dx)
                .and(x)
                .for_each(|g, &v| *g *= derivative(*a, v));
            (dx, Vec::new())
        }
        Op::MaxPool(p) => (max_pool(p, x, &dy), Vec::new()),
        Op::AvgPool(a) => {
            let include_pad = a.count_include_pad;
            let dx = pool(&a.pool, x, &dy, |window| {
                let inside = window.iter().flatten().count();
                let count = if include_pad { window.len() } else { inside };
                1.0 / count.max(1) as f64
            });
            (dx, Vec::new())
        }
        Op::SumPool(p) => (pool(p, x, &dy, |_| 1.0), Vec::new()),
        Op::GlobalAvgPool => {
            let (b, c) = (x.shape()[0], x.shape()[1]);
            let per = x.len() / (b * c);
            let dy = to_shape(dy, &[b, c, 1]);
            let dx = dy
                .broadcast(IxDyn(&[b, c, per]))
                .expect("broadcast")
                .to_owned()
                / per as f64;
            (to_shape(dx, x.shape()), Vec::new())
        }
        Op::BatchNorm(bn) => {
            let (a, _) = bn.affine();
            let mut dx = dy;
            for (ch, mut plane) in dx.axis_iter_mut(Axis(1)).enumerate() {
                plane *= a[ch];
            }
            (dx, Vec::new())
        }
        Op::Flatten | Op::Reshape(_) => (to_shape(dy, x.shape()), Vec::new()),
        Op::Transpose(perm) => {
            let mut full = vec![0];
            full.extend(perm.iter().map(|p| p + 1));
            let mut inverse = vec![0; full.len()];
            for (i, &p) in full.iter().enumerate() {
                inverse[p] = i;
            }
            let dx = dy
                .permuted_axes(IxDyn(&inverse))
                .as_standard_layout()
                .into_owned();
            (dx, Vec::new())
        }
        Op::Softmax(_) => return Err(TuneError::Unsupported(
            "a softmax before the output; train on logits (cross-entropy takes the softmax itself)"
                .into(),
        )),
        Op::Polynomial(p) => {
            let c = &p.coeffs;
            let mut dx = dy;
            let mut dc = vec![0.0; c.len()];
            Zip::from(&mut dx).and(x).for_each(|g, &v| {
                // d/dcᵢ = vⁱ; d/dv = Σ (i+1)·cᵢ₊₁·vⁱ.
                let mut power = 1.0;
                let mut slope = 0.0;
                for i in 0..c.len() {
                    dc[i] += *g * power;
                    if i + 1 < c.len() {
                        slope += (i + 1) as f64 * c[i + 1] * power;
                    }
                    power *= v;
                }
                *g *= slope;
            });
            (dx, vec![Array1::from(dc).into_dyn()])
        }
        Op::Patches(p) => (patches(p, x, &dy), Vec::new()),
    };
    Ok((need_dx.then_some(dx), params))
}

/// `f'(x)` of an activation.
fn derivative(a: Activation, x: f64) -> f64 {
    match a {
        Activation::Relu => f64::from(u8::from(x > 0.0)),
        Activation::LeakyRelu { alpha } => {
            if x >= 0.0 {
                1.0
            } else {
                alpha
            }
        }
        Activation::Sigmoid => {
            let s = Activation::Sigmoid.apply(x);
            s * (1.0 - s)
        }
        Activation::Tanh => 1.0 - x.tanh().powi(2),
        Activation::Softplus => Activation::Sigmoid.apply(x),
        Activation::Square => 2.0 * x,
        Activation::Erf => std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp(),
        Activation::Gelu => {
            let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            0.5 * (1.0 + hepack_ir::op::erf(x * std::f64::consts::FRAC_1_SQRT_2)) + x * pdf
        }
        Activation::GeluTanh => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            let t = (k * (x + 0.044715 * x.powi(3))).tanh();
            0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x)
        }
        Activation::Silu => {
            let s = Activation::Sigmoid.apply(x);
            s * (1.0 + x * (1.0 - s))
        }
        Activation::Mish => {
            let t = Activation::Softplus.apply(x).tanh();
            t + x * (1.0 - t * t) * Activation::Sigmoid.apply(x)
        }
        Activation::HardSigmoid { alpha, beta } => {
            let v = alpha * x + beta;
            if v > 0.0 && v < 1.0 {
                alpha
            } else {
                0.0
            }
        }
        Activation::HardSwish => {
            if x <= -3.0 {
                0.0
            } else if x >= 3.0 {
                1.0
            } else {
                x / 3.0 + 0.5
            }
        }
        Activation::Clip { min, max } => f64::from(u8::from(x > min && x < max)),
        Activation::Elu { alpha } => {
            if x > 0.0 {
                1.0
            } else {
                alpha * x.exp()
            }
        }
    }
}

fn conv(c: &Conv, x: &ArrayD<f64>, dy: &ArrayD<f64>, need_dx: bool) -> Vjp {
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let dy = dy.as_standard_layout();
    let ds = dy.as_slice().expect("standard layout");
    let (b, ch, h, w) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let (f, _, kh, kw) = c.weight.dim();
    let (oh, ow) = (dy.shape()[2], dy.shape()[3]);
    let mut dx = ArrayD::<f64>::zeros(x.raw_dim());
    let dxs = dx.as_slice_mut().expect("fresh array");
    let mut dw = Array4::<f64>::zeros(c.weight.raw_dim());
    let mut db = Array1::<f64>::zeros(f);
    for bi in 0..b {
        for fi in 0..f {
            let plane = &ds[(bi * f + fi) * oh * ow..][..oh * ow];
            db[fi] += plane.iter().sum::<f64>();
            for ci in 0..ch {
                let at = (bi * ch + ci) * h * w;
                for ky in 0..kh {
                    for kx in 0..kw {
                        let wv = c.weight[[fi, ci, ky, kx]];
                        let mut acc = 0.0;
                        for oy in 0..oh {
                            let Some(iy) = tap(oy, ky, c.strides[0], c.dilations[0], c.pads[0], h)
                            else {
                                continue;
                            };
                            for ox in 0..ow {
                                if let Some(ix) =
                                    tap(ox, kx, c.strides[1], c.dilations[1], c.pads[1], w)
                                {
                                    let g = plane[oy * ow + ox];
                                    acc += g * xs[at + iy * w + ix];
                                    if need_dx {
                                        dxs[at + iy * w + ix] += g * wv;
                                    }
                                }
                            }
                        }
                        dw[[fi, ci, ky, kx]] += acc;
                    }
                }
            }
        }
    }
    (need_dx.then_some(dx), vec![dw.into_dyn(), db.into_dyn()])
}

/// Spreads each output cell's gradient over its window's taps inside the
/// input, each weighted by `weight(window)`.
fn pool(
    p: &Pool,
    x: &ArrayD<f64>,
    dy: &ArrayD<f64>,
    weight: impl Fn(&[Option<usize>]) -> f64,
) -> ArrayD<f64> {
    let (h, w) = (x.shape()[2], x.shape()[3]);
    let (oh, ow) = (dy.shape()[2], dy.shape()[3]);
    let planes = dy.shape()[0] * dy.shape()[1];
    let dy = dy.as_standard_layout();
    let ds = dy.as_slice().expect("standard layout");
    let mut dx = ArrayD::<f64>::zeros(x.raw_dim());
    let dxs = dx.as_slice_mut().expect("fresh array");
    let mut window = Vec::new();
    for plane in 0..planes {
        for oy in 0..oh {
            for ox in 0..ow {
                window.clear();
                window.extend(pool_window(p, h, w, oy, ox));
                let g = ds[plane * oh * ow + oy * ow + ox] * weight(&window);
                for &i in window.iter().flatten() {
                    dxs[plane * h * w + i] += g;
                }
            }
        }
    }
    dx
}

/// A max pool's gradient goes to the largest tap of each window (the first
/// of equals, as the interpreter's fold keeps it).
fn max_pool(p: &Pool, x: &ArrayD<f64>, dy: &ArrayD<f64>) -> ArrayD<f64> {
    let (h, w) = (x.shape()[2], x.shape()[3]);
    let (oh, ow) = (dy.shape()[2], dy.shape()[3]);
    let planes = dy.shape()[0] * dy.shape()[1];
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let dy = dy.as_standard_layout();
    let ds = dy.as_slice().expect("standard layout");
    let mut dx = ArrayD::<f64>::zeros(x.raw_dim());
    let dxs = dx.as_slice_mut().expect("fresh array");
    for plane in 0..planes {
        let xin = &xs[plane * h * w..][..h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let best =
                    pool_window(p, h, w, oy, ox)
                        .flatten()
                        .fold(None, |best: Option<usize>, i| match best {
                            Some(b) if xin[b] >= xin[i] => Some(b),
                            _ => Some(i),
                        });
                if let Some(i) = best {
                    dxs[plane * h * w + i] += ds[plane * oh * ow + oy * ow + ox];
                }
            }
        }
    }
    dx
}

fn patches(p: &Patches, x: &ArrayD<f64>, dy: &ArrayD<f64>) -> ArrayD<f64> {
    let (h, w) = (x.shape()[2], x.shape()[3]);
    let [kh, kw] = p.kernel;
    let mut dx = ArrayD::<f64>::zeros(x.raw_dim());
    for (i, &g) in dy.indexed_iter() {
        let (bi, oy, ox, m) = (i[0], i[1], i[2], i[3]);
        let (ci, ky, kx) = (m / (kh * kw), (m / kw) % kh, m % kw);
        if let (Some(iy), Some(ix)) = (
            tap(oy, ky, p.strides[0], p.dilations[0], p.pads[0], h),
            tap(ox, kx, p.strides[1], p.dilations[1], p.pads[1], w),
        ) {
            dx[[bi, ci, iy, ix]] += g;
        }
    }
    dx
}
