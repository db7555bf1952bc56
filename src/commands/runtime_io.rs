//! What the encrypted-inference commands share: key and ciphertext files on
//! disk, the op times behind predictions, the progress bar and the run report.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hepack_backend::{OpTimes, Program};
use hepack_runtime::calibrate::Calibration;
use hepack_runtime::ciphertexts::{Ciphertexts, Role};
use hepack_runtime::executor::Report;
use hepack_runtime::keys::ClientKey;
use hepack_runtime::keys::{self, EvalKeys};
use hepack_runtime::seal::Context as SealContext;
use indicatif::{ProgressBar, ProgressStyle};

/// The secret key's file name in a key directory.
pub const SECRET_FILE: &str = "secret.key";
/// The evaluation keys' file name in a key directory.
pub const EVAL_FILE: &str = "eval.keys";

/// Largest key or ciphertext file read (Galois keys for many rotations and
/// a full batch of inputs reach gigabytes; this bounds what a hostile path,
/// such as `/dev/zero` behind a symlink, can make a command read).
pub const MAX_FILE_BYTES: u64 = 16 << 30;

/// Read a whole regular file, naming it and what it should be in the error.
pub fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    hepack_frontend::input::read_regular(path, MAX_FILE_BYTES)
        .with_context(|| format!("cannot read {what} {}", path.display()))
}

/// The client's secret key from `KEYS/secret.key`.
pub fn read_secret(context: &SealContext, program: &Program, dir: &Path) -> Result<ClientKey> {
    let path = dir.join(SECRET_FILE);
    let bytes = read(&path, "the secret key")?;
    keys::read_secret(context, &program.params, &bytes)
        .with_context(|| format!("cannot load {}", path.display()))
}

/// The server's evaluation keys.
pub fn read_eval(context: &SealContext, program: &Program, path: &Path) -> Result<EvalKeys> {
    let bytes = read(path, "the evaluation keys")?;
    keys::read_eval(context, program, &bytes)
        .with_context(|| format!("cannot load {}", path.display()))
}

/// A ciphertext file of `role`.
pub fn read_ciphertexts(
    context: &SealContext,
    program: &Program,
    role: Role,
    path: &Path,
) -> Result<Ciphertexts> {
    let bytes = read(path, "the ciphertext file")?;
    Ciphertexts::read(context, program, role, &bytes)
        .with_context(|| format!("cannot load {}", path.display()))
}

/// Where `hepack calibrate` stores op times: `$HEPACK_OP_TIMES`, else
/// `$XDG_CACHE_HOME/hepack/op_times.json` (`~/.cache/...`).
pub fn calibration_path() -> PathBuf {
    if let Some(p) = std::env::var_os("HEPACK_OP_TIMES") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("hepack/op_times.json")
}

/// Op times for `program`: calibrated on this machine for its N and levels
/// when `hepack calibrate` measured them, else the DESIGN.md table. A
/// calibration file that cannot be read (an unreadable cache directory, a
/// damaged file) only costs the predictions their precision: it is reported
/// and the defaults are used.
pub fn op_times(program: &Program) -> Result<OpTimes> {
    Ok(calibrated_op_times(program).unwrap_or_default())
}

/// Op times calibrated on this machine for `program`'s N and levels, if
/// `hepack calibrate` measured them (an unreadable calibration file is
/// reported and counts as none).
pub fn calibrated_op_times(program: &Program) -> Option<OpTimes> {
    let path = calibration_path();
    let calibration = match Calibration::load(&path) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("ignoring the op-time calibration {}: {e:#}", path.display());
            return None;
        }
    };
    calibration
        .get(&program.params)
        .map(|t| t.op_times_for(program))
}

/// A bar over `total` ops; indicatif draws nothing when stderr is not a terminal.
pub fn progress(total: u64) -> ProgressBar {
    ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} HE ops, {per_sec}, ETA {eta}")
            .expect("valid template"),
    )
}

/// The executor's report as text.
pub fn report_text(report: &Report, program: &Program, samples: usize) -> String {
    let mut out = String::new();
    let per_batch = report.wall_seconds / report.batches.max(1) as f64;
    out.push_str(&format!(
        "ran {} batch(es) of up to {} samples on {} thread(s): {:.2} s wall, {:.2} s per batch, {:.1} samples/s\n",
        report.batches,
        program.samples_per_ct(),
        report.threads,
        report.wall_seconds,
        per_batch,
        samples as f64 / report.wall_seconds.max(1e-9),
    ));
    if let [first, later @ ..] = report.batch_seconds.as_slice() {
        if !later.is_empty() {
            let mut later = later.to_vec();
            later.sort_by(f64::total_cmp);
            out.push_str(&format!(
                "  first batch {first:.2} s (it encodes the weights), later batches {:.2} s median\n",
                later[later.len() / 2]
            ));
        }
    }
    let mut rows = vec![vec![
        "op".to_string(),
        "count".into(),
        "seconds (all threads)".into(),
        "mean ms".into(),
    ]];
    for k in report.ops.iter().filter(|k| k.count > 0) {
        rows.push(vec![
            k.kind.to_string(),
            k.count.to_string(),
            format!("{:.2}", k.seconds),
            format!("{:.3}", 1e3 * k.seconds / k.count as f64),
        ]);
    }
    out.push_str(&super::table(&rows, &[false, true, true, true]));
    let mut rows = vec![vec!["layer".to_string(), "ops".into()]];
    for (layer, n) in &report.layers {
        rows.push(vec![layer.clone(), n.to_string()]);
    }
    out.push_str(&super::table(&rows, &[false, true]));
    out.push_str(&format!(
        "peak {} live ciphertexts ({}), peak resident memory {}\n",
        report.peak_ciphertexts,
        super::he_report::gib(report.peak_ciphertext_bytes),
        report
            .peak_rss_bytes
            .map_or("unknown".into(), super::he_report::gib),
    ));
    out.push_str(&format!(
        "weights: {} encodings, {} served from the cache\n",
        report.plain_encodings, report.plain_cache_hits
    ));
    if report.combinations > 0 {
        out.push_str(&format!(
            "linear combinations: {} kernel calls, folding {} mul_plain and {} add (their time is under add)\n",
            report.combinations, report.fused_products, report.fused_sums
        ));
    }
    if report.combination_groups > 0 {
        out.push_str(&format!(
            "  of which {} grouped into {} kernel calls (each loads its sources once for all its outputs)\n",
            report.grouped_combinations, report.combination_groups
        ));
    }
    if report.hoisted_rotations > 0 {
        out.push_str(&format!(
            "hoisted rotations: {} from {} shared decompositions (their time is under rotate)\n",
            report.hoisted_rotations, report.decompositions
        ));
    }
    out.push_str(&format!(
        "floor ratio {:.2}: single-thread floor {:.1} s / ({} threads × {:.2} s wall); op times: {}\n",
        report.floor_ratio, report.floor_seconds, report.threads, report.wall_seconds, report.op_times_source
    ));
    out.push_str(&format!(
        "against SEAL op by op: {:.2} (its single-thread floor {:.1} s)\n",
        report.seal_floor_ratio, report.seal_floor_seconds
    ));
    out
}
