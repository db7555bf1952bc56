//! Hostile input through the CLI: what an attacker can upload to a server or
//! plant for a client must end in a clear error (never a signal, a hang or a
//! lost key), and outside files are never read.

mod common;

use std::path::{Path, PathBuf};

use common::{hepack, root};
use sha2::{Digest, Sha256};

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn data(name: &str) -> PathBuf {
    root().join("tests/data/exported").join(name)
}

/// A small program (16 inputs, three outputs), its keys and encrypted inputs.
struct Setup {
    dir: tempfile::TempDir,
    program: PathBuf,
    keys: PathBuf,
    x_ct: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("m.hep");
    let (ok, _, err) = hepack(&[
        "compile",
        arg(&data("two_heads.legacy.onnx")),
        "-o",
        arg(&program),
    ]);
    assert!(ok, "{err}");
    let keys = dir.path().join("keys");
    let (ok, _, err) = hepack(&["keygen", arg(&program), "--out-dir", arg(&keys)]);
    assert!(ok, "{err}");
    let x_ct = dir.path().join("x.ct");
    let (ok, _, err) = hepack(&[
        "encrypt",
        arg(&program),
        "--keys",
        arg(&keys),
        "--input",
        arg(&data("two_heads.x.npy")),
        "-o",
        arg(&x_ct),
    ]);
    assert!(ok, "{err}");
    Setup {
        dir,
        program,
        keys,
        x_ct,
    }
}

