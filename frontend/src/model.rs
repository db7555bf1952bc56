//! Reading an ONNX `ModelProto` into an [`ir::Graph`](hepack_ir::Graph).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use hepack_ir::{Graph, GraphOutput, NodeId, Shape};
use onnx_protobuf::tensor_shape_proto::dimension;
use onnx_protobuf::type_proto;
use onnx_protobuf::{Message, ModelProto, NodeProto, ValueInfoProto};

use crate::error::FrontendError;
use crate::ops;
use crate::tensor::{self, dtype_name, Const};

/// Lowest and highest default-domain opset the frontend reads.
pub const OPSETS: std::ops::RangeInclusive<i64> = 7..=21;

/// How a model declares its batch (first input) dimension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchDim {
    /// A symbolic dimension (`dim_param`), e.g. `"batch"`.
    Symbolic(String),
    /// A fixed size; hepack still runs any batch size.
    Fixed(usize),
    /// Not declared.
    Unknown,
}

/// A model read from ONNX.
#[derive(Clone, Debug)]
pub struct Model {
    /// The graph, verified.
    pub graph: Graph,
    /// The default-domain opset the model was exported with.
    pub opset: i64,
    /// The name of the data input.
    pub input_name: String,
    /// The names of the outputs, in the model's order.
    pub output_names: Vec<String>,
    /// The batch dimension as declared by the model.
    pub batch: BatchDim,
    /// The exporter that wrote the file (`producer_name producer_version`).
    pub producer: String,
}

/// What a name in the ONNX graph currently refers to.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// A tensor computed from the data input by an IR node.
    Data(NodeId),
    /// A constant known at compile time.
    Const(Const),
    /// An output hepack does not compute, with the reason.
    Unavailable(String),
    /// `x > threshold` (or `<`, `>=`, `<=`) of a data tensor: usable only as the
    /// condition of a `Where` hepack can resolve (Softplus's linear tail).
    Compare {
        /// The data tensor compared.
        x: NodeId,
        /// `Greater`, `Less`, `GreaterOrEqual` or `LessOrEqual`.
        op: String,
        /// The constant it is compared with.
        threshold: f64,
    },
}

/// Largest ONNX file read (protobuf messages cannot be larger).
pub const MAX_MODEL_BYTES: u64 = 2 << 30;

/// Reads ONNX models. Most callers want [`load`]; the builder lets tests bind
/// graph inputs to constants (the ONNX conformance tests pass weights as inputs).
#[derive(Debug, Default)]
pub struct Loader {
    bound: HashMap<String, Const>,
}

/// Read the model at `path` (external data files are looked up beside it).
pub fn load(path: &Path) -> Result<Model, FrontendError> {
    Loader::default().load(path)
}

impl Loader {
    /// Treat the graph input `name` as a constant with this value.
    pub fn bind(mut self, name: impl Into<String>, value: Const) -> Self {
        self.bound.insert(name.into(), value);
        self
    }

    /// Read a model from an already decoded message (`base_dir` as in [`Loader::load_bytes`]).
    pub fn load_proto(
        &self,
        model: &ModelProto,
        base_dir: Option<&Path>,
    ) -> Result<Model, FrontendError> {
        self.convert(model, base_dir)
    }

