//! Emitting ops with abstract values: every value is `Zero`, a `Public`
//! constant, or an `Encrypted` ciphertext (DESIGN.md §3). A product with a zero
//! weight is `Zero` and emits nothing, `Zero` addends vanish, and arithmetic on
//! public values is done here, in plaintext, never encrypted.

use std::collections::HashMap;

use crate::program::{HeOp, Instr, LayerIdx, Plain, PlainId, ValueId, KINDS};

/// A ciphertext as lowering sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ct {
    /// Its value (meaningful only when the builder records ops).
    pub id: ValueId,
    /// Multiplications (ciphertext or plaintext) on its longest path from an input.
    pub depth: u32,
}

/// What lowering knows about one value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Abs {
    /// Exactly zero for every input.
    Zero,
    /// The same constant for every input.
    Public(f64),
    /// A ciphertext.
    Encrypted(Ct),
}

impl Abs {
    /// `v` as a public value (`Zero` when it is 0).
    pub fn public(v: f64) -> Abs {
        if v == 0.0 {
            Abs::Zero
        } else {
            Abs::Public(v)
        }
    }
}

/// What a [`Builder`] does with the ops it is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Keep every op (a program is being built).
    Record,
    /// Only count ops per layer and kind.
    Count,
    /// Count what a lowering without abstract values would emit: every value
    /// encrypted, every linear-layer weight treated as non-zero.
    Naive,
}

/// Builds the op list for one program, or only counts it.
pub struct Builder {
    mode: Mode,
    /// The ops (empty unless recording).
    pub instrs: Vec<Instr>,
    /// The weight table.
    pub plains: Vec<Plain>,
    plain_ids: HashMap<u64, PlainId>,
    /// The layer new ops are attributed to.
    pub layer: LayerIdx,
    /// While set, ops are neither counted nor recorded: the value being built is
    /// dead (no output reaches it), which the counting path knows beforehand.
    pub muted: bool,
    /// Ops per layer and kind.
    pub counts: Vec<[u64; KINDS.len()]>,
    /// The deepest output so far: the levels the program consumes.
    pub output_depth: u32,
}

/// The terms of a sum being accumulated.
struct Terms {
    /// Ciphertext terms (their ids only when recording).
    ids: Vec<ValueId>,
    encrypted: u64,
    depth: u32,
    constant: f64,
}

impl Builder {
    /// A builder for a graph with `layers` layers.
    pub fn new(layers: usize, mode: Mode) -> Builder {
        Builder {
            mode,
            instrs: Vec::new(),
            plains: Vec::new(),
            plain_ids: HashMap::new(),
            layer: LayerIdx(0),
            muted: false,
            counts: vec![[0; KINDS.len()]; layers],
            output_depth: 0,
        }
    }

    fn naive(&self) -> bool {
        self.mode == Mode::Naive
    }

    /// Append an op whose result has `depth`; returns its value.
    pub fn emit(&mut self, op: HeOp, depth: u32) -> Ct {
        if self.muted {
            return Ct {
                id: ValueId(0),
                depth,
            };
        }
        self.counts[self.layer.0 as usize][op.kind_index()] += 1;
        if self.mode != Mode::Record {
            // Ids are not needed for counting (and would overflow on big models).
            return Ct {
                id: ValueId(0),
                depth,
            };
        }
        let id = ValueId(self.instrs.len() as u32);
        self.instrs.push(Instr {
            op,
            layer: self.layer,
        });
        Ct { id, depth }
    }

    /// The weight-table entry for a scalar (each distinct value stored once).
    pub fn scalar(&mut self, v: f64) -> PlainId {
        if self.muted {
            return PlainId(0);
        }
        let next = PlainId(self.plains.len() as u32);
        let id = *self.plain_ids.entry(v.to_bits()).or_insert(next);
        if id == next {
            self.plains.push(Plain::Scalar(v));
        }
        id
    }

    fn value(&self, x: Abs) -> Abs {
        match x {
            // A naive lowering encrypts everything; any id serves for counting.
            Abs::Zero | Abs::Public(_) if self.naive() => Abs::Encrypted(Ct {
                id: ValueId(0),
                depth: 0,
            }),
            _ => x,
        }
    }

    /// An encrypted input feature.
    pub fn input(&mut self, feature: u32) -> Abs {
        Abs::Encrypted(self.emit(HeOp::EncryptInput { feature }, 0))
    }

    /// Ciphertext `value` is element `index` of the model's output.
    pub fn output(&mut self, value: Ct, index: u32) {
        self.output_depth = self.output_depth.max(value.depth);
        self.emit(
            HeOp::Output {
                value: value.id,
                index,
            },
            value.depth,
        );
    }

    /// `x · w`.
    pub fn scale(&mut self, x: Abs, w: f64) -> Abs {
        match self.value(x) {
            Abs::Zero => Abs::Zero,
            Abs::Public(p) => Abs::public(p * w),
            Abs::Encrypted(_) if w == 0.0 && !self.naive() => Abs::Zero,
            Abs::Encrypted(v) if w == 1.0 => Abs::Encrypted(v),
            Abs::Encrypted(v) => {
                let p = self.scalar(w);
                Abs::Encrypted(self.emit(HeOp::MulPlain(v.id, p), v.depth + 1))
            }
        }
    }

