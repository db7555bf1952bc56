//! Generates the program file's Rust types from `proto/hepack_program.proto`
//! with a pure-Rust protobuf compiler, so building needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/hepack_program.proto");
    let descriptors = protox::compile(["hepack_program.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
