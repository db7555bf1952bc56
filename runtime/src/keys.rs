//! Key generation and key files. The client keeps `secret.key` (mode 0600);
//! the server gets `eval.keys`: the public key, relinearization keys and
//! Galois keys for exactly the program's rotation steps.

use hepack_backend::{CkksParams, Program};

use crate::error::RuntimeError;
use crate::framing::{header, put_blob, seal_file, KeySet, Reader};
use crate::seal::{
    Context, GaloisKeys, KeyGenerator, Object, PublicKey, RelinKeys, SealError, SecretKey, Security,
};

/// Magic bytes of a secret key file.
pub const SECRET_MAGIC: &[u8; 8] = b"HPK-SKEY";
/// Magic bytes of an evaluation key file.
pub const EVAL_MAGIC: &[u8; 8] = b"HPK-EKEY";

const OTHERS: [(&[u8; 8], &str); 3] = [
    (SECRET_MAGIC, "a secret key file"),
    (EVAL_MAGIC, "an evaluation key file"),
    (crate::ciphertexts::MAGIC, "a ciphertext file"),
];

/// The SEAL context for a program's parameters. SEAL checks 128-bit
/// security itself unless the program was compiled `--insecure`.
pub fn context(params: &CkksParams) -> Result<Context, RuntimeError> {
    let security = match params.security_bits {
        Some(_) => Security::Tc128,
        None => Security::None,
    };
    Ok(Context::new(params.degree, &params.primes, security)?)
}

/// What the client keeps: the secret key and the key set it belongs to.
#[derive(Debug)]
pub struct ClientKey {
    /// The secret key.
    pub secret: SecretKey,
    /// Its key set: ciphertexts and evaluation keys must name the same.
    pub key_set: KeySet,
}

/// What the server needs: evaluation keys, never the secret key.
#[derive(Debug)]
pub struct EvalKeys {
    /// The key set they belong to.
    pub key_set: KeySet,
    /// The public key (for anyone who encrypts on the client's behalf).
    pub public: PublicKey,
    /// Relinearization keys.
    pub relin: RelinKeys,
    /// Galois keys for `steps` (`None` when the program rotates nothing).
    pub galois: Option<GaloisKeys>,
    /// The rotation steps the Galois keys cover.
    pub steps: Vec<i32>,
}

/// A fresh key set for `program`, for use in this process.
pub fn generate(
    context: &Context,
    program: &Program,
) -> Result<(ClientKey, EvalKeys), RuntimeError> {
    let keygen = KeyGenerator::new(context)?;
    let eval = eval_keys(&keygen, &program.rotation_steps(), false)?;
    let client = ClientKey {
        secret: keygen.secret_key()?,
        key_set: eval.key_set,
    };
    Ok((client, eval))
}

fn eval_keys(keygen: &KeyGenerator, steps: &[i32], seeded: bool) -> Result<EvalKeys, SealError> {
    let public = keygen.public_key(seeded)?;
    Ok(EvalKeys {
        key_set: KeySet::of_public_key(&public.save()?),
        public,
        relin: keygen.relin_keys(seeded)?,
        galois: if steps.is_empty() {
            None
        } else {
            Some(keygen.galois_keys(steps, seeded)?)
        },
        steps: steps.to_vec(),
    })
}

/// The bytes of a fresh `secret.key` and `eval.keys` for `program`. Keys
/// are saved seeded, which halves the evaluation keys' size.
pub fn generate_files(
    context: &Context,
    program: &Program,
) -> Result<(Vec<u8>, Vec<u8>), RuntimeError> {
    let keygen = KeyGenerator::new(context)?;
    let params = &program.params;
    let steps = program.rotation_steps();
    let keys = eval_keys(&keygen, &steps, true)?;
    let mut secret = header(SECRET_MAGIC, params, &keys.key_set);
    put_blob(&mut secret, &keygen.secret_key()?.save()?);
    let mut eval = header(EVAL_MAGIC, params, &keys.key_set);
    eval.extend_from_slice(&(steps.len() as u32).to_le_bytes());
    for s in &steps {
        eval.extend_from_slice(&s.to_le_bytes());
    }
    put_blob(&mut eval, &keys.public.save()?);
    put_blob(&mut eval, &keys.relin.save()?);
    match &keys.galois {
        Some(g) => put_blob(&mut eval, &g.save()?),
        None => put_blob(&mut eval, &[]),
    }
    Ok((seal_file(secret), seal_file(eval)))
}

