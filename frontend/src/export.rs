//! Writing an [`ir::Graph`](hepack_ir::Graph) back to ONNX with standard ops only,
//! so a rewritten model can be checked in onnxruntime or PyTorch.
//!
//! Ops without an ONNX counterpart are spelled with standard ones: a polynomial
//! in Horner form (`Mul`/`Add`, where `Mul` multiplies by the data itself), a sum
//! pool as `AveragePool` times the window size, the patches of a convolution as
//! a `Conv` with one-hot filters followed by a `Transpose`. hepack reads all of
//! these back into the same IR ops (polynomials are recognised by the frontend).

use hepack_ir::{Activation, Graph, NodeId, Op, Pool, Shape};
use ndarray::{Array4, ArrayD, IxDyn};
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
use onnx_protobuf::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

use crate::error::FrontendError;

/// Element type of the exported tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportType {
    /// float32: what onnxruntime and PyTorch run everywhere.
    F32,
    /// float64: the interpreter's own precision, for bit-for-bit checks.
    F64,
}

impl ExportType {
    fn onnx_code(self) -> i32 {
        match self {
            ExportType::F32 => 1,
            ExportType::F64 => 11,
        }
    }
}

/// The graph as an ONNX model: opset 13, or the first opset with an op the
/// graph needs (HardSwish 14, Mish 18, dilated AveragePool 19, Gelu 20).
pub fn to_onnx(graph: &Graph, dtype: ExportType) -> Result<ModelProto, FrontendError> {
    let mut w = Writer {
        graph,
        dtype,
        out: GraphProto {
            name: "hepack".into(),
            ..Default::default()
        },
        opset: 13,
    };
    for id in graph.topo_order() {
        w.node(id)?;
    }
    let input = graph.node(graph.input());
    w.out
        .input
        .push(value_info(input.name.as_str(), &input.shape, dtype));
    // Each output keeps the model's name for it: an Identity renames the
    // layer's value unless that name is another layer's.
    let layer_names: std::collections::HashSet<&str> = graph
        .topo_order()
        .into_iter()
        .map(|id| graph.node(id).name.as_str())
        .collect();
    for out in graph.outputs() {
        let node = graph.node(out.node);
        let value = node.name.as_str();
        let name = if out.name == value || layer_names.contains(out.name.as_str()) {
            value
        } else {
            w.emit("Identity", &out.name, &[value], &out.name, vec![]);
            out.name.as_str()
        };
        w.out.output.push(value_info(name, &node.shape, dtype));
    }
    let opset = w.opset;
    Ok(ModelProto {
        ir_version: match opset {
            21.. => 10,
            19..=20 => 9,
            _ => 8,
        },
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
            ..Default::default()
        }],
        producer_name: "hepack".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(w.out).into(),
        ..Default::default()
    })
}

struct Writer<'a> {
    graph: &'a Graph,
    dtype: ExportType,
    out: GraphProto,
    opset: i64,
}

