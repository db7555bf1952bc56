//! Batch packing (CryptoNets, MOFHEI): slot `s` of every ciphertext belongs to
//! sample `s`, and each feature of a sample is its own ciphertext. A linear
//! layer is scalar multiply-adds, pools are additions, polynomials are
//! products; nothing rotates. Each IR node's output is an array of abstract
//! values, one per feature.
//!
//! Besides building programs, batch packing can be costed without building
//! one ([`Lowering::count`]): a backward pass over the graph finds which
//! features some output needs (liveness, the same thing dead-ciphertext
//! elimination finds on a built program), then the lowering runs once more
//! counting only the ops of live features.

use std::collections::HashMap;

use hepack_ir::{Graph, NodeId, Op, Pool};
use hepack_passes::prune::BatchPacking;
use ndarray::{ArrayD, IxDyn};

use crate::builder::{reads_input, Abs, Builder, Mode, Scales};
use crate::cost::{Cost, OpCounts, OpTimes};
use crate::error::BackendError;
use crate::program::{LayerIdx, OutputElement};
use crate::{Lowered, Lowering};

mod schedule;
use schedule::square_plans;

impl Lowering for BatchPacking {
    fn lower_with(&self, graph: &Graph, builder: &mut Builder) -> Result<Lowered, BackendError> {
        Ok(Lowered {
            outputs: lower(graph, builder, None)?,
            slots: None,
        })
    }

    fn count(&self, graph: &Graph, times: &OpTimes) -> Result<Cost, BackendError> {
        let layers = layer_names(graph);
        check_he_friendly(graph)?;
        let live = liveness(graph);
        // Op counts do not depend on the primes; stand-ins do.
        let scales = Scales::provisional(crate::params::scale_bits_for(
            crate::params::DEFAULT_PRECISION,
        ));
        let mut b = Builder::new(layers.len(), Mode::Count, scales.clone());
        b.times = times.clone();
        lower(graph, &mut b, Some(&live))?;
        let mut naive = Builder::new(layers.len(), Mode::Naive, scales);
        naive.times = times.clone();
        lower(graph, &mut naive, None)?;
        let naive: Vec<OpCounts> = naive.counts.into_iter().map(OpCounts).collect();
        let counts: Vec<OpCounts> = b.counts.into_iter().map(OpCounts).collect();
        Ok(Cost::from_counts(
            &layers,
            &counts,
            &crate::cost::removed_ops(&counts, &naive),
            b.plains.len(),
            None,
            b.output_depth,
            times,
        )
        .with_fused(b.fused, times))
    }
}

/// Layer names in topological order (what [`LayerIdx`] indexes).
pub(crate) fn layer_names(graph: &Graph) -> Vec<hepack_ir::LayerName> {
    graph
        .topo_order()
        .into_iter()
        .map(|id| graph.node(id).name.clone())
        .collect()
}

/// The op's name if CKKS cannot evaluate it.
fn unsupported(op: &Op) -> Option<&'static str> {
    match op {
        Op::Activation(hepack_ir::Activation::Square) => None,
        Op::Activation(_) | Op::MaxPool(_) | Op::Softmax(_) => Some(op.name()),
        _ => None,
    }
}

fn check_he_friendly(graph: &Graph) -> Result<(), BackendError> {
    for id in graph.topo_order() {
        let node = graph.node(id);
        if let Some(op) = unsupported(&node.op) {
            return Err(BackendError::NotHeFriendly {
                layer: node.name.to_string(),
                op,
            });
        }
    }
    Ok(())
}

/// A window's taps: `((ky, kx), Some((iy, ix)))` for an input position,
/// `None` for a tap in the zero padding. Taps past the far padding (ceil mode)
/// are outside the window and not listed.
fn taps(
    kernel: [usize; 2],
    strides: [usize; 2],
    pads: [usize; 4],
    dilations: [usize; 2],
    (h, w): (usize, usize),
    (oy, ox): (usize, usize),
) -> impl Iterator<Item = ((usize, usize), Option<(usize, usize)>)> {
    (0..kernel[0])
        .flat_map(move |ky| (0..kernel[1]).map(move |kx| (ky, kx)))
        .filter_map(move |(ky, kx)| {
            let iy = (oy * strides[0] + ky * dilations[0]) as isize - pads[0] as isize;
            let ix = (ox * strides[1] + kx * dilations[1]) as isize - pads[1] as isize;
            if iy >= (h + pads[2]) as isize || ix >= (w + pads[3]) as isize {
                None
            } else if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                Some(((ky, kx), None))
            } else {
                Some(((ky, kx), Some((iy as usize, ix as usize))))
            }
        })
}

