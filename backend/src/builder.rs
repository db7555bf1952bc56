//! Emitting ops with abstract values: every value is `Zero`, a `Public`
//! constant, or `Encrypted` (DESIGN.md §3). A product with a zero weight is
//! `Zero` and emits nothing, `Zero` addends vanish, and arithmetic on public
//! values is done here, in plaintext, never encrypted.
//!
//! An encrypted value is a ciphertext times a pending public factor plus a
//! pending public offset ([`Enc`]). Factors and offsets cost nothing until a
//! consumer needs them: a weighted sum folds them into its plaintext weights
//! and bias, a polynomial into its coefficients. So an average pool, a
//! per-channel affine, or the outer constants of a completed square
//! (`a·x² + b·x + c = a·(x + b/2a)² + c − b²/4a`) never cost a level; only an
//! output materialises what is pending.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use hepack_ir::LayerName;

use crate::error::BackendError;
use crate::fuse::FusedCounts;
use crate::program::{HeOp, Instr, LayerIdx, Plain, PlainId, ValueId, KINDS};

/// A ciphertext as lowering sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ct {
    /// Its value (meaningful only when the builder records ops).
    pub id: ValueId,
    /// Levels consumed: rescales and modulus switches on its path.
    pub depth: u32,
    /// Its CKKS scale, exactly as SEAL will compute it.
    pub scale: f64,
    /// Polynomials in the ciphertext: 2, or 3 after a product until relinearized.
    pub size: u8,
    /// A square whose rescale is left to the linear combinations that read
    /// it (scale Δ² instead of Δ; see [`Builder::defer_rescale`]).
    pub owes_rescale: bool,
}

/// The scale of fresh ciphertexts and the prime each rescale divides by.
#[derive(Clone, Debug, PartialEq)]
pub struct Scales {
    /// Δ, a power of two.
    pub delta: f64,
    /// `primes[d]`: the prime (as SEAL's `double`) a rescale at depth `d` divides by.
    pub primes: Vec<f64>,
}

impl Scales {
    /// Stand-in primes for lowering before parameters are chosen: distinct,
    /// close to Δ, and unrelated to each other, so that scales that are equal
    /// here are equal for any real chain.
    pub fn provisional(scale_bits: u32) -> Scales {
        let delta = 2f64.powi(scale_bits as i32);
        let primes = (1..=256u32)
            .map(|d| delta * (1.0 + f64::from(d) * 0.618_033_988_7e-6 + f64::from(d * d) * 1e-11))
            .collect();
        Scales { delta, primes }
    }

    /// The real chain's Δ and primes.
    pub fn of(params: &crate::params::CkksParams) -> Scales {
        Scales {
            delta: 2f64.powi(params.scale_bits as i32),
            primes: (0..params.levels())
                .map(|d| params.rescale_prime(d).expect("within the chain") as f64)
                .collect(),
        }
    }

    fn prime(&self, depth: u32) -> f64 {
        // Past the chain, keep going with Δ: the program is rejected later by
        // parameter selection, not here.
        self.primes
            .get(depth as usize)
            .copied()
            .unwrap_or(self.delta)
    }
}

/// An encrypted value: `mult · ct + offset`, the factor and offset public
/// and not yet applied.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Enc {
    /// The ciphertext.
    pub ct: Ct,
    /// Pending factor (never 0 outside naive counting).
    pub mult: f64,
    /// Pending offset.
    pub offset: f64,
}

impl Enc {
    /// The ciphertext itself, nothing pending.
    pub fn of(ct: Ct) -> Enc {
        Enc {
            ct,
            mult: 1.0,
            offset: 0.0,
        }
    }
}

/// What lowering knows about one value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Abs {
    /// Exactly zero for every input.
    Zero,
    /// The same constant for every input.
    Public(f64),
    /// Depends on the encrypted input.
    Encrypted(Enc),
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

/// What a value of an add tree is to the runtime's fusion.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Term {
    /// A ciphertext computed on its own.
    Plain,
    /// A product by a weight that only the tree reads.
    Product,
    /// A sum folded into a linear combination.
    Sum,
}

/// The weight table's hasher: a multiply-rotate hash over the keys' words.
/// The table is looked up once per product (5·10⁸ times costing VGG-16), and
/// SipHash's resistance to chosen keys, which the compiler's own keys do not
/// need, was 45 % of that costing.
type WeightKeys = BuildHasherDefault<WordHasher>;