    /// Read the model at `path` (a regular file of at most 2 GiB, protobuf's
    /// limit; larger models keep their weights in external data).
    pub fn load(&self, path: &Path) -> Result<Model, FrontendError> {
        let bytes = crate::input::read_regular(path, MAX_MODEL_BYTES).map_err(|source| {
            FrontendError::Io {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        self.load_bytes(&bytes, Some(&dir), &path.display().to_string())
    }

    /// Read a model from bytes. `base_dir` is where external data lives (`None`
    /// forbids external data); `what` names the source in errors.
    pub fn load_bytes(
        &self,
        bytes: &[u8],
        base_dir: Option<&Path>,
        what: &str,
    ) -> Result<Model, FrontendError> {
        let decode = |detail: &str| FrontendError::Decode {
            what: what.to_string(),
            detail: detail.to_string(),
        };
        if bytes.is_empty() {
            return Err(decode("the file is empty"));
        }
        let proto = ModelProto::parse_from_bytes(bytes).map_err(|e| decode(&e.to_string()))?;
        // Protobuf reads many non-ONNX files as a message with unknown fields only.
        if proto.graph.is_none() && proto.opset_import.is_empty() {
            return Err(decode("it holds no ONNX graph and no opset"));
        }
        self.convert(&proto, base_dir)
    }

    fn convert(&self, model: &ModelProto, base_dir: Option<&Path>) -> Result<Model, FrontendError> {
        let opset = model
            .opset_import
            .iter()
            .filter(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .max()
            .unwrap_or(0);
        if !OPSETS.contains(&opset) {
            return Err(FrontendError::Opset { found: opset });
        }
        let g = model
            .graph
            .as_ref()
            .ok_or_else(|| FrontendError::Graph("the model has no graph".into()))?;

        tracing::debug!(
            opset,
            nodes = g.node.len(),
            initializers = g.initializer.len(),
            "reading ONNX graph"
        );
        let mut env: HashMap<String, Value> = HashMap::new();
        for init in &g.initializer {
            env.insert(
                init.name.clone(),
                Value::Const(tensor::decode(init, base_dir)?),
            );
        }
        if !g.sparse_initializer.is_empty() {
            return Err(FrontendError::Graph(
                "sparse initializers are not supported".into(),
            ));
        }
        for (name, value) in &self.bound {
            env.insert(name.clone(), Value::Const(value.clone()));
        }

        let data_inputs: Vec<&ValueInfoProto> = g
            .input
            .iter()
            .filter(|i| !env.contains_key(&i.name))
            .collect();
        let input = match data_inputs.as_slice() {
            [one] => *one,
            [] => {
                return Err(FrontendError::Graph(
                    "the model has no data input (every input has an initializer)".into(),
                ))
            }
            many => {
                let names: Vec<&str> = many.iter().map(|i| i.name.as_str()).collect();
                return Err(FrontendError::Graph(format!(
                    "the model has {} data inputs ({}); hepack compiles models with one input",
                    many.len(),
                    names.join(", ")
                )));
            }
        };
        let (input_shape, batch) = input_shape(input)?;
        let mut graph = Graph::new(input.name.clone(), input_shape);
        env.insert(input.name.clone(), Value::Data(graph.input()));

        let mut names = NameSet::default();
        names.taken.insert(input.name.clone());
        // Unsupported nodes are collected, not fatal, so that one error lists
        // them all; whatever reads their outputs is skipped.
        let mut unsupported: Vec<crate::error::Unsupported> = Vec::new();
        let mut skipped: HashSet<&str> = HashSet::new();
        for (position, node) in g.node.iter().enumerate() {
            let name = names.unique(node);
            let unknown = |name: String| crate::error::Unsupported {
                node: name,
                op: if node.domain.is_empty() || node.domain == "ai.onnx" {
                    node.op_type.clone()
                } else {
                    format!("{}.{}", node.domain, node.op_type)
                },
                position: position + 1,
                nodes: g.node.len(),
                inputs: node
                    .input
                    .iter()
                    .filter(|i| !i.is_empty())
                    .cloned()
                    .collect(),
            };
            if node.input.iter().any(|i| skipped.contains(i.as_str())) {
                if !ops::known(node) {
                    unsupported.push(unknown(name));
                }
                skipped.extend(node.output.iter().map(String::as_str));
                continue;
            }
            match ops::build(&mut graph, node, &name, opset, &env, &batch) {
                Ok(outputs) => {
                    for (out_name, value) in node.output.iter().zip(outputs) {
                        if !out_name.is_empty() {
                            env.insert(out_name.clone(), value);
                        }
                    }
                }
                Err(FrontendError::UnsupportedOp { .. }) => {
                    unsupported.push(unknown(name));
                    skipped.extend(node.output.iter().map(String::as_str));
                }
                // Once the load has failed, the list of unsupported nodes is
                // the error; other faults come next, once those are fixed.
                Err(_) if !unsupported.is_empty() => {
                    skipped.extend(node.output.iter().map(String::as_str));
                }
                Err(e) => return Err(e),
            }
        }
        if !unsupported.is_empty() {
            return Err(FrontendError::Unsupported(unsupported));
        }

        if g.output.is_empty() {
            return Err(FrontendError::Graph("the model declares no output".into()));
        }
        let mut outputs = Vec::with_capacity(g.output.len());
        for info in &g.output {
            let name = &info.name;
            let node = match env.get(name) {
                Some(Value::Data(id)) => *id,
                Some(Value::Const(_)) => {
                    return Err(FrontendError::Graph(format!(
                        "output '{name}' is a constant that does not depend on the input"
                    )))
                }
                Some(Value::Unavailable(why)) => {
                    return Err(FrontendError::Graph(format!("output '{name}': {why}")))
                }
                Some(Value::Compare { .. }) => {
                    return Err(FrontendError::Graph(format!(
                        "output '{name}' is a comparison of the data, which CKKS cannot compute"
                    )))
                }
                None => {
                    return Err(FrontendError::Graph(format!(
                        "output '{name}' is not produced by any node"
                    )))
                }
            };
            outputs.push(GraphOutput {
                name: name.clone(),
                node,
            });
        }
        graph.set_outputs(outputs);
        // Element-wise products of the data with itself are merged into one
        // polynomial node; the partial terms they were built from are now unused.
        graph.remove_dead();
        for (info, out) in g.output.iter().zip(graph.outputs()) {
            check_declared_shape(info, &graph.node(out.node).shape)?;
        }
        check_softmax_last(&graph)?;
        graph.verify()?;

        Ok(Model {
            graph,
            opset,
            input_name: input.name.clone(),
            output_names: g.output.iter().map(|o| o.name.clone()).collect(),
            batch,
            producer: format!("{} {}", model.producer_name, model.producer_version)
                .trim()
                .to_string(),
        })
    }
}

/// Gives every node a unique layer name: its own, else its first output's.
#[derive(Default)]
struct NameSet {
    taken: HashSet<String>,
}

impl NameSet {
    fn unique(&mut self, node: &NodeProto) -> String {
        let base = if !node.name.is_empty() {
            node.name.clone()
        } else if let Some(out) = node.output.first().filter(|o| !o.is_empty()) {
            out.clone()
        } else {
            node.op_type.clone()
        };
        let mut name = base.clone();
        let mut k = 1;
        while !self.taken.insert(name.clone()) {
            name = format!("{base}#{k}");
            k += 1;
        }
        name
    }
}

fn input_shape(input: &ValueInfoProto) -> Result<(Shape, BatchDim), FrontendError> {
    let bad = |m: String| FrontendError::Graph(format!("input '{}': {m}", input.name));
    let Some(type_proto::Value::TensorType(t)) =
        input.type_.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(bad("is not a tensor".into()));
    };
    if t.elem_type != 1 && t.elem_type != 11 {
        return Err(bad(format!(
            "has element type {}; hepack models take float32 or float64 input",
            dtype_name(t.elem_type)
        )));
    }
    let dims = t.shape.as_ref().map(|s| s.dim.as_slice()).ok_or_else(|| {
        bad("has no declared shape; export the model with static non-batch dimensions".into())
    })?;
    if dims.is_empty() {
        return Err(bad(
            "is a scalar; hepack needs a batch dimension first".into()
        ));
    }
    let batch = match &dims[0].value {
        Some(dimension::Value::DimParam(p)) => BatchDim::Symbolic(p.clone()),
        Some(dimension::Value::DimValue(v)) if *v > 0 => BatchDim::Fixed(*v as usize),
        _ => BatchDim::Unknown,
    };
    let mut sample = Vec::with_capacity(dims.len() - 1);
    for (i, d) in dims[1..].iter().enumerate() {
        match &d.value {
            Some(dimension::Value::DimValue(v)) if *v > 0 => sample.push(*v as usize),
            _ => {
                return Err(bad(format!(
                    "dimension {} is not a fixed positive size; only the batch dimension may be symbolic",
                    i + 1
                )))
            }
        }
    }
    let shape = Shape::new(sample);
    if shape
        .checked_numel()
        .is_none_or(|n| n > hepack_ir::shape::MAX_ELEMENTS)
    {
        return Err(bad(format!("shape {shape} is too large")));
    }
    Ok((shape, batch))
}

/// Compare the inferred output shape with the one the model declares, where it declares one.
fn check_declared_shape(info: &ValueInfoProto, inferred: &Shape) -> Result<(), FrontendError> {
    let Some(type_proto::Value::TensorType(t)) = info.type_.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Ok(());
    };
    let Some(shape) = t.shape.as_ref() else {
        return Ok(());
    };
    let declared = &shape.dim;
    let mismatch = declared.len() != inferred.rank() + 1
        || declared[1..]
            .iter()
            .zip(inferred.dims())
            .any(|(d, &n)| matches!(d.value, Some(dimension::Value::DimValue(v)) if v != n as i64));
    if mismatch {
        let shown: Vec<String> = declared
            .iter()
            .map(|d| match &d.value {
                Some(dimension::Value::DimValue(v)) => v.to_string(),
                Some(dimension::Value::DimParam(p)) => p.clone(),
                _ => "?".into(),
            })
            .collect();
        return Err(FrontendError::Graph(format!(
            "output '{}' is declared as [{}] but the graph computes [batch, {inferred}]",
            info.name,
            shown.join(", ")
        )));
    }
    Ok(())
}

fn check_softmax_last(graph: &Graph) -> Result<(), FrontendError> {
    for id in graph.topo_order() {
        let node = graph.node(id);
        if matches!(node.op, hepack_ir::Op::Softmax(_)) && !graph.is_final(id) {
            return Err(FrontendError::Node {
                node: node.name.to_string(),
                op: "Softmax".into(),
                message: "Softmax is supported only as a model output that nothing else reads \
                     (CKKS cannot evaluate it; the client applies it after decryption)"
                    .into(),
            });
        }
    }
    Ok(())
}
