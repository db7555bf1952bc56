//! Diagonal packing (GAZELLE, LoLa, Hunter, Artemis): one sample's tensor in
//! the slots of one ciphertext, or of as many as it needs, and several
//! samples side by side when one fills a small part of the slots.
//!
//! A run of linear ops (at most one Conv or Dense, with the pools, scalings
//! and reshapes around it) is one matrix `M` from input slots to output
//! slots, lowered as `Σ_k d_k ⊙ rot(x, k)` over its non-zero generalised
//! diagonals `d_k[s] = M[s, s + k]`, with a baby-step giant-step split:
//! `k = g·n₁ + b`, the baby rotations `rot(x, b)` shared by every output
//! ciphertext, the diagonals pre-rotated by `−g·n₁` at compile time, one
//! giant rotation per partial sum. Outputs of spatial layers stay in their
//! input's grid (valid positions only), strided as the run strides it, with
//! output channels multiplexed into the gaps a stride leaves, which keeps a
//! convolution's diagonals to about `(C_in + C_out − 1) × taps`
//! (`../shared/PACKINGS.md` §1); a grid that would need more ciphertexts
//! than a compact vector gives way to one. A map into a compact vector from
//! one clean ciphertext (a dense layer, a convolution to 1×1) is
//! Halevi–Shoup's hybrid (`Lowerer::hybrid`) where that has fewer
//! diagonals, whatever the input's layout.
//! Every slot no element names is exactly zero where a value can reach the
//! client: diagonals, biases and polynomial shifts touch only the slots of
//! elements, and a hybrid's partial sums are cleared by the next weighted
//! map (planning keeps hybrids away from outputs; the simulator checks it).
//!
//! Values carry a pending public factor per ciphertext and a pending public
//! offset per element, as batch packing's abstract values do, so biases,
//! polynomial constants and pruned (constant) elements cost nothing until a
//! layer folds them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use hepack_ir::{Graph, NodeId, Op, Shape};
use hepack_passes::prune::{PackedLayer, Packing};
use ndarray::{ArrayD, Axis, IxDyn};

use crate::builder::{compose, Builder, Ct, Enc};
use crate::error::BackendError;
use crate::program::{OutputElement, SlotLayout, SlotRef};
use crate::{Lowered, Lowering};

pub mod gazelle;
pub mod units;

pub use units::DiagonalUnit;

/// One sample's activations in the slots of a ciphertext, linear layers as
/// slot diagonals with baby-step giant-step rotations.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiagonalPacking {
    /// The pruning unit ([`units`]); lowering does not depend on it.
    pub unit: DiagonalUnit,
}

impl Packing for DiagonalPacking {
    fn name(&self) -> &'static str {
        "diagonal"
    }

    fn layers(&self, graph: &Graph) -> Result<Vec<PackedLayer>, hepack_passes::PassError> {
        units::packed_layers(graph, self.unit)
    }
}

impl Lowering for DiagonalPacking {
    fn lower_with(&self, graph: &Graph, b: &mut Builder) -> Result<Lowered, BackendError> {
        lower(graph, b)
    }
}

/// Ops a run of linear layers may hold.
fn is_linear(op: &Op) -> bool {
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
fn is_relabel(op: &Op) -> bool {
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
fn runs(graph: &Graph) -> HashMap<NodeId, Vec<NodeId>> {
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

/// Where each weight layer's ops are counted: the name of its run's last
/// node (a run's ops are emitted as that node's), by the layer's name.
pub fn op_rows(graph: &Graph) -> HashMap<String, String> {
    runs(graph)
        .into_iter()
        .flat_map(|(end, run)| {
            let row = graph.node(end).name.to_string();
            run.into_iter()
                .filter(|&n| graph.node(n).op.is_linear_layer())
                .map(move |n| (graph.node(n).name.to_string(), row.clone()))
        })
        .collect()
}

/// A regular grid of `[C, H, W]` values. Channels come in groups of
/// `mux[0]·mux[1]` that share a block of `channel` slots, each in its own
/// gap of a strided grid (Orion's multiplexed packing: a stride-2 pool
/// leaves three of every four positions free for three more channels):
/// channel `c` is in group `c / m` (m channels to a group), ciphertext
/// `group / per_ct`, from slot `(group % per_ct) · channel`; within the group
/// the j-th channel is offset by `(j / mux[1]) · unit[0] + (j % mux[1]) ·
/// unit[1]`, and `(y, x)` sits at `y · row + x · col`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Grid {
    per_ct: usize,
    channel: usize,
    row: usize,
    col: usize,
    mux: [usize; 2],
    unit: [usize; 2],
}

impl Grid {
    /// Channels to a block.
    fn group(&self) -> usize {
        self.mux[0] * self.mux[1]
    }

    fn place(&self, c: usize, y: usize, x: usize) -> SlotRef {
        let (group, j) = (c / self.group(), c % self.group());
        let gap = (j / self.mux[1]) * self.unit[0] + (j % self.mux[1]) * self.unit[1];
        SlotRef {
            ct: (group / self.per_ct) as u32,
            slot: ((group % self.per_ct) * self.channel + gap + y * self.row + x * self.col) as u32,
        }
    }

    /// The layout of a `[C, H, W]` (or `[C]`, with H = W = 1) tensor on it,
    /// if every position stays inside its block and no two coincide.
    fn layout(&self, shape: &Shape) -> Option<Layout> {
        let (c, h, w) = match *shape.dims() {
            [c, h, w] => (c, h, w),
            [c] => (c, 1, 1),
            _ => return None,
        };
        let mut at = Vec::with_capacity(c * h * w);
        let mut seen = HashSet::with_capacity(c * h * w);
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let r = self.place(ch, y, x);
                    let group = ch / self.group();
                    let start = (group % self.per_ct) * self.channel;
                    if (r.slot as usize) >= start + self.channel || !seen.insert(r) {
                        return None;
                    }
                    at.push(r);
                }
            }
        }
        Some(Layout {
            cts: c.div_ceil(self.group()).div_ceil(self.per_ct),
            at,
            grid: (shape.rank() == 3).then_some(*self),
        })
    }

    /// The grid a strided op (strides `[sh, sw]`) writes on: positions
    /// `s` times further apart, its output channels multiplexed into the
    /// gaps between them; a stride of 1 keeps the grid.
    fn strided(&self, strides: [usize; 2]) -> Grid {
        if strides == [1, 1] {
            return *self;
        }
        Grid {
            row: self.row * strides[0],
            col: self.col * strides[1],
            mux: strides,
            unit: [self.row, self.col],
            ..*self
        }
    }
}

