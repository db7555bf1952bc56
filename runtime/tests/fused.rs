//! The linear combination kernel (runtime/shim/fused.cpp) against SEAL's
//! own copy + multiply_plain + add per term: the same ciphertext, bit for
//! bit.

use hepack_runtime::seal::{
    Ciphertext, Context, Decryptor, Encoder, Encryptor, Evaluator, Kernel, KeyGenerator, Plaintext,
    Scalar, Security, Terms,
};

mod common;
use common::{same_bits, setup, wave, Setup, SCALE};

impl Setup {
    /// `value` for level `depth`, as SEAL's plaintext and as the
    /// combination's scalar.
    fn scalar(&self, value: f64, depth: u32) -> (Plaintext, Scalar) {
        let id = self.context.parms_id(depth).unwrap();
        (
            self.encoder.encode_scalar(value, &id, SCALE, None).unwrap(),
            self.encoder.scalar(value, &id, SCALE, None).unwrap(),
        )
    }

    /// SEAL's way: `w·x`, out of place.
    fn product(&self, x: &Ciphertext, w: &(Plaintext, Scalar)) -> Ciphertext {
        let mut p = self.context.copy(x).unwrap();
        self.evaluator
            .multiply_plain_inplace(&mut p, &w.0, None)
            .unwrap();
        p
    }
}

#[test]
fn linear_combination_is_bit_for_bit_seals_multiply_plain_then_add() {
    let s = setup();
    // 300 terms: more than the kernel's 128 unreduced products per fold.
    for (depth, count) in [(0, 2), (0, 300), (1, 5)] {
        let xs: Vec<Ciphertext> = (0..count).map(|t| s.encrypt(wave(t), depth)).collect();
        let ws: Vec<f64> = (0..count).map(|t| (t as f64 * 0.37).cos() * 0.1).collect();
        let scalars: Vec<_> = ws.iter().map(|&w| s.scalar(w, depth)).collect();

        // SEAL's way, term by term.
        let mut seal = s.product(&xs[0], &scalars[0]);
        for (x, w) in xs.iter().zip(&scalars).skip(1) {
            s.evaluator
                .add_inplace(&mut seal, &s.product(x, w))
                .unwrap();
        }

        let terms: Vec<_> = xs
            .iter()
            .zip(&scalars)
            .map(|(x, w)| (x, Some(&w.1)))
            .collect();
        let new = s.context.linear_combination(&terms).unwrap();
        assert!(same_bits(&new, &seal), "{count} terms at depth {depth}");
        assert_eq!(new.primes(), xs[0].primes());
        assert!((new.scale() - SCALE * SCALE).abs() < 1.0);

        // In place, into the first term's memory.
        let mut in_place = s.context.copy(&xs[0]).unwrap();
        s.context
            .linear_combination_inplace(&mut in_place, Some(&scalars[0].1), &terms[1..])
            .unwrap();
        assert!(
            same_bits(&in_place, &seal),
            "in place: {count} terms at depth {depth}"
        );

        // And it is the right number, not just SEAL's.
        let got = s.decrypt(&new);
        for i in [0, 1, 77, 4095] {
            let want: f64 = ws.iter().enumerate().map(|(t, w)| w * wave(t)(i)).sum();
            assert!(
                (got[i] - want).abs() < 1e-5,
                "slot {i}: {} vs {want}",
                got[i]
            );
        }
    }
}

