//! Encrypted inference on SEAL agrees with the plaintext reference, at the
//! parameters the compiler chose (128-bit security), and bad keys,
//! ciphertexts and parameters give errors.

use std::path::PathBuf;

use hepack_backend::program::{Instr, ValueId};
use hepack_backend::{HeOp, Lowering, OpTimes, ParamRequest, Program};
use hepack_ir::{interp, Graph};
use hepack_passes::prune::{BatchPacking, Block};
use hepack_passes::{pipeline, PassOptions};
use hepack_runtime::ciphertexts::{Ciphertexts, Role};
use hepack_runtime::executor::{self, Options};
use hepack_runtime::seal::{Context, SealError, Security};
use hepack_runtime::{client, keys, RuntimeError};
use ndarray::{ArrayD, Axis};
use ndarray_npy::ReadNpyExt;
use sha2::Digest;

const BATCH: BatchPacking = BatchPacking {
    block: Block::Column,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn mnist_flat(samples: usize) -> ArrayD<f64> {
    mnist_file("mnist_test_x_flat.npy", samples)
}

fn mnist_file(name: &str, samples: usize) -> ArrayD<f64> {
    let cache = std::env::var_os("HEPACK_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".cache/hepack"));
    let path = cache.join("mnist").join(name);
    let x = ArrayD::<f32>::read_npy(std::fs::File::open(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `python3 scripts/fetch_data.py`",
            path.display()
        )
    }))
    .unwrap();
    x.slice_axis(Axis(0), (0..samples).into()).mapv(f64::from)
}

/// An example model made HE-friendly with the default passes (squares).
fn he_friendly(name: &str) -> Graph {
    let path = root().join("examples/models").join(format!("{name}.onnx"));
    let mut g = hepack_frontend::load(&path).unwrap().graph;
    pipeline("he-friendly", &PassOptions::default())
        .unwrap()
        .run(&mut g, |_, _| {})
        .unwrap();
    g
}

fn compile(g: &Graph) -> Program {
    BATCH
        .compile(g, &OpTimes::default(), &ParamRequest::default())
        .unwrap()
        .0
}

/// Keys, encryption, the threaded executor and decryption, all in process.
fn encrypted_inference(program: &Program, x: &ArrayD<f64>, threads: usize) -> ArrayD<f64> {
    encrypted_inference_with(
        program,
        x,
        &Options {
            threads,
            ..Options::default()
        },
    )
}

fn encrypted_inference_with(program: &Program, x: &ArrayD<f64>, options: &Options) -> ArrayD<f64> {
    let context = keys::context(&program.params).unwrap();
    let (secret, eval) = keys::generate(&context, program).unwrap();
    let inputs = client::encrypt(&context, program, &secret, x.view(), false).unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    let (outputs, report) = executor::run(
        &context,
        program,
        &eval,
        inputs,
        options,
        &OpTimes::default(),
        &|n| seen.lock().unwrap().push(n),
    )
    .unwrap();
    let executed: u64 = report.ops.iter().map(|k| k.count).sum();
    let total = (report.batches * program.instrs.len()) as u64;
    assert_eq!(executed, total);
    // The executor fuses what the cost model priced as fused.
    let mut cost = hepack_backend::cost(program, &OpTimes::default());
    if !options.hoist {
        (cost.hoisted_rotations, cost.decompositions) = (0, 0);
    }
    let batches = report.batches as u64;
    assert_eq!(report.fused_sums, cost.fused_sums * batches);
    assert_eq!(report.fused_products, cost.fused_products * batches);
    assert_eq!(report.combinations, cost.combinations * batches);
    assert_eq!(report.hoisted_rotations, cost.hoisted_rotations * batches);
    assert_eq!(report.decompositions, cost.decompositions * batches);
    // Progress (the bar's position) only moves forward and ends at the total.
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.iter().max(), Some(&total), "{seen:?}");
    client::decrypt(&context, program, &secret, &outputs)
        .unwrap()
        .swap_remove(0)
}

fn max_error(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max)
}

fn argmax(row: ndarray::ArrayViewD<'_, f64>) -> usize {
    row.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0
}

