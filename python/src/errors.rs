//! hepack's exception hierarchy: every failure is a `hepack.Error`, of the
//! subclass that names what was wrong, with the CLI's message.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    hepack,
    Error,
    PyException,
    "Base class of every error hepack raises."
);
create_exception!(
    hepack,
    OptionError,
    Error,
    "A keyword argument that the matching CLI flag would refuse (unknown name, bad value)."
);
create_exception!(
    hepack,
    ModelError,
    Error,
    "An ONNX model that cannot be read (malformed file, unsupported op, bad shapes)."
);
create_exception!(
    hepack,
    InputError,
    Error,
    "An input array that does not fit (wrong shape or dtype, NaN or infinity, no samples)."
);
create_exception!(
    hepack,
    CompileError,
    Error,
    "A pass, pruning or lowering step that failed on this model, including an option value only that step checks (an unknown `act`, a sparsity above 1)."
);
create_exception!(
    hepack,
    ProgramError,
    Error,
    "A program file that cannot be read (damaged, another format version)."
);
create_exception!(
    hepack,
    KeysError,
    Error,
    "Keys that cannot be read or belong to another program."
);
create_exception!(
    hepack,
    CiphertextError,
    Error,
    "Ciphertexts that cannot be read, or belong to another program or key set."
);
create_exception!(
    hepack,
    SecurityError,
    Error,
    "A secret key where only public evaluation keys belong, or insecure parameters used without `insecure=True`."
);
create_exception!(
    hepack,
    RunError,
    Error,
    "An encrypted run that failed or was refused (its limits, SEAL)."
);

/// Which exception an error becomes.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Option,
    Model,
    Input,
    Compile,
    Program,
    Keys,
    Ciphertext,
    Security,
    Run,
}

/// `e` as the exception `kind`, with the message the CLI prints after `error:`.
pub fn raise(kind: Kind, e: anyhow::Error) -> PyErr {
    message(kind, hepack::error_line(&e))
}

/// The exception `kind` with `text`.
pub fn message(kind: Kind, text: String) -> PyErr {
    match kind {
        Kind::Option => OptionError::new_err(text),
        Kind::Model => ModelError::new_err(text),
        Kind::Input => InputError::new_err(text),
        Kind::Compile => CompileError::new_err(text),
        Kind::Program => ProgramError::new_err(text),
        Kind::Keys => KeysError::new_err(text),
        Kind::Ciphertext => CiphertextError::new_err(text),
        Kind::Security => SecurityError::new_err(text),
        Kind::Run => RunError::new_err(text),
    }
}

/// Extension for results: `.or_raise(Kind::Model)?`.
pub trait OrRaise<T> {
    fn or_raise(self, kind: Kind) -> PyResult<T>;
}

impl<T, E: Into<anyhow::Error>> OrRaise<T> for Result<T, E> {
    fn or_raise(self, kind: Kind) -> PyResult<T> {
        self.map_err(|e| raise(kind, e.into()))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("OptionError", py.get_type::<OptionError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("CompileError", py.get_type::<CompileError>())?;
    m.add("ProgramError", py.get_type::<ProgramError>())?;
    m.add("KeysError", py.get_type::<KeysError>())?;
    m.add("CiphertextError", py.get_type::<CiphertextError>())?;
    m.add("SecurityError", py.get_type::<SecurityError>())?;
    m.add("RunError", py.get_type::<RunError>())?;
    Ok(())
}