impl Writer<'_> {
    fn node(&mut self, id: NodeId) -> Result<(), FrontendError> {
        let node = self.graph.node(id);
        let name = node.name.as_str().to_string();
        let Some(&operand) = self.graph.operands(id).first() else {
            return Ok(()); // the input
        };
        let x = self.graph.node(operand).name.as_str().to_string();
        let in_shape = self.graph.node(operand).shape.clone();
        let operands: Vec<String> = self
            .graph
            .operands(id)
            .iter()
            .map(|&o| self.graph.node(o).name.as_str().to_string())
            .collect();
        let operands: Vec<&str> = operands.iter().map(String::as_str).collect();
        match &node.op {
            Op::Input => {}
            Op::Add => self.emit("Add", &name, &operands, &name, vec![]),
            Op::Concat(axis) => {
                let attrs = vec![int("axis", *axis as i64 + 1)];
                self.emit("Concat", &name, &operands, &name, attrs);
            }
            Op::Conv(c) => {
                let w = self.constant(&format!("{name}/W"), c.weight.clone().into_dyn());
                let b = self.constant(&format!("{name}/B"), c.bias.clone().into_dyn());
                let (_, _, kh, kw) = c.weight.dim();
                let attrs = window_attrs([kh, kw], c.strides, c.pads, c.dilations);
                self.emit("Conv", &name, &[&x, &w, &b], &name, attrs);
            }
            Op::Dense(d) => {
                let w = self.constant(&format!("{name}/W"), d.weight.clone().into_dyn());
                let b = self.constant(&format!("{name}/B"), d.bias.clone().into_dyn());
                if in_shape.rank() == 1 {
                    self.emit("Gemm", &name, &[&x, &w, &b], &name, vec![]);
                } else {
                    let product = format!("{name}/matmul");
                    self.emit("MatMul", &name, &[&x, &w], &product, vec![]);
                    self.emit(
                        "Add",
                        &format!("{name}/bias"),
                        &[&product, &b],
                        &name,
                        vec![],
                    );
                }
            }
            Op::AddConst(c) => {
                let c = self.constant(&format!("{name}/C"), c.clone());
                self.emit("Add", &name, &[&x, &c], &name, vec![]);
            }
            Op::MulConst(c) => {
                let c = self.constant(&format!("{name}/C"), c.clone());
                self.emit("Mul", &name, &[&x, &c], &name, vec![]);
            }
            Op::Activation(a) => {
                let (op, attrs) = match a {
                    Activation::Relu => ("Relu", vec![]),
                    Activation::LeakyRelu { alpha } => ("LeakyRelu", vec![float("alpha", *alpha)]),
                    Activation::Sigmoid => ("Sigmoid", vec![]),
                    Activation::Tanh => ("Tanh", vec![]),
                    Activation::Softplus => ("Softplus", vec![]),
                    Activation::Square => {
                        let two = self.constant(&format!("{name}/exponent"), scalar(2.0));
                        self.emit("Pow", &name, &[&x, &two], &name, vec![]);
                        return Ok(());
                    }
                    Activation::Erf => ("Erf", vec![]),
                    Activation::Gelu => {
                        self.opset = self.opset.max(20);
                        ("Gelu", vec![])
                    }
                    Activation::GeluTanh => {
                        self.opset = self.opset.max(20);
                        ("Gelu", vec![string("approximate", "tanh")])
                    }
                    Activation::Silu => {
                        let gate = format!("{name}/sigmoid");
                        self.emit("Sigmoid", &gate, &[&x], &gate, vec![]);
                        self.emit("Mul", &name, &[&x, &gate], &name, vec![]);
                        return Ok(());
                    }
                    Activation::Mish => {
                        self.opset = self.opset.max(18);
                        ("Mish", vec![])
                    }
                    Activation::HardSigmoid { alpha, beta } => (
                        "HardSigmoid",
                        vec![float("alpha", *alpha), float("beta", *beta)],
                    ),
                    Activation::HardSwish => {
                        self.opset = self.opset.max(14);
                        ("HardSwish", vec![])
                    }
                    Activation::Clip { min, max } => {
                        let lo = self.constant(&format!("{name}/min"), scalar(*min));
                        let hi = self.constant(&format!("{name}/max"), scalar(*max));
                        self.emit("Clip", &name, &[&x, &lo, &hi], &name, vec![]);
                        return Ok(());
                    }
                    Activation::Elu { alpha } => ("Elu", vec![float("alpha", *alpha)]),
                };
                self.emit(op, &name, &[&x], &name, attrs);
            }
            Op::MaxPool(p) => {
                let mut attrs = window_attrs(p.kernel, p.strides, p.pads, p.dilations);
                attrs.push(int("ceil_mode", p.ceil_mode as i64));
                self.emit("MaxPool", &name, &[&x], &name, attrs);
            }
            Op::AvgPool(p) => {
                let attrs = self.avg_pool_attrs(&p.pool, p.count_include_pad);
                self.emit("AveragePool", &name, &[&x], &name, attrs);
            }
            Op::SumPool(p) => {
                if !p.windows_are_full(&in_shape) {
                    return Err(FrontendError::Graph(format!(
                        "cannot export sum pool '{name}': some windows are cut short (ceil mode), so it is not an average pool times a constant"
                    )));
                }
                let attrs = self.avg_pool_attrs(p, true);
                let mean = format!("{name}/mean");
                self.emit("AveragePool", &mean, &[&x], &mean, attrs);
                let k = self.constant(
                    &format!("{name}/window"),
                    scalar((p.kernel[0] * p.kernel[1]) as f64),
                );
                self.emit("Mul", &name, &[&mean, &k], &name, vec![]);
            }
            Op::GlobalAvgPool => self.emit("GlobalAveragePool", &name, &[&x], &name, vec![]),
            Op::BatchNorm(bn) => {
                let inputs = [
                    self.constant(&format!("{name}/scale"), bn.scale.clone().into_dyn()),
                    self.constant(&format!("{name}/bias"), bn.bias.clone().into_dyn()),
                    self.constant(&format!("{name}/mean"), bn.mean.clone().into_dyn()),
                    self.constant(&format!("{name}/var"), bn.var.clone().into_dyn()),
                ];
                let refs: Vec<&str> = std::iter::once(x.as_str())
                    .chain(inputs.iter().map(String::as_str))
                    .collect();
                let attrs = vec![float("epsilon", bn.epsilon)];
                self.emit("BatchNormalization", &name, &refs, &name, attrs);
            }
            Op::Flatten => self.emit("Flatten", &name, &[&x], &name, vec![int("axis", 1)]),
            Op::Reshape(shape) => {
                // 0 keeps the (symbolic) batch dimension.
                let dims: Vec<i64> = std::iter::once(0)
                    .chain(shape.dims().iter().map(|&d| d as i64))
                    .collect();
                let s = self.int_constant(&format!("{name}/shape"), dims);
                self.emit("Reshape", &name, &[&x, &s], &name, vec![]);
            }
            Op::Transpose(perm) => {
                let full: Vec<i64> = std::iter::once(0)
                    .chain(perm.iter().map(|&p| p as i64 + 1))
                    .collect();
                self.emit("Transpose", &name, &[&x], &name, vec![ints("perm", full)]);
            }
            Op::Dropout { .. } | Op::Identity => self.emit("Identity", &name, &[&x], &name, vec![]),
            Op::Softmax(s) => {
                if s.flatten_trailing && s.axis + 1 < in_shape.rank() {
                    return Err(FrontendError::Graph(format!(
                        "cannot export softmax '{name}': it normalises over several axes (opset < 13 semantics)"
                    )));
                }
                let attrs = vec![int("axis", s.axis as i64 + 1)];
                let op = if s.log { "LogSoftmax" } else { "Softmax" };
                self.emit(op, &name, &[&x], &name, attrs);
            }
            Op::Polynomial(p) => self.polynomial(&name, &x, &p.coeffs),
            Op::Patches(p) => {
                let c = in_shape.dims()[0];
                let [kh, kw] = p.kernel;
                let m = c * kh * kw;
                let onehot = Array4::from_shape_fn((m, c, kh, kw), |(mi, ci, ky, kx)| {
                    f64::from(mi == (ci * kh + ky) * kw + kx)
                });
                let w = self.constant(&format!("{name}/W"), onehot.into_dyn());
                let planes = format!("{name}/planes");
                let attrs = window_attrs(p.kernel, p.strides, p.pads, p.dilations);
                self.emit("Conv", &planes, &[&x, &w], &planes, attrs);
                self.emit(
                    "Transpose",
                    &name,
                    &[&planes],
                    &name,
                    vec![ints("perm", vec![0, 2, 3, 1])],
                );
            }
        }
        Ok(())
    }

    /// `Σ cᵢ·xⁱ` in Horner form: `((c_D·x + c_{D−1})·x + …)·x + c_0`.
    fn polynomial(&mut self, name: &str, x: &str, coeffs: &[f64]) {
        let d = coeffs.len() - 1;
        // The innermost product: c_D·x, or 0·x for a constant polynomial.
        let lead = if d == 0 { 0.0 } else { coeffs[d] };
        let lead = self.constant(&format!("{name}/c{d}x"), scalar(lead));
        let mut acc = format!("{name}/t{d}");
        self.emit("Mul", &acc.clone(), &[x, &lead], &acc.clone(), vec![]);
        for k in (0..d.max(1)).rev() {
            let c = self.constant(&format!("{name}/c{k}"), scalar(coeffs[k]));
            let sum = if k == 0 {
                name.to_string()
            } else {
                format!("{name}/s{k}")
            };
            self.emit("Add", &sum, &[&acc, &c], &sum, vec![]);
            acc = sum;
            if k > 0 {
                let product = format!("{name}/t{k}");
                self.emit("Mul", &product, &[&acc, x], &product, vec![]);
                acc = product;
            }
        }
    }

    fn avg_pool_attrs(&mut self, p: &Pool, count_include_pad: bool) -> Vec<AttributeProto> {
        let mut attrs = window_attrs(p.kernel, p.strides, p.pads, p.dilations);
        if p.dilations != [1, 1] {
            self.opset = 19; // AveragePool takes dilations from opset 19 on.
        } else {
            attrs.retain(|a| a.name != "dilations");
        }
        attrs.push(int("ceil_mode", p.ceil_mode as i64));
        attrs.push(int("count_include_pad", count_include_pad as i64));
        attrs
    }

    fn emit(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        output: &str,
        attrs: Vec<AttributeProto>,
    ) {
        self.out.node.push(NodeProto {
            op_type: op.into(),
            name: name.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute: attrs,
            ..Default::default()
        });
    }

    /// Add a float initializer named `name` and return the name.
    fn constant(&mut self, name: &str, value: ArrayD<f64>) -> String {
        let raw_data: Vec<u8> = match self.dtype {
            ExportType::F32 => value
                .iter()
                .flat_map(|&v| (v as f32).to_le_bytes())
                .collect(),
            ExportType::F64 => value.iter().flat_map(|&v| v.to_le_bytes()).collect(),
        };
        self.out.initializer.push(TensorProto {
            name: name.into(),
            dims: value.shape().iter().map(|&d| d as i64).collect(),
            data_type: self.dtype.onnx_code(),
            raw_data,
            ..Default::default()
        });
        name.to_string()
    }

    fn int_constant(&mut self, name: &str, values: Vec<i64>) -> String {
        self.out.initializer.push(TensorProto {
            name: name.into(),
            dims: vec![values.len() as i64],
            data_type: 7,
            int64_data: values,
            ..Default::default()
        });
        name.to_string()
    }
}