#[test]
fn mlp_encrypted_matches_plaintext_within_1e_3() {
    let g = he_friendly("mlp");
    let program = compile(&g);
    assert_eq!(program.params.security_bits, Some(128));
    // Every product of a dense layer is fused into its sum.
    let cost = hepack_backend::cost(&program, &OpTimes::default());
    assert_eq!(cost.fused_products, cost.total.get("mul_plain"));
    assert!(cost.fused_sums > 0);
    // One combination per neuron: a dense layer's sums are all folded.
    assert!(cost.combinations > 0 && cost.combinations < cost.fused_sums);
    let x = mnist_flat(64);
    let want = interp::run(&g, x.view()).unwrap();
    let got = encrypted_inference(&program, &x, 2);
    let err = max_error(&want, &got);
    assert!(err <= 1e-3, "max |error| {err}");
    for (a, b) in want.outer_iter().zip(got.outer_iter()) {
        assert_eq!(argmax(a), argmax(b));
    }
}

/// An op that reads one value twice (`x + x`) takes it once: the executor
/// counts it as one reader and must not free it before the op has run.
#[test]
fn an_op_reading_one_value_twice_runs_on_it_once() {
    let g = he_friendly("mlp");
    let mut program = compile(&g);
    let x = mnist_flat(8);
    let want = interp::run(&g, x.view()).unwrap();
    // Turn the first output `o = v` into `o = v + v`: the output op becomes
    // the sum (defining a value at its position) and a new output reads it.
    let at = program
        .instrs
        .iter()
        .position(|i| matches!(i.op, HeOp::Output { .. }))
        .unwrap();
    let HeOp::Output { value, index } = program.instrs[at].op else {
        unreachable!()
    };
    let layer = program.instrs[at].layer;
    program.instrs[at].op = HeOp::Add(value, value);
    program.instrs.push(Instr {
        op: HeOp::Output {
            value: ValueId(at as u32),
            index,
        },
        layer,
    });
    let got = encrypted_inference(&program, &x, 2);
    let err = (0..x.shape()[0])
        .map(|s| {
            (0..want.shape()[1])
                .map(|j| {
                    let factor = if j == index as usize { 2.0 } else { 1.0 };
                    (got[[s, j]] - factor * want[[s, j]]).abs()
                })
                .fold(0.0, f64::max)
        })
        .fold(0.0, f64::max);
    assert!(err <= 1e-3, "max |error| {err}");
}

/// A combination read by two ops is computed on its own, and a fused sum
/// that reads it takes it as a term of weight 1.
#[test]
fn a_combination_read_twice_is_a_term_of_its_second_reader() {
    let g = he_friendly("mlp");
    let mut program = compile(&g);
    let metas = hepack_backend::levels::check(&program).unwrap();
    let fusion = hepack_backend::fuse::Fusion::of(&program, &metas);
    let root = (0..program.instrs.len())
        .find(|&i| fusion.sum[i] && !fusion.lazy[i])
        .unwrap();
    // The last product before it is one of its terms: same level and scale.
    let leaf = (0..root).rev().find(|&i| fusion.product[i]).unwrap();
    let (HeOp::MulPlain(x, w), layer) =
        (program.instrs[leaf].op.clone(), program.instrs[leaf].layer)
    else {
        unreachable!("fused products are mul_plains")
    };
    // Appended, read by nothing: `root + w·x`, a fused sum over a computed
    // combination.
    let product = ValueId(program.instrs.len() as u32);
    program.instrs.push(Instr {
        op: HeOp::MulPlain(x, w),
        layer,
    });
    program.instrs.push(Instr {
        op: HeOp::Add(ValueId(root as u32), product),
        layer,
    });
    let metas = hepack_backend::levels::check(&program).unwrap();
    let fusion = hepack_backend::fuse::Fusion::of(&program, &metas);
    let sum = program.instrs.len() - 1;
    assert!(fusion.sum[sum] && !fusion.lazy[root]);
    let x = mnist_flat(8);
    let want = interp::run(&g, x.view()).unwrap();
    let got = encrypted_inference(&program, &x, 2);
    assert!(max_error(&want, &got) <= 1e-3);
}

