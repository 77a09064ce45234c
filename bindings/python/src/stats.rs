//! `pool.stats()`: typed, read-only snapshots.
//!
//! Attribute names are the keys of `as_dict()`, which is the core's JSON
//! form of the same snapshot (durations in seconds, times as Unix seconds).

use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde::Serialize;

/// Converts a serde-serializable snapshot into plain Python objects.
fn as_python<'py>(py: Python<'py>, value: &impl Serialize) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(value)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("cannot convert stats: {e}")))?;
    json_to_python(py, &value)
}

fn json_to_python<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    match value {
        Value::Null => Ok(py.None().into_bound(py)),
        Value::Bool(b) => b.into_bound_py_any(py),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u.into_bound_py_any(py),
            (None, Some(i), _) => i.into_bound_py_any(py),
            (None, None, f) => f.unwrap_or(f64::NAN).into_bound_py_any(py),
        },
        Value::String(s) => s.into_bound_py_any(py),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_python(py, item)?)?;
            }
            Ok(list.into_any())
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_python(py, v)?)?;
            }
            Ok(dict.into_any())
        }
    }
}

/// A snapshot of a pool, from ``pool.stats()``. Taking one never waits:
/// per-process memory/CPU and host figures come from the last background
/// sample (every ``stats_interval``).
#[pyclass(frozen, module = "herd._herd")]
pub struct Stats(pub(crate) herd_core::Stats);

#[pymethods]
impl Stats {
    /// Workers by lifecycle state.
    #[getter]
    fn workers(&self) -> WorkerCounts {
        WorkerCounts(self.0.workers)
    }
    /// Sessions currently bound to a worker.
    #[getter]
    fn sessions(&self) -> usize {
        self.0.sessions
    }
    /// Acquire calls waiting for a worker (several may wait for one session).
    #[getter]
    fn waiting_acquires(&self) -> usize {
        self.0.waiting_acquires
    }
    /// Sessions waiting for a worker.
    #[getter]
    fn queued_sessions(&self) -> usize {
        self.0.queued_sessions
    }
    /// Open leases over all sessions.
    #[getter]
    fn open_leases(&self) -> u64 {
        self.0.open_leases
    }
    /// The configured ``min``.
    #[getter]
    fn min(&self) -> usize {
        self.0.min
    }
    /// The configured ``max``.
    #[getter]
    fn max(&self) -> usize {
        self.0.max
    }
    /// The configured ``min_idle``.
    #[getter]
    fn min_idle(&self) -> usize {
        self.0.min_idle
    }
    /// The configured ``max_queue``.
    #[getter]
    fn max_queue(&self) -> usize {
        self.0.max_queue
    }
    /// Totals since the pool started.
    #[getter]
    fn counters(&self) -> Counters {
        Counters(self.0.counters)
    }
    /// One row per worker process.
    #[getter]
    fn worker_rows(&self) -> Vec<WorkerStats> {
        self.0.worker_rows.iter().cloned().map(WorkerStats).collect()
    }
    /// Host memory and CPU, from the last background sample.
    #[getter]
    fn host(&self) -> HostStats {
        HostStats(self.0.host)
    }
    /// Whether the pool is shut down (or shutting down).
    #[getter]
    fn closed(&self) -> bool {
        self.0.closed
    }
    /// The snapshot as plain dicts and lists (JSON-ready).
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        as_python(py, &self.0)
    }
    fn __repr__(&self) -> String {
        let w = &self.0.workers;
        format!(
            "<herd.Stats sessions={} workers(total={} idle={} bound={} starting={}) waiting_acquires={} closed={}>",
            self.0.sessions, w.total, w.idle, w.bound, w.starting, self.0.waiting_acquires, self.0.closed
        )
    }
}

/// Workers by lifecycle state.
#[pyclass(frozen, module = "herd._herd")]
pub struct WorkerCounts(herd_core::stats::WorkerCounts);