    /// `x + c`.
    pub fn shift(&mut self, x: Abs, c: f64) -> Abs {
        match self.value(x) {
            Abs::Zero => Abs::public(c),
            Abs::Public(p) => Abs::public(p + c),
            Abs::Encrypted(v) if c == 0.0 && !self.naive() => Abs::Encrypted(v),
            Abs::Encrypted(v) => {
                let p = self.scalar(c);
                Abs::Encrypted(self.emit(HeOp::AddPlain(v.id, p), v.depth))
            }
        }
    }

    /// The sum of `terms`: public parts are added up here, ciphertexts pairwise
    /// in a balanced tree (same op count as a chain, shallower for the runtime).
    pub fn sum(&mut self, terms: impl IntoIterator<Item = Abs>) -> Abs {
        let mut acc = self.terms(0.0);
        for t in terms {
            self.push(&mut acc, t);
        }
        self.finish(acc)
    }

    /// `Σ wᵢ·xᵢ + bias`: a linear layer's output.
    pub fn lincomb(&mut self, terms: impl IntoIterator<Item = (Abs, f64)>, bias: f64) -> Abs {
        let mut acc = self.terms(bias);
        for (x, w) in terms {
            let product = self.scale(x, w);
            self.push(&mut acc, product);
        }
        self.finish(acc)
    }

    fn terms(&self, constant: f64) -> Terms {
        Terms {
            ids: Vec::new(),
            encrypted: 0,
            depth: 0,
            constant,
        }
    }

    fn push(&self, acc: &mut Terms, t: Abs) {
        match self.value(t) {
            Abs::Encrypted(v) => {
                acc.encrypted += 1;
                acc.depth = acc.depth.max(v.depth);
                if self.mode == Mode::Record {
                    acc.ids.push(v.id);
                }
            }
            Abs::Public(p) => acc.constant += p,
            Abs::Zero => {}
        }
    }

    /// Add up accumulated terms, with one `add_plain` at most.
    fn finish(&mut self, acc: Terms) -> Abs {
        let depth = acc.depth;
        let first = match acc.encrypted {
            0 => return Abs::public(acc.constant),
            n if self.mode != Mode::Record || self.muted => {
                for _ in 1..n {
                    self.emit(HeOp::Add(ValueId(0), ValueId(0)), depth);
                }
                Ct {
                    id: acc.ids.first().copied().unwrap_or(ValueId(0)),
                    depth,
                }
            }
            _ => {
                let mut level: Vec<ValueId> = acc.ids;
                while level.len() > 1 {
                    let mut next = Vec::with_capacity(level.len().div_ceil(2));
                    for pair in level.chunks(2) {
                        next.push(match *pair {
                            [a, b] => self.emit(HeOp::Add(a, b), depth).id,
                            [a] => a,
                            _ => unreachable!("chunks of two"),
                        });
                    }
                    level = next;
                }
                Ct {
                    id: level[0],
                    depth,
                }
            }
        };
        if acc.constant == 0.0 {
            Abs::Encrypted(first)
        } else {
            self.shift(Abs::Encrypted(first), acc.constant)
        }
    }

    /// `Σ cₖ·xᵏ`, with the powers computed by squarings and products of powers
    /// of two (depth ⌈log₂ k⌉), each relinearized.
    pub fn polynomial(&mut self, x: Abs, coeffs: &[f64]) -> Abs {
        let v = match self.value(x) {
            Abs::Encrypted(v) => v,
            other => {
                let p = match other {
                    Abs::Public(p) => p,
                    _ => 0.0,
                };
                return Abs::public(coeffs.iter().rev().fold(0.0, |acc, &c| acc * p + c));
            }
        };
        let degree = coeffs.len().saturating_sub(1);
        // Coefficients define the activation; unlike pruned weights, even a
        // naive lowering skips the zero ones.
        let needed = |k: usize| coeffs[k] != 0.0;
        // Which powers are needed: those with a coefficient, and their factors.
        let mut want = vec![false; degree + 1];
        for k in (1..=degree).rev() {
            if needed(k) || want[k] {
                want[k] = true;
                if k > 1 {
                    let m = split(k);
                    want[m] = true;
                    want[k - m] = true;
                }
            }
        }
        let mut powers: Vec<Option<Ct>> = vec![None; degree + 1];
        if degree >= 1 {
            powers[1] = Some(v);
        }
        for k in 2..=degree {
            if !want[k] {
                continue;
            }
            let m = split(k);
            let (a, b) = (powers[m].expect("factor"), powers[k - m].expect("factor"));
            let depth = a.depth.max(b.depth) + 1;
            let product = if m == k - m {
                self.emit(HeOp::Square(a.id), depth)
            } else {
                self.emit(HeOp::Mul(a.id, b.id), depth)
            };
            powers[k] = Some(self.emit(HeOp::Relinearize(product.id), depth));
        }
        let terms: Vec<(Abs, f64)> = (1..=degree)
            .filter(|&k| needed(k))
            .map(|k| (Abs::Encrypted(powers[k].expect("computed")), coeffs[k]))
            .collect();
        let c0 = coeffs.first().copied().unwrap_or(0.0);
        self.lincomb(terms, c0)
    }
}

/// Whether `Σ cₖ·xᵏ` reads `x` at all (some coefficient past the constant is
/// non-zero).
pub fn reads_input(coeffs: &[f64]) -> bool {
    coeffs.iter().skip(1).any(|&c| c != 0.0)
}

/// The largest power of two below `k` (for `k` a power of two: `k / 2`).
fn split(k: usize) -> usize {
    let p = 1usize << (usize::BITS - 1 - k.leading_zeros());
    if p == k {
        k / 2
    } else {
        p
    }
}
