//! herd errors as Python exceptions.
//!
//! The exception classes live in Python (`herd/_errors.py`) so that they
//! can inherit from the matching built-ins (`AcquireTimeout` is also a
//! `TimeoutError`, `InvalidSessionId` a `ValueError`...) and carry plain
//! docstrings. This module picks the class from the core's [`ErrorKind`],
//! passes the core's message, and turns the `source()` chain into the
//! exception's `__cause__` chain.

use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

use herd_core::{Error, ErrorKind};

static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The name of the class in `herd._errors` for `kind`.
pub(crate) fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidSessionId => "InvalidSessionId",
        ErrorKind::InvalidConfig => "InvalidConfig",
        ErrorKind::AcquireTimeout => "AcquireTimeout",
        ErrorKind::PoolExhausted => "PoolExhausted",
        ErrorKind::PoolClosed => "PoolClosed",
        ErrorKind::SpawnFailed => "SpawnError",
        ErrorKind::Sandbox => "SandboxError",
        ErrorKind::Forked => "ForkedError",
        ErrorKind::WorkerUnavailable => "WorkerUnavailable",
        ErrorKind::Io => "IoError",
        ErrorKind::Internal => "InternalError",
        // A kind added to the core later: still a HerdError.
        _ => "HerdError",
    }
}

/// Converts a herd error into the matching Python exception, with the
/// cause chain as `__cause__`.
pub(crate) fn to_py(py: Python<'_>, error: &Error) -> PyErr {
    let top = exception(py, error);
    let mut tail = top.clone_ref(py);
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let next = match cause.downcast_ref::<Error>() {
            Some(herd) => exception(py, herd),
            None => match cause.downcast_ref::<std::io::Error>() {
                Some(io) => match io.raw_os_error() {
                    Some(errno) => PyOSError::new_err((errno, io.to_string())),
                    None => PyOSError::new_err(io.to_string()),
                },
                None => PyRuntimeError::new_err(cause.to_string()),
            },
        };
        tail.set_cause(py, Some(next.clone_ref(py)));
        tail = next;
        source = cause.source();
    }
    top
}

/// A HerdError of `message` and `kind` (without causes).
fn exception(py: Python<'_>, error: &Error) -> PyErr {
    let class = ERRORS_MODULE
        .get_or_try_init(py, || py.import("herd._errors").map(Bound::unbind))
        .and_then(|module| module.bind(py).getattr(class_name(error.kind())));
    match class.and_then(|class| class.call1((error.message(),))) {
        Ok(instance) => PyErr::from_value(instance),
        // Only if the package is broken (herd._errors missing).
        Err(import_error) => {
            let err = PyRuntimeError::new_err(format!("{} ({})", error.message(), error.kind()));
            err.set_cause(py, Some(import_error));
            err
        }
    }
}

/// `Result<T, herd_core::Error>` → `PyResult<T>`.
pub(crate) trait IntoPyResult<T> {
    fn py_result(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    #[inline]
    fn py_result(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, &e))
    }
}

/// An `InvalidConfig` error for a bad keyword argument.
pub(crate) fn invalid_config(py: Python<'_>, message: impl Into<String>) -> PyErr {
    to_py(py, &Error::new(ErrorKind::InvalidConfig, message))
}

/// Builds the exception herd would raise for an error of `kind` (the
/// `ErrorKind::as_str` name) with `message`; with `errno`, the error has
/// an I/O cause chain (`IoError` ← `OSError`). For the tests of this
/// mapping: most kinds and every cause chain cannot be provoked on demand.
#[pyfunction]
#[pyo3(signature = (kind, message, errno = None))]
pub(crate) fn _error_for_test(
    py: Python<'_>,
    kind: &str,
    message: &str,
    errno: Option<i32>,
) -> PyResult<Py<PyAny>> {
    let kinds = [
        ErrorKind::InvalidSessionId,
        ErrorKind::InvalidConfig,
        ErrorKind::AcquireTimeout,
        ErrorKind::PoolExhausted,
        ErrorKind::PoolClosed,
        ErrorKind::SpawnFailed,
        ErrorKind::Sandbox,
        ErrorKind::Forked,
        ErrorKind::WorkerUnavailable,
        ErrorKind::Io,
        ErrorKind::Internal,
    ];
    let Some(kind) = kinds.into_iter().find(|k| k.as_str() == kind) else {
        return Err(pyo3::exceptions::PyValueError::new_err(format!("unknown error kind {kind:?}")));
    };
    let mut error = Error::new(kind, message);
    if let Some(errno) = errno {
        let io =
            Error::new(ErrorKind::Io, "while starting").with_source(std::io::Error::from_raw_os_error(errno));
        error = error.with_source(io);
    }
    Ok(to_py(py, &error).into_value(py).into_any())
}
