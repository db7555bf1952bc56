//! The HE op program: a straight-line SSA program over ciphertexts
//! (DESIGN.md §3). Every op records the IR layer it came from; plaintext
//! operands live once in a weight table and ops refer to them.

use std::fmt::{self, Write};

use hepack_ir::{LayerName, Shape};
use ndarray::{ArrayD, ArrayView2, IxDyn};

use crate::params::CkksParams;
use serde::Serialize;

/// A ciphertext value: the result of the op at this index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ValueId(pub u32);

/// A plaintext operand: an entry of [`Program::plains`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PlainId(pub u32);

/// Index into [`Program::layers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct LayerIdx(pub u32);

/// One CKKS operation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum HeOp {
    /// The client's encryption of input feature `feature` (all samples in the slots).
    EncryptInput {
        /// Flat index into one sample of the model's input.
        feature: u32,
    },
    /// Ciphertext + ciphertext.
    Add(ValueId, ValueId),
    /// Ciphertext − ciphertext.
    Sub(ValueId, ValueId),
    /// Ciphertext + plaintext.
    AddPlain(ValueId, PlainId),
    /// Ciphertext × plaintext.
    MulPlain(ValueId, PlainId),
    /// Ciphertext × ciphertext (result has size 3 until relinearized).
    Mul(ValueId, ValueId),
    /// Ciphertext squared.
    Square(ValueId),
    /// Back to size 2 after a ciphertext product.
    Relinearize(ValueId),
    /// Divide by the last prime of the modulus chain (one level).
    Rescale(ValueId),
    /// Drop a level without dividing.
    ModSwitch(ValueId),
    /// Rotate the slots by `steps`.
    Rotate(ValueId, i32),
    /// Ciphertext `value` is element `index` of the model's output (flat, per sample).
    Output {
        /// The ciphertext.
        value: ValueId,
        /// Flat index into one sample of the output.
        index: u32,
    },
}

/// The op kinds, in the order reports list them.
pub const KINDS: [&str; 12] = [
    "encrypt_input",
    "add",
    "sub",
    "add_plain",
    "mul_plain",
    "mul",
    "square",
    "relinearize",
    "rescale",
    "mod_switch",
    "rotate",
    "output",
];

/// Where kind `name` is in [`KINDS`].
pub fn kind_index(name: &str) -> Option<usize> {
    KINDS.iter().position(|&k| k == name)
}

impl HeOp {
    /// The op's kind, as written in the text form.
    pub fn kind(&self) -> &'static str {
        KINDS[self.kind_index()]
    }

    /// Position of the kind in [`KINDS`].
    pub fn kind_index(&self) -> usize {
        match self {
            HeOp::EncryptInput { .. } => 0,
            HeOp::Add(..) => 1,
            HeOp::Sub(..) => 2,
            HeOp::AddPlain(..) => 3,
            HeOp::MulPlain(..) => 4,
            HeOp::Mul(..) => 5,
            HeOp::Square(..) => 6,
            HeOp::Relinearize(..) => 7,
            HeOp::Rescale(..) => 8,
            HeOp::ModSwitch(..) => 9,
            HeOp::Rotate(..) => 10,
            HeOp::Output { .. } => 11,
        }
    }

    /// The ciphertexts the op reads.
    pub fn operands(&self) -> impl Iterator<Item = ValueId> {
        let (a, b) = match *self {
            HeOp::EncryptInput { .. } => (None, None),
            HeOp::Add(x, y) | HeOp::Sub(x, y) | HeOp::Mul(x, y) => (Some(x), Some(y)),
            HeOp::AddPlain(x, _)
            | HeOp::MulPlain(x, _)
            | HeOp::Square(x)
            | HeOp::Relinearize(x)
            | HeOp::Rescale(x)
            | HeOp::ModSwitch(x)
            | HeOp::Rotate(x, _)
            | HeOp::Output { value: x, .. } => (Some(x), None),
        };
        a.into_iter().chain(b)
    }

    /// The plaintext the op reads, if any.
    pub fn plain(&self) -> Option<PlainId> {
        match *self {
            HeOp::AddPlain(_, p) | HeOp::MulPlain(_, p) => Some(p),
            _ => None,
        }
    }

    /// Whether the op defines a ciphertext value.
    pub fn defines_value(&self) -> bool {
        !matches!(self, HeOp::Output { .. })
    }

    pub(crate) fn with_operands(&self, mut map: impl FnMut(ValueId) -> ValueId) -> HeOp {
        match *self {
            HeOp::EncryptInput { feature } => HeOp::EncryptInput { feature },
            HeOp::Add(x, y) => HeOp::Add(map(x), map(y)),
            HeOp::Sub(x, y) => HeOp::Sub(map(x), map(y)),
            HeOp::Mul(x, y) => HeOp::Mul(map(x), map(y)),
            HeOp::AddPlain(x, p) => HeOp::AddPlain(map(x), p),
            HeOp::MulPlain(x, p) => HeOp::MulPlain(map(x), p),
            HeOp::Square(x) => HeOp::Square(map(x)),
            HeOp::Relinearize(x) => HeOp::Relinearize(map(x)),
            HeOp::Rescale(x) => HeOp::Rescale(map(x)),
            HeOp::ModSwitch(x) => HeOp::ModSwitch(map(x)),
            HeOp::Rotate(x, s) => HeOp::Rotate(map(x), s),
            HeOp::Output { value, index } => HeOp::Output {
                value: map(value),
                index,
            },
        }
    }
}

