//! `herd._herd.Pool`: the native pool. `herd.Pool` (in `herd/_pool.py`)
//! subclasses it to add the asyncio methods.
//!
//! # Concurrency
//! * Every call that can wait releases the GIL while it waits
//!   (`Python::detach`), so other Python threads — and herd's callbacks,
//!   which need the GIL — run meanwhile.
//! * A bound session's `acquire` is served on the calling thread with the
//!   GIL held: one short critical section in the core, no runtime hop.
//! * A waiting `acquire` waits in slices of [`SIGNAL_SLICE`], re-taking the
//!   GIL between slices to run signal handlers, so Ctrl-C interrupts it
//!   (the `KeyboardInterrupt` drops the pending acquire, which cancels it).

use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::callbacks;
use crate::config::{FactoryOptions, PoolOptions, opt_seconds, seconds};
use crate::errors::IntoPyResult;
use crate::lease::Lease;
use crate::stats::Stats;

/// How long a blocking acquire waits between two checks for signals.
const SIGNAL_SLICE: Duration = Duration::from_millis(50);

/// Every pool alive in this process, for the shutdown at interpreter exit.
static LIVE_POOLS: Mutex<Vec<Weak<herd_core::Pool>>> = Mutex::new(Vec::new());

/// A session-affine pool of worker processes.
///
/// Each session ID is bound to its own worker process for the session's
/// lifetime: one session → one worker, one worker → at most one session.
/// See ``herd.Pool`` for the full documentation of the arguments.
#[pyclass(frozen, subclass, module = "herd._herd")]
pub struct Pool {
    /// `None` only while being dropped.
    core: Option<Arc<herd_core::Pool>>,
}

impl Pool {
    fn core(&self) -> &herd_core::Pool {
        self.core.as_ref().expect("the core pool is present until the Python object is dropped")
    }
}