#[pymethods]
impl WorkerCounts {
    /// Starting, not ready yet.
    #[getter]
    fn starting(&self) -> usize {
        self.0.starting
    }
    /// Ready and not bound to a session.
    #[getter]
    fn idle(&self) -> usize {
        self.0.idle
    }
    /// Bound to a session.
    #[getter]
    fn bound(&self) -> usize {
        self.0.bound
    }
    /// Session ended, waiting for its last leases before reuse.
    #[getter]
    fn draining(&self) -> usize {
        self.0.draining
    }
    /// Being stopped.
    #[getter]
    fn stopping(&self) -> usize {
        self.0.stopping
    }
    /// All worker processes.
    #[getter]
    fn total(&self) -> usize {
        self.0.total
    }
    /// The counts as a dict.
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        as_python(py, &self.0)
    }
    fn __repr__(&self) -> String {
        let w = &self.0;
        format!(
            "<herd.WorkerCounts total={} starting={} idle={} bound={} draining={} stopping={}>",
            w.total, w.starting, w.idle, w.bound, w.draining, w.stopping
        )
    }
}

/// Totals since the pool started.
#[pyclass(frozen, module = "herd._herd")]
pub struct Counters(herd_core::stats::Counters);

#[pymethods]
impl Counters {
    /// Workers that became ready.
    #[getter]
    fn spawned(&self) -> u64 {
        self.0.spawned
    }
    /// Workers that failed to start.
    #[getter]
    fn spawn_failures(&self) -> u64 {
        self.0.spawn_failures
    }
    /// Workers that exited on their own.
    #[getter]
    fn crashed(&self) -> u64 {
        self.0.crashed
    }
    /// Workers stopped after failing health checks.
    #[getter]
    fn unhealthy(&self) -> u64 {
        self.0.unhealthy
    }
    /// Workers stopped for ``recycle_after_sessions`` or ``max_worker_age``.
    #[getter]
    fn recycled(&self) -> u64 {
        self.0.recycled
    }
    /// Sessions bound to a worker.
    #[getter]
    fn sessions_bound(&self) -> u64 {
        self.0.sessions_bound
    }
    /// Sessions ended, by reason.
    #[getter]
    fn sessions_ended(&self) -> SessionEndCounts {
        SessionEndCounts(self.0.sessions_ended)
    }
    /// Acquires that timed out.
    #[getter]
    fn acquire_timeouts(&self) -> u64 {
        self.0.acquire_timeouts
    }
    /// Acquires refused at once because the queue was full.
    #[getter]
    fn acquires_rejected(&self) -> u64 {
        self.0.acquires_rejected
    }
    /// The counters as a dict.
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        as_python(py, &self.0)
    }
    fn __repr__(&self) -> String {
        let c = &self.0;
        format!(
            "<herd.Counters spawned={} crashed={} sessions_bound={} sessions_ended={}>",
            c.spawned,
            c.crashed,
            c.sessions_bound,
            c.sessions_ended.total()
        )
    }
}

/// Sessions ended, by reason.
#[pyclass(frozen, module = "herd._herd")]
pub struct SessionEndCounts(herd_core::stats::SessionEndCounts);

#[pymethods]
impl SessionEndCounts {
    /// Ended by ``end_session``.
    #[getter]
    fn ended(&self) -> u64 {
        self.0.ended
    }
    /// Ended after ``ttl`` without activity.
    #[getter]
    fn idle_timeout(&self) -> u64 {
        self.0.idle_timeout
    }
    /// Ended at ``max_session_lifetime``.
    #[getter]
    fn max_lifetime(&self) -> u64 {
        self.0.max_lifetime
    }
    /// Ended because the worker exited.
    #[getter]
    fn crashed(&self) -> u64 {
        self.0.crashed
    }
    /// Ended because the worker failed its health checks.
    #[getter]
    fn unhealthy(&self) -> u64 {
        self.0.unhealthy
    }
    /// Ended by shutdown.
    #[getter]
    fn shutdown(&self) -> u64 {
        self.0.shutdown
    }
    /// Sum over all reasons.
    #[getter]
    fn total(&self) -> u64 {
        self.0.total()
    }
    /// The counts as a dict (without ``total``).
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        as_python(py, &self.0)
    }
    fn __repr__(&self) -> String {
        let s = &self.0;
        format!(
            "<herd.SessionEndCounts ended={} idle_timeout={} max_lifetime={} crashed={} unhealthy={} shutdown={}>",
            s.ended, s.idle_timeout, s.max_lifetime, s.crashed, s.unhealthy, s.shutdown
        )
    }
}

