//! Emitting ops with abstract values: every value is `Zero`, a `Public`
//! constant, or an `Encrypted` ciphertext (DESIGN.md §3). A product with a zero
//! weight is `Zero` and emits nothing, `Zero` addends vanish, and arithmetic on
//! public values is done here, in plaintext, never encrypted.

use std::collections::HashMap;

use crate::program::{HeOp, Instr, LayerIdx, Plain, PlainId, ValueId, KINDS};

/// What lowering knows about one value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Abs {
    /// Exactly zero for every input.
    Zero,
    /// The same constant for every input.
    Public(f64),
    /// A ciphertext.
    Encrypted(ValueId),
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

/// Builds the op list for one program, or only counts it.
pub struct Builder {
    /// With `naive`, every value is treated as encrypted and every weight as
    /// non-zero: the count a lowering without abstract values would reach.
    naive: bool,
    record: bool,
    /// The ops (empty when only counting).
    pub instrs: Vec<Instr>,
    /// The weight table.
    pub plains: Vec<Plain>,
    plain_ids: HashMap<u64, PlainId>,
    next_value: u32,
    /// The layer new ops are attributed to.
    pub layer: LayerIdx,
    /// Ops per layer and kind.
    pub counts: Vec<[u64; KINDS.len()]>,
}

impl Builder {
    /// A builder that records ops (`record`) or only counts them, exactly
    /// (`naive = false`) or as a lowering without abstract values would.
    pub fn new(layers: usize, record: bool, naive: bool) -> Builder {
        Builder {
            naive,
            record,
            instrs: Vec::new(),
            plains: Vec::new(),
            plain_ids: HashMap::new(),
            next_value: 0,
            layer: LayerIdx(0),
            counts: vec![[0; KINDS.len()]; layers],
        }
    }

    /// Append an op; returns the value it defines.
    pub fn emit(&mut self, op: HeOp) -> ValueId {
        self.counts[self.layer.0 as usize][op.kind_index()] += 1;
        let id = ValueId(self.next_value);
        self.next_value += 1;
        if self.record {
            self.instrs.push(Instr {
                op,
                layer: self.layer,
            });
        }
        id
    }

    /// The weight-table entry for a scalar (each distinct value stored once).
    pub fn scalar(&mut self, v: f64) -> PlainId {
        if let Some(&id) = self.plain_ids.get(&v.to_bits()) {
            return id;
        }
        let id = PlainId(self.plains.len() as u32);
        self.plains.push(Plain::Scalar(v));
        self.plain_ids.insert(v.to_bits(), id);
        id
    }

    fn value(&self, x: Abs) -> Abs {
        match x {
            // A naive lowering encrypts everything; any id serves for counting.
            Abs::Zero | Abs::Public(_) if self.naive => Abs::Encrypted(ValueId(0)),
            _ => x,
        }
    }

    /// An encrypted input feature.
    pub fn input(&mut self, feature: u32) -> Abs {
        Abs::Encrypted(self.emit(HeOp::EncryptInput { feature }))
    }

    /// `x · w`.
    pub fn scale(&mut self, x: Abs, w: f64) -> Abs {
        match self.value(x) {
            Abs::Zero => Abs::Zero,
            Abs::Public(p) => Abs::public(p * w),
            Abs::Encrypted(_) if w == 0.0 && !self.naive => Abs::Zero,
            Abs::Encrypted(v) if w == 1.0 => Abs::Encrypted(v),
            Abs::Encrypted(v) => {
                let p = self.scalar(w);
                Abs::Encrypted(self.emit(HeOp::MulPlain(v, p)))
            }
        }
    }

    /// `x + c`.
    pub fn shift(&mut self, x: Abs, c: f64) -> Abs {
        match self.value(x) {
            Abs::Zero => Abs::public(c),
            Abs::Public(p) => Abs::public(p + c),
            Abs::Encrypted(v) if c == 0.0 && !self.naive => Abs::Encrypted(v),
            Abs::Encrypted(v) => {
                let p = self.scalar(c);
                Abs::Encrypted(self.emit(HeOp::AddPlain(v, p)))
            }
        }
    }