/// A small deterministic generator (SplitMix64), so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Many outputs over shared sources in one call, as a linear layer's
/// outputs are computed: each output bit for bit SEAL's own products and
/// adds, with the vector kernel and the portable one, over random shapes
/// (one output, a block of eight, counts that are not multiples of it),
/// random sparsity, terms of weight one, a source read twice by one output,
/// and ciphertexts at two levels and of size three. The chain's 60-bit
/// first prime takes the portable kernel, its 40-bit primes the vector one.
#[test]
fn linear_combinations_over_many_outputs_are_seals_bit_for_bit() {
    let s = setup();
    println!("vector kernel on this CPU: {}", Kernel::simd_available());
    let mut rng = Rng(7);
    let shapes = [
        (1, 1, 0, false),
        (1, 6, 0, false),
        (8, 1, 1, false),
        (3, 9, 0, true),
        (8, 20, 1, false),
        (11, 5, 0, false),
        (17, 13, 0, true),
    ];
    for (outputs, sources, depth, squared) in shapes {
        let xs: Vec<Ciphertext> = (0..sources)
            .map(|t| {
                let mut x = s.encrypt(wave(t + outputs), depth);
                if squared {
                    s.evaluator.square_inplace(&mut x, None).unwrap();
                }
                x
            })
            .collect();
        let scalars: Vec<Vec<(Plaintext, Scalar)>> = (0..outputs)
            .map(|g| {
                (0..sources)
                    .map(|t| s.scalar(((g * 31 + t * 7) as f64 * 0.13 + 0.4).sin() * 0.3, depth))
                    .collect()
            })
            .collect();
        // Output g's terms: a random subset of the sources (never empty),
        // weighted, and at times the last source again with another weight.
        let mut chosen: Vec<Vec<usize>> = Vec::new();
        for _ in 0..outputs {
            let mut ts: Vec<usize> = (0..sources).filter(|_| rng.below(3) != 0).collect();
            if ts.is_empty() {
                ts.push(rng.below(sources));
            }
            if rng.below(4) == 0 {
                ts.push(*ts.last().unwrap());
            }
            chosen.push(ts);
        }
        let outputs_terms: Vec<Terms> = chosen
            .iter()
            .enumerate()
            .map(|(g, ts)| {
                ts.iter()
                    .enumerate()
                    .map(|(k, &t)| (t, Some(&scalars[g][(t + k) % sources].1)))
                    .collect()
            })
            .collect();
        let refs: Vec<&Ciphertext> = xs.iter().collect();
        let fast = s
            .context
            .linear_combinations(&refs, &outputs_terms, Kernel::Fastest)
            .unwrap_or_else(|e| panic!("{outputs} outputs, {sources} sources, depth {depth}: {e}"));
        let portable = s
            .context
            .linear_combinations(&refs, &outputs_terms, Kernel::Portable)
            .unwrap();
        for (g, ts) in chosen.iter().enumerate() {
            let mut seal: Option<Ciphertext> = None;
            for (k, &t) in ts.iter().enumerate() {
                let p = s.product(&xs[t], &scalars[g][(t + k) % sources]);
                match seal.as_mut() {
                    None => seal = Some(p),
                    Some(acc) => s.evaluator.add_inplace(acc, &p).unwrap(),
                }
            }
            let seal = seal.unwrap();
            let shape = format!("output {g} of {outputs} over {sources} sources at depth {depth}");
            assert!(same_bits(&fast[g], &seal), "vector kernel: {shape}");
            assert!(same_bits(&portable[g], &seal), "portable kernel: {shape}");
        }
    }
}

/// Both kernels on a chain of primes all below 2^52, so that every residue
/// takes the vector kernel where the CPU has it, with more terms than the
/// vector kernel adds before it folds its sums (4,000).
#[test]
fn the_vector_kernel_folds_long_sums() {
    let primes = hepack_backend::params::coeff_modulus(4096, &[50, 30, 29]).unwrap();
    let context = Context::new(4096, &primes, Security::Tc128).unwrap();
    let keygen = KeyGenerator::new(&context).unwrap();
    let encoder = Encoder::new(&context).unwrap();
    let encryptor = Encryptor::with_public(&context, &keygen.public_key(false).unwrap()).unwrap();
    let evaluator = Evaluator::new(&context).unwrap();
    let top = context.parms_id(0).unwrap();
    let scale = (1u64 << 30) as f64;
    let xs: Vec<Ciphertext> = (0..3)
        .map(|t| {
            let values: Vec<f64> = (0..context.slots()).map(wave(t)).collect();
            let plain = encoder.encode(&values, &top, scale, None).unwrap();
            encryptor.encrypt(&plain, None).unwrap()
        })
        .collect();
    let w: Vec<Scalar> = (0..3)
        .map(|t| {
            encoder
                .scalar(0.5 - t as f64 * 0.4, &top, scale, None)
                .unwrap()
        })
        .collect();
    // 4,500 terms over three sources, two outputs.
    let terms = |g: usize| -> Terms { (0..4500).map(|k| (k % 3, Some(&w[(k + g) % 3]))).collect() };
    let outputs = [terms(0), terms(1)];
    let refs: Vec<&Ciphertext> = xs.iter().collect();
    let fast = context
        .linear_combinations(&refs, &outputs, Kernel::Fastest)
        .unwrap();
    let portable = context
        .linear_combinations(&refs, &outputs, Kernel::Portable)
        .unwrap();
    for g in 0..2 {
        // SEAL: 1,500 times each product.
        let mut seal: Option<Ciphertext> = None;
        for (t, x) in xs.iter().enumerate() {
            let plain = encoder
                .encode_scalar(0.5 - ((t + g) % 3) as f64 * 0.4, &top, scale, None)
                .unwrap();
            let mut p = context.copy(x).unwrap();
            evaluator
                .multiply_plain_inplace(&mut p, &plain, None)
                .unwrap();
            for _ in 0..1500 {
                match seal.as_mut() {
                    None => seal = Some(context.copy(&p).unwrap()),
                    Some(acc) => evaluator.add_inplace(acc, &p).unwrap(),
                }
            }
        }
        let seal = seal.unwrap();
        assert!(same_bits(&fast[g], &seal), "vector kernel, output {g}");
        assert!(
            same_bits(&portable[g], &seal),
            "portable kernel, output {g}"
        );
    }
}

