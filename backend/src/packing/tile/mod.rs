//! Tile packing (HElayers' tile tensors, HE-PEx): one ciphertext holds a
//! `t1 × t2` tile of a tensor for each of `t3 = slots / (t1·t2)` samples,
//! samples innermost: sample `j`'s tile entry `(r, c)` is slot
//! `(r·t2 + c)·t3 + j`, so a rotation by a multiple of `t3` moves every
//! sample alike, and a batch of `t3` costs what one sample costs.
//!
//! A vector sits along one tile dimension, cut into tile-long chunks (one
//! ciphertext each), replicated along the other ([`Form`]). A run of linear
//! ops (a convolution through its affine map, i.e. conv-to-dense; pools,
//! dense layers) is a matrix cut into weight tiles: one `mul_plain` per
//! non-zero tile, a sum per output chunk, one rescale, and a rotate-and-sum
//! inside the tile:
//!
//! - input along rows (replicated over columns): tile `(a, b)` holds
//!   `W[b·t2 + c, a·t1 + r]` at `(r, c)`, and summing over rows (rotations
//!   by `t2·t3·2^k`, cyclic over the whole ciphertext, so every row gets
//!   the sum) leaves the output along columns, replicated over rows;
//! - input along columns: the transposed tiles, and a sum over columns
//!   (rotations by `t3·2^k`), which wraps from one row into the next: only
//!   column 0 holds the output.
//!
//! So consecutive layers alternate orientation with no transpose. The
//! other columns of a column-0 output hold partial sums, which never leave
//! the map: they are masked away at once (one level, which also applies
//! the pending factor) and, unless only the client reads the value, the
//! column is replicated over the columns (`log₂ t2` rotations) for the next
//! map. Partial sums would outgrow the values the parameters are sized for
//! and tell a client about the weights.
//!
//! Zero tiles: a weight tile that is all zero is neither encoded nor
//! multiplied, and an input chunk known to be zero (pruned or constant
//! elements: the pending public values slot packings share) is neither
//! computed nor sent.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use hepack_ir::{Graph, NodeId, Op};
use hepack_passes::prune::{PackedLayer, Packing};

use crate::builder::{Builder, Enc};
use crate::error::BackendError;
use crate::packing::runs::{
    is_relabel, reader_counts, relabel_sources, released, run_affine, runs, Affine,
};
use crate::packing::slotwise::{self, Packed, Placement};
use crate::params::DEGREES;
use crate::program::{SlotLayout, SlotRef};
use crate::{Lowered, Lowering};

pub mod permute;
pub mod units;

/// The most slots a tile may take: those of the largest ring hepack
/// selects ([`DEGREES`]).
pub const MAX_TILE_SLOTS: usize = DEGREES[DEGREES.len() - 1] as usize / 2;

/// A tile's rows × columns, powers of two (`--tile 16x8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TileShape {
    /// Rows `t1`.
    pub rows: usize,
    /// Columns `t2`.
    pub cols: usize,
}

impl TileShape {
    /// Samples one ciphertext holds (`t3`) with `slots` slots, if the tile fits.
    pub fn samples(self, slots: usize) -> Option<usize> {
        let area = self.rows.checked_mul(self.cols)?;
        (area > 0 && area <= slots).then(|| slots / area)
    }

    /// Every tile shape with `t1·t2 ≤ slots` and both at least `min`, by
    /// area then rows.
    pub fn all(slots: usize, min: usize) -> Vec<TileShape> {
        let mut shapes = Vec::new();
        let mut rows = min;
        while rows * min <= slots {
            let mut cols = min;
            while rows * cols <= slots {
                shapes.push(TileShape { rows, cols });
                cols *= 2;
            }
            rows *= 2;
        }
        shapes.sort_by_key(|s| (s.rows * s.cols, s.rows));
        shapes
    }
}

