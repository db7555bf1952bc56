//! `Model`: an ONNX model in hepack's IR, and what the CLI does to one
//! (eval, inspect, passes, prune, tune, export, compile).

use std::path::Path;
use std::sync::Arc;

use hepack::commands::{self, compile, inspect, prune_args, tune};
use hepack::npy::Labels;
use hepack_frontend::{ExportType, Loader};
use ndarray::ArrayD;
use onnx_protobuf::Message;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::arrays::{array, outputs, Output};
use crate::errors::{message, raise, Kind, OrRaise};
use crate::options::{self, CompileOptions, InspectOptions, PassOptions, PruneOptions, TuneCall};
use crate::program::Program;

/// An ONNX model: what `hepack.load` returns.
#[pyclass(frozen, module = "hepack._native")]
pub struct Model {
    pub inner: hepack_frontend::Model,
    /// The ONNX bytes it was read from (`None` once a step changed it):
    /// programs record their hash.
    source: Option<Arc<Vec<u8>>>,
    /// How errors name it: the path, or `<bytes>`.
    label: String,
}

impl Model {
    fn derived(&self, inner: hepack_frontend::Model) -> Model {
        Model {
            inner,
            source: None,
            label: self.label.clone(),
        }
    }

    /// A calibration batch from Python, checked against the model's input.
    fn calibration(&self, calib: Option<(Vec<u8>, Vec<usize>)>) -> PyResult<Option<ArrayD<f64>>> {
        let what = "the calibration batch";
        calib
            .map(|(b, s)| samples(array(&b, s, what)?, &self.input_shape(), what, true))
            .transpose()
    }

    fn onnx(&self, dtype: ExportType) -> anyhow::Result<Vec<u8>> {
        Ok(hepack_frontend::to_onnx(&self.inner.graph, dtype)?.write_to_bytes()?)
    }
}

/// A training or validation set from Python: inputs, and targets that are
/// class ids (int64 bytes) or values (float64 bytes).
type SetArg = (Vec<u8>, Vec<usize>, Vec<u8>, Vec<usize>, bool);

fn set(arg: SetArg, what: &str, input: &[usize]) -> PyResult<tune::Set> {
    let (xb, xs, yb, ys, classes) = arg;
    let what_x = format!("{what}'s inputs");
    let x = samples(array(&xb, xs, &what_x)?, input, &what_x, true)?;
    let y = if classes {
        if ys.len() != 1 || yb.len() != ys[0] * 8 {
            return Err(message(
                Kind::Input,
                format!("{what} labels: integer labels must be one class id per sample, shape [N], got {ys:?}"),
            ));
        }
        Labels::Classes(
            yb.chunks_exact(8)
                .map(|c| i64::from_ne_bytes(c.try_into().expect("chunks of 8")))
                .collect(),
        )
    } else {
        Labels::Values(array(&yb, ys, &format!("{what} labels"))?)
    };
    tune::Set::named(
        x,
        y,
        &format!("{what}'s inputs"),
        &format!("{what}'s labels"),
    )
    .map_err(|e| raise(Kind::Input, e))
}

