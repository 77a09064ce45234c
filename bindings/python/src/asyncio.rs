//! The native half of `Pool.acquire_async`.
//!
//! The acquire runs as a task on the pool's runtime, so the asyncio loop
//! is never blocked. Its result goes to herd's bridge thread (runtime
//! threads never take the GIL, see [`crate::bridge`]), which calls the
//! Python `deliver(lease, error)` function; that one hands the result to
//! the loop with `loop.call_soon_threadsafe` (see `herd/_pool.py`).
//!
//! # Race window
//! A cancelled `acquire_async` calls [`AcquireTask::cancel`], which aborts
//! the task. If the acquire finished just before, `deliver` still runs;
//! the Python side sees the future cancelled and releases the lease, so a
//! lease is never leaked.

use std::time::Duration;

use pyo3::prelude::*;

use herd_core::{Error, ErrorKind};

use crate::errors::to_py;
use crate::lease::Lease;

/// A running ``acquire_async``; ``cancel()`` stops it.
#[pyclass(frozen, module = "herd._herd")]
pub struct AcquireTask {
    task: tokio::task::AbortHandle,
}

#[pymethods]
impl AcquireTask {
    /// Cancels the acquire (no-op if it has finished).
    fn cancel(&self) {
        self.task.abort();
    }
}

impl Drop for AcquireTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the acquire; `deliver(lease, None)` or `deliver(None, error)`
/// will be called with the GIL on the bridge thread, exactly once.
pub(crate) fn start(
    py: Python<'_>,
    core: &herd_core::Pool,
    session: String,
    timeout: Option<Duration>,
    deliver: Py<PyAny>,
) -> PyResult<AcquireTask> {
    // Reject bad input here, as the blocking path does, rather than in the
    // future.
    herd_core::validate_session_id(&session).map_err(|e| to_py(py, &e))?;
    if core.is_closed() {
        return Err(to_py(py, &Error::new(ErrorKind::PoolClosed, "the pool is shut down")));
    }
    let pool = core.clone();
    let timeout = timeout.unwrap_or(core.config().acquire_timeout);
    let delivery = Delivery { deliver: Some(deliver) };
    let task = core.runtime_handle().spawn(async move {
        let result = pool.acquire_timeout(&session, timeout).await;
        drop(pool);
        delivery.send(result);
    });
    Ok(AcquireTask { task: task.abort_handle() })
}

/// Delivers the result of one acquire. If the task is dropped before it
/// finishes (cancelled, or the runtime stopped), it delivers an error
/// instead, so the Python future always resolves.
struct Delivery {
    deliver: Option<Py<PyAny>>,
}

impl Delivery {
    fn send(mut self, result: Result<herd_core::Lease, Error>) {
        if let Some(deliver) = self.deliver.take() {
            submit(deliver, result);
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(deliver) = self.deliver.take() {
            submit(deliver, Err(Error::new(ErrorKind::PoolClosed, "the acquire was cancelled")));
        }
    }
}

fn submit(deliver: Py<PyAny>, result: Result<herd_core::Lease, Error>) {
    let delivered = crate::bridge::submit_call(move |py| {
        let args = match result {
            Ok(lease) => match Py::new(py, Lease::from_core(py, lease)) {
                Ok(lease) => (lease.into_any(), py.None()),
                Err(err) => (py.None(), err.into_value(py).into_any()),
            },
            Err(error) => (py.None(), to_py(py, &error).into_value(py).into_any()),
        };
        if let Err(err) = deliver.call1(py, args) {
            crate::callbacks::report(py, &deliver, "acquire_async delivery", err);
        }
    });
    if let Err(reason) = delivered {
        // The lease, if any, was released when the job was dropped.
        tracing::debug!("an acquire_async result was not delivered: {reason}");
    }
}