/// Lazy relinearization hands the kernel squares at three polynomials, and
/// relinearizes the sum: the same ciphertext as SEAL's products and adds on
/// the squares, and once relinearized and rescaled, the right numbers.
#[test]
fn linear_combination_of_unrelinearized_squares_is_seals() {
    let s = setup();
    let keygen = KeyGenerator::new(&s.context).unwrap();
    let relin = keygen.relin_keys(false).unwrap();
    let (public, secret) = (
        keygen.public_key(false).unwrap(),
        keygen.secret_key().unwrap(),
    );
    let encryptor = Encryptor::with_public(&s.context, &public).unwrap();
    let decryptor = Decryptor::new(&s.context, &secret).unwrap();
    let top = s.context.parms_id(0).unwrap();
    let count = 9;
    let values = |t: usize| -> Vec<f64> { (0..s.context.slots()).map(wave(t)).collect() };
    let squares: Vec<Ciphertext> = (0..count)
        .map(|t| {
            let plain = s.encoder.encode(&values(t), &top, SCALE, None).unwrap();
            let mut ct = encryptor.encrypt(&plain, None).unwrap();
            s.evaluator.square_inplace(&mut ct, None).unwrap();
            s.evaluator.rescale_to_next_inplace(&mut ct, None).unwrap();
            ct
        })
        .collect();
    assert_eq!(squares[0].size(), 3);
    // Weights at the scale that brings each product back to Δ·q.
    let level = s.context.parms_id(1).unwrap();
    let scale = SCALE * SCALE / squares[0].scale();
    let ws: Vec<f64> = (0..count)
        .map(|t| (t as f64 * 0.61 + 0.3).sin() * 0.2)
        .collect();
    let scalars: Vec<_> = ws
        .iter()
        .map(|&w| {
            (
                s.encoder.encode_scalar(w, &level, scale, None).unwrap(),
                s.encoder.scalar(w, &level, scale, None).unwrap(),
            )
        })
        .collect();
    let mut seal = s.product(&squares[0], &scalars[0]);
    for (x, w) in squares.iter().zip(&scalars).skip(1) {
        s.evaluator
            .add_inplace(&mut seal, &s.product(x, w))
            .unwrap();
    }
    let terms: Vec<_> = squares
        .iter()
        .zip(&scalars)
        .map(|(x, w)| (x, Some(&w.1)))
        .collect();
    let mut new = s.context.linear_combination(&terms).unwrap();
    assert_eq!(new.size(), 3);
    assert!(same_bits(&new, &seal));

    s.evaluator
        .relinearize_inplace(&mut new, &relin, None)
        .unwrap();
    s.evaluator.rescale_to_next_inplace(&mut new, None).unwrap();
    let plain = decryptor.decrypt(&new).unwrap();
    let got = s.encoder.decode(&plain, s.context.slots()).unwrap();
    for i in [0, 5, 999, 4095] {
        let want: f64 = ws
            .iter()
            .enumerate()
            .map(|(t, w)| w * wave(t)(i).powi(2))
            .sum();
        assert!(
            (got[i] - want).abs() < 1e-4,
            "slot {i}: {} vs {want}",
            got[i]
        );
    }
}

#[test]
fn linear_combination_adds_terms_of_weight_one() {
    // `acc + w·x` with acc already a product: a sum whose operand is not
    // itself a product.
    let s = setup();
    let x = s.encrypt(wave(0), 0);
    let y = s.encrypt(wave(1), 0);
    let (a, b) = (s.scalar(-0.75, 0), s.scalar(1.5e-3, 0));
    let acc = s.product(&x, &a);
    let mut seal = s.product(&y, &b);
    s.evaluator.add_inplace(&mut seal, &acc).unwrap();

    let mut fused = s.context.copy(&acc).unwrap();
    s.context
        .linear_combination_inplace(&mut fused, None, &[(&y, Some(&b.1))])
        .unwrap();
    assert!(same_bits(&fused, &seal));
    let new = s
        .context
        .linear_combination(&[(&y, Some(&b.1)), (&acc, None)])
        .unwrap();
    assert!(same_bits(&new, &seal));
}

