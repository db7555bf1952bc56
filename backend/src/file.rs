//! The program file (`.hep`): a [`Program`] as the versioned protobuf message
//! of `backend/proto/hepack_program.proto`, which documents every field.
//!
//! Reading checks everything before building anything sized by the file: the
//! magic and version, the parameters (primes recomputed, security claim
//! checked), the layout, that every operand is an earlier value, and that the
//! recorded levels, scales, sizes, last uses and rotation steps are exactly
//! what the ops imply. A malformed or hostile file is an error naming what is
//! wrong, never a panic.

use prost::Message;
use sha2::{Digest, Sha256};
use thiserror::Error;

use hepack_ir::{LayerName, Shape};

use crate::params::{self, CkksParams};
use crate::program::{
    HeOp, Instr, LayerIdx, OutputElement, Plain, PlainId, Program, ProgramOutput, SlotLayout,
    SlotRef, ValueId,
};

/// The generated protobuf types.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/hepack.program.v1.rs"));
}

/// The first field of every program file.
pub const MAGIC: &str = "hepack-program";

/// The format version this hepack writes.
pub const FORMAT_VERSION: u32 = 5;

/// The most slots (ciphertexts × slots each) a slot layout may place
/// elements in: 2^26, 8 MiB of checking bits and at most 2^26 slots to
/// visit; the client would encrypt thousands of ciphertexts (gigabytes)
/// to fill them, far beyond any program hepack compiles.
const MAX_LAYOUT_SLOTS: u64 = 1 << 26;

/// The oldest version it still reads (version 2: no slot layouts).
pub const OLDEST_VERSION: u32 = 2;

/// Files larger than this are refused before they are read (a LeNet-5
/// program is about 20 MB; decoding allocates a small multiple of the size).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// The most non-zero weight slots a file may list, runs expanded: 2^27,
/// 2 GiB in memory (a tile program at 8×8 lists about 2^24).
const MAX_VECTOR_SLOTS: u64 = 1 << 27;

/// Longest modulus chain a file may name (SEAL's limit on primes).
const MAX_CHAIN: usize = 64;

/// Largest per-sample input or output a file may declare.
const MAX_ELEMENTS: u64 = 1 << 28;

/// Longest output name a file may declare.
const MAX_NAME_BYTES: usize = 1024;

/// Why a program file was refused.
#[derive(Debug, Error)]
pub enum FileError {
    /// Not a protobuf message, or not one of ours.
    #[error(
        "not a hepack program file ({0}); write one with `hepack compile MODEL.onnx -o MODEL.hep`"
    )]
    NotAProgram(String),
    /// Starts like a program file but does not decode: cut short or damaged.
    #[error("corrupt or truncated program file ({0}); copy it again or recompile the model")]
    Corrupt(String),
    /// Another format version.
    #[error("program file format version {found}, but this hepack reads versions {OLDEST_VERSION} to {FORMAT_VERSION}; recompile the model with this hepack")]
    Version {
        /// The file's version.
        found: u32,
    },
    /// Decoded, but inconsistent.
    #[error("invalid program file: {0}")]
    Invalid(String),
}

fn invalid(why: impl Into<String>) -> FileError {
    FileError::Invalid(why.into())
}

