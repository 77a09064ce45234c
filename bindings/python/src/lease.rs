//! `Lease`: one use of a session's worker, as a Python object.

use std::net::SocketAddr;

use herd_core::WorkerId;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// One open use of a session's worker.
///
/// A lease is a context manager: leaving the ``with`` block releases it.
/// Releasing keeps the session bound to its worker (until it ends by
/// ``ttl``, ``end_session``, a crash...), so the next ``acquire`` of the
/// same ID reaches the same process. While any lease of a session is open,
/// the session is never ended for idleness.
///
/// The attributes stay readable after release. Leases may be released
/// from any thread; ``release()`` is idempotent. A lease that is garbage
/// collected unreleased is released then.
#[pyclass(frozen, module = "herd._herd")]
pub struct Lease {
    lease: Mutex<Option<herd_core::Lease>>,
    session: Py<PyString>,
    worker: WorkerId,
    pid: Option<u32>,
    address: Option<SocketAddr>,
}

impl Lease {
    /// Wraps a core lease; `session` is the caller's own `str` when there
    /// is one (no copy).
    pub(crate) fn new(lease: herd_core::Lease, session: Py<PyString>) -> Lease {
        Lease {
            worker: lease.worker_id(),
            pid: lease.pid(),
            address: lease.address(),
            session,
            lease: Mutex::new(Some(lease)),
        }
    }

    /// Wraps a core lease, making the session `str` from the lease.
    pub(crate) fn from_core(py: Python<'_>, lease: herd_core::Lease) -> Lease {
        let session = PyString::new(py, lease.session_id()).unbind();
        Lease::new(lease, session)
    }
}

#[pymethods]
impl Lease {
    /// The session ID.
    #[getter]
    fn session_id(&self, py: Python<'_>) -> Py<PyString> {
        self.session.clone_ref(py)
    }

    /// The worker's ID within its pool (``"w3"``).
    #[getter]
    fn worker_id(&self) -> String {
        self.worker.to_string()
    }

    /// The worker's process ID as the host sees it.
    #[getter]
    fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The worker's address, ``"127.0.0.1:PORT"``.
    #[getter]
    fn address(&self) -> Option<String> {
        self.address.map(|a| a.to_string())
    }

    /// The worker's port.
    #[getter]
    fn port(&self) -> Option<u16> {
        self.address.map(|a| a.port())
    }

    /// ``"http://127.0.0.1:PORT"``, for HTTP workers.
    #[getter]
    fn url(&self) -> Option<String> {
        self.address.map(|a| format!("http://{a}"))
    }

    /// Whether ``release()`` was called (or the ``with`` block left).
    #[getter]
    fn released(&self) -> bool {
        self.lease.lock().is_none()
    }

    /// Whether the session has ended (its worker may be gone or serving
    /// someone else: stop using it). ``True`` after release.
    #[getter]
    fn ended(&self) -> bool {
        self.lease.lock().as_ref().is_none_or(|l| l.is_ended())
    }

    /// Records activity now: the session's idle ``ttl`` counts from the
    /// last activity (releasing also counts).
    fn touch(&self) {
        if let Some(lease) = self.lease.lock().as_ref() {
            lease.touch();
        }
    }

    /// Releases the lease. The session stays bound to its worker.
    /// Calling it again does nothing.
    fn release(&self) {
        let lease = self.lease.lock().take();
        drop(lease);
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        _exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> bool {
        self.release();
        false
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let session = self.session.bind(py).to_string_lossy().into_owned();
        format!(
            "<herd.Lease session={session:?} worker={} pid={} address={}{}>",
            self.worker,
            self.pid.map_or("None".to_string(), |p| p.to_string()),
            self.address.map_or("None".to_string(), |a| a.to_string()),
            if self.released() { " released" } else { "" }
        )
    }
}