/// Where one sample's tensor sits: flat element `e` at `at[e]`.
#[derive(Clone, Debug, PartialEq)]
struct Layout {
    cts: usize,
    at: Vec<SlotRef>,
    grid: Option<Grid>,
}

impl Layout {
    /// Elements one after another, `block` to a ciphertext.
    fn compact(n: usize, block: usize) -> Layout {
        Layout {
            cts: n.div_ceil(block).max(1),
            at: (0..n)
                .map(|e| SlotRef {
                    ct: (e / block) as u32,
                    slot: (e % block) as u32,
                })
                .collect(),
            grid: None,
        }
    }

    /// A model input: channels on a grid if `[C, H, W]` and a channel fits
    /// a block, else compact. The grid's rows and channels are padded to
    /// powers of two where that takes no more ciphertexts: the steps
    /// between rows and channels are then powers of two, which the key
    /// budget keeps (LeNet-5: 308 → 219 rotations at 72 keys).
    fn input(shape: &Shape, block: usize) -> Layout {
        if let [_, h, w] = *shape.dims() {
            let grid = |row: usize, channel: usize| Grid {
                per_ct: block / channel,
                channel,
                row,
                col: 1,
                mux: [1, 1],
                unit: [0, 0],
            };
            if h * w <= block && h * w > 0 {
                let tight = grid(w, h * w).layout(shape);
                let row = w.next_power_of_two();
                let channel = (h * row).next_power_of_two();
                let padded = (channel <= block)
                    .then(|| grid(row, channel).layout(shape))
                    .flatten();
                match (tight, padded) {
                    (Some(t), Some(p)) if p.cts <= t.cts => return p,
                    (Some(t), _) => return t,
                    _ => {}
                }
            }
        }
        Layout::compact(shape.numel(), block)
    }

    /// The elements of each ciphertext.
    fn elements_by_ct(&self) -> Vec<Vec<usize>> {
        let mut by = vec![Vec::new(); self.cts];
        for (e, r) in self.at.iter().enumerate() {
            by[r.ct as usize].push(e);
        }
        by
    }

    /// Slots one sample uses: the highest slot plus one (a block when the
    /// tensor spans several ciphertexts).
    fn extent(&self, block: usize) -> usize {
        if self.cts > 1 {
            return block;
        }
        self.at
            .iter()
            .map(|r| r.slot as usize + 1)
            .max()
            .unwrap_or(1)
    }
}

/// The layout a run's output takes: on its input's grid, strided as the
/// run's pools and convolutions stride it, when every op keeps a grid and
/// the result fits; else compact.
fn run_layout(graph: &Graph, run: &[NodeId], input: &Layout, block: usize) -> Layout {
    // The run's strides, composed; the output lands on the input's grid
    // strided by them (positions of one output channel are then its
    // windows' corners, and every (input, output, tap) triple has one
    // offset).
    let mut stride = [1usize, 1];
    let mut grid = input.grid;
    for &id in run {
        let node = graph.node(id);
        match &node.op {
            Op::Conv(c) => stride = [stride[0] * c.strides[0], stride[1] * c.strides[1]],
            Op::SumPool(p) | Op::AvgPool(hepack_ir::AvgPool { pool: p, .. }) => {
                stride = [stride[0] * p.strides[0], stride[1] * p.strides[1]]
            }
            Op::GlobalAvgPool
            | Op::MulConst(_)
            | Op::AddConst(_)
            | Op::BatchNorm(_)
            | Op::Identity
            | Op::Dropout { .. } => {}
            _ => grid = None,
        }
    }
    let grid = grid.map(|g| g.strided(stride));
    let shape = &graph.node(*run.last().expect("a run has a node")).shape;
    let compact = Layout::compact(shape.numel(), block);
    // A grid that needs more ciphertexts than packing the values tightly
    // (a convolution to 1×1, a wide layer on a sparse grid) spreads every
    // later layer's diagonals over them: pack tightly instead.
    match grid.and_then(|g| g.layout(shape)) {
        Some(l) if l.cts <= compact.cts => l,
        _ => compact,
    }
}

