//! Hoisted rotations (runtime/shim/hoist.cpp) against SEAL's own
//! `rotate_vector`: one decomposition, many steps, the same decrypted
//! slots with the same noise. Not the same bits: the digits of a rotated
//! polynomial are the rotated digits only up to a multiple of their prime.

use hepack_runtime::seal::{
    Ciphertext, Context, Decryptor, Encoder, Encryptor, Evaluator, GaloisKeys, KeyGenerator,
    Security,
};

const SCALE: f64 = (1u64 << 40) as f64;
const STEPS: [i32; 6] = [1, 2, 5, 37, 1000, -3];

struct Setup {
    context: Context,
    encoder: Encoder,
    encryptor: Encryptor,
    decryptor: Decryptor,
    evaluator: Evaluator,
    galois: GaloisKeys,
}

fn setup(bits: &[u32]) -> Setup {
    let primes = hepack_backend::params::coeff_modulus(8192, bits).unwrap();
    let context = Context::new(8192, &primes, Security::Tc128).unwrap();
    let keygen = KeyGenerator::new(&context).unwrap();
    let public = keygen.public_key(false).unwrap();
    let secret = keygen.secret_key().unwrap();
    Setup {
        encoder: Encoder::new(&context).unwrap(),
        encryptor: Encryptor::with_public(&context, &public).unwrap(),
        decryptor: Decryptor::new(&context, &secret).unwrap(),
        evaluator: Evaluator::new(&context).unwrap(),
        galois: keygen.galois_keys(&STEPS, false).unwrap(),
        context,
    }
}

fn value(i: usize) -> f64 {
    (i as f64 * 0.013).sin() * 0.9
}

impl Setup {
    fn encrypt(&self, depth: u32) -> Ciphertext {
        let values: Vec<f64> = (0..self.context.slots()).map(value).collect();
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

    fn decrypt(&self, ct: &Ciphertext) -> Vec<f64> {
        let plain = self.decryptor.decrypt(ct).unwrap();
        self.encoder.decode(&plain, self.context.slots()).unwrap()
    }
}

/// The largest distance of `got` from `x` rotated left by `steps`.
fn error(got: &[f64], steps: i32) -> f64 {
    let n = got.len() as i64;
    got.iter()
        .enumerate()
        .map(|(i, g)| (g - value((i as i64 + i64::from(steps)).rem_euclid(n) as usize)).abs())
        .fold(0.0, f64::max)
}

#[test]
fn hoisted_rotations_decrypt_to_seals_rotations_with_the_same_noise() {
    // Two chains: a special prime larger than the data primes and one
    // smaller than the first (the reductions SEAL skips or does).
    for bits in [&[60, 40, 40, 60][..], &[50, 40, 40, 45]] {
        let s = setup(bits);
        // (hoisted, SEAL) distances from the exact rotation.
        let (mut hoisted_sum, mut seal_sum) = (0.0, 0.0);
        for depth in [0, 1, 2] {
            let ct = s.encrypt(depth);
            let digits = s.context.decompose(&ct).unwrap();
            for steps in STEPS {
                let hoisted = s
                    .context
                    .rotate_hoisted(&ct, &digits, steps, &s.galois)
                    .unwrap();
                let mut seal = s.context.copy(&ct).unwrap();
                s.evaluator
                    .rotate_vector_inplace(&mut seal, steps, &s.galois, None)
                    .unwrap();
                assert_eq!(hoisted.parms_id(), seal.parms_id());
                assert_eq!(hoisted.size(), 2);
                assert!((hoisted.scale() - seal.scale()).abs() < 1e-6);
                let (h, r) = (s.decrypt(&hoisted), s.decrypt(&seal));
                let (eh, er) = (error(&h, steps), error(&r, steps));
                // A wrong permutation, key or division would be off by the
                // values themselves (about 1).
                assert!(eh < 1e-4, "{bits:?} depth {depth} step {steps}: {eh}");
                hoisted_sum += eh;
                seal_sum += er;
            }
        }
        // Key-switching noise varies from key to key and step to step (by
        // 5x here); summed over the steps the two agree.
        assert!(
            hoisted_sum <= 4.0 * seal_sum,
            "{bits:?}: hoisted {hoisted_sum:e}, SEAL {seal_sum:e} summed"
        );
    }
}

#[test]
fn hoisting_refuses_missing_keys_and_foreign_digits() {
    let s = setup(&[60, 40, 40, 60]);
    let ct = s.encrypt(0);
    let digits = s.context.decompose(&ct).unwrap();
    // No key for step 3.
    assert!(s
        .context
        .rotate_hoisted(&ct, &digits, 3, &s.galois)
        .is_err());
    // Digits of a ciphertext at another level.
    let lower = s.encrypt(1);
    assert!(s
        .context
        .rotate_hoisted(&lower, &digits, 1, &s.galois)
        .is_err());
    // A ciphertext of size 3 (an unrelinearized product) has no digits.
    let mut product = s.context.copy(&ct).unwrap();
    s.evaluator
        .multiply_inplace(&mut product, &ct, None)
        .unwrap();
    assert!(s.context.decompose(&product).is_err());
}
