//! One builder per ONNX op family: validates the node's operands and attributes
//! (opset differences included) and adds the equivalent IR node(s).

use std::collections::HashMap;

use hepack_ir::{
    Activation, AvgPool, BatchNorm, Conv, Dense, Graph, NodeId, Op, Polynomial, Pool, Shape,
    Softmax,
};
use ndarray::{Array1, Array2, Array4, ArrayD, Axis, Ix1, Ix2, Ix4, IxDyn};
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::{AttributeProto, NodeProto};

use crate::error::FrontendError;
use crate::model::{BatchDim, Value};
use crate::tensor::{self, Const};

mod activation;
mod fold;
mod linear_map;
mod shape;
pub(crate) use fold::BATCH;

/// Default-domain ops [`build`] reads (besides the constant-folded ones).
const OPS: &[&str] = &[
    "Constant",
    "Identity",
    "Dropout",
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Relu",
    "Sigmoid",
    "Tanh",
    "Softplus",
    "Erf",
    "Mish",
    "HardSwish",
    "Gelu",
    "HardSigmoid",
    "Elu",
    "LeakyRelu",
    "Clip",
    "PRelu",
    "ReduceMean",
    "Greater",
    "Less",
    "GreaterOrEqual",
    "LessOrEqual",
    "Where",
    "Squeeze",
    "Unsqueeze",
    "Cast",
    "CastLike",
    "Pow",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "BatchNormalization",
    "Flatten",
    "Reshape",
    "Transpose",
    "Softmax",
    "LogSoftmax",
    "Concat",
    "ConvTranspose",
    "Resize",
    "Upsample",
    "Pad",
];

/// Whether hepack reads `node`'s op on data, so that a node after an
/// unsupported one can still be reported when it is unsupported too.
pub(crate) fn known(node: &NodeProto) -> bool {
    // Such a node reads data, so only the ops that take data count.
    (node.domain.is_empty() || node.domain == "ai.onnx") && OPS.contains(&node.op_type.as_str())
}

/// Build the IR for one ONNX node; returns one value per node output.
pub(crate) fn build(
    graph: &mut Graph,
    node: &NodeProto,
    name: &str,
    opset: i64,
    env: &HashMap<String, Value>,
    batch: &BatchDim,
) -> Result<Vec<Value>, FrontendError> {
    if !(node.domain.is_empty() || node.domain == "ai.onnx") {
        return Err(FrontendError::UnsupportedOp {
            node: name.to_string(),
            op: format!("{}.{}", node.domain, node.op_type),
        });
    }
    let mut cx = Ctx {
        node,
        name,
        opset,
        env,
        batch,
        one_d: false,
    };
    if matches!(
        node.op_type.as_str(),
        "Conv" | "ConvTranspose" | "MaxPool" | "AveragePool"
    ) {
        if let Some(Value::Data(x)) = cx.input(0)? {
            cx.one_d = graph.node(*x).shape.rank() == 2;
        }
    }
    if let Some(values) = cx.fold(graph)? {
        return Ok(values);
    }
    let op = node.op_type.as_str();
    let single = |v: Value| Ok(vec![v]);
    match op {
        "Constant" => single(Value::Const(cx.constant()?)),
        "Identity" | "Dropout" => cx.passthrough(graph),
        "Conv" => single(cx.conv(graph)?),
        "Gemm" => single(cx.gemm(graph)?),
        "MatMul" => single(cx.matmul(graph)?),
        "Add" | "Sub" | "Mul" | "Div" => single(cx.arithmetic(graph)?),
        "Relu" | "Sigmoid" | "Tanh" | "Softplus" | "Erf" | "Mish" | "HardSwish" => {
            cx.allow(&["consumed_inputs"])?;
            let act = match op {
                "Relu" => Activation::Relu,
                "Sigmoid" => Activation::Sigmoid,
                "Tanh" => Activation::Tanh,
                "Erf" => Activation::Erf,
                "Mish" => Activation::Mish,
                "HardSwish" => Activation::HardSwish,
                _ => Activation::Softplus,
            };
            single(cx.unary(graph, Op::Activation(act))?)
        }
        "Gelu" => {
            cx.allow(&["approximate"])?;
            let act = match cx.string("approximate")?.as_deref() {
                None | Some("none") => Activation::Gelu,
                Some("tanh") => Activation::GeluTanh,
                Some(other) => {
                    return Err(cx.err(format!("approximate = '{other}' is not 'none' or 'tanh'")))
                }
            };
            single(cx.unary(graph, Op::Activation(act))?)
        }
        "HardSigmoid" => {
            cx.allow(&["alpha", "beta", "consumed_inputs"])?;
            let alpha = cx.float("alpha")?.map_or(0.2, f64::from);
            let beta = cx.float("beta")?.map_or(0.5, f64::from);
            single(cx.unary(
                graph,
                Op::Activation(Activation::HardSigmoid { alpha, beta }),
            )?)
        }
        "Elu" => {
            cx.allow(&["alpha", "consumed_inputs"])?;
            let alpha = cx.float("alpha")?.map_or(1.0, f64::from);
            single(cx.unary(graph, Op::Activation(Activation::Elu { alpha }))?)
        }
        "Clip" => single(cx.clip(graph)?),
        "PRelu" => single(cx.prelu(graph)?),
        "ReduceMean" => single(cx.reduce_mean(graph)?),
        "Greater" | "Less" | "GreaterOrEqual" | "LessOrEqual" => single(cx.compare()?),
        "Where" => single(cx.select(graph)?),
        "Squeeze" | "Unsqueeze" => single(cx.squeeze(graph)?),
        "Cast" | "CastLike" => single(cx.cast(graph)?),
        "ConvTranspose" => single(cx.conv_transpose(graph)?),
        "Concat" => single(cx.concat(graph)?),
        "Resize" | "Upsample" => single(cx.resize(graph)?),
        "Pad" => single(cx.pad(graph)?),
        "LeakyRelu" => {
            cx.allow(&["alpha"])?;
            let alpha = cx.float("alpha")?.unwrap_or(0.01) as f64;
            single(cx.unary(graph, Op::Activation(Activation::LeakyRelu { alpha }))?)
        }
        "Pow" => single(cx.pow(graph)?),
        "MaxPool" | "AveragePool" => {
            let outputs = cx.pool(graph)?;
            Ok(outputs)
        }
        "GlobalAveragePool" => {
            cx.allow(&[])?;
            single(cx.unary(graph, Op::GlobalAvgPool)?)
        }
        "BatchNormalization" => cx.batch_norm(graph),
        "Flatten" => single(cx.flatten(graph)?),
        "Reshape" => single(cx.reshape(graph)?),
        "Transpose" => single(cx.transpose(graph)?),
        "Softmax" | "LogSoftmax" => single(cx.softmax(graph)?),
        _ => Err(FrontendError::UnsupportedOp {
            node: name.to_string(),
            op: node.op_type.clone(),
        }),
    }
}

