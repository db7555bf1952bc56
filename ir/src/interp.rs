//! The plaintext reference interpreter: the oracle every later stage is tested against.
//!
//! It evaluates a [`Graph`] in `f64` on a batch (`[B, ...input shape]`), splitting
//! the batch across rayon's threads. Every op is written as directly as possible,
//! favouring obviously-correct loops over speed.

use ndarray::{concatenate, Array2, ArrayD, ArrayViewD, Axis, IxDyn, Zip};
use rayon::prelude::*;

use crate::error::IrError;
use crate::graph::{Graph, NodeId};
use crate::op::{Activation, AvgPool, Conv, Op, Patches, Pool, Softmax};

/// The outputs of a run (in the graph's order) and the values of the tapped nodes.
type Tapped = (Vec<ArrayD<f64>>, Vec<ArrayD<f64>>);

/// Run the graph on a batch, in parallel over the samples; returns its first
/// output, the only one of most models ([`run_outputs`] returns them all).
pub fn run(graph: &Graph, input: ArrayViewD<'_, f64>) -> Result<ArrayD<f64>, IrError> {
    Ok(run_outputs(graph, input)?.swap_remove(0))
}

/// Run the graph on a batch; one tensor per output, in the graph's order.
pub fn run_outputs(graph: &Graph, input: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>, IrError> {
    Ok(run_with_taps(graph, input, &[])?.0)
}

/// The largest magnitude any layer's output takes on `input` (the input
/// included): what the modulus of an encrypted run must hold. Runs in chunks
/// of 64 samples, so memory stays that of 64 samples' activations.
pub fn max_abs(graph: &Graph, input: ArrayViewD<'_, f64>) -> Result<f64, IrError> {
    let nodes = graph.topo_order();
    let mut max = 0f64;
    for start in (0..input.shape()[0]).step_by(64) {
        let end = (start + 64).min(input.shape()[0]);
        let chunk = input.slice_axis(Axis(0), (start..end).into());
        let (outs, taps) = run_with_taps(graph, chunk, &nodes)?;
        for t in taps.iter().chain(&outs) {
            max = t.iter().fold(max, |m, v| m.max(v.abs()));
        }
    }
    Ok(max)
}

/// Run the graph on a batch and also return the values of the `taps` nodes (each
/// `[B, ...node shape]`, in the order given). Calibration uses this to see the
/// inputs of every activation; memory grows with the tapped tensors.
pub fn run_with_taps(
    graph: &Graph,
    input: ArrayViewD<'_, f64>,
    taps: &[NodeId],
) -> Result<Tapped, IrError> {
    check_input(graph, &input)?;
    let batch = input.shape()[0];
    let threads = rayon::current_num_threads().max(1);
    // A few chunks per thread balance the load; tiny batches run as one chunk.
    let chunk = batch.div_ceil(threads * 4).max(1);
    if batch <= chunk {
        return Ok(run_sequential(graph, input, taps));
    }
    let starts: Vec<usize> = (0..batch).step_by(chunk).collect();
    let parts: Vec<Tapped> = starts
        .par_iter()
        .map(|&start| {
            let end = (start + chunk).min(batch);
            run_sequential(graph, input.slice_axis(Axis(0), (start..end).into()), taps)
        })
        .collect();
    let join = |pick: &dyn Fn(&Tapped) -> ArrayViewD<'_, f64>| {
        let views: Vec<ArrayViewD<'_, f64>> = parts.iter().map(pick).collect();
        concatenate(Axis(0), &views).expect("chunks share their trailing shape")
    };
    let outputs = (0..graph.outputs().len())
        .map(|i| join(&|p| p.0[i].view()))
        .collect();
    let tapped = (0..taps.len()).map(|i| join(&|p| p.1[i].view())).collect();
    Ok((outputs, tapped))
}

fn check_input(graph: &Graph, input: &ArrayViewD<'_, f64>) -> Result<(), IrError> {
    let expected = &graph.node(graph.input()).shape;
    if input.ndim() != expected.rank() + 1 || &input.shape()[1..] != expected.dims() {
        return Err(IrError::InputShape {
            got: input.shape().to_vec(),
            expected: expected.to_string(),
        });
    }
    Ok(())
}

