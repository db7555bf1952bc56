//! SEAL's serialization format, walked in Rust before SEAL parses a byte.
//!
//! A serialized object is a 16-byte header (magic, header size, version,
//! compression, size) and its members, and members nest whole objects with
//! headers of their own: a ciphertext's coefficients are a `DynArray`, a key
//! switching key is a table of public keys. SEAL honours the compression
//! byte of every nested header, and inflates before it checks any size, so
//! an outer object bounded here could still carry a decompression bomb one
//! level down. SEAL also reserves memory for counts it reads (a key table's
//! dimensions) before it has read the entries. Walking the structure first,
//! with every count checked against what the parameters allow and every
//! nested object uncompressed, bounds what SEAL allocates by the bytes that
//! are actually there.

use super::Object;

/// SEAL's serialization header: magic, header size, version, compression,
/// and the object's size in the stream (header included).
pub(super) const HEADER: usize = 16;
pub(super) const MAGIC: u16 = 0xA15E;
/// The only SEAL major version hepack reads and writes (SEAL 4.0).
const VERSION_MAJOR: u8 = 4;
/// `parms_id_type`: four 64-bit words.
const PARMS_ID: usize = 32;
/// A seed's `UniformRandomGeneratorInfo`: the PRNG type and 64 seed bytes.
const SEED_INFO: usize = 1 + 64;

/// What the parameters allow an object to hold.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bounds {
    /// The polynomial degree N.
    pub degree: u64,
    /// Primes of a fresh ciphertext (the chain without the special prime).
    pub data_primes: u64,
}

impl Bounds {
    fn key_primes(&self) -> u64 {
        self.data_primes + 1
    }
}

/// A parsed header.
#[derive(Clone, Copy, Debug)]
pub(super) struct Header {
    /// SEAL's `compr_mode_type` (0 none, 1 zlib, 2 zstd).
    pub compression: u8,
    /// The object's bytes, header included.
    pub size: usize,
}

/// Reads the header at the start of `bytes`, which must hold the object.
pub(super) fn header(bytes: &[u8]) -> Result<Header, String> {
    if bytes.len() < HEADER {
        return Err(format!("{} bytes, shorter than SEAL's header", bytes.len()));
    }
    let magic = u16::from_le_bytes([bytes[0], bytes[1]]);
    if magic != MAGIC || bytes[2] as usize != HEADER {
        return Err("not a SEAL object (bad magic or header size)".into());
    }
    if bytes[3] != VERSION_MAJOR {
        return Err(format!(
            "SEAL version {}.{} (hepack reads SEAL {VERSION_MAJOR} objects)",
            bytes[3], bytes[4]
        ));
    }
    let size = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| (HEADER..=bytes.len()).contains(&s))
        .ok_or_else(|| format!("declares {size} bytes, {} are there", bytes.len()))?;
    Ok(Header {
        compression: bytes[5],
        size,
    })
}

/// Checks the members of an `object` (the bytes after its outer header,
/// uncompressed) against `bounds`.
pub(super) fn check(members: &[u8], object: Object, bounds: &Bounds) -> Result<(), String> {
    let mut r = Reader::new(members);
    match object {
        Object::Ciphertext => ciphertext(&mut r, 2..=3, 1..=bounds.data_primes, bounds)?,
        Object::PublicKey => public_key_members(&mut r, bounds)?,
        Object::SecretKey => {
            r.skip(PARMS_ID, "parameter id")?;
            let coeffs = r.u64("coefficient count")?;
            let expected = bounds.degree * bounds.key_primes();
            if coeffs != expected {
                return Err(format!(
                    "a secret key of {coeffs} coefficients; these parameters have {expected}"
                ));
            }
            r.skip(8, "scale")?;
            array(&mut r, &[coeffs])?;
        }
        Object::RelinKeys => switch_keys(&mut r, 1, bounds)?,
        Object::GaloisKeys(keys) => switch_keys(&mut r, keys as u64, bounds)?,
    }
    r.end()
}

