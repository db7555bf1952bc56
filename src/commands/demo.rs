//! `hepack demo`: the whole flow on data bundled in the binary. The bundled
//! LeNet-5 was made HE-friendly and pruned to 90 % layer sparsity by
//! fine-tuning (`hepack tune`, see examples/models/README.md); the demo
//! compiles it at 128-bit security (scales sized on 500 bundled training
//! digits) and runs it encrypted on bundled MNIST test digits; accuracy,
//! latency, throughput, HE-op counts and memory are printed.

use std::io::Cursor;

use anyhow::{Context, Result};
use hepack_backend::{Lowering, OpTimes, ParamRequest};
use hepack_passes::prune::{BatchPacking, Block};
use hepack_passes::{pipeline, PassOptions};
use hepack_runtime::executor::Options;
use ndarray::{ArrayD, Axis};
use ndarray_npy::ReadNpyExt;

const LENET5: &[u8] = include_bytes!("../../examples/models/lenet5_tuned.onnx");
const TEST_X: &[u8] = include_bytes!("../../examples/data/demo_test_x.npy");
const TEST_Y: &[u8] = include_bytes!("../../examples/data/demo_test_y.npy");
const CALIB_X: &[u8] = include_bytes!("../../examples/data/demo_calib_x.npy");

fn pixels(bytes: &[u8]) -> Result<ArrayD<f64>> {
    let a = ArrayD::<u8>::read_npy(Cursor::new(bytes)).context("bundled digits")?;
    Ok(a.mapv(|p| f64::from(p) / 255.0))
}

pub fn run(samples: usize, options: &Options, json: bool) -> Result<()> {
    let x = pixels(TEST_X)?;
    let samples = samples.clamp(1, x.shape()[0]);
    let x = x.slice_axis(Axis(0), (0..samples).into()).to_owned();
    let labels: Vec<i64> = ndarray::Array1::<u8>::read_npy(Cursor::new(TEST_Y))
        .context("bundled labels")?
        .iter()
        .take(samples)
        .map(|&l| i64::from(l))
        .collect();
    let calib = pixels(CALIB_X)?;

    eprintln!(
        "compiling the bundled LeNet-5 (fine-tuned: poly:2 activations, 90% of filters pruned; 128-bit parameters)…"
    );
    let mut g = hepack_frontend::Loader::default()
        .load_bytes(LENET5, None, "bundled lenet5_tuned.onnx")?
        .graph;
    // Already HE-friendly: the pipeline only folds and fuses, and checks.
    pipeline("he-friendly", &PassOptions::default())?.run(&mut g, |_, _| {})?;
    let packing = BatchPacking {
        block: Block::Column,
    };
    let request = ParamRequest {
        max_value: Some(2.0 * hepack_ir::interp::max_abs(&g, calib.view())?),
        ..ParamRequest::default()
    };
    let (program, cost) = packing.compile(&g, &OpTimes::default(), &request)?;
    let p = &program.params;
    eprintln!(
        "program: {} HE ops, depth {}, N = {}, chain {:?}, 128-bit security; predicted peak {} ciphertexts ({})",
        cost.he_ops,
        cost.depth,
        p.degree,
        p.chain_bits,
        cost.peak_ciphertexts.unwrap_or(0),
        super::he_report::gib(cost.peak_bytes.unwrap_or(0))
    );
    eprintln!("keys, encryption of {samples} digits, encrypted run, decryption…");
    let (y, mut report) = super::infer::infer_with_bar(&program, &x, options)?;
    let correct = hepack_ir::interp::count_correct(&y[0], &labels);
    report.accuracy = Some(correct as f64 / samples as f64);
    report.correct = Some(correct);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", super::infer::text(&report, &program));
        println!(
            "latency {:.1} s for one encrypted batch; throughput {:.2} digits/s (a batch holds up to {} digits at the same cost)",
            report.run.wall_seconds + report.encrypt_seconds + report.decrypt_seconds,
            samples as f64 / report.run.wall_seconds,
            p.slots()
        );
    }
    Ok(())
}
