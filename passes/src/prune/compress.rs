//! Structural compression (MOFHEI Fig. 1): remove pruned filters/neurons and
//! the inputs of the next layer that read them, keeping the function exactly.
//!
//! A filter/neuron whose W̄ column is all zero outputs its bias, a constant.
//! Everything between it and the next linear layer (activations, polynomials,
//! pools, flatten, per-channel affine ops) acts on each channel on its own, so
//! the next layer sees a constant there too: its contribution is folded into
//! the next layer's bias and the channel disappears from both layers. A channel
//! the next layer reads with all-zero weights is removed the same way (it is
//! dead code). Channels whose path mixes channels, or feeds more than one
//! consumer, are left in place (still zero, still exact) and reported.

use hepack_ir::{interp, Graph, LayerName, NodeId, Op, Shape};
use ndarray::{Array2, ArrayD, Axis, IxDyn};
use serde::Serialize;

use crate::error::PassError;
use crate::manager::{Pass, PassReport};

/// What compression did to one linear layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerCompression {
    /// The layer whose filters/neurons were removed.
    pub layer: LayerName,
    /// Filters/neurons before.
    pub units_before: usize,
    /// Filters/neurons after.
    pub units_after: usize,
    /// The layer that lost the matching inputs (and took the folded constants).
    pub next: LayerName,
}

/// Dead filters/neurons compression had to keep, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeptDead {
    /// The layer.
    pub layer: LayerName,
    /// How many all-zero filters/neurons stay.
    pub count: usize,
    /// Why they could not be removed.
    pub reason: String,
}

/// The outcome of [`compress`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CompressReport {
    /// Layers that lost filters/neurons.
    pub removed: Vec<LayerCompression>,
    /// Layers that keep some all-zero filters/neurons.
    pub kept: Vec<KeptDead>,
}

/// Where channel `c` of a tensor lives: elements `[c·inner, (c+1)·inner)` of `axis`.
#[derive(Clone, Copy, Debug)]
struct Layout {
    axis: usize,
    inner: usize,
}

/// The path from a linear layer to the next one.
struct Chain {
    /// Nodes strictly between the two layers.
    between: Vec<NodeId>,
    /// The next linear layer.
    next: NodeId,
    /// Layout of each node in `between`, then of the next layer's input.
    layouts: Vec<Layout>,
}

/// Remove every removable all-zero filter/neuron (see the module docs).
pub fn compress(graph: &mut Graph) -> Result<CompressReport, PassError> {
    let layers: Vec<NodeId> = graph
        .topo_order()
        .into_iter()
        .filter(|&id| graph.node(id).op.is_linear_layer())
        .collect();
    let mut removed: Vec<LayerCompression> = Vec::new();
    // Removing a layer's filters can leave an earlier layer's channels unread,
    // so sweep until nothing changes (each sweep removes at least one unit).
    loop {
        let mut round = CompressReport::default();
        for &id in &layers {
            compress_layer(graph, id, &mut round)?;
        }
        if round.removed.is_empty() {
            let position =
                |name: &LayerName| layers.iter().position(|&id| graph.node(id).name == *name);
            removed.sort_by_key(|l| position(&l.layer));
            return Ok(CompressReport {
                removed,
                kept: round.kept,
            });
        }
        for r in round.removed {
            match removed.iter_mut().find(|l| l.layer == r.layer) {
                Some(l) => l.units_after = r.units_after,
                None => removed.push(r),
            }
        }
    }
}