/// Reads `secret.key` for `params`.
pub fn read_secret(
    context: &Context,
    params: &CkksParams,
    bytes: &[u8],
) -> Result<ClientKey, RuntimeError> {
    let mut r = Reader::open(bytes, SECRET_MAGIC, "secret key file", &OTHERS, params)?;
    let blob = r.blob()?;
    let (secret, _) = SecretKey::load(context, blob, Object::SecretKey)
        .map_err(|e| r.error(format!("SEAL could not read the key: {e}")))?;
    let key_set = r.key_set;
    r.finish()?;
    Ok(ClientKey { secret, key_set })
}

/// The most memory `program`'s evaluation keys take once loaded: what a
/// server must budget before it reads them.
pub fn eval_bytes(context: &Context, program: &Program) -> u64 {
    let steps = program.rotation_steps().len();
    let galois = if steps == 0 {
        0
    } else {
        context.max_bytes(Object::GaloisKeys(steps))
    };
    context.max_bytes(Object::PublicKey) + context.max_bytes(Object::RelinKeys) + galois
}

/// The rotation steps `program` uses that keys for `steps` do not cover.
pub fn missing_steps(program: &Program, steps: &[i32]) -> Vec<i32> {
    let have: std::collections::HashSet<i32> = steps.iter().copied().collect();
    program
        .rotation_steps()
        .into_iter()
        .filter(|s| !have.contains(s))
        .collect()
}

/// Reads `eval.keys` for `program`, checking it covers the program's rotations.
pub fn read_eval(
    context: &Context,
    program: &Program,
    bytes: &[u8],
) -> Result<EvalKeys, RuntimeError> {
    let mut r = Reader::open(
        bytes,
        EVAL_MAGIC,
        "evaluation key file",
        &OTHERS,
        &program.params,
    )?;
    let key_set = r.key_set;
    let count = r.u32()?;
    if count > 1 << 16 {
        return Err(r.error(format!("{count} rotation steps")));
    }
    let steps = (0..count).map(|_| r.i32()).collect::<Result<Vec<_>, _>>()?;
    // keygen writes exactly the program's steps, sorted: anything else is
    // keys for another program (too few) or key memory nobody uses (more).
    let used = program.rotation_steps();
    if steps != used {
        let missing = missing_steps(program, &steps);
        let unused: Vec<i32> = steps
            .iter()
            .copied()
            .filter(|s| used.binary_search(s).is_err())
            .collect();
        return Err(r.error(format!(
            "its Galois keys do not match the program's rotations (missing steps {missing:?}, steps the program does not use {unused:?}); run `hepack keygen` for this program"
        )));
    }
    let seal = |e: SealError| format!("SEAL could not read the keys: {e}");
    let public_blob = r.blob()?;
    if KeySet::of_public_key(public_blob) != key_set {
        return Err(r.error(format!(
            "its header names key set {key_set}, which is not its public key's"
        )));
    }
    let (public, _) =
        PublicKey::load(context, public_blob, Object::PublicKey).map_err(|e| r.error(seal(e)))?;
    let (relin, _) =
        RelinKeys::load(context, r.blob()?, Object::RelinKeys).map_err(|e| r.error(seal(e)))?;
    let g = r.blob()?;
    let galois = if g.is_empty() {
        None
    } else {
        Some(
            GaloisKeys::load(context, g, Object::GaloisKeys(used.len()))
                .map_err(|e| r.error(seal(e)))?
                .0,
        )
    };
    if galois.is_none() && !steps.is_empty() {
        return Err(r.error("rotation steps are listed but no Galois keys follow".into()));
    }
    r.finish()?;
    Ok(EvalKeys {
        key_set,
        public,
        relin,
        galois,
        steps,
    })
}