/// AE1 as a user compiles it: quadratics fitted on a calibration set, which
/// also bounds the values for parameter selection.
#[test]
fn ae1_encrypted_matches_plaintext_within_1e_3() {
    let (g, request) = fitted("ae1");
    let program = BATCH.compile(&g, &OpTimes::default(), &request).unwrap().0;
    assert_eq!(program.params.security_bits, Some(128));
    let x = mnist_flat(16);
    let want = interp::run(&g, x.view()).unwrap();
    let got = encrypted_inference(&program, &x, 2);
    let err = max_error(&want, &got);
    assert!(err <= 1e-3, "max |error| {err}");
}

/// An autoencoder with quadratics fitted on 1,000 training digits, and
/// parameters for twice the largest value they reach (squares alone
/// overflow them).
fn fitted(name: &str) -> (Graph, ParamRequest) {
    let path = root().join("examples/models").join(format!("{name}.onnx"));
    let mut g = hepack_frontend::load(&path).unwrap().graph;
    let calib = mnist_file("mnist_train_x_flat.npy", 1000);
    let options = PassOptions {
        act: Some("poly:2".parse().unwrap()),
        calib: Some(calib.clone()),
        ..PassOptions::default()
    };
    pipeline("he-friendly", &options)
        .unwrap()
        .run(&mut g, |_, _| {})
        .unwrap();
    let request = ParamRequest {
        max_value: Some(2.0 * interp::max_abs(&g, calib.view()).unwrap()),
        ..ParamRequest::default()
    };
    (g, request)
}

/// A tiny program (dense 4 → 3, square, dense 3 → 2) for the file tests.
fn tiny() -> (Graph, Program) {
    use hepack_ir::{Activation, Dense, Op, Shape};
    use ndarray::{Array1, Array2};
    let mut g = Graph::new("x", Shape::new([4]));
    let d1 = Op::Dense(Dense {
        weight: Array2::from_shape_fn((4, 3), |(i, j)| 0.1 * (i as f64 + 1.0) - 0.07 * j as f64),
        bias: Array1::from_vec(vec![0.1, -0.2, 0.3]),
    });
    let a = g.add("d1", d1, &[g.input()]).unwrap();
    let s = g
        .add("sq", Op::Activation(Activation::Square), &[a])
        .unwrap();
    let d2 = Op::Dense(Dense {
        weight: Array2::from_shape_fn((3, 2), |(i, j)| 0.2 * i as f64 - 0.3 * j as f64 + 0.05),
        bias: Array1::zeros(2),
    });
    let o = g.add("d2", d2, &[s]).unwrap();
    g.set_output(o);
    let program = compile(&g);
    (g, program)
}

#[test]
fn a_batch_larger_than_the_slots_becomes_several_ciphertext_batches() {
    let (g, program) = tiny();
    let slots = program.params.slots() as usize;
    let n = slots + 3;
    let x = ArrayD::from_shape_fn(ndarray::IxDyn(&[n, 4]), |ix| {
        ((ix[0] * 7 + ix[1] * 3) % 11) as f64 / 11.0 - 0.5
    });
    let context = keys::context(&program.params).unwrap();
    let (secret, _) = keys::generate(&context, &program).unwrap();
    let cts = client::encrypt(&context, &program, &secret, x.view(), false).unwrap();
    assert_eq!(cts.batches.len(), 2);
    let want = interp::run(&g, x.view()).unwrap();
    let got = encrypted_inference(&program, &x, 2);
    assert!(max_error(&want, &got) <= 1e-3);
}

