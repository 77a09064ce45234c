//! `herd._herd`: the native half of the `herd` Python package.
//!
//! | module | what |
//! |---|---|
//! | [`pool`] | `Pool`: construction from keyword arguments, acquire, stats, shutdown |
//! | [`lease`] | `Lease` |
//! | [`asyncio`] | the runtime side of `Pool.acquire_async` |
//! | [`callbacks`] | `on_session_end` / `on_event`, `SessionEnd`, `Event` |
//! | [`stats`] | `Stats` and its parts |
//! | [`errors`] | herd errors → the exception classes of `herd/_errors.py` |
//! | [`logs`] | `tracing` → Python `logging` |
//! | [`proxy`] | `Pool.serve` → `Proxy`, the HTTP/WebSocket gateway |
//! | [`bridge`] | the thread that runs Python code for herd's own threads |
//!
//! The Python half (`bindings/python/python/herd/`) adds the asyncio
//! methods, the exception classes and the command line.

mod asyncio;
mod bridge;
mod callbacks;
mod config;
mod errors;
mod lease;
mod logs;
mod pool;
mod proxy;
mod session_id;
mod stats;

use pyo3::prelude::*;

/// Runs herd's demo worker (an HTTP server with per-process state, used
/// by tests and examples) with command-line ``args``; returns its exit
/// code. It serves until the process is terminated, so call it only in a
/// process of its own: ``python -m herd demo-worker``.
#[pyfunction]
fn demo_worker_main(py: Python<'_>, args: Vec<String>) -> i32 {
    py.detach(move || herd_core::demo::run(args))
}

/// Runs the ``herd`` command line — the same as the Rust ``herd`` binary —
/// with ``args`` (without the program name); returns its exit code.
/// ``self_command`` starts this program again (``herd serve --demo`` runs
/// its workers as ``self_command + ["demo-worker", ...]``).
#[pyfunction]
fn cli_main(py: Python<'_>, args: Vec<String>, self_command: Vec<String>) -> i32 {
    py.detach(move || herd_cli::run(args, self_command))
}

/// Whether herd's logs go to Python's ``logging`` (from the first ``Pool``
/// on; ``False`` if another library installed a ``tracing`` subscriber).
#[pyfunction]
fn _logs_forwarded() -> bool {
    logs::forwarding()
}

/// Called by ``atexit``: shuts down every pool still alive, then stops
/// herd's threads from calling into Python.
#[pyfunction]
fn _at_exit(py: Python<'_>) {
    pool::shutdown_all(py);
    bridge::python_exiting();
}

/// Re-reads the level of the ``herd`` logger now (herd also does it every
/// second on its own).
#[pyfunction]
fn _refresh_log_level(py: Python<'_>) {
    logs::refresh_level(py);
}

#[pymodule]
fn _herd(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", herd_core::VERSION)?;
    m.add("MAX_SESSION_ID_LEN", herd_core::MAX_SESSION_ID_LEN)?;
    m.add_class::<pool::Pool>()?;
    m.add_class::<lease::Lease>()?;
    m.add_class::<asyncio::AcquireTask>()?;
    m.add_class::<proxy::Proxy>()?;
    m.add_class::<callbacks::SessionEnd>()?;
    m.add_class::<callbacks::Event>()?;
    m.add_class::<stats::Stats>()?;
    m.add_class::<stats::WorkerCounts>()?;
    m.add_class::<stats::Counters>()?;
    m.add_class::<stats::SessionEndCounts>()?;
    m.add_class::<stats::WorkerStats>()?;
    m.add_class::<stats::HostStats>()?;
    m.add_function(wrap_pyfunction!(demo_worker_main, m)?)?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(_logs_forwarded, m)?)?;
    m.add_function(wrap_pyfunction!(_at_exit, m)?)?;
    m.add_function(wrap_pyfunction!(_refresh_log_level, m)?)?;
    m.add_function(wrap_pyfunction!(errors::_error_for_test, m)?)?;
    logs::refresh_level(m.py());
    Ok(())
}