/// See [`WeightKeys`].
#[derive(Clone, Copy, Default)]
struct WordHasher(u64);

impl WordHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0xf135_7aea_2e62_a9c5);
    }
}

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.add(word);
    }

    fn write_u32(&mut self, word: u32) {
        self.add(u64::from(word));
    }

    fn finish(&self) -> u64 {
        // The multiply leaves the high bits best mixed; hashbrown picks the
        // bucket from the low ones.
        self.0.rotate_left(26)
    }
}

/// Builds the op list for one program, or only counts it.
pub struct Builder {
    mode: Mode,
    /// The ops (empty unless recording).
    pub instrs: Vec<Instr>,
    /// The weight table.
    pub plains: Vec<Plain>,
    plain_ids: HashMap<(u64, u64, u32), PlainId, WeightKeys>,
    /// Vector entries by a hash of their values, scale and depth.
    vector_ids: HashMap<(u64, u64, u32), Vec<PlainId>, WeightKeys>,
    /// Slots per ciphertext, for slot packings (N/2 of the parameters, or
    /// of the largest N before they are chosen: the depth does not depend
    /// on it).
    pub slots: u32,
    /// The layer new ops are attributed to.
    pub layer: LayerIdx,
    /// While set, ops are neither counted nor recorded: the value being built is
    /// dead (no output reaches it), which the counting path knows beforehand.
    pub muted: bool,
    /// Ops per layer and kind.
    pub counts: Vec<[u64; KINDS.len()]>,
    /// The deepest output so far: the levels the program consumes.
    pub output_depth: u32,
    /// The deepest value emitted so far.
    pub max_depth: u32,
    /// The most levels any parameters allow (see [`Builder::check_depth`]).
    pub depth_cap: Option<u32>,
    /// Products and sums the runtime will fuse (counted unless recording).
    pub fused: FusedCounts,
    /// Op times that price a lowering's choices (a slot packing's
    /// baby-step giant-step split, where to relinearize).
    pub times: crate::cost::OpTimes,
    /// While set, a degree-2 polynomial leaves its square at three
    /// polynomials: the linear layer that reads it relinearizes once per
    /// output instead of once per square (lazy relinearization; the lowering
    /// decides per layer, by the op times: batch packing's
    /// `lazy_relinearizations`).
    pub lazy_relinearize: bool,
    /// While set, a degree-2 polynomial leaves its square unrescaled, at
    /// scale Δ² one level up: each linear combination that reads it
    /// multiplies at Δ·q·q′ and rescales twice, one rescale per output
    /// instead of one per square, the depth unchanged (lazy rescaling;
    /// batch packing's `square_plans` decides per layer). Any other reader
    /// rescales it first.
    pub defer_rescale: bool,
    scales: Scales,
}

impl Builder {
    /// A builder for a graph with `layers` layers, scheduling levels with `scales`.
    pub fn new(layers: usize, mode: Mode, scales: Scales) -> Builder {
        Builder {
            mode,
            instrs: Vec::new(),
            plains: Vec::new(),
            plain_ids: HashMap::default(),
            vector_ids: HashMap::default(),
            slots: 16384,
            layer: LayerIdx(0),
            muted: false,
            counts: vec![[0; KINDS.len()]; layers],
            output_depth: 0,
            max_depth: 0,
            depth_cap: None,
            fused: FusedCounts::default(),
            times: crate::cost::OpTimes::default(),
            lazy_relinearize: false,
            defer_rescale: false,
            scales,
        }
    }

    fn naive(&self) -> bool {
        self.mode == Mode::Naive
    }

    /// Whether this builder counts what a lowering without abstract values
    /// would emit (every weight non-zero, every value encrypted).
    pub fn is_naive(&self) -> bool {
        self.naive()
    }

    /// Stop a lowering that has gone deeper than [`Builder::depth_cap`]:
    /// a lowering calls this after each layer, so a model too deep for any
    /// chain is refused after the layers that fill the chain, not after
    /// emitting every op of the rest.
    pub fn check_depth(&self, layer: &LayerName) -> Result<(), BackendError> {
        match self.depth_cap {
            Some(cap) if self.max_depth > cap => Err(BackendError::DepthCap {
                layer: layer.to_string(),
                depth: self.max_depth,
            }),
            _ => Ok(()),
        }
    }

