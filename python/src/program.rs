//! `Program`: a compiled CKKS program, and the client's and the server's
//! steps on it (keygen, encrypt, run, decrypt; infer does all four).

use std::sync::atomic::{AtomicBool, Ordering};

use hepack::commands::{he_report, infer, inspect_program, run};
use hepack_backend::file;
use hepack_runtime::ciphertexts::{Ciphertexts, Role};
use hepack_runtime::error::RuntimeError;
use hepack_runtime::keys;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::arrays::{array, outputs, Output};
use crate::errors::{message, raise, Kind, OrRaise};
use crate::options::{self, InferOptions, Progress, RunOptions};

/// A compiled program: what `Model.compile` returns and program files hold.
#[pyclass(frozen, module = "hepack._native")]
pub struct Program {
    program: hepack_backend::Program,
}

impl Program {
    pub fn new(program: hepack_backend::Program) -> Program {
        Program { program }
    }

    fn context(&self) -> PyResult<hepack_runtime::seal::Context> {
        keys::context(&self.program.params).or_raise(Kind::Program)
    }

    /// Clients refuse insecure parameters unless told otherwise, as the CLI's
    /// `--insecure` does.
    fn check_client(&self, insecure: bool) -> PyResult<()> {
        he_report::check_client_params(&self.program.params, insecure).or_raise(Kind::Security)
    }

    fn secret(
        &self,
        context: &hepack_runtime::seal::Context,
        secret: &[u8],
    ) -> PyResult<keys::ClientKey> {
        keys::read_secret(context, &self.program.params, secret)
            .map_err(|e| anyhow::Error::new(e).context("cannot load the secret key"))
            .or_raise(Kind::Keys)
    }

    fn ciphertexts(
        &self,
        context: &hepack_runtime::seal::Context,
        role: Role,
        data: &[u8],
    ) -> PyResult<Ciphertexts> {
        Ciphertexts::read(context, &self.program, role, data)
            .map_err(|e| anyhow::Error::new(e).context("cannot load the ciphertexts"))
            .or_raise(Kind::Ciphertext)
    }
}

#[pymethods]
impl Program {
    /// Read a program from a program file's bytes.
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Program> {
        if data.len() as u64 > file::MAX_FILE_BYTES {
            return Err(message(
                Kind::Program,
                format!(
                    "the program is {} bytes, over the {} a program file may hold",
                    data.len(),
                    file::MAX_FILE_BYTES
                ),
            ));
        }
        let program = file::decode(data)
            .map_err(|e| anyhow::Error::new(e).context("cannot load the program"))
            .or_raise(Kind::Program)?;
        Ok(Program { program })
    }

    /// The program file's bytes (`hepack compile -o` writes the same).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = file::encode(&self.program).or_raise(Kind::Program)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// `hepack inspect PROGRAM.hep --json`'s report.
    fn report(&self) -> PyResult<String> {
        let value =
            inspect_program::report_json(&self.program, "<program>").or_raise(Kind::Program)?;
        Ok(value.to_string())
    }

    /// The program's text form (`hepack compile --emit-he`).
    fn text(&self) -> String {
        self.program.to_text()
    }

    /// One sample's input shape.
    #[getter]
    fn input_shape(&self) -> Vec<usize> {
        self.program.input_shape.dims().to_vec()
    }

    /// The outputs' names, in the model's order.
    #[getter]
    fn output_names(&self) -> Vec<String> {
        self.program.output_names()
    }

    /// The packing it was compiled for.
    #[getter]
    fn packing(&self) -> String {
        self.program.packing.clone()
    }

    /// Samples one ciphertext batch holds.
    #[getter]
    fn samples_per_ciphertext(&self) -> usize {
        self.program.samples_per_ct()
    }

