//! What both slot packings do slot by slot: a tensor as ciphertexts with a
//! pending public factor each and a pending public offset per element,
//! polynomials, sums, and settling what is pending. A packing says where a
//! tensor's elements sit ([`Placement`]); this module never needs to know
//! more.

use std::collections::HashMap;

use crate::builder::{compose, Abs, Builder, Ct, Enc};
use crate::program::{OutputElement, SlotRef};

/// One sample's tensor as lowering sees it: per ciphertext, nothing (all
/// slots zero) or a ciphertext with a pending public factor; per element, a
/// pending public offset. Element `e` is `mult · slot + offsets[e]`.
#[derive(Clone, Debug)]
pub(crate) struct Packed {
    pub cts: Vec<Option<Enc>>,
    pub offsets: Vec<f64>,
    /// Slots no element names may hold partial sums (after a diagonal
    /// hybrid); the next weighted map reads only elements' slots and cleans it.
    pub dirty: bool,
}

/// Where a tensor's elements sit in its ciphertexts.
pub(crate) trait Placement {
    /// The elements of each ciphertext.
    fn elements_by_ct(&self) -> Vec<Vec<usize>>;

    /// The slot vector holding each `(element, value)` pair's value in every
    /// slot of that element, for every sample; zero elsewhere.
    fn vector(&self, values: &[(usize, f64)]) -> Vec<f64>;
}

/// A stand-in ciphertext for a naive count's "every value encrypted".
pub(crate) fn fresh(b: &Builder) -> Enc {
    Enc::of(b.fresh_meta())
}

/// Pending offsets of `ct`'s elements added into it (no level), so that a
/// slot-wise op sees each element's whole value.
pub(crate) fn settle_offsets(
    b: &mut Builder,
    x: &mut Packed,
    ct: usize,
    elements: &[usize],
    place: &dyn Placement,
) {
    let Some(enc) = x.cts[ct] else { return };
    if elements.iter().all(|&e| x.offsets[e] == 0.0) {
        return;
    }
    // mult · (c + off / mult) = mult · c + off.
    let values: Vec<(usize, f64)> = elements
        .iter()
        .map(|&e| (e, x.offsets[e] / enc.mult))
        .collect();
    let c = b.add_vector(enc.ct, place.vector(&values));
    x.cts[ct] = Some(Enc { ct: c, ..enc });
    for &e in elements {
        x.offsets[e] = 0.0;
    }
}

/// A polynomial, slot-wise on every ciphertext.
pub(crate) fn polynomial(
    b: &mut Builder,
    mut x: Packed,
    place: &dyn Placement,
    coeffs: &[f64],
) -> Packed {
    let eval = |c: &[f64], v: f64| c.iter().rev().fold(0.0, |acc, &k| acc * v + k);
    for (ct, elements) in place.elements_by_ct().iter().enumerate() {
        if x.cts[ct].is_none() && b.is_naive() {
            x.cts[ct] = Some(fresh(b));
        }
        let Some(_) = x.cts[ct] else {
            for &e in elements {
                x.offsets[e] = eval(coeffs, x.offsets[e]);
            }
            continue;
        };
        settle_offsets(b, &mut x, ct, elements, place);
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
                    let shift: Vec<(usize, f64)> = elements.iter().map(|&e| (e, h)).collect();
                    b.add_vector(enc.ct, place.vector(&shift))
                };
                let sq = b.power_product(t, t, true);
                (
                    Some(Enc {
                        ct: sq,
                        mult: c[2],
                        offset: 0.0,
                    }),
                    c[0] - c[2] * h * h,
                )
            }
            _ => (Some(Enc::of(powers(b, enc.ct, &c, degree))), c[0]),
        };
        x.cts[ct] = value;
        for &e in elements {
            x.offsets[e] = constant;
        }
    }
    x
}

/// `Σ_{k≥1} cₖ·vᵏ`: the powers the builder makes, then one weighted sum (no
/// constant, so zero slots stay zero).
fn powers(b: &mut Builder, v: Ct, c: &[f64], degree: usize) -> Ct {
    let powers = b.powers(v, c, degree);
    let terms: Vec<(Ct, f64)> = (1..=degree)
        .filter(|&k| c[k] != 0.0)
        .map(|k| (powers[k].expect("computed"), c[k]))
        .collect();
    b.scalar_products(&terms)
}

/// `x + y` element by element (both in one layout).
pub(crate) fn add(b: &mut Builder, x: &Packed, y: &Packed) -> Packed {
    let cts = x
        .cts
        .iter()
        .zip(&y.cts)
        .map(|(p, q)| match (p, q) {
            (None, None) => None,
            (Some(e), None) | (None, Some(e)) => Some(*e),
            (Some(p), Some(q)) => {
                match b.lincomb([(Abs::Encrypted(*p), 1.0), (Abs::Encrypted(*q), 1.0)], 0.0) {
                    Abs::Encrypted(e) => Some(e),
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

/// The value's ciphertexts with everything pending applied (a factor costs
/// a product and a level, offsets an addition).
pub(crate) fn materialize(b: &mut Builder, mut x: Packed, place: &dyn Placement) -> Packed {
    for (ct, elements) in place.elements_by_ct().iter().enumerate() {
        settle_offsets(b, &mut x, ct, elements, place);
        if let Some(enc) = x.cts[ct] {
            if enc.mult != 1.0 {
                let c = b.scalar_products(&[(enc.ct, enc.mult)]);
                x.cts[ct] = Some(Enc::of(c));
            }
        }
    }
    x
}

/// A model input: `cts` fresh ciphertexts (what the client encrypts) of
/// `elements` elements, nothing pending.
pub(crate) fn input(b: &mut Builder, cts: usize, elements: usize) -> Packed {
    Packed {
        cts: (0..cts as u32)
            .map(|c| Some(Enc::of(b.input_ct(c))))
            .collect(),
        offsets: vec![0.0; elements],
        dirty: false,
    }
}

/// `x` (nothing pending) as the model's output: each ciphertext holding an
/// encrypted element becomes output ciphertext `*next` (counting up), and
/// each element is encrypted, at its place there (`place(e)`: its
/// ciphertext and slot in `x`), or the public constant it is.
pub(crate) fn output(
    b: &mut Builder,
    x: &Packed,
    place: impl Fn(usize) -> (usize, u32),
    next: &mut u32,
) -> (Vec<OutputElement>, Vec<Option<SlotRef>>) {
    let mut index_of: HashMap<usize, u32> = HashMap::new();
    for (ct, enc) in x.cts.iter().enumerate() {
        if let Some(enc) = enc {
            b.output_ct(enc.ct, *next);
            index_of.insert(ct, *next);
            *next += 1;
        }
    }
    (0..x.offsets.len())
        .map(|e| {
            let (ct, slot) = place(e);
            match index_of.get(&ct) {
                Some(&c) => (OutputElement::Encrypted, Some(SlotRef { ct: c, slot })),
                None => (OutputElement::Public(x.offsets[e]), None),
            }
        })
        .unzip()
}