/// Run the graph on one chunk of a batch on the calling thread. The input shape
/// must already have been checked.
fn run_sequential(graph: &Graph, input: ArrayViewD<'_, f64>, taps: &[NodeId]) -> Tapped {
    let order = graph.topo_order();
    let mut remaining_uses: Vec<usize> =
        vec![0; order.iter().map(|n| n.index() + 1).max().unwrap_or(0)];
    for &id in &order {
        for operand in graph.operands(id) {
            remaining_uses[operand.index()] += 1;
        }
    }
    let mut values: Vec<Option<ArrayD<f64>>> = vec![None; remaining_uses.len()];
    let mut tapped: Vec<Option<ArrayD<f64>>> = vec![None; taps.len()];
    for &id in &order {
        let node = graph.node(id);
        let value = if matches!(node.op, Op::Input) {
            input.to_owned()
        } else {
            // Take an operand's value at its last use, else copy it.
            let mut xs: Vec<ArrayD<f64>> = graph
                .operands(id)
                .into_iter()
                .map(|operand| {
                    remaining_uses[operand.index()] -= 1;
                    if remaining_uses[operand.index()] == 0 && !graph.is_output(operand) {
                        values[operand.index()].take()
                    } else {
                        values[operand.index()].clone()
                    }
                    .expect("operands are evaluated first")
                })
                .collect();
            match node.op {
                Op::Add => {
                    let b = xs.pop().expect("two operands");
                    xs.pop().expect("two operands") + b
                }
                Op::Concat(axis) => {
                    let views: Vec<_> = xs.iter().map(|x| x.view()).collect();
                    concatenate(Axis(axis + 1), &views).expect("shapes checked when added")
                }
                _ => eval(graph, id, xs.pop().expect("one operand")),
            }
        };
        for (slot, _) in taps.iter().enumerate().filter(|(_, &t)| t == id) {
            tapped[slot] = Some(value.clone());
        }
        values[id.index()] = Some(value);
    }
    let outputs = graph
        .outputs()
        .iter()
        .map(|o| {
            values[o.node.index()]
                .clone()
                .expect("the outputs are reachable")
        })
        .collect();
    let tapped = tapped
        .into_iter()
        .map(|t| t.expect("every tapped node is in the graph"))
        .collect();
    (outputs, tapped)
}

/// Node `id` (an op of one operand) on a batch `x` of its operand's values.
pub fn eval_node(graph: &Graph, id: NodeId, x: ArrayD<f64>) -> ArrayD<f64> {
    eval(graph, id, x)
}

fn eval(graph: &Graph, id: NodeId, x: ArrayD<f64>) -> ArrayD<f64> {
    let node = graph.node(id);
    let out_shape = node.shape.with_batch(x.shape()[0]);
    match &node.op {
        Op::Input => x,
        Op::Conv(c) => conv(c, &x, &out_shape),
        Op::Dense(d) => {
            let k = d.weight.nrows();
            let rows = x.len() / k;
            let x2 = to_shape(x, &[rows, k])
                .into_dimensionality::<ndarray::Ix2>()
                .expect("2-D");
            let y: Array2<f64> = x2.dot(&d.weight) + &d.bias;
            to_shape(y.into_dyn(), &out_shape)
        }
        Op::AddConst(c) => &x + c,
        Op::MulConst(c) => &x * c,
        Op::Activation(a) => activation(*a, x),
        Op::MaxPool(p) => max_pool(p, &x, &out_shape),
        Op::AvgPool(p) => avg_pool(p, &x, &out_shape),
        Op::GlobalAvgPool => {
            let (b, c) = (x.shape()[0], x.shape()[1]);
            let per = x.len() / (b * c);
            let m = to_shape(x, &[b, c, per])
                .mean_axis(Axis(2))
                .expect("non-empty");
            to_shape(m, &out_shape)
        }
        Op::BatchNorm(bn) => {
            let (a, b) = bn.affine();
            let mut x = x;
            for (ch, mut plane) in x.axis_iter_mut(Axis(1)).enumerate() {
                let (ac, bc) = (a[ch], b[ch]);
                plane.mapv_inplace(|v| ac * v + bc);
            }
            x
        }
        Op::Flatten | Op::Reshape(_) => to_shape(x, &out_shape),
        Op::Transpose(perm) => {
            let mut full = vec![0];
            full.extend(perm.iter().map(|p| p + 1));
            x.permuted_axes(IxDyn(&full))
                .as_standard_layout()
                .into_owned()
        }
        Op::Dropout { .. } | Op::Identity => x,
        Op::Softmax(s) => softmax(s, x),
        Op::Polynomial(p) => {
            let mut x = x;
            x.mapv_inplace(|v| p.eval(v));
            x
        }
        Op::SumPool(p) => pool_with(p, &x, &out_shape, |taps| taps.flatten().sum()),
        Op::Patches(p) => patches(p, &x, &out_shape),
        Op::Add | Op::Concat(_) => {
            unreachable!("ops of several operands are evaluated by the caller")
        }
    }
}