fn compress_layer(
    graph: &mut Graph,
    id: NodeId,
    report: &mut CompressReport,
) -> Result<(), PassError> {
    let name = graph.node(id).name.clone();
    let w_bar = layer_matrix(graph, id);
    let width = w_bar.ncols();
    let zero_cols: Vec<bool> = w_bar
        .columns()
        .into_iter()
        .map(|c| c.iter().all(|&w| w == 0.0))
        .collect();
    let chain = match follow_chain(graph, id) {
        Ok(chain) => chain,
        Err(reason) => {
            let count = zero_cols.iter().filter(|&&z| z).count();
            if count > 0 {
                report.kept.push(KeptDead {
                    layer: name,
                    count,
                    reason,
                });
            }
            return Ok(());
        }
    };
    let layout = *chain.layouts.last().expect("the next layer's input layout");
    let next_op = graph.node(chain.next).op.clone();
    let unused: Vec<bool> = (0..width)
        .map(|c| channel_weights_are_zero(&next_op, layout, c))
        .collect();
    let mut dead: Vec<usize> = (0..width).filter(|&c| zero_cols[c] || unused[c]).collect();
    if dead.is_empty() {
        return Ok(());
    }
    let mut kept_reasons: Vec<(usize, &str)> = Vec::new();
    if dead.len() == width {
        dead.pop();
        kept_reasons.push((1, "a layer keeps at least one filter/neuron"));
    }

    // The constants the next layer reads from dead channels. They do not depend
    // on the input, so one all-zero sample shows them.
    let feeder = graph.operands(chain.next)[0];
    let consts = constants_at(graph, feeder)?;
    let (next_op, not_foldable) = fold_into_next(&next_op, &consts, layout, &dead, &unused);
    if !not_foldable.is_empty() {
        dead.retain(|c| !not_foldable.contains(c));
        kept_reasons.push((
            not_foldable.len(),
            "their constant output is not uniform over the next conv's window or meets its zero padding",
        ));
    }
    for (count, reason) in kept_reasons {
        report.kept.push(KeptDead {
            layer: name.clone(),
            count,
            reason: reason.to_string(),
        });
    }
    if dead.is_empty() {
        return Ok(());
    }
    let keep: Vec<usize> = (0..width).filter(|c| !dead.contains(c)).collect();

    set_op(graph, id, keep_columns(&graph.node(id).op, &keep));
    for (&node, &layout) in chain.between.iter().zip(&chain.layouts) {
        let shape = graph.node(node).shape.clone();
        if let Some(op) = keep_channels(&graph.node(node).op, &shape, layout, &keep, width) {
            set_op(graph, node, op);
        }
    }
    set_op(graph, chain.next, next_op);
    graph.refresh_shapes()?;
    report.removed.push(LayerCompression {
        layer: name,
        units_before: width,
        units_after: keep.len(),
        next: graph.node(chain.next).name.clone(),
    });
    Ok(())
}

fn set_op(graph: &mut Graph, id: NodeId, op: Op) {
    graph.node_mut(id).op = op;
}

/// W̄ (`M × F`) of a conv or dense layer.
fn layer_matrix(graph: &Graph, id: NodeId) -> Array2<f64> {
    match &graph.node(id).op {
        Op::Conv(c) => c.filter_matrix(),
        Op::Dense(d) => d.weight.clone(),
        _ => unreachable!("only linear layers are compressed"),
    }
}

