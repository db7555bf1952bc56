//! The ciphertext file: what the client uploads (one ciphertext per input
//! feature the program reads, per batch of N/2 samples) and what the server
//! returns (one per encrypted output element, per batch).

use std::io::Write;

use hepack_backend::{CkksParams, Program};

use crate::error::RuntimeError;
use crate::framing::{header, put_blob, KeySet, Reader, SummingWriter};
use crate::seal::{Ciphertext, Context, SealError};

/// Magic bytes of a ciphertext file.
pub const MAGIC: &[u8; 8] = b"HPK-CTXT";

/// Which side of the program a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Encrypted inputs (client → server).
    Input,
    /// Encrypted outputs (server → client).
    Output,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Input => "encrypted inputs",
            Role::Output => "encrypted outputs",
        }
    }
}

/// One ciphertext of a batch.
#[derive(Debug)]
pub enum Held {
    /// In memory, ready to compute on.
    Loaded(Ciphertext),
    /// SEAL's compressed serialization, already checked, loaded when first
    /// read: a server holds its whole upload until the program reads each
    /// input, and a fresh seeded ciphertext takes a third of the memory
    /// this way.
    Packed(Vec<u8>),
}

impl Held {
    /// The ciphertext, loading it if packed.
    pub fn load(self, context: &Context) -> Result<Ciphertext, SealError> {
        match self {
            Held::Loaded(ct) => Ok(ct),
            Held::Packed(bytes) => Ciphertext::load(context, &bytes).map(|(ct, _)| ct),
        }
    }

    /// Calls `f` on the ciphertext, loading a packed one for the call.
    pub fn with<R>(
        &self,
        context: &Context,
        f: impl FnOnce(&Ciphertext) -> R,
    ) -> Result<R, SealError> {
        match self {
            Held::Loaded(ct) => Ok(f(ct)),
            Held::Packed(bytes) => Ciphertext::load(context, bytes).map(|(ct, _)| f(&ct)),
        }
    }
}

/// Why `ct` is not a fresh encryption a program can start from (on the top
/// level, two polynomials, at the program's scale), if it is not.
pub fn not_fresh(ct: &Ciphertext, context: &Context, params: &CkksParams) -> Option<String> {
    let top = context.parms_id(0).expect("a context has a first level");
    let scale = 2f64.powi(params.scale_bits as i32);
    (ct.parms_id() != top
        || ct.size() != 2
        || !hepack_backend::levels::are_close(ct.scale(), scale))
    .then(|| {
        format!(
            "not a fresh encryption at scale 2^{} on the top level",
            params.scale_bits
        )
    })
}

/// Ciphertexts for several batches of samples.
#[derive(Debug)]
pub struct Ciphertexts {
    /// Inputs or outputs.
    pub role: Role,
    /// The key set they were made under.
    pub key_set: KeySet,
    /// Samples in all batches together (the last batch may be partly empty).
    pub samples: usize,
    /// The flat feature (inputs) or output-element (outputs) index of each
    /// ciphertext in a batch.
    pub indices: Vec<u32>,
    /// `batches[b][k]`: batch `b`'s ciphertext for `indices[k]`.
    pub batches: Vec<Vec<Held>>,
}

impl Ciphertexts {
    /// Writes the file to `out`.
    pub fn write(&self, params: &CkksParams, out: impl Write) -> Result<(), RuntimeError> {
        let mut out = SummingWriter::new(out);
        let mut head = header(MAGIC, params, &self.key_set);
        let role: u32 = match self.role {
            Role::Input => 0,
            Role::Output => 1,
        };
        for v in [
            role,
            self.samples as u32,
            self.batches.len() as u32,
            self.indices.len() as u32,
        ] {
            head.extend_from_slice(&v.to_le_bytes());
        }
        for i in &self.indices {
            head.extend_from_slice(&i.to_le_bytes());
        }
        let io = |e: std::io::Error| RuntimeError::File {
            what: "ciphertext file",
            why: format!("write failed: {e}"),
        };
        out.write_all(&head).map_err(io)?;
        for batch in &self.batches {
            for held in batch {
                let mut blob = Vec::new();
                match held {
                    Held::Loaded(ct) => put_blob(&mut blob, &ct.save()?),
                    Held::Packed(bytes) => put_blob(&mut blob, bytes),
                }
                out.write_all(&blob).map_err(io)?;
            }
        }
        out.finish().map_err(io)
    }

