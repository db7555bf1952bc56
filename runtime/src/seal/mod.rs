//! A small safe binding over Microsoft SEAL's C API: RAII handles and
//! `Result` errors naming the SEAL call that failed. This module is the only
//! place in hepack with `unsafe` code.
//!
//! Thread safety: SEAL objects may be read from many threads at once (the
//! evaluator, encoder and keys are used through `const` references in SEAL),
//! and this binding only mutates an object through `&mut self`, so every
//! handle is `Send + Sync`.

mod ffi;
mod wire;

use std::os::raw::c_int;
use std::ptr;

use ffi::{HResult, Handle};
use thiserror::Error;

/// SEAL's parameter id of one level of the modulus chain.
pub type ParmsId = [u64; 4];

/// A failed SEAL call.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SealError {
    /// A call returned an error code.
    #[error("SEAL {op} failed: {}", meaning(*code))]
    Call {
        /// The C API function.
        op: &'static str,
        /// Its HRESULT.
        code: i64,
    },
    /// `SEALContext` did not accept the parameters.
    #[error("SEAL refused the encryption parameters: {0}")]
    Parameters(String),
    /// Serialized bytes refused before SEAL saw them.
    #[error("{op}: {why}")]
    Data {
        /// The load that was refused.
        op: &'static str,
        /// What is wrong with the bytes.
        why: String,
    },
}

fn meaning(code: i64) -> String {
    let name = match code as u32 {
        0x8000_4003 => "null pointer (E_POINTER)",
        0x8007_0057 => "invalid argument (E_INVALIDARG): SEAL rejected an operand, e.g. mismatched levels or scales, or data not valid for these parameters",
        0x8007_000E => "out of memory (E_OUTOFMEMORY)",
        0x8000_FFFF => "unexpected error (E_UNEXPECTED)",
        0x8013_1620 => "I/O error (COR_E_IO): the data is truncated or corrupt",
        0x8013_1509 => "invalid operation (COR_E_INVALIDOPERATION), e.g. a transparent result or a missing key",
        _ => "unknown error",
    };
    format!("{name} [0x{:08x}]", code as u32)
}

/// Whether an HRESULT reports a failure. SEAL's C API writes its codes as
/// `(long)0x80070057L`: negative where `long` is 32-bit (Windows), but a
/// positive 64-bit number on Linux, so the test is the 32-bit severity bit,
/// not the sign.
fn failed(hr: HResult) -> bool {
    hr < 0 || (hr as u64) & 0x8000_0000 != 0
}

// `c_long` is 64-bit here but 32-bit on some platforms.
#[allow(clippy::useless_conversion)]
fn check(op: &'static str, hr: HResult) -> Result<(), SealError> {
    if failed(hr) {
        Err(SealError::Call {
            op,
            code: i64::from(hr),
        })
    } else {
        Ok(())
    }
}

/// Runs `f` (a SEAL call) inside the shim's `catch (...)`, so a C++
/// exception the C API lets through (`bad_alloc`) is an error code, not an
/// abort.
fn guarded<F: FnOnce() -> HResult>(f: F) -> HResult {
    extern "C-unwind" fn body<F: FnOnce() -> HResult>(env: *mut std::os::raw::c_void) -> HResult {
        // SAFETY: `env` is the `Option<F>` below, live and unaliased for
        // the duration of `Hepack_Guard`, which calls `body` once.
        let f = unsafe { &mut *env.cast::<Option<F>>() };
        f.take().map_or(0x8000_FFFF, |f| f())
    }
    let mut f = Some(f);
    // SAFETY: `body::<F>` matches `GuardBody` and reads only `f`.
    unsafe { ffi::Hepack_Guard(body::<F>, (&mut f as *mut Option<F>).cast()) }
}

/// Calls a C API function by name, mapping its HRESULT to [`SealError`].
macro_rules! call {
    ($f:ident ( $($arg:expr),* $(,)? )) => {
        // SAFETY: every handle passed is live (owned by a wrapper that
        // outlives the call) and every out-pointer points to valid storage.
        check(stringify!($f), guarded(|| unsafe { ffi::$f($($arg),*) }))
    };
}

/// Declares an owning wrapper that destroys its SEAL object on drop.
macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $destroy:ident) => {
        $(#[$doc])*
        pub struct $name(Handle);

        impl Drop for $name {
            fn drop(&mut self) {
                // SAFETY: the handle was created by SEAL and is dropped once.
                unsafe {
                    ffi::$destroy(self.0);
                }
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($name))
            }
        }

        // SAFETY: see the module documentation.
        unsafe impl Send for $name {}
        // SAFETY: see the module documentation.
        unsafe impl Sync for $name {}
    };
}

/// Creates an object through an out-pointer.
fn create(op: &'static str, f: impl FnOnce(*mut Handle) -> HResult) -> Result<Handle, SealError> {
    let mut h: Handle = ptr::null_mut();
    check(op, guarded(|| f(&mut h)))?;
    if h.is_null() {
        return Err(SealError::Call {
            op,
            code: 0x8000_4003,
        });
    }
    Ok(h)
}

/// Serialization compression (SEAL's `compr_mode_type::zstd`).
const ZSTD: u8 = 2;

/// The bytes SEAL may parse for a serialized `object`: its header checked,
/// zstd data inflated here with at most [`Context::max_bytes`] of output,
/// and the whole structure walked ([`wire`]) before it is handed to SEAL
/// uncompressed. SEAL inflates into a buffer that grows with whatever the
/// stream produces, so a small hostile blob (a chain of RLE blocks) would
/// otherwise take the process down. Returns the bytes for SEAL and how many
/// of `bytes` the object takes.
fn bounded(
    bytes: &[u8],
    context: &Context,
    object: Object,
    op: &'static str,
) -> Result<(Vec<u8>, usize), SealError> {
    let bad = |why: String| SealError::Data { op, why };
    let header = wire::header(bytes).map_err(bad)?;
    let max = context.max_bytes(object);
    let payload = &bytes[wire::HEADER..header.size];
    let mut plain = bytes[..wire::HEADER].to_vec();
    match header.compression {
        0 => plain.extend_from_slice(payload),
        ZSTD => inflate(payload, max, &mut plain).map_err(bad)?,
        mode => return Err(bad(format!("compression mode {mode} (hepack writes zstd)"))),
    }
    let members = (plain.len() - wire::HEADER) as u64;
    if members > max {
        return Err(bad(format!(
            "it expands past {max} bytes, more than any such object for these parameters"
        )));
    }
    wire::check(&plain[wire::HEADER..], object, &context.bounds()).map_err(bad)?;
    plain[5] = 0;
    let size = plain.len() as u64;
    plain[8..16].copy_from_slice(&size.to_le_bytes());
    Ok((plain, header.size))
}