#[test]
fn key_and_ciphertext_files_round_trip_and_bad_ones_are_refused() {
    let (_, program) = tiny();
    let context = keys::context(&program.params).unwrap();
    let (secret_bytes, eval_bytes) = keys::generate_files(&context, &program).unwrap();
    let secret = keys::read_secret(&context, &program.params, &secret_bytes).unwrap();
    keys::read_eval(&context, &program, &eval_bytes).unwrap();

    // A mix-up is named.
    let err = keys::read_eval(&context, &program, &secret_bytes).unwrap_err();
    assert!(
        err.to_string().contains("this is a secret key file"),
        "{err}"
    );
    // Every truncation is an error, never a panic.
    for cut in (0..eval_bytes.len()).step_by(eval_bytes.len() / 97 + 1) {
        assert!(keys::read_eval(&context, &program, &eval_bytes[..cut]).is_err());
    }
    for cut in (0..secret_bytes.len()).step_by(secret_bytes.len() / 97 + 1) {
        assert!(keys::read_secret(&context, &program.params, &secret_bytes[..cut]).is_err());
    }
    // Corrupt key material: SEAL's own checks refuse it.
    let mut bad = secret_bytes.clone();
    let at = bad.len() - 20;
    bad[at] ^= 0xff;
    assert!(keys::read_secret(&context, &program.params, &bad).is_err());

    // Ciphertexts round trip through the file; truncations are refused.
    let x = ArrayD::from_elem(ndarray::IxDyn(&[5, 4]), 0.25);
    let cts = client::encrypt(&context, &program, &secret, x.view(), true).unwrap();
    let mut file = Vec::new();
    cts.write(&program.params, &mut file).unwrap();
    // A flipped bit anywhere is caught by the checksum.
    let mut flipped = file.clone();
    flipped[file.len() / 2] ^= 1;
    let err = Ciphertexts::read(&context, &program, Role::Input, &flipped).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    let back = Ciphertexts::read(&context, &program, Role::Input, &file).unwrap();
    assert_eq!(back.indices, cts.indices);
    assert_eq!(back.samples, 5);
    for cut in (0..file.len()).step_by(file.len() / 97 + 1) {
        assert!(Ciphertexts::read(&context, &program, Role::Input, &file[..cut]).is_err());
    }
    let err = Ciphertexts::read(&context, &program, Role::Output, &file).unwrap_err();
    assert!(err.to_string().contains("encrypted inputs"), "{err}");

    // Keys for other parameters: the fingerprint says so before SEAL reads them.
    let mut other = program.clone();
    other.params =
        hepack_backend::params::select(program.params.levels() + 1, &ParamRequest::default())
            .unwrap();
    let other_context = keys::context(&other.params).unwrap();
    let err = keys::read_eval(&other_context, &other, &eval_bytes).unwrap_err();
    assert!(err.to_string().contains("other CKKS parameters"), "{err}");
}

#[test]
fn seal_refuses_parameters_beyond_128_bit_security() {
    // 200 bits at N = 4096: the standard allows 109.
    let primes = hepack_backend::params::coeff_modulus(4096, &[50, 50, 50, 50]).unwrap();
    let err = Context::new(4096, &primes, Security::Tc128).err().unwrap();
    assert!(matches!(err, SealError::Parameters(_)), "{err}");
    assert!(err.to_string().contains("parameters"), "{err}");
    // Only an explicit opt-out gets past SEAL's check.
    assert!(Context::new(4096, &primes, Security::None).is_ok());
}

#[test]
fn inputs_of_the_wrong_shape_are_refused() {
    let (_, program) = tiny();
    let context = keys::context(&program.params).unwrap();
    let (secret, _) = keys::generate(&context, &program).unwrap();
    let x = ArrayD::from_elem(ndarray::IxDyn(&[2, 5]), 0.0);
    let err = client::encrypt(&context, &program, &secret, x.view(), false).unwrap_err();
    assert!(matches!(err, RuntimeError::Mismatch(_)), "{err}");
}

