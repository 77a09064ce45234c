//! `on_session_end` / `on_event`: Python callables run for pool events.
//!
//! # Concurrency
//! The core calls them on the pool's event thread — never a runtime
//! thread, never with a pool lock held. The callback takes the GIL there.
//! That cannot deadlock with a Python thread blocked in `acquire`, which
//! waits with the GIL released; and a callback may call back into the pool.
//!
//! An exception raised by a callback is logged on the `herd` logger with
//! its traceback (and, if logging itself fails, reported through
//! `sys.unraisablehook`): never silently lost, never fatal to the pool.

use std::time::SystemTime;

use herd_core::{EndReason, EventKind};
use pyo3::prelude::*;

use crate::bridge::python_alive;

/// A session that ended, passed to ``on_session_end``.
#[pyclass(frozen, module = "herd._herd")]
pub struct SessionEnd {
    session: String,
    worker: String,
    pid: Option<u32>,
    reason: EndReason,
    duration: f64,
}

impl From<&herd_core::SessionEnd> for SessionEnd {
    fn from(end: &herd_core::SessionEnd) -> Self {
        SessionEnd {
            session: end.session.to_string(),
            worker: end.worker.to_string(),
            pid: end.pid,
            reason: end.reason,
            duration: end.duration.as_secs_f64(),
        }
    }
}

#[pymethods]
impl SessionEnd {
    /// The session ID.
    #[getter]
    fn session_id(&self) -> &str {
        &self.session
    }
    /// The worker it was bound to (``"w3"``).
    #[getter]
    fn worker_id(&self) -> &str {
        &self.worker
    }
    /// That worker's process ID.
    #[getter]
    fn pid(&self) -> Option<u32> {
        self.pid
    }
    /// Why it ended: ``"ended"``, ``"idle_timeout"``, ``"max_lifetime"``,
    /// ``"crashed"``, ``"unhealthy"`` or ``"shutdown"``.
    #[getter]
    fn reason(&self) -> &'static str {
        self.reason.as_str()
    }
    /// For ``"crashed"``: the worker's exit code, if it exited.
    #[getter]
    fn exit_code(&self) -> Option<i32> {
        self.reason.exit_status().and_then(|s| s.code())
    }
    /// For ``"crashed"``: the signal that killed the worker, if one did.
    #[getter]
    fn signal(&self) -> Option<i32> {
        self.reason.exit_status().and_then(|s| s.signal())
    }
    /// Seconds the session was bound.
    #[getter]
    fn duration(&self) -> f64 {
        self.duration
    }
    fn __repr__(&self) -> String {
        format!(
            "<herd.SessionEnd session={:?} worker={} pid={} reason={}>",
            self.session,
            self.worker,
            self.pid.map_or("None".to_string(), |p| p.to_string()),
            self.reason
        )
    }
}

/// Something that happened in a pool, passed to ``on_event``.
///
/// ``kind`` says what; the other attributes are ``None`` where they do not
/// apply to that kind.
#[pyclass(frozen, module = "herd._herd")]
pub struct Event {
    /// ``"worker_spawning"``, ``"worker_ready"``, ``"worker_spawn_failed"``,
    /// ``"session_bound"``, ``"lease_released"``, ``"session_ended"`` or
    /// ``"worker_exited"``.
    #[pyo3(get)]
    kind: &'static str,
    /// When it happened (Unix seconds).
    #[pyo3(get)]
    at: f64,
    /// The worker concerned (``"w3"``).
    #[pyo3(get)]
    worker_id: Option<String>,
    /// The session concerned.
    #[pyo3(get)]
    session_id: Option<String>,
    /// The worker's process ID.
    #[pyo3(get)]
    pid: Option<u32>,
    /// ``worker_ready``: the worker's address.
    #[pyo3(get)]
    address: Option<String>,
    /// ``worker_ready``: seconds from the spawn request to ready.
    #[pyo3(get)]
    startup: Option<f64>,
    /// ``worker_spawn_failed``: why (the core's message, with causes).
    #[pyo3(get)]
    error: Option<String>,
    /// ``session_ended``: the details.
    #[pyo3(get)]
    session_end: Option<Py<SessionEnd>>,
    /// ``worker_exited``: the exit code, if it exited.
    #[pyo3(get)]
    exit_code: Option<i32>,
    /// ``worker_exited``: the signal that killed it, if one did.
    #[pyo3(get)]
    signal: Option<i32>,
    /// ``worker_exited``: ``False`` for crashes, ``True`` when herd stopped it.
    #[pyo3(get)]
    expected: Option<bool>,
}

