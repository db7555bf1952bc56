//! Batch packing (CryptoNets, MOFHEI): slot `s` of every ciphertext belongs to
//! sample `s`, and each feature of a sample is its own ciphertext. A linear
//! layer is scalar multiply-adds, pools are additions, polynomials are
//! products; nothing rotates. Each IR node's output is an array of abstract
//! values, one per feature.

use std::collections::HashMap;

use hepack_ir::{Graph, NodeId, Op, Pool};
use hepack_passes::prune::BatchPacking;
use ndarray::{ArrayD, Axis, IxDyn};

use crate::builder::{Abs, Builder};
use crate::error::BackendError;
use crate::program::{HeOp, LayerIdx, OutputElement};
use crate::Lowering;

impl Lowering for BatchPacking {
    fn lower_with(
        &self,
        graph: &Graph,
        builder: &mut Builder,
    ) -> Result<Vec<OutputElement>, BackendError> {
        lower(graph, builder)
    }
}

/// The window taps of output position `(oy, ox)`: input coordinates, or `None`
/// for a tap in the zero padding. Taps past the far padding (ceil mode) are
/// outside the window and not listed.
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

fn pool_taps(
    p: &Pool,
    hw: (usize, usize),
    o: (usize, usize),
) -> impl Iterator<Item = Option<(usize, usize)>> {
    taps(p.kernel, p.strides, p.pads, p.dilations, hw, o).map(|(_, t)| t)
}

fn lower(graph: &Graph, b: &mut Builder) -> Result<Vec<OutputElement>, BackendError> {
    let order = graph.topo_order();
    // Free each node's values after its last user.
    let mut users_left: HashMap<NodeId, usize> = order
        .iter()
        .map(|&id| (id, graph.users(id).len()))
        .collect();
    let mut values: HashMap<NodeId, ArrayD<Abs>> = HashMap::new();
    for (layer, &id) in order.iter().enumerate() {
        b.layer = LayerIdx(layer as u32);
        let node = graph.node(id);
        let out_dims = node.shape.dims().to_vec();
        let result = if let Op::Input = node.op {
            let mut feature = 0u32;
            ArrayD::from_shape_simple_fn(IxDyn(&out_dims), || {
                feature += 1;
                b.input(feature - 1)
            })
        } else {
            let x = &values[&graph.operands(id)[0]];
            lower_op(b, &node.op, x, &out_dims).map_err(|op| BackendError::NotHeFriendly {
                layer: node.name.to_string(),
                op,
            })?
        };
        for operand in graph.operands(id) {
            let left = users_left.get_mut(&operand).expect("every node counted");
            *left -= 1;
            if *left == 0 && operand != graph.output() {
                values.remove(&operand);
            }
        }
        values.insert(id, result);
    }
    let out = values
        .remove(&graph.output())
        .expect("the output was computed");
    let mut outputs = Vec::with_capacity(out.len());
    for (index, v) in out.iter().enumerate() {
        outputs.push(match *v {
            Abs::Encrypted(value) => {
                b.emit(HeOp::Output {
                    value,
                    index: index as u32,
                });
                OutputElement::Encrypted
            }
            Abs::Public(c) => OutputElement::Public(c),
            Abs::Zero => OutputElement::Public(0.0),
        });
    }
    Ok(outputs)
}