impl std::str::FromStr for TileShape {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("tile '{s}': expected T1xT2 with powers of two, e.g. 16x16");
        let (r, c) = s.split_once(['x', 'X']).ok_or_else(bad)?;
        let (rows, cols): (usize, usize) = (
            r.trim().parse().map_err(|_| bad())?,
            c.trim().parse().map_err(|_| bad())?,
        );
        if !rows.is_power_of_two() || !cols.is_power_of_two() {
            return Err(bad());
        }
        match rows.checked_mul(cols) {
            Some(area) if area <= MAX_TILE_SLOTS => Ok(TileShape { rows, cols }),
            _ => Err(format!(
                "tile '{s}': {rows}·{cols} slots, more than the {MAX_TILE_SLOTS} of the largest \
                 ciphertext; choose a smaller tile"
            )),
        }
    }
}

impl fmt::Display for TileShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.rows, self.cols)
    }
}

/// Tile-tensor packing with tiles of one shape.
#[derive(Clone, Copy, Debug)]
pub struct TilePacking {
    /// The tile shape.
    pub shape: TileShape,
}

impl Packing for TilePacking {
    fn name(&self) -> &'static str {
        "tile"
    }

    fn layers(&self, graph: &Graph) -> Result<Vec<PackedLayer>, hepack_passes::PassError> {
        units::packed_layers(graph, self.shape)
    }
}

impl Lowering for TilePacking {
    fn lower_with(&self, graph: &Graph, b: &mut Builder) -> Result<Lowered, BackendError> {
        lower(graph, b, self.shape)
    }

    fn min_slots(&self) -> usize {
        self.shape.rows.saturating_mul(self.shape.cols)
    }
}

/// How a vector sits in its tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Form {
    /// Along rows (chunks of `t1`), replicated over the columns.
    Rows,
    /// Along columns (chunks of `t2`), replicated over the rows.
    Cols,
    /// Along rows in column 0, the other columns zero: a map's output that
    /// only reaches the model's outputs, masked but not replicated.
    RowsAtZero,
}

/// An element's chunk (ciphertext) and position along its tile dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Place {
    ct: u32,
    pos: u32,
}

/// Where one sample's tensor sits: flat element `e` at `at[e]`.
#[derive(Clone, Debug, PartialEq)]
struct Layout {
    form: Form,
    cts: usize,
    at: Vec<Place>,
}

/// The slot geometry of one tile shape.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    t1: usize,
    t2: usize,
    t3: usize,
}

impl Geometry {
    fn new(shape: TileShape, slots: usize) -> Result<Geometry, BackendError> {
        let t3 = shape.samples(slots).ok_or_else(|| {
            BackendError::Unsupported(format!(
                "a {shape} tile has {} slots, more than the {slots} of a ciphertext: choose a \
                 smaller --tile",
                shape.rows * shape.cols
            ))
        })?;
        Ok(Geometry {
            t1: shape.rows,
            t2: shape.cols,
            t3,
        })
    }

    fn slots(&self) -> usize {
        self.t1 * self.t2 * self.t3
    }

    /// Sample 0's slot of tile entry `(r, c)`.
    fn slot(&self, r: usize, c: usize) -> usize {
        (r * self.t2 + c) * self.t3
    }

    /// The layout of `n` elements in `form`, one chunk after another.
    fn compact(&self, n: usize, form: Form) -> Layout {
        let len = self.chunk(form);
        Layout {
            form,
            cts: n.div_ceil(len).max(1),
            at: (0..n)
                .map(|e| Place {
                    ct: (e / len) as u32,
                    pos: (e % len) as u32,
                })
                .collect(),
        }
    }

    /// Elements to a chunk in `form`.
    fn chunk(&self, form: Form) -> usize {
        match form {
            Form::Rows | Form::RowsAtZero => self.t1,
            Form::Cols => self.t2,
        }
    }