    /// Append an op whose result is described by `meta`; returns its value.
    pub fn emit(&mut self, op: HeOp, meta: Ct) -> Ct {
        if self.muted {
            return meta;
        }
        self.counts[self.layer.0 as usize][op.kind_index()] += 1;
        self.max_depth = self.max_depth.max(meta.depth);
        if self.mode != Mode::Record {
            // Ids are not needed for counting (and would overflow on big models).
            return meta;
        }
        let id = ValueId(self.instrs.len() as u32);
        self.instrs.push(Instr {
            op,
            layer: self.layer,
        });
        Ct { id, ..meta }
    }

    /// The weight-table entry for `value` encoded at `scale` for ciphertexts
    /// at `depth` (each distinct triple stored once).
    pub fn scalar(&mut self, value: f64, scale: f64, depth: u32) -> PlainId {
        if self.muted {
            return PlainId(0);
        }
        let next = PlainId(self.plains.len() as u32);
        let key = (value.to_bits(), scale.to_bits(), depth);
        let id = *self.plain_ids.entry(key).or_insert(next);
        if id == next {
            self.plains.push(Plain::Scalar {
                value,
                scale,
                depth,
            });
        }
        id
    }

    /// The weight-table entry for one value per slot, as [`Builder::scalar`].
    /// Only a recording builder stores them (a count needs no weights).
    pub fn vector(&mut self, values: Vec<f64>, scale: f64, depth: u32) -> PlainId {
        if self.muted || self.mode != Mode::Record {
            return PlainId(0);
        }
        use std::hash::{Hash, Hasher};
        let entries: Vec<(u32, f64)> = values
            .iter()
            .enumerate()
            .filter(|(_, &v)| v != 0.0)
            .map(|(s, &v)| (s as u32, v))
            .collect();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for (s, v) in &entries {
            (s, v.to_bits()).hash(&mut h);
        }
        let key = (h.finish(), scale.to_bits(), depth);
        let same = self.vector_ids.get(&key).and_then(|ids| {
            ids.iter()
                .copied()
                .find(|id| match &self.plains[id.0 as usize] {
                    Plain::Vector { entries: e, .. } => *e == entries,
                    Plain::Scalar { .. } => false,
                })
        });
        if let Some(id) = same {
            return id;
        }
        let id = PlainId(self.plains.len() as u32);
        self.plains.push(Plain::Vector {
            slots: values.len() as u32,
            entries,
            scale,
            depth,
        });
        self.vector_ids.entry(key).or_default().push(id);
        id
    }

    /// `x` with its slots rotated left by `steps` (slot `i` takes slot
    /// `i + steps`): no level, same scale.
    pub fn rotate(&mut self, x: Ct, steps: i32) -> Ct {
        if steps == 0 {
            return x;
        }
        let x = self.settled(x);
        let x = self.relinearized(x);
        self.emit(HeOp::Rotate(x.id, steps), x)
    }

    /// `x + p` for a vector plaintext encoded at `x`'s scale and level.
    pub fn add_vector(&mut self, x: Ct, values: Vec<f64>) -> Ct {
        let p = self.vector(values, x.scale, x.depth);
        self.emit(HeOp::AddPlain(x.id, p), x)
    }

    /// `dᵢ ⊙ xᵢ` for each term, each weight encoded so that every product
    /// meets at scale Δ·q on level `depth` (terms above it are switched down
    /// first). Not summed, not rescaled.
    pub fn vector_products(&mut self, terms: &[(Ct, Vec<f64>)], depth: u32) -> Vec<Ct> {
        terms
            .iter()
            .map(|(c, w)| self.product_at(*c, depth, |b, scale| b.vector(w.clone(), scale, depth)))
            .collect()
    }

    /// Sum ciphertexts on one level and scale (a balanced tree), then
    /// relinearize if needed and rescale once.
    pub fn rescaled_sum(&mut self, terms: Vec<Ct>) -> Ct {
        let s = self.add_tree(terms, false);
        self.relinearize_and_rescale(s)
    }

    /// Sum ciphertexts on one level and scale (a balanced tree), no rescale.
    pub fn add_all(&mut self, terms: Vec<Ct>) -> Ct {
        self.add_tree(terms, false)
    }

    /// `Σ wᵢ·cᵢ` with scalar weights, one product each, one rescale
    /// (zero slots stay zero: no constant is added).
    pub fn scalar_products(&mut self, terms: &[(Ct, f64)]) -> Ct {
        self.products(terms, 0.0)
    }

