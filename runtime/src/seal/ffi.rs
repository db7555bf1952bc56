//! Declarations of the SEAL C API functions hepack calls
//! (`SEAL/native/src/seal/c/*.h` in the `sealy` crate source). sealy builds
//! and links `libsealc`; only these declarations are ours. Every function
//! returns an HRESULT; objects are opaque `void *` handles.
//!
//! The C API catches only `invalid_argument`, `logic_error` and
//! `runtime_error`; anything else (`bad_alloc`) leaves the function as a C++
//! exception. The functions are declared `C-unwind` so that such an
//! exception may pass through Rust frames to `Hepack_Guard` in the shim,
//! which catches everything; every call is made inside it.

use std::os::raw::{c_char, c_int, c_long, c_void};

pub type Handle = *mut c_void;
pub type HResult = c_long;

extern "C-unwind" {
    pub fn Modulus_Create1(value: u64, out: *mut Handle) -> HResult;
    pub fn Modulus_Destroy(this: Handle) -> HResult;

    pub fn EncParams_Create1(scheme: u8, out: *mut Handle) -> HResult;
    pub fn EncParams_Destroy(this: Handle) -> HResult;
    pub fn EncParams_SetPolyModulusDegree(this: Handle, degree: u64) -> HResult;
    pub fn EncParams_SetCoeffModulus(this: Handle, length: u64, coeffs: *mut Handle) -> HResult;
    pub fn EncParams_GetParmsId(this: Handle, parms_id: *mut u64) -> HResult;

    pub fn SEALContext_Create(
        params: Handle,
        expand_mod_chain: bool,
        sec_level: c_int,
        out: *mut Handle,
    ) -> HResult;
    pub fn SEALContext_Destroy(this: Handle) -> HResult;
    pub fn SEALContext_ParametersSet(this: Handle, set: *mut bool) -> HResult;
    pub fn SEALContext_ParameterErrorMessage(
        this: Handle,
        out: *mut c_char,
        length: *mut u64,
    ) -> HResult;
    pub fn SEALContext_FirstContextData(this: Handle, out: *mut Handle) -> HResult;
    pub fn ContextData_NextContextData(this: Handle, out: *mut Handle) -> HResult;
    pub fn ContextData_Parms(this: Handle, out: *mut Handle) -> HResult;

    pub fn MemoryPoolHandle_New(clear_on_destruction: bool, out: *mut Handle) -> HResult;
    pub fn MemoryPoolHandle_Destroy(this: Handle) -> HResult;
    pub fn MemoryPoolHandle_AllocByteCount(this: Handle, count: *mut u64) -> HResult;

    pub fn Plaintext_Create3(
        capacity: u64,
        coeff_count: u64,
        pool: Handle,
        out: *mut Handle,
    ) -> HResult;
    pub fn Plaintext_Destroy(this: Handle) -> HResult;
    pub fn Plaintext_IsZero(this: Handle, zero: *mut bool) -> HResult;
    pub fn Plaintext_CoeffCount(this: Handle, count: *mut u64) -> HResult;
    pub fn Plaintext_CoeffAt(this: Handle, index: u64, coeff: *mut u64) -> HResult;

    pub fn Ciphertext_Create1(pool: Handle, out: *mut Handle) -> HResult;
    pub fn Ciphertext_Create5(
        context: Handle,
        parms_id: *mut u64,
        capacity: u64,
        pool: Handle,
        out: *mut Handle,
    ) -> HResult;
    pub fn Ciphertext_Set(this: Handle, assign: Handle) -> HResult;
    pub fn Ciphertext_Destroy(this: Handle) -> HResult;
    pub fn Ciphertext_Size(this: Handle, size: *mut u64) -> HResult;
    pub fn Ciphertext_CoeffModulusSize(this: Handle, count: *mut u64) -> HResult;
    pub fn Ciphertext_ParmsId(this: Handle, parms_id: *mut u64) -> HResult;
    pub fn Ciphertext_Scale(this: Handle, scale: *mut f64) -> HResult;
    pub fn Ciphertext_SaveSize(this: Handle, compr_mode: u8, size: *mut i64) -> HResult;
    pub fn Ciphertext_Save(
        this: Handle,
        out: *mut u8,
        size: u64,
        compr_mode: u8,
        written: *mut i64,
    ) -> HResult;
    pub fn Ciphertext_Load(
        this: Handle,
        context: Handle,
        data: *mut u8,
        size: u64,
        read: *mut i64,
    ) -> HResult;

    pub fn CKKSEncoder_Create(context: Handle, out: *mut Handle) -> HResult;
    pub fn CKKSEncoder_Destroy(this: Handle) -> HResult;
    pub fn CKKSEncoder_Encode1(
        this: Handle,
        count: u64,
        values: *mut f64,
        parms_id: *mut u64,
        scale: f64,
        destination: Handle,
        pool: Handle,
    ) -> HResult;
    pub fn CKKSEncoder_Encode3(
        this: Handle,
        value: f64,
        parms_id: *mut u64,
        scale: f64,
        destination: Handle,
        pool: Handle,
    ) -> HResult;
    pub fn CKKSEncoder_Decode1(
        this: Handle,
        plain: Handle,
        count: *mut u64,
        values: *mut f64,
        pool: Handle,
    ) -> HResult;

    pub fn KeyGenerator_Create1(context: Handle, out: *mut Handle) -> HResult;
    pub fn KeyGenerator_Create2(context: Handle, secret: Handle, out: *mut Handle) -> HResult;
    pub fn KeyGenerator_Destroy(this: Handle) -> HResult;
    pub fn KeyGenerator_SecretKey(this: Handle, out: *mut Handle) -> HResult;
    pub fn KeyGenerator_CreatePublicKey(this: Handle, save_seed: bool, out: *mut Handle)
        -> HResult;
    pub fn KeyGenerator_CreateRelinKeys(this: Handle, save_seed: bool, out: *mut Handle)
        -> HResult;
    pub fn KeyGenerator_CreateGaloisKeysFromSteps(
        this: Handle,
        count: u64,
        steps: *mut c_int,
        save_seed: bool,
        out: *mut Handle,
    ) -> HResult;

    pub fn SecretKey_Create1(out: *mut Handle) -> HResult;
    pub fn SecretKey_Destroy(this: Handle) -> HResult;
    pub fn SecretKey_SaveSize(this: Handle, compr_mode: u8, size: *mut i64) -> HResult;
    pub fn SecretKey_Save(
        this: Handle,
        out: *mut u8,
        size: u64,
        compr_mode: u8,
        written: *mut i64,
    ) -> HResult;
    pub fn SecretKey_Load(
        this: Handle,
        context: Handle,
        data: *mut u8,
        size: u64,
        read: *mut i64,
    ) -> HResult;

    pub fn PublicKey_Create1(out: *mut Handle) -> HResult;
    pub fn PublicKey_Destroy(this: Handle) -> HResult;
    pub fn PublicKey_SaveSize(this: Handle, compr_mode: u8, size: *mut i64) -> HResult;
    pub fn PublicKey_Save(
        this: Handle,
        out: *mut u8,
        size: u64,
        compr_mode: u8,
        written: *mut i64,
    ) -> HResult;
    pub fn PublicKey_Load(
        this: Handle,
        context: Handle,
        data: *mut u8,
        size: u64,
        read: *mut i64,
    ) -> HResult;

    // Relinearization and Galois keys are both KSwitchKeys in the C API.
    pub fn KSwitchKeys_Create1(out: *mut Handle) -> HResult;
    pub fn KSwitchKeys_Destroy(this: Handle) -> HResult;
    pub fn KSwitchKeys_SaveSize(this: Handle, compr_mode: u8, size: *mut i64) -> HResult;
    pub fn KSwitchKeys_Save(
        this: Handle,
        out: *mut u8,
        size: u64,
        compr_mode: u8,
        written: *mut i64,
    ) -> HResult;
    pub fn KSwitchKeys_Load(
        this: Handle,
        context: Handle,
        data: *mut u8,
        size: u64,
        read: *mut i64,
    ) -> HResult;

    pub fn Encryptor_Create(
        context: Handle,
        public_key: Handle,
        secret_key: Handle,
        out: *mut Handle,
    ) -> HResult;
    pub fn Encryptor_Destroy(this: Handle) -> HResult;
    pub fn Encryptor_Encrypt(
        this: Handle,
        plain: Handle,
        destination: Handle,
        pool: Handle,
    ) -> HResult;
    pub fn Encryptor_EncryptSymmetric(
        this: Handle,
        plain: Handle,
        save_seed: bool,
        destination: Handle,
        pool: Handle,
    ) -> HResult;

    pub fn Decryptor_Create(context: Handle, secret_key: Handle, out: *mut Handle) -> HResult;
    pub fn Decryptor_Destroy(this: Handle) -> HResult;
    pub fn Decryptor_Decrypt(this: Handle, encrypted: Handle, destination: Handle) -> HResult;

    pub fn Evaluator_Create(context: Handle, out: *mut Handle) -> HResult;
    pub fn Evaluator_Destroy(this: Handle) -> HResult;

    /// hepack's own (`runtime/shim/fused.cpp`): `dests[g] = Σₛ
    /// weights[s·outputs + g]·xs[s]`, each weight (null where output `g`
    /// has no term of `xs[s]`) given as residues at `parms_id` (null: the
    /// first source's level); `flags` bit 0 allows the vector kernel.
    #[allow(clippy::too_many_arguments)]
    pub fn Hepack_LinearCombinations(
        context: Handle,
        parms_id: *mut u64,
        primes: u64,
        outputs: u64,
        sources: u64,
        xs: *const Handle,
        weights: *const *const u64,
        weight_scales: *const f64,
        dests: *const Handle,
        flags: u64,
    ) -> HResult;
    /// hepack's own (`runtime/shim/weighted.cpp`): `dest = Σₛ wₛ·xs[s]`,
    /// `wₛ` the plaintext `plains[s]` if not null, else the residues
    /// `scalars[s]` at scale `scalar_scales[s]` if not null, else 1; `dest`
    /// may be a source; `flags` bit 0 allows the vector kernel.
    #[allow(clippy::too_many_arguments)]
    pub fn Hepack_WeightedSum(
        context: Handle,
        sources: u64,
        xs: *const Handle,
        scalars: *const *const u64,
        plains: *const Handle,
        scalar_scales: *const f64,
        dest: Handle,
        flags: u64,
    ) -> HResult;
    /// hepack's own: whether the CPU runs the vector kernel.
    pub fn Hepack_HasSimd(has: *mut bool) -> HResult;
    /// hepack's own (`runtime/shim/hoist.cpp`): the key-switching digits
    /// of `ciphertext`'s second polynomial, in a new object `*out`.
    pub fn Hepack_Decompose(context: Handle, ciphertext: Handle, out: *mut Handle) -> HResult;
    pub fn Hepack_DigitsDestroy(digits: Handle) -> HResult;
    /// hepack's own: `dest = rot(ciphertext, steps)` from its digits.
    pub fn Hepack_RotateHoisted(
        context: Handle,
        ciphertext: Handle,
        digits: Handle,
        steps: c_int,
        galois_keys: Handle,
        dest: Handle,
    ) -> HResult;
    pub fn Evaluator_Add(this: Handle, a: Handle, b: Handle, destination: Handle) -> HResult;
    pub fn Evaluator_Sub(this: Handle, a: Handle, b: Handle, destination: Handle) -> HResult;
    pub fn Evaluator_AddPlain(
        this: Handle,
        a: Handle,
        plain: Handle,
        destination: Handle,
    ) -> HResult;
    pub fn Evaluator_MultiplyPlain(
        this: Handle,
        a: Handle,
        plain: Handle,
        destination: Handle,
        pool: Handle,
    ) -> HResult;
    pub fn Evaluator_Multiply(
        this: Handle,
        a: Handle,
        b: Handle,
        destination: Handle,
        pool: Handle,
    ) -> HResult;
    pub fn Evaluator_Square(this: Handle, a: Handle, destination: Handle, pool: Handle) -> HResult;
    pub fn Evaluator_Relinearize(
        this: Handle,
        a: Handle,
        relin_keys: Handle,
        destination: Handle,
        pool: Handle,
    ) -> HResult;
    pub fn Evaluator_RescaleToNext(
        this: Handle,
        a: Handle,
        destination: Handle,
        pool: Handle,
    ) -> HResult;
    pub fn Evaluator_ModSwitchToNext1(
        this: Handle,
        a: Handle,
        destination: Handle,
        pool: Handle,
    ) -> HResult;
    pub fn Evaluator_RotateVector(
        this: Handle,
        a: Handle,
        steps: c_int,
        galois_keys: Handle,
        destination: Handle,
        pool: Handle,
    ) -> HResult;
}

/// The body `Hepack_Guard` runs.
pub type GuardBody = extern "C-unwind" fn(env: *mut c_void) -> HResult;

extern "C" {
    /// hepack's own (`runtime/shim/fused.cpp`): `body(env)`, with any C++
    /// exception that escapes it returned as an HRESULT (out of memory for
    /// `bad_alloc`, unexpected for the rest).
    pub fn Hepack_Guard(body: GuardBody, env: *mut c_void) -> HResult;
}
