//! The weighted-sum kernel (runtime/shim/weighted.cpp), whose weights may
//! be whole plaintexts (diagonal packing's slot diagonals), against SEAL's
//! own copy + multiply_plain + add per term: the same ciphertext, bit for
//! bit, and refusals where SEAL would refuse.

use hepack_runtime::seal::{Ciphertext, Kernel, Plaintext, Weight};

mod common;
use common::{same_bits, setup, wave, Setup, SCALE};

/// The vector kernel where this CPU has it, and the portable one always.
const KERNELS: [Kernel; 2] = [Kernel::Fastest, Kernel::Portable];

/// A diagonal for term `t`: small, varying from slot to slot, some zero.
fn diagonal(t: usize) -> impl Fn(usize) -> f64 {
    move |i| {
        if (i + t) % 7 == 0 {
            0.0
        } else {
            ((i + 11 * t) as f64 * 0.013).cos() * 0.1
        }
    }
}

impl Setup {
    fn values(&self, f: impl Fn(usize) -> f64) -> Vec<f64> {
        (0..self.context.slots()).map(f).collect()
    }

    /// `f` encoded for level `depth` at `scale`.
    fn plain(&self, f: impl Fn(usize) -> f64, depth: u32, scale: f64) -> Plaintext {
        let id = self.context.parms_id(depth).unwrap();
        self.encoder
            .encode(&self.values(f), &id, scale, None)
            .unwrap()
    }

    /// SEAL's way: `w ⊙ x`, out of place.
    fn product(&self, x: &Ciphertext, w: &Plaintext) -> Ciphertext {
        let mut p = self.context.copy(x).unwrap();
        self.evaluator
            .multiply_plain_inplace(&mut p, w, None)
            .unwrap();
        p
    }
}

#[test]
fn a_weighted_sum_is_bit_for_bit_seals_multiply_plain_then_add() {
    let s = setup();
    // 300 terms: more than the kernel's 128 unreduced products per fold.
    for (depth, count) in [(0, 2), (0, 300), (1, 9)] {
        let xs: Vec<Ciphertext> = (0..count).map(|t| s.encrypt(wave(t), depth)).collect();
        // Every third term's weight is one scalar; the others are diagonals.
        let scalar_at = |t: usize| (t as f64 * 0.37).cos() * 0.1;
        let id = s.context.parms_id(depth).unwrap();
        let plains: Vec<Plaintext> = (0..count)
            .map(|t| match t % 3 {
                2 => s
                    .encoder
                    .encode_scalar(scalar_at(t), &id, SCALE, None)
                    .unwrap(),
                _ => s.plain(diagonal(t), depth, SCALE),
            })
            .collect();
        let scalars: Vec<_> = (0..count)
            .map(|t| s.encoder.scalar(scalar_at(t), &id, SCALE, None).unwrap())
            .collect();
        // And one term already at the products' scale, with weight one.
        let extra = s.product(
            &s.encrypt(wave(count), depth),
            &s.plain(diagonal(count), depth, SCALE),
        );

        let mut seal = s.product(&xs[0], &plains[0]);
        for (x, w) in xs.iter().zip(&plains).skip(1) {
            s.evaluator
                .add_inplace(&mut seal, &s.product(x, w))
                .unwrap();
        }
        s.evaluator.add_inplace(&mut seal, &extra).unwrap();

        let terms: Vec<(&Ciphertext, Weight)> = (0..count)
            .map(|t| match t % 3 {
                2 => (&xs[t], Weight::Scalar(&scalars[t])),
                _ => (&xs[t], Weight::Plain(&plains[t])),
            })
            .chain([(&extra, Weight::One)])
            .collect();
        for kernel in KERNELS {
            let new = s.context.weighted_sum(&terms, kernel).unwrap();
            assert!(
                same_bits(&new, &seal),
                "{kernel:?}: {count} terms at depth {depth}"
            );
            assert_eq!(new.primes(), xs[0].primes());
            assert!((new.scale() - SCALE * SCALE).abs() < 1.0);

            // In place, into the first term's memory.
            let mut in_place = s.context.copy(&xs[0]).unwrap();
            s.context
                .weighted_sum_inplace(
                    &mut in_place,
                    Weight::Plain(&plains[0]),
                    &terms[1..],
                    kernel,
                )
                .unwrap();
            assert!(
                same_bits(&in_place, &seal),
                "{kernel:?} in place: {count} terms at depth {depth}"
            );
        }
        let new = s.context.weighted_sum(&terms, Kernel::Fastest).unwrap();

        // And it is the right number, not just SEAL's.
        let got = s.decrypt(&new);
        for i in [0, 1, 77, 4095] {
            let want: f64 = (0..count)
                .map(|t| {
                    let w = if t % 3 == 2 {
                        scalar_at(t)
                    } else {
                        diagonal(t)(i)
                    };
                    w * wave(t)(i)
                })
                .sum::<f64>()
                + diagonal(count)(i) * wave(count)(i);
            assert!(
                (got[i] - want).abs() < 1e-5,
                "slot {i}: {} vs {want}",
                got[i]
            );
        }
    }
}