    /// What a fresh ciphertext looks like (scale Δ, top level), without
    /// emitting anything.
    pub fn fresh_meta(&self) -> Ct {
        self.fresh()
    }

    /// A fresh encrypted input ciphertext `index` (what the client packs).
    pub fn input_ct(&mut self, index: u32) -> Ct {
        let meta = self.fresh();
        self.emit(HeOp::EncryptInput { feature: index }, meta)
    }

    /// Ciphertext `ct` (nothing pending) is output ciphertext `index`.
    pub fn output_ct(&mut self, ct: Ct, index: u32) {
        let ct = self.settled(ct);
        let ct = self.relinearized(ct);
        self.output_depth = self.output_depth.max(ct.depth);
        self.emit(
            HeOp::Output {
                value: ct.id,
                index,
            },
            ct,
        );
    }

    fn value(&self, x: Abs) -> Abs {
        match x {
            // A naive lowering encrypts everything; a fresh input stands in.
            Abs::Zero | Abs::Public(_) if self.naive() => Abs::Encrypted(Enc::of(self.fresh())),
            _ => x,
        }
    }

    fn fresh(&self) -> Ct {
        Ct {
            id: ValueId(0),
            depth: 0,
            scale: self.scales.delta,
            size: 2,
            owes_rescale: false,
        }
    }

    /// An encrypted input feature, at scale Δ on the top level.
    pub fn input(&mut self, feature: u32) -> Abs {
        let meta = self.fresh();
        Abs::Encrypted(Enc::of(self.emit(HeOp::EncryptInput { feature }, meta)))
    }

    /// `value` is element `index` of the model's output: what is pending is
    /// applied first (an offset is an `add_plain`; a factor, a product and a
    /// level).
    pub fn output(&mut self, value: Enc, index: u32) {
        let value = self.materialize(value);
        let value = self.settled(value);
        // The client decrypts two polynomials.
        let value = self.relinearized(value);
        self.output_depth = self.output_depth.max(value.depth);
        self.emit(
            HeOp::Output {
                value: value.id,
                index,
            },
            value,
        );
    }

    fn rescale(&mut self, v: Ct) -> Ct {
        let q = self.scales.prime(v.depth);
        let meta = Ct {
            depth: v.depth + 1,
            scale: v.scale / q,
            owes_rescale: false,
            ..v
        };
        self.emit(HeOp::Rescale(v.id), meta)
    }

    /// `v` with the rescale it owes done (see [`Builder::defer_rescale`]).
    fn settled(&mut self, v: Ct) -> Ct {
        if v.owes_rescale {
            self.rescale(v)
        } else {
            v
        }
    }

    /// Terms that owe a rescale keep it only if all of them do, on one
    /// level: their products then meet at Δ·q·q′ and are rescaled twice.
    /// Otherwise the owing ones are rescaled here. Returns whether they owe.
    fn settle_mixed(&mut self, terms: &mut [(Ct, f64)]) -> bool {
        let Some(&(first, _)) = terms.first() else {
            return false;
        };
        let owed = terms
            .iter()
            .all(|(c, _)| c.owes_rescale && c.depth == first.depth);
        if !owed {
            for (c, _) in terms.iter_mut() {
                *c = self.settled(*c);
            }
        }
        owed
    }

    fn relinearize(&mut self, v: Ct) -> Ct {
        self.emit(HeOp::Relinearize(v.id), Ct { size: 2, ..v })
    }

    /// `v` at two polynomials: relinearized if a product left three.
    fn relinearized(&mut self, v: Ct) -> Ct {
        if v.size > 2 {
            self.relinearize(v)
        } else {
            v
        }
    }

    /// Drop `v` to `depth` with modulus switches (scale unchanged).
    pub fn switch_to(&mut self, mut v: Ct, depth: u32) -> Ct {
        while v.depth < depth {
            let meta = Ct {
                depth: v.depth + 1,
                ..v
            };
            v = self.emit(HeOp::ModSwitch(v.id), meta);
        }
        v
    }

    /// `x · w`: pending until a consumer folds it.
    pub fn scale(&mut self, x: Abs, w: f64) -> Abs {
        self.lincomb([(x, w)], 0.0)
    }

    /// `x + c`: pending until a consumer folds it.
    pub fn shift(&mut self, x: Abs, c: f64) -> Abs {
        self.lincomb([(x, 1.0)], c)
    }