/// Where a run of relabelling ops sends each element: output element `e`
/// is input element `source[e]`.
fn relabel_sources(graph: &Graph, run: &[NodeId]) -> Vec<usize> {
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

/// The layouts of every node's value for a given block, and the block.
struct Plan {
    block: usize,
    layouts: HashMap<NodeId, Layout>,
    hybrid: HashMap<NodeId, (usize, usize)>,
    runs: HashMap<NodeId, Vec<NodeId>>,
    /// Where the nodes that only move elements take each one from.
    sources: HashMap<NodeId, Vec<usize>>,
}

/// What planning decides for one block size.
struct Layouts {
    layouts: HashMap<NodeId, Layout>,
    /// Runs lowered as Halevi–Shoup hybrids ([`Lowerer::hybrid`]), by their
    /// last node: the padded input and output lengths `(m, p)`.
    hybrid: HashMap<NodeId, (usize, usize)>,
}

impl Layouts {
    /// Slots one sample needs with blocks of `block`: its layouts' extents,
    /// and twice a hybrid's padded input (the hybrid repeats it once).
    fn extent(&self, block: usize) -> usize {
        self.layouts
            .values()
            .map(|l| l.extent(block))
            .chain(self.hybrid.values().map(|&(m, _)| 2 * m))
            .max()
            .unwrap_or(1)
    }
}

/// The values that can reach an output without passing a weighted run
/// (which reads only elements' slots, and so leaves unnamed slots zero): a
/// hybrid's partial sums must not get there.
fn exposed(graph: &Graph, runs: &HashMap<NodeId, Vec<NodeId>>) -> HashSet<NodeId> {
    let heads: HashMap<NodeId, NodeId> = runs.iter().map(|(&end, run)| (run[0], end)).collect();
    let mut exposed = HashSet::new();
    for id in graph.topo_order().into_iter().rev() {
        let reaches = graph.is_output(id)
            || graph.users(id).into_iter().any(|u| match heads.get(&u) {
                Some(&end) => {
                    runs[&end].iter().all(|&n| is_relabel(&graph.node(n).op))
                        && exposed.contains(&end)
                }
                None => exposed.contains(&u),
            });
        if reaches {
            exposed.insert(id);
        }
    }
    exposed
}

/// Which input elements each output element of a run reads (every weight
/// taken as non-zero, so that planning depends on the model's structure,
/// not on what pruning zeroed), read once per run and kept across the
/// block sizes planning tries.
#[derive(Default)]
struct Structure {
    reads: HashMap<NodeId, Vec<Vec<usize>>>,
}

impl Structure {
    /// The non-zero generalised diagonals the run's matrix has from
    /// `input` to `out` ([`Lowerer::linear`]'s count).
    fn diagonals(
        &mut self,
        graph: &Graph,
        run: &[NodeId],
        (input, out): (&Layout, &Layout),
        slots: usize,
    ) -> usize {
        let end = *run.last().expect("a run has a node");
        let reads = self.reads.entry(end).or_insert_with(|| {
            run_affine(graph, run, true)
                .rows
                .into_iter()
                .map(|row| row.into_iter().map(|(i, _)| i).collect())
                .collect()
        });
        let mut keys: HashSet<(u32, u32, i64)> = HashSet::new();
        for (o, row) in reads.iter().enumerate() {
            let to = out.at[o];
            for &i in row {
                let from = input.at[i];
                keys.insert((to.ct, from.ct, offset(from, to, slots)));
            }
        }
        keys.len()
    }
}

fn plan_for(
    graph: &Graph,
    runs: &HashMap<NodeId, Vec<NodeId>>,
    sources: &HashMap<NodeId, Vec<usize>>,
    structure: &mut Structure,
    block: usize,
    slots: usize,
) -> Result<Layouts, BackendError> {
    let mut layouts: HashMap<NodeId, Layout> = HashMap::new();
    let mut dirty: HashMap<NodeId, bool> = HashMap::new();
    let mut hybrid = HashMap::new();
    let exposed = exposed(graph, runs);
    let in_run: HashSet<NodeId> = runs.values().flatten().copied().collect();
    for id in graph.topo_order() {
        let node = graph.node(id);
        if in_run.contains(&id) && !runs.contains_key(&id) {
            continue;
        }
        let operands = graph.operands(id);
        // A run's own operand is its previous node; its value is decided below.
        let mut is_dirty = operands.iter().any(|o| dirty.get(o) == Some(&true));
        let layout = if let Op::Input = node.op {
            Layout::input(&node.shape, block)
        } else if let Some(run) = runs.get(&id) {
            let source = graph.operands(run[0])[0];
            let input = &layouts[&source];
            if let Some(moved) = sources.get(&id) {
                is_dirty = dirty[&source];
                Layout {
                    cts: input.cts,
                    at: moved.iter().map(|&s| input.at[s]).collect(),
                    grid: None,
                }
            } else {
                let out = run_layout(graph, run, input, block);
                let n_out = out.at.len();
                let (m, p) = (
                    input.extent(slots).next_power_of_two(),
                    n_out.next_power_of_two(),
                );
                // Decided on the whole slot vector, so that every block
                // size plans the same ops; the diagonals are counted last,
                // as they need the run's matrix.
                if input.cts == 1
                    && !dirty[&source]
                    && !exposed.contains(&id)
                    && out.grid.is_none()
                    && p <= m
                    && 2 * m <= slots
                    && p < structure.diagonals(graph, run, (input, &out), slots)
                {
                    hybrid.insert(id, (m, p));
                    is_dirty = true;
                    Layout {
                        cts: 1,
                        at: (0..n_out)
                            .map(|o| SlotRef {
                                ct: 0,
                                slot: (m - p + o) as u32,
                            })
                            .collect(),
                        grid: None,
                    }
                } else {
                    is_dirty = false;
                    out
                }
            }
        } else {
            match &node.op {
                Op::Polynomial(_) | Op::Activation(_) | Op::Add => layouts[&operands[0]].clone(),
                Op::Concat(_) => concat_layout(graph, id, &sources[&id], &layouts),
                op => {
                    return Err(BackendError::NotHeFriendly {
                        layer: node.name.to_string(),
                        op: op.name(),
                    })
                }
            }
        };
        dirty.insert(id, is_dirty);
        layouts.insert(id, layout);
    }
    Ok(Layouts { layouts, hybrid })
}

/// Where a concatenation takes each element from: an index into its
/// operands' elements, laid one operand after another.
fn concat_sources(graph: &Graph, id: NodeId, axis: usize) -> Vec<usize> {
    let mut start = 0;
    let ids: Vec<ArrayD<f64>> = graph
        .operands(id)
        .into_iter()
        .map(|o| {
            let mut a = ArrayD::zeros(IxDyn(graph.node(o).shape.dims()));
            for (i, v) in a.iter_mut().enumerate() {
                *v = (start + i) as f64;
            }
            start += a.len();
            a
        })
        .collect();
    let views: Vec<_> = ids.iter().map(|a| a.view()).collect();
    let joined = ndarray::concatenate(Axis(axis), &views).expect("shapes checked when added");
    joined.iter().map(|&i| i as usize).collect()
}

/// The nodes that only move elements (runs of relabelling ops, by their
/// last node, and concatenations), each with where every element comes
/// from ([`relabel_sources`], [`concat_sources`]).
fn sources(graph: &Graph, runs: &HashMap<NodeId, Vec<NodeId>>) -> HashMap<NodeId, Vec<usize>> {
    let mut sources: HashMap<NodeId, Vec<usize>> = runs
        .iter()
        .filter(|(_, run)| run.iter().all(|&n| is_relabel(&graph.node(n).op)))
        .map(|(&end, run)| (end, relabel_sources(graph, run)))
        .collect();
    for id in graph.topo_order() {
        if let Op::Concat(axis) = graph.node(id).op {
            sources.insert(id, concat_sources(graph, id, axis));
        }
    }
    sources
}

/// A concatenation keeps every operand where it is, in ciphertexts of its
/// own: operand j's ciphertexts come after those of operands before it.
fn concat_layout(
    graph: &Graph,
    id: NodeId,
    sources: &[usize],
    layouts: &HashMap<NodeId, Layout>,
) -> Layout {
    let mut first_ct = 0u32;
    let mut places: Vec<SlotRef> = Vec::new();
    for o in graph.operands(id) {
        let l = &layouts[&o];
        places.extend(l.at.iter().map(|r| SlotRef {
            ct: r.ct + first_ct,
            slot: r.slot,
        }));
        first_ct += l.cts as u32;
    }
    Layout {
        cts: first_ct as usize,
        at: sources.iter().map(|&i| places[i]).collect(),
        grid: None,
    }
}

/// Plan with the whole slot vector as the block, then shrink the block to
/// the smallest power of two every layout fits in, so that several samples
/// share a ciphertext.
fn plan(graph: &Graph, slots: usize) -> Result<Plan, BackendError> {
    let runs = runs(graph);
    let sources = sources(graph, &runs);
    // Plan on the whole slot vector, then on the smallest block that plan
    // fits in. A smaller block can change layouts (a grid split over more
    // ciphertexts gives way to a compact vector, which may make a dense map
    // a hybrid that needs more room), so double the block until the plan
    // made for it fits it; the whole slot vector always does.
    let mut structure = Structure::default();
    let wide = plan_for(graph, &runs, &sources, &mut structure, slots, slots)?;
    let mut block = wide.extent(slots).next_power_of_two().min(slots);
    let planned = loop {
        if block == slots {
            break wide;
        }
        let planned = plan_for(graph, &runs, &sources, &mut structure, block, slots)?;
        if planned.extent(block) <= block {
            break planned;
        }
        block *= 2;
    };
    Ok(Plan {
        block,
        layouts: planned.layouts,
        hybrid: planned.hybrid,
        runs,
        sources,
    })
}

/// One sample's tensor as lowering sees it: per ciphertext, nothing (all
/// slots zero) or a ciphertext with a pending public factor; per element, a
/// pending public offset. Element `e` is `mult · slot + offsets[e]`.
#[derive(Clone, Debug)]
struct Packed {
    cts: Vec<Option<Enc>>,
    offsets: Vec<f64>,
    /// Slots no element names may hold partial sums (after a hybrid dense
    /// map); the next weighted map reads only elements' slots and cleans it.
    dirty: bool,
}

/// An affine map on flat elements: `y[o] = Σ w · x[i] + bias[o]`.
struct Affine {
    rows: Vec<Vec<(usize, f64)>>,
    bias: Vec<f64>,
}

/// The affine map a run computes, read off by running it on the zero
/// input and on each basis vector (in chunks, to bound memory). In a naive
/// count every weight of the run's layers counts as non-zero.
fn run_affine(graph: &Graph, run: &[NodeId], naive: bool) -> Affine {
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

/// The baby-step count `n₁` (a power of two) whose rotations take the
/// least time at `times` for the diagonals `keys` (output ciphertext,
/// input ciphertext, offset): the distinct non-zero baby steps of each
/// input ciphertext, hoisted when there are two or more (one
/// decomposition, then each at the hoisted price), and the distinct
/// non-zero giant steps of each output ciphertext at SEAL's. Products do
/// not depend on `n₁` (one per diagonal). Ties go to fewer distinct steps,
/// which is fewer Galois keys.
fn baby_step_count(
    times: &crate::cost::OpTimes,
    block: usize,
    keys: impl Iterator<Item = (u32, u32, i64)> + Clone,
) -> i64 {
    let t = times;
    let rotate = t.seconds[crate::program::kind_index("rotate").expect("a kind")];
    let mut best: Option<((f64, usize), i64)> = None;
    let mut n1 = 1i64;
    while n1 <= block as i64 * 2 {
        let mut babies: BTreeSet<(u32, i64)> = BTreeSet::new();
        let mut giants: BTreeSet<(u32, i64)> = BTreeSet::new();
        for (to, from, k) in keys.clone() {
            let (g, b) = (k.div_euclid(n1), k.rem_euclid(n1));
            if b != 0 {
                babies.insert((from, b));
            }
            if g != 0 {
                giants.insert((to, g));
            }
        }
        let mut per_input: BTreeMap<u32, usize> = BTreeMap::new();
        for &(from, _) in &babies {
            *per_input.entry(from).or_default() += 1;
        }
        let baby_time: f64 = per_input
            .values()
            .map(|&n| match n {
                1 => rotate,
                n => t.decompose + n as f64 * t.hoisted_rotate,
            })
            .sum();
        let time = baby_time + giants.len() as f64 * rotate;
        let steps: BTreeSet<i64> = babies
            .iter()
            .map(|&(_, b)| b)
            .chain(giants.iter().map(|&(_, g)| g * n1))
            .collect();
        let key = (time, steps.len());
        if best.is_none_or(|(b, _)| key.0 < b.0 || (key.0 == b.0 && key.1 < b.1)) {
            best = Some((key, n1));
        }
        n1 *= 2;
    }
    best.map_or(1, |(_, n1)| n1)
}

/// The diagonal that carries input slot `from` to output slot `to`: the
/// rotation `k` with `rot(x, k)[to] = x[from]`, in `[0, slots)`. Rotations
/// are cyclic, so offsets a whole vector apart are one diagonal (a sample
/// that fills the slots reads blocks both before and after its outputs).
fn offset(from: SlotRef, to: SlotRef, slots: usize) -> i64 {
    (i64::from(from.slot) - i64::from(to.slot)).rem_euclid(slots as i64)
}

/// A linear map's non-zero generalised diagonals: (output ciphertext, input
/// ciphertext, slot offset k modulo the slots) → the (output slot, weight)
/// pairs on it.
type Diagonals = BTreeMap<(u32, u32, i64), Vec<(u32, f64)>>;

/// Where a hybrid ([`Lowerer::hybrid`]) puts weight `W[o, i]`: the offset
/// `(slot(i) − o) mod span`, whose quotient and remainder by `p` are the
/// weight's partial-sum slot (above `o`) and diagonal.
fn hybrid_offset(in_l: &Layout, i: usize, o: usize, span: usize) -> usize {
    (i64::from(in_l.at[i].slot) - o as i64).rem_euclid(span as i64) as usize
}

/// The builder and the slot geometry of one lowering.
struct Lowerer<'a> {
    b: &'a mut Builder,
    slots: usize,
    block: usize,
}

impl Lowerer<'_> {
    /// The full slot vector of per-sample slot values, repeated in every
    /// sample's block.
    fn spread(&self, values: impl IntoIterator<Item = (usize, f64)>) -> Vec<f64> {
        let mut v = vec![0.0; self.slots];
        for (slot, x) in values {
            for base in (0..self.slots).step_by(self.block) {
                v[base + slot] = x;
            }
        }
        v
    }

    /// Rotation steps as the keys name them: within (−slots/2, slots/2].
    fn step(&self, k: i64) -> i32 {
        let n = self.slots as i64;
        let k = k.rem_euclid(n);
        (if k > n / 2 { k - n } else { k }) as i32
    }

    /// `x` mapped through `m` into `out`'s layout.
    fn linear(&mut self, x: &Packed, in_l: &Layout, m: &Affine, out: &Layout) -> Packed {
        let naive = self.b.is_naive();
        let mut offsets = m.bias.clone();
        let mut diagonals = Diagonals::new();
        for (o, row) in m.rows.iter().enumerate() {
            let to = out.at[o];
            for &(i, w) in row {
                offsets[o] += w * x.offsets[i];
                let from = in_l.at[i];
                let Some(enc) = x.cts[from.ct as usize].or_else(|| naive.then(|| self.fresh()))
                else {
                    continue;
                };
                let k = offset(from, to, self.slots);
                diagonals
                    .entry((to.ct, from.ct, k))
                    .or_default()
                    .push((to.slot, w * enc.mult));
            }
        }
        let bases: Vec<Option<Ct>> = x
            .cts
            .iter()
            .map(|c| c.map(|e| e.ct).or_else(|| naive.then(|| self.fresh().ct)))
            .collect();
        let cts = self.emit(&bases, diagonals, out.cts);
        Packed {
            cts,
            offsets,
            dirty: false,
        }
    }

    /// `Σ_k d_k ⊙ rot(x, k)` for every output ciphertext, with the
    /// baby-step giant-step split of [`Lowerer::baby_steps`]; one rescale
    /// per output ciphertext. `x[c]` is input ciphertext c (None: all zero,
    /// so no diagonal reads it).
    fn emit(&mut self, x: &[Option<Ct>], diagonals: Diagonals, out_cts: usize) -> Vec<Option<Enc>> {
        let mut cts: Vec<Option<Enc>> = vec![None; out_cts];
        if diagonals.is_empty() {
            return cts;
        }
        let n1 = self.baby_steps(&diagonals);
        let depth = diagonals
            .keys()
            .filter_map(|&(_, c, _)| x[c as usize].map(|ct| ct.depth))
            .max()
            .unwrap_or(0);
        let mut babies: HashMap<(u32, i64), Ct> = HashMap::new();
        // Per output ct, per giant step: the baby rotations and their diagonals.
        type Terms = Vec<(Ct, Vec<(u32, f64)>)>;
        let mut giants: BTreeMap<u32, BTreeMap<i64, Terms>> = BTreeMap::new();
        for ((to_ct, from_ct, k), entries) in diagonals {
            let (g, bstep) = (k.div_euclid(n1), k.rem_euclid(n1));
            let base = x[from_ct as usize].expect("diagonals read encrypted ciphertexts");
            let baby = match babies.get(&(from_ct, bstep)) {
                Some(&c) => c,
                None => {
                    let at = self.b.switch_to(base, depth);
                    let step = self.step(bstep);
                    let c = self.b.rotate(at, step);
                    babies.insert((from_ct, bstep), c);
                    c
                }
            };
            giants
                .entry(to_ct)
                .or_default()
                .entry(g)
                .or_default()
                .push((baby, entries));
        }
        for (to_ct, per_giant) in giants {
            let mut partial = Vec::with_capacity(per_giant.len());
            for (g, terms) in per_giant {
                // Σ_b d'_b ⊙ rot(x, b) rotated by g·n₁ is Σ_b d ⊙ rot(x, g·n₁ + b)
                // when d'[t] = d[t − g·n₁].
                let shift = g * n1;
                let terms: Vec<(Ct, Vec<f64>)> = terms
                    .into_iter()
                    .map(|(baby, entries)| (baby, self.prerotated(&entries, shift)))
                    .collect();
                let products = self.b.vector_products(&terms, depth);
                let sum = self.b.add_all(products);
                let step = self.step(g * n1);
                partial.push(self.b.rotate(sum, step));
            }
            let y = self.b.rescaled_sum(partial);
            cts[to_ct as usize] = Some(Enc::of(y));
        }
        cts
    }

    /// A dense map from a clean tensor in one ciphertext, its elements
    /// anywhere below slot `m` (a power of two), Halevi–Shoup's hybrid
    /// (GAZELLE) generalised to any input layout: with `p` the output
    /// padded to a power of two, `x` is repeated once (`x + rot(x, −m)`, so
    /// rotations up to `p` wrap within `m`), `p` diagonals put `W[o, i]` at
    /// slot `o + j·p` of diagonal `k`, where `j·p + k = (slot(i) − o) mod m`
    /// (each (slot, diagonal) pair names one weight), giving `z`, and
    /// `log₂(m/p)` rotate-and-add steps `z + rot(z, −t)` leave `y[o]` at slot
    /// `m − p + o`. At most `p` products, however scattered the input (a
    /// convolution to 1×1 on a multiplexed grid has a diagonal per distinct
    /// offset otherwise); the slots below `2m − p` then hold partial sums
    /// (the result is dirty).
    fn hybrid(&mut self, x: &Packed, in_l: &Layout, a: &Affine, span: usize, p: usize) -> Packed {
        let naive = self.b.is_naive();
        let mut offsets = a.bias.clone();
        for (o, row) in a.rows.iter().enumerate() {
            for &(i, w) in row {
                offsets[o] += w * x.offsets[i];
            }
        }
        let Some(enc) = x.cts[0].or_else(|| naive.then(|| self.fresh())) else {
            return Packed {
                cts: vec![None],
                offsets,
                dirty: false,
            };
        };
        let mut diagonals = Diagonals::new();
        for (o, row) in a.rows.iter().enumerate() {
            for &(i, w) in row {
                let d = hybrid_offset(in_l, i, o, span);
                let (j, k) = (d / p, d % p);
                diagonals
                    .entry((0, 0, k as i64))
                    .or_default()
                    .push(((o + j * p) as u32, w * enc.mult));
            }
        }
        let back = self.step(-(span as i64));
        let copy = self.b.rotate(enc.ct, back);
        let repeated = self.b.add_all(vec![enc.ct, copy]);
        let z = self.emit(&[Some(repeated)], diagonals, 1);
        let cts = match z[0] {
            Some(z) => {
                let mut z = z.ct;
                let mut t = p;
                while t < span {
                    let step = self.step(-(t as i64));
                    let r = self.b.rotate(z, step);
                    z = self.b.add_all(vec![z, r]);
                    t *= 2;
                }
                vec![Some(Enc::of(z))]
            }
            None => vec![None],
        };
        Packed {
            cts,
            offsets,
            dirty: true,
        }
    }

    /// A diagonal's per-sample entries spread over every block and moved
    /// `shift` slots up (`d'[t] = d[t − shift]`).
    fn prerotated(&self, entries: &[(u32, f64)], shift: i64) -> Vec<f64> {
        let slots = self.slots as i64;
        let mut v = vec![0.0; self.slots];
        for base in (0..self.slots).step_by(self.block) {
            for &(slot, w) in entries {
                let s = (base as i64 + i64::from(slot) + shift).rem_euclid(slots) as usize;
                v[s] = w;
            }
        }
        v
    }

    /// The baby-step count `n₁` for `diagonals` ([`baby_step_count`]).
    fn baby_steps(&self, diagonals: &Diagonals) -> i64 {
        baby_step_count(&self.b.times, self.block, diagonals.keys().copied())
    }

    /// A stand-in ciphertext for a naive count's "every value encrypted".
    fn fresh(&self) -> Enc {
        Enc::of(self.b.fresh_meta())
    }

    /// Pending offsets of `ct`'s elements added into it (no level), so
    /// that a slot-wise op sees each element's whole value.
    fn settle_offsets(&mut self, x: &mut Packed, ct: usize, elements: &[usize], layout: &Layout) {
        let Some(enc) = x.cts[ct] else { return };
        if elements.iter().all(|&e| x.offsets[e] == 0.0) {
            return;
        }
        // mult · (c + off / mult) = mult · c + off.
        let v = self.spread(
            elements
                .iter()
                .map(|&e| (layout.at[e].slot as usize, x.offsets[e] / enc.mult)),
        );
        let c = self.b.add_vector(enc.ct, v);
        x.cts[ct] = Some(Enc { ct: c, ..enc });
        for &e in elements {
            x.offsets[e] = 0.0;
        }
    }

    /// A polynomial, slot-wise on every ciphertext.
    fn polynomial(&mut self, mut x: Packed, layout: &Layout, coeffs: &[f64]) -> Packed {
        let eval = |c: &[f64], v: f64| c.iter().rev().fold(0.0, |acc, &k| acc * v + k);
        for (ct, elements) in layout.elements_by_ct().iter().enumerate() {
            if x.cts[ct].is_none() && self.b.is_naive() {
                x.cts[ct] = Some(self.fresh());
            }
            let Some(_) = x.cts[ct] else {
                for &e in elements {
                    x.offsets[e] = eval(coeffs, x.offsets[e]);
                }
                continue;
            };
            self.settle_offsets(&mut x, ct, elements, layout);
            let enc = x.cts[ct].expect("encrypted");
            let c = compose(coeffs, enc.mult, 0.0);
            let degree = (0..c.len()).rev().find(|&k| c[k] != 0.0).unwrap_or(0);
            let (value, constant) = match degree {
                0 => (None, c.first().copied().unwrap_or(0.0)),
                1 => (
                    Some(Enc {
                        ct: enc.ct,
                        mult: c[1],
                        offset: 0.0,
                    }),
                    c[0],
                ),
                2 => {
                    // c₂·(x + h)² + c₀ − c₂h², the shift on the elements' slots only.
                    let h = c[1] / (2.0 * c[2]);
                    let t = if h == 0.0 {
                        enc.ct
                    } else {
                        let v =
                            self.spread(elements.iter().map(|&e| (layout.at[e].slot as usize, h)));
                        self.b.add_vector(enc.ct, v)
                    };
                    let sq = self.b.power_product(t, t, true);
                    (
                        Some(Enc {
                            ct: sq,
                            mult: c[2],
                            offset: 0.0,
                        }),
                        c[0] - c[2] * h * h,
                    )
                }
                _ => (Some(Enc::of(self.powers(enc.ct, &c, degree))), c[0]),
            };
            x.cts[ct] = value;
            for &e in elements {
                x.offsets[e] = constant;
            }
        }
        x
    }

    /// `Σ_{k≥1} cₖ·vᵏ`: the powers the builder makes, then one weighted sum
    /// (no constant, so zero slots stay zero).
    fn powers(&mut self, v: Ct, c: &[f64], degree: usize) -> Ct {
        let powers = self.b.powers(v, c, degree);
        let terms: Vec<(Ct, f64)> = (1..=degree)
            .filter(|&k| c[k] != 0.0)
            .map(|k| (powers[k].expect("computed"), c[k]))
            .collect();
        self.b.scalar_products(&terms)
    }

    /// `x + y` element by element (both in one layout).
    fn add(&mut self, x: &Packed, y: &Packed) -> Packed {
        let cts = x
            .cts
            .iter()
            .zip(&y.cts)
            .map(|(a, b)| match (a, b) {
                (None, None) => None,
                (Some(e), None) | (None, Some(e)) => Some(*e),
                (Some(p), Some(q)) => {
                    let terms = [
                        (crate::builder::Abs::Encrypted(*p), 1.0),
                        (crate::builder::Abs::Encrypted(*q), 1.0),
                    ];
                    match self.b.lincomb(terms, 0.0) {
                        crate::builder::Abs::Encrypted(e) => Some(e),
                        _ => None,
                    }
                }
            })
            .collect();
        let offsets = x
            .offsets
            .iter()
            .zip(&y.offsets)
            .map(|(a, b)| a + b)
            .collect();
        Packed {
            cts,
            offsets,
            dirty: x.dirty || y.dirty,
        }
    }

    /// `x` moved into layout `to` (an identity map: one level).
    fn relayout(&mut self, x: &Packed, from: &Layout, to: &Layout) -> Packed {
        let n = from.at.len();
        let m = Affine {
            rows: (0..n).map(|e| vec![(e, 1.0)]).collect(),
            bias: vec![0.0; n],
        };
        self.linear(x, from, &m, to)
    }

    /// The value's ciphertexts with everything pending applied (a factor
    /// costs a product and a level, offsets an addition).
    fn materialize(&mut self, mut x: Packed, layout: &Layout) -> Packed {
        for (ct, elements) in layout.elements_by_ct().iter().enumerate() {
            self.settle_offsets(&mut x, ct, elements, layout);
            if let Some(enc) = x.cts[ct] {
                if enc.mult != 1.0 {
                    let c = self.b.scalar_products(&[(enc.ct, enc.mult)]);
                    x.cts[ct] = Some(Enc::of(c));
                }
            }
        }
        x
    }
}