/// A ciphertext's members: metadata, then its coefficients (all of them, or
/// the first polynomial and a seed for the second).
fn ciphertext(
    r: &mut Reader<'_>,
    polys: std::ops::RangeInclusive<u64>,
    primes: std::ops::RangeInclusive<u64>,
    bounds: &Bounds,
) -> Result<(), String> {
    r.skip(PARMS_ID + 1, "parameter id")?;
    let size = r.u64("polynomial count")?;
    let degree = r.u64("degree")?;
    let coeff_primes = r.u64("prime count")?;
    if !polys.contains(&size) {
        return Err(format!(
            "{size} polynomials where {}..={} are allowed",
            polys.start(),
            polys.end()
        ));
    }
    if degree != bounds.degree {
        return Err(format!(
            "degree {degree}; these parameters have {}",
            bounds.degree
        ));
    }
    if !primes.contains(&coeff_primes) {
        return Err(format!(
            "{coeff_primes} primes where {}..={} are allowed",
            primes.start(),
            primes.end()
        ));
    }
    r.skip(8 + 8, "scale")?;
    let poly = degree * coeff_primes;
    let seeded = array(r, &[size * poly, poly])? == poly;
    if seeded {
        let mut seed = r.nested("seed")?;
        seed.skip(SEED_INFO, "seed")?;
        seed.end()?;
    }
    Ok(())
}

/// A public key: one ciphertext of two polynomials over the key modulus.
fn public_key_members(r: &mut Reader<'_>, bounds: &Bounds) -> Result<(), String> {
    let key = bounds.key_primes();
    ciphertext(r, 2..=2, key..=key, bounds)
}

/// A key-switching key table (`KSwitchKeys`): at most `keys` non-empty rows
/// of one public key per data prime.
fn switch_keys(r: &mut Reader<'_>, keys: u64, bounds: &Bounds) -> Result<(), String> {
    r.skip(PARMS_ID, "parameter id")?;
    let rows = r.u64("key count")?;
    // Galois keys are indexed by Galois element: N rows, most of them empty.
    if rows > bounds.degree {
        return Err(format!(
            "a table of {rows} keys; these parameters index at most {}",
            bounds.degree
        ));
    }
    let mut filled = 0u64;
    for _ in 0..rows {
        let parts = r.u64("key size")?;
        if parts == 0 {
            continue;
        }
        filled += 1;
        if filled > keys {
            return Err(format!("more than the {keys} key(s) the program uses"));
        }
        if parts != bounds.data_primes {
            return Err(format!(
                "a key of {parts} parts; these parameters decompose into {}",
                bounds.data_primes
            ));
        }
        for _ in 0..parts {
            let mut key = r.nested("key")?;
            public_key_members(&mut key, bounds)?;
            key.end()?;
        }
    }
    Ok(())
}

/// A nested `DynArray` of 64-bit words whose length is one of `allowed`;
/// returns the length.
fn array(r: &mut Reader<'_>, allowed: &[u64]) -> Result<u64, String> {
    let mut a = r.nested("coefficients")?;
    let len = a.u64("coefficient count")?;
    if !allowed.contains(&len) {
        return Err(format!(
            "{len} coefficients where the metadata implies {allowed:?}"
        ));
    }
    let bytes = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_mul(8))
        .ok_or("coefficient count overflows")?;
    a.skip(bytes, "coefficients")?;
    a.end()?;
    Ok(len)
}