/// One op and the layer it came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Instr {
    /// The operation.
    pub op: HeOp,
    /// The IR layer that produced it.
    pub layer: LayerIdx,
}

/// A plaintext operand, encoded for one scale and level.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Plain {
    /// The same value in every slot (batch packing's weights).
    Scalar {
        /// The value.
        value: f64,
        /// The scale it is encoded at.
        scale: f64,
        /// Levels consumed by the ciphertexts it meets.
        depth: u32,
    },
    /// One value per slot (slot packings' diagonals, biases and shifts),
    /// stored sparsely: most slots of a diagonal are zero.
    Vector {
        /// Slots in all (N/2).
        slots: u32,
        /// The non-zero slots and their values, by slot.
        entries: Vec<(u32, f64)>,
        /// The scale it is encoded at.
        scale: f64,
        /// Levels consumed by the ciphertexts it meets.
        depth: u32,
    },
}

impl Plain {
    /// The value in slot `slot`.
    pub fn value(&self, slot: usize) -> f64 {
        match self {
            Plain::Scalar { value, .. } => *value,
            Plain::Vector { entries, .. } => entries
                .binary_search_by_key(&(slot as u32), |&(s, _)| s)
                .map_or(0.0, |i| entries[i].1),
        }
    }

    /// The largest magnitude in any slot (what the modulus must hold).
    pub fn max_abs(&self) -> f64 {
        match self {
            Plain::Scalar { value, .. } => value.abs(),
            Plain::Vector { entries, .. } => entries.iter().fold(0.0, |m, (_, v)| m.max(v.abs())),
        }
    }

    /// Every slot's value (a scalar's in all `slots` of them).
    pub fn dense(&self, slots: usize) -> Vec<f64> {
        match self {
            Plain::Scalar { value, .. } => vec![*value; slots],
            Plain::Vector { entries, .. } => {
                let mut v = vec![0.0; slots];
                for &(s, x) in entries {
                    v[s as usize] = x;
                }
                v
            }
        }
    }

    /// Encoding scale.
    pub fn scale(&self) -> f64 {
        match *self {
            Plain::Scalar { scale, .. } | Plain::Vector { scale, .. } => scale,
        }
    }

    /// Levels consumed by the ciphertexts it meets.
    pub fn depth(&self) -> u32 {
        match *self {
            Plain::Scalar { depth, .. } | Plain::Vector { depth, .. } => depth,
        }
    }
}

/// A slot of one ciphertext of a sample's tensor (slot packings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct SlotRef {
    /// Which of the tensor's ciphertexts.
    pub ct: u32,
    /// The slot of the first sample ([`SlotLayout::sample_slot`] gives the others).
    pub slot: u32,
}