/// SHA-256 of a model file's bytes, for [`Program::model_sha256`].
pub fn model_hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Hex form of a hash.
pub fn hex(hash: &[u8]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `bytes` start like a program file (the magic field).
pub fn looks_like_program(bytes: &[u8]) -> bool {
    // Field 1, length-delimited, then the magic's length and text.
    bytes.len() > 2 + MAGIC.len()
        && bytes[0] == 0x0a
        && bytes[1] as usize == MAGIC.len()
        && &bytes[2..2 + MAGIC.len()] == MAGIC.as_bytes()
}

/// Encode `program`. Deterministic: the same program gives the same bytes.
/// A program whose levels do not check, or too large for [`decode`], is
/// refused (no reader would load it).
pub fn encode(program: &Program) -> Result<Vec<u8>, crate::BackendError> {
    let metas = crate::levels::check(program)?;
    let bytes = to_message(program, &metas).encode_to_vec();
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(crate::BackendError::Unsupported(format!(
            "the program takes {} bytes, more than the {MAX_FILE_BYTES} a program file may \
             have: prune it, or choose a packing (or tile shape) with fewer weights",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Decode and validate a program file.
pub fn decode(bytes: &[u8]) -> Result<Program, FileError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(invalid(format!(
            "{} bytes, more than the {MAX_FILE_BYTES} a program file may have",
            bytes.len()
        )));
    }
    if !looks_like_program(bytes) {
        return Err(FileError::NotAProgram(
            "it does not start with the magic".into(),
        ));
    }
    let message = pb::ProgramFile::decode(bytes).map_err(|e| FileError::Corrupt(e.to_string()))?;
    from_message(message)
}

fn to_message(program: &Program, metas: &[Option<crate::levels::Meta>]) -> pb::ProgramFile {
    let p = &program.params;
    let levels = p.levels();
    let last = crate::order::last_uses(program);
    let mut ops = pb::Ops::default();
    for (i, instr) in program.instrs.iter().enumerate() {
        let (kind, immediate) = kind_and_immediate(&instr.op);
        ops.kind.push(kind as i32);
        ops.layer.push(instr.layer.0);
        ops.immediate.push(immediate);
        let meta = match instr.op {
            HeOp::Output { value, .. } => metas[value.0 as usize],
            _ => metas[i],
        }
        .expect("checked ops have metas");
        ops.level.push(levels - meta.depth);
        ops.scale.push(meta.scale);
        ops.size.push(u32::from(meta.size));
        ops.last_use.push(last[i].map_or(0, |l| l + 1));
        ops.args.extend(instr.op.operands().map(|v| v.0));
    }
    let mut weights = pb::WeightTable::default();
    for plain in &program.plains {
        match plain {
            Plain::Scalar { value, .. } => {
                weights.value.push(*value);
                if program.slots.is_some() {
                    weights.is_vector.push(false);
                    weights.vector_count.push(0);
                }
            }
            Plain::Vector { entries, .. } => {
                weights.value.push(0.0);
                weights.is_vector.push(true);
                let before = weights.vector_slot.len();
                for &(slot, v) in entries {
                    let last = weights.vector_slot.len().checked_sub(1);
                    match last.filter(|&j| j >= before) {
                        Some(j)
                            if weights.vector_slot[j] + weights.vector_run[j] == slot
                                && weights.vector_value[j].to_bits() == v.to_bits() =>
                        {
                            weights.vector_run[j] += 1;
                        }
                        _ => {
                            weights.vector_slot.push(slot);
                            weights.vector_value.push(v);
                            weights.vector_run.push(1);
                        }
                    }
                }
                weights
                    .vector_count
                    .push((weights.vector_slot.len() - before) as u32);
            }
        }
        weights.scale.push(plain.scale());
        weights.level.push(levels.saturating_sub(plain.depth()));
    }
    pb::ProgramFile {
        magic: MAGIC.into(),
        format_version: FORMAT_VERSION,
        writer: format!("hepack {}", env!("CARGO_PKG_VERSION")),
        model_sha256: program.model_sha256.map_or(Vec::new(), |h| h.to_vec()),
        params: Some(pb::CkksParameters {
            poly_degree: p.degree,
            scale_bits: p.scale_bits,
            chain_bits: p.chain_bits.clone(),
            primes: p.primes.clone(),
            security_bits: p.security_bits.unwrap_or(0),
        }),
        layout: Some(pb::Layout {
            packing: program.packing.clone(),
            input_shape: dims(&program.input_shape),
            outputs: program
                .outputs
                .iter()
                .map(|o| pb::ModelOutput {
                    name: o.name.clone(),
                    shape: dims(&o.shape),
                    elements: o
                        .elements
                        .iter()
                        .map(|e| match *e {
                            OutputElement::Encrypted => pb::OutputElement {
                                encrypted: true,
                                public_value: 0.0,
                            },
                            OutputElement::Public(v) => pb::OutputElement {
                                encrypted: false,
                                public_value: v,
                            },
                        })
                        .collect(),
                })
                .collect(),
            slots: program.slots.as_ref().map(|l| pb::SlotLayout {
                slots: l.slots,
                block: l.block,
                input_cts: l.input_cts,
                input_ct: l.input.iter().map(|r| r.ct).collect(),
                input_slot: l.input.iter().map(|r| r.slot).collect(),
                output_cts: l.output_cts,
                output_ct: l.output.iter().map(|r| r.map_or(0, |r| r.ct)).collect(),
                output_slot: l.output.iter().map(|r| r.map_or(0, |r| r.slot)).collect(),
                sample_stride: l.sample_stride,
                input_replica: l.input_replicas.clone(),
                output_replica: l.output_replicas.clone(),
                output_garbage: false,
            }),
        }),
        layers: program
            .layers
            .iter()
            .enumerate()
            .map(|(l, name)| pb::Layer {
                name: name.to_string(),
                removed_by_dce: program.removed_by_dce.get(l).copied().unwrap_or(0),
            })
            .collect(),
        weights: Some(weights),
        ops: Some(ops),
        rotation_steps: program.rotation_steps(),
    }
}

fn dims(shape: &Shape) -> Vec<u32> {
    shape.dims().iter().map(|&d| d as u32).collect()
}

fn kind_and_immediate(op: &HeOp) -> (pb::OpKind, i64) {
    use pb::OpKind as K;
    match *op {
        HeOp::EncryptInput { feature } => (K::EncryptInput, i64::from(feature)),
        HeOp::Add(..) => (K::Add, 0),
        HeOp::Sub(..) => (K::Sub, 0),
        HeOp::AddPlain(_, p) => (K::AddPlain, i64::from(p.0)),
        HeOp::MulPlain(_, p) => (K::MulPlain, i64::from(p.0)),
        HeOp::Mul(..) => (K::Mul, 0),
        HeOp::Square(..) => (K::Square, 0),
        HeOp::Relinearize(..) => (K::Relinearize, 0),
        HeOp::Rescale(..) => (K::Rescale, 0),
        HeOp::ModSwitch(..) => (K::ModSwitch, 0),
        HeOp::Rotate(_, s) => (K::Rotate, i64::from(s)),
        HeOp::Output { index, .. } => (K::Output, i64::from(index)),
    }
}

fn params_from(p: pb::CkksParameters) -> Result<CkksParams, FileError> {
    let degree = p.poly_degree;
    let Some(max_bits) = params::max_bits_128(degree) else {
        return Err(invalid(format!(
            "polynomial degree {degree} is not one of {:?}",
            params::DEGREES
        )));
    };
    if !(2..=MAX_CHAIN).contains(&p.chain_bits.len()) {
        return Err(invalid(format!(
            "a modulus chain of {} primes (2 to {MAX_CHAIN})",
            p.chain_bits.len()
        )));
    }
    let in_range = |b: u32| (params::MIN_PRIME_BITS..=params::MAX_PRIME_BITS).contains(&b);
    if let Some(&bad) = p.chain_bits.iter().find(|&&b| !in_range(b)) {
        return Err(invalid(format!(
            "a {bad}-bit prime in the chain (SEAL takes {}..={} bits)",
            params::MIN_PRIME_BITS,
            params::MAX_PRIME_BITS
        )));
    }
    if !in_range(p.scale_bits) {
        return Err(invalid(format!("scale 2^{}", p.scale_bits)));
    }
    let primes = params::coeff_modulus(degree, &p.chain_bits);
    if primes.as_ref() != Some(&p.primes) {
        return Err(invalid(
            "the primes are not those SEAL makes for the chain's bit sizes",
        ));
    }
    let total: u32 = p.chain_bits.iter().sum();
    let security_bits = match p.security_bits {
        0 => None,
        128 if total <= max_bits => Some(128),
        128 => {
            return Err(invalid(format!(
                "it claims 128-bit security with {total} modulus bits at N = {degree} (at most {max_bits})"
            )))
        }
        other => return Err(invalid(format!("security level {other} (128 or 0)"))),
    };
    Ok(CkksParams {
        degree,
        scale_bits: p.scale_bits,
        chain_bits: p.chain_bits,
        primes: p.primes,
        security_bits,
    })
}

fn shape_from(dims: &[u32], what: &str) -> Result<(Shape, usize), FileError> {
    let mut elements: u64 = 1;
    for &d in dims {
        if d == 0 {
            return Err(invalid(format!("the {what} shape has a zero dimension")));
        }
        elements = elements.saturating_mul(u64::from(d));
    }
    if dims.is_empty() || dims.len() > 8 || elements > MAX_ELEMENTS {
        return Err(invalid(format!(
            "{what} shape {dims:?} (1 to 8 dimensions, at most {MAX_ELEMENTS} elements)"
        )));
    }
    let shape = Shape::new(dims.iter().map(|&d| d as usize).collect::<Vec<_>>());
    Ok((shape, elements as usize))
}

/// The layout's outputs: at least one, names unique and short, shapes
/// matching their elements, all of them within [`MAX_ELEMENTS`].
fn outputs_from(outputs: Vec<pb::ModelOutput>) -> Result<Vec<ProgramOutput>, FileError> {
    if outputs.is_empty() {
        return Err(invalid("the layout has no output"));
    }
    let mut total = 0usize;
    let mut names = std::collections::HashSet::new();
    let mut read = Vec::with_capacity(outputs.len());
    for o in outputs {
        if o.name.len() > MAX_NAME_BYTES || !names.insert(o.name.clone()) {
            return Err(invalid(format!(
                "output name {:?} (unique, at most {MAX_NAME_BYTES} bytes)",
                o.name
            )));
        }
        let (shape, count) = shape_from(&o.shape, "output")?;
        if o.elements.len() != count {
            return Err(invalid(format!(
                "{} elements for output {:?} of shape {shape}",
                o.elements.len(),
                o.name
            )));
        }
        total += count;
        if total as u64 > MAX_ELEMENTS {
            return Err(invalid(format!(
                "the outputs hold more than {MAX_ELEMENTS} elements"
            )));
        }
        let elements = o
            .elements
            .iter()
            .map(|e| match e.encrypted {
                true => OutputElement::Encrypted,
                false => OutputElement::Public(e.public_value),
            })
            .collect();
        read.push(ProgramOutput {
            name: o.name,
            shape,
            elements,
        });
    }
    Ok(read)
}

/// A slot layout, checked against the parameters and the shapes: a block
/// that divides the slots, every written slot (each sample's place plus
/// each replica) inside the ciphertext and taken once, the ciphertext
/// counts, and encrypted output elements (only those) placed.
fn slots_from(
    l: pb::SlotLayout,
    params: &CkksParams,
    input_features: usize,
    elements: &[OutputElement],
) -> Result<SlotLayout, FileError> {
    if l.slots != params.slots() {
        return Err(invalid(format!(
            "a slot layout of {} slots for N = {} ({} slots)",
            l.slots,
            params.degree,
            params.slots()
        )));
    }
    if !l.block.is_power_of_two() || l.block > l.slots {
        return Err(invalid(format!(
            "a block of {} slots (a power of two up to {})",
            l.block, l.slots
        )));
    }
    if l.output_garbage {
        return Err(invalid(
            "output slots that hold partial sums, which the client must not see (a tile \
             program from an earlier version 4 hepack): recompile the model",
        ));
    }
    // Version 3 wrote neither strides nor replicas: samples side by side.
    let stride = if l.sample_stride == 0 {
        l.block
    } else {
        l.sample_stride
    };
    // A value's own place is its first copy; other copies follow it.
    let replicas = |r: Vec<u32>, what: &str| match r.first() {
        None => Ok(vec![0]),
        Some(0) => Ok(r),
        Some(_) => Err(invalid(format!(
            "{what} copies at offsets {r:?}: the first copy must be at offset 0, the place itself"
        ))),
    };
    let input_replicas = replicas(l.input_replica, "input")?;
    let output_replicas = replicas(l.output_replica, "output")?;
    let samples = (l.slots / l.block) as usize;
    let places = |cts: &[u32],
                  slots: &[u32],
                  count: u32,
                  reps: &[u32],
                  what: &str|
     -> Result<Vec<SlotRef>, FileError> {
        // One bit per slot of every ciphertext: bounded, so that a hostile
        // ciphertext count cannot make the check itself exhaust memory (the
        // client would need 64 times as much to pack such inputs).
        let bits = u64::from(count) * u64::from(l.slots);
        if bits > MAX_LAYOUT_SLOTS {
            return Err(invalid(format!(
                "{count} ciphertexts of {} slots for {what}s: more than the {MAX_LAYOUT_SLOTS} \
                 slots this hepack lays out",
                l.slots
            )));
        }
        // More copies than slots must collide: refuse before visiting them.
        let copies = cts.len() as u128 * samples as u128 * reps.len() as u128;
        if copies > u128::from(bits) {
            return Err(invalid(format!(
                "{} {}s × {samples} samples × {} copies in {count} ciphertexts of {} \
                 slots: more places than slots",
                cts.len(),
                what.trim_start_matches("an "),
                reps.len(),
                l.slots
            )));
        }
        let mut taken = vec![0u64; bits.div_ceil(64) as usize];
        cts.iter()
            .zip(slots)
            .map(|(&ct, &slot)| {
                let outside = || {
                    invalid(format!(
                        "{what} at ciphertext {ct}, slot {slot}: outside {count} ciphertexts of \
                         {} slots ({samples} samples every {stride} slots, {} copies), or a slot \
                         taken twice",
                        l.slots,
                        reps.len()
                    ))
                };
                if ct >= count {
                    return Err(outside());
                }
                for j in 0..samples as u64 {
                    for &r in reps {
                        let s = u64::from(slot) + j * u64::from(stride) + u64::from(r);
                        if s >= u64::from(l.slots) {
                            return Err(outside());
                        }
                        let at = ct as usize * l.slots as usize + s as usize;
                        let (word, bit) = (at / 64, 1u64 << (at % 64));
                        if taken[word] & bit != 0 {
                            return Err(outside());
                        }
                        taken[word] |= bit;
                    }
                }
                Ok(SlotRef { ct, slot })
            })
            .collect()
    };
    if l.input_ct.len() != input_features || l.input_slot.len() != input_features {
        return Err(invalid(format!(
            "the slot layout places {} input features, the input has {input_features}",
            l.input_ct.len()
        )));
    }
    if l.input_cts == 0 || l.input_cts as usize > input_features {
        return Err(invalid(format!("{} input ciphertexts", l.input_cts)));
    }
    let input = places(
        &l.input_ct,
        &l.input_slot,
        l.input_cts,
        &input_replicas,
        "an input feature",
    )?;
    if l.output_ct.len() != elements.len() || l.output_slot.len() != elements.len() {
        return Err(invalid(format!(
            "the slot layout places {} output elements, the outputs have {}",
            l.output_ct.len(),
            elements.len()
        )));
    }
    let encrypted: Vec<usize> = (0..elements.len())
        .filter(|&i| matches!(elements[i], OutputElement::Encrypted))
        .collect();
    if l.output_cts as usize > encrypted.len() {
        return Err(invalid(format!(
            "{} output ciphertexts for {} encrypted output elements",
            l.output_cts,
            encrypted.len()
        )));
    }
    let cts: Vec<u32> = encrypted.iter().map(|&i| l.output_ct[i]).collect();
    let slots: Vec<u32> = encrypted.iter().map(|&i| l.output_slot[i]).collect();
    let placed = places(
        &cts,
        &slots,
        l.output_cts,
        &output_replicas,
        "an output element",
    )?;
    let mut output = vec![None; elements.len()];
    for (&i, r) in encrypted.iter().zip(placed) {
        output[i] = Some(r);
    }
    Ok(SlotLayout {
        slots: l.slots,
        block: l.block,
        sample_stride: stride,
        input_cts: l.input_cts,
        input,
        input_replicas,
        output_cts: l.output_cts,
        output,
        output_replicas,
    })
}

/// A vector weight's non-zero slots and their values, by slot.
type SlotValues = Vec<(u32, f64)>;

/// Each weight's non-zero slots if it is a vector: only under a slot
/// layout, runs of slots ascending, apart and inside it, values finite and
/// non-zero, at most [`MAX_VECTOR_SLOTS`] slots in all.
fn vector_weights(
    w: &pb::WeightTable,
    slots: Option<&SlotLayout>,
    version: u32,
) -> Result<Vec<Option<SlotValues>>, FileError> {
    let n = w.value.len();
    let Some(layout) = slots else {
        if !(w.is_vector.is_empty()
            && w.vector_count.is_empty()
            && w.vector_slot.is_empty()
            && w.vector_run.is_empty())
        {
            return Err(invalid("vector weights in a batch-packed program"));
        }
        return Ok(Vec::new());
    };
    if w.is_vector.len() != n || w.vector_count.len() != n {
        return Err(invalid(
            "the weight table's vector columns differ in length",
        ));
    }
    let total: u64 = w.vector_count.iter().map(|&c| u64::from(c)).sum();
    if w.vector_slot.len() as u64 != total || w.vector_value.len() as u64 != total {
        return Err(invalid("the vector entries do not add up to their counts"));
    }
    let runs: std::borrow::Cow<[u32]> = match (version >= 5, w.vector_run.len() as u64) {
        (true, len) if len == total => w.vector_run.as_slice().into(),
        (false, 0) => vec![1; w.vector_slot.len()].into(),
        (true, len) => {
            return Err(invalid(format!(
                "{len} vector runs for {total} vector entries"
            )))
        }
        (false, _) => return Err(invalid("vector runs in a file older than version 5")),
    };
    let slots = layout.slots as u64;
    let mut at = 0usize;
    let mut expanded = 0u64;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let count = w.vector_count[i] as usize;
        if !w.is_vector[i] {
            if count != 0 {
                return Err(invalid(format!("scalar weight @{i} lists vector slots")));
            }
            out.push(None);
            continue;
        }
        let mut entries = Vec::with_capacity(count);
        let mut next = 0u64;
        for ((&slot, &v), &run) in w.vector_slot[at..at + count]
            .iter()
            .zip(&w.vector_value[at..at + count])
            .zip(&runs[at..at + count])
        {
            let end = u64::from(slot) + u64::from(run);
            if u64::from(slot) < next || run == 0 || end > slots || !v.is_finite() || v == 0.0 {
                return Err(invalid(format!(
                    "vector weight @{i}: {run} slots from {slot} = {v} (runs of slots \
                     ascending and apart in 0..{slots}, values finite and non-zero)"
                )));
            }
            expanded += u64::from(run);
            if expanded > MAX_VECTOR_SLOTS {
                return Err(invalid(format!(
                    "vector weights fill more than {MAX_VECTOR_SLOTS} slots in all"
                )));
            }
            next = end;
            entries.extend((slot..slot + run).map(|s| (s, v)));
        }
        at += count;
        out.push(Some(entries));
    }
    Ok(out)
}

fn from_message(m: pb::ProgramFile) -> Result<Program, FileError> {
    if m.magic != MAGIC {
        return Err(FileError::NotAProgram(format!("magic {:?}", m.magic)));
    }
    if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&m.format_version) {
        return Err(FileError::Version {
            found: m.format_version,
        });
    }
    let model_sha256 = match m.model_sha256.len() {
        0 => None,
        32 => Some(m.model_sha256.as_slice().try_into().expect("32 bytes")),
        n => {
            return Err(invalid(format!(
                "a model hash of {n} bytes (SHA-256 has 32)"
            )))
        }
    };
    let params = params_from(m.params.ok_or_else(|| invalid("no CKKS parameters"))?)?;
    let levels = params.levels();
    let layout = m.layout.ok_or_else(|| invalid("no layout"))?;
    let (input_shape, input_features) = shape_from(&layout.input_shape, "input")?;
    let outputs = outputs_from(layout.outputs)?;
    // The elements of all outputs, as output ops index them.
    let elements: Vec<OutputElement> = outputs.iter().flat_map(|o| o.elements.clone()).collect();
    // The version that brought each slot packing's layout.
    let since = |packing: &str| match packing {
        "diagonal" => Some(3),
        "tile" => Some(4),
        _ => None,
    };
    let slots = match (layout.packing.as_str(), layout.slots) {
        ("batch", None) => None,
        (packing, Some(l)) if since(packing).is_some_and(|v| m.format_version >= v) => {
            Some(slots_from(l, &params, input_features, &elements)?)
        }
        (packing, Some(_)) if since(packing).is_some() => {
            return Err(invalid(format!(
                "packing {packing:?} in a version {} file (its slot layouts came with version {})",
                m.format_version,
                since(packing).expect("checked")
            )))
        }
        (packing, _) => {
            return Err(invalid(format!(
                "packing {packing:?} with{} a slot layout (this hepack runs \"batch\" without \
                 and \"diagonal\" and \"tile\" with one)",
                if matches!(packing, "batch") {
                    ""
                } else {
                    "out"
                }
            )))
        }
    };
    // What input and output ops number: features and elements under batch
    // packing, ciphertexts under slot packings.
    let (inputs, output_count) = match &slots {
        None => (input_features, elements.len()),
        Some(l) => (l.input_cts as usize, l.output_cts as usize),
    };
    if m.layers.is_empty() {
        return Err(invalid("no layers"));
    }
    let weights = m.weights.unwrap_or_default();
    let plain_count = weights.value.len();
    if weights.scale.len() != plain_count || weights.level.len() != plain_count {
        return Err(invalid("the weight table's columns differ in length"));
    }
    let vectors = vector_weights(&weights, slots.as_ref(), m.format_version)?;
    let mut plains = Vec::with_capacity(plain_count);
    for (i, ((&value, &scale), &level)) in weights
        .value
        .iter()
        .zip(&weights.scale)
        .zip(&weights.level)
        .enumerate()
    {
        if !value.is_finite() || !scale.is_finite() || scale < 1.0 || level > levels {
            return Err(invalid(format!(
                "weight @{i}: value {value}, scale {scale}, level {level}"
            )));
        }
        let depth = levels - level;
        plains.push(match vectors.get(i).cloned().flatten() {
            Some(entries) => Plain::Vector {
                slots: params.slots(),
                entries,
                scale,
                depth,
            },
            None => Plain::Scalar {
                value,
                scale,
                depth,
            },
        });
    }
    let ops = m.ops.unwrap_or_default();
    let n = ops.kind.len();
    let columns = [
        ops.layer.len(),
        ops.immediate.len(),
        ops.level.len(),
        ops.scale.len(),
        ops.size.len(),
        ops.last_use.len(),
    ];
    if columns.iter().any(|&c| c != n) {
        return Err(invalid("the op columns differ in length"));
    }
    let mut instrs = Vec::with_capacity(n);
    let mut defines: Vec<bool> = Vec::with_capacity(n);
    let mut args = ops.args.iter().copied();
    let mut output_seen = vec![false; output_count];
    for i in 0..n {
        let fail = |why: String| invalid(format!("op {i}: {why}"));
        let kind = pb::OpKind::try_from(ops.kind[i])
            .map_err(|_| fail(format!("unknown kind {}", ops.kind[i])))?;
        let mut operand = || -> Result<ValueId, FileError> {
            let v = args
                .next()
                .ok_or_else(|| fail("the argument column ends early".into()))?;
            if (v as usize) >= i || !defines[v as usize] {
                return Err(fail(format!(
                    "reads %{v}, which is not a ciphertext defined before it"
                )));
            }
            Ok(ValueId(v))
        };
        let imm = ops.immediate[i];
        let index = |limit: usize, what: &str| -> Result<u32, FileError> {
            u32::try_from(imm)
                .ok()
                .filter(|&x| (x as usize) < limit)
                .ok_or_else(|| fail(format!("{what} {imm} out of range (0..{limit})")))
        };
        use pb::OpKind as K;
        let op = match kind {
            K::Unspecified => return Err(fail("no kind".into())),
            K::EncryptInput => HeOp::EncryptInput {
                feature: index(inputs, "input")?,
            },
            K::Add => HeOp::Add(operand()?, operand()?),
            K::Sub => HeOp::Sub(operand()?, operand()?),
            K::Mul => HeOp::Mul(operand()?, operand()?),
            K::AddPlain => HeOp::AddPlain(operand()?, PlainId(index(plain_count, "weight")?)),
            K::MulPlain => HeOp::MulPlain(operand()?, PlainId(index(plain_count, "weight")?)),
            K::Square => HeOp::Square(operand()?),
            K::Relinearize => HeOp::Relinearize(operand()?),
            K::Rescale => HeOp::Rescale(operand()?),
            K::ModSwitch => HeOp::ModSwitch(operand()?),
            K::Rotate => {
                let steps = i32::try_from(imm)
                    .ok()
                    .filter(|s| s.unsigned_abs() < params.slots())
                    .ok_or_else(|| fail(format!("rotation by {imm} slots")))?;
                HeOp::Rotate(operand()?, steps)
            }
            K::Output => {
                let value = operand()?;
                let index = index(output_count, "output")?;
                let slot = &mut output_seen[index as usize];
                let public = slots.is_none()
                    && !matches!(elements[index as usize], OutputElement::Encrypted);
                if *slot || public {
                    return Err(fail(format!(
                        "outputs element {index}, which is public or already output"
                    )));
                }
                *slot = true;
                HeOp::Output { value, index }
            }
        };
        let layer = ops.layer[i];
        if layer as usize >= m.layers.len() {
            return Err(fail(format!("layer {layer} of {}", m.layers.len())));
        }
        defines.push(op.defines_value());
        instrs.push(Instr {
            op,
            layer: LayerIdx(layer),
        });
    }
    if args.next().is_some() {
        return Err(invalid(
            "the argument column has more entries than the ops read",
        ));
    }
    let missing = match &slots {
        None => elements
            .iter()
            .zip(&output_seen)
            .position(|(o, &seen)| matches!(o, OutputElement::Encrypted) && !seen),
        Some(_) => output_seen.iter().position(|&seen| !seen),
    };
    if let Some(missing) = missing {
        return Err(invalid(format!(
            "encrypted output {missing} has no output op"
        )));
    }
    let program = Program {
        packing: layout.packing,
        input_shape,
        outputs,
        removed_by_dce: m.layers.iter().map(|l| l.removed_by_dce).collect(),
        layers: m
            .layers
            .into_iter()
            .map(|l| LayerName::new(l.name))
            .collect(),
        instrs,
        plains,
        params,
        model_sha256,
        slots,
    };
    check_recorded(&program, &ops, &m.rotation_steps)?;
    Ok(program)
}

/// The levels, scales, sizes, last uses and rotation steps the file records
/// must be the ones its ops imply (and SEAL must accept the ops).
fn check_recorded(program: &Program, ops: &pb::Ops, steps: &[i32]) -> Result<(), FileError> {
    let metas = crate::levels::check(program).map_err(|e| invalid(e.to_string()))?;
    let levels = program.params.levels();
    let last = crate::order::last_uses(program);
    for (i, instr) in program.instrs.iter().enumerate() {
        let meta = match instr.op {
            HeOp::Output { value, .. } => metas[value.0 as usize],
            _ => metas[i],
        }
        .expect("checked ops have metas");
        let recorded = (ops.level[i], ops.scale[i], ops.size[i]);
        if recorded != (levels - meta.depth, meta.scale, u32::from(meta.size)) {
            return Err(invalid(format!(
                "op {i} records level {}, scale {}, size {}, but its operands make level {}, scale {}, size {}",
                recorded.0,
                recorded.1,
                recorded.2,
                levels - meta.depth,
                meta.scale,
                meta.size
            )));
        }
        if ops.last_use[i] != last[i].map_or(0, |l| l + 1) {
            return Err(invalid(format!(
                "op {i} records its value's last use wrongly (a runtime would free it too early or never)"
            )));
        }
    }
    if steps != program.rotation_steps() {
        return Err(invalid(format!(
            "rotation steps {steps:?}, but the ops rotate by {:?}",
            program.rotation_steps()
        )));
    }
    Ok(())
}
