//! Arrays across the boundary: Python sends C-ordered float64 bytes and a
//! shape (`np.ascontiguousarray(x, np.float64)`), and gets the same back.

use ndarray::ArrayD;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{message, Kind};

/// A float64 array from its bytes and shape.
pub fn array(data: &[u8], shape: Vec<usize>, what: &str) -> PyResult<ArrayD<f64>> {
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| message(Kind::Input, format!("{what}: shape {shape:?} is too large")))?;
    if count.checked_mul(8) != Some(data.len()) {
        return Err(message(
            Kind::Input,
            format!(
                "{what}: {} bytes do not hold a float64 array of shape {shape:?}",
                data.len()
            ),
        ));
    }
    let values: Vec<f64> = data
        .chunks_exact(8)
        .map(|c| f64::from_ne_bytes(c.try_into().expect("chunks of 8")))
        .collect();
    ArrayD::from_shape_vec(shape, values).map_err(|e| message(Kind::Input, format!("{what}: {e}")))
}

/// An array as (float64 bytes, shape), C order.
pub fn to_python<'py>(py: Python<'py>, a: &ArrayD<f64>) -> (Bound<'py, PyBytes>, Vec<usize>) {
    let mut bytes = Vec::with_capacity(a.len() * 8);
    for v in a.iter() {
        bytes.extend_from_slice(&v.to_ne_bytes());
    }
    (PyBytes::new(py, &bytes), a.shape().to_vec())
}

/// A named output as Python gets it: (name, float64 bytes, shape).
pub type Output<'py> = (String, Bound<'py, PyBytes>, Vec<usize>);

/// Named outputs as a list of (name, bytes, shape).
pub fn outputs<'py>(py: Python<'py>, names: &[String], ys: &[ArrayD<f64>]) -> Vec<Output<'py>> {
    names
        .iter()
        .zip(ys)
        .map(|(n, y)| {
            let (b, s) = to_python(py, y);
            (n.clone(), b, s)
        })
        .collect()
}