/// One op's output values; `Err(op name)` for ops CKKS cannot evaluate.
fn lower_op(
    b: &mut Builder,
    op: &Op,
    x: &ArrayD<Abs>,
    out_dims: &[usize],
) -> Result<ArrayD<Abs>, &'static str> {
    let out = IxDyn(out_dims);
    Ok(match op {
        Op::Input => unreachable!("handled by the caller"),
        Op::Conv(c) => {
            let (h, w) = (x.shape()[1], x.shape()[2]);
            let (f, ch, kh, kw) = c.weight.dim();
            let mut y = Vec::with_capacity(out_dims.iter().product());
            for fi in 0..f {
                for oy in 0..out_dims[1] {
                    for ox in 0..out_dims[2] {
                        let terms: Vec<(Abs, f64)> =
                            taps([kh, kw], c.strides, c.pads, c.dilations, (h, w), (oy, ox))
                                .filter_map(|((ky, kx), t)| t.map(|(iy, ix)| (ky, kx, iy, ix)))
                                .flat_map(|(ky, kx, iy, ix)| {
                                    (0..ch).map(move |ci| (ci, ky, kx, iy, ix))
                                })
                                .map(|(ci, ky, kx, iy, ix)| {
                                    (x[[ci, iy, ix]], c.weight[[fi, ci, ky, kx]])
                                })
                                .collect();
                        y.push(b.lincomb(terms, c.bias[fi]));
                    }
                }
            }
            ArrayD::from_shape_vec(out, y).expect("F·OH·OW values")
        }
        Op::Dense(d) => {
            let (k, n) = d.weight.dim();
            let rows = x.len() / k;
            let xs = x
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order((rows, k))
                .expect("last axis K");
            let mut y = Vec::with_capacity(rows * n);
            for r in 0..rows {
                for j in 0..n {
                    let terms: Vec<(Abs, f64)> =
                        (0..k).map(|i| (xs[[r, i]], d.weight[[i, j]])).collect();
                    y.push(b.lincomb(terms, d.bias[j]));
                }
            }
            ArrayD::from_shape_vec(out, y).expect("rows·N values")
        }
        Op::AddConst(c) => {
            let c = c
                .broadcast(x.raw_dim())
                .expect("shape inference checked it");
            ndarray::Zip::from(x)
                .and(&c)
                .map_collect(|&v, &k| b.shift(v, k))
        }
        Op::MulConst(c) => {
            let c = c
                .broadcast(x.raw_dim())
                .expect("shape inference checked it");
            ndarray::Zip::from(x)
                .and(&c)
                .map_collect(|&v, &k| b.scale(v, k))
        }
        Op::Activation(hepack_ir::Activation::Square) => {
            x.mapv(|v| b.polynomial(v, &[0.0, 0.0, 1.0]))
        }
        Op::Activation(_) => return Err(op.name()),
        Op::Polynomial(p) => x.mapv(|v| b.polynomial(v, &p.coeffs)),
        Op::MaxPool(_) => return Err("max_pool"),
        Op::Softmax(_) => return Err("softmax"),
        Op::AvgPool(p) => pool(b, &p.pool, x, out_dims, Some(p.count_include_pad)),
        Op::SumPool(p) => pool(b, p, x, out_dims, None),
        Op::GlobalAvgPool => {
            let plane = x.shape()[1] * x.shape()[2];
            let sums: Vec<Abs> = x
                .axis_iter(Axis(0))
                .map(|c| {
                    let s = b.sum(c.iter().copied());
                    b.scale(s, 1.0 / plane as f64)
                })
                .collect();
            ArrayD::from_shape_vec(out, sums).expect("C values")
        }
        Op::BatchNorm(bn) => {
            let (a, shift) = bn.affine();
            let mut y = x.clone();
            for (ci, mut lane) in y.axis_iter_mut(Axis(0)).enumerate() {
                lane.mapv_inplace(|v| {
                    let s = b.scale(v, a[ci]);
                    b.shift(s, shift[ci])
                });
            }
            y
        }
        Op::Flatten | Op::Reshape(_) => x
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order(out)
            .expect("same element count"),
        Op::Transpose(perm) => x
            .clone()
            .permuted_axes(IxDyn(perm))
            .as_standard_layout()
            .into_owned(),
        Op::Dropout { .. } | Op::Identity => x.clone(),
        Op::Patches(p) => {
            let (ch, h, w) = (x.shape()[0], x.shape()[1], x.shape()[2]);
            let (kh, kw) = (p.kernel[0], p.kernel[1]);
            let mut y = ArrayD::from_elem(out, Abs::Zero);
            for u in 0..out_dims[0] {
                for v in 0..out_dims[1] {
                    for ((ky, kx), t) in
                        taps(p.kernel, p.strides, p.pads, p.dilations, (h, w), (u, v))
                    {
                        if let Some((iy, ix)) = t {
                            for ci in 0..ch {
                                y[[u, v, ci * kh * kw + ky * kw + kx]] = x[[ci, iy, ix]];
                            }
                        }
                    }
                }
            }
            y
        }
    })
}

/// Sum (and for an average pool, scale) each window. `average`: `None` for a
/// sum pool, else whether padded taps count in the divisor.
fn pool(
    b: &mut Builder,
    p: &Pool,
    x: &ArrayD<Abs>,
    out_dims: &[usize],
    average: Option<bool>,
) -> ArrayD<Abs> {
    let (h, w) = (x.shape()[1], x.shape()[2]);
    let mut y = Vec::with_capacity(out_dims.iter().product());
    for ci in 0..out_dims[0] {
        for oy in 0..out_dims[1] {
            for ox in 0..out_dims[2] {
                let window: Vec<Option<(usize, usize)>> = pool_taps(p, (h, w), (oy, ox)).collect();
                let inside: Vec<Abs> = window
                    .iter()
                    .flatten()
                    .map(|&(iy, ix)| x[[ci, iy, ix]])
                    .collect();
                let s = b.sum(inside.iter().copied());
                y.push(match average {
                    None => s,
                    Some(include_pad) => {
                        let count = if include_pad {
                            window.len()
                        } else {
                            inside.len()
                        };
                        b.scale(s, 1.0 / count.max(1) as f64)
                    }
                });
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(out_dims), y).expect("C·OH·OW values")
}
