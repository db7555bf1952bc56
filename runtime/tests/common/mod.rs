//! A small CKKS setup the kernel tests share (`fused.rs`, `weighted.rs`):
//! N = 8192, a 60/40/40/60 chain, the keys a kernel needs and nothing more.
#![allow(dead_code)] // each test binary uses its own subset

use hepack_runtime::seal::{
    Ciphertext, Context, Decryptor, Encoder, Encryptor, Evaluator, KeyGenerator, Security,
};

pub const SCALE: f64 = (1u64 << 40) as f64;

pub struct Setup {
    pub context: Context,
    pub encoder: Encoder,
    pub encryptor: Encryptor,
    pub decryptor: Decryptor,
    pub evaluator: Evaluator,
}

pub fn setup() -> Setup {
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
    pub fn encrypt(&self, f: impl Fn(usize) -> f64, depth: u32) -> Ciphertext {
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

    pub fn decrypt(&self, ct: &Ciphertext) -> Vec<f64> {
        let plain = self.decryptor.decrypt(ct).unwrap();
        self.encoder.decode(&plain, self.context.slots()).unwrap()
    }
}

pub fn same_bits(a: &Ciphertext, b: &Ciphertext) -> bool {
    a.save().unwrap() == b.save().unwrap()
}

/// `f(i)` for term `t`: every term different, and some negative.
pub fn wave(t: usize) -> impl Fn(usize) -> f64 {
    move |i| ((i * (t + 3)) as f64 * 0.001 + t as f64).sin()
}