#[pymethods]
impl Event {
    fn __repr__(&self) -> String {
        let mut out = format!("<herd.Event {}", self.kind);
        if let Some(w) = &self.worker_id {
            out.push_str(&format!(" worker={w}"));
        }
        if let Some(s) = &self.session_id {
            out.push_str(&format!(" session={s:?}"));
        }
        out.push('>');
        out
    }
}

impl Event {
    fn new(py: Python<'_>, event: &herd_core::Event) -> PyResult<Option<Event>> {
        let at = event.at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let mut e = Event {
            kind: "",
            at,
            worker_id: None,
            session_id: None,
            pid: None,
            address: None,
            startup: None,
            error: None,
            session_end: None,
            exit_code: None,
            signal: None,
            expected: None,
        };
        match &event.kind {
            EventKind::WorkerSpawning { worker } => {
                e.kind = "worker_spawning";
                e.worker_id = Some(worker.to_string());
            }
            EventKind::WorkerReady { worker, pid, address, startup } => {
                e.kind = "worker_ready";
                e.worker_id = Some(worker.to_string());
                e.pid = *pid;
                e.address = address.map(|a| a.to_string());
                e.startup = Some(startup.as_secs_f64());
            }
            EventKind::WorkerSpawnFailed { worker, error } => {
                e.kind = "worker_spawn_failed";
                e.worker_id = Some(worker.to_string());
                e.error = Some(format!("{error:#}"));
            }
            EventKind::SessionBound { session, worker, pid } => {
                e.kind = "session_bound";
                e.worker_id = Some(worker.to_string());
                e.session_id = Some(session.to_string());
                e.pid = *pid;
            }
            EventKind::LeaseReleased { session, worker } => {
                e.kind = "lease_released";
                e.worker_id = Some(worker.to_string());
                e.session_id = Some(session.to_string());
            }
            EventKind::SessionEnded(end) => {
                e.kind = "session_ended";
                e.worker_id = Some(end.worker.to_string());
                e.session_id = Some(end.session.to_string());
                e.pid = end.pid;
                e.session_end = Some(Py::new(py, SessionEnd::from(end))?);
            }
            EventKind::WorkerExited { worker, pid, status, expected } => {
                e.kind = "worker_exited";
                e.worker_id = Some(worker.to_string());
                e.pid = *pid;
                e.exit_code = status.and_then(|s| s.code());
                e.signal = status.and_then(|s| s.signal());
                e.expected = Some(*expected);
            }
            // A kind added to the core later: not reported until mapped.
            _ => return Ok(None),
        }
        Ok(Some(e))
    }
}

/// Adds the Python callbacks to a pool builder.
pub(crate) fn attach(
    mut builder: herd_core::PoolBuilder,
    on_session_end: Option<Py<PyAny>>,
    on_event: Option<Py<PyAny>>,
) -> herd_core::PoolBuilder {
    if let Some(callback) = on_session_end {
        builder = builder.on_session_end(move |end| {
            run(&callback, "on_session_end", |py| Py::new(py, SessionEnd::from(end)).map(Some));
        });
    }
    if let Some(callback) = on_event {
        // Whoever asks for every event gets lease releases too.
        builder = builder.lease_events(true).on_event(move |event| {
            run(&callback, "on_event", |py| match Event::new(py, event)? {
                Some(e) => Py::new(py, e).map(Some),
                None => Ok(None),
            });
        });
    }
    builder
}

/// Calls `callback(arg)` with the GIL, reporting any exception.
fn run<T: pyo3::PyClass>(
    callback: &Py<PyAny>,
    name: &str,
    arg: impl FnOnce(Python<'_>) -> PyResult<Option<Py<T>>>,
) {
    if !python_alive() {
        return;
    }
    Python::try_attach(|py| {
        let outcome = arg(py).and_then(|arg| match arg {
            Some(arg) => callback.call1(py, (arg,)).map(drop),
            None => Ok(()),
        });
        if let Err(err) = outcome {
            report(py, callback, name, err);
        }
    });
}

/// Logs a callback's exception with its traceback on the `herd` logger.
pub(crate) fn report(py: Python<'_>, callback: &Py<PyAny>, name: &str, err: PyErr) {
    let logged = (|| -> PyResult<()> {
        let logger = py.import("logging")?.call_method1("getLogger", ("herd",))?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("exc_info", err.value(py))?;
        logger.call_method(
            "error",
            ("herd: the %s callback %r raised an exception", name, callback.bind(py)),
            Some(&kwargs),
        )?;
        Ok(())
    })();
    if let Err(logging_failed) = logged {
        err.write_unraisable(py, Some(callback.bind(py)));
        logging_failed.write_unraisable(py, None);
    }
}