/// libzstd's one-shot decoder, from the zstd that sealy builds into SEAL
/// (`SEAL_USE_ZSTD`): it writes into a buffer of fixed capacity and fails
/// rather than grow it.
mod zstd {
    use std::os::raw::{c_char, c_uint, c_void};
    extern "C" {
        pub fn ZSTD_decompress(
            dst: *mut c_void,
            dst_capacity: usize,
            src: *const c_void,
            src_size: usize,
        ) -> usize;
        pub fn ZSTD_isError(code: usize) -> c_uint;
        pub fn ZSTD_getErrorName(code: usize) -> *const c_char;
    }
}

/// Inflates a zstd stream onto `out`, failing past `max` bytes of output.
/// The frame's declared window is checked first, as a streaming decoder
/// would reserve it.
fn inflate(payload: &[u8], max: u64, out: &mut Vec<u8>) -> Result<(), String> {
    let window = zstd_window(payload)?;
    if window > max.max(1 << 20) {
        return Err(format!(
            "a zstd window of {window} bytes, more than any such object for these parameters"
        ));
    }
    let capacity = usize::try_from(max).map_err(|_| format!("{max} bytes do not fit in memory"))?;
    out.reserve(capacity);
    let spare = out.spare_capacity_mut();
    // SAFETY: libzstd writes at most `capacity` bytes (within the spare
    // capacity just reserved) and reads `payload`'s bytes only.
    let written = unsafe {
        zstd::ZSTD_decompress(
            spare.as_mut_ptr().cast(),
            capacity,
            payload.as_ptr().cast(),
            payload.len(),
        )
    };
    // SAFETY: a pure function of the code.
    if unsafe { zstd::ZSTD_isError(written) } != 0 {
        // SAFETY: libzstd returns a static NUL-terminated string per code.
        let name = unsafe { std::ffi::CStr::from_ptr(zstd::ZSTD_getErrorName(written)) };
        let name = name.to_string_lossy();
        return Err(if name.contains("too small") {
            format!("it expands past {max} bytes, more than any such object for these parameters")
        } else {
            format!("zstd data: {name}")
        });
    }
    // SAFETY: libzstd initialised the `written` bytes after the old length.
    unsafe { out.set_len(out.len() + written) };
    Ok(())
}

/// The window a zstd frame declares (RFC 8878 §3.1.1.1): the decoder's
/// buffer, which it reserves before it decodes a block.
fn zstd_window(frame: &[u8]) -> Result<u64, String> {
    const MAGIC: u32 = 0xFD2F_B528;
    let short = || "zstd data: truncated frame header".to_string();
    let magic = frame.get(..4).ok_or_else(short)?;
    if u32::from_le_bytes(magic.try_into().expect("4 bytes")) != MAGIC {
        return Err("zstd data: not a zstd frame".into());
    }
    let descriptor = *frame.get(4).ok_or_else(short)?;
    let single_segment = descriptor & 0x20 != 0;
    if !single_segment {
        let w = *frame.get(5).ok_or_else(short)?;
        let base = 1u64 << (10 + u64::from(w >> 3));
        return Ok(base + base / 8 * u64::from(w & 7));
    }
    // A single segment's window is its content size, which follows the
    // dictionary id.
    let dict_bytes = [0, 1, 2, 4][usize::from(descriptor & 3)];
    let size_bytes = [1, 2, 4, 8][usize::from(descriptor >> 6)];
    let at = 5 + dict_bytes;
    let field = frame.get(at..at + size_bytes).ok_or_else(short)?;
    let mut le = [0u8; 8];
    le[..size_bytes].copy_from_slice(field);
    let size = u64::from_le_bytes(le);
    Ok(if size_bytes == 2 { size + 256 } else { size })
}

type SaveSize = unsafe extern "C-unwind" fn(Handle, u8, *mut i64) -> HResult;
type Save = unsafe extern "C-unwind" fn(Handle, *mut u8, u64, u8, *mut i64) -> HResult;
type Load = unsafe extern "C-unwind" fn(Handle, Handle, *mut u8, u64, *mut i64) -> HResult;

fn save(
    raw: Handle,
    op: &'static str,
    size_fn: SaveSize,
    save_fn: Save,
) -> Result<Vec<u8>, SealError> {
    let mut size = 0i64;
    // SAFETY: `raw` is live; `size` is valid storage.
    check(op, guarded(|| unsafe { size_fn(raw, ZSTD, &mut size) }))?;
    let mut buf = vec![0u8; size.max(0) as usize];
    let mut written = 0i64;
    // SAFETY: `buf` holds `size` bytes, the bound SEAL was given.
    check(
        op,
        guarded(|| unsafe { save_fn(raw, buf.as_mut_ptr(), buf.len() as u64, ZSTD, &mut written) }),
    )?;
    buf.truncate(written.max(0) as usize);
    Ok(buf)
}

/// Loads a serialized `object`, checked by [`bounded`], into `raw`;
/// returns how many of `bytes` it took.
fn load(
    raw: Handle,
    context: &Context,
    bytes: &[u8],
    object: Object,
    op: &'static str,
    load_fn: Load,
) -> Result<usize, SealError> {
    let (plain, taken) = bounded(bytes, context, object, op)?;
    let mut read = 0i64;
    // SAFETY: SEAL only reads `plain.len()` bytes from the pointer (the C API
    // declares it mutable, but `load` takes a const buffer); it checks the
    // header, the sizes and that the object is valid for `context`.
    check(
        op,
        guarded(|| unsafe {
            load_fn(
                raw,
                context.raw,
                plain.as_ptr() as *mut u8,
                plain.len() as u64,
                &mut read,
            )
        }),
    )?;
    Ok(taken)
}

/// A kind of serialized SEAL object, for the most bytes one may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// A ciphertext at a data level (up to three polynomials).
    Ciphertext,
    /// The secret key (one polynomial over the key modulus).
    SecretKey,
    /// The public key (two polynomials over the key modulus).
    PublicKey,
    /// Relinearization keys: one public-key-sized pair per data prime.
    RelinKeys,
    /// Galois keys for this many rotation steps.
    GaloisKeys(usize),
}

/// Security level SEAL checks the parameters against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// 128-bit classical security (the HE standard's bound on the modulus).
    Tc128,
    /// No check: only for programs compiled with `--insecure`.
    None,
}

handle!(
    /// A CKKS context: parameters validated by SEAL and the modulus chain.
    ContextHandle,
    SEALContext_Destroy
);

/// A CKKS context and the parameter id of each level.
pub struct Context {
    raw: Handle,
    _owner: ContextHandle,
    degree: u32,
    /// `parms_ids[d]`: the level after `d` rescales (0 = fresh ciphertexts).
    parms_ids: Vec<ParmsId>,
    /// Primes of a fresh ciphertext (the chain without the special prime).
    top_primes: u64,
    /// Those primes, in chain order (level `d` keeps the first
    /// `top_primes − d`).
    data_primes: Vec<u64>,
}

