//! Ops that are fixed affine maps of one sample but have no IR op of their own
//! — `ConvTranspose`, `Resize` (nearest, linear) and `Pad` — read as a dense
//! layer over the flattened sample. The matrix comes from the op's plaintext
//! definition applied to each unit vector, so it is exact, and a zero in it
//! costs no HE operation under batch packing (an upsampling reads one input
//! per output). Pruning then sees output pixels as the layer's units.

use hepack_ir::{Dense, Graph, NodeId, Op, Shape};
use ndarray::{Array1, Array2, Array4, ArrayD, Axis, Ix4, IxDyn};

use super::Ctx;
use crate::error::FrontendError;
use crate::model::Value;

/// The largest dense matrix an affine map becomes (entries; 8 bytes each).
const MAX_ENTRIES: usize = 1 << 25;

impl Ctx<'_> {
    /// Add `f`, an affine map from `[in]` samples to `[out]` samples, as
    /// flatten → dense → reshape.
    fn affine_map(
        &self,
        graph: &mut Graph,
        x: NodeId,
        out: Shape,
        f: impl Fn(&ArrayD<f64>) -> ArrayD<f64>,
    ) -> Result<Value, FrontendError> {
        let input = self.shape_of(graph, x);
        let (n_in, n_out) = (input.numel(), out.numel());
        if n_in.checked_mul(n_out).is_none_or(|n| n > MAX_ENTRIES) {
            return Err(self.err(format!(
                "maps [{input}] to [{out}], {n_in} × {n_out} weights as a dense layer, more than hepack builds ({MAX_ENTRIES})"
            )));
        }
        let zero = ArrayD::zeros(IxDyn(input.dims()));
        let bias: Array1<f64> = f(&zero).iter().copied().collect();
        let mut weight = Array2::zeros((n_in, n_out));
        let mut unit = zero;
        for j in 0..n_in {
            unit.as_slice_mut().expect("standard layout")[j] = 1.0;
            let column = f(&unit);
            for (w, (&y, &b)) in weight.row_mut(j).iter_mut().zip(column.iter().zip(&bias)) {
                *w = y - b;
            }
            unit.as_slice_mut().expect("standard layout")[j] = 0.0;
        }
        let add = |graph: &mut Graph, name: String, op: Op, from: NodeId| {
            graph
                .add(name, op, &[from])
                .map_err(|e| self.err(e.to_string()))
        };
        let flat = if input.rank() == 1 {
            x
        } else {
            add(graph, format!("{}/flatten", self.name), Op::Flatten, x)?
        };
        if out.rank() == 1 {
            return self.add(graph, Op::Dense(Dense { weight, bias }), flat);
        }
        let dense = add(
            graph,
            format!("{}/dense", self.name),
            Op::Dense(Dense { weight, bias }),
            flat,
        )?;
        self.add(graph, Op::Reshape(out), dense)
    }

    /// `ConvTranspose` (1-D or 2-D, grouped): each input pixel adds its
    /// filter, scaled, at stride-spaced positions; pads crop the result.
    pub(super) fn conv_transpose(&self, graph: &mut Graph) -> Result<Value, FrontendError> {
        self.allow(&[
            "auto_pad",
            "dilations",
            "group",
            "kernel_shape",
            "output_padding",
            "pads",
            "strides",
        ])?;
        if self.string("auto_pad")?.is_some_and(|a| a != "NOTSET") {
            return Err(self.err("auto_pad is not supported; export with explicit pads"));
        }
        let x = self.data(0)?;
        let x = self.as_2d(graph, x)?;
        let mut w = self.required_constant(1, "weight")?.to_f64();
        if self.one_d && w.ndim() == 3 {
            w.insert_axis_inplace(Axis(2));
        }
        let weight = w
            .into_dimensionality::<Ix4>()
            .map_err(|_| self.err("weight must be [C, F/group, KH, KW] or [C, F/group, K]"))?;
        let dims = self.shape_of(graph, x).dims().to_vec();
        let (c, h, wd) = (dims[0], dims[1], dims[2]);
        let groups = self.int("group")?.unwrap_or(1);
        let (wc, per_group, kh, kw) = weight.dim();
        if groups < 1 || wc != c || c % groups as usize != 0 {
            return Err(self.err(format!(
                "the weight has {wc} input channels and group = {groups}, the input {c} channels"
            )));
        }
        let groups = groups as usize;
        let f = per_group * groups;
        self.check_kernel_shape(kh, kw)?;
        let bias = match self.constant_input(2, "bias")? {
            Some(b) => b.to_f64().iter().copied().collect(),
            None => vec![0.0; f],
        };
        if bias.len() != f {
            return Err(self.err(format!("bias has {} values for {f} filters", bias.len())));
        }
        let strides = self.pair("strides", 1)?;
        let dilations = self.pair("dilations", 1)?;
        let pads = self.padding([h, wd], [kh, kw], strides, dilations)?;
        let output_padding = match self.ints("output_padding")? {
            None => [0, 0],
            Some(p) if self.one_d && p.len() == 1 && p[0] >= 0 => [0, p[0] as usize],
            Some(p) if p.len() == 2 && p.iter().all(|&v| v >= 0) => [p[0] as usize, p[1] as usize],
            Some(p) => {
                return Err(self.err(format!(
                    "output_padding {p:?} is not two non-negative values"
                )))
            }
        };
        if self.attr("output_shape").is_some() {
            return Err(self.err("output_shape is not supported; export with explicit pads"));
        }
        let full = |axis: usize, len: usize, k: usize| {
            strides[axis] * (len - 1) + (k - 1) * dilations[axis] + 1 + output_padding[axis]
        };
        let (full_h, full_w) = (full(0, h, kh), full(1, wd, kw));
        let (out_h, out_w) = (
            full_h.checked_sub(pads[0] + pads[2]),
            full_w.checked_sub(pads[1] + pads[3]),
        );
        let (Some(out_h), Some(out_w)) = (out_h.filter(|&v| v > 0), out_w.filter(|&v| v > 0))
        else {
            return Err(self.err("the pads crop the whole output"));
        };
        let in_per_group = c / groups;
        let map = |xs: &ArrayD<f64>| -> ArrayD<f64> {
            let xs = xs
                .view()
                .into_dimensionality::<ndarray::Ix3>()
                .expect("[C, H, W]");
            let mut y = Array4::<f64>::zeros((1, f, out_h, out_w));
            for ch in 0..c {
                let g = ch / in_per_group;
                for i in 0..h {
                    for j in 0..wd {
                        let v = xs[[ch, i, j]];
                        if v == 0.0 {
                            continue;
                        }
                        for fo in 0..per_group {
                            let filter = g * per_group + fo;
                            for ky in 0..kh {
                                let row = (i * strides[0] + ky * dilations[0]) as isize
                                    - pads[0] as isize;
                                if row < 0 || row >= out_h as isize {
                                    continue;
                                }
                                for kx in 0..kw {
                                    let col = (j * strides[1] + kx * dilations[1]) as isize
                                        - pads[1] as isize;
                                    if col >= 0 && col < out_w as isize {
                                        y[[0, filter, row as usize, col as usize]] +=
                                            v * weight[[ch, fo, ky, kx]];
                                    }
                                }
                            }
                        }
                    }
                }
            }
            for (filter, b) in bias.iter().enumerate() {
                y.slice_mut(ndarray::s![0, filter, .., ..])
                    .mapv_inplace(|v| v + b);
            }
            y.into_dyn().index_axis_move(Axis(0), 0)
        };
        let out = if self.one_d {
            Shape::new(vec![f, out_w])
        } else {
            Shape::new(vec![f, out_h, out_w])
        };
        self.affine_map(graph, x, out, |xs| {
            let y = map(xs);
            if self.one_d {
                y.into_shape_with_order(IxDyn(&[f, out_w]))
                    .expect("height 1")
            } else {
                y
            }
        })
    }

    /// `Resize` (and `Upsample`) of the spatial axes, nearest or linear.
    pub(super) fn resize(&self, graph: &mut Graph) -> Result<Value, FrontendError> {
        self.allow(&[
            "mode",
            "coordinate_transformation_mode",
            "nearest_mode",
            "cubic_coeff_a",
            "exclude_outside",
            "extrapolation_value",
            "antialias",
            "keep_aspect_ratio_policy",
            "axes",
            "scales",
        ])?;
        if self.int("antialias")?.unwrap_or(0) != 0
            || self.int("exclude_outside")?.unwrap_or(0) != 0
        {
            return Err(self.err("antialias and exclude_outside are not supported"));
        }
        if self
            .string("keep_aspect_ratio_policy")?
            .is_some_and(|p| p != "stretch")
        {
            return Err(self.err("keep_aspect_ratio_policy other than 'stretch' is not supported"));
        }
        if self.attr("axes").is_some() {
            return Err(self.err("the axes attribute is not supported; resize all axes"));
        }
        let x = self.data(0)?;
        let sample = self.shape_of(graph, x);
        let rank = sample.rank() + 1;
        let mode = self.string("mode")?.unwrap_or_else(|| "nearest".into());
        let legacy = self.node.op_type == "Upsample" || self.opset < 11;
        let coord = self
            .string("coordinate_transformation_mode")?
            .unwrap_or_else(|| if legacy { "asymmetric" } else { "half_pixel" }.into());
        let nearest = self.string("nearest_mode")?.unwrap_or_else(|| {
            if legacy {
                "floor"
            } else {
                "round_prefer_floor"
            }
            .into()
        });
        // Inputs: opset 10 (X, scales); 11+ (X, roi, scales, sizes); Upsample 7-9 by attribute.
        let floats = |i: usize| -> Result<Option<Vec<f64>>, FrontendError> {
            Ok(self
                .constant_input(i, "scales")?
                .map(|c| c.to_f64().iter().copied().collect::<Vec<f64>>())
                .filter(|v| !v.is_empty()))
        };
        let (scales, sizes) = if self.node.op_type == "Upsample" && self.opset < 9 {
            let s = self
                .attr("scales")
                .map(|a| a.floats.iter().map(|&v| f64::from(v)).collect());
            (s, None)
        } else if legacy {
            (floats(1)?, None)
        } else {
            let sizes = self
                .constant_input(3, "sizes")?
                .map(|c| {
                    c.to_f64()
                        .iter()
                        .map(|&v| v as usize)
                        .collect::<Vec<usize>>()
                })
                .filter(|v| !v.is_empty());
            (floats(2)?, sizes)
        };
        let out_dims: Vec<usize> = match (&scales, &sizes) {
            (_, Some(s)) if s.len() == rank => s[1..].to_vec(),
            (Some(s), None) if s.len() == rank => sample
                .dims()
                .iter()
                .zip(&s[1..])
                .map(|(&d, &k)| (d as f64 * k).floor() as usize)
                .collect(),
            _ => {
                return Err(self.err(format!(
                    "needs constant scales or sizes for all {rank} axes"
                )))
            }
        };
        if out_dims[0] != sample.dims()[0] || out_dims.contains(&0) {
            return Err(
                self.err("resizes the channels or to nothing; only spatial axes may change")
            );
        }
        if !matches!(mode.as_str(), "nearest" | "linear" | "bilinear") {
            return Err(self.err(format!(
                "mode '{mode}' is not supported (nearest or linear)"
            )));
        }
        // One interpolation matrix per spatial axis: out[o] = Σ_i m[o][i]·in[i].
        let mut per_axis: Vec<Array2<f64>> = Vec::new();
        for axis in 1..sample.rank() {
            let (len, out) = (sample.dims()[axis], out_dims[axis]);
            let scale = match (&scales, &sizes) {
                (Some(s), None) => s[axis + 1],
                _ => out as f64 / len as f64,
            };
            // ONNX's align_corners divides by the resized length before flooring.
            let resized = len as f64 * scale;
            let mut m = Array2::zeros((out, len));
            for o in 0..out {
                let pos = match coord.as_str() {
                    "half_pixel" => (o as f64 + 0.5) / scale - 0.5,
                    "pytorch_half_pixel" if out > 1 => (o as f64 + 0.5) / scale - 0.5,
                    "pytorch_half_pixel" => 0.0,
                    "asymmetric" => o as f64 / scale,
                    "align_corners" if out > 1 => o as f64 * (len - 1) as f64 / (resized - 1.0),
                    "align_corners" => 0.0,
                    other => {
                        return Err(self.err(format!(
                            "coordinate_transformation_mode '{other}' is not supported"
                        )))
                    }
                };
                let last = (len - 1) as f64;
                if mode == "nearest" {
                    let frac = pos - pos.floor();
                    let i = match nearest.as_str() {
                        "floor" => pos.floor(),
                        "ceil" => pos.ceil(),
                        "round_prefer_ceil" if frac == 0.5 => pos.ceil(),
                        "round_prefer_floor" if frac == 0.5 => pos.floor(),
                        "round_prefer_ceil" | "round_prefer_floor" => pos.round(),
                        other => {
                            return Err(self.err(format!("nearest_mode '{other}' is not supported")))
                        }
                    };
                    m[[o, i.clamp(0.0, last) as usize]] = 1.0;
                } else {
                    let p = pos.clamp(0.0, last);
                    let i0 = p.floor() as usize;
                    let i1 = (i0 + 1).min(len - 1);
                    let t = p - i0 as f64;
                    m[[o, i0]] += 1.0 - t;
                    m[[o, i1]] += t;
                }
            }
            per_axis.push(m);
        }
        let out = Shape::new(out_dims);
        self.affine_map(graph, x, out, |xs| {
            let mut y = xs.clone();
            for (k, m) in per_axis.iter().enumerate() {
                y = apply_along(&y, k + 1, m);
            }
            y
        })
    }

    /// `Pad` of a sample: constant, reflect or edge (not the batch axis).
    pub(super) fn pad(&self, graph: &mut Graph) -> Result<Value, FrontendError> {
        self.allow(&["mode", "pads", "value"])?;
        let x = self.data(0)?;
        let sample = self.shape_of(graph, x);
        let rank = sample.rank() + 1;
        let mode = self.string("mode")?.unwrap_or_else(|| "constant".into());
        let (pads, value) = if self.opset < 11 {
            (
                self.ints("pads")?
                    .ok_or_else(|| self.err("pads are missing"))?,
                self.float("value")?.map_or(0.0, f64::from),
            )
        } else {
            if self.node.input.get(3).is_some_and(|a| !a.is_empty()) {
                return Err(self.err("the axes input is not supported; pad all axes"));
            }
            let pads = self
                .required_constant(1, "pads")?
                .as_int()
                .ok_or_else(|| self.err("pads must be int64"))?
                .iter()
                .copied()
                .collect::<Vec<i64>>();
            let value = match self.constant_input(2, "constant_value")? {
                Some(c) => c.to_f64().iter().next().copied().unwrap_or(0.0),
                None => 0.0,
            };
            (pads, value)
        };
        if pads.len() != 2 * rank || pads.iter().any(|&p| p < 0) {
            return Err(self.err(format!(
                "pads {pads:?} must be {} non-negative values (negative pads crop; not supported)",
                2 * rank
            )));
        }
        if pads[0] != 0 || pads[rank] != 0 {
            return Err(self.err("pads the batch axis"));
        }
        let before: Vec<usize> = pads[1..rank].iter().map(|&p| p as usize).collect();
        let after: Vec<usize> = pads[rank + 1..].iter().map(|&p| p as usize).collect();
        let dims = sample.dims().to_vec();
        if mode == "reflect"
            && dims
                .iter()
                .zip(before.iter().zip(&after))
                .any(|(&d, (&b, &a))| (b > 0 || a > 0) && (b >= d || a >= d))
        {
            return Err(self.err("reflect pads must be smaller than the axis they pad"));
        }
        if !matches!(mode.as_str(), "constant" | "reflect" | "edge") {
            return Err(self.err(format!(
                "mode '{mode}' is not supported (constant, reflect, edge)"
            )));
        }
        let out_dims: Vec<usize> = (0..dims.len())
            .map(|i| dims[i] + before[i] + after[i])
            .collect();
        let out = Shape::new(out_dims.clone());
        self.affine_map(graph, x, out, |xs| {
            ArrayD::from_shape_fn(IxDyn(&out_dims), |idx| {
                let mut src = Vec::with_capacity(dims.len());
                for axis in 0..dims.len() {
                    let (d, p) = (
                        dims[axis] as isize,
                        idx[axis] as isize - before[axis] as isize,
                    );
                    let s = if (0..d).contains(&p) {
                        p
                    } else {
                        match mode.as_str() {
                            "constant" => return value,
                            "edge" => p.clamp(0, d - 1),
                            _ if p < 0 => -p,
                            _ => 2 * (d - 1) - p,
                        }
                    };
                    src.push(s as usize);
                }
                xs[IxDyn(&src)]
            })
        })
    }
}

/// `m` (out × in) applied along `axis` of `x`.
fn apply_along(x: &ArrayD<f64>, axis: usize, m: &Array2<f64>) -> ArrayD<f64> {
    let mut shape = x.shape().to_vec();
    shape[axis] = m.nrows();
    let mut y = ArrayD::zeros(IxDyn(&shape));
    for (mut out, lane) in y.lanes_mut(Axis(axis)).into_iter().zip(x.lanes(Axis(axis))) {
        out.assign(&m.dot(&lane));
    }
    y
}