#[test]
fn linear_combination_refuses_what_seal_would_refuse() {
    let s = setup();
    let x = s.encrypt(|_| 1.0, 0);
    let lower = s.encrypt(|_| 1.0, 1);
    let w = s.scalar(2.0, 0);
    let acc = s.product(&x, &w);
    let combine = |acc: &Ciphertext, terms: &[(&Ciphertext, Option<&Scalar>)]| {
        let mut sum = s.context.copy(acc).unwrap();
        let result = s.context.linear_combination_inplace(&mut sum, None, terms);
        // A refused call leaves its destination as it was.
        if result.is_err() {
            assert!(same_bits(&sum, acc));
        }
        result
    };

    // Operands at different levels.
    let err = combine(&acc, &[(&lower, Some(&w.1))]).unwrap_err();
    assert!(
        err.to_string().contains("Hepack_LinearCombination"),
        "{err}"
    );
    assert!(err.to_string().contains("invalid argument"), "{err}");
    // A scalar for another level.
    assert!(combine(&acc, &[(&x, Some(&s.scalar(2.0, 1).1))]).is_err());
    // Scales that do not meet: acc at Δ, the product at Δ².
    assert!(combine(&x, &[(&x, Some(&w.1))]).is_err());
    // A zero scalar: SEAL refuses a product that would be transparent.
    assert!(combine(&acc, &[(&x, Some(&s.scalar(0.0, 0).1))]).is_err());
    // Scalars for two different levels.
    assert!(combine(&acc, &[(&x, Some(&w.1)), (&x, Some(&s.scalar(2.0, 1).1))]).is_err());
    // A product whose scale outgrows the level's modulus (Δ³ at depth 1,
    // 100 bits): SEAL's multiply_plain refuses it.
    let mut square = s.encrypt(|_| 1.0, 1);
    s.evaluator.square_inplace(&mut square, None).unwrap();
    assert!(s
        .context
        .linear_combination(&[(&square, Some(&s.scalar(2.0, 1).1))])
        .is_err());
    // Nothing to multiply by.
    assert!(combine(&acc, &[(&x, None)]).is_err());
    assert!(s.context.linear_combination(&[]).is_err());
}

#[test]
fn seal_error_codes_are_errors() {
    // SEAL's codes are positive `long`s on 64-bit Linux (0x80070057); the
    // binding once took only negative codes as failures and ran on.
    let s = setup();
    let mut x = s.encrypt(|_| 1.0, 0);
    let lower = s.encrypt(|_| 1.0, 1);
    let err = s.evaluator.add_inplace(&mut x, &lower).unwrap_err();
    assert!(err.to_string().contains("Evaluator_Add"), "{err}");
    assert!(err.to_string().contains("0x80070057"), "{err}");
}

#[test]
fn scalars_are_the_residues_seal_encodes() {
    // Encoder::scalar computes round(v·Δ) mod q itself; a product by it must
    // be bit for bit SEAL's product by SEAL's own encoding of v.
    let s = setup();
    let half = 0.5 / SCALE; // v·Δ = ±0.5 exactly: SEAL rounds away from zero
    let values = [
        1.0,
        -1.0,
        0.37,
        -0.37,
        1234.5678,
        -3.3e9,
        half,
        -half,
        3.0 * half,
        1e-9,
        // v·Δ ≥ 2^64: the 128-bit path.
        2f64.powi(30),
        -2f64.powi(33) - 0.25,
    ];
    for depth in [0, 1] {
        let x = s.encrypt(wave(2), depth);
        for v in values {
            let w = s.scalar(v, depth);
            let seal = s.product(&x, &w);
            let ours = s.context.linear_combination(&[(&x, Some(&w.1))]).unwrap();
            assert!(same_bits(&ours, &seal), "{v} at depth {depth}");
        }
        // Zero (and what rounds to it) is refused by both.
        let zero = s.scalar(0.1 / SCALE, depth);
        let mut p = s.context.copy(&x).unwrap();
        assert!(s
            .evaluator
            .multiply_plain_inplace(&mut p, &zero.0, None)
            .is_err());
        assert!(s
            .context
            .linear_combination(&[(&x, Some(&zero.1))])
            .is_err());
    }
    // Beyond what the modulus holds, SEAL's error comes through.
    let id = s.context.parms_id(0).unwrap();
    let err = s.encoder.scalar(1e30, &id, SCALE, None).unwrap_err();
    assert!(err.to_string().contains("CKKSEncoder"), "{err}");
}
