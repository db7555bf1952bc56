//! Decoding ONNX `TensorProto`s (inline or external data) into ndarray constants.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use hepack_ir::shape::MAX_ELEMENTS;
use ndarray::{ArrayD, IxDyn};
use onnx_protobuf::tensor_proto::DataLocation;
use onnx_protobuf::TensorProto;

use crate::error::FrontendError;

/// A constant tensor of the model: floating point values are held as `f64`,
/// integers (shapes, axes, booleans) as `i64`.
#[derive(Clone, Debug, PartialEq)]
pub enum Const {
    /// FLOAT, DOUBLE or FLOAT16 data.
    Float(ArrayD<f64>),
    /// INT64, INT32, INT8, UINT8 or BOOL data.
    Int(ArrayD<i64>),
}

impl Const {
    /// The tensor's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Const::Float(a) => a.shape(),
            Const::Int(a) => a.shape(),
        }
    }

    /// The values as `f64` (integers converted).
    pub fn to_f64(&self) -> ArrayD<f64> {
        match self {
            Const::Float(a) => a.clone(),
            Const::Int(a) => a.mapv(|v| v as f64),
        }
    }

    /// The values as integers, or `None` for floating point data.
    pub fn as_int(&self) -> Option<&ArrayD<i64>> {
        match self {
            Const::Int(a) => Some(a),
            Const::Float(_) => None,
        }
    }
}

// ONNX TensorProto.DataType codes.
const FLOAT: i32 = 1;
const UINT8: i32 = 2;
const INT8: i32 = 3;
const INT32: i32 = 6;
const INT64: i32 = 7;
const BOOL: i32 = 9;
const FLOAT16: i32 = 10;
const DOUBLE: i32 = 11;

/// The name of an ONNX data type code, for error messages.
pub fn dtype_name(code: i32) -> String {
    let name = match code {
        FLOAT => "float32",
        UINT8 => "uint8",
        INT8 => "int8",
        4 => "uint16",
        5 => "int16",
        INT32 => "int32",
        INT64 => "int64",
        8 => "string",
        BOOL => "bool",
        FLOAT16 => "float16",
        DOUBLE => "float64",
        12 => "uint32",
        13 => "uint64",
        16 => "bfloat16",
        _ => return format!("data type #{code}"),
    };
    name.to_string()
}

fn element_size(code: i32) -> Option<usize> {
    match code {
        FLOAT | INT32 => Some(4),
        DOUBLE | INT64 => Some(8),
        FLOAT16 => Some(2),
        UINT8 | INT8 | BOOL => Some(1),
        _ => None,
    }
}

/// Decode a tensor. `base_dir` is the model file's directory, where external data
/// files live; `None` forbids external data (a model given as bytes).
pub fn decode(t: &TensorProto, base_dir: Option<&Path>) -> Result<Const, FrontendError> {
    let err = |message: String| FrontendError::Tensor {
        name: t.name.clone(),
        message,
    };
    let mut dims = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        dims.push(usize::try_from(d).map_err(|_| err(format!("negative dimension {d}")))?);
    }
    let numel = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| {
            err(format!(
                "shape {dims:?} has more than {MAX_ELEMENTS} elements"
            ))
        })?;
    let size = element_size(t.data_type).ok_or_else(|| {
        err(format!(
            "{} data is not supported (use float32/float64 weights, int64 shapes)",
            dtype_name(t.data_type)
        ))
    })?;
    if t.segment.is_some() {
        return Err(err("segmented tensors are not supported".into()));
    }

    let external;
    let raw: Option<&[u8]> = if t.data_location.enum_value() == Ok(DataLocation::EXTERNAL) {
        external = read_external(t, base_dir, numel * size).map_err(err)?;
        Some(&external)
    } else if !t.raw_data.is_empty() {
        Some(&t.raw_data)
    } else {
        None
    };

    if let Some(raw) = raw {
        if raw.len() != numel * size {
            return Err(err(format!(
                "holds {} bytes of data, but shape {dims:?} of {} needs {}",
                raw.len(),
                dtype_name(t.data_type),
                numel * size
            )));
        }
        let chunks = raw.chunks_exact(size);
        let values = match t.data_type {
            FLOAT => Values::F(
                chunks
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4")) as f64)
                    .collect(),
            ),
            DOUBLE => Values::F(
                chunks
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8")))
                    .collect(),
            ),
            FLOAT16 => Values::F(
                chunks
                    .map(|c| f16_to_f64(u16::from_le_bytes([c[0], c[1]])))
                    .collect(),
            ),
            INT64 => Values::I(
                chunks
                    .map(|c| i64::from_le_bytes(c.try_into().expect("8")))
                    .collect(),
            ),
            INT32 => Values::I(
                chunks
                    .map(|c| i32::from_le_bytes(c.try_into().expect("4")) as i64)
                    .collect(),
            ),
            INT8 => Values::I(chunks.map(|c| c[0] as i8 as i64).collect()),
            _ => Values::I(chunks.map(|c| c[0] as i64).collect()),
        };
        return values.into_const(&dims, &t.name);
    }

    let values = match t.data_type {
        FLOAT => Values::F(t.float_data.iter().map(|&v| v as f64).collect()),
        DOUBLE => Values::F(t.double_data.clone()),
        FLOAT16 => Values::F(t.int32_data.iter().map(|&v| f16_to_f64(v as u16)).collect()),
        INT64 => Values::I(t.int64_data.clone()),
        _ => Values::I(t.int32_data.iter().map(|&v| v as i64).collect()),
    };
    if values.len() != numel {
        return Err(err(format!(
            "holds {} values, but shape {dims:?} needs {numel}",
            values.len()
        )));
    }
    values.into_const(&dims, &t.name)
}