/// A cursor over serialized members.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err(format!("truncated in its {what}"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn skip(&mut self, n: usize, what: &str) -> Result<(), String> {
        self.take(n, what).map(|_| ())
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// The members of the nested object here, which must be uncompressed.
    fn nested(&mut self, what: &str) -> Result<Reader<'a>, String> {
        let h = header(self.bytes).map_err(|e| format!("its {what}: {e}"))?;
        if h.compression != 0 {
            return Err(format!(
                "its {what} is compressed (mode {}); SEAL writes nested objects uncompressed",
                h.compression
            ));
        }
        let object = self.take(h.size, what)?;
        Ok(Reader::new(&object[HEADER..]))
    }

    fn end(&self) -> Result<(), String> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(format!("{} bytes past its end", self.bytes.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds {
        degree: 8,
        data_primes: 2,
    };

    /// A nested object: a header (`compression`) and `members`.
    fn object(compression: u8, members: &[u8]) -> Vec<u8> {
        let mut o = vec![0x5E, 0xA1, 16, 4, 0, compression, 0, 0];
        o.extend_from_slice(&((HEADER + members.len()) as u64).to_le_bytes());
        o.extend_from_slice(members);
        o
    }

    fn array(len: u64, words: usize) -> Vec<u8> {
        let mut m = len.to_le_bytes().to_vec();
        m.resize(8 + 8 * words, 7);
        object(0, &m)
    }

    /// A ciphertext's members: `size` polynomials over `primes` primes.
    fn ciphertext(size: u64, primes: u64, data: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; PARMS_ID + 1];
        for v in [size, BOUNDS.degree, primes] {
            m.extend_from_slice(&v.to_le_bytes());
        }
        m.extend_from_slice(&1.0f64.to_le_bytes());
        m.extend_from_slice(&1u64.to_le_bytes());
        m.extend_from_slice(data);
        m
    }

    fn full(size: u64, primes: u64) -> Vec<u8> {
        let n = size * BOUNDS.degree * primes;
        ciphertext(size, primes, &array(n, n as usize))
    }

    #[test]
    fn well_formed_ciphertexts_pass_full_or_seeded() {
        check(&full(2, 2), Object::Ciphertext, &BOUNDS).unwrap();
        check(&full(3, 1), Object::Ciphertext, &BOUNDS).unwrap();
        let poly = BOUNDS.degree * 2;
        let mut seeded = array(poly, poly as usize);
        seeded.extend(object(0, &[1u8; SEED_INFO]));
        check(&ciphertext(2, 2, &seeded), Object::Ciphertext, &BOUNDS).unwrap();
    }

    #[test]
    fn a_compressed_nested_object_is_refused() {
        let n = 2 * BOUNDS.degree * 2;
        let mut m = n.to_le_bytes().to_vec();
        m.extend_from_slice(&[0x28, 0xB5, 0x2F, 0xFD]);
        let bomb = ciphertext(2, 2, &object(2, &m));
        let err = check(&bomb, Object::Ciphertext, &BOUNDS).unwrap_err();
        assert!(err.contains("compressed (mode 2)"), "{err}");
    }

    #[test]
    fn counts_that_disagree_with_the_parameters_are_refused() {
        let cases = [
            (ciphertext(17, 2, &array(0, 0)), "17 polynomials"),
            (ciphertext(2, 3, &array(48, 48)), "3 primes"),
            (ciphertext(2, 2, &array(u64::MAX, 0)), "coefficients where"),
            (ciphertext(2, 2, &array(32, 31)), "truncated"),
        ];
        for (bytes, want) in cases {
            let err = check(&bytes, Object::Ciphertext, &BOUNDS).unwrap_err();
            assert!(err.contains(want), "{err} (want {want})");
        }
        let mut extra = full(2, 2);
        extra.push(0);
        let err = check(&extra, Object::Ciphertext, &BOUNDS).unwrap_err();
        assert!(err.contains("1 bytes past its end"), "{err}");
    }

    /// A key table of `rows` rows, `filled` of them holding a full key.
    fn key_table(rows: u64, filled: u64) -> Vec<u8> {
        let mut m = vec![0u8; PARMS_ID];
        m.extend_from_slice(&rows.to_le_bytes());
        for row in 0..rows.min(64) {
            if row < filled {
                m.extend_from_slice(&BOUNDS.data_primes.to_le_bytes());
                for _ in 0..BOUNDS.data_primes {
                    m.extend(object(0, &full(2, BOUNDS.data_primes + 1)));
                }
            } else {
                m.extend_from_slice(&0u64.to_le_bytes());
            }
        }
        m
    }

    #[test]
    fn key_tables_are_bounded_by_the_keys_the_program_uses() {
        check(&key_table(1, 1), Object::RelinKeys, &BOUNDS).unwrap();
        check(&key_table(8, 3), Object::GaloisKeys(3), &BOUNDS).unwrap();
        let err = check(&key_table(8, 4), Object::GaloisKeys(3), &BOUNDS).unwrap_err();
        assert!(err.contains("more than the 3 key(s)"), "{err}");
        // SEAL reserves a row per count before reading one.
        let err = check(&key_table(1 << 40, 0), Object::RelinKeys, &BOUNDS).unwrap_err();
        assert!(err.contains("a table of 1099511627776 keys"), "{err}");
    }

    #[test]
    fn headers_of_other_versions_or_sizes_are_refused() {
        let mut o = object(0, &[]);
        o[3] = 3;
        assert!(header(&o).unwrap_err().contains("SEAL version 3.0"));
        let mut o = object(0, &[1, 2]);
        o[8] = 200;
        assert!(header(&o).unwrap_err().contains("declares 200 bytes"));
    }
}