    /// Sample 0's place of an element at `pos`, and the offsets of its
    /// copies.
    fn place(&self, form: Form, pos: usize) -> (usize, Vec<usize>) {
        match form {
            Form::Rows => (
                self.slot(pos, 0),
                (0..self.t2).map(|c| self.slot(0, c)).collect(),
            ),
            Form::Cols => (
                self.slot(0, pos),
                (0..self.t1).map(|r| self.slot(r, 0)).collect(),
            ),
            Form::RowsAtZero => (self.slot(pos, 0), vec![0]),
        }
    }

    /// The full slot vector of sample-0 `(slot, value)` pairs, repeated for
    /// every sample.
    fn spread(&self, values: impl IntoIterator<Item = (usize, f64)>) -> Vec<f64> {
        let mut v = vec![0.0; self.slots()];
        for (s, x) in values {
            v[s..s + self.t3].fill(x);
        }
        v
    }

    /// Rotation steps as the keys name them: within (−slots/2, slots/2].
    fn step(&self, k: i64) -> i32 {
        let n = self.slots() as i64;
        let k = k.rem_euclid(n);
        (if k > n / 2 { k - n } else { k }) as i32
    }

    /// The rotations that sum a tile over its rows (input along rows) or
    /// its columns (input along columns).
    fn sum_steps(&self, input: Form) -> Vec<i32> {
        let (len, unit) = match input {
            Form::Rows => (self.t1, self.t2 * self.t3),
            Form::Cols => (self.t2, self.t3),
            Form::RowsAtZero => unreachable!("cleaned before a linear map"),
        };
        (0..len.trailing_zeros())
            .map(|k| self.step((unit << k) as i64))
            .collect()
    }

    /// The layout a linear map from `input` writes: along columns from
    /// rows, along rows in column 0 from columns (a one-column tile has no
    /// partial sums: that is along rows).
    fn output_form(&self, input: Form) -> Form {
        match input {
            Form::Rows | Form::RowsAtZero => Form::Cols,
            Form::Cols if self.t2 == 1 => Form::Rows,
            Form::Cols => Form::RowsAtZero,
        }
    }
}

/// A layout with its geometry, as the slot-wise ops see it.
struct Placed<'l> {
    layout: &'l Layout,
    geo: Geometry,
}

impl Placement for Placed<'_> {
    fn elements_by_ct(&self) -> Vec<Vec<usize>> {
        let mut by = vec![Vec::new(); self.layout.cts];
        for (e, p) in self.layout.at.iter().enumerate() {
            by[p.ct as usize].push(e);
        }
        by
    }

    fn vector(&self, values: &[(usize, f64)]) -> Vec<f64> {
        let geo = self.geo;
        geo.spread(values.iter().flat_map(|&(e, x)| {
            let (base, copies) = geo.place(self.layout.form, self.layout.at[e].pos as usize);
            copies.into_iter().map(move |o| (base + o, x))
        }))
    }
}

/// Every node's layout, the runs, and where relabelling runs take their
/// elements from.
pub(crate) struct Plan {
    geo: Geometry,
    layouts: HashMap<NodeId, Layout>,
    pub(crate) runs: HashMap<NodeId, Vec<NodeId>>,
    sources: HashMap<NodeId, Vec<usize>>,
}

impl Plan {
    /// The input and output layouts of the weighted run ending at `end`.
    fn run_forms(&self, graph: &Graph, end: NodeId) -> (&Layout, &Layout) {
        let source = graph.operands(self.runs[&end][0])[0];
        (&self.layouts[&source], &self.layouts[&end])
    }
}