struct Ctx<'a> {
    node: &'a NodeProto,
    name: &'a str,
    opset: i64,
    env: &'a HashMap<String, Value>,
    batch: &'a BatchDim,
    /// A 1-D conv or pool, read as 2-D over a height-1 view of its `[C, L]` input.
    one_d: bool,
}

impl Ctx<'_> {
    fn err(&self, message: impl Into<String>) -> FrontendError {
        FrontendError::Node {
            node: self.name.to_string(),
            op: self.node.op_type.clone(),
            message: message.into(),
        }
    }

    /// Reject attributes the builder does not know, so nothing is silently ignored.
    fn allow(&self, known: &[&str]) -> Result<(), FrontendError> {
        match self
            .node
            .attribute
            .iter()
            .find(|a| !known.contains(&a.name.as_str()))
        {
            Some(a) => Err(self.err(format!(
                "attribute '{}' is not supported (known: {})",
                a.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))),
            None => Ok(()),
        }
    }

    fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    fn typed(
        &self,
        name: &str,
        ty: AttributeType,
    ) -> Result<Option<&AttributeProto>, FrontendError> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) if !a.ref_attr_name.is_empty() => Err(self.err(format!(
                "attribute '{name}' refers to a function attribute, which is not supported"
            ))),
            // Old exporters leave `type` unset; trust the field then.
            Some(a) if a.type_.value() == 0 || a.type_.enum_value() == Ok(ty) => Ok(Some(a)),
            Some(_) => Err(self.err(format!("attribute '{name}' should be of type {ty:?}"))),
        }
    }

    fn int(&self, name: &str) -> Result<Option<i64>, FrontendError> {
        Ok(self.typed(name, AttributeType::INT)?.map(|a| a.i))
    }

    fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, FrontendError> {
        Ok(self
            .typed(name, AttributeType::INTS)?
            .map(|a| a.ints.clone()))
    }

    /// A float attribute; NaN or infinite ones are refused (a weight scaled
    /// by them compiles to a program every reader rejects).
    fn float(&self, name: &str) -> Result<Option<f32>, FrontendError> {
        match self.typed(name, AttributeType::FLOAT)?.map(|a| a.f) {
            Some(v) if !v.is_finite() => Err(self.err(format!(
                "attribute '{name}' is {v}; it must be a finite number"
            ))),
            v => Ok(v),
        }
    }

    fn string(&self, name: &str) -> Result<Option<String>, FrontendError> {
        Ok(self
            .typed(name, AttributeType::STRING)?
            .map(|a| String::from_utf8_lossy(&a.s).into_owned()))
    }

    /// The value bound to input `i`, `None` if the input is absent or empty.
    fn input(&self, i: usize) -> Result<Option<&Value>, FrontendError> {
        match self.node.input.get(i).map(String::as_str) {
            None | Some("") => Ok(None),
            Some(name) => match self.env.get(name) {
                Some(Value::Unavailable(why)) => Err(self.err(format!("input '{name}': {why}"))),
                Some(v) => Ok(Some(v)),
                None => Err(self.err(format!(
                    "input '{name}' is not produced by an earlier node nor given as an initializer"
                ))),
            },
        }
    }

    fn data(&self, i: usize) -> Result<NodeId, FrontendError> {
        match self.input(i)? {
            Some(Value::Data(id)) => Ok(*id),
            Some(Value::Compare { .. }) => Err(self.err(format!(
                "input {i} is a comparison of the data (x > c), which CKKS cannot compute; only \
                 Softplus's Where(x > threshold, x, softplus(x)) is resolved"
            ))),
            Some(_) => Err(self.err(format!(
                "input {i} must be computed from the model's input, but it is a constant"
            ))),
            None => Err(self.err(format!("input {i} is missing"))),
        }
    }

    fn constant_input(&self, i: usize, what: &str) -> Result<Option<&Const>, FrontendError> {
        match self.input(i)? {
            Some(Value::Const(c)) => Ok(Some(c)),
            Some(_) => Err(self.err(format!(
                "{what} (input {i}) must be a constant (an initializer); hepack compiles models whose weights are known"
            ))),
            None => Ok(None),
        }
    }

    fn required_constant(&self, i: usize, what: &str) -> Result<&Const, FrontendError> {
        self.constant_input(i, what)?
            .ok_or_else(|| self.err(format!("{what} (input {i}) is missing")))
    }

    /// `axes` from the attribute (older opsets) or the constant input `i`
    /// (newer ones); `None` when neither is given.
    fn axes(&self, i: usize) -> Result<Option<Vec<i64>>, FrontendError> {
        if let Some(a) = self.ints("axes")? {
            return Ok(Some(a));
        }
        self.constant_input(i, "axes")?
            .map(|c| {
                c.as_int()
                    .map(|a| a.iter().copied().collect())
                    .ok_or_else(|| self.err("axes must be an int64 tensor"))
            })
            .transpose()
    }

    fn shape_of(&self, graph: &Graph, id: NodeId) -> Shape {
        graph.node(id).shape.clone()
    }

    fn add(&self, graph: &mut Graph, op: Op, operand: NodeId) -> Result<Value, FrontendError> {
        graph
            .add(self.name, op, &[operand])
            .map(Value::Data)
            .map_err(|e| self.err(e.to_string()))
    }

    fn unary(&self, graph: &mut Graph, op: Op) -> Result<Value, FrontendError> {
        let x = self.data(0)?;
        self.add(graph, op, x)
    }

    /// Any output past the first is something hepack does not compute.
    fn with_unavailable_extras(&self, first: Value, why: &str) -> Vec<Value> {
        let mut out = vec![first];
        for _ in 1..self.node.output.len() {
            out.push(Value::Unavailable(format!(
                "output of {} '{}' {why}",
                self.node.op_type, self.name
            )));
        }
        out
    }

    fn constant(&self) -> Result<Const, FrontendError> {
        let a = self
            .node
            .attribute
            .first()
            .filter(|_| self.node.attribute.len() == 1)
            .ok_or_else(|| self.err("needs exactly one value attribute"))?;
        Ok(match a.name.as_str() {
            "value" => {
                let mut t = a.t.clone().unwrap_or_default();
                if t.name.is_empty() {
                    t.name = self.name.to_string();
                }
                tensor::decode(&t, None)?
            }
            "value_float" => Const::Float(ndarray::arr0(a.f as f64).into_dyn()),
            "value_floats" => {
                Const::Float(Array1::from_iter(a.floats.iter().map(|&v| v as f64)).into_dyn())
            }
            "value_int" => Const::Int(ndarray::arr0(a.i).into_dyn()),
            "value_ints" => Const::Int(Array1::from_vec(a.ints.clone()).into_dyn()),
            other => return Err(self.err(format!("value attribute '{other}' is not supported"))),
        })
    }

    fn passthrough(&self, graph: &mut Graph) -> Result<Vec<Value>, FrontendError> {
        let dropout = self.node.op_type == "Dropout";
        if dropout {
            self.allow(&["ratio", "is_test", "seed"])?;
            // Opset 12+ passes the training flag as input 2.
            if let Some(flag) = self.constant_input(2, "training_mode")? {
                if flag.to_f64().iter().any(|&v| v != 0.0) {
                    return Err(self.err("training_mode is true; export the model in eval mode"));
                }
            }
        } else {
            self.allow(&[])?;
        }
        let first = match self.input(0)? {
            Some(Value::Const(c)) => Value::Const(c.clone()),
            Some(Value::Data(x)) => {
                let op = if dropout {
                    let ratio = match self.constant_input(1, "ratio")? {
                        Some(c) => c.to_f64().iter().next().copied().unwrap_or(0.5),
                        None => self.float("ratio")?.map_or(0.5, f64::from),
                    };
                    Op::Dropout { ratio }
                } else {
                    Op::Identity
                };
                self.add(graph, op, *x)?
            }
            _ => return Err(self.err("input 0 is missing")),
        };
        Ok(self.with_unavailable_extras(first, "(the dropout mask) is not computed at inference"))
    }

    /// Spatial padding `[top, left, bottom, right]` from `pads`/`auto_pad`
    /// (a 1-D op's `[begin, end]` pads the width of its height-1 2-D view).
    fn padding(
        &self,
        input: [usize; 2],
        kernel: [usize; 2],
        strides: [usize; 2],
        dilations: [usize; 2],
    ) -> Result<[usize; 4], FrontendError> {
        let auto_pad = self.string("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
        match auto_pad.as_str() {
            "NOTSET" => {
                let pads = match self.ints("pads")? {
                    Some(p) if p.len() == 2 && self.one_d => vec![0, p[0], 0, p[1]],
                    Some(p) => p,
                    None => vec![0; 4],
                };
                if pads.len() != 4 || pads.iter().any(|&p| !(0..=1 << 20).contains(&p)) {
                    return Err(self.err(format!(
                        "pads {pads:?} must be four non-negative values (2-D: top, left, bottom, right)"
                    )));
                }
                Ok([
                    pads[0] as usize,
                    pads[1] as usize,
                    pads[2] as usize,
                    pads[3] as usize,
                ])
            }
            "VALID" => Ok([0; 4]),
            "SAME_UPPER" | "SAME_LOWER" => {
                let mut pads = [0; 4];
                for axis in 0..2 {
                    let out = input[axis].div_ceil(strides[axis]);
                    let span = (kernel[axis] - 1) * dilations[axis] + 1;
                    let total = ((out - 1) * strides[axis] + span).saturating_sub(input[axis]);
                    let small = total / 2;
                    let (begin, end) = if auto_pad == "SAME_UPPER" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                    pads[axis] = begin;
                    pads[axis + 2] = end;
                }
                Ok(pads)
            }
            other => Err(self.err(format!(
                "auto_pad '{other}' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER"
            ))),
        }
    }

    fn pair(&self, name: &str, default: usize) -> Result<[usize; 2], FrontendError> {
        match self.ints(name)? {
            None => Ok([default; 2]),
            Some(v) if self.one_d && v.len() == 1 && (1..=1 << 20).contains(&v[0]) => {
                Ok([1, v[0] as usize])
            }
            Some(v) if v.len() == 2 && v.iter().all(|&x| (1..=1 << 20).contains(&x)) => {
                Ok([v[0] as usize, v[1] as usize])
            }
            Some(v) => Err(self.err(format!(
                "{name} {v:?} must be two positive values (only 2-D is supported)"
            ))),
        }
    }

    fn spatial_input(&self, graph: &Graph, x: NodeId) -> Result<[usize; 2], FrontendError> {
        match self.shape_of(graph, x).dims() {
            &[_, h, w] => Ok([h, w]),
            _ => Err(self.err(format!(
                "input is [batch, {}]; only 2-D [batch, C, H, W] inputs are supported",
                self.shape_of(graph, x)
            ))),
        }
    }

    fn conv(&self, graph: &mut Graph) -> Result<Value, FrontendError> {
        self.allow(&[
            "auto_pad",
            "dilations",
            "group",
            "kernel_shape",
            "pads",
            "strides",
        ])?;
        let x = self.data(0)?;
        let mut w = self.required_constant(1, "weight")?.to_f64();
        if self.one_d && w.ndim() == 3 {
            // [F, C, K] → [F, C, 1, K]: the kernel of the height-1 view.
            w.insert_axis_inplace(Axis(2));
        }
        let weight = w.into_dimensionality::<Ix4>().map_err(|_| {
            self.err("weight must be [F, C, KH, KW] (2-D) or [F, C, K] (1-D); 3-D convolution is not supported")
        })?;
        let x = self.as_2d(graph, x)?;
        let channels = self.shape_of(graph, x).dims()[0];
        let weight = self.ungroup(weight, channels)?;
        let (f, _, kh, kw) = weight.dim();
        self.check_kernel_shape(kh, kw)?;
        let bias = match self.constant_input(2, "bias")? {
            Some(b) => b
                .to_f64()
                .into_dimensionality::<Ix1>()
                .map_err(|_| self.err("bias must be 1-D"))?,
            None => Array1::zeros(f),
        };
        let strides = self.pair("strides", 1)?;
        let dilations = self.pair("dilations", 1)?;
        let input = self.spatial_input(graph, x)?;
        let pads = self.padding(input, [kh, kw], strides, dilations)?;
        let conv = Op::Conv(Conv {
            weight,
            bias,
            strides,
            pads,
            dilations,
        });
        self.add_2d(graph, conv, x)
    }

    /// A `kernel_shape` attribute, where given, must match the weight's `kh × kw`
    /// (just `kw` for a 1-D op).
    fn check_kernel_shape(&self, kh: usize, kw: usize) -> Result<(), FrontendError> {
        let Some(ks) = self.ints("kernel_shape")? else {
            return Ok(());
        };
        let expected: &[i64] = if self.one_d {
            &[kw as i64]
        } else {
            &[kh as i64, kw as i64]
        };
        if ks != expected {
            return Err(self.err(format!(
                "kernel_shape {ks:?} disagrees with the weight's {kh}x{kw}"
            )));
        }
        Ok(())
    }

    /// A grouped convolution's weight `[F, C/g, KH, KW]` as the ordinary
    /// convolution's `[F, C, KH, KW]`, zero outside each filter's group (a
    /// depthwise filter reads one channel). Exact, and the zeros cost nothing:
    /// lowering emits no product for a zero weight.
    fn ungroup(&self, weight: Array4<f64>, channels: usize) -> Result<Array4<f64>, FrontendError> {
        let groups = self.int("group")?.unwrap_or(1);
        let (f, per_group, kh, kw) = weight.dim();
        if groups < 1 || f % groups as usize != 0 || per_group * groups as usize != channels {
            return Err(self.err(format!(
                "group = {groups} does not divide {f} filters and {channels} input channels (the weight reads {per_group} per group)"
            )));
        }
        if groups == 1 {
            return Ok(weight);
        }
        let filters_per_group = f / groups as usize;
        let mut full = Array4::zeros((f, channels, kh, kw));
        for filter in 0..f {
            let first = (filter / filters_per_group) * per_group;
            full.slice_mut(ndarray::s![filter, first..first + per_group, .., ..])
                .assign(&weight.slice(ndarray::s![filter, .., .., ..]));
        }
        Ok(full)
    }

    /// A 1-D op's `[C, L]` input as `[C, 1, L]`; other inputs unchanged.
    fn as_2d(&self, graph: &mut Graph, x: NodeId) -> Result<NodeId, FrontendError> {
        if !self.one_d {
            return Ok(x);
        }
        let dims = self.shape_of(graph, x).dims().to_vec();
        graph
            .add(
                format!("{}/as2d", self.name),
                Op::Reshape(Shape::new(vec![dims[0], 1, dims[1]])),
                &[x],
            )
            .map_err(|e| self.err(e.to_string()))
    }

    /// Add a 2-D op; a 1-D op's `[F, 1, L']` result is reshaped back to `[F, L']`.
    fn add_2d(&self, graph: &mut Graph, op: Op, x: NodeId) -> Result<Value, FrontendError> {
        if !self.one_d {
            return self.add(graph, op, x);
        }
        let y = graph
            .add(format!("{}/2d", self.name), op, &[x])
            .map_err(|e| self.err(e.to_string()))?;
        let dims = self.shape_of(graph, y).dims().to_vec();
        self.add(graph, Op::Reshape(Shape::new(vec![dims[0], dims[2]])), y)
    }

    fn gemm(&self, graph: &mut Graph) -> Result<Value, FrontendError> {
        self.allow(&["alpha", "beta", "transA", "transB", "broadcast"])?;
        if self.int("transA")?.unwrap_or(0) != 0 {
            return Err(self.err(
                "transA = 1 would transpose the batch into the features; export with transA = 0",
            ));
        }
        let x = self.data(0)?;
        if self.shape_of(graph, x).rank() != 1 {
            return Err(self.err(format!(
                "input A must be [batch, K], got [batch, {}]; add a Flatten first",
                self.shape_of(graph, x)
            )));
        }
        let alpha = self.float("alpha")?.unwrap_or(1.0) as f64;
        let beta = self.float("beta")?.unwrap_or(1.0) as f64;
        let b = self.matrix(1)?;
        let b = if self.int("transB")?.unwrap_or(0) != 0 {
            b.reversed_axes()
        } else {
            b
        };
        let weight = b.mapv(|v| alpha * v);
        let n = weight.ncols();
        let bias = match self.constant_input(2, "C")? {
            None => Array1::zeros(n),
            Some(c) => self.bias_vector(&c.to_f64(), n)?.mapv(|v| beta * v),
        };
        self.add(graph, Op::Dense(Dense { weight, bias }), x)
    }

    fn matrix(&self, i: usize) -> Result<Array2<f64>, FrontendError> {
        match self.input(i)? {
            Some(Value::Const(c)) => c.to_f64().into_dimensionality::<Ix2>().map_err(|_| {
                self.err(format!("the weight (input {i}) must be a 2-D matrix, got shape {:?}", c.shape()))
            }),
            Some(Value::Data(_)) => Err(self.err(format!(
                "input {i} is computed from the data; hepack supports products with a constant weight only"
            ))),
            _ => Err(self.err(format!("the weight (input {i}) is missing"))),
        }
    }

    /// A Gemm `C` operand as a per-neuron bias; it must not vary along the batch.
    fn bias_vector(&self, c: &ArrayD<f64>, n: usize) -> Result<Array1<f64>, FrontendError> {
        let shape = c.shape();
        let ok = match shape {
            [] => true,
            [m] => *m == 1 || *m == n,
            [1, m] => *m == 1 || *m == n,
            _ => false,
        };
        if !ok {
            return Err(self.err(format!(
                "C of shape {shape:?} does not broadcast to [batch, {n}] independently of the batch"
            )));
        }
        let flat: Vec<f64> = c.iter().copied().collect();
        Ok(if flat.len() == 1 {
            Array1::from_elem(n, flat[0])
        } else {
            Array1::from_vec(flat)
        })
    }

    fn matmul(&self, graph: &mut Graph) -> Result<Value, FrontendError> {
        self.allow(&[])?;
        if let Some(Value::Const(_)) = self.input(0)? {
            return Err(self.err("the data must be the left operand (x·W); W·x is not supported"));
        }
        let x = self.data(0)?;
        let weight = self.matrix(1)?;
        let bias = Array1::zeros(weight.ncols());
        self.add(graph, Op::Dense(Dense { weight, bias }), x)
    }

    /// A constant operand of an element-wise op, made per-sample: a leading axis of
    /// the full (batch) rank must be 1 and is dropped.
    fn per_sample_constant(&self, c: &Const, sample: &Shape) -> Result<ArrayD<f64>, FrontendError> {
        let a = c.to_f64();
        if a.ndim() <= sample.rank() {
            return Ok(a);
        }
        if a.ndim() == sample.rank() + 1 && a.shape()[0] == 1 {
            return Ok(a.index_axis_move(Axis(0), 0));
        }
        Err(self.err(format!(
            "constant operand of shape {:?} varies along the batch dimension; it must broadcast onto one sample [{sample}]",
            a.shape()
        )))
    }

    fn arithmetic(&self, graph: &mut Graph) -> Result<Value, FrontendError> {
        self.allow(&["broadcast", "axis"])?;
        if self.attr("axis").is_some() {
            return Err(self.err("the legacy 'axis' broadcast attribute is not supported; re-export with opset 7 or later semantics"));
        }
        let op = self.node.op_type.as_str();
        let (a, b) = (self.input(0)?, self.input(1)?);
        match (a, b) {
            (Some(Value::Const(a)), Some(Value::Const(b))) => {
                if fold::carries_batch(a) || fold::carries_batch(b) {
                    return Err(self.err(
                        "computes with the batch size (from Shape of the input); hepack compiles \
                         per-sample shapes: export with a constant shape or nn.Flatten",
                    ));
                }
                let shape = fold::broadcast_dims(a.shape(), b.shape()).ok_or_else(|| {
                    self.err(format!(
                        "constants of shapes {:?} and {:?} do not broadcast",
                        a.shape(),
                        b.shape()
                    ))
                })?;
                // Shape arithmetic (`x.size(1) * x.size(2)`) stays integral, as in ONNX.
                if let (Const::Int(a), Const::Int(b)) = (a, b) {
                    let (a, b) = (
                        a.broadcast(IxDyn(&shape)).expect("checked"),
                        b.broadcast(IxDyn(&shape)).expect("checked"),
                    );
                    let mut out = ArrayD::zeros(IxDyn(&shape));
                    for ((o, &p), &q) in out.iter_mut().zip(a.iter()).zip(b.iter()) {
                        *o = match op {
                            "Add" => p.wrapping_add(q),
                            "Sub" => p.wrapping_sub(q),
                            "Mul" => p.wrapping_mul(q),
                            _ if q == 0 => return Err(self.err("integer division by zero")),
                            // ONNX's integer Div truncates toward zero, as Rust's does.
                            _ => p.wrapping_div(q),
                        };
                    }
                    return Ok(Value::Const(Const::Int(out)));
                }
                let (a, b) = self.broadcast2(a, b)?;
                let folded = ndarray::Zip::from(&a)
                    .and(&b)
                    .map_collect(|&p, &q| match op {
                        "Add" => p + q,
                        "Sub" => p - q,
                        "Mul" => p * q,
                        _ => p / q,
                    });
                Ok(Value::Const(Const::Float(folded)))
            }
            (Some(Value::Data(x)), Some(Value::Const(c))) => {
                let c = self.per_sample_constant(c, &self.shape_of(graph, *x))?;
                let op = match op {
                    "Add" => Op::AddConst(c),
                    "Sub" => Op::AddConst(-c),
                    "Mul" => Op::MulConst(c),
                    _ => {
                        if c.iter().any(|&v| v == 0.0) {
                            return Err(self.err("division by a constant containing zero"));
                        }
                        Op::MulConst(c.mapv(|v| 1.0 / v))
                    }
                };
                self.add(graph, op, *x)
            }
            (Some(Value::Const(c)), Some(Value::Data(x))) => {
                let c = self.per_sample_constant(c, &self.shape_of(graph, *x))?;
                match op {
                    "Add" => self.add(graph, Op::AddConst(c), *x),
                    "Mul" => self.add(graph, Op::MulConst(c), *x),
                    "Sub" => {
                        // c - x = (-1)·x + c: two IR nodes, the first named after this one.
                        let neg = graph
                            .add(format!("{}/neg", self.name), Op::MulConst(ndarray::arr0(-1.0).into_dyn()), &[*x])
                            .map_err(|e| self.err(e.to_string()))?;
                        self.add(graph, Op::AddConst(c), neg)
                    }
                    _ => Err(self.err("dividing by the data is not a polynomial and cannot be compiled; only x / constant is supported")),
                }
            }
            (Some(Value::Data(a)), Some(Value::Data(b))) => {
                if op == "Mul" {
                    if let Some((x, act, factor)) =
                        activation::gate(graph, *a, *b).or_else(|| activation::gate(graph, *b, *a))
                    {
                        if factor == 1.0 {
                            return self.add(graph, Op::Activation(act), x);
                        }
                        let y = graph
                            .add(
                                format!("{}/{}", self.name, act.name()),
                                Op::Activation(act),
                                &[x],
                            )
                            .map_err(|e| self.err(e.to_string()))?;
                        return self.add(graph, Op::MulConst(ndarray::arr0(factor).into_dyn()), y);
                    }
                }
                // Two polynomials of the same tensor combine into one polynomial
                // (how an exported x² + x or a Horner-form activation reads).
                let ((base_a, pa), (base_b, pb)) =
                    (as_polynomial(graph, *a), as_polynomial(graph, *b));
                // A residual connection: the sum of two different tensors.
                if base_a != base_b && matches!(op, "Add" | "Sub") {
                    return self.residual(graph, *a, *b, op == "Sub");
                }
                if base_a != base_b || op == "Div" {
                    return Err(self.err(format!(
                        "{op} of two data tensors is supported only when both are polynomials of the same tensor \
                         (x·x, x + x², …) or an activation written as a product (x·sigmoid(x) is nn.SiLU, \
                         x·tanh(softplus(x)) nn.Mish, x·(1 + erf(x/√2)) nn.GELU); one operand must otherwise be a constant"
                    )));
                }
                let mut coeffs = match op {
                    "Add" => poly_add(&pa, &pb, 1.0),
                    "Sub" => poly_add(&pa, &pb, -1.0),
                    _ => poly_mul(&pa, &pb),
                };
                while coeffs.len() > 1 && coeffs.last() == Some(&0.0) {
                    coeffs.pop();
                }
                if coeffs.len() > MAX_POLY_TERMS {
                    return Err(self.err(format!(
                        "the polynomial reaches degree {}, above the {} hepack supports",
                        coeffs.len() - 1,
                        MAX_POLY_TERMS - 1
                    )));
                }
                self.add(graph, Op::Polynomial(Polynomial::new(coeffs)), base_a)
            }
            _ => Err(self.err("needs two inputs")),
        }
    }

    fn pow(&self, graph: &mut Graph) -> Result<Value, FrontendError> {
        self.allow(&[])?;
        let x = self.data(0)?;
        let e = self.required_constant(1, "exponent")?.to_f64();
        if e.is_empty() || e.iter().any(|&v| v != 2.0) {
            return Err(self.err("only the constant exponent 2 (x²) is supported"));
        }
        self.add(graph, Op::Activation(Activation::Square), x)
    }

    fn pool(&self, graph: &mut Graph) -> Result<Vec<Value>, FrontendError> {
        let max = self.node.op_type == "MaxPool";
        if max {
            self.allow(&[
                "auto_pad",
                "ceil_mode",
                "dilations",
                "kernel_shape",
                "pads",
                "storage_order",
                "strides",
            ])?;
        } else {
            self.allow(&[
                "auto_pad",
                "ceil_mode",
                "count_include_pad",
                "dilations",
                "kernel_shape",
                "pads",
                "strides",
            ])?;
        }
        let x = self.data(0)?;
        let x = self.as_2d(graph, x)?;
        let kernel = match self.ints("kernel_shape")? {
            Some(k) if k.len() == 2 && k.iter().all(|&v| (1..=1 << 20).contains(&v)) => {
                [k[0] as usize, k[1] as usize]
            }
            Some(k) if self.one_d && k.len() == 1 && (1..=1 << 20).contains(&k[0]) => {
                [1, k[0] as usize]
            }
            Some(k) => {
                return Err(self.err(format!(
                    "kernel_shape {k:?} must be two positive sizes (only 2-D pooling is supported)"
                )))
            }
            None => return Err(self.err("kernel_shape is required")),
        };
        let strides = self.pair("strides", 1)?;
        let dilations = self.pair("dilations", 1)?;
        let input = self.spatial_input(graph, x)?;
        let pads = self.padding(input, kernel, strides, dilations)?;
        let ceil_mode = self.int("ceil_mode")?.unwrap_or(0) != 0;
        let pool = Pool {
            kernel,
            strides,
            pads,
            dilations,
            ceil_mode,
        };
        let op = if max {
            Op::MaxPool(pool)
        } else {
            let count_include_pad = self.int("count_include_pad")?.unwrap_or(0) != 0;
            Op::AvgPool(AvgPool {
                pool,
                count_include_pad,
            })
        };
        let first = self.add_2d(graph, op, x)?;
        Ok(self.with_unavailable_extras(first, "(the argmax indices) is not supported"))
    }

    fn batch_norm(&self, graph: &mut Graph) -> Result<Vec<Value>, FrontendError> {
        self.allow(&[
            "epsilon",
            "momentum",
            "spatial",
            "training_mode",
            "is_test",
            "consumed_inputs",
        ])?;
        if self.int("training_mode")?.unwrap_or(0) != 0 {
            return Err(self.err("training_mode = 1; export the model in eval mode"));
        }
        if self.int("spatial")?.unwrap_or(1) != 1 {
            return Err(self.err("spatial = 0 (per-activation statistics) is not supported"));
        }
        let x = self.data(0)?;
        let vector = |i: usize, what: &str| -> Result<Array1<f64>, FrontendError> {
            self.required_constant(i, what)?
                .to_f64()
                .into_dimensionality::<Ix1>()
                .map_err(|_| self.err(format!("{what} must be 1-D")))
        };
        let bn = BatchNorm {
            scale: vector(1, "scale")?,
            bias: vector(2, "bias")?,
            mean: vector(3, "mean")?,
            var: vector(4, "var")?,
            epsilon: self.float("epsilon")?.unwrap_or(1e-5) as f64,
        };
        let first = self.add(graph, Op::BatchNorm(bn), x)?;
        Ok(self
            .with_unavailable_extras(first, "(a training statistic) is not computed at inference"))
    }

    /// Normalise an axis of the full (batch-first) tensor and check it is not the
    /// batch. `past_end` admits `axis == rank`, which Flatten allows.
    fn sample_axis(
        &self,
        axis: i64,
        full_rank: usize,
        past_end: bool,
    ) -> Result<usize, FrontendError> {
        let a = if axis < 0 {
            axis + full_rank as i64
        } else {
            axis
        };
        if a <= 0 || a >= full_rank as i64 + i64::from(past_end) {
            return Err(self.err(format!(
                "axis {axis} is the batch axis or out of range for a rank-{full_rank} tensor"
            )));
        }
        Ok(a as usize - 1)
    }

    fn flatten(&self, graph: &mut Graph) -> Result<Value, FrontendError> {
        self.allow(&["axis"])?;
        let x = self.data(0)?;
        let full_rank = self.shape_of(graph, x).rank() + 1;
        let axis = self.int("axis")?.unwrap_or(1);
        if self.sample_axis(axis, full_rank, true)? != 0 {
            return Err(self.err(format!(
                "axis {axis} would fold sample dimensions into the batch; only axis = 1 is supported"
            )));
        }
        self.add(graph, Op::Flatten, x)
    }

    fn reshape(&self, graph: &mut Graph) -> Result<Value, FrontendError> {
        self.allow(&["allowzero"])?;
        let x = self.data(0)?;
        let sample = self.shape_of(graph, x);
        let target: Vec<i64> = match self.input(1)? {
            Some(Value::Const(c)) => c
                .as_int()
                .ok_or_else(|| self.err("the shape must be an int64 tensor"))?
                .iter()
                .copied()
                .collect(),
            Some(Value::Data(_)) => {
                return Err(self.err(
                    "the target shape is computed at run time (e.g. x.view(x.size(0), -1)); use nn.Flatten or a constant shape",
                ))
            }
            _ => return Err(self.err("the target shape (input 1) is missing")),
        };
        let allowzero = self.int("allowzero")?.unwrap_or(0) != 0;
        let shape = self.resolve_reshape(&target, &sample, allowzero)?;
        self.add(graph, Op::Reshape(shape), x)
    }

    /// Turn an ONNX reshape target (which includes the batch axis) into a per-sample shape.
    fn resolve_reshape(
        &self,
        target: &[i64],
        sample: &Shape,
        allowzero: bool,
    ) -> Result<Shape, FrontendError> {
        let bad = |why: &str| self.err(format!("target shape {target:?} {why}"));
        let (&first, rest) = target.split_first().ok_or_else(|| bad("is empty"))?;
        let batch_kept = match first {
            0 if !allowzero => true,
            -1 | BATCH => true,
            n => matches!(self.batch, BatchDim::Fixed(b) if n == *b as i64),
        };
        if !batch_kept {
            return Err(bad(
                "does not keep the batch as its first dimension (use 0 or -1 there)",
            ));
        }
        let mut dims: Vec<Option<usize>> = Vec::with_capacity(rest.len());
        for (i, &d) in rest.iter().enumerate() {
            dims.push(match d {
                0 if !allowzero => Some(
                    *sample
                        .dims()
                        .get(i)
                        .ok_or_else(|| bad("copies a dimension the input does not have"))?,
                ),
                -1 => None,
                d if d > 0 => Some(d as usize),
                BATCH => return Err(bad("puts the batch size inside a sample")),
                _ => return Err(bad("has an invalid dimension")),
            });
        }
        let known = dims
            .iter()
            .flatten()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| bad("overflows"))?;
        let unknown = dims.iter().filter(|d| d.is_none()).count();
        let numel = sample.numel();
        let resolved: Vec<usize> = match unknown {
            0 if known == numel => dims.into_iter().flatten().collect(),
            // A -1 in the batch position means every other dimension is given.
            0 => {
                return Err(bad(&format!(
                    "has {known} elements per sample, the input {numel}"
                )))
            }
            1 if first != -1 && known > 0 && numel % known == 0 => dims
                .into_iter()
                .map(|d| d.unwrap_or(numel / known))
                .collect(),
            _ => return Err(bad("leaves more than one dimension to infer")),
        };
        Ok(Shape::new(resolved))
    }

    fn transpose(&self, graph: &mut Graph) -> Result<Value, FrontendError> {
        self.allow(&["perm"])?;
        let x = self.data(0)?;
        let full_rank = self.shape_of(graph, x).rank() + 1;
        let perm = self
            .ints("perm")?
            .unwrap_or_else(|| (0..full_rank as i64).rev().collect());
        if perm.first() != Some(&0) || perm.len() != full_rank {
            return Err(self.err(format!(
                "perm {perm:?} moves the batch axis; it must start with 0 and list all {full_rank} axes"
            )));
        }
        let per_sample: Vec<usize> = perm[1..]
            .iter()
            .map(|&p| {
                usize::try_from(p - 1)
                    .map_err(|_| self.err(format!("perm {perm:?} is not a permutation")))
            })
            .collect::<Result<_, _>>()?;
        self.add(graph, Op::Transpose(per_sample), x)
    }

    fn softmax(&self, graph: &mut Graph) -> Result<Value, FrontendError> {
        self.allow(&["axis"])?;
        let x = self.data(0)?;
        let full_rank = self.shape_of(graph, x).rank() + 1;
        let legacy = self.opset < 13;
        let axis = self.int("axis")?.unwrap_or(if legacy { 1 } else { -1 });
        let axis = self.sample_axis(axis, full_rank, false)?;
        self.add(
            graph,
            Op::Softmax(Softmax {
                axis,
                flatten_trailing: legacy,
                log: self.node.op_type == "LogSoftmax",
            }),
            x,
        )
    }
}