    /// `a + b`.
    pub fn add(&mut self, a: Abs, b: Abs) -> Abs {
        match (self.value(a), self.value(b)) {
            (Abs::Encrypted(x), Abs::Encrypted(y)) => Abs::Encrypted(self.emit(HeOp::Add(x, y))),
            (Abs::Encrypted(x), c) | (c, Abs::Encrypted(x)) => {
                let c = match c {
                    Abs::Public(p) => p,
                    _ => 0.0,
                };
                self.shift(Abs::Encrypted(x), c)
            }
            (x, y) => Abs::public(public_value(x) + public_value(y)),
        }
    }

    /// The sum of `terms`: public parts are added up here, ciphertexts pairwise
    /// in a balanced tree (same op count as a chain, shallower for the runtime).
    pub fn sum(&mut self, terms: impl IntoIterator<Item = Abs>) -> Abs {
        self.sum_plus(terms, 0.0)
    }

    /// `Σ terms + constant`, with one `add_plain` at most.
    fn sum_plus(&mut self, terms: impl IntoIterator<Item = Abs>, mut constant: f64) -> Abs {
        let mut encrypted = Vec::new();
        for t in terms {
            match self.value(t) {
                Abs::Encrypted(v) => encrypted.push(v),
                other => constant += public_value(other),
            }
        }
        while encrypted.len() > 1 {
            let mut next = Vec::with_capacity(encrypted.len().div_ceil(2));
            for pair in encrypted.chunks(2) {
                next.push(match *pair {
                    [a, b] => self.emit(HeOp::Add(a, b)),
                    [a] => a,
                    _ => unreachable!("chunks of two"),
                });
            }
            encrypted = next;
        }
        match encrypted.first() {
            Some(&v) if constant == 0.0 => Abs::Encrypted(v),
            Some(&v) => self.shift(Abs::Encrypted(v), constant),
            None => Abs::public(constant),
        }
    }

    /// `Σ wᵢ·xᵢ + bias`: a linear layer's output.
    pub fn lincomb(&mut self, terms: impl IntoIterator<Item = (Abs, f64)>, bias: f64) -> Abs {
        let products: Vec<Abs> = terms.into_iter().map(|(x, w)| self.scale(x, w)).collect();
        self.sum_plus(products, bias)
    }

    /// `Σ cₖ·xᵏ`, with the powers computed by squarings and products of powers
    /// of two (depth ⌈log₂ k⌉), each relinearized.
    pub fn polynomial(&mut self, x: Abs, coeffs: &[f64]) -> Abs {
        let v = match self.value(x) {
            Abs::Encrypted(v) => v,
            other => {
                let p = public_value(other);
                return Abs::public(coeffs.iter().rev().fold(0.0, |acc, &c| acc * p + c));
            }
        };
        let degree = coeffs.len().saturating_sub(1);
        let naive = self.naive;
        let needed = |k: usize, c: &[f64]| naive || c[k] != 0.0;
        // Which powers are needed: those with a coefficient, and their factors.
        let mut want = vec![false; degree + 1];
        for k in (1..=degree).rev() {
            if needed(k, coeffs) || want[k] {
                want[k] = true;
                if k > 1 {
                    let m = split(k);
                    want[m] = true;
                    want[k - m] = true;
                }
            }
        }
        let mut powers: Vec<Option<ValueId>> = vec![None; degree + 1];
        if degree >= 1 {
            powers[1] = Some(v);
        }
        for k in 2..=degree {
            if !want[k] {
                continue;
            }
            let m = split(k);
            let (a, b) = (powers[m].expect("factor"), powers[k - m].expect("factor"));
            let product = if m == k - m {
                self.emit(HeOp::Square(a))
            } else {
                self.emit(HeOp::Mul(a, b))
            };
            powers[k] = Some(self.emit(HeOp::Relinearize(product)));
        }
        let terms: Vec<(Abs, f64)> = (1..=degree)
            .filter(|&k| needed(k, coeffs))
            .map(|k| (Abs::Encrypted(powers[k].expect("computed")), coeffs[k]))
            .collect();
        let c0 = coeffs.first().copied().unwrap_or(0.0);
        self.lincomb(terms, c0)
    }
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

fn public_value(x: Abs) -> f64 {
    match x {
        Abs::Public(p) => p,
        _ => 0.0,
    }
}