#[pymethods]
impl Pool {
    #[new]
    #[pyo3(signature = (
        command,
        *,
        min = 1,
        max = 10,
        min_idle = 0,
        ttl = 300.0,
        reuse = true,
        health_path = Some("/health".to_string()),
        env = None,
        inherit_env = true,
        cwd = None,
        start_timeout = 30.0,
        start_delay = 0.0,
        acquire_timeout = 30.0,
        max_queue = 1024,
        max_session_lifetime = None,
        recycle_after_sessions = None,
        max_worker_age = None,
        idle_worker_timeout = 60.0,
        health_interval = 5.0,
        health_timeout = 2.0,
        health_failure_threshold = 3,
        stop_grace = 5.0,
        stats_interval = 2.0,
        runtime_threads = 0,
        port_retries = 3,
        sandbox = "best_effort".to_string(),
        memory_limit = None,
        cpu_limit = None,
        pids_limit = Some(100),
        namespaces = true,
        cgroup_root = None,
        on_session_end = None,
        on_event = None,
    ))]
    #[pyo3(text_signature = "(command, *, min=1, max=10, min_idle=0, ttl=300.0, reuse=True, \
        health_path='/health', env=None, inherit_env=True, cwd=None, start_timeout=30.0, start_delay=0.0, \
        acquire_timeout=30.0, max_queue=1024, max_session_lifetime=None, recycle_after_sessions=None, \
        max_worker_age=None, idle_worker_timeout=60.0, health_interval=5.0, health_timeout=2.0, \
        health_failure_threshold=3, stop_grace=5.0, stats_interval=2.0, runtime_threads=0, port_retries=3, \
        sandbox='best_effort', memory_limit=None, cpu_limit=None, pids_limit=100, namespaces=True, \
        cgroup_root=None, on_session_end=None, on_event=None)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        command: Vec<String>,
        min: usize,
        max: usize,
        min_idle: usize,
        ttl: f64,
        reuse: bool,
        health_path: Option<String>,
        env: Option<std::collections::HashMap<String, String>>,
        inherit_env: bool,
        cwd: Option<std::path::PathBuf>,
        start_timeout: f64,
        start_delay: f64,
        acquire_timeout: f64,
        max_queue: usize,
        max_session_lifetime: Option<f64>,
        recycle_after_sessions: Option<u32>,
        max_worker_age: Option<f64>,
        idle_worker_timeout: f64,
        health_interval: f64,
        health_timeout: f64,
        health_failure_threshold: u32,
        stop_grace: f64,
        stats_interval: f64,
        runtime_threads: usize,
        port_retries: u32,
        sandbox: String,
        memory_limit: Option<u64>,
        cpu_limit: Option<f64>,
        pids_limit: Option<u64>,
        namespaces: bool,
        cgroup_root: Option<std::path::PathBuf>,
        on_session_end: Option<Py<PyAny>>,
        on_event: Option<Py<PyAny>>,
    ) -> PyResult<Pool> {
        for (name, callback) in [("on_session_end", &on_session_end), ("on_event", &on_event)] {
            if let Some(cb) = callback
                && !cb.bind(py).is_callable()
            {
                return Err(crate::errors::invalid_config(py, format!("{name} must be callable")));
            }
        }
        let factory = FactoryOptions {
            command,
            env,
            inherit_env,
            cwd,
            health_path,
            start_timeout,
            start_delay,
            port_retries,
            sandbox,
            memory_limit,
            cpu_limit,
            pids_limit,
            namespaces,
            cgroup_root,
        }
        .build(py)?;
        let config = PoolOptions {
            min,
            max,
            min_idle,
            ttl,
            max_session_lifetime,
            reuse,
            recycle_after_sessions,
            max_worker_age,
            idle_worker_timeout,
            health_interval,
            health_timeout,
            health_failure_threshold,
            acquire_timeout,
            max_queue,
            stop_grace,
            stats_interval,
            runtime_threads,
        }
        .build(py)?;
        crate::logs::install(py);
        let builder = herd_core::Pool::builder(factory).config(config);
        let builder = callbacks::attach(builder, on_session_end, on_event);
        let core = Arc::new(py.detach(|| builder.build()).py_result(py)?);
        let mut live = LIVE_POOLS.lock();
        live.retain(|p| p.strong_count() > 0);
        live.push(Arc::downgrade(&core));
        Ok(Pool { core: Some(core) })
    }

    /// Acquires a lease on ``session_id``'s worker.
    ///
    /// A bound session gets its lease at once (about a microsecond). A new
    /// session gets a warm idle worker, else a new one (if below ``max``),
    /// else waits in a FIFO queue for up to ``timeout`` seconds (default:
    /// the pool's ``acquire_timeout``). Concurrent acquires of one new ID
    /// all get the same worker.
    ///
    /// The GIL is released while waiting; Ctrl-C interrupts the wait.
    ///
    /// Raises ``InvalidSessionId``, ``AcquireTimeout``, ``PoolExhausted``
    /// (wait queue full), ``PoolClosed``, ``SpawnError`` (the worker started
    /// for this session failed), ``ForkedError``.
    #[pyo3(signature = (session_id, timeout = None))]
    fn acquire(
        &self,
        py: Python<'_>,
        session_id: &Bound<'_, PyString>,
        timeout: Option<f64>,
    ) -> PyResult<Lease> {
        let core = self.core();
        let id = crate::session_id::as_str(session_id)?;
        if let Some(lease) = core.try_acquire(id).py_result(py)? {
            return Ok(Lease::new(lease, session_id.clone().unbind()));
        }
        let timeout = opt_seconds(py, "timeout", timeout)?;
        let mut pending = core.begin_acquire(id, timeout).py_result(py)?;
        loop {
            // `PendingAcquire` is not `Sync`: move it into the closure and back.
            let (back, result) = py.detach(move || {
                let result = pending.wait_for(SIGNAL_SLICE);
                (pending, result)
            });
            pending = back;
            if let Some(result) = result {
                return Ok(Lease::new(result.py_result(py)?, session_id.clone().unbind()));
            }
            // Raises KeyboardInterrupt on Ctrl-C; `pending` is dropped,
            // which cancels the acquire.
            py.check_signals()?;
        }
    }

    /// Acquires a lease only if that needs no waiting: the session is bound,
    /// or an idle worker is ready for it. Otherwise returns ``None`` (a
    /// worker may be started for it in the background).
    fn try_acquire(&self, py: Python<'_>, session_id: &Bound<'_, PyString>) -> PyResult<Option<Lease>> {
        let id = crate::session_id::as_str(session_id)?;
        Ok(self.core().try_acquire(id).py_result(py)?.map(|l| Lease::new(l, session_id.clone().unbind())))
    }

    /// Starts an acquire on the pool's runtime; calls ``deliver(lease,
    /// error)`` from herd's bridge thread (with the GIL) when it is done —
    /// exactly once, unless the returned handle is cancelled first. The
    /// asyncio half is ``herd.Pool.acquire_async``.
    #[pyo3(signature = (session_id, timeout, deliver))]
    fn _start_acquire(
        &self,
        py: Python<'_>,
        session_id: String,
        timeout: Option<f64>,
        deliver: Py<PyAny>,
    ) -> PyResult<crate::asyncio::AcquireTask> {
        let timeout = opt_seconds(py, "timeout", timeout)?;
        crate::asyncio::start(py, self.core(), session_id, timeout, deliver)
    }

    /// Starts herd's HTTP/WebSocket gateway in front of this pool and
    /// returns the running ``Proxy`` (it serves on herd's threads; this call
    /// does not block).
    ///
    /// The session ID of a request is taken from the first of these that it
    /// carries: the header ``session_header`` (default ``X-Session-ID``;
    /// ``None`` to not use a header), the cookie ``session_cookie``, the
    /// query parameter ``session_query``, or the first path segment after
    /// ``session_path_prefix`` (with ``"/s/"``, ``/s/ID/rest`` is session
    /// ``ID`` and reaches the worker as ``/rest``). A request without one
    /// gets ``400``; no worker within ``acquire_timeout`` seconds (default:
    /// the pool's) gets ``503`` with ``Retry-After``; an unreachable worker
    /// ``502``. Bodies stream; WebSockets are proxied both ways.
    ///
    /// ``listen="127.0.0.1:0"`` picks a free port (see ``Proxy.port``).
    /// ``admin_listen`` serves ``GET /stats``, ``GET /metrics`` and
    /// ``DELETE /sessions/{id}``. The other arguments bound what clients and
    /// workers may cost (seconds, bytes, counts).
    #[pyo3(signature = (
        listen = "127.0.0.1:8080".to_string(),
        *,
        session_header = Some("X-Session-ID".to_string()),
        session_cookie = None,
        session_query = None,
        session_path_prefix = None,
        acquire_timeout = None,
        admin_listen = None,
        preserve_host = false,
        threads = 0,
        max_header_bytes = 65536,
        header_read_timeout = 30.0,
        retry_after = 1.0,
        upstream_connect_timeout = 5.0,
        upstream_idle_timeout = 2.0,
        upstream_max_idle = 128,
        websocket_close_timeout = 2.0,
    ))]
    #[pyo3(text_signature = "(self, listen='127.0.0.1:8080', *, session_header='X-Session-ID', \
        session_cookie=None, session_query=None, session_path_prefix=None, acquire_timeout=None, \
        admin_listen=None, preserve_host=False, threads=0, max_header_bytes=65536, header_read_timeout=30.0, \
        retry_after=1.0, upstream_connect_timeout=5.0, upstream_idle_timeout=2.0, upstream_max_idle=128, \
        websocket_close_timeout=2.0)")]
    #[allow(clippy::too_many_arguments)]
    fn serve(
        &self,
        py: Python<'_>,
        listen: String,
        session_header: Option<String>,
        session_cookie: Option<String>,
        session_query: Option<String>,
        session_path_prefix: Option<String>,
        acquire_timeout: Option<f64>,
        admin_listen: Option<String>,
        preserve_host: bool,
        threads: usize,
        max_header_bytes: usize,
        header_read_timeout: f64,
        retry_after: f64,
        upstream_connect_timeout: f64,
        upstream_idle_timeout: f64,
        upstream_max_idle: usize,
        websocket_close_timeout: f64,
    ) -> PyResult<crate::proxy::Proxy> {
        let options = crate::proxy::ServeOptions {
            listen,
            session_header,
            session_cookie,
            session_query,
            session_path_prefix,
            acquire_timeout,
            admin_listen,
            preserve_host,
            threads,
            max_header_bytes,
            header_read_timeout,
            retry_after,
            upstream_connect_timeout,
            upstream_idle_timeout,
            upstream_max_idle,
            websocket_close_timeout,
        };
        crate::proxy::start(py, self.core(), options)
    }

    /// Ends ``session_id`` now (reason ``"ended"``). With ``reuse`` its
    /// worker serves the next session once the session's open leases are
    /// released; without, the worker is stopped. Returns whether the
    /// session was bound.
    fn end_session(&self, py: Python<'_>, session_id: &Bound<'_, PyString>) -> PyResult<bool> {
        let id = crate::session_id::as_str(session_id)?;
        self.core().end_session(id).py_result(py)
    }

    /// A snapshot of the pool (``herd.Stats``). Never waits for I/O.
    fn stats(&self) -> Stats {
        Stats(self.core().stats())
    }

    /// Waits until at least ``min`` workers are ready. Raises the spawn
    /// error if workers fail to start, or ``AcquireTimeout`` after
    /// ``timeout`` seconds.
    #[pyo3(signature = (timeout = 30.0))]
    fn wait_ready(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let timeout = seconds(py, "timeout", timeout)?;
        let core = self.core();
        py.detach(|| core.wait_ready_blocking(timeout)).py_result(py)
    }

    /// Shuts the pool down: new and waiting acquires fail with
    /// ``PoolClosed``; every session ends (reason ``"shutdown"``); each
    /// worker gets SIGTERM, ``grace`` seconds (default: ``stop_grace``),
    /// then SIGKILL to its whole process tree. Returns when no worker
    /// process is left. Calling it again waits for the first shutdown.
    #[pyo3(signature = (grace = None))]
    fn shutdown(&self, py: Python<'_>, grace: Option<f64>) -> PyResult<()> {
        let core = self.core();
        let grace = opt_seconds(py, "grace", grace)?.unwrap_or(core.config().stop_grace);
        py.detach(|| core.shutdown_blocking(grace));
        Ok(())
    }

    /// Whether the pool is shut down (or shutting down).
    #[getter]
    fn closed(&self) -> bool {
        self.core().is_closed()
    }

    /// The number of worker processes allowed (``max``).
    #[getter]
    fn max(&self) -> usize {
        self.core().config().max
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        self.shutdown(py, None)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let stats = self.core().stats();
        format!(
            "<herd.Pool sessions={} workers={} max={}{}>",
            stats.sessions,
            stats.workers.total,
            stats.max,
            if stats.closed { " closed" } else { "" }
        )
    }
}

impl Drop for Pool {
    /// Dropping the last handle shuts the pool down, which waits for the
    /// workers to exit: do that without the GIL.
    fn drop(&mut self) {
        if let Some(core) = self.core.take() {
            Python::attach(|py| py.detach(move || drop(core)));
        }
    }
}

/// Shuts down every pool still alive (called at interpreter exit, before
/// herd's threads stop attaching to Python).
pub(crate) fn shutdown_all(py: Python<'_>) {
    let pools: Vec<Arc<herd_core::Pool>> = LIVE_POOLS.lock().drain(..).filter_map(|p| p.upgrade()).collect();
    py.detach(move || {
        for pool in &pools {
            let grace = pool.config().stop_grace;
            pool.shutdown_blocking(grace);
        }
    });
}