/// `x` if it is a batch `[samples ≥ 1, ...input]` (of finite values, with
/// `finite`).
fn samples(x: ArrayD<f64>, input: &[usize], what: &str, finite: bool) -> PyResult<ArrayD<f64>> {
    if x.ndim() == 0 || x.shape()[1..] != *input || x.shape()[0] == 0 {
        return Err(message(
            Kind::Input,
            format!(
                "{what}: shape {:?}; the model takes [samples ≥ 1, {}]",
                x.shape(),
                input
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if let Some(bad) = x.iter().find(|v| finite && !v.is_finite()) {
        return Err(message(
            Kind::Input,
            format!("{what} hold {bad}; only finite values are accepted"),
        ));
    }
    Ok(x)
}

#[pymethods]
impl Model {
    /// Read the ONNX model at `path`.
    #[staticmethod]
    fn load_path(py: Python<'_>, path: &str) -> PyResult<Model> {
        let p = Path::new(path);
        let (inner, bytes) = py
            .detach(|| -> anyhow::Result<_> {
                let bytes =
                    hepack_frontend::input::read_regular(p, hepack_frontend::MAX_MODEL_BYTES)
                        .map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?;
                Ok((commands::load_model(p)?, bytes))
            })
            .or_raise(Kind::Model)?;
        Ok(Model {
            inner,
            source: Some(Arc::new(bytes)),
            label: path.to_string(),
        })
    }

    /// Read an ONNX model from its bytes (external data is refused).
    #[staticmethod]
    fn load_bytes(py: Python<'_>, data: Vec<u8>) -> PyResult<Model> {
        let label = "<bytes>".to_string();
        let inner = py
            .detach(|| Loader::default().load_bytes(&data, None, "the ONNX bytes"))
            .or_raise(Kind::Model)?;
        Ok(Model {
            inner,
            source: Some(Arc::new(data)),
            label,
        })
    }

    /// The input's name.
    #[getter]
    fn input_name(&self) -> String {
        self.inner.input_name.clone()
    }

    /// One sample's input shape (without the batch dimension).
    #[getter]
    fn input_shape(&self) -> Vec<usize> {
        let g = &self.inner.graph;
        g.node(g.input()).shape.dims().to_vec()
    }

    /// The outputs' names, in the model's order.
    #[getter]
    fn output_names(&self) -> Vec<String> {
        self.inner
            .graph
            .outputs()
            .iter()
            .map(|o| o.name.clone())
            .collect()
    }

    /// Run the reference interpreter on a batch; one (name, bytes, shape)
    /// per output.
    fn eval<'py>(
        &self,
        py: Python<'py>,
        data: Vec<u8>,
        shape: Vec<usize>,
    ) -> PyResult<Vec<Output<'py>>> {
        let x = samples(
            array(&data, shape, "the input")?,
            &self.input_shape(),
            "the input",
            false,
        )?;
        let graph = &self.inner.graph;
        let ys = py
            .detach(|| hepack_ir::interp::run_outputs(graph, x.view()))
            .or_raise(Kind::Input)?;
        Ok(outputs(py, &self.output_names(), &ys))
    }

    /// `hepack inspect --json`'s report.
    fn inspect(&self, py: Python<'_>, argv: Vec<String>) -> PyResult<String> {
        let o: InspectOptions = options::parse("inspect", argv)?;
        let units = prune_args::units_label(o.packing, o.block);
        // The packing is made again inside: a `Lowering` is not `Sync`.
        o.packing.lowering(o.block, o.tile).or_raise(Kind::Option)?;
        let value = py
            .detach(|| {
                let lowering = o.packing.lowering(o.block, o.tile)?;
                inspect::report_json(
                    &self.inner,
                    &self.label,
                    lowering.as_ref(),
                    units,
                    o.he,
                    o.paper_counts,
                )
            })
            .or_raise(Kind::Compile)?;
        Ok(value.to_string())
    }

    /// Run passes (`hepack export`'s options); the new model and the
    /// passes' reports as JSON.
    fn transform(
        &self,
        py: Python<'_>,
        argv: Vec<String>,
        calib: Option<(Vec<u8>, Vec<usize>)>,
    ) -> PyResult<(Model, String)> {
        let mut o: PassOptions = options::parse("export", argv)?;
        o.passes.calib_batch = self.calibration(calib)?;
        let mut inner = self.inner.clone();
        let reports = py
            .detach(|| o.passes.run(&mut inner.graph, Some("he-friendly")))
            .or_raise(Kind::Compile)?;
        let json = serde_json::to_string(&reports).or_raise(Kind::Compile)?;
        Ok((self.derived(inner), json))
    }

    /// Prune (`hepack prune`'s options, or `masks`, a mask file's text);
    /// the pruned model, the report and the masks applied as JSON.
    fn prune(
        &self,
        py: Python<'_>,
        argv: Vec<String>,
        masks: Option<String>,
    ) -> PyResult<(Model, String, String)> {
        let mut o: PruneOptions = options::parse("prune", argv)?;
        o.prune.masks_text = masks;
        if !o.prune.is_set() {
            return Err(message(
                Kind::Option,
                "prune: give sparsity, layer, he_budget, masks or masks_in".into(),
            ));
        }
        let mut inner = self.inner.clone();
        let outcome = py
            .detach(|| -> anyhow::Result<_> {
                let outcome = o.prune.apply(&mut inner.graph)?.expect("a target is set");
                o.prune.write_masks(&outcome)?;
                Ok(outcome)
            })
            .or_raise(Kind::Compile)?;
        let report = serde_json::to_string(&outcome).or_raise(Kind::Compile)?;
        let masks = hepack_passes::prune::mask_file::to_json(&outcome.mask_set);
        Ok((self.derived(inner), report, masks))
    }

    /// MOFHEI's fine-tuning flow (`hepack tune`'s options); the tuned model
    /// and the report as JSON.
    #[pyo3(signature = (argv, train, val=None, test=None))]
    fn tune(
        &self,
        py: Python<'_>,
        argv: Vec<String>,
        train: SetArg,
        val: Option<SetArg>,
        test: Option<SetArg>,
    ) -> PyResult<(Model, String)> {
        let o: TuneCall = options::parse("tune", argv)?;
        let input = self.input_shape();
        let all = set(train, "the training set", &input)?;
        let val = val
            .map(|v| set(v, "the validation set", &input))
            .transpose()?;
        let test = test.map(|t| set(t, "the test set", &input)).transpose()?;
        let (train, val) =
            tune::split(all, val, o.val, "the training set").or_raise(Kind::Input)?;
        let graph = self.inner.graph.clone();
        let (graph, report) = py
            .detach(|| tune::tune(graph, &train, &val, test.as_ref(), &o.options))
            .or_raise(Kind::Compile)?;
        let json = serde_json::to_string(&report).or_raise(Kind::Compile)?;
        let mut inner = self.inner.clone();
        inner.graph = graph;
        Ok((self.derived(inner), json))
    }

    /// The model as ONNX bytes (float32 tensors, or float64 with `f64`).
    #[pyo3(signature = (f64 = false))]
    fn to_onnx<'py>(&self, py: Python<'py>, f64: bool) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self
            .onnx(hepack::export_type(f64))
            .or_raise(Kind::Compile)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Compile into a program (`hepack compile`'s options, and `masks`, a
    /// mask file's text); the program and the compile report as JSON.
    #[pyo3(signature = (argv, calib, masks = None))]
    fn compile(
        &self,
        py: Python<'_>,
        argv: Vec<String>,
        calib: Option<(Vec<u8>, Vec<usize>)>,
        masks: Option<String>,
    ) -> PyResult<(Program, String)> {
        let mut o: CompileOptions = options::parse("compile", argv)?;
        o.prune.masks_text = masks;
        o.passes.calib_batch = self.calibration(calib)?;
        let mut inner = self.inner.clone();
        let (compiled, bytes) = py
            .detach(|| -> anyhow::Result<_> {
                // A changed model records the hash of its own ONNX export.
                let bytes = match &self.source {
                    Some(b) => b.clone(),
                    None => Arc::new(self.onnx(ExportType::F64)?),
                };
                let c = compile::compile_model(
                    &mut inner, &bytes, &o.passes, &o.prune, &o.params, true,
                )?;
                Ok((c, bytes))
            })
            .or_raise(Kind::Compile)?;
        drop(bytes);
        let (program, cost) = compiled.lowered.expect("compile_model lowers when asked");
        let report = serde_json::json!({
            "passes": compiled.reports,
            "pruning": compiled.pruning,
            "he": cost,
            "ckks": program.params,
            "calibrated_max_abs": compiled.calibrated_max_abs,
        });
        Ok((Program::new(program), report.to_string()))
    }

    fn __repr__(&self) -> String {
        let s = hepack_ir::Summary::of(&self.inner.graph);
        format!(
            "<hepack.Model {}: {} layers, {} params, input {:?}>",
            self.label,
            s.layers.len(),
            s.total_params,
            self.input_shape()
        )
    }
}
