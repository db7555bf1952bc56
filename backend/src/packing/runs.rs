//! Runs of linear ops, the unit both slot packings lower: a run starts at a
//! linear node and takes its single user while that is linear and the run
//! has at most one weight layer. A run is one affine map on flat elements,
//! read off by the interpreter, so a packing lowers convolutions, pools and
//! dense layers alike (conv-to-dense, implicitly).

use std::collections::{HashMap, HashSet};

use hepack_ir::{Graph, NodeId, Op};
use hepack_passes::prune::{linear_layers, LayerWeights};
use hepack_passes::PassError;
use ndarray::{ArrayD, IxDyn};

/// Ops a run of linear layers may hold.
pub(crate) fn is_linear(op: &Op) -> bool {
    matches!(
        op,
        Op::Conv(_)
            | Op::Dense(_)
            | Op::AddConst(_)
            | Op::MulConst(_)
            | Op::AvgPool(_)
            | Op::GlobalAvgPool
            | Op::BatchNorm(_)
            | Op::SumPool(_)
            | Op::Patches(_)
            | Op::Transpose(_)
            | Op::Flatten
            | Op::Reshape(_)
            | Op::Dropout { .. }
            | Op::Identity
    )
}

/// Ops that only move elements: a run of them costs nothing.
pub(crate) fn is_relabel(op: &Op) -> bool {
    matches!(
        op,
        Op::Transpose(_) | Op::Flatten | Op::Reshape(_) | Op::Dropout { .. } | Op::Identity
    )
}

/// The runs of linear ops, each keyed by its last node: a run starts at a
/// linear node and takes its single user while that is linear and the run
/// has no second weight layer (composing two would trade a level for a
/// dense matrix with many more diagonals). Interior nodes have no other
/// reader.
pub(crate) fn runs(graph: &Graph) -> HashMap<NodeId, Vec<NodeId>> {
    let mut taken: HashSet<NodeId> = HashSet::new();
    let mut runs = HashMap::new();
    for id in graph.topo_order() {
        if taken.contains(&id) || !is_linear(&graph.node(id).op) {
            continue;
        }
        let mut run = vec![id];
        let mut weights = usize::from(graph.node(id).op.is_linear_layer());
        let mut cur = id;
        while let Some(u) = graph.single_user(cur) {
            let op = &graph.node(u).op;
            if !is_linear(op) || (op.is_linear_layer() && weights > 0) {
                break;
            }
            weights += usize::from(op.is_linear_layer());
            run.push(u);
            cur = u;
        }
        taken.extend(run.iter().copied());
        runs.insert(cur, run);
    }
    runs
}

/// Where a run of relabelling ops sends each element: output element `e`
/// is input element `source[e]`.
pub(crate) fn relabel_sources(graph: &Graph, run: &[NodeId]) -> Vec<usize> {
    let in_shape = &graph.node(graph.operands(run[0])[0]).shape;
    let mut dims = vec![1];
    dims.extend_from_slice(in_shape.dims());
    let mut x = ArrayD::from_shape_fn(IxDyn(&dims), |_| 0.0);
    for (i, v) in x.iter_mut().enumerate() {
        *v = i as f64;
    }
    for &id in run {
        x = hepack_ir::interp::eval_node(graph, id, x);
    }
    x.iter().map(|&v| v as usize).collect()
}

/// An affine map on flat elements: `y[o] = Σ w · x[i] + bias[o]`.
pub(crate) struct Affine {
    /// Per output element, its (input element, weight) terms.
    pub rows: Vec<Vec<(usize, f64)>>,
    /// Per output element, the map at the zero input.
    pub bias: Vec<f64>,
}