/// Lay every node out for `shape` tiles in `slots` slots: the input along
/// rows ([`input_layout`]), each weighted run's output in the other
/// orientation (placed where only slot-wise ops lie between it and the
/// outputs), relabellings and slot-wise ops as their operand.
fn plan(graph: &Graph, shape: TileShape, slots: usize) -> Result<Plan, BackendError> {
    let geo = Geometry::new(shape, slots)?;
    let runs = runs(graph);
    let sources: HashMap<NodeId, Vec<usize>> = runs
        .iter()
        .filter(|(_, run)| run.iter().all(|&n| is_relabel(&graph.node(n).op)))
        .map(|(&end, run)| (end, relabel_sources(graph, run)))
        .collect();
    let in_run: HashSet<NodeId> = runs.values().flatten().copied().collect();
    let mut layouts: HashMap<NodeId, Layout> = HashMap::new();
    for id in graph.topo_order() {
        if in_run.contains(&id) && !runs.contains_key(&id) {
            continue;
        }
        let node = graph.node(id);
        let operands = graph.operands(id);
        let layout = if let Op::Input = node.op {
            input_layout(graph, &runs, &sources, geo)
        } else if let Some(run) = runs.get(&id) {
            let input = &layouts[&graph.operands(run[0])[0]];
            match sources.get(&id) {
                Some(moved) => Layout {
                    at: moved.iter().map(|&s| input.at[s]).collect(),
                    ..input.clone()
                },
                None => {
                    let to_outputs = reaches_only_outputs(graph, id);
                    // Column-0 sums are masked; replicated unless only the
                    // client reads them.
                    let form = match geo.output_form(input.form) {
                        Form::RowsAtZero if !to_outputs => Form::Rows,
                        form => form,
                    };
                    let out = geo.compact(node.shape.numel(), form);
                    if to_outputs {
                        let m = run_affine(graph, run, false);
                        let reads = m.rows.iter().enumerate().flat_map(|(o, row)| {
                            row.iter()
                                .map(move |&(i, _)| (o, input.at[i].ct))
                                .collect::<Vec<_>>()
                        });
                        placed_by(out, input.cts, reads, geo)
                    } else {
                        out
                    }
                }
            }
        } else {
            match &node.op {
                Op::Polynomial(_) | Op::Activation(_) => layouts[&operands[0]].clone(),
                Op::Add => {
                    let (a, b) = (&layouts[&operands[0]], &layouts[&operands[1]]);
                    if a != b {
                        return Err(BackendError::Unsupported(format!(
                            "layer '{}' adds two tensors that tile packing lays out \
                             differently (one branch has a linear layer more than the other); \
                             compile it with --packing diagonal or batch",
                            node.name
                        )));
                    }
                    a.clone()
                }
                Op::Concat(_) => {
                    return Err(BackendError::Unsupported(format!(
                        "layer '{}' concatenates tensors, which tile packing does not lay out; \
                         compile it with --packing diagonal or batch",
                        node.name
                    )))
                }
                op => {
                    return Err(BackendError::NotHeFriendly {
                        layer: node.name.to_string(),
                        op: op.name(),
                    })
                }
            }
        };
        layouts.insert(id, layout);
    }
    Ok(Plan {
        geo,
        layouts,
        runs,
        sources,
    })
}

/// `layout` (compact) with its elements regrouped so that the tiles they
/// touch gather ([`permute::grouping`]): `touches` lists each element's
/// (element, chunk on the other side of the map) pairs among `chunks`.
/// Only inputs and outputs move this way: their places are the client's
/// to apply, so the model stays as it is.
fn placed_by(
    layout: Layout,
    chunks: usize,
    touches: impl IntoIterator<Item = (usize, u32)>,
    geo: Geometry,
) -> Layout {
    let sigs = permute::signatures_of(layout.at.len(), chunks, touches);
    match permute::grouping(&sigs, geo.chunk(layout.form), 0) {
        Some(groups) => {
            let mut at = layout.at.clone();
            for (g, group) in groups.iter().enumerate() {
                for (p, &e) in group.iter().enumerate() {
                    at[e] = Place {
                        ct: g as u32,
                        pos: p as u32,
                    };
                }
            }
            Layout { at, ..layout }
        }
        None => layout,
    }
}