/// Most coefficients of a polynomial built from element-wise products.
const MAX_POLY_TERMS: usize = 64;

/// `id` as a polynomial of an earlier tensor: walks back through scalar scalings,
/// scalar shifts, squares and polynomials. A tensor that is none of these is the
/// polynomial `x` of itself.
fn as_polynomial(graph: &Graph, id: NodeId) -> (NodeId, Vec<f64>) {
    let scalar =
        |c: &ndarray::ArrayD<f64>| (c.len() == 1).then(|| c.iter().copied().next()).flatten();
    let outer: Vec<f64> = match &graph.node(id).op {
        Op::AddConst(c) => match scalar(c) {
            Some(v) => vec![v, 1.0],
            None => return (id, vec![0.0, 1.0]),
        },
        Op::MulConst(c) => match scalar(c) {
            Some(v) => vec![0.0, v],
            None => return (id, vec![0.0, 1.0]),
        },
        Op::Activation(Activation::Square) => vec![0.0, 0.0, 1.0],
        Op::Polynomial(p) => p.coeffs.clone(),
        _ => return (id, vec![0.0, 1.0]),
    };
    let (base, inner) = as_polynomial(graph, graph.operands(id)[0]);
    // outer(inner(x)) by Horner's rule on polynomials.
    let composed = outer.iter().rev().fold(vec![0.0], |acc, &c| {
        let mut next = poly_mul(&acc, &inner);
        next[0] += c;
        next
    });
    if composed.len() > MAX_POLY_TERMS {
        return (id, vec![0.0, 1.0]);
    }
    (base, composed)
}