/// The input positions of a window (padding taps left out), with the
/// window's full size.
fn inside_taps(
    kernel: [usize; 2],
    strides: [usize; 2],
    pads: [usize; 4],
    dilations: [usize; 2],
    hw: (usize, usize),
    o: (usize, usize),
) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    taps(kernel, strides, pads, dilations, hw, o)
        .filter_map(|((ky, kx), t)| t.map(|(iy, ix)| (ky, kx, iy, ix)))
}

fn lower(
    graph: &Graph,
    b: &mut Builder,
    live: Option<&Liveness>,
) -> Result<Vec<Vec<OutputElement>>, BackendError> {
    let order = graph.topo_order();
    // Free each node's values after its last use (`x + x` reads x twice).
    let mut users_left: HashMap<NodeId, usize> = order.iter().map(|&id| (id, 0)).collect();
    for &id in &order {
        for operand in graph.operands(id) {
            *users_left.get_mut(&operand).expect("operands are nodes") += 1;
        }
    }
    let plans = square_plans(graph, &b.times);
    let mut values: HashMap<NodeId, ArrayD<Abs>> = HashMap::new();
    for (layer, &id) in order.iter().enumerate() {
        b.layer = LayerIdx(layer as u32);
        let plan = plans.get(&id).copied().unwrap_or_default();
        b.lazy_relinearize = plan.lazy_relinearize;
        b.defer_rescale = plan.defer_rescale;
        let node = graph.node(id);
        let out_dims = node.shape.dims().to_vec();
        let node_live = live.map(|l| l[&id].as_slice());
        let result = if let Op::Input = node.op {
            let mut feature = 0u32;
            ArrayD::from_shape_simple_fn(IxDyn(&out_dims), || {
                feature += 1;
                b.muted = node_live.is_some_and(|l| !l[feature as usize - 1]);
                b.input(feature - 1)
            })
        } else {
            if let Some(op) = unsupported(&node.op) {
                return Err(BackendError::NotHeFriendly {
                    layer: node.name.to_string(),
                    op,
                });
            }
            let operands = graph.operands(id);
            match node.op {
                // Feature by feature: a ciphertext addition, or nothing at all.
                Op::Add => {
                    let (x, y) = (&values[&operands[0]], &values[&operands[1]]);
                    let mut i = 0;
                    ndarray::Zip::from(x).and(y).map_collect(|&p, &q| {
                        b.muted = node_live.is_some_and(|l| !l[i]);
                        i += 1;
                        b.sum([p, q])
                    })
                }
                Op::Concat(axis) => {
                    let views: Vec<_> = operands.iter().map(|o| values[o].view()).collect();
                    ndarray::concatenate(ndarray::Axis(axis), &views)
                        .expect("shapes checked when added")
                        .as_standard_layout()
                        .into_owned()
                }
                _ => lower_op(b, &node.op, &values[&operands[0]], &out_dims, node_live),
            }
        };
        b.muted = false;
        b.lazy_relinearize = false;
        b.defer_rescale = false;
        b.check_depth(&node.name)?;
        for operand in graph.operands(id) {
            let left = users_left.get_mut(&operand).expect("every node counted");
            *left -= 1;
            if *left == 0 && !graph.is_output(operand) {
                values.remove(&operand);
            }
        }
        values.insert(id, result);
    }
    // Output ops index the outputs' elements one after another.
    let mut index = 0u32;
    let mut outputs = Vec::with_capacity(graph.outputs().len());
    for out in graph.outputs() {
        let elements = values[&out.node]
            .iter()
            .map(|v| {
                let element = match *v {
                    Abs::Encrypted(value) => {
                        b.output(value, index);
                        OutputElement::Encrypted
                    }
                    Abs::Public(c) => OutputElement::Public(c),
                    Abs::Zero => OutputElement::Public(0.0),
                };
                index += 1;
                element
            })
            .collect();
        outputs.push(elements);
    }
    Ok(outputs)
}