// SAFETY: see the module documentation.
unsafe impl Send for Context {}
// SAFETY: see the module documentation.
unsafe impl Sync for Context {}

impl Context {
    /// A CKKS context for degree `degree` and exactly these primes (data
    /// primes, then the special prime), checked by SEAL at `security`.
    pub fn new(degree: u32, primes: &[u64], security: Security) -> Result<Context, SealError> {
        let params = create("EncParams_Create1", |o| {
            // SAFETY: `o` is valid storage for the handle.
            unsafe { ffi::EncParams_Create1(2, o) } // scheme_type::ckks
        })?;
        let params = ParamsHandle(params);
        call!(EncParams_SetPolyModulusDegree(params.0, u64::from(degree)))?;
        let moduli = primes
            .iter()
            .map(|&p| {
                create("Modulus_Create1", |o| {
                    // SAFETY: `o` is valid storage for the handle.
                    unsafe { ffi::Modulus_Create1(p, o) }
                })
                .map(ModulusHandle)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut raw: Vec<Handle> = moduli.iter().map(|m| m.0).collect();
        call!(EncParams_SetCoeffModulus(
            params.0,
            raw.len() as u64,
            raw.as_mut_ptr()
        ))?;
        let level: c_int = match security {
            Security::Tc128 => 128,
            Security::None => 0,
        };
        let ctx = create("SEALContext_Create", |o| {
            // SAFETY: `params` is live; SEAL copies it.
            unsafe { ffi::SEALContext_Create(params.0, true, level, o) }
        })?;
        let owner = ContextHandle(ctx);
        let mut set = false;
        call!(SEALContext_ParametersSet(ctx, &mut set))?;
        if !set {
            let mut len = 0u64;
            call!(SEALContext_ParameterErrorMessage(
                ctx,
                ptr::null_mut(),
                &mut len
            ))?;
            let mut msg = vec![0u8; len as usize];
            call!(SEALContext_ParameterErrorMessage(
                ctx,
                msg.as_mut_ptr().cast(),
                &mut len
            ))?;
            return Err(SealError::Parameters(
                String::from_utf8_lossy(&msg).into_owned(),
            ));
        }
        let mut parms_ids = Vec::new();
        let mut data: Handle = ptr::null_mut();
        // The context data pointers belong to the context; they are not freed.
        call!(SEALContext_FirstContextData(ctx, &mut data))?;
        while !data.is_null() {
            let parms = ParamsHandle(create("ContextData_Parms", |o| {
                // SAFETY: `data` is live while the context is.
                unsafe { ffi::ContextData_Parms(data, o) }
            })?);
            let mut id = [0u64; 4];
            call!(EncParams_GetParmsId(parms.0, id.as_mut_ptr()))?;
            parms_ids.push(id);
            let mut next: Handle = ptr::null_mut();
            call!(ContextData_NextContextData(data, &mut next))?;
            data = next;
        }
        Ok(Context {
            raw: ctx,
            _owner: owner,
            degree,
            parms_ids,
            top_primes: primes.len().saturating_sub(1).max(1) as u64,
            data_primes: primes[..primes.len().saturating_sub(1).max(1)].to_vec(),
        })
    }

    /// The most bytes `object` takes serialized uncompressed for this
    /// context: its polynomials' coefficients and a little metadata. Loads
    /// refuse anything that expands past it.
    pub fn max_bytes(&self, object: Object) -> u64 {
        let poly = |primes: u64| u64::from(self.degree) * primes * 8;
        let key_primes = self.top_primes + 1;
        let slack = 4096;
        let switch_keys = self.top_primes * (2 * poly(key_primes) + slack) + slack;
        match object {
            Object::Ciphertext => 3 * poly(self.top_primes) + slack,
            Object::SecretKey => poly(key_primes) + slack,
            Object::PublicKey => 2 * poly(key_primes) + slack,
            Object::RelinKeys => switch_keys,
            Object::GaloisKeys(steps) => (steps as u64 + 1) * switch_keys,
        }
    }

    /// What these parameters allow a serialized object to hold.
    fn bounds(&self) -> wire::Bounds {
        wire::Bounds {
            degree: u64::from(self.degree),
            data_primes: self.top_primes,
        }
    }

    /// The polynomial degree N.
    pub fn degree(&self) -> u32 {
        self.degree
    }

    /// Slots per ciphertext (N/2).
    pub fn slots(&self) -> usize {
        self.degree as usize / 2
    }

    /// The parameter id after `depth` levels consumed.
    pub fn parms_id(&self, depth: u32) -> Option<ParmsId> {
        self.parms_ids.get(depth as usize).copied()
    }

    /// A deep copy of `ct` in a buffer sized for a fresh ciphertext.
    ///
    /// SEAL's pool keeps every freed buffer for reuse at exactly its size.
    /// Copies sized to their own level would leave the pool holding the peak
    /// of every level at once (7.2 GiB resident for a LeNet-5 run whose live
    /// ciphertexts never exceeded 1.5 GiB); buffers of one size are
    /// interchangeable, and in-place operations keep a buffer's capacity.
    pub fn copy(&self, ct: &Ciphertext) -> Result<Ciphertext, SealError> {
        let copy = self.top_level_buffer()?;
        call!(Ciphertext_Set(copy.0, ct.0))?;
        Ok(copy)
    }

    /// An empty ciphertext with room for a fresh one of size 2.
    fn top_level_buffer(&self) -> Result<Ciphertext, SealError> {
        let mut top = self.parms_ids[0];
        create("Ciphertext_Create5", |o| {
            // SAFETY: the context is live, `top` is one of its parameter
            // ids, the null pool is SEAL's global pool; `o` is valid storage.
            unsafe { ffi::Ciphertext_Create5(self.raw, top.as_mut_ptr(), 2, ptr::null_mut(), o) }
        })
        .map(Ciphertext)
    }

    /// Coefficients of a fresh ciphertext's polynomial (N × primes): every
    /// encoded plaintext reserves this many, for the reason given at
    /// [`Context::copy`].
    fn plain_words(&self) -> u64 {
        u64::from(self.degree) * self.top_primes
    }

    /// Levels consumed by a ciphertext at `id`, if it belongs to this context.
    pub fn depth_of(&self, id: &ParmsId) -> Option<u32> {
        self.parms_ids
            .iter()
            .position(|p| p == id)
            .map(|d| d as u32)
    }
}

handle!(ParamsHandle, EncParams_Destroy);
handle!(ModulusHandle, Modulus_Destroy);

handle!(
    /// A SEAL memory pool for an operation's temporaries; one per worker
    /// thread avoids allocator contention.
    MemoryPool,
    MemoryPoolHandle_Destroy
);

impl MemoryPool {
    /// A new, private pool.
    pub fn new() -> Result<MemoryPool, SealError> {
        create("MemoryPoolHandle_New", |o| {
            // SAFETY: `o` is valid storage for the handle.
            unsafe { ffi::MemoryPoolHandle_New(false, o) }
        })
        .map(MemoryPool)
    }

    /// Bytes the pool has allocated (it keeps them for reuse).
    pub fn allocated_bytes(&self) -> u64 {
        let mut n = 0u64;
        call!(MemoryPoolHandle_AllocByteCount(self.0, &mut n)).map_or(0, |_| n)
    }
}

fn pool_ptr(pool: Option<&MemoryPool>) -> Handle {
    // A null pool makes SEAL use its global pool.
    pool.map_or(ptr::null_mut(), |p| p.0)
}

handle!(
    /// An encoded plaintext.
    Plaintext,
    Plaintext_Destroy
);

impl Plaintext {
    /// An empty plaintext in SEAL's global pool with room for `words`
    /// coefficients.
    fn with_capacity(words: u64) -> Result<Plaintext, SealError> {
        create("Plaintext_Create3", |o| {
            // SAFETY: the null pool is SEAL's global pool; `o` is valid storage.
            unsafe { ffi::Plaintext_Create3(words, 0, ptr::null_mut(), o) }
        })
        .map(Plaintext)
    }

    /// Whether every coefficient is zero (a product with it would be transparent).
    pub fn is_zero(&self) -> bool {
        let mut z = false;
        call!(Plaintext_IsZero(self.0, &mut z)).is_ok() && z
    }
}

handle!(
    /// A ciphertext.
    Ciphertext,
    Ciphertext_Destroy
);

impl Ciphertext {
    fn new(pool: Option<&MemoryPool>) -> Result<Ciphertext, SealError> {
        create("Ciphertext_Create1", |o| {
            // SAFETY: the pool (or null) is live; `o` is valid storage.
            unsafe { ffi::Ciphertext_Create1(pool_ptr(pool), o) }
        })
        .map(Ciphertext)
    }

    /// Number of polynomials (2, or 3 after a product).
    pub fn size(&self) -> usize {
        let mut n = 0u64;
        call!(Ciphertext_Size(self.0, &mut n)).map_or(0, |_| n as usize)
    }

    /// Primes left in its modulus.
    pub fn primes(&self) -> usize {
        let mut n = 0u64;
        call!(Ciphertext_CoeffModulusSize(self.0, &mut n)).map_or(0, |_| n as usize)
    }

    /// Its level's parameter id.
    pub fn parms_id(&self) -> ParmsId {
        let mut id = [0u64; 4];
        let _ = call!(Ciphertext_ParmsId(self.0, id.as_mut_ptr()));
        id
    }

    /// Its scale.
    pub fn scale(&self) -> f64 {
        let mut s = 0.0;
        call!(Ciphertext_Scale(self.0, &mut s)).map_or(0.0, |_| s)
    }

    /// Serialized (zstd-compressed) bytes.
    pub fn save(&self) -> Result<Vec<u8>, SealError> {
        save(
            self.0,
            "Ciphertext_Save",
            ffi::Ciphertext_SaveSize,
            ffi::Ciphertext_Save,
        )
    }

    /// Reads a ciphertext SEAL saved, checking it is valid for `context`;
    /// returns it and the bytes read.
    pub fn load(context: &Context, bytes: &[u8]) -> Result<(Ciphertext, usize), SealError> {
        let ct = Ciphertext::new(None)?;
        let n = load(
            ct.0,
            context,
            bytes,
            Object::Ciphertext,
            "Ciphertext_Load",
            ffi::Ciphertext_Load,
        )?;
        Ok((ct, n))
    }
}

handle!(
    /// The secret key: only the client holds it.
    SecretKey,
    SecretKey_Destroy
);

handle!(
    /// The public encryption key.
    PublicKey,
    PublicKey_Destroy
);

handle!(
    /// Relinearization keys (evaluation keys for ciphertext products).
    RelinKeys,
    KSwitchKeys_Destroy
);

handle!(
    /// Galois keys for the program's rotation steps.
    GaloisKeys,
    KSwitchKeys_Destroy
);

/// Save/load for the key types.
macro_rules! serializable {
    ($name:ident, $create:ident, $size:ident, $save:ident, $load:ident) => {
        impl $name {
            /// Serialized (zstd-compressed) bytes.
            pub fn save(&self) -> Result<Vec<u8>, SealError> {
                save(self.0, stringify!($save), ffi::$size, ffi::$save)
            }

            /// Reads a key SEAL saved, checking it is valid for `context`
            /// and at most the size `object` has for it; returns it and the
            /// bytes read.
            pub fn load(
                context: &Context,
                bytes: &[u8],
                object: Object,
            ) -> Result<($name, usize), SealError> {
                let k = $name(create(stringify!($create), |o| {
                    // SAFETY: `o` is valid storage for the handle.
                    unsafe { ffi::$create(o) }
                })?);
                let n = load(k.0, context, bytes, object, stringify!($load), ffi::$load)?;
                Ok((k, n))
            }
        }
    };
}

serializable!(
    SecretKey,
    SecretKey_Create1,
    SecretKey_SaveSize,
    SecretKey_Save,
    SecretKey_Load
);
serializable!(
    PublicKey,
    PublicKey_Create1,
    PublicKey_SaveSize,
    PublicKey_Save,
    PublicKey_Load
);
serializable!(
    RelinKeys,
    KSwitchKeys_Create1,
    KSwitchKeys_SaveSize,
    KSwitchKeys_Save,
    KSwitchKeys_Load
);
serializable!(
    GaloisKeys,
    KSwitchKeys_Create1,
    KSwitchKeys_SaveSize,
    KSwitchKeys_Save,
    KSwitchKeys_Load
);

handle!(
    /// Key generation for one context.
    KeyGenerator,
    KeyGenerator_Destroy
);

impl KeyGenerator {
    /// A generator with a fresh secret key.
    pub fn new(context: &Context) -> Result<KeyGenerator, SealError> {
        create("KeyGenerator_Create1", |o| {
            // SAFETY: the context is live; `o` is valid storage.
            unsafe { ffi::KeyGenerator_Create1(context.raw, o) }
        })
        .map(KeyGenerator)
    }

    /// A generator for an existing secret key.
    pub fn with_secret(context: &Context, secret: &SecretKey) -> Result<KeyGenerator, SealError> {
        create("KeyGenerator_Create2", |o| {
            // SAFETY: the context and key are live; `o` is valid storage.
            unsafe { ffi::KeyGenerator_Create2(context.raw, secret.0, o) }
        })
        .map(KeyGenerator)
    }

    /// A copy of the secret key.
    pub fn secret_key(&self) -> Result<SecretKey, SealError> {
        create("KeyGenerator_SecretKey", |o| {
            // SAFETY: `self` is live; `o` is valid storage.
            unsafe { ffi::KeyGenerator_SecretKey(self.0, o) }
        })
        .map(SecretKey)
    }

    /// A public key. `seeded` halves its saved size, but a seeded key can
    /// only be saved, not used.
    pub fn public_key(&self, seeded: bool) -> Result<PublicKey, SealError> {
        create("KeyGenerator_CreatePublicKey", |o| {
            // SAFETY: `self` is live; `o` is valid storage.
            unsafe { ffi::KeyGenerator_CreatePublicKey(self.0, seeded, o) }
        })
        .map(PublicKey)
    }

    /// Relinearization keys (`seeded` as for [`public_key`](Self::public_key)).
    pub fn relin_keys(&self, seeded: bool) -> Result<RelinKeys, SealError> {
        create("KeyGenerator_CreateRelinKeys", |o| {
            // SAFETY: `self` is live; `o` is valid storage.
            unsafe { ffi::KeyGenerator_CreateRelinKeys(self.0, seeded, o) }
        })
        .map(RelinKeys)
    }

    /// Galois keys for exactly these rotation steps.
    pub fn galois_keys(&self, steps: &[i32], seeded: bool) -> Result<GaloisKeys, SealError> {
        let mut steps: Vec<c_int> = steps.to_vec();
        create("KeyGenerator_CreateGaloisKeysFromSteps", |o| {
            // SAFETY: `steps` holds `len` ints; `o` is valid storage.
            unsafe {
                ffi::KeyGenerator_CreateGaloisKeysFromSteps(
                    self.0,
                    steps.len() as u64,
                    steps.as_mut_ptr(),
                    seeded,
                    o,
                )
            }
        })
        .map(GaloisKeys)
    }
}

handle!(EncoderHandle, CKKSEncoder_Destroy);

/// The CKKS encoder.
#[derive(Debug)]
pub struct Encoder {
    raw: EncoderHandle,
    /// Capacity of every plaintext it makes (see [`Context::plain_words`]).
    words: u64,
    /// The polynomial degree N.
    degree: u32,
    /// The context's levels and data primes, for [`Encoder::scalar`].
    parms_ids: Vec<ParmsId>,
    data_primes: Vec<u64>,
}

impl Encoder {
    /// An encoder for `context`.
    pub fn new(context: &Context) -> Result<Encoder, SealError> {
        let raw = create("CKKSEncoder_Create", |o| {
            // SAFETY: the context is live; `o` is valid storage.
            unsafe { ffi::CKKSEncoder_Create(context.raw, o) }
        })
        .map(EncoderHandle)?;
        Ok(Encoder {
            raw,
            words: context.plain_words(),
            degree: context.degree,
            parms_ids: context.parms_ids.clone(),
            data_primes: context.data_primes.clone(),
        })
    }

    /// `values` (at most N/2) in the slots, the rest zero, at `scale` for level `id`.
    pub fn encode(
        &self,
        values: &[f64],
        id: &ParmsId,
        scale: f64,
        pool: Option<&MemoryPool>,
    ) -> Result<Plaintext, SealError> {
        let p = Plaintext::with_capacity(self.words)?;
        let mut id = *id;
        let mut values = values.to_vec();
        call!(CKKSEncoder_Encode1(
            self.raw.0,
            values.len() as u64,
            values.as_mut_ptr(),
            id.as_mut_ptr(),
            scale,
            p.0,
            pool_ptr(pool)
        ))?;
        Ok(p)
    }

    /// `value` in every slot, at `scale` for level `id`.
    pub fn encode_scalar(
        &self,
        value: f64,
        id: &ParmsId,
        scale: f64,
        pool: Option<&MemoryPool>,
    ) -> Result<Plaintext, SealError> {
        let p = Plaintext::with_capacity(self.words)?;
        let mut id = *id;
        call!(CKKSEncoder_Encode3(
            self.raw.0,
            value,
            id.as_mut_ptr(),
            scale,
            p.0,
            pool_ptr(pool)
        ))?;
        Ok(p)
    }

    /// The N/2 slot values of `plain`.
    pub fn decode(&self, plain: &Plaintext, slots: usize) -> Result<Vec<f64>, SealError> {
        let mut out = vec![0.0; slots];
        let mut n = slots as u64;
        call!(CKKSEncoder_Decode1(
            self.raw.0,
            plain.0,
            &mut n,
            out.as_mut_ptr(),
            ptr::null_mut()
        ))?;
        out.truncate(n as usize);
        Ok(out)
    }
}

handle!(
    /// Encryption with the public or the secret key.
    Encryptor,
    Encryptor_Destroy
);

impl Encryptor {
    /// An encryptor with the public key (anyone may encrypt).
    pub fn with_public(context: &Context, key: &PublicKey) -> Result<Encryptor, SealError> {
        create("Encryptor_Create", |o| {
            // SAFETY: the context and key are live; `o` is valid storage.
            unsafe { ffi::Encryptor_Create(context.raw, key.0, ptr::null_mut(), o) }
        })
        .map(Encryptor)
    }

    /// An encryptor with the secret key (the client: seeded ciphertexts,
    /// half the upload).
    pub fn with_secret(context: &Context, key: &SecretKey) -> Result<Encryptor, SealError> {
        create("Encryptor_Create", |o| {
            // SAFETY: the context and key are live; `o` is valid storage.
            unsafe { ffi::Encryptor_Create(context.raw, ptr::null_mut(), key.0, o) }
        })
        .map(Encryptor)
    }

    /// Public-key encryption.
    pub fn encrypt(
        &self,
        plain: &Plaintext,
        pool: Option<&MemoryPool>,
    ) -> Result<Ciphertext, SealError> {
        let c = Ciphertext::new(pool)?;
        call!(Encryptor_Encrypt(self.0, plain.0, c.0, pool_ptr(pool)))?;
        Ok(c)
    }

    /// Secret-key encryption. A `seeded` ciphertext saves at half the size but
    /// can only be saved, not computed on, before it is loaded back.
    pub fn encrypt_symmetric(
        &self,
        plain: &Plaintext,
        seeded: bool,
        pool: Option<&MemoryPool>,
    ) -> Result<Ciphertext, SealError> {
        let c = Ciphertext::new(pool)?;
        call!(Encryptor_EncryptSymmetric(
            self.0,
            plain.0,
            seeded,
            c.0,
            pool_ptr(pool)
        ))?;
        Ok(c)
    }
}

handle!(
    /// Decryption with the secret key.
    Decryptor,
    Decryptor_Destroy
);

impl Decryptor {
    /// A decryptor for `key`.
    pub fn new(context: &Context, key: &SecretKey) -> Result<Decryptor, SealError> {
        create("Decryptor_Create", |o| {
            // SAFETY: the context and key are live; `o` is valid storage.
            unsafe { ffi::Decryptor_Create(context.raw, key.0, o) }
        })
        .map(Decryptor)
    }

    /// The plaintext inside `ct`.
    pub fn decrypt(&self, ct: &Ciphertext) -> Result<Plaintext, SealError> {
        let p = Plaintext::with_capacity(0)?;
        call!(Decryptor_Decrypt(self.0, ct.0, p.0))?;
        Ok(p)
    }
}

handle!(
    /// Homomorphic operations. In-place forms reuse the operand's memory.
    Evaluator,
    Evaluator_Destroy
);

impl Evaluator {
    /// An evaluator for `context`.
    pub fn new(context: &Context) -> Result<Evaluator, SealError> {
        create("Evaluator_Create", |o| {
            // SAFETY: the context is live; `o` is valid storage.
            unsafe { ffi::Evaluator_Create(context.raw, o) }
        })
        .map(Evaluator)
    }

    /// `a + b` into `a`.
    pub fn add_inplace(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<(), SealError> {
        call!(Evaluator_Add(self.0, a.0, b.0, a.0))
    }

    /// `a − b` into `a`.
    pub fn sub_inplace(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<(), SealError> {
        call!(Evaluator_Sub(self.0, a.0, b.0, a.0))
    }

    /// `b − a` into `a` (when only the second operand can be reused).
    pub fn sub_from_inplace(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<(), SealError> {
        call!(Evaluator_Sub(self.0, b.0, a.0, a.0))
    }

    /// `a + p` into `a`.
    pub fn add_plain_inplace(&self, a: &mut Ciphertext, p: &Plaintext) -> Result<(), SealError> {
        call!(Evaluator_AddPlain(self.0, a.0, p.0, a.0))
    }

    /// `a · p` into `a`.
    pub fn multiply_plain_inplace(
        &self,
        a: &mut Ciphertext,
        p: &Plaintext,
        pool: Option<&MemoryPool>,
    ) -> Result<(), SealError> {
        call!(Evaluator_MultiplyPlain(
            self.0,
            a.0,
            p.0,
            a.0,
            pool_ptr(pool)
        ))
    }

    /// `a · b` into `a` (size 3 until relinearized).
    pub fn multiply_inplace(
        &self,
        a: &mut Ciphertext,
        b: &Ciphertext,
        pool: Option<&MemoryPool>,
    ) -> Result<(), SealError> {
        call!(Evaluator_Multiply(self.0, a.0, b.0, a.0, pool_ptr(pool)))
    }

    /// `a²` into `a` (size 3 until relinearized).
    pub fn square_inplace(
        &self,
        a: &mut Ciphertext,
        pool: Option<&MemoryPool>,
    ) -> Result<(), SealError> {
        call!(Evaluator_Square(self.0, a.0, a.0, pool_ptr(pool)))
    }

    /// Back to size 2.
    pub fn relinearize_inplace(
        &self,
        a: &mut Ciphertext,
        keys: &RelinKeys,
        pool: Option<&MemoryPool>,
    ) -> Result<(), SealError> {
        call!(Evaluator_Relinearize(
            self.0,
            a.0,
            keys.0,
            a.0,
            pool_ptr(pool)
        ))
    }

    /// Divide by the last prime (one level).
    pub fn rescale_to_next_inplace(
        &self,
        a: &mut Ciphertext,
        pool: Option<&MemoryPool>,
    ) -> Result<(), SealError> {
        call!(Evaluator_RescaleToNext(self.0, a.0, a.0, pool_ptr(pool)))
    }

    /// Drop the last prime without dividing.
    pub fn mod_switch_to_next_inplace(
        &self,
        a: &mut Ciphertext,
        pool: Option<&MemoryPool>,
    ) -> Result<(), SealError> {
        call!(Evaluator_ModSwitchToNext1(self.0, a.0, a.0, pool_ptr(pool)))
    }

    /// Rotate the slots left by `steps`.
    pub fn rotate_vector_inplace(
        &self,
        a: &mut Ciphertext,
        steps: i32,
        keys: &GaloisKeys,
        pool: Option<&MemoryPool>,
    ) -> Result<(), SealError> {
        call!(Evaluator_RotateVector(
            self.0,
            a.0,
            steps,
            keys.0,
            a.0,
            pool_ptr(pool)
        ))
    }
}

/// One number as SEAL's CKKS encoder writes it for one level: its residue
/// modulo each prime there (the same in every slot), and its scale. The
/// operand of a linear combination, a few bytes where a
/// [`Plaintext`] holds N of them per prime.
#[derive(Clone, Debug)]
pub struct Scalar {
    parms_id: ParmsId,
    scale: f64,
    residues: Box<[u64]>,
}

impl Encoder {
    /// `value` at `scale` for level `id`, as a [`Scalar`]: exactly the
    /// residues [`Encoder::encode_scalar`] writes, computed directly where
    /// SEAL's encoder would fill a whole plaintext with them (a weight's
    /// encoding was a tenth of a run with many distinct weights).
    pub fn scalar(
        &self,
        value: f64,
        id: &ParmsId,
        scale: f64,
        pool: Option<&MemoryPool>,
    ) -> Result<Scalar, SealError> {
        let residues = match self.scalar_residues(value, id, scale) {
            Some(r) => r,
            None => self.scalar_by_seal(value, id, scale, pool)?,
        };
        Ok(Scalar {
            parms_id: *id,
            scale,
            residues,
        })
    }

    /// `round(value · scale)` modulo each prime of level `id`, a negative
    /// number as `q − |r|`: what SEAL's CKKS encoder writes in every
    /// coefficient. `None` where SEAL would refuse the value or scale (its
    /// error is then SEAL's own), or the integer reaches 2^126.
    fn scalar_residues(&self, value: f64, id: &ParmsId, scale: f64) -> Option<Box<[u64]>> {
        let depth = self.parms_ids.iter().position(|p| p == id)?;
        let primes = &self.data_primes[..self.data_primes.len().checked_sub(depth)?];
        let total_bits: i32 = primes.iter().map(|q| 64 - q.leading_zeros() as i32).sum();
        // SEAL's bounds: a positive scale below the modulus, and the scaled
        // value's bit count (as SEAL counts it) below the modulus too.
        if scale.is_nan() || scale <= 0.0 || scale.log2() as i32 >= total_bits {
            return None;
        }
        let scaled = value * scale;
        if !scaled.is_finite() || (scaled.abs().log2() as i32).saturating_add(2) >= total_bits {
            return None;
        }
        let rounded = scaled.round();
        let magnitude = rounded.abs();
        if magnitude >= 2f64.powi(126) {
            return None;
        }
        // Exact: an integer-valued double below 2^126.
        let n = magnitude as u128;
        let negative = rounded.is_sign_negative();
        Some(
            primes
                .iter()
                .map(|&q| {
                    let r = (n % u128::from(q)) as u64;
                    if negative && r != 0 {
                        q - r
                    } else {
                        r
                    }
                })
                .collect(),
        )
    }

    /// The residues SEAL's encoder writes, read back from a plaintext.
    fn scalar_by_seal(
        &self,
        value: f64,
        id: &ParmsId,
        scale: f64,
        pool: Option<&MemoryPool>,
    ) -> Result<Box<[u64]>, SealError> {
        let plain = self.encode_scalar(value, id, scale, pool)?;
        let mut words = 0u64;
        call!(Plaintext_CoeffCount(plain.0, &mut words))?;
        let degree = u64::from(self.degree);
        (0..words / degree)
            .map(|j| {
                let mut r = 0u64;
                call!(Plaintext_CoeffAt(plain.0, j * degree, &mut r)).map(|_| r)
            })
            .collect()
    }
}

/// Which linear combination kernel runs (`runtime/shim/fused.cpp`). Both
/// give the same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// The vector kernel (AVX-512 IFMA) for primes below 2^52 where the CPU
    /// has it, the portable one elsewhere.
    Fastest,
    /// The portable kernel everywhere.
    Portable,
}

impl Kernel {
    /// Whether this CPU runs the vector kernel.
    pub fn simd_available() -> bool {
        let mut has = false;
        call!(Hepack_HasSimd(&mut has)).is_ok() && has
    }
}

/// One output of [`Context::linear_combinations`]: its terms, each an index
/// into the sources and its scalar (`None` for 1).
pub type Terms<'a> = Vec<(usize, Option<&'a Scalar>)>;

/// Linear combinations of ciphertexts by scalars, `Σ wᵢ·xᵢ` (hepack's
/// shim, `runtime/shim/`): each source read once for all the outputs that
/// read it and each result written once, where SEAL needs a copy, a
/// `multiply_plain` and an `add` per term; bit for bit SEAL's result.
/// Operands must share one level (the scalars') and size, and each output's
/// products one scale, as SEAL's `add` demands; a zero scalar is refused, as
/// SEAL refuses a transparent product.
impl Context {
    /// `dests[g] = Σ` over `outputs[g]`'s terms of `xs`; a destination may
    /// be one of the sources.
    fn combine(
        &self,
        xs: &[Handle],
        outputs: &[Terms<'_>],
        dests: &[Handle],
        kernel: Kernel,
    ) -> Result<(), SealError> {
        let refused = SealError::Call {
            op: "Hepack_LinearCombinations",
            code: 0x8007_0057,
        };
        if xs.is_empty() || outputs.len() != dests.len() {
            return Err(refused);
        }
        let mut scalars = outputs.iter().flatten().filter_map(|(_, w)| *w);
        let first = scalars.next();
        if first.is_some_and(|f| scalars.any(|w| w.parms_id != f.parms_id)) {
            return Err(refused);
        }
        let primes = match first {
            Some(w) => w.residues.len(),
            None => {
                let mut n = 0u64;
                call!(Ciphertext_CoeffModulusSize(xs[0], &mut n))?;
                n as usize
            }
        };
        let ones = vec![1u64; primes];
        // A source an output reads k times is listed k times, so that each
        // (source, output) pair holds one term; the outputs share the copies
        // (output g's j-th read of s is copy j of s).
        let mut sources: Vec<Handle> = xs.to_vec();
        let mut cells: Vec<(usize, usize, *const u64, f64)> = Vec::new();
        let mut copies: std::collections::HashMap<(usize, usize), usize> = Default::default();
        for (g, terms) in outputs.iter().enumerate() {
            let mut reads: std::collections::HashMap<usize, usize> = Default::default();
            for &(s, w) in terms {
                let x = *xs.get(s).ok_or_else(|| refused.clone())?;
                let j = reads.entry(s).or_insert(0);
                *j += 1;
                let s = match *j {
                    1 => s,
                    j => *copies.entry((s, j)).or_insert_with(|| {
                        sources.push(x);
                        sources.len() - 1
                    }),
                };
                let (ptr, scale) =
                    w.map_or((ones.as_ptr(), 1.0), |w| (w.residues.as_ptr(), w.scale));
                cells.push((s, g, ptr, scale));
            }
        }
        let g = outputs.len();
        let mut weights = vec![ptr::null::<u64>(); sources.len() * g];
        let mut scales = vec![1.0f64; sources.len() * g];
        for (s, o, w, scale) in cells {
            weights[s * g + o] = w;
            scales[s * g + o] = scale;
        }
        let mut id = first.map(|w| w.parms_id);
        let id_ptr = id.as_mut().map_or(ptr::null_mut(), |id| id.as_mut_ptr());
        call!(Hepack_LinearCombinations(
            self.raw,
            id_ptr,
            primes as u64,
            g as u64,
            sources.len() as u64,
            sources.as_ptr(),
            weights.as_ptr(),
            scales.as_ptr(),
            dests.as_ptr(),
            u64::from(kernel == Kernel::Fastest)
        ))
    }

    /// `acc := a·acc + Σ wᵢ·xᵢ` (`a = None` for 1), in `acc`'s memory.
    pub fn linear_combination_inplace(
        &self,
        acc: &mut Ciphertext,
        a: Option<&Scalar>,
        terms: &[(&Ciphertext, Option<&Scalar>)],
    ) -> Result<(), SealError> {
        let xs: Vec<Handle> = std::iter::once(acc.0)
            .chain(terms.iter().map(|(x, _)| x.0))
            .collect();
        let output: Terms = std::iter::once((0, a))
            .chain(terms.iter().enumerate().map(|(i, (_, w))| (i + 1, *w)))
            .collect();
        self.combine(&xs, &[output], &[acc.0], Kernel::Fastest)
    }

    /// `Σ wᵢ·xᵢ` in a new buffer (sized like [`Context::copy`]'s).
    pub fn linear_combination(
        &self,
        terms: &[(&Ciphertext, Option<&Scalar>)],
    ) -> Result<Ciphertext, SealError> {
        let xs: Vec<&Ciphertext> = terms.iter().map(|(x, _)| *x).collect();
        let output: Terms = terms
            .iter()
            .enumerate()
            .map(|(i, (_, w))| (i, *w))
            .collect();
        let mut out = self.linear_combinations(&xs, &[output], Kernel::Fastest)?;
        Ok(out.pop().expect("one output"))
    }

    /// One combination of `xs` per entry of `outputs`, each in a new buffer
    /// (sized like [`Context::copy`]'s), in one pass over the sources.
    pub fn linear_combinations(
        &self,
        xs: &[&Ciphertext],
        outputs: &[Terms<'_>],
        kernel: Kernel,
    ) -> Result<Vec<Ciphertext>, SealError> {
        let dests = outputs
            .iter()
            .map(|_| self.top_level_buffer())
            .collect::<Result<Vec<_>, _>>()?;
        let handles: Vec<Handle> = xs.iter().map(|x| x.0).collect();
        let dest_handles: Vec<Handle> = dests.iter().map(|d| d.0).collect();
        self.combine(&handles, outputs, &dest_handles, kernel)?;
        Ok(dests)
    }
}

/// A term's weight in [`Context::weighted_sum`].
#[derive(Clone, Copy, Debug)]
pub enum Weight<'a> {
    /// The ciphertext itself.
    One,
    /// One number in every slot.
    Scalar(&'a Scalar),
    /// A value per slot (a slot diagonal), encoded at the term's level.
    Plain(&'a Plaintext),
}

/// Sums weighted by whole plaintexts, `Σ wᵢ ⊙ xᵢ` (hepack's shim,
/// `runtime/shim/weighted.cpp`): one pass over the operands where SEAL
/// needs a copy of each shared operand, a `multiply_plain` and an `add` per
/// term; bit for bit SEAL's result with either [`Kernel`]. The terms share
/// one level and size, and their products one scale, as SEAL's
/// `multiply_plain` and `add` demand.
impl Context {
    /// `dest = Σ` over `terms`; `dest` may be one of the sources.
    fn weighted(
        &self,
        terms: &[(Handle, Weight<'_>)],
        level: ParmsId,
        dest: Handle,
        kernel: Kernel,
    ) -> Result<(), SealError> {
        let refused = SealError::Call {
            op: "Hepack_WeightedSum",
            code: 0x8007_0057,
        };
        let n = terms.len();
        let (mut xs, mut scalars, mut plains, mut scales) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for &(x, w) in terms {
            let (scalar, plain, scale): (*const u64, Handle, f64) = match w {
                Weight::One => (ptr::null(), ptr::null_mut(), 1.0),
                // The shim reads one residue per prime of the level.
                Weight::Scalar(s) if s.parms_id != level => return Err(refused),
                Weight::Scalar(s) => (s.residues.as_ptr(), ptr::null_mut(), s.scale),
                Weight::Plain(p) => (ptr::null(), p.0, 1.0),
            };
            xs.push(x);
            scalars.push(scalar);
            plains.push(plain);
            scales.push(scale);
        }
        call!(Hepack_WeightedSum(
            self.raw,
            terms.len() as u64,
            xs.as_ptr(),
            scalars.as_ptr(),
            plains.as_ptr(),
            scales.as_ptr(),
            dest,
            u64::from(kernel == Kernel::Fastest)
        ))
    }

    /// `acc := a ⊙ acc + Σ wᵢ ⊙ xᵢ`, in `acc`'s memory.
    pub fn weighted_sum_inplace(
        &self,
        acc: &mut Ciphertext,
        a: Weight<'_>,
        terms: &[(&Ciphertext, Weight<'_>)],
        kernel: Kernel,
    ) -> Result<(), SealError> {
        let all: Vec<(Handle, Weight)> = std::iter::once((acc.0, a))
            .chain(terms.iter().map(|(x, w)| (x.0, *w)))
            .collect();
        self.weighted(&all, acc.parms_id(), acc.0, kernel)
    }

    /// `Σ wᵢ ⊙ xᵢ` in a new buffer (sized like [`Context::copy`]'s).
    pub fn weighted_sum(
        &self,
        terms: &[(&Ciphertext, Weight<'_>)],
        kernel: Kernel,
    ) -> Result<Ciphertext, SealError> {
        let Some((first, _)) = terms.first() else {
            return Err(SealError::Call {
                op: "Hepack_WeightedSum",
                code: 0x8000_4003,
            });
        };
        let dest = self.top_level_buffer()?;
        let all: Vec<(Handle, Weight)> = terms.iter().map(|(x, w)| (x.0, *w)).collect();
        self.weighted(&all, first.parms_id(), dest.0, kernel)?;
        Ok(dest)
    }
}

handle!(
    /// The key-switching digits of one ciphertext (hepack's shim,
    /// `runtime/shim/hoist.cpp`): what every rotation of it shares.
    Digits,
    Hepack_DigitsDestroy
);

/// Hoisted rotations (Halevi–Shoup): [`Context::decompose`] a ciphertext
/// once, then [`Context::rotate_hoisted`] it by each step for the price of
/// the key inner product and the division by the special prime, where
/// SEAL's `rotate_vector` decomposes again for every step. The result
/// decrypts to SEAL's rotation, with the same noise, not the same bits.
impl Context {
    /// The digits of `ct` (a size-2 ciphertext).
    pub fn decompose(&self, ct: &Ciphertext) -> Result<Digits, SealError> {
        create("Hepack_Decompose", |o| {
            // SAFETY: the context and ciphertext are live; `o` is valid
            // storage, and the object written there is owned by `Digits`.
            unsafe { ffi::Hepack_Decompose(self.raw, ct.0, o) }
        })
        .map(Digits)
    }

    /// The bytes [`Context::decompose`] holds for a ciphertext of `primes`
    /// primes: one polynomial per prime, over each prime and the special.
    pub fn digits_bytes(&self, primes: usize) -> u64 {
        (primes * (primes + 1)) as u64 * u64::from(self.degree) * 8
    }

    /// `ct` rotated left by `steps`, from its `digits`.
    pub fn rotate_hoisted(
        &self,
        ct: &Ciphertext,
        digits: &Digits,
        steps: i32,
        keys: &GaloisKeys,
    ) -> Result<Ciphertext, SealError> {
        let dest = self.top_level_buffer()?;
        call!(Hepack_RotateHoisted(
            self.raw, ct.0, digits.0, steps, keys.0, dest.0
        ))?;
        Ok(dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_returns_what_its_body_returns() {
        assert_eq!(guarded(|| 7), 7);
        assert_eq!(guarded(|| -3), -3);
    }

    #[test]
    fn a_cpp_exception_the_c_api_lets_through_is_an_error_not_an_abort() {
        // `Plaintext_Create3` catches only `invalid_argument`; a capacity
        // whose byte count overflows makes SEAL throw `logic_error`, which
        // used to abort the process (as `bad_alloc` would).
        let err = Plaintext::with_capacity(u64::MAX / 2).expect_err("no such allocation");
        assert!(
            matches!(err, SealError::Call { op: "Plaintext_Create3", code } if code == 0x8000_FFFF),
            "{err}"
        );
    }
}
