//! `hepack infer`: keys, encryption, the encrypted run and decryption in one
//! process, for demos and checks; prints accuracy (or MSE) with labels.

use std::path::Path;

use anyhow::Result;
use hepack_backend::Program;
use hepack_runtime::executor::{self, Options, Report};
use ndarray::ArrayD;
use serde::Serialize;

use super::runtime_io::{op_times, progress, report_text};

/// What `infer` prints with `--json`.
#[derive(Serialize)]
pub struct InferReport {
    /// Samples run.
    pub samples: usize,
    /// Seconds for key generation, encryption, the run and decryption.
    pub keygen_seconds: f64,
    /// Client encryption.
    pub encrypt_seconds: f64,
    /// Client decryption.
    pub decrypt_seconds: f64,
    /// The server run.
    pub run: Report,
    /// Largest |encrypted − plaintext| over all outputs; the plaintext is
    /// the program simulated in f64.
    pub max_abs_error: f64,
    /// Fraction of samples whose encrypted and plaintext argmax agree (on
    /// the first output, the one labels score).
    pub argmax_agreement: f64,
    /// Fraction correct, with class labels.
    pub accuracy: Option<f64>,
    /// Number correct, with class labels.
    pub correct: Option<usize>,
    /// Mean squared error, with value labels.
    pub mse: Option<f64>,
    /// The process's peak resident memory when everything above was done
    /// (the run's own peak, in `run`, leaves out the plaintext check).
    pub peak_rss_bytes: Option<u64>,
}

/// Runs `x` encrypted through `program`; returns the decrypted outputs, one
/// tensor per model output. `progress` gets the server's ops done so far
/// and their total.
pub fn infer(
    program: &Program,
    x: &ArrayD<f64>,
    options: &Options,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<(Vec<ArrayD<f64>>, InferReport)> {
    let t = std::time::Instant::now();
    let context = hepack_runtime::keys::context(&program.params)?;
    let (secret, eval) = hepack_runtime::keys::generate(&context, program)?;
    let keygen_seconds = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let inputs = hepack_runtime::client::encrypt(&context, program, &secret, x.view(), false)?;
    let encrypt_seconds = t.elapsed().as_secs_f64();
    let times = op_times(program)?;
    let total = (inputs.batches.len() * program.instrs.len()) as u64;
    let (outputs, run) = executor::run(&context, program, &eval, inputs, options, &times, &|n| {
        progress(n, total)
    })?;
    let t = std::time::Instant::now();
    let ys = hepack_runtime::client::decrypt(&context, program, &secret, &outputs)?;
    let decrypt_seconds = t.elapsed().as_secs_f64();
    let plains = hepack_backend::simulate::simulate_outputs(program, x.view())?;
    let max_abs_error = plains
        .iter()
        .zip(&ys)
        .flat_map(|(p, y)| p.iter().zip(y))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let samples = x.shape()[0];
    let flat = |a: &ArrayD<f64>| {
        a.to_shape((samples, a.len() / samples))
            .expect("batch-first")
            .to_owned()
    };
    let (p, e) = (flat(&plains[0]), flat(&ys[0]));
    let agree = p
        .outer_iter()
        .zip(e.outer_iter())
        .filter(|(a, b)| argmax(a.iter()) == argmax(b.iter()))
        .count();
    Ok((
        ys,
        InferReport {
            samples: x.shape()[0],
            keygen_seconds,
            encrypt_seconds,
            decrypt_seconds,
            run,
            max_abs_error,
            argmax_agreement: agree as f64 / samples as f64,
            accuracy: None,
            correct: None,
            mse: None,
            peak_rss_bytes: hepack_runtime::executor::peak_rss(),
        },
    ))
}

/// [`infer`] with the CLI's progress bar over the server's ops (nothing is
/// drawn when stderr is not a terminal).
pub fn infer_with_bar(
    program: &Program,
    x: &ArrayD<f64>,
    options: &Options,
) -> Result<(Vec<ArrayD<f64>>, InferReport)> {
    let bar = progress(0);
    let result = infer(program, x, options, &|n, total| {
        if bar.length() != Some(total) {
            // The bar starts with the run, after keys and encryption.
            bar.set_length(total);
            bar.reset_elapsed();
        }
        bar.set_position(n)
    });
    bar.finish_and_clear();
    result
}

/// The report as text.
pub fn text(report: &InferReport, program: &Program) -> String {
    let mut out = format!(
        "client: keys {:.2} s, encryption {:.2} s, decryption {:.2} s\nserver: ",
        report.keygen_seconds, report.encrypt_seconds, report.decrypt_seconds
    );
    out.push_str(&report_text(&report.run, program, report.samples));
    out.push_str(&format!(
        "encrypted vs plaintext: max |error| {:.2e}, argmax agrees on {:.1}% of samples\n",
        report.max_abs_error,
        100.0 * report.argmax_agreement
    ));
    if let Some(b) = report.peak_rss_bytes {
        out.push_str(&format!(
            "process peak resident memory {} (keys, encryption, run, decryption and the plaintext check)\n",
            super::he_report::gib(b)
        ));
    }
    if let (Some(acc), Some(correct)) = (report.accuracy, report.correct) {
        out.push_str(&format!(
            "accuracy: {acc:.4} ({correct}/{})\n",
            report.samples
        ));
    }
    if let Some(mse) = report.mse {
        out.push_str(&format!("mse: {mse:.6}\n"));
    }
    out
}

fn argmax<'a>(row: impl Iterator<Item = &'a f64>) -> usize {
    row.enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

pub fn run(
    program_path: &Path,
    input: &Path,
    labels: Option<&Path>,
    output: Option<&Path>,
    options: &Options,
    json: bool,
    insecure: bool,
) -> Result<()> {
    let program = super::load_program(program_path)?;
    super::he_report::check_client_params(&program.params, insecure)?;
    if let Some(path) = output {
        let mut inputs = vec![program_path, input];
        inputs.extend(labels);
        crate::npy::refuse_overwriting_outputs(path, &program.output_names(), &inputs)?;
    }
    let x = crate::npy::read_batch(input)?;
    let labels = labels.map(crate::npy::read_labels).transpose()?;
    let (ys, mut report) = infer_with_bar(&program, &x, options)?;
    match labels
        .as_ref()
        .map(|l| super::eval::score(&ys[0], l))
        .transpose()?
    {
        Some(super::eval::Score::Accuracy { accuracy, correct }) => {
            report.accuracy = Some(accuracy);
            report.correct = Some(correct);
        }
        Some(super::eval::Score::Mse(mse)) => report.mse = Some(mse),
        None => {}
    }
    let written = match output {
        Some(path) => {
            let names = program.output_names();
            crate::npy::write_outputs(path, &names, &ys, true)?
        }
        None => Vec::new(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report, &program));
        for path in &written {
            println!("outputs written to {}", path.display());
        }
    }
    Ok(())
}