/// One worker process.
#[pyclass(frozen, module = "herd._herd")]
pub struct WorkerStats(herd_core::stats::WorkerStats);

#[pymethods]
impl WorkerStats {
    /// The worker's ID within its pool (``"w3"``).
    #[getter]
    fn id(&self) -> String {
        self.0.id.to_string()
    }
    /// The worker's process ID, once started.
    #[getter]
    fn pid(&self) -> Option<u32> {
        self.0.pid
    }
    /// ``"127.0.0.1:PORT"``, once started.
    #[getter]
    fn address(&self) -> Option<String> {
        self.0.address.map(|a| a.to_string())
    }
    /// ``"starting"``, ``"idle"``, ``"bound"``, ``"draining"`` or ``"stopping"``.
    #[getter]
    fn state(&self) -> &'static str {
        self.0.state.as_str()
    }
    /// The session bound to it, if any.
    #[getter]
    fn session(&self) -> Option<String> {
        self.0.session.clone()
    }
    /// Seconds since it was started.
    #[getter]
    fn age_seconds(&self) -> f64 {
        self.0.age.as_secs_f64()
    }
    /// Sessions it has served.
    #[getter]
    fn sessions_served(&self) -> u32 {
        self.0.sessions_served
    }
    /// Consecutive failed health checks.
    #[getter]
    fn health_failures(&self) -> u32 {
        self.0.health_failures
    }
    /// Resident memory, from the last sample.
    #[getter]
    fn rss_bytes(&self) -> Option<u64> {
        self.0.rss_bytes
    }
    /// User + system CPU seconds, from the last sample.
    #[getter]
    fn cpu_seconds(&self) -> Option<f64> {
        self.0.cpu_time.map(|d| d.as_secs_f64())
    }
    /// The row as a dict.
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        as_python(py, &self.0)
    }
    fn __repr__(&self) -> String {
        let w = &self.0;
        format!(
            "<herd.WorkerStats id={} pid={} state={} session={:?}>",
            w.id,
            w.pid.map_or("None".to_string(), |p| p.to_string()),
            w.state.as_str(),
            w.session
        )
    }
}

/// Host memory and CPU, from the last background sample.
#[pyclass(frozen, module = "herd._herd")]
pub struct HostStats(herd_core::stats::HostStats);

#[pymethods]
impl HostStats {
    /// Total memory.
    #[getter]
    fn memory_total_bytes(&self) -> u64 {
        self.0.memory_total_bytes
    }
    /// Available memory.
    #[getter]
    fn memory_available_bytes(&self) -> u64 {
        self.0.memory_available_bytes
    }
    /// Share of CPU time idle between the last two samples, 0.0 to 1.0.
    #[getter]
    fn cpu_idle(&self) -> f64 {
        self.0.cpu_idle
    }
    /// When the sample was taken (Unix seconds); ``None`` before the first.
    #[getter]
    fn sampled_at(&self) -> Option<f64> {
        self.0.sampled_at.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs_f64())
    }
    /// The sample as a dict.
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        as_python(py, &self.0)
    }
    fn __repr__(&self) -> String {
        format!(
            "<herd.HostStats memory_available_bytes={} cpu_idle={:.2}>",
            self.0.memory_available_bytes, self.0.cpu_idle
        )
    }
}