/// The model input's layout: along rows, its features grouped by the
/// output chunks of the weighted run that reads them (directly or through
/// a run of relabelling ops), so that pruned inputs gather into zero tiles.
fn input_layout(
    graph: &Graph,
    runs: &HashMap<NodeId, Vec<NodeId>>,
    sources: &HashMap<NodeId, Vec<usize>>,
    geo: Geometry,
) -> Layout {
    let input = graph.input();
    let compact = geo.compact(graph.node(input).shape.numel(), Form::Rows);
    let run_from = |id: NodeId| {
        let user = graph.single_user(id).filter(|_| !graph.is_output(id))?;
        runs.iter()
            .find(|(_, run)| run[0] == user)
            .map(|(&end, run)| (end, run))
    };
    let Some((mut end, mut run)) = run_from(input) else {
        return compact;
    };
    let mut moved: Option<&Vec<usize>> = None;
    if let Some(m) = sources.get(&end) {
        moved = Some(m);
        let Some(next) = run_from(end) else {
            return compact;
        };
        (end, run) = next;
    }
    if sources.contains_key(&end) {
        return compact;
    }
    let m = run_affine(graph, run, false);
    let len = geo.chunk(Form::Cols);
    let touches: Vec<(usize, u32)> = m
        .rows
        .iter()
        .enumerate()
        .flat_map(|(o, row)| {
            row.iter().map(move |&(j, _)| {
                let e = moved.map_or(j, |m| m[j]);
                (e, (o / len) as u32)
            })
        })
        .collect();
    let chunks = graph.node(end).shape.numel().div_ceil(len);
    placed_by(compact, chunks, touches, geo)
}

/// Whether only slot-wise ops lie between `id` and the model's outputs:
/// then its elements' places are the client's to apply.
fn reaches_only_outputs(graph: &Graph, id: NodeId) -> bool {
    let users = graph.users(id);
    (graph.is_output(id) || !users.is_empty())
        && users.into_iter().all(|u| {
            matches!(graph.node(u).op, Op::Polynomial(_) | Op::Activation(_))
                && reaches_only_outputs(graph, u)
        })
}

/// The builder and the geometry of one lowering.
struct Lowerer<'a> {
    b: &'a mut Builder,
    geo: Geometry,
}