    /// A fresh key set: (secret key bytes, evaluation key bytes), as
    /// `hepack keygen` writes `secret.key` and `eval.keys`.
    #[pyo3(signature = (insecure = false))]
    fn keygen<'py>(
        &self,
        py: Python<'py>,
        insecure: bool,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        self.check_client(insecure)?;
        let context = self.context()?;
        let (secret, eval) = py
            .detach(|| keys::generate_files(&context, &self.program))
            .or_raise(Kind::Keys)?;
        Ok((PyBytes::new(py, &secret), PyBytes::new(py, &eval)))
    }

    /// Encrypt a batch with the secret key; the bytes of a ciphertext file
    /// (`hepack encrypt`'s).
    #[pyo3(signature = (secret, data, shape, insecure = false))]
    fn encrypt<'py>(
        &self,
        py: Python<'py>,
        secret: &[u8],
        data: &[u8],
        shape: Vec<usize>,
        insecure: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        self.check_client(insecure)?;
        let x = array(data, shape, "the input")?;
        let bytes = py.detach(|| -> PyResult<Vec<u8>> {
            let context = self.context()?;
            let key = self.secret(&context, secret)?;
            let cts =
                hepack_runtime::client::encrypt(&context, &self.program, &key, x.view(), true)
                    .or_raise(Kind::Input)?;
            let mut out = Vec::new();
            cts.write(&self.program.params, &mut out)
                .or_raise(Kind::Ciphertext)?;
            Ok(out)
        })?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The server's run: evaluation keys and input ciphertexts (bytes) in,
    /// output ciphertexts (bytes) and the run report (JSON) out; `argv` are
    /// `hepack run`'s executor and limit flags. A secret key is refused.
    #[pyo3(signature = (eval_keys, ciphertexts, argv, progress = None))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        eval_keys: &[u8],
        ciphertexts: &[u8],
        argv: Vec<String>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<(Bound<'py, PyBytes>, String)> {
        if eval_keys.starts_with(keys::SECRET_MAGIC) || ciphertexts.starts_with(keys::SECRET_MAGIC)
        {
            return Err(message(
                Kind::Security,
                "run takes the public evaluation keys (keys.eval_keys) and ciphertexts, but this is a secret key: it stays with the client and never goes to the server".into(),
            ));
        }
        let o: RunOptions = options::parse("run", argv)?;
        he_report::warn_if_insecure(&self.program.params);
        let progress = Progress::new(progress);
        let keys_failed = AtomicBool::new(false);
        let program = &self.program;
        let result = py.detach(|| -> PyResult<(Vec<u8>, String)> {
            let context = self.context()?;
            let inputs = self.ciphertexts(&context, Role::Input, ciphertexts)?;
            let (input_set, total) = (
                inputs.key_set,
                (inputs.batches.len() * program.instrs.len()) as u64,
            );
            run::serve(
                &context,
                program,
                inputs,
                || {
                    let keys = keys::read_eval(&context, program, eval_keys)
                        .map_err(|e| {
                            anyhow::Error::new(e).context("cannot load the evaluation keys")
                        })
                        .inspect_err(|_| keys_failed.store(true, Ordering::Relaxed))?;
                    // The executor refuses keys of another key set; that is
                    // the keys' fault here.
                    if keys.key_set != input_set {
                        keys_failed.store(true, Ordering::Relaxed);
                    }
                    Ok(keys)
                },
                &o.exec.options(),
                &o.limits.limits(),
                &|n| progress.report(n, total),
            )
            .and_then(|(outputs, report)| {
                let mut out = Vec::new();
                outputs.write(&program.params, &mut out)?;
                Ok((out, serde_json::to_string(&report)?))
            })
            .map_err(|e| {
                let kind = if keys_failed.load(Ordering::Relaxed) {
                    Kind::Keys
                } else if matches!(
                    e.downcast_ref::<RuntimeError>(),
                    Some(RuntimeError::Mismatch(_))
                ) {
                    // The inputs do not fit the program.
                    Kind::Ciphertext
                } else {
                    Kind::Run
                };
                raise(kind, e)
            })
        });
        progress.finish()?;
        let (bytes, report) = result?;
        Ok((PyBytes::new(py, &bytes), report))
    }

    /// Decrypt the server's output ciphertexts with the secret key; one
    /// (name, bytes, shape) per model output.
    #[pyo3(signature = (secret, ciphertexts, insecure = false))]
    fn decrypt<'py>(
        &self,
        py: Python<'py>,
        secret: &[u8],
        ciphertexts: &[u8],
        insecure: bool,
    ) -> PyResult<Vec<Output<'py>>> {
        self.check_client(insecure)?;
        let ys = py.detach(|| -> PyResult<_> {
            let context = self.context()?;
            let key = self.secret(&context, secret)?;
            let cts = self.ciphertexts(&context, Role::Output, ciphertexts)?;
            hepack_runtime::client::decrypt(&context, &self.program, &key, &cts)
                .or_raise(Kind::Ciphertext)
        })?;
        Ok(outputs(py, &self.program.output_names(), &ys))
    }

    /// Keys, encryption, the run and decryption in one call (`hepack
    /// infer`); the decrypted outputs and the report (JSON).
    #[pyo3(signature = (data, shape, argv, insecure = false, progress = None))]
    fn infer<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        shape: Vec<usize>,
        argv: Vec<String>,
        insecure: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<(Vec<Output<'py>>, String)> {
        let o: InferOptions = options::parse("infer", argv)?;
        self.check_client(insecure)?;
        let x = array(data, shape, "the input")?;
        let want = self.program.input_shape.dims();
        if x.ndim() == 0 || &x.shape()[1..] != want || x.shape()[0] == 0 {
            return Err(message(
                Kind::Input,
                format!(
                    "input of shape {:?}; the program takes [samples ≥ 1, {}]",
                    x.shape(),
                    self.program.input_shape
                ),
            ));
        }
        if let Some(bad) = x.iter().find(|v| !v.is_finite()) {
            return Err(message(
                Kind::Input,
                format!("the input holds {bad}; only finite values can be encrypted"),
            ));
        }
        let options = o.exec.options();
        let progress = Progress::new(progress);
        let program = &self.program;
        let result = py
            .detach(|| {
                infer::infer(program, &x, &options, &|n, total| progress.report(n, total))
                    .and_then(|(ys, report)| Ok((ys, serde_json::to_string(&report)?)))
            })
            .or_raise(Kind::Run);
        progress.finish()?;
        let (ys, report) = result?;
        Ok((outputs(py, &self.program.output_names(), &ys), report))
    }

    fn __repr__(&self) -> String {
        format!(
            "<hepack.Program {} packing, input {}, N = {}, {} levels>",
            self.program.packing,
            self.program.input_shape,
            self.program.params.degree,
            self.program.params.levels()
        )
    }
}
