//! `hepack calibrate`: measure single-thread SEAL op times at every level of
//! a program's parameters and store them where `inspect`, `run` and `infer`
//! read them.

use std::path::Path;

use anyhow::{bail, Result};
use hepack_backend::params::{select, ParamRequest};
use hepack_runtime::calibrate::{measure, Calibration, LevelTimes};

use super::runtime_io::calibration_path;
use crate::output::write_atomic_with;

pub fn run(
    program: Option<&Path>,
    degree: Option<u32>,
    levels: Option<u32>,
    reps: usize,
    json: bool,
) -> Result<()> {
    let params = match (program, degree, levels) {
        (Some(path), None, None) => super::load_program(path)?.params,
        (None, Some(n), Some(l)) => select(
            l,
            &ParamRequest {
                degree: Some(n),
                ..ParamRequest::default()
            },
        )?,
        _ => bail!("give a program file, or both --poly-degree and --levels"),
    };
    super::he_report::warn_if_insecure(&params);
    let times = measure(&params, reps)?;
    let path = calibration_path();
    let mut calibration = Calibration::load(&path)?;
    calibration.entries.insert(
        LevelTimes::key(params.degree, params.levels()),
        times.clone(),
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(&calibration)?;
    write_atomic_with(&path, false, |w| {
        Ok(std::io::Write::write_all(w, text.as_bytes())?)
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&times)?);
        return Ok(());
    }
    println!(
        "SEAL op times, one thread, N = {}, {} levels (median of {reps}), ms by level (top first):",
        params.degree,
        params.levels()
    );
    let mut rows = vec![std::iter::once("op".to_string())
        .chain((0..=params.levels()).map(|d| format!("L{}", params.levels() - d)))
        .collect::<Vec<_>>()];
    for (kind, per_level) in &times.seconds {
        if per_level.iter().all(|&t| t == 0.0) {
            continue;
        }
        rows.push(
            std::iter::once(kind.clone())
                .chain(per_level.iter().map(|t| format!("{:.3}", t * 1e3)))
                .collect(),
        );
    }
    // hepack's own ops: the weight encodings inside add_plain/mul_plain,
    // the linear combination kernels per call and per term, and hoisted
    // rotations.
    for (name, per_level) in [
        ("encode_scalar", &times.encode_scalar),
        ("encode_vector", &times.encode_vector),
        ("combination (call)", &times.combination),
        ("combination (term)", &times.combination_term),
        (
            "combination (term, group of 8)",
            &times.combination_term_grouped,
        ),
        ("weighted sum (term, by a diagonal)", &times.weighted_term),
        ("decompose", &times.decompose),
        ("hoisted rotate", &times.hoisted_rotate),
    ] {
        if per_level.is_empty() {
            continue;
        }
        rows.push(
            std::iter::once(name.to_string())
                .chain(per_level.iter().map(|t| format!("{:.3}", t * 1e3)))
                .collect(),
        );
    }
    let right: Vec<bool> = (0..rows[0].len()).map(|i| i > 0).collect();
    print!("{}", super::table(&rows, &right));
    println!("stored in {}", path.display());
    Ok(())
}