#[test]
fn a_weighted_sum_of_three_polynomial_ciphertexts_is_seals() {
    // Squares not yet relinearized: three polynomials each.
    let s = setup();
    let squares: Vec<Ciphertext> = (0..4)
        .map(|t| {
            let mut x = s.encrypt(wave(t), 0);
            s.evaluator.square_inplace(&mut x, None).unwrap();
            x
        })
        .collect();
    assert_eq!(squares[0].size(), 3);
    let plains: Vec<Plaintext> = (0..4).map(|t| s.plain(diagonal(t), 0, SCALE)).collect();
    let mut seal = s.product(&squares[0], &plains[0]);
    for (x, w) in squares.iter().zip(&plains).skip(1) {
        s.evaluator
            .add_inplace(&mut seal, &s.product(x, w))
            .unwrap();
    }
    let terms: Vec<_> = squares
        .iter()
        .zip(&plains)
        .map(|(x, w)| (x, Weight::Plain(w)))
        .collect();
    for kernel in KERNELS {
        let new = s.context.weighted_sum(&terms, kernel).unwrap();
        assert_eq!(new.size(), 3);
        assert!(same_bits(&new, &seal), "{kernel:?}");
    }
}

#[test]
fn weighted_sums_seal_would_refuse_are_refused() {
    let s = setup();
    let x = s.encrypt(wave(0), 0);
    let y = s.encrypt(wave(1), 0);
    let low = s.encrypt(wave(2), 1);
    let w = s.plain(diagonal(0), 0, SCALE);
    let w_low = s.plain(diagonal(0), 1, SCALE);
    let w_other_scale = s.plain(diagonal(1), 0, SCALE * 2.0);
    let scalar_low = s
        .encoder
        .scalar(0.5, &s.context.parms_id(1).unwrap(), SCALE, None)
        .unwrap();
    let cases: [(&str, Vec<(&Ciphertext, Weight)>); 5] = [
        (
            "a plaintext of another level",
            vec![(&x, Weight::Plain(&w_low))],
        ),
        (
            "a scalar of another level",
            vec![(&x, Weight::Scalar(&scalar_low))],
        ),
        (
            "sources on two levels",
            vec![(&x, Weight::Plain(&w)), (&low, Weight::Plain(&w_low))],
        ),
        (
            "products at two scales",
            vec![(&x, Weight::Plain(&w)), (&y, Weight::Plain(&w_other_scale))],
        ),
        (
            "a weight one at another scale",
            vec![(&x, Weight::Plain(&w)), (&y, Weight::One)],
        ),
    ];
    for (what, terms) in cases {
        for kernel in KERNELS {
            let err = s.context.weighted_sum(&terms, kernel).expect_err(what);
            assert!(
                err.to_string().contains("Hepack_WeightedSum"),
                "{what}: {err}"
            );
        }
    }
    assert!(
        s.context.weighted_sum(&[], Kernel::Fastest).is_err(),
        "no terms"
    );
}

#[test]
fn more_terms_than_the_vector_kernels_lanes_hold_are_folded_in_time() {
    // 4,100 terms: past the 4,000 after which the vector kernel folds its
    // 52-bit lanes (one ciphertext and one diagonal read again and again,
    // so the test holds two operands, not thousands).
    let s = setup();
    let x = s.encrypt(wave(0), 1);
    let w = s.plain(diagonal(0), 1, SCALE);
    let product = s.product(&x, &w);
    let mut seal = s.context.copy(&product).unwrap();
    for _ in 1..4100 {
        s.evaluator.add_inplace(&mut seal, &product).unwrap();
    }
    let terms = vec![(&x, Weight::Plain(&w)); 4100];
    for kernel in KERNELS {
        let new = s.context.weighted_sum(&terms, kernel).unwrap();
        assert!(same_bits(&new, &seal), "{kernel:?}");
    }
}