/// Where a slot packing puts one sample's input and output elements. Input
/// ciphertext `c` is what `EncryptInput { feature: c }` reads, output
/// ciphertext `c` what `Output { index: c, .. }` writes. Sample `j` of a
/// ciphertext has place `slot` at slot `slot + j · sample_stride`: side by
/// side (diagonal packing, a stride of `block`) or interleaved (tile
/// packing, a stride of 1). An input feature is written at its place plus
/// each of `input_replicas`; every slot no output element names (at its
/// place plus each of `output_replicas`) is zero.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlotLayout {
    /// Slots per ciphertext (N/2).
    pub slots: u32,
    /// Slots one sample takes: `slots / block` samples to a ciphertext.
    pub block: u32,
    /// Slots from one sample's place to the next sample's.
    pub sample_stride: u32,
    /// Input ciphertexts per sample group.
    pub input_cts: u32,
    /// Each flat input feature's place.
    pub input: Vec<SlotRef>,
    /// Offsets from an input feature's place at which the client writes it
    /// too (`[0]`: once).
    pub input_replicas: Vec<u32>,
    /// Output ciphertexts (the outputs' cts one after another).
    pub output_cts: u32,
    /// Each flat output element's place (outputs one after another; `None`
    /// where the element is public).
    pub output: Vec<Option<SlotRef>>,
    /// Offsets from an output element's place that hold copies of it.
    pub output_replicas: Vec<u32>,
}

impl SlotLayout {
    /// Samples one ciphertext holds.
    pub fn samples_per_ct(&self) -> usize {
        (self.slots / self.block) as usize
    }

    /// The slot that holds sample `j`'s value at place `slot`.
    pub fn sample_slot(&self, j: usize, slot: u32) -> usize {
        slot as usize + j * self.sample_stride as usize
    }

    /// Where sample `j`'s input feature at `place` is written: its slot
    /// plus each replica offset.
    pub fn input_slots(&self, j: usize, place: SlotRef) -> impl Iterator<Item = usize> + '_ {
        let base = self.sample_slot(j, place.slot);
        self.input_replicas.iter().map(move |&r| base + r as usize)
    }

    /// Where sample `j`'s output element at `place` and its copies are.
    pub fn output_slots(&self, j: usize, place: SlotRef) -> impl Iterator<Item = usize> + '_ {
        let base = self.sample_slot(j, place.slot);
        self.output_replicas.iter().map(move |&r| base + r as usize)
    }
}

/// One element of the model's output.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum OutputElement {
    /// Decrypted from the ciphertext the program outputs at this index.
    Encrypted,
    /// A public constant: the model's output here does not depend on the input.
    Public(f64),
}

/// One of the model's outputs, as the program computes it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProgramOutput {
    /// The output's name in the model.
    pub name: String,
    /// Per-sample shape.
    pub shape: Shape,
    /// One entry per element (flat): encrypted or a public constant.
    pub elements: Vec<OutputElement>,
}

/// A lowered program.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Program {
    /// The packing that produced it.
    pub packing: String,
    /// Per-sample input shape.
    pub input_shape: Shape,
    /// The model's outputs, in its order. Output ops number their elements
    /// one output after another ([`Program::output_elements`]).
    pub outputs: Vec<ProgramOutput>,
    /// Layer names, indexed by [`LayerIdx`].
    pub layers: Vec<LayerName>,
    /// The ops; op `i` defines value `%i` unless it is an output.
    pub instrs: Vec<Instr>,
    /// The weight table.
    pub plains: Vec<Plain>,
    /// The CKKS parameters the program was scheduled for.
    pub params: CkksParams,
    /// Per layer, the ops abstract values and dead-ciphertext elimination
    /// removed, against a lowering that encrypts everything (for reports).
    pub removed_by_dce: Vec<u64>,
    /// SHA-256 of the ONNX file the program was compiled from, when known.
    pub model_sha256: Option<[u8; 32]>,
    /// Slot packings' layout; `None` for batch packing (one ciphertext per
    /// feature, one sample per slot).
    pub slots: Option<SlotLayout>,
}