/// Follow the single-consumer path from a linear layer to the next one, keeping
/// track of where each channel lives. Fails (with the reason) at anything that
/// mixes channels.
fn follow_chain(graph: &Graph, id: NodeId) -> Result<Chain, String> {
    let shape = &graph.node(id).shape;
    let mut layout = match graph.node(id).op {
        Op::Conv(_) => Layout { axis: 0, inner: 1 },
        _ => Layout {
            axis: shape.rank() - 1,
            inner: 1,
        },
    };
    let mut cur = id;
    let mut between = Vec::new();
    let mut layouts = Vec::new();
    loop {
        if graph.is_output(cur) {
            return Err("it is a model output".into());
        }
        let users = graph.users(cur);
        let [next] = users[..] else {
            return Err(format!(
                "'{}' feeds {} layers",
                graph.node(cur).name,
                users.len()
            ));
        };
        let node = graph.node(next);
        let in_shape = &graph.node(cur).shape;
        let channel_first = layout.axis == 0 && layout.inner == 1 && in_shape.rank() == 3;
        let unsupported = || {
            if node.op.is_linear_layer() {
                format!(
                    "the next layer '{}' does not read its filters/neurons as input channels/features",
                    node.name
                )
            } else {
                format!(
                    "'{}' ({}) between it and the next linear layer mixes its filters/neurons or moves them to another axis",
                    node.name,
                    node.op.name()
                )
            }
        };
        match &node.op {
            Op::Conv(_) if channel_first => {}
            Op::Dense(_) if layout.axis + 1 == in_shape.rank() => {}
            Op::Activation(_) | Op::Polynomial(_) | Op::Dropout { .. } | Op::Identity => {}
            Op::AddConst(_) | Op::MulConst(_) => {}
            Op::MaxPool(_)
            | Op::AvgPool(_)
            | Op::SumPool(_)
            | Op::GlobalAvgPool
            | Op::BatchNorm(_)
                if channel_first => {}
            Op::Flatten if layout.axis == 0 => {
                layout.inner *= in_shape.dims()[1..].iter().product::<usize>();
            }
            Op::Reshape(s) if layout.axis == 0 && s.rank() == 1 => {
                layout.inner *= in_shape.dims()[1..].iter().product::<usize>();
            }
            _ => return Err(unsupported()),
        }
        if node.op.is_linear_layer() {
            layouts.push(layout);
            return Ok(Chain {
                between,
                next,
                layouts,
            });
        }
        between.push(next);
        layouts.push(layout);
        cur = next;
    }
}

/// Does the next layer read channel `c` with all-zero weights?
fn channel_weights_are_zero(next: &Op, layout: Layout, c: usize) -> bool {
    match next {
        Op::Conv(conv) => conv.weight.index_axis(Axis(1), c).iter().all(|&w| w == 0.0),
        Op::Dense(d) => (c * layout.inner..(c + 1) * layout.inner)
            .all(|r| d.weight.row(r).iter().all(|&w| w == 0.0)),
        _ => unreachable!("the chain ends at a linear layer"),
    }
}

/// The value of node `id` for an all-zero input sample (batch axis dropped).
fn constants_at(graph: &Graph, id: NodeId) -> Result<ArrayD<f64>, PassError> {
    let mut dims = vec![1];
    dims.extend_from_slice(graph.node(graph.input()).shape.dims());
    let zeros = ArrayD::<f64>::zeros(IxDyn(&dims));
    let (_, mut taps) = interp::run_with_taps(graph, zeros.view(), &[id])?;
    Ok(taps.remove(0).index_axis_move(Axis(0), 0))
}

/// The next layer with the dead channels' constant contributions added to its
/// bias and their inputs removed, plus the channels that cannot be folded.
fn fold_into_next(
    next: &Op,
    consts: &ArrayD<f64>,
    layout: Layout,
    dead: &[usize],
    unused: &[bool],
) -> (Op, Vec<usize>) {
    let mut not_foldable = Vec::new();
    let mut op = next.clone();
    match &mut op {
        Op::Conv(conv) => {
            let padded = conv.pads.iter().any(|&p| p != 0);
            for &c in dead.iter().filter(|&&c| !unused[c]) {
                let k = consts.index_axis(Axis(0), c);
                let first = k.iter().next().copied().unwrap_or(0.0);
                if k.iter().all(|&v| v == 0.0) {
                    continue;
                }
                if padded || !k.iter().all(|&v| close(v, first)) {
                    not_foldable.push(c);
                    continue;
                }
                let w = conv.weight.index_axis(Axis(1), c);
                for (f, b) in conv.bias.iter_mut().enumerate() {
                    *b += first * w.index_axis(Axis(0), f).sum();
                }
            }
        }
        Op::Dense(d) => {
            // Rows of the input's last axis; every leading position must agree,
            // since the bias is shared by all of them.
            let m = d.weight.nrows();
            let rows = consts
                .to_shape((consts.len() / m, m))
                .expect("the input's last axis has M entries")
                .to_owned();
            for &c in dead.iter().filter(|&&c| !unused[c]) {
                let range = c * layout.inner..(c + 1) * layout.inner;
                let uniform = range.clone().all(|r| {
                    let col = rows.column(r);
                    col.iter().all(|&v| close(v, col[0]))
                });
                if !uniform {
                    not_foldable.push(c);
                    continue;
                }
                for r in range {
                    let k = rows[[0, r]];
                    if k != 0.0 {
                        d.bias.scaled_add(k, &d.weight.row(r));
                    }
                }
            }
        }
        _ => unreachable!("the chain ends at a linear layer"),
    }
    let removed: Vec<usize> = dead
        .iter()
        .copied()
        .filter(|c| !not_foldable.contains(c))
        .collect();
    let keep: Vec<usize> = (0..unused.len()).filter(|c| !removed.contains(c)).collect();
    let op = match op {
        Op::Conv(mut conv) => {
            conv.weight = conv.weight.select(Axis(1), &keep);
            Op::Conv(conv)
        }
        Op::Dense(mut d) => {
            d.weight = d
                .weight
                .select(Axis(0), &block_indices(&keep, layout.inner));
            Op::Dense(d)
        }
        other => other,
    };
    (op, not_foldable)
}

