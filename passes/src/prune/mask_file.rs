//! The mask file: keep masks per layer as JSON, so masks found here can drive
//! fine-tuning elsewhere and masks learnt elsewhere can be applied here.
//!
//! ```json
//! {
//!   "format": "hepack-masks",
//!   "version": 1,
//!   "layers": {
//!     "/0/Conv": { "shape": [25, 6], "keep": [[1, 0, 1, 1, 0, 1], ...] }
//!   }
//! }
//! ```
//!
//! Each mask is W̄'s shape `M × F` (rows: inputs, a conv's `(channel, ky, kx)`
//! row-major; columns: filters/neurons), `1` keeps a weight and `0` prunes it.
//! From a PyTorch mask `m` of a `Conv2d` (`[F, C, KH, KW]`) or `Linear`
//! (`[F, M]`) weight, W̄'s mask is `m.reshape(F, -1).T`. Layers not listed keep
//! all their weights. The format is documented in `docs/masks.md`.

use std::collections::BTreeMap;

use ndarray::Array2;
use serde::Deserialize;

use super::Masks;
use crate::error::PassError;

/// The `format` field's value.
pub const FORMAT: &str = "hepack-masks";
/// The version this build reads and writes.
pub const VERSION: u32 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: String,
    version: u32,
    layers: BTreeMap<String, LayerMask>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerMask {
    shape: [usize; 2],
    keep: Vec<Vec<u8>>,
}

/// Serialise masks to the JSON mask file format, one mask row per line so
/// large files stay readable and diffable.
pub fn to_json(masks: &Masks) -> String {
    let mut out =
        format!("{{\n  \"format\": \"{FORMAT}\",\n  \"version\": {VERSION},\n  \"layers\": {{");
    for (i, (name, m)) in masks.iter().enumerate() {
        let name = serde_json::to_string(name).expect("strings serialise");
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        out.push_str(&format!(
            "    {name}: {{\n      \"shape\": [{}, {}],\n      \"keep\": [",
            m.nrows(),
            m.ncols()
        ));
        for (r, row) in m.rows().into_iter().enumerate() {
            let cells: Vec<&str> = row.iter().map(|&k| if k { "1" } else { "0" }).collect();
            out.push_str(if r == 0 {
                "\n        ["
            } else {
                ",\n        ["
            });
            out.push_str(&cells.join(","));
            out.push(']');
        }
        out.push_str("\n      ]\n    }");
    }
    out.push_str("\n  }\n}\n");
    out
}

/// Parse a mask file; `source` names it in errors.
pub fn from_json(text: &str, source: &str) -> Result<Masks, PassError> {
    let bad = |why: String| PassError::Prune(format!("mask file {source}: {why}"));
    let file: File = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    if file.format != FORMAT {
        return Err(bad(format!(
            "format is '{}', expected '{FORMAT}'",
            file.format
        )));
    }
    if file.version != VERSION {
        return Err(bad(format!(
            "version {} is not supported (this hepack reads version {VERSION})",
            file.version
        )));
    }
    let mut masks = Masks::new();
    for (name, layer) in file.layers {
        let [rows, cols] = layer.shape;
        if layer.keep.len() != rows {
            return Err(bad(format!(
                "layer '{name}': shape says {rows} rows but 'keep' has {}",
                layer.keep.len()
            )));
        }
        let mut mask = Array2::from_elem((rows, cols), true);
        for (r, row) in layer.keep.iter().enumerate() {
            if row.len() != cols {
                return Err(bad(format!(
                    "layer '{name}': row {r} has {} entries, shape says {cols}",
                    row.len()
                )));
            }
            for (c, &v) in row.iter().enumerate() {
                mask[[r, c]] = match v {
                    0 => false,
                    1 => true,
                    _ => {
                        return Err(bad(format!(
                            "layer '{name}': entry [{r}][{c}] is {v}; entries are 0 (prune) or 1 (keep)"
                        )))
                    }
                };
            }
        }
        masks.insert(name, mask);
    }
    Ok(masks)
}