/// Output values of one (HE-friendly) op. With `live`, the ops of features
/// no output needs are muted.
fn lower_op(
    b: &mut Builder,
    op: &Op,
    x: &ArrayD<Abs>,
    out_dims: &[usize],
    live: Option<&[bool]>,
) -> ArrayD<Abs> {
    let out = IxDyn(out_dims);
    let xs = x.as_standard_layout();
    let xs = xs.as_slice().expect("standard layout");
    // Values built one output feature at a time, in flat order.
    let mut each = |b: &mut Builder, f: &mut dyn FnMut(&mut Builder, usize) -> Abs| {
        let n: usize = out_dims.iter().product();
        let values: Vec<Abs> = (0..n)
            .map(|i| {
                b.muted = live.is_some_and(|l| !l[i]);
                f(b, i)
            })
            .collect();
        ArrayD::from_shape_vec(out.clone(), values).expect("one value per feature")
    };
    match op {
        Op::Input => unreachable!("handled by the caller"),
        Op::Conv(c) => {
            let (h, w) = (x.shape()[1], x.shape()[2]);
            let (_, ch, kh, kw) = c.weight.dim();
            let ws = c.weight.as_standard_layout();
            let ws = ws.as_slice().expect("standard layout");
            let (oh, ow) = (out_dims[1], out_dims[2]);
            each(b, &mut |b, i| {
                let (fi, oy, ox) = (i / (oh * ow), i / ow % oh, i % ow);
                let terms = inside_taps([kh, kw], c.strides, c.pads, c.dilations, (h, w), (oy, ox))
                    .flat_map(|(ky, kx, iy, ix)| {
                        (0..ch).map(move |ci| {
                            (
                                xs[(ci * h + iy) * w + ix],
                                ws[((fi * ch + ci) * kh + ky) * kw + kx],
                            )
                        })
                    });
                b.lincomb(terms, c.bias[fi])
            })
        }
        Op::Dense(d) => {
            let (k, n) = d.weight.dim();
            let ws = d.weight.as_standard_layout();
            let ws = ws.as_slice().expect("standard layout");
            each(b, &mut |b, i| {
                let (r, j) = (i / n, i % n);
                let terms = (0..k).map(|q| (xs[r * k + q], ws[q * n + j]));
                b.lincomb(terms, d.bias[j])
            })
        }
        Op::AddConst(c) => {
            let c = broadcast(c, x.shape());
            each(b, &mut |b, i| b.shift(xs[i], c[i]))
        }
        Op::MulConst(c) => {
            let c = broadcast(c, x.shape());
            each(b, &mut |b, i| b.scale(xs[i], c[i]))
        }
        Op::Activation(_) => each(b, &mut |b, i| b.polynomial(xs[i], &[0.0, 0.0, 1.0])),
        Op::Polynomial(p) => each(b, &mut |b, i| b.polynomial(xs[i], &p.coeffs)),
        Op::AvgPool(p) => pool(
            b,
            &p.pool,
            x,
            out_dims,
            Some(p.count_include_pad),
            &mut each,
        ),
        Op::SumPool(p) => pool(b, p, x, out_dims, None, &mut each),
        Op::GlobalAvgPool => {
            let plane = x.shape()[1] * x.shape()[2];
            each(b, &mut |b, c| {
                let s = b.sum(xs[c * plane..(c + 1) * plane].iter().copied());
                b.scale(s, 1.0 / plane as f64)
            })
        }
        Op::BatchNorm(bn) => {
            let (a, shift) = bn.affine();
            let per_channel = x.len() / x.shape()[0];
            each(b, &mut |b, i| {
                let ci = i / per_channel;
                b.lincomb([(xs[i], a[ci])], shift[ci])
            })
        }
        Op::Flatten | Op::Reshape(_) | Op::Dropout { .. } | Op::Identity => {
            ArrayD::from_shape_vec(out, xs.to_vec()).expect("same element count")
        }
        Op::Transpose(perm) => x
            .clone()
            .permuted_axes(IxDyn(perm))
            .as_standard_layout()
            .into_owned(),
        Op::Patches(p) => {
            let (ch, h, w) = (x.shape()[0], x.shape()[1], x.shape()[2]);
            let (kh, kw) = (p.kernel[0], p.kernel[1]);
            let mut y = ArrayD::from_elem(out, Abs::Zero);
            for u in 0..out_dims[0] {
                for v in 0..out_dims[1] {
                    for (ky, kx, iy, ix) in
                        inside_taps(p.kernel, p.strides, p.pads, p.dilations, (h, w), (u, v))
                    {
                        for ci in 0..ch {
                            y[[u, v, ci * kh * kw + ky * kw + kx]] = xs[(ci * h + iy) * w + ix];
                        }
                    }
                }
            }
            y
        }
        Op::MaxPool(_) | Op::Softmax(_) => unreachable!("refused by the caller"),
        Op::Add | Op::Concat(_) => {
            unreachable!("ops of several operands are lowered by the caller")
        }
    }
}

