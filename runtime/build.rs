//! Compiles `shim/fused.cpp`, hepack's linear combination kernel, against
//! the SEAL headers in the `sealy` crate's source.
//!
//! sealy builds SEAL itself but has no `links` key, so its build outputs
//! (and the `config.h` CMake generates) are not visible here, nor is its
//! build guaranteed to finish before this script runs. The shim therefore
//! uses SEAL's source headers with a `config.h` written here to match the
//! settings sealy configures (SEAL 4.0, C++17, debug checks in debug builds).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=shim/fused.cpp");
    println!("cargo:rerun-if-changed=build.rs");
    let seal = sealy_source().join("SEAL/native/src");
    if !seal.join("seal/ciphertext.h").is_file() {
        panic!(
            "SEAL's headers are not at {}; is the sealy crate's source complete?",
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
        .warnings(true)
        .compile("hepack_seal_shim");
}

/// Where cargo unpacked the `sealy` crate (registry, vendor directory or
/// path dependency alike), from `cargo metadata`.
fn sealy_source() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("Cargo.toml");
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .expect("run cargo metadata");
    if !output.status.success() {
        panic!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let packages = metadata["packages"].as_array().expect("a package list");
    let sealy = packages
        .iter()
        .find(|p| p["name"] == "sealy")
        .expect("sealy is a dependency of hepack-runtime");
    let path = sealy["manifest_path"].as_str().expect("a manifest path");
    Path::new(path)
        .parent()
        .expect("a manifest lives in a directory")
        .to_path_buf()
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