    /// Apply what is pending on `e`, returning a ciphertext of its value.
    fn materialize(&mut self, e: Enc) -> Ct {
        if e.mult == 1.0 {
            if e.offset == 0.0 {
                e.ct
            } else {
                self.add_constant(e.ct, e.offset)
            }
        } else {
            self.products(&[(e.ct, e.mult)], e.offset)
        }
    }

    fn add_constant(&mut self, v: Ct, c: f64) -> Ct {
        let p = self.scalar(c, v.scale, v.depth);
        self.emit(HeOp::AddPlain(v.id, p), v)
    }

    /// The sum of `terms`; ciphertexts are added pairwise in a balanced tree
    /// (same op count as a chain, shallower for the runtime).
    pub fn sum(&mut self, terms: impl IntoIterator<Item = Abs>) -> Abs {
        self.lincomb(terms.into_iter().map(|t| (t, 1.0)), 0.0)
    }

    /// `Σ wᵢ·xᵢ + bias`, scheduled: public terms and pending offsets fold into
    /// the constant, pending factors into the weights. If every ciphertext
    /// term then has the same weight (a sum pool, an average pool, a scaling)
    /// they are added where they are (after aligning levels) and the weight
    /// and constant stay pending: no level. Otherwise each is multiplied by its
    /// weight encoded so that all products meet at scale Δ·q on the deepest
    /// term's level, added with the constant, and rescaled once by q, back to
    /// scale Δ (lazy rescaling).
    pub fn lincomb(&mut self, terms: impl IntoIterator<Item = (Abs, f64)>, bias: f64) -> Abs {
        let naive = self.naive();
        let mut constant = bias;
        let mut enc: Vec<(Ct, f64)> = Vec::new();
        for (x, w) in terms {
            match self.value(x) {
                Abs::Zero => {}
                Abs::Public(p) => constant += p * w,
                Abs::Encrypted(e) => {
                    constant += w * e.offset;
                    let w = w * e.mult;
                    if w != 0.0 || naive {
                        enc.push((e.ct, w));
                    }
                }
            }
        }
        self.settle_mixed(&mut enc);
        let Some(depth) = enc.iter().map(|(c, _)| c.depth).max() else {
            return Abs::public(constant);
        };
        let weight = enc[0].1;
        // A naive lowering multiplies by every weight, zeros included.
        let uniform = enc.iter().all(|&(_, w)| w == weight) && !(naive && weight == 0.0);
        // As SEAL compares scales (up to rounding). A naive lowering's count
        // must not depend on the primes, so it ignores scales.
        let same_scale = naive
            || enc
                .iter()
                .all(|(c, _)| crate::levels::are_close(c.scale, enc[0].0.scale));
        if uniform && same_scale {
            let terms: Vec<Ct> = enc.iter().map(|&(c, _)| self.switch_to(c, depth)).collect();
            return Abs::Encrypted(Enc {
                ct: self.add_tree(terms, false),
                mult: weight,
                offset: constant,
            });
        }
        // The bias is added here, in its own layer, as MOFHEI counts it.
        Abs::Encrypted(Enc::of(self.products(&enc, constant)))
    }

    /// `Σ wᵢ·cᵢ + constant` with one product per term, all meeting at scale
    /// Δ·q on the deepest term's level, then one rescale back to Δ. Terms
    /// that owe a rescale meet at Δ·q·q′ instead, and the sum is rescaled
    /// (at three polynomials if they are), relinearized, and rescaled again.
    fn products(&mut self, terms: &[(Ct, f64)], constant: f64) -> Ct {
        let mut terms = terms.to_vec();
        let owed = self.settle_mixed(&mut terms);
        let depth = terms.iter().map(|(c, _)| c.depth).max().unwrap_or(0);
        let products: Vec<Ct> = terms
            .iter()
            .map(|&(c, w)| self.product_at(c, depth, |b, scale| b.scalar(w, scale, depth)))
            .collect();
        let s = self.add_tree(products, true);
        let s = if constant != 0.0 {
            self.add_constant(s, constant)
        } else {
            s
        };
        // Rescaling first relinearizes on one prime fewer, where the
        // eager schedule would have.
        let s = if owed { self.rescale(s) } else { s };
        self.relinearize_and_rescale(s)
    }

