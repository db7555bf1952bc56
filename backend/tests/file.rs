//! The program file: round trips, byte-identical recompilation, and clear
//! errors (never a panic) for malformed, mutated, truncated or hostile files.

use hepack_backend::file::{self, pb, FileError};
use hepack_backend::{Lowering, OpTimes, Program};
use hepack_ir::testing::{add_outputs, random_graph, CONV, DENSE};
use hepack_ir::Graph;
use hepack_passes::{pipeline, PassOptions};
use proptest::prelude::*;
use prost::Message;

mod common;

use common::BATCH;

fn model(name: &str) -> Graph {
    let mut g = common::model(name);
    pipeline("he-friendly", &PassOptions::default())
        .unwrap()
        .run(&mut g, |_, _| {})
        .unwrap();
    g
}

fn compile(g: &Graph) -> Program {
    let (mut program, _) = BATCH.lower(g, &OpTimes::default()).unwrap();
    program.model_sha256 = Some(file::model_hash(b"model bytes"));
    program
}

/// A small conv net with every op kind batch packing emits.
fn small() -> Program {
    let choices = [CONV, 5, 3, DENSE, 5, DENSE];
    compile(&random_graph(&choices, 7, true))
}

#[test]
fn example_models_round_trip() {
    for name in ["mlp", "ae1", "lenet5"] {
        let program = compile(&model(name));
        let bytes = file::encode(&program).unwrap();
        let back = file::decode(&bytes).unwrap();
        assert!(back == program, "{name} changed in a round trip");
        assert!(file::looks_like_program(&bytes));
    }
}

/// A program with several outputs keeps their names, shapes and layouts, and
/// its output ops keep indexing the outputs' elements one after another.
#[test]
fn several_outputs_round_trip() {
    let mut g = random_graph(&[CONV, 5, 3, DENSE, 5, DENSE], 7, true);
    add_outputs(&mut g, 2);
    let program = compile(&g);
    assert!(program.outputs.len() > 1);
    let back = file::decode(&file::encode(&program).unwrap()).unwrap();
    assert!(
        back == program,
        "a program with several outputs changed in a round trip"
    );
    let names: Vec<&str> = back.outputs.iter().map(|o| o.name.as_str()).collect();
    let want: Vec<&str> = g.outputs().iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, want);
}

#[test]
fn recompiling_gives_identical_bytes() {
    let g = model("lenet5");
    assert_eq!(
        file::encode(&compile(&g)).unwrap(),
        file::encode(&compile(&g)).unwrap()
    );
    let g = model("mlp");
    assert_eq!(
        file::encode(&compile(&g)).unwrap(),
        file::encode(&compile(&g)).unwrap()
    );
}

fn message(program: &Program) -> pb::ProgramFile {
    pb::ProgramFile::decode(file::encode(program).unwrap().as_slice()).unwrap()
}

/// The slot layout of a diagonal or tile program's message, to break.
fn slots_of(m: &mut pb::ProgramFile) -> &mut pb::SlotLayout {
    m.layout.as_mut().unwrap().slots.as_mut().unwrap()
}

fn refused(m: &pb::ProgramFile) -> String {
    match file::decode(&m.encode_to_vec()) {
        Ok(_) => panic!("accepted a broken file"),
        Err(e) => e.to_string(),
    }
}

/// Hand-made breakages a hostile or buggy writer could produce, each refused
/// with a message naming what is wrong.
#[test]
fn inconsistent_files_are_refused_with_the_reason() {
    let good = message(&small());
    let mut cases: Vec<(&str, pb::ProgramFile)> = Vec::new();
    let mut m = good.clone();
    m.format_version = 1;
    cases.push(("format version 1", m));
    let mut m = good.clone();
    m.params.as_mut().unwrap().poly_degree = 1 << 31;
    cases.push(("polynomial degree 2147483648", m));
    let mut m = good.clone();
    m.params.as_mut().unwrap().primes[0] += 2;
    cases.push(("primes are not those SEAL makes", m));
    let mut m = good.clone();
    let p = m.params.as_mut().unwrap();
    p.chain_bits = vec![60; 9];
    p.primes = hepack_backend::params::coeff_modulus(p.poly_degree, &p.chain_bits).unwrap();
    cases.push(("claims 128-bit security", m));
    let mut m = good.clone();
    m.layout.as_mut().unwrap().outputs[0].shape = vec![u32::MAX, u32::MAX];
    cases.push(("output shape", m));
    let mut m = good.clone();
    m.layout.as_mut().unwrap().outputs.clear();
    cases.push(("no output", m));
    let mut m = good.clone();
    let layout = m.layout.as_mut().unwrap();
    let twin = layout.outputs[0].clone();
    layout.outputs.push(twin);
    cases.push(("unique", m));
    let mut m = good.clone();
    m.layout.as_mut().unwrap().outputs[0].elements.pop();
    cases.push(("elements for output", m));
    let mut m = good.clone();
    let ops = m.ops.as_mut().unwrap();
    let last = ops.args.len() - 1;
    ops.args[last] = ops.kind.len() as u32 + 5;
    cases.push(("not a ciphertext defined before it", m));
    let mut m = good.clone();
    m.ops.as_mut().unwrap().args.pop();
    cases.push(("argument column ends early", m));
    let mut m = good.clone();
    m.ops.as_mut().unwrap().level[3] += 1;
    cases.push(("op 3 records level", m));
    let mut m = good.clone();
    let ops = m.ops.as_mut().unwrap();
    let reread = ops.last_use.iter().position(|&l| l > 1).unwrap();
    ops.last_use[reread] -= 1;
    cases.push(("last use wrongly", m));
    let mut m = good.clone();
    m.ops.as_mut().unwrap().scale.pop();
    cases.push(("op columns differ", m));
    let mut m = good.clone();
    m.rotation_steps = vec![1];
    cases.push(("rotation steps [1]", m));
    let mut m = good.clone();
    m.weights.as_mut().unwrap().scale[0] = f64::NAN;
    cases.push(("weight @0", m));
    let mut m = good.clone();
    let ops = m.ops.as_mut().unwrap();
    let out = ops
        .kind
        .iter()
        .position(|&k| k == pb::OpKind::Output as i32)
        .unwrap();
    ops.kind[out] = pb::OpKind::Rescale as i32;
    cases.push(("op", m));
    for (want, m) in cases {
        let got = refused(&m);
        assert!(got.contains(want), "expected {want:?} in {got:?}");
    }
    assert!(matches!(
        file::decode(b"\x08\x01not a program"),
        Err(FileError::NotAProgram(_))
    ));
}