fn scalar(v: f64) -> ArrayD<f64> {
    ArrayD::from_elem(IxDyn(&[]), v)
}

fn window_attrs(
    kernel: [usize; 2],
    strides: [usize; 2],
    pads: [usize; 4],
    dilations: [usize; 2],
) -> Vec<AttributeProto> {
    let i64s = |v: &[usize]| v.iter().map(|&x| x as i64).collect::<Vec<_>>();
    vec![
        ints("kernel_shape", i64s(&kernel)),
        ints("strides", i64s(&strides)),
        ints("pads", i64s(&pads)),
        ints("dilations", i64s(&dilations)),
    ]
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INT.into(),
        i,
        ..Default::default()
    }
}

fn ints(name: &str, ints: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INTS.into(),
        ints,
        ..Default::default()
    }
}

fn string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::STRING.into(),
        s: s.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn float(name: &str, f: f64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::FLOAT.into(),
        f: f as f32,
        ..Default::default()
    }
}

fn value_info(name: &str, shape: &Shape, dtype: ExportType) -> ValueInfoProto {
    let mut dim = vec![Dimension {
        value: Some(dimension::Value::DimParam("batch".into())),
        ..Default::default()
    }];
    dim.extend(shape.dims().iter().map(|&d| Dimension {
        value: Some(dimension::Value::DimValue(d as i64)),
        ..Default::default()
    }));
    ValueInfoProto {
        name: name.into(),
        type_: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: dtype.onnx_code(),
                shape: Some(TensorShapeProto {
                    dim,
                    ..Default::default()
                })
                .into(),
                ..Default::default()
            })),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}
