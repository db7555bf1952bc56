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

use crate::builder::{Builder, Ct, Enc};
use crate::error::BackendError;
use crate::packing::runs::{
    is_relabel, reader_counts, relabel_sources, released, run_affine, runs, Affine,
};
use crate::packing::slotwise::{self, Packed, Placement};
use crate::program::{SlotLayout, SlotRef};
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

/// A layout with the slot geometry that repeats it in every block.
struct Placed<'l> {
    layout: &'l Layout,
    slots: usize,
    block: usize,
}

impl Placement for Placed<'_> {
    fn elements_by_ct(&self) -> Vec<Vec<usize>> {
        self.layout.elements_by_ct()
    }

    fn vector(&self, values: &[(usize, f64)]) -> Vec<f64> {
        let mut v = vec![0.0; self.slots];
        for &(e, x) in values {
            for base in (0..self.slots).step_by(self.block) {
                v[base + self.layout.at[e].slot as usize] = x;
            }
        }
        v
    }
}

/// The builder and the slot geometry of one lowering.
struct Lowerer<'a> {
    b: &'a mut Builder,
    slots: usize,
    block: usize,
}

impl Lowerer<'_> {
    /// `layout` as the slot-wise ops see it.
    fn placed<'l>(&self, layout: &'l Layout) -> Placed<'l> {
        Placed {
            layout,
            slots: self.slots,
            block: self.block,
        }
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
                let Some(enc) =
                    x.cts[from.ct as usize].or_else(|| naive.then(|| slotwise::fresh(self.b)))
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
            .map(|c| {
                c.map(|e| e.ct)
                    .or_else(|| naive.then(|| slotwise::fresh(self.b).ct))
            })
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
        let Some(enc) = x.cts[0].or_else(|| naive.then(|| slotwise::fresh(self.b))) else {
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

    /// `x` moved into layout `to` (an identity map: one level).
    fn relayout(&mut self, x: &Packed, from: &Layout, to: &Layout) -> Packed {
        let n = from.at.len();
        let m = Affine {
            rows: (0..n).map(|e| vec![(e, 1.0)]).collect(),
            bias: vec![0.0; n],
        };
        self.linear(x, from, &m, to)
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
    let mut users_left = reader_counts(graph, &order);
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
            slotwise::input(low.b, layout.cts, layout.at.len())
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
                Op::Polynomial(p) => slotwise::polynomial(
                    low.b,
                    values[&operands[0]].clone(),
                    &low.placed(layout),
                    &p.coeffs,
                ),
                Op::Activation(hepack_ir::Activation::Square) => slotwise::polynomial(
                    low.b,
                    values[&operands[0]].clone(),
                    &low.placed(layout),
                    &[0.0, 0.0, 1.0],
                ),
                Op::Add => {
                    let (l0, l1) = (&plan.layouts[&operands[0]], &plan.layouts[&operands[1]]);
                    let y = if l1 == l0 {
                        values[&operands[1]].clone()
                    } else {
                        let y = values[&operands[1]].clone();
                        low.relayout(&y, l1, l0)
                    };
                    slotwise::add(low.b, &values[&operands[0]], &y)
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
        for o in released(graph, &plan.runs, id, &mut users_left) {
            values.remove(&o);
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
        let x = slotwise::materialize(low.b, x, &low.placed(layout));
        let place = |e: usize| (layout.at[e].ct as usize, layout.at[e].slot);
        let (elements, at) = slotwise::output(low.b, &x, place, &mut next_ct);
        places.extend(at);
        outputs.push(elements);
    }
    Ok(Lowered {
        outputs,
        slots: Some(SlotLayout {
            slots: slots as u32,
            block: plan.block as u32,
            sample_stride: plan.block as u32,
            input_cts: input_layout.cts as u32,
            input: input_layout.at.clone(),
            input_replicas: vec![0],
            output_cts: next_ct,
            output: places,
            output_replicas: vec![0],
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