/// Two key generations for one program share its parameters but not their
/// key set: inputs are not run with another set's evaluation keys, and
/// outputs are not decrypted with another set's secret key.
#[test]
fn keys_from_another_key_generation_are_refused_by_name() {
    let (_, program) = tiny();
    let context = keys::context(&program.params).unwrap();
    let (secret_a, eval_a) = keys::generate(&context, &program).unwrap();
    let (secret_b, eval_b) = keys::generate(&context, &program).unwrap();
    assert_ne!(secret_a.key_set, secret_b.key_set);
    let x = ArrayD::from_elem(ndarray::IxDyn(&[3, 4]), 0.5);
    let run = |eval: &keys::EvalKeys| {
        let inputs = client::encrypt(&context, &program, &secret_a, x.view(), false).unwrap();
        let times = hepack_backend::OpTimes::default();
        executor::run(
            &context,
            &program,
            eval,
            inputs,
            &Options::default(),
            &times,
            &|_| {},
        )
    };
    let err = run(&eval_b).unwrap_err().to_string();
    assert!(err.contains("key set"), "{err}");
    let (outputs, _) = run(&eval_a).unwrap();
    let err = client::decrypt(&context, &program, &secret_b, &outputs)
        .unwrap_err()
        .to_string();
    assert!(err.contains("key set"), "{err}");
    assert!(client::decrypt(&context, &program, &secret_a, &outputs).is_ok());

    // Files say which key set they belong to, and the evaluation keys' header
    // must name their own public key's.
    let (secret_file, eval_file) = keys::generate_files(&context, &program).unwrap();
    let from_file = keys::read_secret(&context, &program.params, &secret_file).unwrap();
    let eval = keys::read_eval(&context, &program, &eval_file).unwrap();
    assert_eq!(from_file.key_set, eval.key_set);
    let mut forged = eval_file[..eval_file.len() - 32].to_vec();
    forged[44] ^= 1;
    let sum = sha2::Sha256::digest(&forged);
    forged.extend_from_slice(&sum);
    let err = keys::read_eval(&context, &program, &forged).unwrap_err();
    assert!(err.to_string().contains("not its public key's"), "{err}");
}

/// Random edits of key and ciphertext files with the checksum recomputed,
/// as an attacker would make them: every one is read back or refused with an
/// error, never a crash (SEAL parses what the framing lets through).
#[test]
fn mutated_files_with_valid_checksums_never_crash() {
    let (_, program) = tiny();
    let context = keys::context(&program.params).unwrap();
    let (secret_file, eval_file) = keys::generate_files(&context, &program).unwrap();
    let secret = keys::read_secret(&context, &program.params, &secret_file).unwrap();
    let x = ArrayD::from_elem(ndarray::IxDyn(&[2, 4]), 0.25);
    let cts = client::encrypt(&context, &program, &secret, x.view(), true).unwrap();
    let mut ct_file = Vec::new();
    cts.write(&program.params, &mut ct_file).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut refused = 0;
    for case in 0..300 {
        let original = match case % 3 {
            0 => &secret_file,
            1 => &eval_file,
            _ => &ct_file,
        };
        let mut body = original[..original.len() - 32].to_vec();
        for _ in 0..1 + next() % 4 {
            let at = (next() % body.len() as u64) as usize;
            body[at] = next() as u8;
        }
        let sum = sha2::Sha256::digest(&body);
        body.extend_from_slice(&sum);
        let ok = match case % 3 {
            0 => keys::read_secret(&context, &program.params, &body).is_ok(),
            1 => keys::read_eval(&context, &program, &body).is_ok(),
            _ => Ciphertexts::read(&context, &program, Role::Input, &body).is_ok(),
        };
        refused += usize::from(!ok);
    }
    assert!(refused > 100, "only {refused} of 300 mutants were refused");
}

/// Values no op reads (a hand-made program can hold thousands) are freed as
/// soon as they are computed: the run's peak of live ciphertexts does not
/// grow with them.
#[test]
fn values_nobody_reads_are_freed_at_once() {
    let (_, program) = tiny();
    let context = keys::context(&program.params).unwrap();
    let (secret, eval) = keys::generate(&context, &program).unwrap();
    let x = ArrayD::from_elem(ndarray::IxDyn(&[3, 4]), 0.5);
    let peak = |p: &Program| {
        let inputs = client::encrypt(&context, p, &secret, x.view(), false).unwrap();
        let options = Options {
            threads: 1,
            ..Options::default()
        };
        let (_, report) = executor::run(
            &context,
            p,
            &eval,
            inputs,
            &options,
            &OpTimes::default(),
            &|_| {},
        )
        .unwrap();
        report.peak_ciphertexts
    };
    let before = peak(&program);
    let mut dead = program.clone();
    let input = dead
        .instrs
        .iter()
        .position(|i| matches!(i.op, HeOp::EncryptInput { .. }))
        .unwrap();
    // Appended after every other op: values are numbered by op, so nothing
    // else is renumbered.
    let layer = dead.instrs[input].layer;
    dead.instrs.extend((0..200).map(|_| Instr {
        op: HeOp::Square(ValueId(input as u32)),
        layer,
    }));
    hepack_backend::levels::check(&dead).unwrap();
    let after = peak(&dead);
    assert!(
        after <= before + 2,
        "200 unread values raised the peak from {before} to {after}"
    );
}