fn lower(graph: &Graph, b: &mut Builder) -> Result<Lowered, BackendError> {
    let slots = b.slots as usize;
    let plan = plan(graph, slots)?;
    let mut low = Lowerer {
        slots,
        block: plan.block,
        b,
    };
    let order = graph.topo_order();
    let in_run: HashSet<NodeId> = plan.runs.values().flatten().copied().collect();
    let mut users_left: HashMap<NodeId, usize> = order.iter().map(|&id| (id, 0)).collect();
    for &id in &order {
        for o in graph.operands(id) {
            *users_left.get_mut(&o).expect("operands are nodes") += 1;
        }
    }
    let input_layout = &plan.layouts[&graph.input()];
    let mut values: HashMap<NodeId, Packed> = HashMap::new();
    for (layer, &id) in order.iter().enumerate() {
        low.b.layer = crate::program::LayerIdx(layer as u32);
        if in_run.contains(&id) && !plan.runs.contains_key(&id) {
            continue;
        }
        let node = graph.node(id);
        let layout = &plan.layouts[&id];
        let operands = graph.operands(id);
        let value = if let Op::Input = node.op {
            Packed {
                cts: (0..layout.cts as u32)
                    .map(|c| Some(Enc::of(low.b.input_ct(c))))
                    .collect(),
                offsets: vec![0.0; layout.at.len()],
                dirty: false,
            }
        } else if let Some(run) = plan.runs.get(&id) {
            let source = graph.operands(run[0])[0];
            let (x, in_l) = (&values[&source], &plan.layouts[&source]);
            if let Some(sources) = plan.sources.get(&id) {
                Packed {
                    cts: x.cts.clone(),
                    offsets: sources.iter().map(|&s| x.offsets[s]).collect(),
                    dirty: x.dirty,
                }
            } else {
                let m = run_affine(graph, run, low.b.is_naive());
                match plan.hybrid.get(&id) {
                    Some(&(span, p)) => low.hybrid(x, in_l, &m, span, p),
                    None => low.linear(x, in_l, &m, layout),
                }
            }
        } else {
            match &node.op {
                Op::Polynomial(p) => {
                    low.polynomial(values[&operands[0]].clone(), layout, &p.coeffs)
                }
                Op::Activation(hepack_ir::Activation::Square) => {
                    low.polynomial(values[&operands[0]].clone(), layout, &[0.0, 0.0, 1.0])
                }
                Op::Add => {
                    let (l0, l1) = (&plan.layouts[&operands[0]], &plan.layouts[&operands[1]]);
                    let y = if l1 == l0 {
                        values[&operands[1]].clone()
                    } else {
                        let y = values[&operands[1]].clone();
                        low.relayout(&y, l1, l0)
                    };
                    low.add(&values[&operands[0]], &y)
                }
                Op::Concat(_) => {
                    let parts: Vec<&Packed> = operands.iter().map(|o| &values[o]).collect();
                    let flat: Vec<f64> = parts
                        .iter()
                        .flat_map(|v| v.offsets.iter().copied())
                        .collect();
                    Packed {
                        cts: parts.iter().flat_map(|v| v.cts.iter().copied()).collect(),
                        offsets: plan.sources[&id].iter().map(|&i| flat[i]).collect(),
                        dirty: parts.iter().any(|v| v.dirty),
                    }
                }
                op => {
                    return Err(BackendError::NotHeFriendly {
                        layer: node.name.to_string(),
                        op: op.name(),
                    })
                }
            }
        };
        low.b.check_depth(&node.name)?;
        let reads: Vec<NodeId> = match plan.runs.get(&id) {
            Some(run) => graph.operands(run[0]),
            None => operands,
        };
        for o in reads {
            let left = users_left.get_mut(&o).expect("counted");
            *left -= 1;
            if *left == 0 && !graph.is_output(o) {
                values.remove(&o);
            }
        }
        values.insert(id, value);
    }
    // Outputs: pending factors and offsets applied, one output op per
    // ciphertext that holds an encrypted element.
    let mut outputs = Vec::with_capacity(graph.outputs().len());
    let mut places = Vec::new();
    let mut next_ct = 0u32;
    for out in graph.outputs() {
        let layout = &plan.layouts[&out.node];
        let mut x = values[&out.node].clone();
        if x.dirty {
            // Planning keeps hybrids' partial sums from outputs; should one
            // get here, a mask (one level) clears the unnamed slots.
            x = low.relayout(&x, layout, layout);
        }
        let x = low.materialize(x, layout);
        let mut index_of: HashMap<usize, u32> = HashMap::new();
        for (ct, enc) in x.cts.iter().enumerate() {
            if let Some(enc) = enc {
                low.b.output_ct(enc.ct, next_ct);
                index_of.insert(ct, next_ct);
                next_ct += 1;
            }
        }
        let mut elements = Vec::with_capacity(layout.at.len());
        for (e, r) in layout.at.iter().enumerate() {
            match index_of.get(&(r.ct as usize)) {
                Some(&c) => {
                    elements.push(OutputElement::Encrypted);
                    places.push(Some(SlotRef {
                        ct: c,
                        slot: r.slot,
                    }));
                }
                None => {
                    elements.push(OutputElement::Public(x.offsets[e]));
                    places.push(None);
                }
            }
        }
        outputs.push(elements);
    }
    Ok(Lowered {
        outputs,
        slots: Some(SlotLayout {
            slots: slots as u32,
            block: plan.block as u32,
            input_cts: input_layout.cts as u32,
            input: input_layout.at.clone(),
            output_cts: next_ct,
            output: places,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (row, channel, ciphertexts) of an input's grid.
    fn grid_of(dims: &[usize], block: usize) -> (usize, usize, usize) {
        let l = Layout::input(&Shape::new(dims.to_vec()), block);
        let g = l.grid.expect("an image is on a grid");
        (g.row, g.channel, l.cts)
    }

    #[test]
    fn an_input_grid_is_padded_to_powers_of_two_where_it_costs_no_ciphertext() {
        // A digit: rows of 32 slots, a channel of 1,024.
        assert_eq!(grid_of(&[1, 28, 28], 8192), (32, 1024, 1));
        // Eight padded channels fill one ciphertext; nine would take two.
        assert_eq!(grid_of(&[8, 28, 28], 8192), (32, 1024, 1));
        assert_eq!(grid_of(&[9, 28, 28], 8192), (28, 784, 1));
        // A padded channel larger than a ciphertext stays tight.
        assert_eq!(grid_of(&[1, 70, 70], 8192), (70, 4900, 1));
    }
}