/// A constant broadcast to `x`'s shape, flat.
fn broadcast(c: &ArrayD<f64>, dims: &[usize]) -> Vec<f64> {
    c.broadcast(IxDyn(dims))
        .expect("shape inference checked it")
        .iter()
        .copied()
        .collect()
}

type Each<'a> =
    dyn FnMut(&mut Builder, &mut dyn FnMut(&mut Builder, usize) -> Abs) -> ArrayD<Abs> + 'a;

/// Sum (and for an average pool, scale) each window. `average`: `None` for a
/// sum pool, else whether padded taps count in the divisor.
fn pool(
    b: &mut Builder,
    p: &Pool,
    x: &ArrayD<Abs>,
    out_dims: &[usize],
    average: Option<bool>,
    each: &mut Each<'_>,
) -> ArrayD<Abs> {
    let (h, w) = (x.shape()[1], x.shape()[2]);
    let (oh, ow) = (out_dims[1], out_dims[2]);
    let xs = x.as_standard_layout();
    let xs = xs.as_slice().expect("standard layout");
    each(b, &mut |b, i| {
        let (ci, oy, ox) = (i / (oh * ow), i / ow % oh, i % ow);
        let mut window = 0;
        let mut inside = 0;
        let terms = taps(p.kernel, p.strides, p.pads, p.dilations, (h, w), (oy, ox)).filter_map(
            |(_, t)| {
                window += 1;
                let (iy, ix) = t?;
                inside += 1;
                Some(xs[(ci * h + iy) * w + ix])
            },
        );
        let s = b.sum(terms);
        match average {
            None => s,
            Some(include_pad) => {
                let count = if include_pad { window } else { inside };
                b.scale(s, 1.0 / count.max(1) as f64)
            }
        }
    })
}

/// Per node, which output features some model output needs.
type Liveness = HashMap<NodeId, Vec<bool>>;

/// Walk the graph backwards from the outputs: a feature is live when a live
/// feature of a user reads it with a non-zero weight. Features that are
/// public constants may be marked too; they emit nothing either way.
fn liveness(graph: &Graph) -> Liveness {
    let order = graph.topo_order();
    let mut live: Liveness = order
        .iter()
        .map(|&id| (id, vec![false; graph.node(id).shape.numel()]))
        .collect();
    for out in graph.outputs() {
        live.get_mut(&out.node)
            .expect("the outputs are nodes")
            .fill(true);
    }
    for &id in order.iter().rev() {
        let node = graph.node(id);
        let operands = graph.operands(id);
        let Some(&operand) = operands.first() else {
            continue;
        };
        let out_live = std::mem::take(live.get_mut(&id).expect("every node"));
        match node.op {
            // Each operand's feature is read by the sum's feature of the same index.
            Op::Add => {
                for o in &operands {
                    let in_live = live.get_mut(o).expect("every node");
                    for (l, &out) in in_live.iter_mut().zip(&out_live) {
                        *l |= out;
                    }
                }
            }
            // Each operand is a contiguous block of the output along `axis`.
            Op::Concat(axis) => {
                let dims = node.shape.dims();
                let (outer, inner): (usize, usize) = (
                    dims[..axis].iter().product(),
                    dims[axis + 1..].iter().product(),
                );
                let mut offset = 0;
                for o in &operands {
                    let len = graph.node(*o).shape.dims()[axis];
                    let in_live = live.get_mut(o).expect("every node");
                    for a in 0..outer {
                        for k in 0..len * inner {
                            if out_live[(a * dims[axis] + offset) * inner + k] {
                                in_live[a * len * inner + k] = true;
                            }
                        }
                    }
                    offset += len;
                }
            }
            _ => {
                let in_dims = graph.node(operand).shape.dims().to_vec();
                let in_live = live.get_mut(&operand).expect("every node");
                mark_reads(&node.op, &in_dims, node.shape.dims(), &out_live, in_live);
            }
        }
        live.insert(id, out_live);
    }
    live
}