    /// Reads a file of `role` for `program`; every ciphertext is checked by
    /// SEAL against the parameters (and inputs are checked to be fresh).
    /// Outputs come back loaded, inputs packed (see [`Held::Packed`]).
    pub fn read(
        context: &Context,
        program: &Program,
        role: Role,
        bytes: &[u8],
    ) -> Result<Ciphertexts, RuntimeError> {
        let params = &program.params;
        let others = [
            (crate::keys::SECRET_MAGIC, "a secret key file"),
            (crate::keys::EVAL_MAGIC, "an evaluation key file"),
        ];
        let mut r = Reader::open(bytes, MAGIC, role.name(), &others, params)?;
        let found = match r.u32()? {
            0 => Role::Input,
            1 => Role::Output,
            other => return Err(r.error(format!("unknown role {other}"))),
        };
        if found != role {
            return Err(r.error(format!(
                "this file holds {}, {} were expected",
                found.name(),
                role.name()
            )));
        }
        let samples = r.u32()? as usize;
        let batches = r.u32()? as usize;
        let count = r.u32()? as usize;
        let per = program.samples_per_ct();
        if samples == 0 {
            return Err(r.error("it holds no samples".into()));
        }
        if batches != samples.div_ceil(per) {
            return Err(r.error(format!(
                "{samples} samples cannot fill {batches} batches of {per} samples"
            )));
        }
        // Each index takes 4 bytes and each ciphertext at least 8: bound the
        // counts by the file's size before allocating for them.
        if count
            .saturating_mul(4)
            .saturating_add(batches.saturating_mul(count).saturating_mul(8))
            > bytes.len()
        {
            return Err(r.error(format!(
                "claims {batches} × {count} ciphertexts, more than its {} bytes can hold",
                bytes.len()
            )));
        }
        let indices = (0..count).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
        let mut blobs = Vec::with_capacity(batches * count);
        for _ in 0..batches {
            for _ in 0..count {
                blobs.push(r.blob()?);
            }
        }
        // Each ciphertext is parsed and checked by SEAL (an input's seed
        // expanded too), independently of the others: on every core (rayon's
        // global pool; reading a file comes before a run's `--threads`).
        let checked: Vec<Result<Held, String>> = {
            use rayon::prelude::*;
            blobs
                .par_iter()
                .enumerate()
                .map(|(k, blob)| {
                    let (b, i) = (k / count, indices[k % count]);
                    let at = || format!("ciphertext for index {i} of batch {b}");
                    let (ct, used) =
                        Ciphertext::load(context, blob).map_err(|e| format!("{}: {e}", at()))?;
                    if used != blob.len() {
                        return Err(format!("{}: {} stray bytes", at(), blob.len() - used));
                    }
                    Ok(match role {
                        Role::Input => {
                            if let Some(why) = not_fresh(&ct, context, params) {
                                return Err(format!("{}: {why}", at()));
                            }
                            Held::Packed(blob.to_vec())
                        }
                        Role::Output => Held::Loaded(ct),
                    })
                })
                .collect()
        };
        let mut out = Vec::with_capacity(batches);
        let mut checked = checked.into_iter();
        for _ in 0..batches {
            let batch = checked
                .by_ref()
                .take(count)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|why| r.error(why))?;
            out.push(batch);
        }
        let key_set = r.key_set;
        r.finish()?;
        Ok(Ciphertexts {
            role,
            key_set,
            samples,
            indices,
            batches: out,
        })
    }
}