#[test]
fn insecure_programs_say_so_and_load() {
    let g = model("mlp");
    let request = hepack_backend::ParamRequest {
        degree: Some(1024),
        insecure: true,
        ..Default::default()
    };
    let (program, _) = BATCH.compile(&g, &OpTimes::default(), &request).unwrap();
    assert_eq!(program.params.security_bits, None);
    let back = file::decode(&file::encode(&program).unwrap()).unwrap();
    assert_eq!(back.params.security_bits, None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Flipped bytes, inserted garbage and truncation: decoding returns an
    /// error or a program that passed every check, never a panic.
    #[test]
    fn mutated_files_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = file::encode(&small()).unwrap();
        for (at, byte, how) in edits {
            let i = at.index(bytes.len());
            match how {
                0 => bytes[i] ^= byte | 1,
                1 => bytes.insert(i, byte),
                _ => { bytes.remove(i); }
            }
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(program) = file::decode(&bytes) {
            // Whatever loads is a checked program.
            prop_assert!(hepack_backend::levels::check(&program).is_ok());
        }
    }
}

#[test]
fn every_truncation_of_a_small_file_is_refused() {
    let bytes = file::encode(&small()).unwrap();
    for len in 0..bytes.len() {
        // A cut may land between fields and still decode as protobuf; the
        // checks must then catch what is missing.
        assert!(
            file::decode(&bytes[..len]).is_err(),
            "accepted {len} of {} bytes",
            bytes.len()
        );
    }
}

fn diagonal(g: &Graph) -> Program {
    let (program, _) = hepack_backend::diagonal::DiagonalPacking::default()
        .lower(g, &OpTimes::default())
        .unwrap();
    program
}

/// Diagonal programs keep their slot layout and vector weights; version 2
/// files (batch, no vector columns) still read; broken layouts and vector
/// columns are refused by name.
#[test]
fn diagonal_programs_round_trip_and_bad_layouts_are_refused() {
    for name in ["mlp", "ae1"] {
        let program = diagonal(&model(name));
        let back = file::decode(&file::encode(&program).unwrap()).unwrap();
        assert!(back == program, "{name} changed in a round trip");
    }
    let mut v2 = message(&small());
    v2.format_version = 2;
    assert!(file::decode(&v2.encode_to_vec()).is_ok());

    let good = message(&diagonal(&model("mlp")));
    let mut cases: Vec<(&str, pb::ProgramFile)> = Vec::new();
    let mut m = good.clone();
    m.format_version = 2;
    cases.push(("slot layout", m));
    let mut m = good.clone();
    m.layout.as_mut().unwrap().slots = None;
    cases.push(("without a slot layout", m));
    let mut m = good.clone();
    slots_of(&mut m).block = 3;
    cases.push(("a block of 3 slots", m));
    let mut m = good.clone();
    let s = slots_of(&mut m);
    s.input_slot[1] = s.input_slot[0];
    s.input_ct[1] = s.input_ct[0];
    cases.push(("a slot taken twice", m));
    let mut m = good.clone();
    let s = slots_of(&mut m);
    s.output_slot[0] = s.block;
    cases.push(("an output element at", m));
    let mut m = good.clone();
    m.layout
        .as_mut()
        .unwrap()
        .slots
        .as_mut()
        .unwrap()
        .input_ct
        .pop();
    cases.push(("places 783 input features", m));
    let mut m = good.clone();
    let w = m.weights.as_mut().unwrap();
    let at = w.vector_value.len() - 1;
    w.vector_value[at] = f64::INFINITY;
    cases.push(("values finite", m));
    let mut m = good.clone();
    let w = m.weights.as_mut().unwrap();
    let first = w.vector_count.iter().position(|&c| c > 1).unwrap();
    let start: usize = w.vector_count[..first].iter().map(|&c| c as usize).sum();
    w.vector_slot.swap(start, start + 1);
    cases.push(("slots ascending", m));
    let mut m = good.clone();
    m.weights.as_mut().unwrap().vector_count[0] += 1;
    cases.push(("do not add up", m));
    let mut m = good.clone();
    m.weights.as_mut().unwrap().is_vector.pop();
    cases.push(("vector columns differ", m));
    let mut m = message(&small());
    let w = m.weights.as_mut().unwrap();
    w.is_vector = vec![true; w.value.len()];
    cases.push(("vector weights in a batch-packed program", m));
    for (want, m) in cases {
        let got = refused(&m);
        assert!(got.contains(want), "expected {want:?} in {got:?}");
    }
}

/// Tile programs keep their interleaved layout (stride 1, replicas) and
/// store a weight once for all its samples (a run of slots); partial sums
/// in output slots are refused; version 3 files cannot say "tile", and
/// replicas that collide, leave the ciphertext, skip the place itself or
/// outnumber the slots, and runs that are empty, overlap, miscount or come
/// in a version 4 file are refused by name.
#[test]
fn tile_programs_round_trip_and_bad_layouts_are_refused() {
    let tile = |g: &Graph| {
        hepack_backend::tile::TilePacking {
            shape: "16x8".parse().unwrap(),
        }
        .lower(g, &OpTimes::default())
        .unwrap()
        .0
    };
    for name in ["mlp", "ae1"] {
        let program = tile(&model(name));
        let back = file::decode(&file::encode(&program).unwrap()).unwrap();
        assert!(back == program, "{name} changed in a round trip");
        let l = back.slots.as_ref().unwrap();
        assert_eq!((l.sample_stride, l.input_replicas.len()), (1, 8));
    }
    let good = message(&tile(&model("mlp")));
    let mut cases: Vec<(&str, pb::ProgramFile)> = Vec::new();
    let mut m = good.clone();
    m.format_version = 3;
    cases.push(("a version 3 file", m));
    let mut m = good.clone();
    // 32 samples interleaved: with a stride of 32, sample 1 of every input
    // feature lands on its own second replica.
    m.layout
        .as_mut()
        .unwrap()
        .slots
        .as_mut()
        .unwrap()
        .sample_stride = 32;
    cases.push(("a slot taken twice", m));
    let mut m = good.clone();
    let s = slots_of(&mut m);
    *s.input_replica.last_mut().unwrap() = s.slots;
    cases.push(("an input feature at", m));
    let mut m = good.clone();
    let s = slots_of(&mut m);
    s.output_replica.push(1);
    cases.push(("an output element at", m));
    let mut m = good.clone();
    let s = slots_of(&mut m);
    s.input_replica.reverse();
    cases.push(("the first copy must be at offset 0", m));
    // A copy at every slot: refused by counting, before any slot is visited.
    let mut m = good.clone();
    let s = slots_of(&mut m);
    s.output_replica = (0..s.slots).collect();
    cases.push(("more places than slots", m));
    let mut m = good.clone();
    m.layout
        .as_mut()
        .unwrap()
        .slots
        .as_mut()
        .unwrap()
        .output_garbage = true;
    cases.push(("partial sums", m));
    // Runs of equal weights: each sample's copy of a tile's weight.
    let w = good.weights.as_ref().unwrap();
    let (entries, filled) = (
        w.vector_run.len(),
        w.vector_run.iter().sum::<u32>() as usize,
    );
    let per = good.layout.as_ref().unwrap().slots.as_ref().unwrap().slots
        / good.layout.as_ref().unwrap().slots.as_ref().unwrap().block;
    assert!(
        entries * per as usize <= filled,
        "{entries} entries fill {filled} slots"
    );
    let long = w.vector_run.iter().position(|&r| r > 1).unwrap();
    let mut m = good.clone();
    m.weights.as_mut().unwrap().vector_run[long] = 0;
    cases.push(("0 slots from", m));
    let mut m = good.clone();
    m.weights.as_mut().unwrap().vector_run[long] += 1 << 20;
    cases.push(("runs of slots ascending and apart", m));
    let mut m = good.clone();
    m.weights.as_mut().unwrap().vector_run.pop();
    cases.push(("vector runs for", m));
    let mut m = good.clone();
    m.format_version = 4;
    cases.push(("vector runs in a file older than version 5", m));
    for (want, m) in cases {
        let got = refused(&m);
        assert!(got.contains(want), "expected {want:?} in {got:?}");
    }
}