    /// `c` (switched down to `depth`) times the plaintext `encode` makes at
    /// the scale that brings the product to Δ·q, the prime at `depth` (and
    /// the next one's, Δ·q·q′, when `c` owes a rescale): the scale every
    /// product of one sum meets at.
    fn product_at(
        &mut self,
        c: Ct,
        depth: u32,
        encode: impl FnOnce(&mut Builder, f64) -> PlainId,
    ) -> Ct {
        let mut target = self.scales.delta * self.scales.prime(depth);
        if c.owes_rescale {
            target *= self.scales.prime(depth + 1);
        }
        let c = self.switch_to(c, depth);
        let p = encode(self, target / c.scale);
        let meta = Ct {
            scale: c.scale * (target / c.scale),
            ..c
        };
        self.emit(HeOp::MulPlain(c.id, p), meta)
    }

    /// Back to two polynomials if a product left three, then one rescale.
    fn relinearize_and_rescale(&mut self, s: Ct) -> Ct {
        let s = self.relinearized(s);
        self.rescale(s)
    }

    /// Add ciphertexts (all on one level and scale) in a balanced tree.
    /// When the leaves are `products` read by nothing else, the products and
    /// sums the runtime folds into linear combinations are tallied in
    /// [`Builder::fused`] (the rule of [`Fusion`](crate::fuse::Fusion),
    /// which finds the same ones in a built program).
    fn add_tree(&mut self, level: Vec<Ct>, products: bool) -> Ct {
        let leaf = if products { Term::Product } else { Term::Plain };
        let mut level: Vec<(Ct, Term)> = level.into_iter().map(|c| (c, leaf)).collect();
        while level.len() > 1 {
            let mut next = Vec::with_capacity(level.len().div_ceil(2));
            for pair in level.chunks(2) {
                next.push(match *pair {
                    [(a, ta), (b, tb)] => {
                        let meta = Ct {
                            size: a.size.max(b.size),
                            ..a
                        };
                        let fused = (ta != Term::Plain || tb != Term::Plain) && a.size == b.size;
                        for t in [ta, tb] {
                            match t {
                                Term::Product if fused => self.tally(|f| f.products += 1),
                                // A fused sum read by an add that is not
                                // fused is computed there.
                                Term::Sum if !fused => self.tally(|f| f.combinations += 1),
                                _ => {}
                            }
                        }
                        let term = if fused {
                            self.tally(|f| f.sums += 1);
                            Term::Sum
                        } else {
                            Term::Plain
                        };
                        (self.emit(HeOp::Add(a.id, b.id), meta), term)
                    }
                    [a] => a,
                    _ => unreachable!("chunks of two"),
                });
            }
            level = next;
        }
        let (root, term) = level[0];
        if term == Term::Sum {
            self.tally(|f| f.combinations += 1);
        }
        root
    }

    /// Counts a fusion, unless the ops are muted or recorded (a recorded
    /// program's fusion is [`Fusion::of`](crate::fuse::Fusion::of) it).
    fn tally(&mut self, count: impl FnOnce(&mut FusedCounts)) {
        if !self.muted && self.mode != Mode::Record {
            count(&mut self.fused);
        }
    }

    /// `Σ cₖ·xᵏ`. What is pending on `x` is folded into the coefficients
    /// first. Degree ≤ 1 stays pending; degree 2 completes the square,
    /// `c₂·(x + c₁/2c₂)² + c₀ − c₁²/4c₂`: one `add_plain`, one squaring (one
    /// level), outer constants pending. Higher degrees compute the powers by
    /// squarings and products of powers of two (⌈log₂ k⌉ levels), each
    /// relinearized and rescaled, then one [`lincomb`](Builder::lincomb).
    pub fn polynomial(&mut self, x: Abs, coeffs: &[f64]) -> Abs {
        let e = match self.value(x) {
            Abs::Encrypted(e) => e,
            other => {
                let p = match other {
                    Abs::Public(p) => p,
                    _ => 0.0,
                };
                return Abs::public(coeffs.iter().rev().fold(0.0, |acc, &c| acc * p + c));
            }
        };
        let coeffs = compose(coeffs, e.mult, e.offset);
        let v = e.ct;
        // Coefficients define the activation; unlike pruned weights, even a
        // naive lowering skips the zero ones.
        let needed = |k: usize| coeffs[k] != 0.0;
        let degree = (0..coeffs.len()).rev().find(|&k| needed(k)).unwrap_or(0);
        match degree {
            0 => return Abs::public(coeffs.first().copied().unwrap_or(0.0)),
            1 => {
                return Abs::Encrypted(Enc {
                    ct: v,
                    mult: coeffs[1],
                    offset: coeffs[0],
                })
            }
            2 => {
                let (c0, c1, c2) = (coeffs[0], coeffs[1], coeffs[2]);
                let h = c1 / (2.0 * c2);
                let t = if h == 0.0 { v } else { self.add_constant(v, h) };
                let square = self.square_for_readers(t);
                return Abs::Encrypted(Enc {
                    ct: square,
                    mult: c2,
                    offset: c0 - c2 * h * h,
                });
            }
            _ => {}
        }
        let powers = self.powers(v, &coeffs, degree);
        let terms: Vec<(Abs, f64)> = (1..=degree)
            .filter(|&k| needed(k))
            .map(|k| {
                let power = Enc::of(powers[k].expect("computed"));
                (Abs::Encrypted(power), coeffs[k])
            })
            .collect();
        self.lincomb(terms, coeffs[0])
    }