/// The affine map a run computes, read off by running it on the zero
/// input and on each basis vector (in chunks, to bound memory). In a naive
/// count every weight of the run's layers counts as non-zero.
pub(crate) fn run_affine(graph: &Graph, run: &[NodeId], naive: bool) -> Affine {
    // Only a naive count edits weights, and so needs its own copy.
    let g = if naive {
        let mut g = graph.clone();
        for &id in run {
            match &mut g.node_mut(id).op {
                Op::Conv(c) => c.weight.mapv_inplace(|w| if w == 0.0 { 1.0 } else { w }),
                Op::Dense(d) => d.weight.mapv_inplace(|w| if w == 0.0 { 1.0 } else { w }),
                _ => {}
            }
        }
        std::borrow::Cow::Owned(g)
    } else {
        std::borrow::Cow::Borrowed(graph)
    };
    let in_shape = g.node(g.operands(run[0])[0]).shape.clone();
    let n_in = in_shape.numel();
    let n_out = g.node(*run.last().expect("non-empty")).shape.numel();
    let apply = |x: ArrayD<f64>| -> ArrayD<f64> {
        let mut x = x;
        for &id in run {
            x = hepack_ir::interp::eval_node(&g, id, x);
        }
        x
    };
    let batch = |rows: usize| {
        let mut dims = vec![rows];
        dims.extend_from_slice(in_shape.dims());
        ArrayD::<f64>::zeros(IxDyn(&dims))
    };
    let zero = apply(batch(1));
    let bias: Vec<f64> = zero.iter().copied().collect();
    let mut rows: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n_out];
    const CHUNK: usize = 256;
    for start in (0..n_in).step_by(CHUNK) {
        let len = CHUNK.min(n_in - start);
        let mut x = batch(len);
        {
            let flat = x.as_slice_mut().expect("standard layout");
            for j in 0..len {
                flat[j * n_in + start + j] = 1.0;
            }
        }
        let y = apply(x);
        let y = y.as_standard_layout();
        let y = y.as_slice().expect("standard layout");
        for j in 0..len {
            for (o, row) in rows.iter_mut().enumerate() {
                let w = y[j * n_out + o] - bias[o];
                if w != 0.0 {
                    row.push((start + j, w));
                }
            }
        }
    }
    Affine { rows, bias }
}

/// Calls `f(cell, a, b)` for every use of every weight of layer `id`: cell
/// `[r, c]` of W̄ multiplies the layer's input element `b` into its output
/// element `a`.
pub(crate) fn for_each_use(graph: &Graph, id: NodeId, mut f: impl FnMut([usize; 2], usize, usize)) {
    let input = &graph.node(graph.operands(id)[0]).shape;
    match &graph.node(id).op {
        Op::Conv(conv) => {
            let (filters, channels, kh, kw) = conv.weight.dim();
            let (h, w) = (input.dims()[1], input.dims()[2]);
            let out = graph.node(id).shape.dims();
            let (oh, ow) = (out[1], out[2]);
            for fi in 0..filters {
                for ch in 0..channels {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let row = (ch * kh + ky) * kw + kx;
                            for oy in 0..oh {
                                let iy = (oy * conv.strides[0] + ky * conv.dilations[0])
                                    .checked_sub(conv.pads[0]);
                                let Some(iy) = iy.filter(|&y| y < h) else {
                                    continue;
                                };
                                for ox in 0..ow {
                                    let ix = (ox * conv.strides[1] + kx * conv.dilations[1])
                                        .checked_sub(conv.pads[1]);
                                    let Some(ix) = ix.filter(|&x| x < w) else {
                                        continue;
                                    };
                                    let a = (fi * oh + oy) * ow + ox;
                                    let b = (ch * h + iy) * w + ix;
                                    f([row, fi], a, b);
                                }
                            }
                        }
                    }
                }
            }
        }
        Op::Dense(d) => {
            let (k, n) = d.weight.dim();
            for r in 0..input.numel() / k {
                for i in 0..k {
                    for o in 0..n {
                        f([i, o], r * n + o, r * k + i);
                    }
                }
            }
        }
        _ => unreachable!("linear_layers returns conv and dense layers only"),
    }
}