/// Reshape in row-major order, copying only if the array is not contiguous.
/// The element count must match.
pub fn to_shape(x: ArrayD<f64>, shape: &[usize]) -> ArrayD<f64> {
    let x = if x.is_standard_layout() {
        x
    } else {
        x.as_standard_layout().into_owned()
    };
    x.into_shape_with_order(IxDyn(shape))
        .expect("shape inference guarantees the element count")
}

fn activation(a: Activation, mut x: ArrayD<f64>) -> ArrayD<f64> {
    x.mapv_inplace(|v| a.apply(v));
    x
}

/// Input position for output position `o` and kernel tap `k` along one axis,
/// if inside the input (not in the padding).
pub fn tap(
    o: usize,
    k: usize,
    stride: usize,
    dilation: usize,
    pad: usize,
    len: usize,
) -> Option<usize> {
    (o * stride + k * dilation)
        .checked_sub(pad)
        .filter(|&i| i < len)
}

fn conv(c: &Conv, x: &ArrayD<f64>, out_shape: &[usize]) -> ArrayD<f64> {
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let (b, ch, h, w) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let (f, _, kh, kw) = c.weight.dim();
    let (oh, ow) = (out_shape[2], out_shape[3]);
    let mut out = ArrayD::zeros(IxDyn(out_shape));
    let os = out.as_slice_mut().expect("fresh array");
    for bi in 0..b {
        for fi in 0..f {
            let plane = &mut os[(bi * f + fi) * oh * ow..][..oh * ow];
            plane.fill(c.bias[fi]);
            for ci in 0..ch {
                let xin = &xs[(bi * ch + ci) * h * w..][..h * w];
                for ky in 0..kh {
                    for kx in 0..kw {
                        let wv = c.weight[[fi, ci, ky, kx]];
                        for oy in 0..oh {
                            let Some(iy) = tap(oy, ky, c.strides[0], c.dilations[0], c.pads[0], h)
                            else {
                                continue;
                            };
                            for ox in 0..ow {
                                if let Some(ix) =
                                    tap(ox, kx, c.strides[1], c.dilations[1], c.pads[1], w)
                                {
                                    plane[oy * ow + ox] += wv * xin[iy * w + ix];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

fn patches(p: &Patches, x: &ArrayD<f64>, out_shape: &[usize]) -> ArrayD<f64> {
    let (h, w) = (x.shape()[2], x.shape()[3]);
    let [kh, kw] = p.kernel;
    ArrayD::from_shape_fn(IxDyn(out_shape), |i| {
        let (bi, oy, ox, m) = (i[0], i[1], i[2], i[3]);
        let (ci, ky, kx) = (m / (kh * kw), (m / kw) % kh, m % kw);
        match (
            tap(oy, ky, p.strides[0], p.dilations[0], p.pads[0], h),
            tap(ox, kx, p.strides[1], p.dilations[1], p.pads[1], w),
        ) {
            (Some(iy), Some(ix)) => x[[bi, ci, iy, ix]],
            _ => 0.0,
        }
    })
}

/// Visit each output cell of a pooling op with the input values in its window
/// (`None` for a tap in the padding), writing what `reduce` returns.
fn pool_with(
    p: &Pool,
    x: &ArrayD<f64>,
    out_shape: &[usize],
    mut reduce: impl FnMut(&mut dyn Iterator<Item = Option<f64>>) -> f64,
) -> ArrayD<f64> {
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let (h, w) = (x.shape()[2], x.shape()[3]);
    let (oh, ow) = (out_shape[2], out_shape[3]);
    let planes = out_shape[0] * out_shape[1];
    let mut out = ArrayD::zeros(IxDyn(out_shape));
    let os = out.as_slice_mut().expect("fresh array");
    for plane in 0..planes {
        let xin = &xs[plane * h * w..][..h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let mut taps = pool_window(p, h, w, oy, ox).map(|t| t.map(|i| xin[i]));
                os[plane * oh * ow + oy * ow + ox] = reduce(&mut taps);
            }
        }
    }
    out
}

/// The taps of pooling window `(oy, ox)` over an `h × w` plane: the flat
/// index of each tap inside the input, `None` for one in the padding. Taps
/// past the far padding (ceil mode) are outside the window and left out.
pub fn pool_window(
    p: &Pool,
    h: usize,
    w: usize,
    oy: usize,
    ox: usize,
) -> impl Iterator<Item = Option<usize>> + '_ {
    (0..p.kernel[0])
        .flat_map(|ky| (0..p.kernel[1]).map(move |kx| (ky, kx)))
        .filter_map(move |(ky, kx)| {
            let iy = (oy * p.strides[0] + ky * p.dilations[0]) as isize - p.pads[0] as isize;
            let ix = (ox * p.strides[1] + kx * p.dilations[1]) as isize - p.pads[1] as isize;
            if iy >= (h + p.pads[2]) as isize || ix >= (w + p.pads[3]) as isize {
                None
            } else if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                Some(None)
            } else {
                Some(Some(iy as usize * w + ix as usize))
            }
        })
}

fn max_pool(p: &Pool, x: &ArrayD<f64>, out_shape: &[usize]) -> ArrayD<f64> {
    pool_with(p, x, out_shape, |taps| {
        taps.flatten().fold(f64::NEG_INFINITY, f64::max)
    })
}

fn avg_pool(p: &AvgPool, x: &ArrayD<f64>, out_shape: &[usize]) -> ArrayD<f64> {
    let include_pad = p.count_include_pad;
    pool_with(&p.pool, x, out_shape, |taps| {
        let (mut sum, mut count) = (0.0, 0usize);
        for t in taps {
            match t {
                Some(v) => {
                    sum += v;
                    count += 1;
                }
                None if include_pad => count += 1,
                None => {}
            }
        }
        sum / count.max(1) as f64
    })
}

fn softmax(s: &Softmax, x: ArrayD<f64>) -> ArrayD<f64> {
    let log = s.log;
    let normalise = move |mut lane: ndarray::ArrayViewMut1<'_, f64>| {
        let max = lane.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        lane.mapv_inplace(|v| v - max);
        let sum = lane.fold(0.0, |a, &v| a + v.exp());
        if log {
            let ln = sum.ln();
            lane.mapv_inplace(|v| v - ln);
        } else {
            lane.mapv_inplace(|v| v.exp() / sum);
        }
    };
    if s.flatten_trailing {
        let shape = x.shape().to_vec();
        let cols: usize = shape[s.axis + 1..].iter().product();
        let rows = x.len() / cols;
        let mut m = to_shape(x, &[rows, cols]);
        for lane in m.lanes_mut(Axis(1)) {
            normalise(lane);
        }
        to_shape(m, &shape)
    } else {
        let mut x = x;
        for lane in x.lanes_mut(Axis(s.axis + 1)) {
            normalise(lane);
        }
        x
    }
}

/// Number of samples whose highest-scoring class equals the label.
///
/// `scores` is `[B, classes]` (or `[B, ..]`, flattened per sample).
pub fn count_correct(scores: &ArrayD<f64>, labels: &[i64]) -> usize {
    let b = scores.shape()[0];
    let per = scores.len() / b.max(1);
    let flat = scores
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((b, per))
        .expect("same element count");
    flat.outer_iter()
        .zip(labels)
        .filter(|(row, &label)| argmax(row.iter().copied()) == Some(label as usize))
        .count()
}

fn argmax(values: impl Iterator<Item = f64>) -> Option<usize> {
    values
        .enumerate()
        .fold(None, |best: Option<(usize, f64)>, (i, v)| match best {
            Some((_, bv)) if bv >= v => best,
            _ => Some((i, v)),
        })
        .map(|(i, _)| i)
}

/// Mean squared error between two arrays of the same shape.
pub fn mean_squared_error(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    let mut sum = 0.0;
    Zip::from(a)
        .and(b)
        .for_each(|&x, &y| sum += (x - y) * (x - y));
    sum / a.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Dense;
    use crate::shape::Shape;
    use ndarray::{arr1, arr2, s, Array4};

    #[test]
    fn dense_then_relu_matches_hand_computation() {
        let mut g = Graph::new("x", Shape::new([2]));
        let d = g
            .add(
                "fc",
                Op::Dense(Dense {
                    weight: arr2(&[[1.0, -1.0], [2.0, 0.5]]),
                    bias: arr1(&[0.5, -3.0]),
                }),
                &[g.input()],
            )
            .unwrap();
        let r = g
            .add("relu", Op::Activation(Activation::Relu), &[d])
            .unwrap();
        g.set_output(r);
        let x = arr2(&[[1.0, 2.0], [-1.0, 0.0]]).into_dyn();
        let y = run(&g, x.view()).unwrap();
        // Row 1: [1+4+0.5, -1+1-3] = [5.5, -3] -> relu [5.5, 0]; row 2: [-0.5, -2] -> 0.
        assert_eq!(y, arr2(&[[5.5, 0.0], [0.0, 0.0]]).into_dyn());
        assert_eq!(max_abs(&g, x.view()).unwrap(), 5.5);
        // Inner layers count: on [0, -1], fc gives [1.5, -3.5] and relu at most 1.5.
        let x = arr2(&[[0.0, -1.0]]).into_dyn();
        assert_eq!(max_abs(&g, x.view()).unwrap(), 3.5);
    }

    #[test]
    fn conv_with_padding_sums_the_window() {
        let mut g = Graph::new("x", Shape::new([1, 2, 2]));
        let c = g
            .add(
                "conv",
                Op::Conv(Conv {
                    weight: Array4::ones((1, 1, 3, 3)),
                    bias: arr1(&[1.0]),
                    strides: [1, 1],
                    pads: [1, 1, 1, 1],
                    dilations: [1, 1],
                }),
                &[g.input()],
            )
            .unwrap();
        g.set_output(c);
        let x = ArrayD::from_shape_vec(IxDyn(&[1, 1, 2, 2]), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let y = run(&g, x.view()).unwrap();
        // Every 3x3 window around a 2x2 image covers all four pixels: 10 + bias.
        assert!(y.iter().all(|&v| v == 11.0), "{y}");
    }

    #[test]
    fn parallel_run_equals_sequential_run() {
        let mut g = Graph::new("x", Shape::new([3]));
        let sm = g
            .add(
                "softmax",
                Op::Softmax(Softmax {
                    axis: 0,
                    flatten_trailing: false,
                    log: false,
                }),
                &[g.input()],
            )
            .unwrap();
        g.set_output(sm);
        let x = ArrayD::from_shape_fn(IxDyn(&[257, 3]), |i| (i[0] * 3 + i[1]) as f64 * 0.01);
        let par = run(&g, x.view()).unwrap();
        let seq = run_sequential(&g, x.view(), &[]).0.swap_remove(0);
        assert_eq!(par, seq);
        assert!((par.slice(s![5, ..]).sum() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn wrong_input_shape_is_an_error() {
        let g = Graph::new("x", Shape::new([3]));
        let x = ArrayD::zeros(IxDyn(&[2, 4]));
        assert!(matches!(run(&g, x.view()), Err(IrError::InputShape { .. })));
    }
}
