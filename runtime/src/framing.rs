//! The small binary framing shared by key and ciphertext files:
//! an 8-byte magic, a format version, the fingerprint of the CKKS
//! parameters, the key set the file belongs to, then fields and
//! length-prefixed SEAL blobs (little-endian).
//! The file ends with the SHA-256 of everything before it, so corruption is
//! caught before SEAL parses anything (SEAL's own checks cannot tell a
//! flipped bit in a key from a different key). Reading checks every length
//! against what is left, so a truncated or hostile file is an error, never a
//! panic or a huge allocation.

use std::io::Write;

use hepack_backend::CkksParams;
use sha2::{Digest, Sha256};

use crate::error::RuntimeError;

/// Version of the key and ciphertext file formats.
pub const VERSION: u32 = 2;

/// Which key generation a key or ciphertext file belongs to: the first 16
/// bytes of the SHA-256 of its public key. Two `keygen` runs for one program
/// share parameters but not this, so a ciphertext is never decrypted or
/// evaluated with keys from another key set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeySet(pub [u8; 16]);

impl KeySet {
    /// The key set whose public key serializes to `public`.
    pub fn of_public_key(public: &[u8]) -> KeySet {
        let sum = Sha256::digest(public);
        KeySet(sum[..16].try_into().expect("16 bytes"))
    }
}

impl std::fmt::Display for KeySet {
    /// The first 8 bytes in hex, as messages name it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// SHA-256 of what keys and ciphertexts depend on: N, Δ and the primes.
pub fn fingerprint(params: &CkksParams) -> [u8; 32] {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&params.degree.to_le_bytes());
    bytes.extend_from_slice(&params.scale_bits.to_le_bytes());
    for p in &params.primes {
        bytes.extend_from_slice(&p.to_le_bytes());
    }
    hepack_backend::file::model_hash(&bytes)
}

/// Starts a file: magic, version, fingerprint, key set.
pub fn header(magic: &[u8; 8], params: &CkksParams, key_set: &KeySet) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&fingerprint(params));
    out.extend_from_slice(&key_set.0);
    out
}

/// Appends a length-prefixed blob.
pub fn put_blob(out: &mut Vec<u8>, blob: &[u8]) {
    out.extend_from_slice(&(blob.len() as u64).to_le_bytes());
    out.extend_from_slice(blob);
}

/// Appends the checksum trailer to a file built in memory.
pub fn seal_file(mut out: Vec<u8>) -> Vec<u8> {
    let sum: [u8; 32] = Sha256::digest(&out).into();
    out.extend_from_slice(&sum);
    out
}

/// A writer that checksums what it writes; [`finish`](Self::finish) writes
/// the trailer.
pub struct SummingWriter<W: Write> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> SummingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        SummingWriter {
            inner,
            hash: Sha256::new(),
        }
    }

    /// Writes `bytes`.
    pub fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hash.update(bytes);
        self.inner.write_all(bytes)
    }

    /// Writes the checksum trailer.
    pub fn finish(mut self) -> std::io::Result<()> {
        let sum: [u8; 32] = self.hash.finalize().into();
        self.inner.write_all(&sum)?;
        self.inner.flush()
    }
}

/// A checked reader over a file's bytes.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    what: &'static str,
    /// The key set the file names in its header.
    pub key_set: KeySet,
}

impl<'a> Reader<'a> {
    /// Checks magic, version and fingerprint, and reads the key set.
    /// `others` names the magics of the other hepack files, so a mix-up gets
    /// a precise message.
    pub fn open(
        bytes: &'a [u8],
        magic: &[u8; 8],
        what: &'static str,
        others: &[(&[u8; 8], &str)],
        params: &CkksParams,
    ) -> Result<Reader<'a>, RuntimeError> {
        let mut r = Reader {
            bytes,
            at: 0,
            what,
            key_set: KeySet([0; 16]),
        };
        let head = r.take(8)?;
        let checked = |r: &Reader<'a>| -> Result<&'a [u8], RuntimeError> {
            let Some(body_len) = bytes.len().checked_sub(32).filter(|&n| n >= 8) else {
                return Err(r.error("truncated: shorter than a header and checksum".into()));
            };
            let (body, sum) = bytes.split_at(body_len);
            if Sha256::digest(body).as_slice() != sum {
                return Err(r.error(
                    "checksum mismatch: the file is truncated or corrupt; copy it again".into(),
                ));
            }
            Ok(body)
        };
        if head != magic {
            if let Some((_, name)) = others.iter().find(|(m, _)| head == m.as_slice()) {
                return Err(r.error(format!("this is {name}, not {what}")));
            }
            return Err(r.error("not a hepack file of this kind (wrong magic bytes)".into()));
        }
        let body = checked(&r)?;
        r.bytes = body;
        let version = r.u32()?;
        if version != VERSION {
            return Err(r.error(format!(
                "format version {version}; this hepack reads version {VERSION}"
            )));
        }
        if r.take(32)? != fingerprint(params) {
            return Err(r.error(
                "made for other CKKS parameters than this program's (another program or a recompiled one); regenerate it with this program".into(),
            ));
        }
        r.key_set = KeySet(r.take(16)?.try_into().expect("16 bytes"));
        Ok(r)
    }

    /// An error about this file.
    pub fn error(&self, why: String) -> RuntimeError {
        RuntimeError::File {
            what: self.what,
            why,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RuntimeError> {
        if self.bytes.len() - self.at < n {
            return Err(self.error(format!(
                "truncated: {} bytes needed at offset {}, {} left",
                n,
                self.at,
                self.bytes.len() - self.at
            )));
        }
        let s = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> Result<u32, RuntimeError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    /// A little-endian i32.
    pub fn i32(&mut self) -> Result<i32, RuntimeError> {
        Ok(i32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    /// A length-prefixed blob.
    pub fn blob(&mut self) -> Result<&'a [u8], RuntimeError> {
        let len = u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"));
        let len = usize::try_from(len).map_err(|_| self.error(format!("blob of {len} bytes")))?;
        self.take(len)
    }

    /// Fails unless every byte was read.
    pub fn finish(self) -> Result<(), RuntimeError> {
        if self.at != self.bytes.len() {
            return Err(self.error(format!(
                "{} unexpected bytes after the end",
                self.bytes.len() - self.at
            )));
        }
        Ok(())
    }
}
