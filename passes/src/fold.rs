//! `fold-scalings`: move constant multiplications and additions into the
//! neighbouring linear layer or polynomial, so they cost nothing under HE. Exact.
//!
//! * An average pool whose divisor is the same everywhere becomes a sum pool and
//!   a scalar multiply (a global average pool becomes a whole-plane sum pool);
//! * a scalar multiply moves forward through ops it commutes with (layout ops,
//!   pools, patches) into the next conv/dense weights or polynomial, or else
//!   backward into the previous one;
//! * per-channel multiplies and adds fold into the adjacent conv/dense when
//!   they line up with its filters/neurons (or input channels), and adds fold
//!   into a polynomial's constant term.

use hepack_ir::{Graph, NodeId, Op, Pool, Shape};
use ndarray::{ArrayD, Axis, IxDyn};

use crate::error::PassError;
use crate::manager::{Pass, PassReport};

/// Fold constant scalings; see the module docs.
pub struct FoldScalings;

impl Pass for FoldScalings {
    fn name(&self) -> &'static str {
        "fold-scalings"
    }

    fn run(&mut self, graph: &mut Graph) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        split_average_pools(graph, &mut report)?;
        // A sweep in topological order folds a whole run of constants; sweep
        // again until one changes nothing. Each sweep is linear (restarting
        // after every fold made long runs quadratic), and each fold removes
        // a node, so this terminates.
        loop {
            let mut changed = false;
            for id in graph.topo_order() {
                if !graph.node_exists(id) {
                    continue;
                }
                let name = graph.node(id).name.clone();
                let folded = match &graph.node(id).op {
                    Op::MulConst(c) => fold_mul(graph, id, &c.clone())?,
                    Op::AddConst(c) => fold_add(graph, id, &c.clone())?,
                    _ => None,
                };
                if let Some(target) = folded {
                    let what = graph.node(id).op.name();
                    report.change(format!("folded {what} '{name}' into '{target}'"));
                    graph.bypass(id)?;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        Ok(report)
    }
}

/// Replace uniform-divisor average pools by a sum pool and a scalar multiply.
fn split_average_pools(graph: &mut Graph, report: &mut PassReport) -> Result<(), PassError> {
    let mut names = graph.names();
    for id in graph.topo_order() {
        let node = graph.node(id);
        let input = &graph
            .node(graph.operands(id).first().copied().unwrap_or(id))
            .shape;
        let (pool, divisor) = match &node.op {
            Op::AvgPool(p) if uniform_divisor(&p.pool, p.count_include_pad, input) => {
                (p.pool.clone(), (p.pool.kernel[0] * p.pool.kernel[1]) as f64)
            }
            Op::GlobalAvgPool if input.rank() == 3 => {
                let [h, w] = [input.dims()[1], input.dims()[2]];
                let pool = Pool {
                    kernel: [h, w],
                    strides: [1, 1],
                    pads: [0; 4],
                    dilations: [1, 1],
                    ceil_mode: false,
                };
                (pool, (h * w) as f64)
            }
            _ => continue,
        };
        let name = node.name.clone();
        graph.replace_op(id, Op::SumPool(pool))?;
        let scale_name = names.fresh(&format!("{name}/scale"));
        let scale = ArrayD::from_elem(IxDyn(&[]), 1.0 / divisor);
        graph.insert_after(id, scale_name, Op::MulConst(scale))?;
        report.change(format!(
            "'{name}': average pool -> sum pool times 1/{divisor}"
        ));
    }
    Ok(())
}

/// Every window of the pool divides by the full window size: padded cells count,
/// or there is no padding, and no ceil-mode window is cut short.
fn uniform_divisor(p: &Pool, count_include_pad: bool, input: &Shape) -> bool {
    let padded = p.pads.iter().any(|&x| x != 0);
    (count_include_pad || !padded) && p.windows_are_full(input)
}

/// Ops that commute with multiplication by a scalar `s` (max pool only for s > 0).
fn commutes_with_scalar(op: &Op, s: f64) -> bool {
    match op {
        Op::Flatten
        | Op::Reshape(_)
        | Op::Transpose(_)
        | Op::SumPool(_)
        | Op::AvgPool(_)
        | Op::GlobalAvgPool
        | Op::Patches(_)
        | Op::Identity
        | Op::Dropout { .. } => true,
        Op::MaxPool(_) => s > 0.0,
        _ => false,
    }
}

/// Try to fold the multiply `id` by `c`; returns the layer that absorbed it.
fn fold_mul(graph: &mut Graph, id: NodeId, c: &ArrayD<f64>) -> Result<Option<String>, PassError> {
    let operand = graph.operands(id)[0];
    if c.len() == 1 {
        let s = *c.iter().next().expect("one element");
        // Forward, through ops the scalar commutes with.
        let mut cur = graph.single_user(id);
        while let Some(n) = cur {
            if !commutes_with_scalar(&graph.node(n).op, s) {
                break;
            }
            cur = graph.single_user(n);
        }
        if let Some(n) = cur {
            if let Some(op) = scale_input(&graph.node(n).op, s) {
                return absorb(graph, n, op);
            }
        }
        // Backward, into whatever produced the value.
        let mut prev = id;
        let mut cur = operand;
        while commutes_with_scalar(&graph.node(cur).op, s) && graph.single_user(cur) == Some(prev) {
            prev = cur;
            cur = graph.operands(cur)[0];
        }
        if graph.single_user(cur) == Some(prev) {
            if let Some(op) = scale_output_by_scalar(&graph.node(cur).op, s) {
                return absorb(graph, cur, op);
            }
        }
        return Ok(None);
    }
    // A per-channel multiply: the next layer's input channels …
    if let Some(user) = graph.single_user(id) {
        let in_shape = &graph.node(id).shape;
        let op = match graph.node(user).op.clone() {
            Op::Conv(mut conv) => channel_values(c, in_shape, 0).map(|v| {
                for (ch, mut w) in conv.weight.axis_iter_mut(Axis(1)).enumerate() {
                    w *= v[ch];
                }
                Op::Conv(conv)
            }),
            Op::Dense(mut d) => channel_values(c, in_shape, in_shape.rank() - 1).map(|v| {
                for (k, mut row) in d.weight.axis_iter_mut(Axis(0)).enumerate() {
                    row *= v[k];
                }
                Op::Dense(d)
            }),
            _ => None,
        };
        if let Some(op) = op {
            return absorb(graph, user, op);
        }
    }
    // … or the previous layer's filters/neurons.
    if graph.single_user(operand) == Some(id) {
        let out_shape = graph.node(operand).shape.clone();
        let op = match graph.node(operand).op.clone() {
            Op::Conv(mut conv) => channel_values(c, &out_shape, 0).map(|v| {
                for (f, mut w) in conv.weight.axis_iter_mut(Axis(0)).enumerate() {
                    w *= v[f];
                }
                conv.bias.iter_mut().zip(&v).for_each(|(b, s)| *b *= s);
                Op::Conv(conv)
            }),
            Op::Dense(mut d) => channel_values(c, &out_shape, out_shape.rank() - 1).map(|v| {
                for (n, mut col) in d.weight.axis_iter_mut(Axis(1)).enumerate() {
                    col *= v[n];
                }
                d.bias.iter_mut().zip(&v).for_each(|(b, s)| *b *= s);
                Op::Dense(d)
            }),
            _ => None,
        };
        if let Some(op) = op {
            return absorb(graph, operand, op);
        }
    }
    Ok(None)
}

/// Try to fold the addition `id` of `c`; returns the layer that absorbed it.
fn fold_add(graph: &mut Graph, id: NodeId, c: &ArrayD<f64>) -> Result<Option<String>, PassError> {
    let operand = graph.operands(id)[0];
    // Into the bias of the layer before (or a polynomial's constant term).
    if graph.single_user(operand) == Some(id) {
        let out_shape = graph.node(operand).shape.clone();
        let op = match graph.node(operand).op.clone() {
            Op::Conv(mut conv) => channel_values(c, &out_shape, 0).map(|v| {
                conv.bias.iter_mut().zip(&v).for_each(|(b, a)| *b += a);
                Op::Conv(conv)
            }),
            Op::Dense(mut d) => channel_values(c, &out_shape, out_shape.rank() - 1).map(|v| {
                d.bias.iter_mut().zip(&v).for_each(|(b, a)| *b += a);
                Op::Dense(d)
            }),
            Op::Polynomial(mut p) if c.len() == 1 => {
                p.coeffs[0] += c.iter().next().expect("one element");
                let old = graph.node(operand).name.to_string();
                take_name(graph, operand, id);
                graph.replace_op(operand, Op::Polynomial(p))?;
                return Ok(Some(format!(
                    "{old}', renamed '{}",
                    graph.node(operand).name
                )));
            }
            Op::AddConst(prev) => {
                let full = broadcast(&prev, &out_shape) + broadcast(c, &out_shape);
                Some(Op::AddConst(full))
            }
            _ => None,
        };
        if let Some(op) = op {
            return absorb(graph, operand, op);
        }
    }
    // Into the bias of the layer after: bias += W·c.
    if let Some(user) = graph.single_user(id) {
        let in_shape = graph.node(id).shape.clone();
        let op = match graph.node(user).op.clone() {
            Op::Dense(mut d) => channel_values(c, &in_shape, in_shape.rank() - 1).map(|v| {
                let v = ndarray::Array1::from(v);
                d.bias = &d.bias + &v.dot(&d.weight);
                Op::Dense(d)
            }),
            // Padding would see zeros where the shifted input is not zero.
            Op::Conv(mut conv) if conv.pads.iter().all(|&p| p == 0) => {
                channel_values(c, &in_shape, 0).map(|v| {
                    for (f, filter) in conv.weight.axis_iter(Axis(0)).enumerate() {
                        let shift: f64 = filter
                            .axis_iter(Axis(0))
                            .zip(&v)
                            .map(|(w, a)| w.sum() * a)
                            .sum();
                        conv.bias[f] += shift;
                    }
                    Op::Conv(conv)
                })
            }
            _ => None,
        };
        if let Some(op) = op {
            return absorb(graph, user, op);
        }
    }
    Ok(None)
}

/// `op` applied to `s·x`, as one op, if it can absorb the scalar.
fn scale_input(op: &Op, s: f64) -> Option<Op> {
    match op.clone() {
        Op::Conv(mut c) => {
            c.weight *= s;
            Some(Op::Conv(c))
        }
        Op::Dense(mut d) => {
            d.weight *= s;
            Some(Op::Dense(d))
        }
        Op::Polynomial(mut p) => {
            let mut power = 1.0;
            for c in &mut p.coeffs {
                *c *= power;
                power *= s;
            }
            Some(Op::Polynomial(p))
        }
        Op::MulConst(c) => Some(Op::MulConst(c * s)),
        _ => None,
    }
}

/// `s·op(x)`, as one op, if it can absorb the scalar.
fn scale_output_by_scalar(op: &Op, s: f64) -> Option<Op> {
    match op.clone() {
        Op::Conv(mut c) => {
            c.weight *= s;
            c.bias *= s;
            Some(Op::Conv(c))
        }
        Op::Dense(mut d) => {
            d.weight *= s;
            d.bias *= s;
            Some(Op::Dense(d))
        }
        Op::Polynomial(mut p) => {
            p.coeffs.iter_mut().for_each(|c| *c *= s);
            Some(Op::Polynomial(p))
        }
        Op::MulConst(c) => Some(Op::MulConst(c * s)),
        _ => None,
    }
}

/// `target` absorbs `from`, the add right after it, and takes its name: the
/// model calls the value by that name from here on. (A polynomial exported in
/// Horner form is named after its last add; its inner nodes, which the import
/// makes the polynomial, after its terms: `/1/Relu/t1`.) `from` takes
/// `target`'s old name until it is removed.
fn take_name(graph: &mut Graph, target: NodeId, from: NodeId) {
    let name = graph.node(from).name.clone();
    let old = std::mem::replace(&mut graph.node_mut(target).name, name);
    graph.node_mut(from).name = old;
}

fn absorb(graph: &mut Graph, target: NodeId, op: Op) -> Result<Option<String>, PassError> {
    graph.replace_op(target, op)?;
    Ok(Some(graph.node(target).name.to_string()))
}

/// The constant broadcast to the full sample shape.
fn broadcast(c: &ArrayD<f64>, shape: &Shape) -> ArrayD<f64> {
    c.broadcast(IxDyn(shape.dims()))
        .expect("shape inference checked the broadcast")
        .to_owned()
}

/// If `c`, broadcast over `shape`, is constant along every axis but `axis`, its
/// value for each index of `axis`.
fn channel_values(c: &ArrayD<f64>, shape: &Shape, axis: usize) -> Option<Vec<f64>> {
    let full = broadcast(c, shape);
    full.axis_iter(Axis(axis))
        .map(|plane| {
            let first = *plane.iter().next()?;
            plane.iter().all(|&v| v == first).then_some(first)
        })
        .collect()
}