/// Runs hepack under an address-space limit, as a server would be run: a
/// command that tried to allocate its way out would die, not pass.
fn hepack_limited(args: &[&str]) -> (bool, String) {
    let mut cmd = vec![env!("CARGO_BIN_EXE_hepack").to_string()];
    cmd.extend(args.iter().map(|a| format!("'{a}'")));
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v 8000000; exec {}", cmd.join(" ")))
        .current_dir(root())
        .env("HEPACK_OP_TIMES", root().join("target/no-calibration.json"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A SEAL object whose zstd stream is a chain of RLE blocks: 4 bytes each,
/// every one expanding to 128 KiB (about 3 GiB from 100 KB).
fn seal_bomb() -> Vec<u8> {
    let mut z = vec![0x28, 0xB5, 0x2F, 0xFD]; // zstd frame magic
    z.push(0x00); // no content size, not single-segment, no checksum
    z.push(0x50); // window 1 MiB
    let blocks = 25_000;
    for i in 0..blocks {
        let last = u32::from(i == blocks - 1);
        let header = last | (1 << 1) | ((128 * 1024) << 3); // RLE block
        z.extend_from_slice(&header.to_le_bytes()[..3]);
        z.push(0x41);
    }
    let mut seal = vec![0x5E, 0xA1, 16, 4, 0, 2, 0, 0];
    seal.extend_from_slice(&((16 + z.len()) as u64).to_le_bytes());
    seal.extend(z);
    seal
}

/// Replace the first length-prefixed blob of a framed hepack file (after a
/// header of `skip` bytes) by `blob`, and recompute the checksum trailer.
fn reseal_with_blob(file: &[u8], skip: usize, blob: &[u8]) -> Vec<u8> {
    let body = &file[..file.len() - 32];
    let len = u64::from_le_bytes(body[skip..skip + 8].try_into().unwrap()) as usize;
    let mut out = body[..skip].to_vec();
    out.extend_from_slice(&(blob.len() as u64).to_le_bytes());
    out.extend_from_slice(blob);
    out.extend_from_slice(&body[skip + 8 + len..]);
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

/// Bytes every key and ciphertext file starts with: magic, version,
/// parameter fingerprint, key set.
const FRAME_HEADER: usize = 8 + 4 + 32 + 16;

/// Header bytes of a ciphertext file before its first blob: the frame
/// header, role, samples, batches, count, then one index per ciphertext.
fn ciphertext_header_len(file: &[u8]) -> usize {
    let at = FRAME_HEADER + 12;
    let count = u32::from_le_bytes(file[at..at + 4].try_into().unwrap()) as usize;
    at + 4 + 4 * count
}

#[test]
fn decompression_bombs_in_ciphertexts_and_keys_are_refused() {
    let s = setup();
    let bomb = seal_bomb();
    assert!(bomb.len() < 110_000);

    let x = std::fs::read(&s.x_ct).unwrap();
    let bad_x = s.dir.path().join("bomb.ct");
    std::fs::write(
        &bad_x,
        reseal_with_blob(&x, ciphertext_header_len(&x), &bomb),
    )
    .unwrap();
    let (ok, err) = hepack_limited(&[
        "run",
        arg(&s.program),
        "--eval-keys",
        arg(&s.keys.join("eval.keys")),
        "--input",
        arg(&bad_x),
        "-o",
        arg(&s.dir.path().join("y.ct")),
    ]);
    assert!(!ok);
    assert!(err.contains("expands past"), "{err}");

    // The secret key: the frame header, then its blob.
    let secret = std::fs::read(s.keys.join("secret.key")).unwrap();
    let bad_keys = s.dir.path().join("bad_keys");
    std::fs::create_dir(&bad_keys).unwrap();
    std::fs::write(
        bad_keys.join("secret.key"),
        reseal_with_blob(&secret, FRAME_HEADER, &bomb),
    )
    .unwrap();
    let (ok, err) = hepack_limited(&[
        "encrypt",
        arg(&s.program),
        "--keys",
        arg(&bad_keys),
        "--input",
        arg(&data("two_heads.x.npy")),
        "-o",
        arg(&s.dir.path().join("never.ct")),
    ]);
    assert!(!ok);
    assert!(err.contains("expands past"), "{err}");
    assert!(!s.dir.path().join("never.ct").exists());
}

#[test]
fn a_ciphertext_file_resealed_with_no_samples_is_refused() {
    let s = setup();
    let mut x = std::fs::read(&s.x_ct).unwrap();
    x.truncate(x.len() - 32);
    // samples and batches to 0, no blobs.
    x[FRAME_HEADER + 4..FRAME_HEADER + 12].fill(0);
    let head = ciphertext_header_len(&x);
    x.truncate(head);
    let sum = Sha256::digest(&x);
    x.extend_from_slice(&sum);
    let bad = s.dir.path().join("empty.ct");
    std::fs::write(&bad, x).unwrap();
    let (ok, _, err) = hepack(&[
        "run",
        arg(&s.program),
        "--eval-keys",
        arg(&s.keys.join("eval.keys")),
        "--input",
        arg(&bad),
        "-o",
        arg(&s.dir.path().join("y.ct")),
    ]);
    assert!(!ok);
    assert!(err.contains("no samples"), "{err}");
}

#[test]
fn npy_headers_that_claim_more_than_the_file_holds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let eval = |header: &str| {
        let x = dir.path().join("x.npy");
        std::fs::write(&x, npy_with_header(header, 64)).unwrap();
        let (ok, err) = hepack_limited(&[
            "eval",
            arg(&data("two_heads.legacy.onnx")),
            "--input",
            arg(&x),
        ]);
        assert!(!ok);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        err
    };
    let err = eval("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100), }");
    assert!(
        err.contains("describes 4000000000000 bytes of data, but the file holds 64"),
        "{err}"
    );
    // A second shape (either quote) that the size check might miss and the
    // parser keep.
    for header in [
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'shape': (100000, 100000), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), \"shape\": (100000, 100000), }",
    ] {
        let err = eval(header);
        assert!(err.contains("must name shape exactly once"), "{err}");
    }
}

/// A version 1.0 `.npy` file with `header` (padded as numpy pads it) and
/// `data` zero bytes.
fn npy_with_header(header: &str, data: usize) -> Vec<u8> {
    let mut header = header.to_string();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(bytes.len() + data, 0);
    bytes
}

#[cfg(unix)]
#[test]
fn devices_fifos_and_symlinks_out_of_the_model_folder_are_not_read() {
    let dir = tempfile::tempdir().unwrap();
    // /dev/zero as a program, keys, or input.
    let (ok, _, err) = hepack(&["inspect", "/dev/zero"]);
    assert!(!ok && err.contains("not a regular file"), "{err}");
    let (ok, _, err) = hepack(&[
        "eval",
        arg(&data("two_heads.legacy.onnx")),
        "--input",
        "/dev/zero",
    ]);
    assert!(!ok && err.contains("not a regular file"), "{err}");

    // A FIFO as the model: refused at once instead of waiting for a writer.
    let fifo = dir.path().join("model.onnx");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let (ok, _, err) = hepack(&["inspect", arg(&fifo)]);
    assert!(!ok && err.contains("not a regular file"), "{err}");

    // External data through a symlink that leaves the model's folder.
    let model = common::model("mlp");
    let onnx = std::fs::read(&model).unwrap();
    let leak = dir.path().join("leak");
    std::fs::create_dir(&leak).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", leak.join("weights.bin")).unwrap();
    let external = leak.join("m.onnx");
    std::fs::write(&external, external_weights(&onnx, "weights.bin")).unwrap();
    let (ok, _, err) = hepack(&["inspect", arg(&external)]);
    assert!(!ok);
    assert!(
        err.contains("resolves outside the model's directory"),
        "{err}"
    );
}

/// The model with its first initializer moved to external data at `location`.
fn external_weights(onnx: &[u8], location: &str) -> Vec<u8> {
    use onnx_protobuf::tensor_proto::DataLocation;
    use onnx_protobuf::{Message, ModelProto, StringStringEntryProto};
    let mut m = ModelProto::parse_from_bytes(onnx).unwrap();
    let t = &mut m.graph.as_mut().unwrap().initializer[0];
    t.raw_data.clear();
    t.float_data.clear();
    t.data_location = DataLocation::EXTERNAL.into();
    t.external_data = vec![StringStringEntryProto {
        key: "location".into(),
        value: location.into(),
        ..Default::default()
    }];
    m.write_to_bytes().unwrap()
}

#[test]
fn keys_are_never_overwritten_silently_and_outputs_never_replace_inputs() {
    let s = setup();
    let (ok, _, err) = hepack(&["keygen", arg(&s.program), "--out-dir", arg(&s.keys)]);
    assert!(!ok && err.contains("--force"), "{err}");
    let before = std::fs::read(s.keys.join("secret.key")).unwrap();
    assert_eq!(before, std::fs::read(s.keys.join("secret.key")).unwrap());

    let y_ct = s.dir.path().join("y.ct");
    let eval = s.keys.join("eval.keys");
    let run = |out: &Path| {
        hepack(&[
            "run",
            arg(&s.program),
            "--eval-keys",
            arg(&eval),
            "--input",
            arg(&s.x_ct),
            "-o",
            arg(out),
        ])
    };
    let (ok, _, err) = run(&s.x_ct);
    assert!(!ok && err.contains("is the input"), "{err}");
    let (ok, _, err) = run(&y_ct);
    assert!(ok, "{err}");
    // Decrypting over the secret key (single-output paths are the file
    // itself; this model's outputs would go to secret.<name>.npy, so point
    // one of them at the key through a symlink).
    #[cfg(unix)]
    {
        let out = s.dir.path().join("y.npy");
        std::os::unix::fs::symlink(s.keys.join("secret.key"), s.dir.path().join("y.probs.npy"))
            .unwrap();
        let (ok, _, err) = hepack(&[
            "decrypt",
            arg(&s.program),
            "--keys",
            arg(&s.keys),
            "--input",
            arg(&y_ct),
            "-o",
            arg(&out),
        ]);
        assert!(!ok && err.contains("is the input"), "{err}");
        assert_eq!(before, std::fs::read(s.keys.join("secret.key")).unwrap());
        std::fs::remove_file(s.dir.path().join("y.probs.npy")).unwrap();
        let (ok, _, err) = hepack(&[
            "decrypt",
            arg(&s.program),
            "--keys",
            arg(&s.keys),
            "--input",
            arg(&y_ct),
            "-o",
            arg(&out),
        ]);
        assert!(ok, "{err}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.dir.path().join("y.box.npy"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "decrypted data must be private");
    }
    let (ok, _, err) = hepack(&[
        "keygen",
        arg(&s.program),
        "--out-dir",
        arg(&s.keys),
        "--force",
    ]);
    assert!(ok, "{err}");
    assert_ne!(before, std::fs::read(s.keys.join("secret.key")).unwrap());
}

#[test]
fn clients_refuse_insecure_programs_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("weak.hep");
    let (ok, _, err) = hepack(&[
        "compile",
        arg(&data("two_heads.legacy.onnx")),
        "--poly-degree",
        "4096",
        "--insecure",
        "-o",
        arg(&program),
    ]);
    assert!(ok, "{err}");
    let keys = dir.path().join("keys");
    let (ok, _, err) = hepack(&["keygen", arg(&program), "--out-dir", arg(&keys)]);
    assert!(!ok && err.contains("--insecure"), "{err}");
    assert!(!keys.join("secret.key").exists());
    let (ok, _, err) = hepack(&[
        "keygen",
        arg(&program),
        "--out-dir",
        arg(&keys),
        "--insecure",
    ]);
    assert!(ok && err.contains("INSECURE"), "{err}");
    let (ok, _, err) = hepack(&[
        "encrypt",
        arg(&program),
        "--keys",
        arg(&keys),
        "--input",
        arg(&data("two_heads.x.npy")),
        "-o",
        arg(&dir.path().join("x.ct")),
    ]);
    assert!(!ok && err.contains("--insecure"), "{err}");
}

#[test]
fn servers_refuse_programs_past_their_limits() {
    let s = setup();
    let eval = s.keys.join("eval.keys");
    let out = s.dir.path().join("y.ct");
    let run = |limit: &[&str]| {
        let mut args = vec![
            "run",
            arg(&s.program),
            "--eval-keys",
            arg(&eval),
            "--input",
            arg(&s.x_ct),
            "-o",
            arg(&out),
        ];
        args.extend_from_slice(limit);
        hepack(&args)
    };
    let (ok, _, err) = run(&["--max-ops", "10"]);
    assert!(!ok && err.contains("--max-ops 10"), "{err}");
    let (ok, _, err) = run(&["--max-memory", "0.001"]);
    assert!(!ok && err.contains("--max-memory"), "{err}");
    let (ok, _, err) = run(&["--max-seconds", "0.000001"]);
    assert!(!ok && err.contains("--max-seconds"), "{err}");
    assert!(!out.exists());
    let (ok, _, err) = run(&[]);
    assert!(ok, "{err}");
}