impl Lowerer<'_> {
    fn placed<'l>(&self, layout: &'l Layout) -> Placed<'l> {
        Placed {
            layout,
            geo: self.geo,
        }
    }

    /// The ciphertext of chunk `ct`, or a stand-in in a naive count.
    fn read(&self, x: &Packed, ct: u32) -> Option<Enc> {
        x.cts[ct as usize].or_else(|| self.b.is_naive().then(|| slotwise::fresh(self.b)))
    }

    /// Every slot but the elements' own places (in `layout`'s form, copies
    /// excluded) zeroed, by a mask that also applies each chunk's pending
    /// factor: one level.
    fn mask(&mut self, x: &Packed, layout: &Layout) -> Packed {
        let geo = self.geo;
        let by_ct = self.placed(layout).elements_by_ct();
        let cts = by_ct
            .iter()
            .enumerate()
            .map(|(ct, elements)| {
                let enc = self.read(x, ct as u32)?;
                let mask = geo.spread(elements.iter().map(|&e| {
                    let base = geo.place(layout.form, layout.at[e].pos as usize).0;
                    (base, enc.mult)
                }));
                let products = self.b.vector_products(&[(enc.ct, mask)], enc.ct.depth);
                Some(Enc::of(self.b.rescaled_sum(products)))
            })
            .collect();
        Packed {
            cts,
            offsets: x.offsets.clone(),
            dirty: false,
        }
    }

    /// A map's column-0 sums [masked](Self::mask) and, for a
    /// [`Form::Rows`] layout, replicated over the columns. Partial sums thus
    /// never leave a linear map: they would outgrow the values the
    /// parameters are sized for, and tell the client about the weights.
    fn clean(&mut self, x: &Packed, layout: &Layout) -> Packed {
        let mut y = self.mask(x, layout);
        if layout.form == Form::Rows {
            for enc in y.cts.iter_mut().flatten() {
                let mut c = enc.ct;
                for k in 0..self.geo.t2.trailing_zeros() {
                    let r = self
                        .b
                        .rotate(c, self.geo.step(-((self.geo.t3 << k) as i64)));
                    c = self.b.add_all(vec![c, r]);
                }
                *enc = Enc::of(c);
            }
        }
        y
    }

    /// `x` (along rows or columns) mapped through `m` into `out`: per output
    /// chunk, one product per non-zero weight tile, their sum, one rescale,
    /// and the rotate-and-sum inside the tile.
    fn linear(&mut self, x: &Packed, in_l: &Layout, m: &Affine, out: &Layout) -> Packed {
        let geo = self.geo;
        let mut offsets = m.bias.clone();
        // (output chunk, input chunk) → the tile's (slot, weight) entries.
        let mut tiles: BTreeMap<(u32, u32), BTreeMap<usize, f64>> = BTreeMap::new();
        for (o, row) in m.rows.iter().enumerate() {
            let to = out.at[o];
            for &(i, w) in row {
                offsets[o] += w * x.offsets[i];
                let from = in_l.at[i];
                let Some(enc) = self.read(x, from.ct) else {
                    continue;
                };
                let (r, c) = match in_l.form {
                    Form::Rows => (from.pos, to.pos),
                    _ => (to.pos, from.pos),
                };
                *tiles
                    .entry((to.ct, from.ct))
                    .or_default()
                    .entry(geo.slot(r as usize, c as usize))
                    .or_default() += w * enc.mult;
            }
        }
        let depth = tiles
            .keys()
            .filter_map(|&(_, a)| self.read(x, a).map(|e| e.ct.depth))
            .max()
            .unwrap_or(0);
        let mut by_out: BTreeMap<u32, Vec<(crate::builder::Ct, Vec<f64>)>> = BTreeMap::new();
        for ((b, a), entries) in tiles {
            let base = self.read(x, a).expect("tiles read encrypted chunks").ct;
            by_out
                .entry(b)
                .or_default()
                .push((base, geo.spread(entries)));
        }
        let steps = geo.sum_steps(in_l.form);
        let mut cts = vec![None; out.cts];
        for (b, terms) in by_out {
            let products = self.b.vector_products(&terms, depth);
            let mut y = self.b.rescaled_sum(products);
            for &step in &steps {
                let r = self.b.rotate(y, step);
                y = self.b.add_all(vec![y, r]);
            }
            cts[b as usize] = Some(Enc::of(y));
        }
        Packed {
            cts,
            offsets,
            dirty: false,
        }
    }
}