fn poly_add(a: &[f64], b: &[f64], sign: f64) -> Vec<f64> {
    (0..a.len().max(b.len()))
        .map(|i| a.get(i).copied().unwrap_or(0.0) + sign * b.get(i).copied().unwrap_or(0.0))
        .collect()
}

fn poly_mul(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, &x) in a.iter().enumerate() {
        for (j, &y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `known` (which reports unsupported nodes after an unsupported one)
    /// and `build` agree on which ops exist.
    #[test]
    fn every_listed_op_has_a_builder() {
        let mut graph = Graph::new("x", Shape::new(vec![2]));
        let env = HashMap::new();
        for op in OPS.iter().chain(fold::FOLDABLE) {
            let data_op = OPS.contains(op);
            let node = NodeProto {
                op_type: op.to_string(),
                input: vec!["missing".into()],
                output: vec!["y".into()],
                ..Default::default()
            };
            assert_eq!(known(&node), data_op, "{op}");
            let result = build(&mut graph, &node, "n", 17, &env, &BatchDim::Unknown);
            assert!(
                !matches!(result, Err(FrontendError::UnsupportedOp { .. })),
                "{op} is listed but has no builder"
            );
        }
        let node = NodeProto {
            op_type: "LayerNormalization".into(),
            ..Default::default()
        };
        assert!(!known(&node));
    }

    fn ints(v: &[i64]) -> Const {
        Const::Int(Array1::from_vec(v.to_vec()).into_dyn())
    }

    /// Fold one node over constant inputs `c0`, `c1`, ….
    fn fold(
        op: &str,
        attrs: Vec<AttributeProto>,
        inputs: Vec<Const>,
    ) -> Result<Const, FrontendError> {
        let mut graph = Graph::new("x", Shape::new(vec![2, 3]));
        let mut env: HashMap<String, Value> = HashMap::new();
        env.insert("x".into(), Value::Data(graph.input()));
        let names: Vec<String> = (0..inputs.len()).map(|i| format!("c{i}")).collect();
        for (n, c) in names.iter().zip(inputs) {
            env.insert(n.clone(), Value::Const(c));
        }
        let node = NodeProto {
            op_type: op.into(),
            input: names,
            output: vec!["y".into()],
            attribute: attrs,
            ..Default::default()
        };
        match build(&mut graph, &node, "n", 17, &env, &BatchDim::Unknown)?.remove(0) {
            Value::Const(c) => Ok(c),
            _ => panic!("{op} did not fold"),
        }
    }

    fn int_attr(name: &str, i: i64) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            type_: AttributeType::INT.into(),
            i,
            ..Default::default()
        }
    }

    #[test]
    fn constant_gather_along_an_inner_axis() {
        let m = Const::Int(ndarray::arr2(&[[1, 2, 3], [4, 5, 6]]).into_dyn());
        let got = fold("Gather", vec![int_attr("axis", 1)], vec![m, ints(&[2, 0])]).unwrap();
        assert_eq!(
            got.as_int().unwrap(),
            &ndarray::arr2(&[[3, 1], [6, 4]]).into_dyn()
        );
    }

    #[test]
    fn constant_slice_backwards_clamps_as_onnx_does() {
        let v = ints(&[0, 1, 2, 3, 4]);
        // starts below the axis clamp to 0 for a negative step: [x0].
        let got = fold(
            "Slice",
            vec![],
            vec![
                v.clone(),
                ints(&[-10]),
                ints(&[i64::MIN]),
                ints(&[0]),
                ints(&[-1]),
            ],
        )
        .unwrap();
        assert_eq!(got.as_int().unwrap().as_slice().unwrap(), &[0]);
        let got = fold(
            "Slice",
            vec![],
            vec![v, ints(&[-1]), ints(&[i64::MIN]), ints(&[0]), ints(&[-2])],
        )
        .unwrap();
        assert_eq!(got.as_int().unwrap().as_slice().unwrap(), &[4, 2, 0]);
    }

    #[test]
    fn shape_arithmetic_stays_integral_and_refuses_the_batch() {
        let got = fold("Mul", vec![], vec![ints(&[3]), ints(&[4])]).unwrap();
        assert_eq!(got.as_int().unwrap().as_slice().unwrap(), &[12]);
        let got = fold("Div", vec![], vec![ints(&[-7]), ints(&[2])]).unwrap();
        assert_eq!(got.as_int().unwrap().as_slice().unwrap(), &[-3]);
        let err = fold("Mul", vec![], vec![ints(&[fold::BATCH]), ints(&[2])]).unwrap_err();
        assert!(err.to_string().contains("batch size"), "{err}");
        // The batch may be concatenated into a shape, not used as a slice bound.
        let got = fold(
            "Concat",
            vec![int_attr("axis", 0)],
            vec![ints(&[fold::BATCH]), ints(&[-1])],
        )
        .unwrap();
        assert_eq!(
            got.as_int().unwrap().as_slice().unwrap(),
            &[fold::BATCH, -1]
        );
        let err = fold(
            "Slice",
            vec![],
            vec![ints(&[1, 2, 3]), ints(&[0]), ints(&[fold::BATCH])],
        )
        .unwrap_err();
        assert!(err.to_string().contains("batch size"), "{err}");
    }
}
