//! Reading and writing `.npy` tensors at the CLI edge.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};

/// Largest `.npy` file read.
const MAX_NPY_BYTES: u64 = 16 << 30;

/// The bytes of a `.npy` file whose header's shape and dtype fit its size:
/// a 192-byte file claiming a 26 GB array is refused before anything is
/// allocated for it.
fn read_npy_bytes(path: &Path) -> Result<Vec<u8>> {
    let bytes = hepack_frontend::input::read_regular(path, MAX_NPY_BYTES)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let (header_end, data) = npy_data_bytes(&bytes)
        .map_err(|why| anyhow::anyhow!("{} is not a valid .npy file: {why}", path.display()))?;
    let held = bytes.len() - header_end;
    if data != held as u128 {
        bail!(
            "{}: its header describes {data} bytes of data, but the file holds {held}",
            path.display()
        );
    }
    Ok(bytes)
}

/// Where the data of a `.npy` file starts and how many bytes its header's
/// shape and dtype imply.
fn npy_data_bytes(bytes: &[u8]) -> Result<(usize, u128), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("it does not start with the .npy magic".into());
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize,
            12,
        ),
        v => return Err(format!("format version {v}")),
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or("the header runs past the end of the file")?;
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| "the header is not text")?;
    // A key named twice would let this check read one shape while the
    // parser (which keeps the last) allocates another: each key once.
    let item = |key: &str| -> Result<&str, String> {
        let mut at = header.match_indices(key);
        let (Some((i, _)), None) = (at.next(), at.next()) else {
            return Err(format!("the header must name {key} exactly once"));
        };
        let quoted =
            header[..i].ends_with(['\'', '"']) && header[i + key.len()..].starts_with(['\'', '"']);
        header[i + key.len() + 1..]
            .trim_start()
            .strip_prefix(':')
            .filter(|_| quoted)
            .map(str::trim_start)
            .ok_or_else(|| format!("the header's {key} is not a key"))
    };
    let descr = item("descr")?.trim_start_matches(['\'', '"']);
    if !matches!(descr.as_bytes().get(1), Some(b'f' | b'i' | b'u' | b'b')) {
        return Err(format!(
            "dtype {:?} (hepack reads float32/float64 arrays and integer labels)",
            descr.split(['\'', '"']).next().unwrap_or_default()
        ));
    }
    let size: u128 = descr
        .get(2..)
        .and_then(|s| s.split(['\'', '"']).next())
        .and_then(|s| s.parse().ok())
        .ok_or("the header's descr has no item size")?;
    let shape = item("shape")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or("the header's shape is not a tuple")?;
    let mut count: u128 = 1;
    for d in inner.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let d: u128 = d.parse().map_err(|_| format!("shape entry {d:?}"))?;
        count = count.saturating_mul(d);
    }
    Ok((end, count.saturating_mul(size)))
}

/// The first line of a parser's error: ndarray-npy's carry a caret diagram.
fn one_line(e: impl std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// Read a float32 or float64 array as f64.
pub fn read_floats(path: &Path) -> Result<ArrayD<f64>> {
    let bytes = read_npy_bytes(path)?;
    if let Ok(a) = ArrayD::<f64>::read_npy(Cursor::new(&bytes)) {
        return Ok(a);
    }
    match ArrayD::<f32>::read_npy(Cursor::new(&bytes)) {
        Ok(a) => Ok(a.mapv(f64::from)),
        Err(e) => bail!(
            "{} is not a float32/float64 .npy array in C order ({})",
            path.display(),
            one_line(e)
        ),
    }
}

/// Read a batch (`[N, ...]` floats) and refuse one without samples.
pub fn read_batch(path: &Path) -> Result<ArrayD<f64>> {
    let x = read_floats(path)?;
    if x.ndim() == 0 || x.shape()[0] == 0 {
        bail!("{} holds no samples", path.display());
    }
    Ok(x)
}

/// Labels: integer class ids, or floats (reconstruction targets).
pub enum Labels {
    /// One class id per sample.
    Classes(Vec<i64>),
    /// Expected output values.
    Values(ArrayD<f64>),
}

/// Read labels: int64/int32/uint8 class ids, or float32/float64 targets.
pub fn read_labels(path: &Path) -> Result<Labels> {
    let bytes = read_npy_bytes(path)?;
    let ids = ArrayD::<i64>::read_npy(Cursor::new(&bytes))
        .or_else(|_| ArrayD::<i32>::read_npy(Cursor::new(&bytes)).map(|a| a.mapv(i64::from)))
        .or_else(|_| ArrayD::<u8>::read_npy(Cursor::new(&bytes)).map(|a| a.mapv(i64::from)));
    if let Ok(ids) = ids {
        if ids.ndim() != 1 {
            bail!(
                "{}: integer labels must be one class id per sample, shape [N], got {:?}",
                path.display(),
                ids.shape()
            );
        }
        return Ok(Labels::Classes(ids.iter().copied().collect()));
    }
    read_floats(path).map(Labels::Values).with_context(|| {
        format!(
            "{}: labels must be integer class ids or floats",
            path.display()
        )
    })
}

/// Write an f64 array atomically (temporary file, then rename); `private`
/// makes it 0600 (decrypted data), else it gets the umask's mode.
pub fn write_f64(path: &Path, array: &ArrayD<f64>, private: bool) -> Result<()> {
    let mut bytes = Vec::new();
    array
        .write_npy(&mut bytes)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    crate::output::write_atomic_with(path, private, |w| Ok(std::io::Write::write_all(w, &bytes)?))
}

/// Where output `name` of a model with several outputs is written, for
/// `--output PATH`: `PATH`'s stem, a dot, the name (characters a file name
/// should not hold become `_`), `.npy`. `y.npy` and output `boxes` give
/// `y.boxes.npy`.
pub fn output_path(path: &Path, name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' | '.' => c,
            _ => '_',
        })
        .collect();
    let stem = path
        .file_stem()
        .map_or_else(|| "output".into(), |s| s.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}.{safe}.npy"))
}

/// Where `--output PATH` writes each of the outputs `names`: `PATH` for a
/// model with one, else each output's [`output_path`].
pub fn output_paths(path: &Path, names: &[String]) -> Vec<PathBuf> {
    match names {
        [_] => vec![path.to_path_buf()],
        _ => names.iter().map(|n| output_path(path, n)).collect(),
    }
}

/// Refuse `--output PATH` if any of the files it would write for the
/// outputs `names` is one of `inputs` (see [`crate::output::refuse_overwriting`]).
pub fn refuse_overwriting_outputs(path: &Path, names: &[String], inputs: &[&Path]) -> Result<()> {
    for p in output_paths(path, names) {
        crate::output::refuse_overwriting(&p, inputs)?;
    }
    Ok(())
}

/// Write a model's outputs for `--output PATH`: the only output to `PATH`,
/// several each to its [`output_path`]; `private` as for [`write_f64`].
/// Returns the paths written.
pub fn write_outputs(
    path: &Path,
    names: &[String],
    ys: &[ArrayD<f64>],
    private: bool,
) -> Result<Vec<PathBuf>> {
    let paths = output_paths(path, names);
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = paths.iter().find(|p| !seen.insert(*p)) {
        bail!(
            "two outputs would both be written to {}; rename one in the model",
            twice.display()
        );
    }
    for (p, y) in paths.iter().zip(ys) {
        write_f64(p, y, private)?;
    }
    Ok(paths)
}