/// Cells grouped so that cells sharing a key (after `group`) are in one
/// group: the connected components of cells and keys, each group's cells
/// ascending, groups by their first cell. A packing's units are these
/// groups over the packed pieces (diagonals, tiles) each weight lands on.
pub(crate) fn partition<K: Copy + Eq + std::hash::Hash>(
    cells: &[Vec<K>],
    group: impl Fn(K) -> K,
) -> Vec<Vec<usize>> {
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut parent: Vec<usize> = (0..cells.len()).collect();
    let mut first: HashMap<K, usize> = HashMap::new();
    for (cell, keys) in cells.iter().enumerate() {
        for &key in keys {
            let owner = *first.entry(group(key)).or_insert(cell);
            let (a, b) = (root(&mut parent, owner), root(&mut parent, cell));
            if a != b {
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut members: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for cell in 0..cells.len() {
        let r = root(&mut parent, cell);
        members.entry(r).or_default().push(cell);
    }
    members.into_values().collect()
}

/// `graph`'s linear layers as the compiler will lay them out: `planned`
/// lays out the graph after the HE-friendly pipeline `hepack compile` runs
/// (which drops a softmax kept for training, replaces ReLUs, may fuse
/// linear layers), and its layers are matched back by name and shape (the
/// units are structural) and given `graph`'s weights.
pub(crate) fn compiled_layers<L>(
    graph: &Graph,
    packing: &str,
    planned: impl FnOnce(&Graph) -> Result<Vec<L>, PassError>,
    weights: impl Fn(&mut L) -> &mut LayerWeights,
) -> Result<Vec<L>, PassError> {
    let mut g = graph.clone();
    hepack_passes::pipeline("he-friendly", &hepack_passes::PassOptions::default())?
        .run(&mut g, |_, _| {})?;
    let mut planned = planned(&g)?;
    linear_layers(graph)
        .into_iter()
        .map(|w| {
            let at = planned
                .iter_mut()
                .position(|p| {
                    let p = weights(p);
                    p.name == w.name && p.matrix.dim() == w.matrix.dim()
                })
                .ok_or_else(|| {
                    PassError::Prune(format!(
                        "{packing} units of '{}': the HE-friendly pipeline `hepack compile` runs changes this layer (fuses it with another, or reshapes it), so its units cannot be read off the compiled layout; prune the model `hepack export` writes, whose layers are the compiled ones",
                        w.name
                    ))
                })?;
            let mut l = planned.swap_remove(at);
            *weights(&mut l) = w;
            Ok(l)
        })
        .collect()
}

/// How many nodes read each node's value, in `order` (a run's readers are
/// its first node's).
pub(crate) fn reader_counts(graph: &Graph, order: &[NodeId]) -> HashMap<NodeId, usize> {
    let mut counts: HashMap<NodeId, usize> = order.iter().map(|&id| (id, 0)).collect();
    for &id in order {
        for o in graph.operands(id) {
            *counts.get_mut(&o).expect("operands are nodes") += 1;
        }
    }
    counts
}

/// After lowering `id` (a run's last node, or any node outside runs): the
/// values it read whose last reader it was, output nodes excepted; their
/// counts in `left` go down.
pub(crate) fn released(
    graph: &Graph,
    runs: &HashMap<NodeId, Vec<NodeId>>,
    id: NodeId,
    left: &mut HashMap<NodeId, usize>,
) -> Vec<NodeId> {
    let reads = match runs.get(&id) {
        Some(run) => graph.operands(run[0]),
        None => graph.operands(id),
    };
    reads
        .into_iter()
        .filter(|o| {
            let n = left.get_mut(o).expect("counted");
            *n -= 1;
            *n == 0 && !graph.is_output(*o)
        })
        .collect()
}

/// The run each node of `runs` is in, as the run's last node.
pub(crate) fn run_ends(runs: &HashMap<NodeId, Vec<NodeId>>) -> HashMap<NodeId, NodeId> {
    runs.iter()
        .flat_map(|(&end, run)| run.iter().map(move |&n| (n, end)))
        .collect()
}

/// Per cell of `weights`' W̄ (row-major), the distinct keys `key(o, i)`,
/// ascending, of every (run output `o`, run input `i`) pair the cell's
/// weight multiplies: its uses ([`for_each_use`]) carried through the
/// linear ops before and after the layer in `run`.
pub(crate) fn run_cells<K: Ord + Copy>(
    graph: &Graph,
    run: &[NodeId],
    weights: &LayerWeights,
    key: impl Fn(usize, usize) -> K,
) -> Vec<Vec<K>> {
    let w = run
        .iter()
        .position(|&n| n == weights.id)
        .expect("the layer is in its run");
    let pre = (w > 0).then(|| run_affine(graph, &run[..w], false));
    let post = (w + 1 < run.len()).then(|| run_affine(graph, &run[w + 1..], false));
    let mut readers: Vec<Vec<usize>> = Vec::new();
    if let Some(post) = &post {
        readers = vec![Vec::new(); graph.node(weights.id).shape.numel()];
        for (o, row) in post.rows.iter().enumerate() {
            for &(a, _) in row {
                readers[a].push(o);
            }
        }
    }
    let f = weights.matrix.ncols();
    let mut cells: Vec<std::collections::BTreeSet<K>> =
        vec![Default::default(); weights.matrix.len()];
    for_each_use(graph, weights.id, |[r, c], a, b| {
        let outs: &[usize] = match &post {
            Some(_) => &readers[a],
            None => std::slice::from_ref(&a),
        };
        let ins: Vec<usize> = match &pre {
            Some(pre) => pre.rows[b].iter().map(|&(i, _)| i).collect(),
            None => vec![b],
        };
        for &o in outs {
            for &i in &ins {
                cells[r * f + c].insert(key(o, i));
            }
        }
    });
    cells.into_iter().map(|s| s.into_iter().collect()).collect()
}
