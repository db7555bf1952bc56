//! Compiles the shim against SEAL's headers: `shim/fused.cpp`, hepack's
//! linear combination kernel, `shim/weighted.cpp`, sums weighted by whole
//! plaintexts (slot diagonals), and `shim/hoist.cpp`, hoisted rotations.
//!
//! sealy builds SEAL itself but has no `links` key, so its build outputs
//! (and the `config.h` CMake generates) are not visible here, nor is its
//! build guaranteed to finish before this script runs. Finding sealy's
//! unpacked source through `cargo metadata` needs every platform's crates in
//! the registry cache, which a fresh machine lacks, so the headers the
//! shim includes are vendored in `shim/seal/` (SEAL 4.0.0 as sealy 0.2.0
//! ships it, MIT licence beside them) with a `config.h` written here to
//! match the settings sealy configures (C++17, debug checks in debug
//! builds). sealy is pinned to `=0.2.0`: bumping it means copying the
//! headers of the SEAL it bundles (`g++ -MM shim/*.cpp` lists them);
//! `tests/fused.rs` compares the kernel with SEAL bit for bit, and
//! `tests/hoist.rs` the rotations with SEAL's, and would catch a mismatch.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=shim");
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let seal = manifest.join("shim/seal");
    if !Path::new(&seal.join("seal/ciphertext.h")).is_file() {
        panic!(
            "SEAL's headers are not at {}; is the checkout complete?",
            seal.display()
        );
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let include = out.join("include");
    let config = include.join("seal/util");
    std::fs::create_dir_all(&config).expect("create OUT_DIR/include/seal/util");
    std::fs::write(config.join("config.h"), config_h()).expect("write config.h");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        // The kernel is the hot loop of every run, tests included.
        .opt_level(3)
        .include(&include)
        .include(&seal)
        .file("shim/fused.cpp")
        .file("shim/weighted.cpp")
        .file("shim/hoist.cpp")
        .warnings(true)
        .compile("hepack_seal_shim");
    // SEAL's HEXL (sealy's `hexl` feature, x86-64) asks google's
    // cpu_features which AVX-512 it may use; sealy does not link it, and
    // `scripts/setup.sh` installs it (Debian's libcpu-features-dev).
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64") {
        let multiarch = format!(
            "/usr/lib/{}-linux-gnu",
            std::env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets it")
        );
        println!("cargo:rustc-link-search=native={multiarch}");
        println!("cargo:rustc-link-lib=static=cpu_features");
    }
}

/// SEAL's `seal/util/config.h` as sealy's CMake configuration produces it
/// on Linux with GCC or Clang. The arithmetic switches matter: without
/// them SEAL's inline helpers (the kernel's Barrett reduction) multiply
/// 64-bit words by 32-bit halves, several times slower.
fn config_h() -> String {
    let debug = std::env::var("PROFILE").as_deref() != Ok("release");
    let x86 = std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64");
    format!(
        "#pragma once\n\
         #define SEAL_VERSION \"4.0.0\"\n\
         #define SEAL_VERSION_MAJOR 4\n\
         #define SEAL_VERSION_MINOR 0\n\
         #define SEAL_VERSION_PATCH 0\n\
         {}\n\
         #define SEAL_USE_STD_BYTE\n\
         #define SEAL_USE_ALIGNED_ALLOC\n\
         #define SEAL_USE_SHARED_MUTEX\n\
         #define SEAL_USE_IF_CONSTEXPR\n\
         #define SEAL_USE_MAYBE_UNUSED\n\
         #define SEAL_USE_NODISCARD\n\
         #define SEAL_USE_STD_FOR_EACH_N\n\
         #define SEAL_THROW_ON_TRANSPARENT_CIPHERTEXT\n\
         #define SEAL_USE_GAUSSIAN_NOISE\n\
         #define SEAL_DEFAULT_PRNG Blake2xb\n\
         #define SEAL_USE___BUILTIN_CLZLL\n\
         #define SEAL_USE___INT128\n\
         {}\n\
         #define SEAL_USE_ZLIB\n\
         #define SEAL_USE_ZSTD\n",
        if debug { "#define SEAL_DEBUG" } else { "" },
        if x86 {
            "#define SEAL_USE_INTRIN\n#define SEAL_USE__ADDCARRY_U64\n#define SEAL_USE__SUBBORROW_U64"
        } else {
            ""
        }
    )
}
