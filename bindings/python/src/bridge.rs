//! The bridge thread: the one place where herd's own threads run Python
//! code that is not a user callback — log records for `logging`, and
//! results of `acquire_async` for the asyncio loop.
//!
//! # Concurrency
//! herd's runtime threads must never wait for the GIL: a Python thread
//! holding the GIL may itself wait for the pool (for the pool's state lock,
//! briefly), and a runtime thread blocked on the GIL while holding that
//! lock — say, while emitting a log event — would deadlock them both. So
//! runtime threads only push [`Job`]s onto a channel (never blocking), and
//! this thread takes the GIL to run them, several per attach.
//!
//! After `fork()` the child has no bridge thread; the first job submitted
//! in the child starts a new one (jobs are tagged by process ID).
//!
//! At interpreter exit (`atexit`, see `herd/__init__.py`) [`python_exiting`]
//! stops every later attempt to attach: attaching while the interpreter
//! finalizes can hang or kill the thread on Python < 3.13.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pyo3::prelude::*;

/// Work for the bridge thread.
pub(crate) enum Job {
    /// A record for the Python logger `logger`.
    Log { level: u8, logger: String, message: String },
    /// Any Python call (an async acquire's result, delivered to its loop).
    Call(Box<dyn FnOnce(Python<'_>) + Send>),
}

/// Log records allowed to wait for the bridge; more are dropped (a flood of
/// worker output must not grow memory without bound).
const MAX_QUEUED_LOGS: usize = 10_000;
/// Jobs run per GIL attach, so a flood does not starve Python threads.
const JOBS_PER_ATTACH: usize = 256;
/// How often the cached level of the `herd` logger is refreshed.
const LEVEL_REFRESH: Duration = Duration::from_secs(1);

static PYTHON_ALIVE: AtomicBool = AtomicBool::new(true);
static QUEUED_LOGS: AtomicUsize = AtomicUsize::new(0);
static DROPPED_LOGS: AtomicUsize = AtomicUsize::new(0);
static BRIDGE: Mutex<Option<Bridge>> = Mutex::new(None);

struct Bridge {
    pid: u32,
    tx: mpsc::Sender<Job>,
}

/// Whether herd's threads may still attach to the interpreter.
pub(crate) fn python_alive() -> bool {
    PYTHON_ALIVE.load(Ordering::Acquire)
}

/// Called at interpreter exit: no herd thread attaches to Python after this.
pub(crate) fn python_exiting() {
    PYTHON_ALIVE.store(false, Ordering::Release);
}

/// Queues a log record; drops it if too many are waiting. Never blocks.
pub(crate) fn submit_log(level: u8, logger: String, message: String) {
    if QUEUED_LOGS.fetch_add(1, Ordering::Relaxed) >= MAX_QUEUED_LOGS {
        QUEUED_LOGS.fetch_sub(1, Ordering::Relaxed);
        DROPPED_LOGS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if submit(Job::Log { level, logger, message }).is_err() {
        QUEUED_LOGS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Queues `call` to run with the GIL on the bridge thread. Never blocks.
/// Fails only if the interpreter is exiting or no thread can be started.
pub(crate) fn submit_call(call: impl FnOnce(Python<'_>) + Send + 'static) -> Result<(), String> {
    submit(Job::Call(Box::new(call)))
}

fn submit(job: Job) -> Result<(), String> {
    if !python_alive() {
        return Err("the Python interpreter is exiting".to_string());
    }
    let pid = std::process::id();
    let mut bridge = BRIDGE.lock();
    if let Some(b) = bridge.as_ref().filter(|b| b.pid == pid) {
        match b.tx.send(job) {
            Ok(()) => return Ok(()),
            // The thread is gone (it never exits on its own): start another.
            Err(mpsc::SendError(returned)) => return start(&mut bridge, pid, returned),
        }
    }
    start(&mut bridge, pid, job)
}

fn start(slot: &mut Option<Bridge>, pid: u32, first: Job) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("herd-python-bridge".to_string())
        .spawn(move || run(rx))
        .map_err(|e| format!("cannot start herd's Python bridge thread: {e}"))?;
    let _ = tx.send(first);
    *slot = Some(Bridge { pid, tx });
    Ok(())
}

fn run(rx: mpsc::Receiver<Job>) {
    let mut refreshed = Instant::now();
    loop {
        let first = match rx.recv_timeout(LEVEL_REFRESH) {
            Ok(job) => Some(job),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        if !python_alive() {
            // Dropping the jobs releases their Python objects later (PyO3
            // defers reference decrements made without the GIL).
            drop(first);
            while rx.try_recv().is_ok() {}
            continue;
        }
        let attached = Python::try_attach(|py| {
            if refreshed.elapsed() >= LEVEL_REFRESH {
                crate::logs::refresh_level(py);
                refreshed = Instant::now();
            }
            let mut job = first;
            for _ in 0..JOBS_PER_ATTACH {
                let Some(j) = job.take() else { break };
                execute(py, j);
                job = rx.try_recv().ok();
            }
            // Anything left over is picked up on the next round.
            if let Some(j) = job {
                execute(py, j);
            }
        });
        if attached.is_none() {
            return;
        }
    }
}

fn execute(py: Python<'_>, job: Job) {
    match job {
        Job::Log { level, logger, message } => {
            QUEUED_LOGS.fetch_sub(1, Ordering::Relaxed);
            let dropped = DROPPED_LOGS.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                crate::logs::emit(
                    py,
                    30,
                    "herd",
                    &format!("{dropped} herd log records were dropped (the logging queue was full)"),
                );
            }
            crate::logs::emit(py, level, &logger, &message);
        }
        Job::Call(call) => call(py),
    }
}