impl Program {
    /// Every output element, the outputs one after another: what an output
    /// op's index points into.
    pub fn output_elements(&self) -> impl Iterator<Item = &OutputElement> + '_ {
        self.outputs.iter().flat_map(|o| &o.elements)
    }

    /// Split `[N, all output elements]` (what output ops fill) into one
    /// `[N, ...shape]` tensor per output.
    pub fn split_outputs(&self, flat: ArrayView2<'_, f64>) -> Vec<ArrayD<f64>> {
        let n = flat.nrows();
        let mut first = 0;
        self.outputs
            .iter()
            .map(|o| {
                let cols = flat.slice(ndarray::s![.., first..first + o.elements.len()]);
                first += o.elements.len();
                let mut dims = vec![n];
                dims.extend_from_slice(o.shape.dims());
                cols.to_owned()
                    .into_shape_with_order(IxDyn(&dims))
                    .expect("an output's elements fill its shape")
            })
            .collect()
    }

    /// Samples one ciphertext batch holds: N/2 under batch packing, those
    /// side by side under a slot layout.
    pub fn samples_per_ct(&self) -> usize {
        match &self.slots {
            None => self.params.slots() as usize,
            Some(l) => l.samples_per_ct(),
        }
    }

    /// The outputs' names, in order.
    pub fn output_names(&self) -> Vec<String> {
        self.outputs.iter().map(|o| o.name.clone()).collect()
    }

    /// The per-sample shapes of the outputs, as `a, b` (one shape for most models).
    pub fn output_shapes(&self) -> String {
        let shapes: Vec<String> = self.outputs.iter().map(|o| o.shape.to_string()).collect();
        shapes.join(", ")
    }
    /// Remove every op whose value no output reaches, and the weight-table
    /// entries only those ops read; returns how many ops each layer lost.
    /// Values and plaintexts are renumbered.
    pub fn remove_dead(&mut self) -> Vec<u64> {
        let mut live = vec![false; self.instrs.len()];
        for (i, instr) in self.instrs.iter().enumerate().rev() {
            if matches!(instr.op, HeOp::Output { .. }) {
                live[i] = true;
            }
            if live[i] {
                for v in instr.op.operands() {
                    live[v.0 as usize] = true;
                }
            }
        }
        let mut removed = vec![0u64; self.layers.len()];
        let mut renumber = vec![ValueId(u32::MAX); self.instrs.len()];
        let mut kept = Vec::with_capacity(self.instrs.len());
        for (i, instr) in self.instrs.iter().enumerate() {
            if !live[i] {
                removed[instr.layer.0 as usize] += 1;
                continue;
            }
            renumber[i] = ValueId(kept.len() as u32);
            kept.push(Instr {
                op: instr.op.with_operands(|v| renumber[v.0 as usize]),
                layer: instr.layer,
            });
        }
        self.instrs = kept;
        self.remove_unused_plains();
        removed
    }

    fn remove_unused_plains(&mut self) {
        let mut renumber: Vec<Option<PlainId>> = vec![None; self.plains.len()];
        for instr in &self.instrs {
            if let Some(p) = instr.op.plain() {
                renumber[p.0 as usize] = Some(p);
            }
        }
        let mut plains = Vec::new();
        for (old, slot) in renumber.iter_mut().enumerate() {
            if slot.is_some() {
                *slot = Some(PlainId(plains.len() as u32));
                plains.push(self.plains[old].clone());
            }
        }
        self.plains = plains;
        for instr in &mut self.instrs {
            instr.op = match instr.op {
                HeOp::AddPlain(x, p) => HeOp::AddPlain(x, renumber[p.0 as usize].expect("used")),
                HeOp::MulPlain(x, p) => HeOp::MulPlain(x, renumber[p.0 as usize].expect("used")),
                ref op => op.clone(),
            };
        }
    }

    /// The rotation steps the program's ops use, sorted, each once: the
    /// Galois keys key generation must make (none for batch packing).
    pub fn rotation_steps(&self) -> Vec<i32> {
        let mut steps: Vec<i32> = self
            .instrs
            .iter()
            .filter_map(|instr| match instr.op {
                HeOp::Rotate(_, s) => Some(s),
                _ => None,
            })
            .collect();
        steps.sort_unstable();
        steps.dedup();
        steps
    }

    /// The readable text form: parameters, the weight table (value, scale,
    /// level), then one op per line with the level and scale of its result,
    /// grouped by layer. A program whose levels do not check is still printed,
    /// without them.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let encrypted = self
            .output_elements()
            .filter(|o| matches!(o, OutputElement::Encrypted))
            .count();
        let total = self.output_elements().count();
        let p = &self.params;
        let levels = p.levels();
        let _ = writeln!(
            out,
            "; hepack HE program, {} packing: input {}, output {} ({} encrypted, {} public), {} ops, {} plaintexts",
            self.packing,
            self.input_shape,
            self.output_shapes(),
            encrypted,
            total - encrypted,
            self.instrs.len(),
            self.plains.len()
        );
        let _ = writeln!(
            out,
            "; CKKS N = {}, scale 2^{}, chain {:?} bits ({} levels), {}",
            p.degree,
            p.scale_bits,
            p.chain_bits,
            levels,
            match p.security_bits {
                Some(b) => format!("{b}-bit security"),
                None => "INSECURE".into(),
            }
        );
        for (i, plain) in self.plains.iter().enumerate() {
            let value = match plain {
                Plain::Scalar { value, .. } => format!("{value:?}"),
                Plain::Vector { entries, .. } => format!(
                    "vector ({} non-zero slots, max |v| {:?})",
                    entries.len(),
                    plain.max_abs()
                ),
            };
            let _ = writeln!(
                out,
                "@{i} = {value} at 2^{:.2}, level {}",
                plain.scale().log2(),
                levels.saturating_sub(plain.depth())
            );
        }
        if self.outputs.len() > 1 {
            let mut first = 0;
            for o in &self.outputs {
                let _ = writeln!(
                    out,
                    "; output {:?}: {}, elements {first}..{}",
                    o.name,
                    o.shape,
                    first + o.elements.len()
                );
                first += o.elements.len();
            }
        }
        for (i, o) in self.output_elements().enumerate() {
            if let OutputElement::Public(v) = o {
                let _ = writeln!(out, "; output {i} = {v:?} (public)");
            }
        }
        let metas = crate::levels::check(self).ok();
        let mut layer = None;
        for (i, instr) in self.instrs.iter().enumerate() {
            if layer != Some(instr.layer) {
                layer = Some(instr.layer);
                let _ = writeln!(out, "; layer {}", self.layers[instr.layer.0 as usize]);
            }
            let line = Line(i, &instr.op).to_string();
            match metas.as_ref().and_then(|m| m[i]) {
                Some(m) => {
                    let _ = writeln!(
                        out,
                        "{line:<32} ; level {}, scale 2^{:.2}{}",
                        levels.saturating_sub(m.depth),
                        m.scale.log2(),
                        if m.size > 2 { ", size 3" } else { "" }
                    );
                }
                None => {
                    let _ = writeln!(out, "{line}");
                }
            }
        }
        out
    }
}

struct Line<'a>(usize, &'a HeOp);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Line(i, op) = *self;
        let v = |x: ValueId| format!("%{}", x.0);
        match *op {
            HeOp::Output { value, index } => write!(f, "output {index} = {}", v(value)),
            HeOp::EncryptInput { feature } => write!(f, "%{i} = encrypt_input {feature}"),
            HeOp::Rotate(x, s) => write!(f, "%{i} = rotate {}, {s}", v(x)),
            HeOp::AddPlain(x, p) | HeOp::MulPlain(x, p) => {
                write!(f, "%{i} = {} {}, @{}", op.kind(), v(x), p.0)
            }
            _ => {
                let args: Vec<String> = op.operands().map(v).collect();
                write!(f, "%{i} = {} {}", op.kind(), args.join(", "))
            }
        }
    }
}