    /// The powers `vᵏ` a polynomial with coefficients `c` (up to `degree`)
    /// needs: those with a coefficient, and their factors, each a product
    /// of powers of two (⌈log₂ k⌉ levels). Entry k is `Some` where computed.
    pub fn powers(&mut self, v: Ct, c: &[f64], degree: usize) -> Vec<Option<Ct>> {
        let mut want = vec![false; degree + 1];
        for k in (1..=degree).rev() {
            if c[k] != 0.0 || want[k] {
                want[k] = true;
                if k > 1 {
                    let m = split(k);
                    want[m] = true;
                    want[k - m] = true;
                }
            }
        }
        let mut powers: Vec<Option<Ct>> = vec![None; degree + 1];
        powers[1] = Some(v);
        for k in 2..=degree {
            if want[k] {
                let m = split(k);
                let (a, b) = (powers[m].expect("factor"), powers[k - m].expect("factor"));
                powers[k] = Some(self.power_product(a, b, m == k - m));
            }
        }
        powers
    }

    /// `a · b` (a square when they are the same value), relinearized at
    /// once — a power is read by several products, each dearer on a size-3
    /// ciphertext than one relinearization — and rescaled.
    pub fn power_product(&mut self, a: Ct, b: Ct, square: bool) -> Ct {
        let product = self.product(a, b, square);
        let product = self.relinearize(product);
        self.rescale(product)
    }

    /// `a²` for the layers that read it: relinearized unless
    /// [`Builder::lazy_relinearize`] leaves that to their sums, and rescaled
    /// unless [`Builder::defer_rescale`] leaves that to them too.
    fn square_for_readers(&mut self, a: Ct) -> Ct {
        let product = self.product(a, a, true);
        let product = if self.lazy_relinearize {
            product
        } else {
            self.relinearize(product)
        };
        if self.defer_rescale {
            Ct {
                owes_rescale: true,
                ..product
            }
        } else {
            self.rescale(product)
        }
    }

    /// `a · b` at three polynomials (operands relinearized first: SEAL's
    /// relinearization keys take a product of two-polynomial ciphertexts
    /// back to two).
    fn product(&mut self, a: Ct, b: Ct, square: bool) -> Ct {
        let a = self.settled(a);
        let b = if square { a } else { self.settled(b) };
        let depth = a.depth.max(b.depth);
        let a = self.relinearized(a);
        let b = if square { a } else { self.relinearized(b) };
        let (a, b) = (self.switch_to(a, depth), self.switch_to(b, depth));
        let meta = Ct {
            scale: a.scale * b.scale,
            size: 3,
            ..a
        };
        if square {
            self.emit(HeOp::Square(a.id), meta)
        } else {
            self.emit(HeOp::Mul(a.id, b.id), meta)
        }
    }
}

/// The coefficients of `p(m·x + o)`, from those of `p` (Horner's rule on
/// polynomials).
pub(crate) fn compose(p: &[f64], m: f64, o: f64) -> Vec<f64> {
    let mut q = vec![0.0; p.len().max(1)];
    for &c in p.iter().rev() {
        // q ← q·(m·x + o) + c
        let mut next = vec![0.0; q.len()];
        for (k, &qk) in q.iter().enumerate() {
            next[k] += qk * o;
            if k + 1 < next.len() {
                next[k + 1] += qk * m;
            }
        }
        next[0] += c;
        q = next;
    }
    q
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