/// Mark the inputs that the live outputs of `op` read with a non-zero weight
/// (mirrors [`lower_op`]).
fn mark_reads(op: &Op, in_dims: &[usize], out_dims: &[usize], out: &[bool], inp: &mut [bool]) {
    let same = |inp: &mut [bool], keep: &dyn Fn(usize) -> bool| {
        for (i, &l) in out.iter().enumerate() {
            if l && keep(i) {
                inp[i] = true;
            }
        }
    };
    match op {
        Op::Input => {}
        Op::Conv(c) => {
            let (h, w) = (in_dims[1], in_dims[2]);
            let (_, ch, kh, kw) = c.weight.dim();
            let (oh, ow) = (out_dims[1], out_dims[2]);
            for (i, _) in out.iter().enumerate().filter(|(_, &l)| l) {
                let (fi, oy, ox) = (i / (oh * ow), i / ow % oh, i % ow);
                for (ky, kx, iy, ix) in
                    inside_taps([kh, kw], c.strides, c.pads, c.dilations, (h, w), (oy, ox))
                {
                    for ci in 0..ch {
                        if c.weight[[fi, ci, ky, kx]] != 0.0 {
                            inp[(ci * h + iy) * w + ix] = true;
                        }
                    }
                }
            }
        }
        Op::Dense(d) => {
            let (k, n) = d.weight.dim();
            for (i, _) in out.iter().enumerate().filter(|(_, &l)| l) {
                let (r, j) = (i / n, i % n);
                for q in 0..k {
                    if d.weight[[q, j]] != 0.0 {
                        inp[r * k + q] = true;
                    }
                }
            }
        }
        Op::MulConst(c) => {
            let c = broadcast(c, in_dims);
            same(inp, &|i| c[i] != 0.0);
        }
        Op::Polynomial(p) => same(inp, &|_| reads_input(&p.coeffs)),
        Op::BatchNorm(bn) => {
            let (a, _) = bn.affine();
            let per_channel = out.len() / in_dims[0];
            same(inp, &|i| a[i / per_channel] != 0.0);
        }
        Op::AddConst(_)
        | Op::Activation(_)
        | Op::Flatten
        | Op::Reshape(_)
        | Op::Dropout { .. }
        | Op::Identity => same(inp, &|_| true),
        Op::AvgPool(hepack_ir::AvgPool { pool: p, .. }) | Op::SumPool(p) => {
            let (h, w) = (in_dims[1], in_dims[2]);
            let (oh, ow) = (out_dims[1], out_dims[2]);
            for (i, _) in out.iter().enumerate().filter(|(_, &l)| l) {
                let (ci, oy, ox) = (i / (oh * ow), i / ow % oh, i % ow);
                for (_, _, iy, ix) in
                    inside_taps(p.kernel, p.strides, p.pads, p.dilations, (h, w), (oy, ox))
                {
                    inp[(ci * h + iy) * w + ix] = true;
                }
            }
        }
        Op::GlobalAvgPool => {
            let plane = in_dims[1] * in_dims[2];
            for (c, _) in out.iter().enumerate().filter(|(_, &l)| l) {
                inp[c * plane..(c + 1) * plane].fill(true);
            }
        }
        Op::Transpose(perm) => {
            // Output feature i is the input feature at source[i].
            let n = inp.len();
            let source = ArrayD::from_shape_vec(IxDyn(in_dims), (0..n).collect())
                .expect("input shape")
                .permuted_axes(IxDyn(perm));
            for (&src, &l) in source.iter().zip(out) {
                if l {
                    inp[src] = true;
                }
            }
        }
        Op::Patches(p) => {
            let (ch, h, w) = (in_dims[0], in_dims[1], in_dims[2]);
            let (kh, kw) = (p.kernel[0], p.kernel[1]);
            let k = out_dims[2];
            for u in 0..out_dims[0] {
                for v in 0..out_dims[1] {
                    for (ky, kx, iy, ix) in
                        inside_taps(p.kernel, p.strides, p.pads, p.dilations, (h, w), (u, v))
                    {
                        for ci in 0..ch {
                            if out[(u * out_dims[1] + v) * k + ci * kh * kw + ky * kw + kx] {
                                inp[(ci * h + iy) * w + ix] = true;
                            }
                        }
                    }
                }
            }
        }
        Op::MaxPool(_) | Op::Softmax(_) => {}
        Op::Add | Op::Concat(_) => unreachable!("handled by liveness"),
    }
}
