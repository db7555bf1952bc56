//! The fused multiply-accumulate (runtime/shim/fused.cpp) against SEAL's own
//! copy + multiply_plain + add: the same ciphertext, bit for bit.

use hepack_runtime::seal::{
    Ciphertext, Context, Decryptor, Encoder, Encryptor, Evaluator, KeyGenerator, Plaintext, Scalar,
    Security,
};

const SCALE: f64 = (1u64 << 40) as f64;

struct Setup {
    context: Context,
    encoder: Encoder,
    encryptor: Encryptor,
    decryptor: Decryptor,
    evaluator: Evaluator,
}

fn setup() -> Setup {
    let primes = hepack_backend::params::coeff_modulus(8192, &[60, 40, 40, 60]).unwrap();
    let context = Context::new(8192, &primes, Security::Tc128).unwrap();
    let keygen = KeyGenerator::new(&context).unwrap();
    let public = keygen.public_key(false).unwrap();
    let secret = keygen.secret_key().unwrap();
    Setup {
        encoder: Encoder::new(&context).unwrap(),
        encryptor: Encryptor::with_public(&context, &public).unwrap(),
        decryptor: Decryptor::new(&context, &secret).unwrap(),
        evaluator: Evaluator::new(&context).unwrap(),
        context,
    }
}

impl Setup {
    /// A ciphertext of `f(i)` in slot `i`, `depth` levels down.
    fn encrypt(&self, f: impl Fn(usize) -> f64, depth: u32) -> Ciphertext {
        let values: Vec<f64> = (0..self.context.slots()).map(f).collect();
        let top = self.context.parms_id(0).unwrap();
        let plain = self.encoder.encode(&values, &top, SCALE, None).unwrap();
        let mut ct = self.encryptor.encrypt(&plain, None).unwrap();
        for _ in 0..depth {
            self.evaluator
                .mod_switch_to_next_inplace(&mut ct, None)
                .unwrap();
        }
        ct
    }

    /// `value` for level `depth`, as SEAL's plaintext and as the fused
    /// op's scalar.
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

    fn decrypt(&self, ct: &Ciphertext) -> Vec<f64> {
        let plain = self.decryptor.decrypt(ct).unwrap();
        self.encoder.decode(&plain, self.context.slots()).unwrap()
    }
}

fn same_bits(a: &Ciphertext, b: &Ciphertext) -> bool {
    a.save().unwrap() == b.save().unwrap()
}

#[test]
fn fused_multiply_add_is_bit_for_bit_seals_multiply_plain_then_add() {
    let s = setup();
    for depth in [0, 1] {
        let x = s.encrypt(|i| (i as f64 * 0.01).sin(), depth);
        let y = s.encrypt(|i| (i as f64 * 0.003).cos(), depth);
        let (a, b) = (s.scalar(-0.75, depth), s.scalar(1.5e-3, depth));

        // acc + b·y, acc at the product's scale.
        let acc = s.product(&x, &a);
        let mut seal = s.product(&y, &b);
        s.evaluator.add_inplace(&mut seal, &acc).unwrap();
        let mut fused = s.context.copy(&acc).unwrap();
        s.context
            .multiply_add_inplace(&mut fused, &y, &b.1)
            .unwrap();
        assert!(same_bits(&fused, &seal), "acc + b·y at depth {depth}");

        // a·x + b·y, in place and into a new buffer.
        let mut in_place = s.context.copy(&x).unwrap();
        s.context
            .multiply_multiply_add_inplace(&mut in_place, &a.1, &y, &b.1)
            .unwrap();
        assert!(
            same_bits(&in_place, &seal),
            "a·x + b·y in place at depth {depth}"
        );
        let new = s.context.multiply_multiply_add(&x, &a.1, &y, &b.1).unwrap();
        assert!(same_bits(&new, &seal), "a·x + b·y at depth {depth}");
        assert_eq!(new.primes(), x.primes());
        assert!((new.scale() - SCALE * SCALE).abs() < 1.0);

        // And it is the right number, not just SEAL's.
        let got = s.decrypt(&new);
        for i in [0, 1, 77, 4095] {
            let want = -0.75 * (i as f64 * 0.01).sin() + 1.5e-3 * (i as f64 * 0.003).cos();
            assert!(
                (got[i] - want).abs() < 1e-6,
                "slot {i}: {} vs {want}",
                got[i]
            );
        }
    }
}

#[test]
fn fused_multiply_add_refuses_what_seal_would_refuse() {
    let s = setup();
    let x = s.encrypt(|_| 1.0, 0);
    let lower = s.encrypt(|_| 1.0, 1);
    let w = s.scalar(2.0, 0);
    let acc = s.product(&x, &w);

    // Operands at different levels.
    let mut sum = s.context.copy(&acc).unwrap();
    let err = s
        .context
        .multiply_add_inplace(&mut sum, &lower, &w.1)
        .unwrap_err();
    assert!(err.to_string().contains("Hepack_FusedMultiplyAdd"), "{err}");
    assert!(err.to_string().contains("invalid argument"), "{err}");
    // A scalar for another level.
    let mut sum = s.context.copy(&acc).unwrap();
    assert!(s
        .context
        .multiply_add_inplace(&mut sum, &x, &s.scalar(2.0, 1).1)
        .is_err());
    // Scales that do not meet: acc at Δ, the product at Δ².
    let mut fresh = s.context.copy(&x).unwrap();
    assert!(s
        .context
        .multiply_add_inplace(&mut fresh, &x, &w.1)
        .is_err());
    // A zero scalar: SEAL refuses a product that would be transparent.
    let mut sum = s.context.copy(&acc).unwrap();
    assert!(s
        .context
        .multiply_add_inplace(&mut sum, &x, &s.scalar(0.0, 0).1)
        .is_err());
    // Scalars for two different levels.
    let mut sum = s.context.copy(&x).unwrap();
    assert!(s
        .context
        .multiply_multiply_add_inplace(&mut sum, &w.1, &x, &s.scalar(2.0, 1).1)
        .is_err());
    // A refused call leaves its destination as it was.
    assert!(same_bits(&sum, &x));
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