enum Values {
    F(Vec<f64>),
    I(Vec<i64>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::F(v) => v.len(),
            Values::I(v) => v.len(),
        }
    }

    fn into_const(self, dims: &[usize], name: &str) -> Result<Const, FrontendError> {
        let shape = IxDyn(dims);
        Ok(match self {
            Values::F(v) => {
                if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                    return Err(FrontendError::Tensor {
                        name: name.to_string(),
                        message: format!(
                            "value {} at flat index {i} is not finite; hepack cannot compile NaN or infinite weights (retrain or clip the model)",
                            v[i]
                        ),
                    });
                }
                Const::Float(ArrayD::from_shape_vec(shape, v).expect("length checked"))
            }
            Values::I(v) => Const::Int(ArrayD::from_shape_vec(shape, v).expect("length checked")),
        })
    }
}

/// Read a tensor's bytes from its external data file, checking the location stays
/// inside the model's directory and the byte range lies inside the file.
fn read_external(
    t: &TensorProto,
    base_dir: Option<&Path>,
    expected: usize,
) -> Result<Vec<u8>, String> {
    let base_dir = base_dir.ok_or("external data needs the model to be loaded from a file")?;
    let (mut location, mut offset, mut length) = (None, 0u64, None);
    for entry in &t.external_data {
        let parse = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("external data {} '{v}' is not a number", entry.key))
        };
        match entry.key.as_str() {
            "location" => location = Some(entry.value.clone()),
            "offset" => offset = parse(&entry.value)?,
            "length" => length = Some(parse(&entry.value)?),
            _ => {}
        }
    }
    let location = location.ok_or("external data has no 'location'")?;
    let rel = Path::new(&location);
    if !rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "external data location '{location}' must be a relative path inside the model's directory"
        ));
    }
    // Symlinks may point anywhere: the file they resolve to must still lie
    // inside the model's directory, and be a regular file.
    let outside =
        || format!("external data location '{location}' resolves outside the model's directory");
    let joined = base_dir.join(rel);
    let cannot = |e: std::io::Error| format!("cannot open external data {}: {e}", joined.display());
    let root = base_dir.canonicalize().map_err(cannot)?;
    let path = joined.canonicalize().map_err(cannot)?;
    if !path.starts_with(&root) {
        return Err(outside());
    }
    let (mut file, file_len) = crate::input::open_regular(&path).map_err(cannot)?;
    let length = length.unwrap_or(expected as u64);
    if length != expected as u64 {
        return Err(format!(
            "external data length {length} does not match the {expected} bytes its shape needs"
        ));
    }
    if offset.checked_add(length).is_none_or(|end| end > file_len) {
        return Err(format!(
            "external data range {offset}..+{length} lies outside {} ({file_len} bytes)",
            path.display()
        ));
    }
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; expected];
    file.read_exact(&mut buf)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    Ok(buf)
}

/// IEEE 754 half precision to f64.
fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((bits >> 10) & 0x1f) as i32;
    let frac = (bits & 0x3ff) as f64;
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        _ => sign * (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(dims: &[i64], data_type: i32) -> TensorProto {
        TensorProto {
            name: "t".into(),
            dims: dims.to_vec(),
            data_type,
            ..Default::default()
        }
    }

    #[test]
    fn raw_float_data_decodes() {
        let mut t = tensor(&[2], FLOAT);
        t.raw_data = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            decode(&t, None).unwrap(),
            Const::Float(ndarray::arr1(&[1.5, -2.0]).into_dyn())
        );
    }

    #[test]
    fn wrong_byte_count_is_an_error_not_a_panic() {
        let mut t = tensor(&[3], FLOAT);
        t.raw_data = vec![0; 8];
        let e = decode(&t, None).unwrap_err().to_string();
        assert!(e.contains("holds 8 bytes") && e.contains("needs 12"), "{e}");
    }

    #[test]
    fn huge_shapes_are_refused_before_allocating() {
        let t = tensor(&[1 << 20, 1 << 20], FLOAT);
        assert!(decode(&t, None)
            .unwrap_err()
            .to_string()
            .contains("more than"));
    }

    #[test]
    fn nan_weights_are_refused() {
        let mut t = tensor(&[2], FLOAT);
        t.float_data = vec![1.0, f32::NAN];
        let e = decode(&t, None).unwrap_err().to_string();
        assert!(
            e.contains("flat index 1") && e.contains("not finite"),
            "{e}"
        );
    }

    #[test]
    fn external_data_cannot_escape_the_model_directory() {
        let mut t = tensor(&[1], FLOAT);
        t.data_location = DataLocation::EXTERNAL.into();
        t.external_data.push(onnx_protobuf::StringStringEntryProto {
            key: "location".into(),
            value: "../secret".into(),
            ..Default::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let e = decode(&t, Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("must be a relative path"), "{e}");
    }

    #[test]
    fn half_precision_converts() {
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0xc000), -2.0);
        assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24));
    }
}