/// SEAL inflates a nested object's compressed members too (a ciphertext's
/// coefficient array, each key of a key table) before any size check; such
/// objects are refused before SEAL sees them, and the same objects written
/// uncompressed load.
#[test]
fn nested_compressed_seal_objects_are_refused_before_seal_reads_them() {
    use hepack_runtime::seal::{Ciphertext, Object, RelinKeys};
    use std::io::Read;
    let (_, program) = tiny();
    let context = keys::context(&program.params).unwrap();
    let (secret, eval) = keys::generate(&context, &program).unwrap();
    let x = ArrayD::from_elem(ndarray::IxDyn(&[2, 4]), 0.25);
    let mut cts = client::encrypt(&context, &program, &secret, x.view(), false).unwrap();
    let ct = cts.batches[0].remove(0).load(&context).unwrap();

    // SEAL's serialization with the outer zstd stream inflated: a header
    // with compression 0 and the members as SEAL wrote them.
    let uncompressed = |saved: Vec<u8>| {
        assert_eq!(saved[5], 2, "SEAL saves zstd");
        let mut members = Vec::new();
        ruzstd::decoding::StreamingDecoder::new(&saved[16..])
            .unwrap()
            .read_to_end(&mut members)
            .unwrap();
        let mut o = saved[..16].to_vec();
        o[5] = 0;
        o[8..16].copy_from_slice(&((16 + members.len()) as u64).to_le_bytes());
        o.extend(members);
        o
    };
    let plain_ct = uncompressed(ct.save().unwrap());
    Ciphertext::load(&context, &plain_ct).unwrap();
    let plain_relin = uncompressed(eval.relin.save().unwrap());
    RelinKeys::load(&context, &plain_relin, Object::RelinKeys).unwrap();

    // Mark a nested header compressed; the bytes after it are now a zstd
    // bomb for SEAL: RLE blocks of 128 KiB each.
    let bomb = |object: &[u8], nested_at: usize| {
        let mut z = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x50];
        for i in 0..2_000u32 {
            let header = u32::from(i == 1_999) | (1 << 1) | ((128 * 1024) << 3);
            z.extend_from_slice(&header.to_le_bytes()[..3]);
            z.push(0x41);
        }
        let mut o = object[..nested_at].to_vec();
        o.extend_from_slice(&[0x5E, 0xA1, 16, 4, 0, 2, 0, 0]);
        o.extend_from_slice(&((16 + z.len()) as u64).to_le_bytes());
        o.extend(z);
        let len = o.len() as u64;
        o[8..16].copy_from_slice(&len.to_le_bytes());
        o
    };
    // A ciphertext's members: parms_id, NTT flag, three counts, scale,
    // correction factor (73 bytes), then its coefficient array.
    let err = Ciphertext::load(&context, &bomb(&plain_ct, 16 + 73)).unwrap_err();
    assert!(
        err.to_string().contains("coefficients is compressed"),
        "{err}"
    );
    // A key table: parms_id, row count, the first row's size (48 bytes),
    // then its first key.
    let err =
        RelinKeys::load(&context, &bomb(&plain_relin, 16 + 48), Object::RelinKeys).unwrap_err();
    assert!(err.to_string().contains("key is compressed"), "{err}");
}

