//! Reading and writing `.npy` tensors at the CLI edge.

use std::io::Cursor;
use std::path::Path;

use anyhow::{bail, Context, Result};
use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};

/// Read a float32 or float64 array as f64.
pub fn read_floats(path: &Path) -> Result<ArrayD<f64>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if let Ok(a) = ArrayD::<f64>::read_npy(Cursor::new(&bytes)) {
        return Ok(a);
    }
    match ArrayD::<f32>::read_npy(Cursor::new(&bytes)) {
        Ok(a) => Ok(a.mapv(f64::from)),
        Err(e) => bail!(
            "{} is not a float32/float64 .npy array in C order ({e})",
            path.display()
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
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
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

/// Write an f64 array atomically (temporary file, then rename).
pub fn write_f64(path: &Path, array: &ArrayD<f64>) -> Result<()> {
    let mut bytes = Vec::new();
    array
        .write_npy(&mut bytes)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    crate::output::write_atomic(path, &bytes)
}