/// Equal up to rounding: the same constant computed at different positions.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

/// Indices `[c·inner, (c+1)·inner)` for each kept channel `c`, in order.
fn block_indices(keep: &[usize], inner: usize) -> Vec<usize> {
    keep.iter()
        .flat_map(|&c| c * inner..(c + 1) * inner)
        .collect()
}

/// The layer with only the kept filters/neurons.
fn keep_columns(op: &Op, keep: &[usize]) -> Op {
    match op {
        Op::Conv(conv) => {
            let mut conv = conv.clone();
            conv.weight = conv.weight.select(Axis(0), keep);
            conv.bias = conv.bias.select(Axis(0), keep);
            Op::Conv(conv)
        }
        Op::Dense(d) => {
            let mut d = d.clone();
            d.weight = d.weight.select(Axis(1), keep);
            d.bias = d.bias.select(Axis(0), keep);
            Op::Dense(d)
        }
        _ => unreachable!("only linear layers are compressed"),
    }
}

/// An op between the two layers with its per-channel parameters cut to the
/// kept channels (`None`: it has none). `shape` is the op's output shape.
fn keep_channels(
    op: &Op,
    shape: &Shape,
    layout: Layout,
    keep: &[usize],
    width: usize,
) -> Option<Op> {
    match op {
        Op::BatchNorm(bn) => {
            let mut bn = bn.clone();
            for v in [&mut bn.scale, &mut bn.bias, &mut bn.mean, &mut bn.var] {
                *v = v.select(Axis(0), keep);
            }
            Some(Op::BatchNorm(bn))
        }
        Op::AddConst(c) | Op::MulConst(c) => {
            // Broadcasting aligns axes on the right.
            let offset = shape.rank().checked_sub(c.ndim())?;
            let axis = layout.axis.checked_sub(offset)?;
            if c.shape()[axis] == 1 {
                return None;
            }
            let sliced = c.select(Axis(axis), &block_indices(keep, layout.inner));
            Some(match op {
                Op::AddConst(_) => Op::AddConst(sliced),
                _ => Op::MulConst(sliced),
            })
        }
        Op::Reshape(s) => {
            let n = s.numel() / width * keep.len();
            Some(Op::Reshape(Shape::new([n])))
        }
        _ => None,
    }
}

/// [`compress`] as a pipeline pass (`compress`).
pub struct Compress;

impl Pass for Compress {
    fn name(&self) -> &'static str {
        "compress"
    }

    fn run(&mut self, graph: &mut Graph) -> Result<PassReport, PassError> {
        let outcome = compress(graph)?;
        let mut report = PassReport::default();
        for l in &outcome.removed {
            report.change(format!(
                "{}: {} -> {} filters/neurons; inputs of {} removed, constants folded into its bias",
                l.layer, l.units_before, l.units_after, l.next
            ));
        }
        for k in &outcome.kept {
            report.change(format!(
                "{}: kept {} all-zero filters/neurons: {}",
                k.layer, k.count, k.reason
            ));
        }
        Ok(report)
    }
}