/// Diagonal packing on SEAL: one sample, and more samples than one
/// ciphertext holds side by side; within 1e-3 of plaintext, argmax equal,
/// and the program file round-trips with its slot layout and vector weights.
#[test]
fn mlp_diagonal_encrypted_matches_plaintext_one_sample_and_several() {
    use hepack_backend::diagonal::DiagonalPacking;
    let g = he_friendly("mlp");
    let (program, _) = DiagonalPacking::default()
        .compile(&g, &OpTimes::default(), &ParamRequest::default())
        .unwrap();
    assert_eq!(program.params.security_bits, Some(128));
    assert!(!program.rotation_steps().is_empty());
    let bytes = hepack_backend::file::encode(&program).unwrap();
    let back = hepack_backend::file::decode(&bytes).unwrap();
    assert_eq!(back.slots, program.slots);
    assert_eq!(back.plains, program.plains);
    let per = program.slots.as_ref().unwrap().samples_per_ct();
    for samples in [1, per + 1] {
        let x = mnist_flat(samples);
        let want = interp::run(&g, x.view()).unwrap();
        let got = encrypted_inference(&back, &x, 2);
        let err = max_error(&want, &got);
        assert!(err <= 1e-3, "{samples} samples: max |error| {err}");
        // Every run above hoists the baby steps, and sums the diagonal
        // products in the weighted-sum kernel.
        let fused = hepack_backend::cost(&back, &OpTimes::default());
        assert!(fused.hoisted_rotations > 0 && fused.decompositions > 0);
        assert!(fused.fused_products > 0 && fused.combinations > 0);
        for (a, b) in want.outer_iter().zip(got.outer_iter()) {
            assert_eq!(argmax(a), argmax(b));
        }
    }
}

#[test]
fn diagonal_rotations_hoisted_or_not_give_the_same_answer() {
    use hepack_backend::diagonal::DiagonalPacking;
    let g = he_friendly("mlp");
    let (program, _) = DiagonalPacking::default()
        .compile(&g, &OpTimes::default(), &ParamRequest::default())
        .unwrap();
    let x = mnist_flat(2);
    let want = interp::run(&g, x.view()).unwrap();
    for hoist in [true, false] {
        let options = Options {
            threads: 2,
            hoist,
            ..Options::default()
        };
        let got = encrypted_inference_with(&program, &x, &options);
        let err = max_error(&want, &got);
        assert!(err <= 1e-3, "hoist {hoist}: max |error| {err}");
    }
}

/// Tile packing on SEAL: the MLP and AE1 at two tile shapes each, and AE3
/// (four dense layers: a column-0 output is cleaned and replicated before
/// the third), a full tile batch (`t3` samples interleaved in every
/// ciphertext) and fewer; within 1e-3 of plaintext, the MLP's argmax equal;
/// the program file round-trips with its interleaved layout and replicas.
#[test]
fn tile_packing_encrypted_matches_plaintext_full_batch_and_fewer() {
    use hepack_backend::tile::TilePacking;
    let models: [(&str, &[&str]); 3] = [
        ("mlp", &["16x16", "8x64"]),
        ("ae1", &["32x8", "16x16"]),
        ("ae3", &["16x16"]),
    ];
    for (name, shapes) in models {
        let (g, request) = match name {
            "mlp" => (he_friendly(name), ParamRequest::default()),
            _ => fitted(name),
        };
        for &shape in shapes {
            let (program, _) = TilePacking {
                shape: shape.parse().unwrap(),
            }
            .compile(&g, &OpTimes::default(), &request)
            .unwrap();
            assert_eq!(program.params.security_bits, Some(128));
            let bytes = hepack_backend::file::encode(&program).unwrap();
            let back = hepack_backend::file::decode(&bytes).unwrap();
            assert_eq!(back.slots, program.slots);
            let layout = back.slots.as_ref().unwrap();
            assert_eq!(layout.sample_stride, 1);
            let t3 = layout.samples_per_ct();
            for samples in [t3, 3] {
                let x = mnist_flat(samples);
                let want = interp::run(&g, x.view()).unwrap();
                let got = encrypted_inference(&back, &x, 2);
                let err = max_error(&want, &got);
                assert!(
                    err <= 1e-3,
                    "{name} {shape}, {samples} samples: max |error| {err}"
                );
                if name == "mlp" {
                    for (a, b) in want.outer_iter().zip(got.outer_iter()) {
                        assert_eq!(argmax(a), argmax(b), "{shape}");
                    }
                }
            }
        }
    }
}