fn lower(graph: &Graph, b: &mut Builder, shape: TileShape) -> Result<Lowered, BackendError> {
    let plan = plan(graph, shape, b.slots as usize)?;
    let geo = plan.geo;
    let mut low = Lowerer { b, geo };
    let order = graph.topo_order();
    let in_run: HashSet<NodeId> = plan.runs.values().flatten().copied().collect();
    let mut users_left = reader_counts(graph, &order);
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
            let x = &values[&source];
            if let Some(sources) = plan.sources.get(&id) {
                Packed {
                    cts: x.cts.clone(),
                    offsets: sources.iter().map(|&s| x.offsets[s]).collect(),
                    dirty: false,
                }
            } else {
                let in_l = &plan.layouts[&source];
                let m = run_affine(graph, run, low.b.is_naive());
                let y = low.linear(x, in_l, &m, layout);
                if geo.output_form(in_l.form) == Form::RowsAtZero {
                    low.clean(&y, layout)
                } else {
                    y
                }
            }
        } else {
            let placed = Placed {
                layout,
                geo: low.geo,
            };
            match &node.op {
                Op::Polynomial(p) => {
                    slotwise::polynomial(low.b, values[&operands[0]].clone(), &placed, &p.coeffs)
                }
                Op::Activation(hepack_ir::Activation::Square) => slotwise::polynomial(
                    low.b,
                    values[&operands[0]].clone(),
                    &placed,
                    &[0.0, 0.0, 1.0],
                ),
                Op::Add => slotwise::add(low.b, &values[&operands[0]], &values[&operands[1]]),
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
    let forms: HashSet<Form> = graph
        .outputs()
        .iter()
        .map(|out| plan.layouts[&out.node].form)
        .collect();
    // Outputs in one form name their copies; mixed forms keep places only.
    let output_replicas = match forms.iter().collect::<Vec<_>>()[..] {
        [&form] => geo.place(form, 0).1.iter().map(|&o| o as u32).collect(),
        _ => vec![0],
    };
    let mut next_ct = 0u32;
    for out in graph.outputs() {
        let layout = &plan.layouts[&out.node];
        let x = values[&out.node].clone();
        let mut x = slotwise::materialize(low.b, x, &low.placed(layout));
        if forms.len() > 1 && geo.place(layout.form, 0).1.len() > 1 {
            x = low.mask(&x, layout);
        }
        let place = |e: usize| {
            let p = layout.at[e];
            (
                p.ct as usize,
                geo.place(layout.form, p.pos as usize).0 as u32,
            )
        };
        let (elements, at) = slotwise::output(low.b, &x, place, &mut next_ct);
        places.extend(at);
        outputs.push(elements);
    }
    let input = &plan.layouts[&graph.input()];
    let (_, input_replicas) = geo.place(input.form, 0);
    Ok(Lowered {
        outputs,
        slots: Some(SlotLayout {
            slots: geo.slots() as u32,
            block: (geo.t1 * geo.t2) as u32,
            sample_stride: 1,
            input_cts: input.cts as u32,
            input: input
                .at
                .iter()
                .map(|p| SlotRef {
                    ct: p.ct,
                    slot: geo.place(input.form, p.pos as usize).0 as u32,
                })
                .collect(),
            input_replicas: input_replicas.into_iter().map(|o| o as u32).collect(),
            output_cts: next_ct,
            output: places,
            output_replicas,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_shapes_parse_and_print() {
        let s: TileShape = "16x8".parse().unwrap();
        assert_eq!(s, TileShape { rows: 16, cols: 8 });
        assert_eq!(s.to_string(), "16x8");
        assert_eq!(s.samples(8192), Some(64));
        assert_eq!("64x256".parse::<TileShape>().unwrap().samples(8192), None);
        assert!("128x128".parse::<TileShape>().is_ok());
        for bad in [
            "16",
            "12x8",
            "0x4",
            "ax4",
            "16x",
            "256x128",
            "4294967296x4294967296",
        ] {
            assert!(bad.parse::<TileShape>().is_err(), "{bad}");
        }
    }

    #[test]
    fn summing_over_rows_is_cyclic_and_over_columns_is_valid_at_column_zero() {
        let geo = Geometry {
            t1: 4,
            t2: 2,
            t3: 2,
        };
        // Rows: steps t2·t3, 2·t2·t3; the last wraps to −8 of 16 slots.
        assert_eq!(geo.sum_steps(Form::Rows), vec![4, 8]);
        assert_eq!(geo.sum_steps(Form::Cols), vec![2]);
        assert_eq!(geo.output_form(Form::Rows), Form::Cols);
        assert_eq!(geo.output_form(Form::Cols), Form::RowsAtZero);
        let (base, copies) = geo.place(Form::Rows, 3);
        assert_eq!((base, copies), (12, vec![0, 2]));
        let (base, copies) = geo.place(Form::Cols, 1);
        assert_eq!((base, copies), (2, vec![0, 4, 8, 12]));
    }
}
